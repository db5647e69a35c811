//! `spanwatch filter`: the synthetic samples of one generator worth keeping.

use super::{GeneratorArgs, Global};
use crate::metric::per_sample::{sample_utilities, select_rows};
use crate::metric::SpanFit;
use crate::pipeline::prepare;
use crate::progress;
use anyhow::{Context, Result};
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

/// The curated subset: samples whose change points toward the defect side
/// (alignment > 0) and whose removal would not raise DS; if that subset does
/// not score higher than the whole set, only the second rule; if neither
/// scores higher, the whole set (and the output says so).
pub fn curate(w: &[f32], fit: &SpanFit, solver: spanwatch_core::span::Solver, quiet: bool) -> (Vec<usize>, f64, f64) {
    let n = fit.diffs().nrows();
    let bar = progress::bar(n, "per-sample", quiet);
    let utilities = sample_utilities(w, fit, solver, || bar.inc(1));
    bar.finish_and_clear();
    let full = fit.score(w, solver).ds;
    let rules: [&dyn Fn(usize) -> bool; 2] =
        [&|i| utilities[i].alignment.is_some_and(|a| a > 0.0) && utilities[i].marginal >= 0.0, &|i| utilities[i].marginal >= 0.0];
    for rule in rules {
        let keep: Vec<usize> = (0..n).filter(|&i| rule(i)).collect();
        if !keep.is_empty() && keep.len() < n {
            let subset = SpanFit::new(select_rows(fit.diffs(), &keep)).score(w, solver).ds;
            if subset > full {
                return (keep, subset, full);
            }
        }
    }
    ((0..n).collect(), full, full)
}

pub(super) fn run(args: FilterArgs, global: &Global) -> Result<()> {
    let GeneratorArgs { data, solver, generator: name } = &args.target;
    let prepared = prepare(&data.data, &data.model, &global.cache_choice(), data.skip_unpaired, global.quiet)?;
    let generator = prepared.generator(name)?;
    let solver = solver.solver();
    let fit = SpanFit::new(generator.diffs.clone());
    let (keep, subset_ds, full_ds) = curate(&prepared.probe.w, &fit, solver, global.quiet);
    let mut writer = csv::Writer::from_path(&args.output).with_context(|| format!("cannot write {}", args.output.display()))?;
    writer.write_record(["synthetic", "source"])?;
    for &i in &keep {
        let pair = &generator.pairs[i];
        let name = |p: &std::path::Path| p.file_name().unwrap_or_default().to_string_lossy().into_owned();
        writer.write_record([name(&pair.synthetic), name(&pair.source)])?;
    }
    writer.flush().with_context(|| format!("cannot write {}", args.output.display()))?;
    if keep.len() == generator.pairs.len() {
        println!(
            "no subset of {:?} scores higher than the whole set (DS {full_ds:.4}); wrote all {} pairs to {}",
            name,
            keep.len(),
            args.output.display()
        );
    } else {
        println!(
            "kept {} of {} pairs of {:?}: DS {subset_ds:.4} (whole set: DS {full_ds:.4}); wrote {}",
            keep.len(),
            generator.pairs.len(),
            name,
            args.output.display()
        );
    }
    Ok(())
}
