//! `spanwatch report`: a self-contained HTML page for a dataset.

use super::{DataArgs, Global, SolverArgs};
use anyhow::{Context, Result};
use spanwatch_calibrate::pipeline::prepare;
use spanwatch_calibrate::ranking::score_generators;
use std::path::PathBuf;

/// Arguments of `spanwatch report`.
#[derive(clap::Args)]
pub struct ReportArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    solver: SolverArgs,
    /// Bootstrap replicates over the real positives for DS intervals.
    #[arg(long, default_value_t = 200, value_name = "N")]
    bootstrap: usize,
    /// Where to write the page.
    #[arg(long, short)]
    output: PathBuf,
}

pub(super) fn run(args: ReportArgs, global: &Global) -> Result<()> {
    let prepared = prepare(&args.data.data, &args.data.model, &args.data.source(global), args.data.skip_unpaired, global.quiet)?;
    let solver = args.solver.solver();
    let rows = score_generators(&prepared, solver, args.bootstrap, 0, global.quiet)?;
    let html = spanwatch_calibrate::report_html::build(&prepared, &rows, solver, global.quiet)?;
    std::fs::write(&args.output, html).with_context(|| format!("cannot write {}", args.output.display()))?;
    println!("wrote {} ({} generators)", args.output.display(), rows.len());
    Ok(())
}
