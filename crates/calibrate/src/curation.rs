//! Curation: the synthetic samples of one generator worth keeping (written
//! as a `pairs.csv` by [`crate::dataset::write_pairs_csv`]).

use crate::metric::per_sample::{sample_utilities, select_rows};
use crate::metric::SpanFit;
use crate::progress;
use spanwatch_core::span::Solver;

/// What `filter` kept.
pub struct Curation {
    /// Indices of the kept pairs.
    pub keep: Vec<usize>,
    /// DS of the kept pairs.
    pub subset_ds: f64,
    /// DS of the whole set.
    pub full_ds: f64,
}

/// The curated subset.
///
/// With the cone (the default), removing samples can never raise DS: the cone
/// only shrinks. The samples worth keeping are its support, those with a
/// positive weight in the NNLS reconstruction of w: they reproduce the whole
/// set's DS exactly, and every other sample adds nothing toward w.
///
/// With a span solver, a subset can score higher (through the effective-rank
/// truncation): samples whose change points toward the defect side
/// (alignment > 0) and whose removal would not raise DS; if that subset does
/// not score higher than the whole set, only the second rule; if neither
/// does, the whole set.
pub fn curate(w: &[f32], fit: &SpanFit, solver: Solver, quiet: bool) -> Curation {
    let n = fit.diffs().nrows();
    let full_ds = fit.score(w, solver).ds;
    if solver == Solver::Nnls {
        let alpha = fit.cone_weights(w);
        let keep: Vec<usize> = (0..n).filter(|&i| alpha[i] > 0.0).collect();
        let subset_ds = if keep.is_empty() { 0.0 } else { SpanFit::new(select_rows(fit.diffs(), &keep)).score(w, solver).ds };
        return Curation { keep, subset_ds, full_ds };
    }
    let bar = progress::bar(n, "per-sample", quiet);
    let utilities = sample_utilities(w, fit, solver, || bar.inc(1));
    bar.finish_and_clear();
    let rules: [&dyn Fn(usize) -> bool; 2] =
        [&|i| utilities[i].alignment.is_some_and(|a| a > 0.0) && utilities[i].marginal >= 0.0, &|i| utilities[i].marginal >= 0.0];
    for rule in rules {
        let keep: Vec<usize> = (0..n).filter(|&i| rule(i)).collect();
        if !keep.is_empty() && keep.len() < n {
            let subset_ds = SpanFit::new(select_rows(fit.diffs(), &keep)).score(w, solver).ds;
            if subset_ds > full_ds {
                return Curation { keep, subset_ds, full_ds };
            }
        }
    }
    Curation { keep: (0..n).collect(), subset_ds: full_ds, full_ds }
}
