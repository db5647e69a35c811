//! The core's window over pairs given as rows of a precomputed Gram
//! matrix: the host's simulations of the edge's window scores.

use nalgebra::DMatrix;
use spanwatch_core::span::Solver;
use spanwatch_core::tracker::WINDOW_CAPACITY;
use spanwatch_core::window::GramWindow;

/// The core's [`GramWindow`] over pairs given as rows of a precomputed Gram
/// matrix, as the edge would hold them: the host's simulations of the edge.
pub struct PairWindow {
    ring: Box<GramWindow<WINDOW_CAPACITY>>,
    /// Slot i of the window holds pair slots[i].
    slots: [usize; WINDOW_CAPACITY],
}

impl PairWindow {
    /// An empty window of `window` pairs; panics outside 1..=WINDOW_CAPACITY
    /// (the callers' windows are checked or constant).
    pub fn new(w_norm2: f64, d: usize, solver: Solver, window: usize) -> PairWindow {
        let ring = GramWindow::new(w_norm2, d, solver, window).unwrap_or_else(|e| panic!("{e}"));
        PairWindow { ring: Box::new(ring), slots: [0; WINDOW_CAPACITY] }
    }

    /// Adds pair `pair` (a row of `gram`) with its dot product `h` with w and its alignment.
    pub fn push(&mut self, gram: &DMatrix<f64>, pair: usize, h: f64, alignment: f64) {
        let slots = &self.slots;
        let slot = self.ring.insert(false, h, alignment, |slot, i| gram[(if i == slot { pair } else { slots[i] }, pair)]);
        self.slots[slot] = pair;
    }

    /// The window's span DS with `solver`.
    pub fn span_ds(&mut self, solver: Solver) -> f64 {
        self.ring.span_ds(solver)
    }
}
