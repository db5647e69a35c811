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

use crate::bundle::AlertStatistic;
use crate::gram::{nnls, symmetric_eigen, Square};
use crate::span::{effective_rank, Solver, SpanScore};
use crate::vector::dot;

/// The largest window the edge monitor compiles its trackers for; bundles
/// ask for a window of at most this many pairs.
pub const WINDOW_CAPACITY: usize = 64;

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
    /// Mean alignment with w of the real pairs in the window (a pair
    /// without change counts 0; 0 before the first pair).
    pub mean_alignment: f64,
}

impl WindowScores {
    /// The score `solver` asks for: the cone for NNLS, else the ridge span
    /// (which the tracker computes with the solver's lambda, 0 for lstsq).
    pub fn of(&self, solver: Solver) -> SpanScore {
        match solver {
            Solver::Nnls => self.cone,
            Solver::Ridge { .. } | Solver::Lstsq => self.ridge,
        }
    }

    /// The value the alert `statistic` watches, for the bundle's `solver`.
    pub fn statistic(&self, statistic: AlertStatistic, solver: Solver) -> f64 {
        match statistic {
            AlertStatistic::Span => self.of(solver).ds,
            AlertStatistic::MeanAlignment => self.mean_alignment,
        }
    }
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

/// Why a tracker cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TrackerError {
    /// The requested window is 0 or larger than the compiled capacity W.
    Window {
        /// The window asked for.
        requested: usize,
        /// The capacity W.
        capacity: usize,
    },
}

impl core::fmt::Display for TrackerError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TrackerError::Window { requested, capacity } => {
                write!(f, "window of {requested} pairs is outside 1..={capacity} (the tracker's compiled capacity)")
            }
        }
    }
}

/// A span tracker for D-dimensional difference vectors over a window of at
/// most W (the compiled capacity; the bundle's window may be smaller).
pub struct SpanTracker<const D: usize, const W: usize> {
    w: [f32; D],
    w_norm2: f64,
    lambda: f64,
    window: usize,
    ring: [[f32; D]; W],
    seed: [bool; W],
    alignment: [f64; W],
    gram: Square<W>,
    h: [f64; W],
    alpha: [f64; W],
    /// The spectrum of the current window, if it is up to date (the last
    /// push's scores computed it; novelty of the next pair reuses it).
    spectrum: Option<Spectrum<W>>,
    len: usize,
    next: usize,
    pairs: u32,
}

impl<const D: usize, const W: usize> SpanTracker<D, W> {
    /// An empty tracker for probe `w` (standardized space), ridge `lambda`,
    /// scoring the last `window` (1..=W) vectors.
    pub fn new(w: &[f32; D], lambda: f64, window: usize) -> Result<Self, TrackerError> {
        if window == 0 || window > W {
            return Err(TrackerError::Window { requested: window, capacity: W });
        }
        Ok(SpanTracker {
            w: *w,
            w_norm2: dot(w, w),
            lambda,
            window,
            ring: [[0.0; D]; W],
            seed: [false; W],
            alignment: [0.0; W],
            gram: [[0.0; W]; W],
            h: [0.0; W],
            alpha: [0.0; W],
            spectrum: None,
            len: 0,
            next: 0,
            pairs: 0,
        })
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
        let slot = self.insert(d, false);
        self.alignment[slot] = alignment.unwrap_or(0.0);
        self.pairs = self.pairs.saturating_add(1);
        PairReport { alignment, novelty, scores: self.scores(), pairs: self.pairs }
    }

    /// Real pairs seen so far.
    pub fn pairs(&self) -> u32 {
        self.pairs
    }

