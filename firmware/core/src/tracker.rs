//! The streaming span tracker: the discriminative span of the last W
//! synthetic-defect difference vectors, updated pair by pair in fixed memory.
//!
//! Design: a ring of the last W difference vectors with their W x W Gram
//! matrix, rather than a rank-capped incremental SVD with forgetting. Each
//! new pair costs W dot products of length D to update one row and column of
//! the Gram matrix, and every score comes from the Gram matrix and the W dot
//! products with w alone. The ridge span comes from its eigendecomposition
//! (the singular values of the window are the square roots of its
//! eigenvalues, and v_j . w = u_j . h / s_j). The cone comes from NNLS on it,
//! warm-started from the previous pair's weights. So the window's scores are
//! exactly the host's batch scores for the same vectors (no forgetting
//! factor to approximate, nothing to drift), and memory is W x D floats plus
//! W x W doubles, fixed at compile time.
//!
//! The ring starts seeded with the bundle's reference basis (s_j v_j, signs
//! oriented by the calibration data), so the first pairs are judged against
//! calibration; real pairs push the seeds out first.

use crate::gram::{nnls, symmetric_eigen, Square};
use crate::span::{effective_rank, SpanScore};
use crate::vector::dot;

/// The scores of the current window.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct WindowScores {
    /// Ridge span DS (the paper's score).
    pub ridge: SpanScore,
    /// Cone DS (non-negative least squares; the default score).
    pub cone: SpanScore,
    /// Effective rank of the window.
    pub k: usize,
    /// Vectors in the window (seeds included).
    pub window: usize,
    /// Seed vectors still in the window.
    pub seeds: usize,
}

/// What the tracker says about one new pair.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PairReport {
    /// Cosine of w and the pair's difference vector (`None` for a zero change).
    pub alignment: Option<f64>,
    /// Share of the difference vector's energy outside the window's span
    /// before it was added (1 for an empty window or a zero change).
    pub novelty: f64,
    /// The window's scores after adding the pair.
    pub scores: WindowScores,
    /// Real pairs seen so far.
    pub pairs: u32,
}

/// A span tracker for D-dimensional difference vectors over a window of W.
pub struct SpanTracker<const D: usize, const W: usize> {
    w: [f32; D],
    w_norm2: f64,
    lambda: f64,
    ring: [[f32; D]; W],
    seed: [bool; W],
    gram: Square<W>,
    h: [f64; W],
    alpha: [f64; W],
    len: usize,
    next: usize,
    pairs: u32,
}

impl<const D: usize, const W: usize> SpanTracker<D, W> {
    /// An empty tracker for probe `w` (standardized space) and ridge `lambda`.
    pub fn new(w: &[f32; D], lambda: f64) -> Self {
        SpanTracker {
            w: *w,
            w_norm2: dot(w, w),
            lambda,
            ring: [[0.0; D]; W],
            seed: [false; W],
            gram: [[0.0; W]; W],
            h: [0.0; W],
            alpha: [0.0; W],
            len: 0,
            next: 0,
            pairs: 0,
        }
    }

    /// Adds a seed vector (e.g. s_j v_j of the reference basis). Seeds are
    /// pushed out of the window before any real pair.
    pub fn seed(&mut self, vector: &[f32; D]) {
        self.insert(vector, true);
    }

    /// Adds one pair's standardized difference vector and reports on it.
    pub fn push(&mut self, d: &[f32; D]) -> PairReport {
        let alignment = crate::span::alignment(&self.w, d);
        let novelty = self.novelty(d);
        self.insert(d, false);
        self.pairs = self.pairs.saturating_add(1);
        PairReport { alignment, novelty, scores: self.scores(), pairs: self.pairs }
    }

    /// Real pairs seen so far.
    pub fn pairs(&self) -> u32 {
        self.pairs
    }

    /// Puts `vector` in the slot of the oldest entry (seeds go first) and
    /// updates the Gram matrix and the dot products with w.
    fn insert(&mut self, vector: &[f32; D], is_seed: bool) {
        let slot = if self.len < W {
            self.len += 1;
            self.len - 1
        } else {
            // The oldest seed if any is left, else the oldest real pair.
            (0..W).map(|i| (self.next + i) % W).find(|&i| self.seed[i]).unwrap_or(self.next)
        };
        self.ring[slot] = *vector;
        self.seed[slot] = is_seed;
        for i in 0..self.len {
            let g = dot(&self.ring[i], vector);
            self.gram[slot][i] = g;
            self.gram[i][slot] = g;
        }
        self.h[slot] = dot(vector, &self.w);
        self.alpha[slot] = 0.0;
        if self.len == W && slot == self.next {
            self.next = (self.next + 1) % W;
        }
    }

