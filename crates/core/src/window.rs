//! The window of the last W difference vectors as the span scores see it:
//! their W x W Gram matrix, their dot products with the probe w, and the
//! cone's warm-started weights, in a ring whose seeds are evicted first.
//!
//! One implementation serves both sides: the edge's [`crate::tracker`] feeds
//! it dot products of the vectors it keeps, and the host's alert-band and
//! stream simulations feed it entries of a precomputed Gram matrix, so the
//! host calibrates on exactly the computation the edge runs. Every score
//! comes from the Gram matrix and h = A w alone: the ridge span from its
//! eigenvalues and h's coordinates in its eigenbasis (the window's singular
//! values are the square roots of its eigenvalues, and v_j . w = u_j . h /
//! s_j), the cone from NNLS on it. No eigenvector is formed: the Householder
//! reduction is kept, the QL rotations are applied to h alone, and a new
//! vector's novelty is one tridiagonal solve on the kept reduction.

use crate::gram::{nnls, Scratch, Square, Tridiagonal};
use crate::span::{effective_rank, Solver, SpanScore};

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
    /// (computed with [`Solver::ridge_lambda`]).
    pub fn of(&self, solver: Solver) -> SpanScore {
        match solver {
            Solver::Nnls => self.cone,
            Solver::Ridge { .. } | Solver::Lstsq => self.ridge,
        }
    }
}

/// Why a window (and so a tracker) cannot be built.
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

impl core::error::Error for TrackerError {}

impl core::fmt::Display for TrackerError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TrackerError::Window { requested, capacity } => {
                write!(f, "window of {requested} pairs is outside 1..={capacity} (the tracker's compiled capacity)")
            }
        }
    }
}

/// The ring of the last `window` (at most W) entries and what the scores
/// need of them. It holds no vectors: the caller says, for each new entry,
/// its dot products with the entries already in the window.
#[derive(Clone)]
pub struct GramWindow<const W: usize> {
    window: usize,
    w_norm2: f64,
    d: usize,
    lambda: f64,
    gram: Square<W>,
    h: [f64; W],
    alpha: [f64; W],
    seed: [bool; W],
    alignment: [f64; W],
    /// The spectrum of the window, up to date while `spectrum_fresh`.
    spectrum: Spectrum<W>,
    spectrum_fresh: bool,
    /// The solvers' working memory.
    scratch: Scratch<W>,
    len: usize,
    next: usize,
}

impl<const W: usize> GramWindow<W> {
    /// An empty window of `window` (1..=W) entries for a probe of squared
    /// norm `w_norm2` in `d` dimensions, scored with `solver` (its ridge
    /// span with [`Solver::ridge_lambda`]).
    pub fn new(w_norm2: f64, d: usize, solver: Solver, window: usize) -> Result<Self, TrackerError> {
        let mut gram_window = GramWindow::idle();
        gram_window.restart(w_norm2, d, solver, window)?;
        Ok(gram_window)
    }

    /// A window of no entries that scores nothing until [`Self::restart`]:
    /// all zero bytes, so a static one is built at compile time and lives in
    /// .bss (firmware keeps its tracker off the stack this way).
    pub const fn idle() -> Self {
        GramWindow {
            window: 0,
            w_norm2: 0.0,
            d: 0,
            lambda: 0.0,
            gram: [[0.0; W]; W],
            h: [0.0; W],
            alpha: [0.0; W],
            seed: [false; W],
            alignment: [0.0; W],
            spectrum: Spectrum { reduced: Tridiagonal::new(), values: [0.0; W], h_coords: [0.0; W], k: 0 },
            spectrum_fresh: false,
            scratch: Scratch::new(),
            len: 0,
            next: 0,
        }
    }

    /// Empties the window, in place, for a probe of squared norm `w_norm2`
    /// in `d` dimensions scored with `solver` over `window` (1..=W) entries.
    pub fn restart(&mut self, w_norm2: f64, d: usize, solver: Solver, window: usize) -> Result<(), TrackerError> {
        if window == 0 || window > W {
            return Err(TrackerError::Window { requested: window, capacity: W });
        }
        self.h.fill(0.0);
        self.alpha.fill(0.0);
        self.seed.fill(false);
        self.alignment.fill(0.0);
        (self.window, self.w_norm2, self.d, self.lambda) = (window, w_norm2, d, solver.ridge_lambda());
        (self.spectrum_fresh, self.len, self.next) = (false, 0, 0);
        Ok(())
    }

