//! The streaming span tracker: the discriminative span of the last W
//! synthetic-defect difference vectors, updated pair by pair in fixed memory.
//!
//! Design: a ring of the last W difference vectors beside their
//! [`GramWindow`] (W x W Gram matrix, dot products with w, warm-started cone
//! weights), rather than a rank-capped incremental SVD with forgetting. Each
//! new pair costs W dot products of length D to update one row and column of
//! the Gram matrix, and every score comes from the window alone. So the
//! window's scores are exactly the host's batch scores for the same vectors
//! (no forgetting factor to approximate, nothing to drift), and memory is
//! W x D floats plus W x W doubles, fixed at compile time.
//!
//! The ring starts seeded with the bundle's reference basis (s_j v_j, signs
//! oriented by the calibration data), so the first pairs are judged against
//! calibration; real pairs push the seeds out first.

use crate::detector::{energy_in_basis, PairStatistics};
use crate::span::Solver;
use crate::vector::dot;
use crate::window::GramWindow;
pub use crate::window::{TrackerError, WindowScores};

/// The largest window the edge monitor compiles its trackers for; bundles
/// ask for a window of at most this many pairs.
pub const WINDOW_CAPACITY: usize = 64;

/// What the tracker says about one new pair.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PairReport {
    /// Cosine of w and the pair's difference vector (`None` for a zero change).
    pub alignment: Option<f64>,
    /// The pair's statistics the drift detector watches.
    pub statistics: PairStatistics,
    /// Share of the difference vector's energy outside the window's span
    /// before it was added (1 for an empty window or a zero change).
    pub novelty: f64,
    /// The window's scores after adding the pair.
    pub scores: WindowScores,
    /// Real pairs seen so far.
    pub pairs: u32,
}

/// A span tracker for D-dimensional difference vectors over a window of at
/// most W (the compiled capacity; the bundle's window may be smaller).
#[derive(Clone)]
pub struct SpanTracker<const D: usize, const W: usize> {
    w: [f32; D],
    ring: [[f32; D]; W],
    window: GramWindow<W>,
    pairs: u32,
}

impl<const D: usize, const W: usize> SpanTracker<D, W> {
    /// An empty tracker for probe `w` (standardized space) scored with
    /// `solver`, over the last `window` (1..=W) vectors.
    pub fn new(w: &[f32; D], solver: Solver, window: usize) -> Result<Self, TrackerError> {
        let mut tracker = SpanTracker::idle();
        tracker.restart(w, solver, window)?;
        Ok(tracker)
    }

    /// A tracker that tracks nothing until [`Self::restart`]: all zero
    /// bytes, so firmware can build a static one at compile time (in .bss)
    /// and never hold one on its stack.
    pub const fn idle() -> Self {
        SpanTracker { w: [0.0; D], ring: [[0.0; D]; W], window: GramWindow::idle(), pairs: 0 }
    }

    /// Starts over, in place, for probe `w` scored with `solver` over the
    /// last `window` (1..=W) vectors: the window is emptied and the pair
    /// count reset.
    pub fn restart(&mut self, w: &[f32; D], solver: Solver, window: usize) -> Result<(), TrackerError> {
        self.window.restart(dot(w, w), D, solver, window)?;
        self.w = *w;
        self.pairs = 0;
        Ok(())
    }

    /// Adds a seed vector (e.g. s_j v_j of the reference basis). Seeds are
    /// pushed out of the window before any real pair.
    pub fn seed(&mut self, vector: &[f32; D]) {
        let ring = &self.ring;
        let inner: [f64; W] = core::array::from_fn(|i| if i < self.window.len() { dot(&ring[i], vector) } else { 0.0 });
        self.insert(vector, true, 0.0, dot(vector, vector), &inner);
    }

    /// Adds one pair's standardized difference vector and reports on it,
    /// its off-span share measured against the reference basis `basis`
    /// (the bundle's rows, read in place), `extent` the share of pixels its
    /// images differ in ([`crate::extent::changed_share`]). Its dot products
    /// with the window are computed once, for its novelty and for its row of
    /// the Gram matrix.
    pub fn push(&mut self, d: &[f32; D], basis: impl IntoIterator<Item = f32>, extent: f64) -> PairReport {
        let alignment = crate::span::alignment(&self.w, d);
        let energy = dot(d, d);
        let statistics = PairStatistics::from_dots(dot(d, &self.w), dot(&self.w, &self.w), energy, energy_in_basis(basis, d), extent);
        let ring = &self.ring;
        let inner: [f64; W] = core::array::from_fn(|i| if i < self.window.len() { dot(&ring[i], d) } else { 0.0 });
        let novelty = self.window.novelty(energy, |i| inner[i]);
        self.insert(d, false, alignment.unwrap_or(0.0), energy, &inner);
        self.pairs = self.pairs.saturating_add(1);
        PairReport { alignment, statistics, novelty, scores: self.window.scores(), pairs: self.pairs }
    }

    /// Real pairs seen so far.
    pub fn pairs(&self) -> u32 {
        self.pairs
    }

    /// The current window's scores.
    pub fn scores(&mut self) -> WindowScores {
        self.window.scores()
    }

