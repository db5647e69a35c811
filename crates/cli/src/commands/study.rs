//! `spanwatch study`: the validation study.

use super::Global;
use anyhow::Result;
use spanwatch_study::{self as study, StudyConfig};
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `spanwatch study`.
#[derive(clap::Args)]
pub struct StudyArgs {
    /// A small study (one surface, one family) for CI, a few minutes.
    #[arg(long, conflicts_with = "streams")]
    quick: bool,
    /// Study only these surfaces (repeatable): brick, grass, gravel (drawn
    /// defects on CC0 textures), elpv-mono, elpv-poly (photographed solar-cell
    /// defects, fetched from PyPI on first use).
    #[arg(long = "surface", value_parser = ["brick", "grass", "gravel", "elpv-mono", "elpv-poly"])]
    surfaces: Vec<String>,
    /// Embedding models to compare (repeatable; names or manifest paths).
    /// Feature candidates: `<manifest>+local` (pair differences where the
    /// pixels changed, probe on the manifest's pooling), `<manifest>+anomaly`
    /// (the same pairs, probe on each real image's most anomalous patches),
    /// and manifests of one model file joined by commas (concatenated).
    #[arg(long = "models")]
    models: Vec<String>,
    /// Instead of ranking generators, measure the edge's drift detector on
    /// streams of pairs made from held-out images (default model, one drawn
    /// family): false alarms per 10,000 good pairs and the delay after each
    /// degraded generator (streams.md).
    #[arg(long)]
    streams: bool,
    /// With --streams: the calibration's margin for a shift of the line's
    /// change size, as `calibrate --size-margin`.
    #[arg(long, requires = "streams")]
    size_margin: Option<f64>,
    /// With --streams: make the held-out pairs from the n-th later disjoint
    /// set of held-out defect-free cells (ELPV surfaces only; 0, the default,
    /// is the ranking study's test cells), to confirm on images a choice has
    /// not seen.
    #[arg(long, requires = "streams", default_value_t = 0)]
    held_out_set: usize,
    /// Score only the headline cells (10 real positives, the largest number
    /// of pairs), not every smaller size: a comparison of feature candidates
    /// in a fraction of the time.
    #[arg(long, conflicts_with_all = ["quick", "streams"])]
    headline: bool,
    /// Output folder: images, results.csv, correlations.csv, summary.md.
    #[arg(long, short)]
    output: PathBuf,
}

pub(super) fn run(args: StudyArgs, global: &Global) -> Result<()> {
    let mut config = match (args.quick, args.streams) {
        (true, _) => StudyConfig::quick(),
        (false, true) => StudyConfig::streams(),
        (false, false) => StudyConfig::full(),
    };
    if !args.surfaces.is_empty() {
        config.surfaces = args.surfaces;
    }
    if !args.models.is_empty() {
        config.models = args.models;
    }
    if let Some(margin) = args.size_margin {
        config.size_margin = margin;
    }
    config.held_out_set = args.held_out_set;
    if args.headline {
        config = config.headline();
    }
    let start = Instant::now();
    if args.streams {
        let surfaces = study::run_streams(&config, &args.output, &global.cache_choice(), global.quiet)?;
        println!(
            "stream experiment of {} (surface, model) pairs written to {} in {:.0} s (see streams.md).",
            surfaces.len(),
            args.output.join("streams.md").display(),
            start.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    let results = study::run(&config, &args.output, &global.cache_choice(), global.quiet)?;
    println!(
        "study of {} cells written to {} in {:.0} s (see summary.md).",
        results.len(),
        args.output.display(),
        start.elapsed().as_secs_f64()
    );
    if results.iter().any(|c| c.family != study::EL_FAMILY) {
        println!("On brick, grass and gravel the defects are drawn on real textures, not photographed.");
    }
    if results.iter().any(|c| c.family == study::EL_FAMILY) {
        println!("On elpv-mono and elpv-poly the defects are photographed. {}", spanwatch_study::elpv::ATTRIBUTION);
    }
    for check in study::report::structural_checks(&config, &results) {
        println!("  {:<13} {}: {} of {}", check.score, check.what, check.holds, check.cases);
    }
    Ok(())
}