    /// Entries in the window.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the window holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The slot the next entry goes to: a free one, else the oldest seed,
    /// else the oldest entry.
    pub fn next_slot(&self) -> usize {
        if self.len < self.window {
            self.len
        } else {
            (0..self.window).map(|i| (self.next + i) % self.window).find(|&i| self.seed[i]).unwrap_or(self.next)
        }
    }

    /// Adds an entry at [`Self::next_slot`] and returns that slot. `h` is its
    /// dot product with w, `alignment` its cosine with w (a seed's is not
    /// counted), and `inner(slot, i)` its dot product with the entry in slot
    /// i (with itself for i = slot).
    pub fn insert(&mut self, is_seed: bool, h: f64, alignment: f64, mut inner: impl FnMut(usize, usize) -> f64) -> usize {
        let slot = self.next_slot();
        if self.len < self.window {
            self.len += 1;
        }
        for i in 0..self.len {
            let g = inner(slot, i);
            self.gram[slot][i] = g;
            self.gram[i][slot] = g;
        }
        self.h[slot] = h;
        self.alpha[slot] = 0.0;
        self.seed[slot] = is_seed;
        self.alignment[slot] = alignment;
        self.spectrum_fresh = false;
        if self.len == self.window && slot == self.next {
            self.next = (self.next + 1) % self.window;
        }
        slot
    }

    /// Share of a vector d of squared norm `energy` outside the span of the
    /// window, 1 - d^T P d / d^T d with P the projection onto the window:
    /// d^T P d = g^T G^+ g for g = A d, computed as g^T (G + r I)^-1 g from
    /// the kept reduction, with r a tiny ridge (1e-10 of G's largest
    /// eigenvalue) in place of the pseudo-inverse's cut-off; `inner(i)` is
    /// d's dot product with the entry in slot i.
    pub fn novelty(&mut self, energy: f64, inner: impl Fn(usize) -> f64) -> f64 {
        if self.len == 0 || energy <= 0.0 {
            return 1.0;
        }
        let len = self.len;
        for (i, gi) in self.scratch.inner.iter_mut().enumerate().take(len) {
            *gi = inner(i);
        }
        self.refresh_spectrum();
        let shift = self.spectrum.values[0] * NOVELTY_RIDGE;
        if shift.is_nan() || shift <= 0.0 {
            return 1.0;
        }
        let inside = self.spectrum.reduced.inverse_quadratic(&self.scratch.inner, shift);
        (1.0 - inside / energy).clamp(0.0, 1.0)
    }

    /// Mean alignment with w of the entries that are not seeds (0 without any).
    pub fn mean_alignment(&self) -> f64 {
        let seeds = self.seeds();
        let real: f64 = (0..self.len).filter(|&i| !self.seed[i]).map(|i| self.alignment[i]).sum();
        if self.len > seeds {
            real / (self.len - seeds) as f64
        } else {
            0.0
        }
    }

    /// The window's span DS with `solver` (the cone for NNLS, else the
    /// ridge span), computing only what it needs.
    pub fn span_ds(&mut self, solver: Solver) -> f64 {
        match solver {
            // The cone's DS does not depend on the rank k (only its chance level does).
            Solver::Nnls => self.cone(1).ds,
            Solver::Ridge { .. } | Solver::Lstsq => self.ridge().ds,
        }
    }

    /// Every score of the window.
    pub fn scores(&mut self) -> WindowScores {
        let ridge = self.ridge();
        let k = self.spectrum.k;
        let cone = self.cone(k);
        WindowScores { ridge, cone, k, window: self.len, seeds: self.seeds(), mean_alignment: self.mean_alignment() }
    }

    fn seeds(&self) -> usize {
        self.seed[..self.len].iter().filter(|&&s| s).count()
    }

    /// Brings the spectrum up to date with the window (in place).
    fn refresh_spectrum(&mut self) {
        if !self.spectrum_fresh {
            self.spectrum.update(&self.gram, &self.h, self.len, &mut self.scratch);
            self.spectrum_fresh = true;
        }
    }

    fn ridge(&mut self) -> SpanScore {
        self.refresh_spectrum();
        ridge_score(&self.spectrum, self.len, self.w_norm2, self.lambda, self.d)
    }

    fn cone(&mut self, k: usize) -> SpanScore {
        cone_score(&self.gram, &self.h, self.len, self.w_norm2, k, self.d, &mut self.alpha, &mut self.scratch)
    }
}

