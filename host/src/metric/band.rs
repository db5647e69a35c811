//! The edge's alert band, calibrated on simulated good streams.
//!
//! A window of the 5th percentile of good windows fires on one window in
//! twenty, so a long good stream would alarm within a few dozen pairs. The
//! band is therefore set on the false-alarm rate of a whole stream: draw
//! good streams of `horizon` pairs from the calibration pairs (with
//! replacement), run each through exactly the edge's computation (the core's
//! [`GramWindow`]: ring, Gram matrix and warm-started solver), and raise below the
//! `false_alarm` quantile of the streams' lowest windowed scores. Windows
//! with a repeated pair score lower than fresh ones, so the simulation errs
//! toward fewer alarms. A raised alert clears once the window is back above
//! the level 95% of good windows reach.

use super::bootstrap::quantile;
use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use spanwatch_core::bundle::{AlertBand, AlertStatistic};
use spanwatch_core::span::Solver;
use spanwatch_core::tracker::WINDOW_CAPACITY;
use spanwatch_core::window::GramWindow;

/// How the alert band is calibrated.
#[derive(Clone, Copy, Debug)]
pub struct BandSettings {
    /// The windowed statistic the alert watches.
    pub statistic: AlertStatistic,
    /// Pairs per window (1..=WINDOW_CAPACITY); also the pairs the edge must see before it may alarm.
    pub window: usize,
    /// Simulated good streams.
    pub streams: usize,
    /// Pairs per simulated stream.
    pub horizon: usize,
    /// Target share of good streams of `horizon` pairs that may raise the alert.
    pub false_alarm: f64,
    /// Seed of the simulation.
    pub seed: u64,
}

/// The band for the calibration differences `diffs` (rows, standardized) and probe `w`.
pub fn alert_band(diffs: &DMatrix<f64>, w: &[f32], solver: Solver, settings: &BandSettings) -> AlertBand {
    assert!((1..=WINDOW_CAPACITY).contains(&settings.window), "window {} outside 1..={WINDOW_CAPACITY}", settings.window);
    let w_column = DMatrix::from_iterator(w.len(), 1, w.iter().map(|&v| v as f64));
    let (gram, h) = (diffs * diffs.transpose(), diffs * &w_column);
    let stream = GoodStreams { gram: &gram, h: h.as_slice(), w_norm2: w_column.norm_squared(), solver, d: w.len(), settings };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(settings.streams.max(1));
    let runs: Vec<(f64, Vec<f64>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let stream = &stream;
                scope.spawn(move || (t..settings.streams).step_by(threads).map(|s| stream.run(s as u64)).collect::<Vec<_>>())
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("stream simulation thread")).collect()
    });
    let mut minima: Vec<f64> = runs.iter().map(|(min, _)| *min).collect();
    let mut all: Vec<f64> = runs.into_iter().flat_map(|(_, scores)| scores).collect();
    minima.sort_by(f64::total_cmp);
    all.sort_by(f64::total_cmp);
    let raise_below = quantile(&minima, settings.false_alarm);
    let clear_above = quantile(&all, 0.05).max(raise_below);
    let false_alarm = minima.iter().filter(|&&m| m < raise_below).count() as f64 / minima.len() as f64;
    AlertBand {
        statistic: settings.statistic,
        window: settings.window as u32,
        min_pairs: settings.window as u32,
        raise_below,
        clear_above,
        horizon: settings.horizon as u32,
        false_alarm,
    }
}

/// Good streams drawn from the calibration pairs, scored as the edge scores them.
struct GoodStreams<'a> {
    gram: &'a DMatrix<f64>,
    h: &'a [f64],
    w_norm2: f64,
    solver: Solver,
    d: usize,
    settings: &'a BandSettings,
}