    /// Puts `vector` in the window's next slot, with its squared norm
    /// `energy` and its dot products `inner` with the entries already in the
    /// window (its Gram row) and its dot product with w.
    fn insert(&mut self, vector: &[f32; D], is_seed: bool, alignment: f64, energy: f64, inner: &[f64; W]) {
        let slot = self.window.next_slot();
        self.ring[slot] = *vector;
        self.window.insert(is_seed, dot(vector, &self.w), alignment, |_, i| if i == slot { energy } else { inner[i] });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_keeps_the_last_w_vectors_and_evicts_seeds_first() {
        let w = [1.0, 0.0, 0.0];
        let mut tracker = SpanTracker::<3, 4>::new(&w, Solver::Ridge { lambda: 0.01 }, 2).unwrap();
        tracker.seed(&[0.0, 0.0, 2.0]);
        let first = tracker.push(&[0.0, 1.0, 0.0], [], 0.02);
        assert_eq!((first.scores.window, first.scores.seeds), (2, 1));
        assert_eq!(first.alignment, Some(0.0));
        assert_eq!(first.novelty, 1.0, "orthogonal to the seed");
        assert_eq!(first.scores.mean_alignment, 0.0, "seeds do not count; the pair is orthogonal to w");
        // The seed goes first: the window is now e2 and e1, which holds w exactly.
        let second = tracker.push(&[3.0, 0.0, 0.0], [], 0.02);
        assert_eq!((second.scores.window, second.scores.seeds), (2, 0));
        assert!((second.scores.cone.ds - 1.0).abs() < 1e-12);
        // A vector against the defect direction cannot help the cone, but spans w for ridge.
        let third = tracker.push(&[-1.0, 0.0, 0.0], [], 0.02);
        assert_eq!(third.alignment, Some(-1.0));
        assert!(third.novelty < 1e-9, "already in the span: {}", third.novelty);
        assert_eq!(third.pairs, 3);
        assert_eq!(third.scores.mean_alignment, 0.0, "e1 (+1) and -e1 (-1), the seed is gone");
        assert!((third.scores.cone.ds - 1.0).abs() < 1e-12, "e1 (3, 0, 0) is still in the window");
        let fourth = tracker.push(&[0.0, 0.0, 1.0], [], 0.02);
        assert!(fourth.scores.cone.ds.abs() < 1e-12, "the cone of -e1 and e3 holds nothing of e1");
        assert!(fourth.scores.ridge.ds > 0.9, "the span of -e1 and e3 holds e1: {}", fourth.scores.ridge.ds);
    }

    #[test]
    fn novelty_is_the_share_of_energy_outside_the_window() {
        let mut tracker = SpanTracker::<3, 4>::new(&[1.0, 0.0, 0.0], Solver::Nnls, 4).unwrap();
        tracker.push(&[1.0, 0.0, 0.0], [], 0.02);
        tracker.push(&[1.0, 2.0, 0.0], [], 0.02);
        // The window spans the first two axes: (1, 1, 1) has 1 of its 3 outside.
        let report = tracker.push(&[1.0, 1.0, 1.0], [], 0.02);
        assert!((report.novelty - 1.0 / 3.0).abs() < 1e-9, "{}", report.novelty);
        // Now it spans everything.
        assert!(tracker.push(&[0.0, -3.0, 5.0], [], 0.02).novelty < 1e-9);
    }

    #[test]
    fn a_restarted_tracker_scores_as_a_new_one() {
        let (w, solver) = ([1.0, 0.5, 0.0], Solver::Nnls);
        let mut used = SpanTracker::<3, 4>::idle();
        assert!(used.restart(&w, solver, 5).is_err(), "the capacity still bounds the window");
        used.restart(&[0.0, 1.0, 0.0], Solver::Lstsq, 4).unwrap();
        used.push(&[1.0, 2.0, 3.0], [], 0.02);
        used.push(&[0.0, 1.0, 1.0], [], 0.02);
        used.restart(&w, solver, 3).unwrap();
        let mut fresh = SpanTracker::<3, 4>::new(&w, solver, 3).unwrap();
        for d in [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0], [-1.0, 0.5, 0.0]] {
            assert_eq!(used.push(&d, [], 0.02), fresh.push(&d, [], 0.02));
        }
    }

    #[test]
    fn window_is_checked_against_the_capacity_and_used() {
        let w = [1.0, 0.0];
        assert_eq!(SpanTracker::<2, 3>::new(&w, Solver::Lstsq, 4).err(), Some(TrackerError::Window { requested: 4, capacity: 3 }));
        assert!(SpanTracker::<2, 3>::new(&w, Solver::Lstsq, 0).is_err());
        let mut tracker = SpanTracker::<2, 3>::new(&w, Solver::Lstsq, 1).unwrap();
        assert!((tracker.push(&[1.0, 0.0], [], 0.02).scores.cone.ds - 1.0).abs() < 1e-12);
        let report = tracker.push(&[0.0, 1.0], [], 0.02);
        assert_eq!(report.scores.window, 1, "a window of 1 keeps only the newest pair");
        assert!(report.scores.cone.ds.abs() < 1e-12);
    }
}
