//! Scoring the reference probe w against a span of difference vectors.
//!
//! The span is given by its top-k right singular vectors V_k (rows of a
//! row-major k x d slice, orthonormal) and singular values s_1..s_k. From them
//! w is reconstructed as w_hat = V_k diag(f(s_j)) V_k^T w, with f = 1 for the
//! exact truncated projection ([`Solver::Lstsq`]) and f = s^2 / (s^2 + lambda)
//! for [`Solver::Ridge`]. The cone solver ([`Solver::Nnls`]) needs the
//! difference vectors themselves and is computed by the host.
//!
//! The score is the discriminative span DS = 1 - ||w - w_hat|| / ||w||,
//! reported with the chance level of a random k-dimensional span (which
//! captures k/d of ||w||^2 in expectation) and a chance-corrected capture.

use crate::vector::{distance2, dot, norm};
use serde::{Deserialize, Serialize};

/// How w is reconstructed from the difference vectors.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Solver {
    /// Ridge-shrunk projection onto the top-k singular directions (the paper's default).
    Ridge {
        /// The ridge parameter; the paper uses 0.01.
        lambda: f64,
    },
    /// Exact projection onto the top-k singular directions.
    Lstsq,
    /// Non-negative combination of the difference vectors (the sign-aware cone).
    Nnls,
}

impl Solver {
    /// Short lower-case name as used on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Solver::Ridge { .. } => "ridge",
            Solver::Lstsq => "lstsq",
            Solver::Nnls => "nnls",
        }
    }

    /// The ridge parameter of the ridge span this solver's scores report:
    /// its own for ridge, 0 for lstsq, and the paper's 0.01 for the cone
    /// (whose window reports the paper's ridge span beside the cone).
    pub fn ridge_lambda(&self) -> f64 {
        match *self {
            Solver::Ridge { lambda } => lambda,
            Solver::Lstsq => 0.0,
            Solver::Nnls => 0.01,
        }
    }

    /// The shrinkage applied along a singular direction with singular value
    /// `s`, or `None` for a solver that does not work on the basis (NNLS).
    pub fn shrinkage(&self, s: f64) -> Option<f64> {
        match *self {
            Solver::Ridge { lambda } => Some(if s * s + lambda > 0.0 { s * s / (s * s + lambda) } else { 0.0 }),
            // A zero singular value spans nothing, whatever its vector.
            Solver::Lstsq => Some(if s > 0.0 { 1.0 } else { 0.0 }),
            Solver::Nnls => None,
        }
    }
}

/// Effective rank of a spectrum: k = floor(exp(H)) with H the Shannon entropy
/// of p_j = s_j / sum(s), at least 1. Zero singular values contribute nothing;
/// an all-zero spectrum has effective rank 1.
pub fn effective_rank(singular_values: &[f64]) -> usize {
    let total: f64 = singular_values.iter().filter(|s| **s > 0.0).sum();
    if !(total > 0.0) {
        return 1;
    }
    let entropy: f64 = singular_values
        .iter()
        .filter(|s| **s > 0.0)
        .map(|&s| {
            let p = s / total;
            -p * libm::log(p)
        })
        .sum();
    // A tiny epsilon keeps an exact integer (e.g. k equal singular values)
    // from flooring to k - 1 through round-off.
    let k = libm::floor(libm::exp(entropy) + 1e-9) as usize;
    k.clamp(1, singular_values.len().max(1))
}

/// Writes w_hat = V_k diag(f(s_j)) V_k^T w into `w_hat`, where `basis` holds k
/// orthonormal rows of length d = `w.len()` and `singular_values` their k
/// singular values. Returns `None` for [`Solver::Nnls`], which needs the
/// difference vectors rather than their basis.
pub fn reconstruct_from_basis(w: &[f32], basis: &[f32], singular_values: &[f32], solver: Solver, w_hat: &mut [f32]) -> Option<()> {
    let d = w.len();
    debug_assert_eq!(basis.len(), d * singular_values.len());
    debug_assert_eq!(w_hat.len(), d);
    w_hat.iter_mut().for_each(|x| *x = 0.0);
    for (row, &s) in basis.chunks_exact(d).zip(singular_values) {
        let coefficient = solver.shrinkage(s as f64)? * dot(row, w);
        for (o, &v) in w_hat.iter_mut().zip(row) {
            *o += (coefficient * v as f64) as f32;
        }
    }
    Some(())
}