impl GoodStreams<'_> {
    /// Runs stream `index`: its lowest windowed score once the alert may
    /// fire, and every such score.
    fn run(&self, index: u64) -> (f64, Vec<f64>) {
        let BandSettings { statistic, window, horizon, seed, .. } = *self.settings;
        let mut rng = StdRng::seed_from_u64(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut ring = PairWindow::new(self.w_norm2, self.d, self.solver, window);
        let mut scores = Vec::with_capacity(horizon);
        for t in 0..horizon {
            let pair = rng.random_range(0..self.gram.nrows());
            ring.push(self.gram, pair, self.h[pair], self.alignment(pair));
            if t + 1 >= window {
                scores.push(ring.statistic(statistic, self.solver));
            }
        }
        (scores.iter().copied().fold(f64::INFINITY, f64::min), scores)
    }

    /// The cosine of w and calibration pair `pair`.
    fn alignment(&self, pair: usize) -> f64 {
        gram_alignment(self.h[pair], self.w_norm2, self.gram[(pair, pair)])
    }
}

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

    /// The window's value of `statistic` for `solver`.
    pub fn statistic(&mut self, statistic: AlertStatistic, solver: Solver) -> f64 {
        self.ring.statistic(statistic, solver)
    }
}

/// The cosine of w and a difference vector d from their dot products
/// (h = w . d, ||w||^2, ||d||^2), 0 for a pair without change, as the
/// tracker counts it.
pub fn gram_alignment(h: f64, w_norm2: f64, d_norm2: f64) -> f64 {
    let norm = (w_norm2 * d_norm2).sqrt();
    if norm > 0.0 {
        h / norm
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pairs that are exact copies of the probe direction score DS = 1 in
    /// every window; pairs orthogonal to it score 0. A band set on a mix
    /// sits between, and its simulated false-alarm rate is near the target.
    #[test]
    fn band_from_a_known_mix() {
        let d = 4;
        let w = [1.0f32, 0.0, 0.0, 0.0];
        let rows: Vec<[f64; 4]> = (0..20).map(|i| if i % 2 == 0 { [1.0, 0.0, 0.0, 0.0] } else { [0.0, 1.0, 0.0, 0.0] }).collect();
        let diffs = DMatrix::from_fn(rows.len(), d, |i, j| rows[i][j]);
        let settings = BandSettings { statistic: AlertStatistic::Span, window: 4, streams: 200, horizon: 100, false_alarm: 0.05, seed: 1 };
        let band = alert_band(&diffs, &w, Solver::Nnls, &settings);
        // A window of 4 pairs without a copy of w scores 0; with one, 1. In
        // 97 windows of 4 fair coin flips, an all-orthogonal window
        // (probability 1/16) is near certain, so the band must sit at 0
        // and the simulated rate of alarms below it is 0.
        assert_eq!(band.raise_below, 0.0);
        assert_eq!(band.false_alarm, 0.0);
        assert_eq!((band.window, band.min_pairs, band.horizon), (4, 4, 100));
        // With only copies of w, every window scores 1.
        let copies = DMatrix::from_fn(10, d, |_, j| if j == 0 { 2.0 } else { 0.0 });
        let band = alert_band(&copies, &w, Solver::Ridge { lambda: 0.0 }, &settings);
        // (A residual at rounding level, ~1e-16 of ||w||^2, costs ~1e-8 of DS through the square root.)
        assert!((band.raise_below - 1.0).abs() < 1e-6 && (band.clear_above - 1.0).abs() < 1e-6, "{band:?}");
        // Mean alignment: the mix's lowest windows hold no copy of w (0);
        // pairs at 45 degrees to w align 1/sqrt(2) in every window.
        let alignment = BandSettings { statistic: AlertStatistic::MeanAlignment, ..settings };
        let band = alert_band(&diffs, &w, Solver::Nnls, &alignment);
        assert_eq!((band.raise_below, band.statistic), (0.0, AlertStatistic::MeanAlignment));
        let diagonal = DMatrix::from_fn(10, d, |i, j| {
            if j == 0 {
                1.0 + i as f64
            } else if j == 2 {
                -1.0 - i as f64
            } else {
                0.0
            }
        });
        let band = alert_band(&diagonal, &w, Solver::Nnls, &alignment);
        let expected = 0.5f64.sqrt();
        assert!((band.raise_below - expected).abs() < 1e-12 && (band.clear_above - expected).abs() < 1e-12, "{band:?}");
    }
}