/// A window's Gram matrix as the scores need it: its Householder reduction
/// (kept for the next vector's novelty), its eigenvalues (descending, the
/// squared singular values of the window), the coordinates of h = A w in its
/// eigenbasis (same order), and the effective rank k.
#[derive(Clone)]
struct Spectrum<const W: usize> {
    /// The reduction of the Gram matrix.
    reduced: Tridiagonal<W>,
    /// Eigenvalues, descending.
    values: [f64; W],
    /// u_j . h for the eigenvectors u_j, in the same order.
    h_coords: [f64; W],
    /// Effective rank of the window (1 for an empty window).
    k: usize,
}

impl<const W: usize> Spectrum<W> {
    /// Becomes the spectrum of the top-left n x n of `gram`, with `h`.
    fn update(&mut self, gram: &Square<W>, h: &[f64; W], n: usize, scratch: &mut Scratch<W>) {
        self.reduced.reduce(gram, n);
        self.reduced.eigen(h, &mut self.values, &mut self.h_coords, &mut scratch.e);
        let singular = &mut scratch.e;
        singular.fill(0.0);
        for (s, &value) in singular.iter_mut().zip(&self.values).take(n) {
            *s = libm::sqrt(value.max(0.0));
        }
        self.k = effective_rank(&singular[..n.max(1)]).min(n.max(1));
    }
}

/// The novelty's ridge, relative to the window's largest eigenvalue: a
/// direction of the window this much weaker than its strongest counts for
/// half, and the rounding error of a rank-deficient window for nothing.
const NOVELTY_RIDGE: f64 = 1e-10;

/// The ridge span score of a window of n vectors in d dimensions from its
/// spectrum (with h = A w, A: the window's rows). With c_j = v_j . w =
/// u_j . h / s_j and f_j = s^2 / (s^2 + lambda), w . w_hat = sum f_j c_j^2
/// and ||w_hat||^2 = sum f_j^2 c_j^2 over the top k directions.
fn ridge_score<const W: usize>(spectrum: &Spectrum<W>, n: usize, w_norm2: f64, lambda: f64, d: usize) -> SpanScore {
    let (mut along, mut hat2) = (0.0, 0.0);
    for j in 0..spectrum.k.min(n) {
        let s2 = spectrum.values[j];
        if s2 > 0.0 {
            let c = spectrum.h_coords[j] / libm::sqrt(s2);
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
#[allow(clippy::too_many_arguments)]
fn cone_score<const W: usize>(
    gram: &Square<W>,
    h: &[f64; W],
    n: usize,
    w_norm2: f64,
    k: usize,
    d: usize,
    alpha: &mut [f64; W],
    scratch: &mut Scratch<W>,
) -> SpanScore {
    nnls(gram, h, n, alpha, scratch);
    let h_alpha: f64 = (0..n).map(|i| h[i] * alpha[i]).sum();
    let quad: f64 = (0..n).map(|i| alpha[i] * (0..n).map(|j| gram[i][j] * alpha[j]).sum::<f64>()).sum();
    SpanScore::from_norms(w_norm2, w_norm2 - 2.0 * h_alpha + quad, quad, k, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::SpanTracker;
    use crate::vector::dot;

    /// Fed entries of a precomputed Gram matrix (as the host's simulations
    /// feed it), the window scores exactly what the tracker scores over the
    /// vectors themselves.
    #[test]
    fn a_window_fed_from_a_gram_matrix_scores_as_the_tracker() {
        let w = [1.0f32, 0.5, -0.25];
        let vectors: [[f32; 3]; 6] =
            [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 0.1], [-1.0, 0.2, 0.0], [0.0, 0.0, 1.0], [2.0, 1.0, -0.5]];
        let solver = Solver::Ridge { lambda: 0.01 };
        let mut tracker = SpanTracker::<3, 4>::new(&w, solver, 3).unwrap();
        let mut window = GramWindow::<4>::new(dot(&w, &w), 3, solver, 3).unwrap();
        let mut slots = [0usize; 4];
        for (t, v) in vectors.iter().enumerate() {
            let from_tracker = tracker.push(v, [], 0.02).scores;
            let alignment = crate::span::alignment(&w, v).unwrap_or(0.0);
            let slot = window.insert(false, dot(v, &w), alignment, |slot, i| dot(&vectors[if i == slot { t } else { slots[i] }], v));
            slots[slot] = t;
            assert_eq!(window.scores(), from_tracker, "pair {t}");
            assert_eq!(window.span_ds(solver), from_tracker.ridge.ds);
        }
    }
}