    /// Puts `vector` in the slot of the oldest entry (seeds go first),
    /// updates the Gram matrix and the dot products with w, and returns the slot.
    fn insert(&mut self, vector: &[f32; D], is_seed: bool) -> usize {
        let slot = if self.len < self.window {
            self.len += 1;
            self.len - 1
        } else {
            // The oldest seed if any is left, else the oldest real pair.
            (0..self.window).map(|i| (self.next + i) % self.window).find(|&i| self.seed[i]).unwrap_or(self.next)
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
        self.spectrum = None;
        if self.len == self.window && slot == self.next {
            self.next = (self.next + 1) % self.window;
        }
        slot
    }

    /// Share of `d` outside the span of the window: 1 - d^T P d / d^T d with
    /// P the projection onto the window, from the pseudo-inverse of its Gram.
    fn novelty(&mut self, d: &[f32; D]) -> f64 {
        let energy = dot(d, d);
        if self.len == 0 || energy <= 0.0 {
            return 1.0;
        }
        let mut g = [0.0; W];
        for (i, gi) in g.iter_mut().enumerate().take(self.len) {
            *gi = dot(&self.ring[i], d);
        }
        let (gram, len) = (&self.gram, self.len);
        let spectrum = self.spectrum.get_or_insert_with(|| Spectrum::of(gram, len));
        let floor = spectrum.values[0].max(0.0) * 1e-10;
        let inside: f64 = (0..self.len)
            .filter(|&j| spectrum.values[j] > floor)
            .map(|j| {
                let c: f64 = (0..self.len).map(|i| spectrum.vectors[i][j] * g[i]).sum();
                c * c / spectrum.values[j]
            })
            .sum();
        (1.0 - inside / energy).clamp(0.0, 1.0)
    }

    /// The current window's ridge and cone scores.
    pub fn scores(&mut self) -> WindowScores {
        let n = self.len;
        let (gram, h) = (&self.gram, &self.h);
        let spectrum = self.spectrum.get_or_insert_with(|| Spectrum::of(gram, n));
        let ridge = ridge_score(spectrum, h, n, self.w_norm2, self.lambda, D);
        let k = spectrum.k;
        let cone = cone_score(&self.gram, &self.h, n, self.w_norm2, k, D, &mut self.alpha);
        let seeds = self.seed[..n].iter().filter(|&&s| s).count();
        let real: f64 = (0..n).filter(|&i| !self.seed[i]).map(|i| self.alignment[i]).sum();
        let mean_alignment = if n > seeds { real / (n - seeds) as f64 } else { 0.0 };
        WindowScores { ridge, cone, k, window: n, seeds, mean_alignment }
    }
}

/// The eigendecomposition of a window's Gram matrix: eigenvalues
/// (descending, the squared singular values of the window), eigenvectors
/// (columns) and the effective rank k.
pub struct Spectrum<const W: usize> {
    /// Eigenvalues, descending.
    pub values: [f64; W],
    /// Eigenvectors as columns, in the same order.
    pub vectors: Square<W>,
    /// Effective rank of the window (1 for an empty window).
    pub k: usize,
}

impl<const W: usize> Spectrum<W> {
    /// The spectrum of the top-left n x n of `gram`.
    pub fn of(gram: &Square<W>, n: usize) -> Spectrum<W> {
        let (mut values, mut vectors) = ([0.0; W], [[0.0; W]; W]);
        symmetric_eigen(gram, n, &mut values, &mut vectors);
        let mut singular = [0.0; W];
        for j in 0..n {
            singular[j] = libm::sqrt(values[j].max(0.0));
        }
        let k = effective_rank(&singular[..n.max(1)]).min(n.max(1));
        Spectrum { values, vectors, k }
    }
}

/// The ridge span score of a window of n vectors in d dimensions from its
/// spectrum and h = A w (A: the window's rows). With c_j = v_j . w =
/// u_j . h / s_j and f_j = s^2 / (s^2 + lambda), w . w_hat = sum f_j c_j^2
/// and ||w_hat||^2 = sum f_j^2 c_j^2 over the top k directions.
pub fn ridge_score<const W: usize>(spectrum: &Spectrum<W>, h: &[f64; W], n: usize, w_norm2: f64, lambda: f64, d: usize) -> SpanScore {
    let (mut along, mut hat2) = (0.0, 0.0);
    for j in 0..spectrum.k.min(n) {
        let s2 = spectrum.values[j];
        if s2 > 0.0 {
            let c = (0..n).map(|i| spectrum.vectors[i][j] * h[i]).sum::<f64>() / libm::sqrt(s2);
            let f = s2 / (s2 + lambda);
            along += f * c * c;
            hat2 += f * f * c * c;
        }
    }
    SpanScore::from_norms(w_norm2, w_norm2 - 2.0 * along + hat2, hat2, spectrum.k, d)
}

/// The cone score of a window of n vectors from its Gram matrix and h = A w:
/// NNLS warm-started from (and leaving its solution in) `alpha`, then
/// ||w - A^T alpha||^2 = ||w||^2 - 2 h . alpha + alpha^T G alpha.
/// `k` is the window's effective rank (for the chance level only).
pub fn cone_score<const W: usize>(
    gram: &Square<W>,
    h: &[f64; W],
    n: usize,
    w_norm2: f64,
    k: usize,
    d: usize,
    alpha: &mut [f64; W],
) -> SpanScore {
    nnls(gram, h, n, alpha);
    let h_alpha: f64 = (0..n).map(|i| h[i] * alpha[i]).sum();
    let quad: f64 = (0..n).map(|i| alpha[i] * (0..n).map(|j| gram[i][j] * alpha[j]).sum::<f64>()).sum();
    SpanScore::from_norms(w_norm2, w_norm2 - 2.0 * h_alpha + quad, quad, k, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_keeps_the_last_w_vectors_and_evicts_seeds_first() {
        let w = [1.0, 0.0, 0.0];
        let mut tracker = SpanTracker::<3, 4>::new(&w, 0.01, 2).unwrap();
        tracker.seed(&[0.0, 0.0, 2.0]);
        let first = tracker.push(&[0.0, 1.0, 0.0]);
        assert_eq!((first.scores.window, first.scores.seeds), (2, 1));
        assert_eq!(first.alignment, Some(0.0));
        assert_eq!(first.novelty, 1.0, "orthogonal to the seed");
        assert_eq!(first.scores.mean_alignment, 0.0, "seeds do not count; the pair is orthogonal to w");
        // The seed goes first: the window is now e2 and e1, which holds w exactly.
        let second = tracker.push(&[3.0, 0.0, 0.0]);
        assert_eq!((second.scores.window, second.scores.seeds), (2, 0));
        assert!((second.scores.cone.ds - 1.0).abs() < 1e-12);
        // A vector against the defect direction cannot help the cone, but spans w for ridge.
        let third = tracker.push(&[-1.0, 0.0, 0.0]);
        assert_eq!(third.alignment, Some(-1.0));
        assert_eq!(third.novelty, 0.0, "already in the span");
        assert_eq!(third.pairs, 3);
        assert_eq!(third.scores.mean_alignment, 0.0, "e1 (+1) and -e1 (-1), the seed is gone");
        assert_eq!(third.scores.statistic(AlertStatistic::MeanAlignment, Solver::Nnls), 0.0);
        assert_eq!(third.scores.statistic(AlertStatistic::Span, Solver::Nnls), third.scores.cone.ds);
        assert!((third.scores.cone.ds - 1.0).abs() < 1e-12, "e1 (3, 0, 0) is still in the window");
        let fourth = tracker.push(&[0.0, 0.0, 1.0]);
        assert!(fourth.scores.cone.ds.abs() < 1e-12, "the cone of -e1 and e3 holds nothing of e1");
        assert!(fourth.scores.ridge.ds > 0.9, "the span of -e1 and e3 holds e1: {}", fourth.scores.ridge.ds);
    }

    #[test]
    fn window_is_checked_against_the_capacity_and_used() {
        let w = [1.0, 0.0];
        assert_eq!(SpanTracker::<2, 3>::new(&w, 0.0, 4).err(), Some(TrackerError::Window { requested: 4, capacity: 3 }));
        assert!(SpanTracker::<2, 3>::new(&w, 0.0, 0).is_err());
        let mut tracker = SpanTracker::<2, 3>::new(&w, 0.0, 1).unwrap();
        assert!((tracker.push(&[1.0, 0.0]).scores.cone.ds - 1.0).abs() < 1e-12);
        let report = tracker.push(&[0.0, 1.0]);
        assert_eq!(report.scores.window, 1, "a window of 1 keeps only the newest pair");
        assert!(report.scores.cone.ds.abs() < 1e-12);
    }
}
