//! `spanwatch study`: the validation study.

use super::Global;
use crate::study::{self, StudyConfig};
use anyhow::Result;
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `spanwatch study`.
#[derive(clap::Args)]
pub struct StudyArgs {
    /// A small study (one surface, one family) for CI, a few minutes.
    #[arg(long)]
    quick: bool,
    /// Output folder: images, results.csv, correlations.csv, summary.md.
    #[arg(long, short)]
    output: PathBuf,
}

pub(super) fn run(args: StudyArgs, global: &Global) -> Result<()> {
    let config = if args.quick { StudyConfig::quick() } else { StudyConfig::full() };
    let start = Instant::now();
    let results = study::run(&config, &args.output, &global.cache_choice(), global.quiet)?;
    println!(
        "study of {} cells written to {} in {:.0} s (see summary.md). The defects are drawn on real textures, not photographed.",
        results.len(),
        args.output.display(),
        start.elapsed().as_secs_f64()
    );
    for check in study::report::structural_checks(&config, &results) {
        println!("  {:<13} {}: {} of {}", check.score, check.what, check.holds, check.cases);
    }
    Ok(())
}
