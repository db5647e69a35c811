//! The edge's alert band, calibrated from windows of good pairs.

use super::bootstrap::quantile;
use super::per_sample::select_rows;
use super::SpanFit;
use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::SeedableRng;
use spanwatch_core::bundle::AlertBand;
use spanwatch_core::span::Solver;

/// The alert band: the DS that windows of `window` good calibration pairs
/// reach. The alert is raised below their 5th percentile and cleared above
/// their 25th, so a single noisy window neither raises nor flaps it.
pub fn alert_band(diffs: &DMatrix<f64>, w: &[f32], solver: Solver, window: usize, windows: usize, seed: u64) -> AlertBand {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut values: Vec<f64> = (0..windows.max(1))
        .map(|_| {
            let picked = rand::seq::index::sample(&mut rng, diffs.nrows(), window).into_vec();
            SpanFit::new(select_rows(diffs, &picked)).score(w, solver).ds
        })
        .collect();
    values.sort_by(f64::total_cmp);
    AlertBand {
        window: window as u32,
        min_pairs: window as u32,
        raise_below: quantile(&values, 0.05),
        clear_above: quantile(&values, 0.25),
    }
}
