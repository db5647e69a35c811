//! `spanwatch score`: every generator's DS, ranked.

use super::{DataArgs, Global, SolverArgs};
use anyhow::Result;
use spanwatch_calibrate::pipeline::{prepare_with_holdout, Holdout};
use spanwatch_calibrate::ranking::{format_table, holdout_agreement, score_generators, write_per_sample, ScoreReport};
use std::path::PathBuf;

/// Arguments of `spanwatch score`.
#[derive(clap::Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    solver: SolverArgs,
    /// Bootstrap replicates over the real positives for a 95% interval on DS (0 = none).
    #[arg(long, default_value_t = 0, value_name = "N")]
    bootstrap: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Write each synthetic sample's alignment and marginal effect on DS to this CSV.
    #[arg(long, value_name = "FILE.csv")]
    per_sample: Option<PathBuf>,
    /// Check the prediction on your data: keep K real positives (and the same
    /// share of the real negatives) out of the probe, train a logistic
    /// regression per generator on the other real negatives plus its synthetic
    /// positives, and report its F1 and AUROC on the held-out real images.
    #[arg(long, value_name = "K")]
    holdout: Option<usize>,
}

pub(super) fn run(args: ScoreArgs, global: &Global) -> Result<()> {
    let holdout = args.holdout.map(|positives| Holdout { positives, seed: args.seed });
    let prepared =
        prepare_with_holdout(&args.data.data, &args.data.model, &args.data.source(global), args.data.skip_unpaired, holdout, global.quiet)?;
    let solver = args.solver.solver();
    let rows = score_generators(&prepared, solver, args.bootstrap, args.seed, global.quiet)?;
    if let Some(path) = &args.per_sample {
        write_per_sample(path, &prepared, solver, global.quiet)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&ScoreReport::new(&prepared, solver, args.bootstrap, rows))?);
    } else {
        println!(
            "model {} ({}..), d = {}, solver {}, {} real negatives, {} real positives",
            prepared.model.name,
            prepared.model.short_id(),
            prepared.model.dim,
            solver.name(),
            prepared.negatives.len(),
            prepared.positives.len()
        );
        print!("{}", format_table(&rows));
        if let Some(held) = &prepared.held_out {
            let agreement = holdout_agreement(&rows).map_or("n/a (fewer than 3 generators)".into(), |rho| format!("{rho:+.2}"));
            println!(
                "held out of the probe: {} real negatives and {} real positives; Spearman rho between DS and held-out F1 over {} generators: {agreement}",
                held.negatives.len(),
                held.positives.len(),
                rows.len()
            );
        }
    }
    Ok(())
}
