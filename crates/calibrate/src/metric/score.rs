//! The span of one generator's difference vectors, and w's score against it.

use super::nnls::{max_row_norm, nnls};
use super::svd::thin_svd;
use nalgebra::{DMatrix, DVector};
use spanwatch_core::span::{effective_rank, reconstruct_from_basis, Solver, SpanScore};
use std::sync::{Arc, OnceLock};

/// A fitted span: the difference vectors with their SVD, effective rank k and
/// top-k basis, ready to score any probe with any solver.
pub struct SpanFit {
    diffs: Arc<DMatrix<f64>>,
    singular_values: Vec<f64>,
    k: usize,
    basis: Vec<f32>,
    /// The cone's support for the first probe scored: where later NNLS solves start.
    support: OnceLock<Vec<usize>>,
    /// The largest norm of a difference vector (the NNLS tolerance's scale).
    max_row_norm: OnceLock<f64>,
}

impl SpanFit {
    /// Fits the span of the rows of `diffs` (n x d, n >= 1); shares the matrix, no copy.
    pub fn new(diffs: impl Into<Arc<DMatrix<f64>>>) -> SpanFit {
        let diffs = diffs.into();
        let svd = thin_svd(&diffs);
        let k = effective_rank(&svd.singular_values);
        let basis = svd.right_vectors(&diffs, k).transpose().iter().map(|&v| v as f32).collect();
        SpanFit { diffs, singular_values: svd.singular_values, k, basis, support: OnceLock::new(), max_row_norm: OnceLock::new() }
    }

    /// Effective rank k.
    pub fn k(&self) -> usize {
        self.k
    }

    /// All singular values, descending.
    pub fn singular_values(&self) -> &[f64] {
        &self.singular_values
    }

    /// The top-k right singular vectors, row-major k x d, f32 (as in the bundle).
    pub fn basis(&self) -> &[f32] {
        &self.basis
    }

    /// The difference vectors, one per row.
    pub fn diffs(&self) -> &DMatrix<f64> {
        &self.diffs
    }

    /// True when every difference vector is zero: the span is empty.
    pub fn is_empty(&self) -> bool {
        self.singular_values.first().is_none_or(|&s| s == 0.0)
    }

    /// The non-negative weights alpha of the difference vectors that best
    /// reconstruct w (the cone solution); zero for the vectors the cone does not use.
    pub fn cone_weights(&self, w: &[f32]) -> DVector<f64> {
        let w64: Vec<f64> = w.iter().map(|&v| v as f64).collect();
        let max_row_norm = *self.max_row_norm.get_or_init(|| max_row_norm(&self.diffs));
        let alpha = nnls(&self.diffs, &w64, self.support.get().map_or(&[], |s| s.as_slice()), max_row_norm);
        self.support.get_or_init(|| (0..alpha.len()).filter(|&i| alpha[i] > 0.0).collect());
        alpha
    }

    /// Reconstructs w from the span with `solver` and scores it.
    pub fn score(&self, w: &[f32], solver: Solver) -> SpanScore {
        let mut w_hat = vec![0f32; w.len()];
        match solver {
            Solver::Ridge { .. } | Solver::Lstsq => {
                let top_k: Vec<f32> = self.singular_values[..self.k].iter().map(|&s| s as f32).collect();
                reconstruct_from_basis(w, &self.basis, &top_k, solver, &mut w_hat).expect("basis solvers");
            }
            Solver::Nnls => {
                // Only the support's rows: one pass over the matrix would cost more than the solve.
                let alpha = self.cone_weights(w);
                let mut reconstruction = vec![0f64; w.len()];
                for (i, &weight) in alpha.iter().enumerate().filter(|(_, &weight)| weight > 0.0) {
                    reconstruction.iter_mut().zip(self.diffs.row(i).iter()).for_each(|(r, &v)| *r += weight * v);
                }
                w_hat.iter_mut().zip(&reconstruction).for_each(|(o, &v)| *o = v as f32);
            }
        }
        SpanScore::new(w, &w_hat, self.k)
    }
}

/// Fits the span of `diffs` and scores `w` with `solver` in one go.
pub fn score_span(w: &[f32], diffs: DMatrix<f64>, solver: Solver) -> (SpanFit, SpanScore) {
    let fit = SpanFit::new(diffs);
    let score = fit.score(w, solver);
    (fit, score)
}
