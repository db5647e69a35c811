//! `spanwatch demo`: the main job end to end on bundled real textures.

use super::score::{format_table, score_generators};
use super::Global;
use crate::demo::{build, DemoSize};
use crate::pipeline::prepare;
use anyhow::Result;
use spanwatch_core::span::Solver;
use std::path::PathBuf;

/// Arguments of `spanwatch demo`.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// Folder for the demo dataset (rewritten if it is an earlier demo folder).
    #[arg(long, default_value = "spanwatch-demo")]
    out: PathBuf,
    /// Embedding model: a bundled name or a manifest path.
    #[arg(long, default_value = spanwatch_embed::manifest::DEFAULT_MODEL)]
    model: String,
    /// Bootstrap replicates over the real positives.
    #[arg(long, default_value_t = 200)]
    bootstrap: usize,
    /// Seed of the drawn defects and the bootstrap.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

pub(super) fn run(args: DemoArgs, global: &Global) -> Result<()> {
    let size = DemoSize::default();
    let data = build(&args.out, size, args.seed)?;
    println!(
        "demo data in {}: {} real negative tiles of real CC0 textures, {} real positives with DRAWN scratches,\n\
         5 synthetic generators x {} pairs made from the negatives. The defects are drawn, not photographed:\n\
         this is a controlled benchmark, like the seed paper's watermark set, not evidence on real defect data.\n",
        data.display(),
        size.negatives,
        size.positives,
        size.pairs
    );
    let prepared = prepare(&data, &args.model, &global.cache_choice(), false, global.quiet)?;
    // The default score, as the validation study chose it (docs/validation.md).
    let solver = Solver::Nnls;
    let rows = score_generators(&prepared, solver, args.bootstrap, args.seed, global.quiet)?;
    println!(
        "model {} ({}..), d = {}, solver {} (the sign-aware cone), 95% CI from {} bootstrap replicates over the real positives",
        prepared.model.name,
        &prepared.model.sha256[..12],
        prepared.model.dim,
        solver.name(),
        args.bootstrap
    );
    print!("{}", format_table(&rows));
    println!(
        "\nDS = 1 - ||w - w_hat|| / ||w||: how much of the real-data probe w the synthetic changes span.\n\
         chance = DS of a random span of the same rank k; corrected = captured share above chance;\n\
         align = mean cosine of w and the changes; opposed = changes pointing away from the defect side.\n\
         Next: spanwatch score {0} --solver ridge (the paper's span) | spanwatch report {0} -o report.html\n      \
         | spanwatch calibrate {0} --generator faithful -o faithful.bundle",
        data.display()
    );
    Ok(())
}