/// The scores of one reconstruction of w.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SpanScore {
    /// Relative projection error ||w - w_hat|| / ||w||.
    pub rpe: f64,
    /// Discriminative span 1 - RPE.
    pub ds: f64,
    /// Captured share of the probe's energy, ||w_hat||^2 / ||w||^2.
    pub capture: f64,
    /// DS that a random span of the same dimension reaches in expectation,
    /// 1 - sqrt(1 - k/d).
    pub chance_ds: f64,
    /// Chance-corrected capture (capture - k/d) / (1 - k/d): 0 for a random
    /// span, 1 for a span that holds w exactly.
    pub corrected: f64,
}

impl SpanScore {
    /// Scores `w_hat` as a reconstruction of `w` by a span of dimension `k`
    /// in d = `w.len()` dimensions. A zero `w` scores as no span at all.
    pub fn new(w: &[f32], w_hat: &[f32], k: usize) -> SpanScore {
        SpanScore::from_norms(dot(w, w), distance2(w, w_hat), dot(w_hat, w_hat), k, w.len())
    }

    /// The same scores from squared norms: ||w||^2, ||w - w_hat||^2 and
    /// ||w_hat||^2, for a span of dimension `k` in `d` dimensions (the
    /// tracker knows these from its Gram matrix without forming w_hat).
    pub fn from_norms(w_norm2: f64, residual2: f64, w_hat_norm2: f64, k: usize, d: usize) -> SpanScore {
        let chance = (k as f64 / d.max(1) as f64).min(1.0);
        let (rpe, capture) = if w_norm2 > 0.0 { (libm::sqrt(residual2.max(0.0) / w_norm2), w_hat_norm2 / w_norm2) } else { (1.0, 0.0) };
        let corrected = if chance < 1.0 { (capture - chance) / (1.0 - chance) } else { 0.0 };
        SpanScore { rpe, ds: 1.0 - rpe, capture, chance_ds: 1.0 - libm::sqrt(1.0 - chance), corrected }
    }
}

/// Cosine between the probe `w` and a difference vector `d`: how directly the
/// synthetic change moves the embedding toward the defect side. `None` when
/// either vector is zero.
pub fn alignment(w: &[f32], d: &[f32]) -> Option<f64> {
    let denominator = norm(w) * norm(d);
    (denominator > 0.0).then(|| dot(w, d) / denominator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_rank_of_flat_and_peaked_spectra() {
        assert_eq!(effective_rank(&[1.0, 1.0, 1.0, 1.0]), 4);
        assert_eq!(effective_rank(&[5.0, 0.0, 0.0]), 1);
        assert_eq!(effective_rank(&[0.0, 0.0]), 1);
        // p = (0.5, 0.25, 0.25): H = 1.5 ln 2, exp(H) = 2.83
        assert_eq!(effective_rank(&[2.0, 1.0, 1.0]), 2);
    }

    #[test]
    fn projection_onto_axis_basis() {
        // w = (3, 4, 0); basis = e1 -> w_hat = (3, 0, 0), RPE = 4/5.
        let w = [3.0, 4.0, 0.0];
        let basis = [1.0, 0.0, 0.0];
        let mut w_hat = [0.0; 3];
        reconstruct_from_basis(&w, &basis, &[10.0], Solver::Lstsq, &mut w_hat).unwrap();
        assert_eq!(w_hat, [3.0, 0.0, 0.0]);
        let score = SpanScore::new(&w, &w_hat, 1);
        assert!((score.rpe - 0.8).abs() < 1e-12);
        assert!((score.ds - 0.2).abs() < 1e-12);
        assert!((score.capture - 0.36).abs() < 1e-6);
        assert!((score.chance_ds - (1.0 - (2.0f64 / 3.0).sqrt())).abs() < 1e-12);
        assert!((score.corrected - (0.36 - 1.0 / 3.0) / (2.0 / 3.0)).abs() < 1e-6);
    }

    #[test]
    fn ridge_shrinks_by_singular_value() {
        let w = [1.0, 0.0];
        let basis = [1.0, 0.0];
        let mut w_hat = [0.0; 2];
        reconstruct_from_basis(&w, &basis, &[0.1], Solver::Ridge { lambda: 0.01 }, &mut w_hat).unwrap();
        assert!((w_hat[0] - 0.5).abs() < 1e-6);
        assert!(reconstruct_from_basis(&w, &basis, &[0.1], Solver::Nnls, &mut w_hat).is_none());
        reconstruct_from_basis(&w, &basis, &[0.0], Solver::Lstsq, &mut w_hat).unwrap();
        assert_eq!(w_hat, [0.0, 0.0], "a zero singular value must not admit its direction");
    }

    #[test]
    fn alignment_sign_and_zero() {
        assert_eq!(alignment(&[1.0, 0.0], &[-2.0, 0.0]), Some(-1.0));
        assert_eq!(alignment(&[1.0, 0.0], &[0.0, 0.0]), None);
    }
}
