//! The span of one generator's difference vectors, and w's score against it.

use super::nnls::nnls_gram;
use super::svd::thin_svd;
use nalgebra::{DMatrix, DVector};
use spanwatch_core::span::{effective_rank, reconstruct_from_basis, Solver, SpanScore};
use std::sync::OnceLock;

/// A fitted span: the difference vectors with their SVD, effective rank k and
/// top-k basis, ready to score any probe with any solver.
pub struct SpanFit {
    diffs: DMatrix<f64>,
    singular_values: Vec<f64>,
    k: usize,
    basis: Vec<f32>,
    gram: OnceLock<DMatrix<f64>>,
}

impl SpanFit {
    /// Fits the span of the rows of `diffs` (n x d, n >= 1).
    pub fn new(diffs: DMatrix<f64>) -> SpanFit {
        let svd = thin_svd(&diffs);
        let k = effective_rank(&svd.singular_values);
        let basis = svd.right_vectors(&diffs, k).transpose().iter().map(|&v| v as f32).collect();
        SpanFit { diffs, singular_values: svd.singular_values, k, basis, gram: OnceLock::new() }
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
        let gram = self.gram.get_or_init(|| &self.diffs * self.diffs.transpose());
        let w64 = DVector::from_iterator(w.len(), w.iter().map(|&v| v as f64));
        nnls_gram(gram, &(&self.diffs * &w64))
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
                let reconstruction = self.diffs.transpose() * self.cone_weights(w);
                w_hat.iter_mut().zip(reconstruction.iter()).for_each(|(o, &v)| *o = v as f32);
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