    /// Share of `d` outside the span of the window: 1 - d^T P d / d^T d with
    /// P the projection onto the window, from the pseudo-inverse of its Gram.
    fn novelty(&self, d: &[f32; D]) -> f64 {
        let energy = dot(d, d);
        if self.len == 0 || energy <= 0.0 {
            return 1.0;
        }
        let mut g = [0.0; W];
        for (i, gi) in g.iter_mut().enumerate().take(self.len) {
            *gi = dot(&self.ring[i], d);
        }
        let (mut values, mut vectors) = ([0.0; W], [[0.0; W]; W]);
        symmetric_eigen(&self.gram, self.len, &mut values, &mut vectors);
        let floor = values[0].max(0.0) * 1e-10;
        let inside: f64 = (0..self.len)
            .filter(|&j| values[j] > floor)
            .map(|j| {
                let c: f64 = (0..self.len).map(|i| vectors[i][j] * g[i]).sum();
                c * c / values[j]
            })
            .sum();
        (1.0 - inside / energy).clamp(0.0, 1.0)
    }

    /// The current window's ridge and cone scores.
    pub fn scores(&mut self) -> WindowScores {
        let n = self.len;
        let (mut values, mut vectors) = ([0.0; W], [[0.0; W]; W]);
        symmetric_eigen(&self.gram, n, &mut values, &mut vectors);
        let mut singular = [0.0; W];
        for j in 0..n {
            singular[j] = libm::sqrt(values[j].max(0.0));
        }
        let k = effective_rank(&singular[..n.max(1)]).min(n.max(1));
        // Ridge: with c_j = v_j . w = u_j . h / s_j and f_j = s^2 / (s^2 + lambda),
        // w . w_hat = sum f_j c_j^2 and ||w_hat||^2 = sum f_j^2 c_j^2.
        let (mut along, mut hat2) = (0.0, 0.0);
        for j in 0..k.min(n) {
            if singular[j] > 0.0 {
                let c = (0..n).map(|i| vectors[i][j] * self.h[i]).sum::<f64>() / singular[j];
                let f = values[j] / (values[j] + self.lambda);
                along += f * c * c;
                hat2 += f * f * c * c;
            }
        }
        let ridge = SpanScore::from_norms(self.w_norm2, self.w_norm2 - 2.0 * along + hat2, hat2, k, D);
        // Cone: ||w - A^T alpha||^2 = ||w||^2 - 2 h . alpha + alpha^T G alpha.
        nnls(&self.gram, &self.h, n, &mut self.alpha);
        let h_alpha: f64 = (0..n).map(|i| self.h[i] * self.alpha[i]).sum();
        let quad: f64 = (0..n).map(|i| self.alpha[i] * (0..n).map(|j| self.gram[i][j] * self.alpha[j]).sum::<f64>()).sum();
        let cone = SpanScore::from_norms(self.w_norm2, self.w_norm2 - 2.0 * h_alpha + quad, quad, k, D);
        WindowScores { ridge, cone, k, window: n, seeds: self.seed[..n].iter().filter(|&&s| s).count() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_keeps_the_last_w_vectors_and_evicts_seeds_first() {
        let w = [1.0, 0.0, 0.0];
        let mut tracker = SpanTracker::<3, 2>::new(&w, 0.01);
        tracker.seed(&[0.0, 0.0, 2.0]);
        let first = tracker.push(&[0.0, 1.0, 0.0]);
        assert_eq!((first.scores.window, first.scores.seeds), (2, 1));
        assert_eq!(first.alignment, Some(0.0));
        assert_eq!(first.novelty, 1.0, "orthogonal to the seed");
        // The seed goes first: the window is now e2 and e1, which holds w exactly.
        let second = tracker.push(&[3.0, 0.0, 0.0]);
        assert_eq!((second.scores.window, second.scores.seeds), (2, 0));
        assert!((second.scores.cone.ds - 1.0).abs() < 1e-12);
        // A vector against the defect direction cannot help the cone, but spans w for ridge.
        let third = tracker.push(&[-1.0, 0.0, 0.0]);
        assert_eq!(third.alignment, Some(-1.0));
        assert_eq!(third.novelty, 0.0, "already in the span");
        assert_eq!(third.pairs, 3);
        assert!((third.scores.cone.ds - 1.0).abs() < 1e-12, "e1 (3, 0, 0) is still in the window");
        let fourth = tracker.push(&[0.0, 0.0, 1.0]);
        assert!(fourth.scores.cone.ds.abs() < 1e-12, "the cone of -e1 and e3 holds nothing of e1");
        assert!(fourth.scores.ridge.ds > 0.9, "the span of -e1 and e3 holds e1: {}", fourth.scores.ridge.ds);
    }
}
