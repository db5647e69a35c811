//! `spanwatch filter`: the synthetic samples of one generator worth keeping.

use super::{GeneratorArgs, Global};
use anyhow::Result;
use spanwatch_calibrate::curation::{curate, Curation};
use spanwatch_calibrate::dataset::write_pairs_csv;
use spanwatch_calibrate::metric::SpanFit;
use spanwatch_calibrate::pipeline::prepare_generator;
use spanwatch_core::span::Solver;
use std::path::PathBuf;

/// Arguments of `spanwatch filter`.
#[derive(clap::Args)]
pub struct FilterArgs {
    /// The generator to curate.
    #[command(flatten)]
    target: GeneratorArgs,
    /// Where to write the kept pairs, as a pairs.csv (synthetic,source).
    #[arg(long, short)]
    output: PathBuf,
}

pub(super) fn run(args: FilterArgs, global: &Global) -> Result<()> {
    let GeneratorArgs { data, solver, generator: name } = &args.target;
    let prepared = prepare_generator(&data.data, &data.model, &data.source(global), data.skip_unpaired, name, global.quiet)?;
    let generator = prepared.generator(name)?;
    let solver = solver.solver();
    let fit = SpanFit::new(generator.diffs.clone());
    let Curation { keep, subset_ds, full_ds } = curate(&prepared.probe.w, &fit, solver, global.quiet);
    write_pairs_csv(&args.output, keep.iter().map(|&i| &generator.pairs[i]))?;
    let n = generator.pairs.len();
    let destination = args.output.display();
    if solver == Solver::Nnls {
        println!(
            "kept {} of {n} pairs of {name:?}: the support of the cone reproduces its DS ({subset_ds:.4}; whole set {full_ds:.4}), \
             the other {} add nothing toward w; wrote {destination}",
            keep.len(),
            n - keep.len()
        );
    } else if keep.len() == n {
        println!("no subset of {name:?} scores higher than the whole set (DS {full_ds:.4}); wrote all {n} pairs to {destination}");
    } else {
        println!("kept {} of {n} pairs of {name:?}: DS {subset_ds:.4} (whole set: DS {full_ds:.4}); wrote {destination}", keep.len());
    }
    Ok(())
}
