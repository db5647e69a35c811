//! Writing the edge's calibration bundle for one generator of a prepared
//! dataset: probe, standardization, oriented reference basis, reference
//! score and the alert band.

use crate::metric::band::{alert_band, BandSettings};
use crate::metric::SpanFit;
use crate::pipeline::Prepared;
use anyhow::{bail, Context, Result};
use nalgebra::DMatrix;
use spanwatch_core::bundle::{AlertBand, AlertStatistic, Bundle, F32Le, ModelIdentity};
use spanwatch_core::span::{Solver, SpanScore};
use spanwatch_core::tracker::WINDOW_CAPACITY;
use std::path::Path;

/// Fewest pairs a calibration accepts: the alert band needs windows of at
/// least 4 pairs drawn from at least twice as many distinct pairs.
pub const MIN_CALIBRATION_PAIRS: usize = 8;

/// What the edge's alert watches, as the CLIs' `--alert-on` choices.
#[derive(clap::ValueEnum, Clone, Copy)]
pub enum AlertOn {
    /// Mean alignment of the window's pairs with the probe.
    Alignment,
    /// The window's span score with --solver (cone DS for nnls).
    Span,
}

impl AlertOn {
    /// The bundle's statistic.
    pub fn statistic(self) -> AlertStatistic {
        match self {
            AlertOn::Alignment => AlertStatistic::MeanAlignment,
            AlertOn::Span => AlertStatistic::Span,
        }
    }
}

/// How to calibrate.
#[derive(Clone, Copy, Debug)]
pub struct CalibrationSettings {
    /// The span score the edge computes (and watches, for `AlertStatistic::Span`).
    pub solver: Solver,
    /// The windowed statistic the alert watches.
    pub statistic: AlertStatistic,
    /// Pairs per window (clamped to 4..=min(pairs, 64)).
    pub window: usize,
    /// Target share of good streams of `horizon` pairs that may raise the alert.
    pub false_alarm: f64,
    /// Pairs per simulated good stream.
    pub horizon: usize,
    /// Simulated good streams.
    pub streams: usize,
    /// Seed of the simulation.
    pub seed: u64,
}

impl Default for CalibrationSettings {
    fn default() -> Self {
        CalibrationSettings {
            solver: Solver::Nnls,
            statistic: AlertStatistic::MeanAlignment,
            window: 32,
            false_alarm: 0.05,
            horizon: 500,
            streams: 200,
            seed: 0,
        }
    }
}

/// What was written.
#[derive(Clone, Copy, Debug)]
pub struct Calibrated {
    /// Bundle size in bytes.
    pub bytes: usize,
    /// Calibration pairs.
    pub pairs: usize,
    /// Effective rank of the calibration differences.
    pub k: usize,
    /// The calibration set's own score.
    pub reference: SpanScore,
    /// The alert band.
    pub alert: AlertBand,
}

/// Calibrates generator `name` of `prepared` and writes the bundle to `output` (atomically).
pub fn write_bundle(prepared: &Prepared, name: &str, settings: &CalibrationSettings, output: &Path) -> Result<Calibrated> {
    if name.len() > spanwatch_core::bundle::MAX_GENERATOR_NAME {
        bail!(
            "generator name of {} bytes; a bundle takes at most {} (it is sent with every alert): rename its folder",
            name.len(),
            spanwatch_core::bundle::MAX_GENERATOR_NAME
        );
    }
    let generator = prepared.generator(name)?;
    let n = generator.pairs.len();
    if n < MIN_CALIBRATION_PAIRS {
        bail!("generator {name:?} has {n} pairs; calibration needs at least {MIN_CALIBRATION_PAIRS}");
    }
    if !(settings.false_alarm > 0.0 && settings.false_alarm < 1.0) || settings.horizon == 0 || settings.streams < 20 {
        bail!("the false-alarm target must be in (0, 1), the horizon at least 1 pair and the streams at least 20");
    }
    let solver = settings.solver;
    let w = &prepared.probe.w;
    let fit = SpanFit::new(generator.diffs.clone());
    let reference = fit.score(w, solver);
    let window = settings.window.clamp(4, n.min(WINDOW_CAPACITY));
    let band_settings = BandSettings {
        statistic: settings.statistic,
        window,
        streams: settings.streams,
        horizon: settings.horizon.max(window),
        false_alarm: settings.false_alarm,
        seed: settings.seed,
    };
    let alert = alert_band(&generator.diffs, w, solver, &band_settings);
    let singular: Vec<f32> = fit.singular_values()[..fit.k()].iter().map(|&s| s as f32).collect();
    let oriented = oriented_basis(fit.basis(), fit.k(), &generator.diffs);
    let sha256: [u8; 32] = hex::decode(&prepared.model.sha256)?.try_into().map_err(|_| anyhow::anyhow!("model sha256 is not 32 bytes"))?;
    let (mu, sigma, w_bytes) =
        (F32Le::encode(&prepared.standardization.mu), F32Le::encode(&prepared.standardization.sigma), F32Le::encode(w));
    let (basis, singular_bytes) = (F32Le::encode(&oriented), F32Le::encode(&singular));
    fn view(bytes: &[u8]) -> F32Le<'_> {
        F32Le::from_bytes(bytes).expect("encoded f32 values")
    }
    let bundle = Bundle {
        model: ModelIdentity { sha256, name: &prepared.model.name, dim: prepared.model.dim as u32 },
        generator: name,
        solver,
        n_pairs: n as u32,
        mu: view(&mu),
        sigma: view(&sigma),
        w: view(&w_bytes),
        basis: view(&basis),
        singular_values: view(&singular_bytes),
        reference,
        alert,
    };
    let bytes = bundle.encode().map_err(|e| anyhow::anyhow!("cannot encode the bundle: {e}"))?;
    let temporary = output.with_extension("partial");
    std::fs::write(&temporary, &bytes).with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, output).with_context(|| format!("cannot write {}", output.display()))?;
    Ok(Calibrated { bytes: bytes.len(), pairs: n, k: fit.k(), reference, alert })
}

/// The k x d basis with each row v_j signed so that the calibration
/// differences project on it positively on average, so the edge's seeds
/// s_j v_j point the way the generator's changes point (a cone cares).
fn oriented_basis(basis: &[f32], k: usize, diffs: &DMatrix<f64>) -> Vec<f32> {
    let d = diffs.ncols();
    let column_sums: Vec<f64> = diffs.row_sum().iter().copied().collect();
    let mut oriented = basis.to_vec();
    for row in oriented.chunks_mut(d).take(k) {
        let projection: f64 = row.iter().zip(&column_sums).map(|(&v, &s)| v as f64 * s).sum();
        if projection < 0.0 {
            row.iter_mut().for_each(|v| *v = -*v);
        }
    }
    oriented
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basis_rows_point_the_way_the_differences_do() {
        let diffs = DMatrix::from_row_slice(2, 2, &[2.0, -1.0, 1.0, -3.0]);
        let basis = [-1.0f32, 0.0, 0.0, 1.0];
        // Sums of the differences: (3, -4): both rows flip.
        assert_eq!(oriented_basis(&basis, 2, &diffs), vec![1.0, 0.0, 0.0, -1.0]);
    }
}
