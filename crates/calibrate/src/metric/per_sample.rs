//! Per-sample utility: how each synthetic sample's difference vector lines up
//! with the probe, and what it adds to the set's score (leave-one-out).

use super::score::SpanFit;
use nalgebra::DMatrix;
use spanwatch_core::span::{alignment, Solver};

/// What one synthetic sample contributes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SampleUtility {
    /// Cosine of w and the sample's difference vector (`None` for a zero vector).
    pub alignment: Option<f64>,
    /// DS of the whole set minus DS of the set without this sample.
    pub marginal: f64,
}

/// The utility of every row of `fit`'s difference vectors, by exact
/// leave-one-out (one SVD per sample).
pub fn sample_utilities(w: &[f32], fit: &SpanFit, solver: Solver, mut on_progress: impl FnMut()) -> Vec<SampleUtility> {
    let full = fit.score(w, solver).ds;
    let diffs = fit.diffs();
    (0..diffs.nrows())
        .map(|i| {
            let row: Vec<f32> = diffs.row(i).iter().map(|&v| v as f32).collect();
            let without = if diffs.nrows() > 1 { SpanFit::new(diffs.clone().remove_row(i)).score(w, solver).ds } else { 0.0 };
            on_progress();
            SampleUtility { alignment: alignment(w, &row), marginal: full - without }
        })
        .collect()
}

/// The rows of `diffs` listed in `keep`, as a new matrix.
pub fn select_rows(diffs: &DMatrix<f64>, keep: &[usize]) -> DMatrix<f64> {
    DMatrix::from_fn(keep.len(), diffs.ncols(), |i, j| diffs[(keep[i], j)])
}
