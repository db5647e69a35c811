//! Bootstrap over the real positives: the probe is the noisiest part of the
//! metric when positives are few, so its uncertainty is shown as an interval.
//!
//! Each replicate resamples the real positives with replacement (negatives
//! stay as they are), refits the probe in the same standardized space, and
//! scores it against the same span. Standardization and the span are held
//! fixed: the interval is the probe's uncertainty, not the generator's.

use super::probe;
use crate::stats::quantile;
use nalgebra::{DMatrix, DVector};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

/// A percentile interval.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Interval {
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
    /// Coverage, e.g. 0.95.
    pub level: f64,
}

/// The probe weights of `replicates` bootstrap resamples of the positives.
/// `negatives` and `positives` are standardized embeddings (rows). The
/// kernel X X^T of the real images is computed once (a replicate's is its
/// rows and columns), and the replicates run on every core; the draws are
/// made first, in order, so the result does not depend on the thread count.
pub fn resampled_probes(
    negatives: &[Vec<f32>],
    positives: &[Vec<f32>],
    replicates: usize,
    seed: u64,
    on_progress: impl Fn() + Sync,
) -> Result<Vec<Vec<f32>>, probe::ProbeError> {
    let (n_neg, n_pos) = (negatives.len(), positives.len());
    let (x, labels) = probe::design(negatives, positives);
    let kernel = probe::kernel(&x);
    let mut rng = StdRng::seed_from_u64(seed);
    let draws: Vec<Vec<usize>> =
        (0..replicates).map(|_| (0..n_neg).chain((0..n_pos).map(|_| n_neg + rng.random_range(0..n_pos))).collect()).collect();
    draws
        .par_iter()
        .map(|picked| {
            let k = DMatrix::from_fn(picked.len(), picked.len(), |a, b| kernel[(picked[a], picked[b])]);
            let (beta, _, _) = probe::fit_kernel(&k, &labels, 1.0)?;
            // w = X_picked^T beta: a picked row's weights add up on its row of X.
            let mut weights = DVector::<f64>::zeros(x.nrows());
            for (&row, &b) in picked.iter().zip(beta.iter()) {
                weights[row] += b;
            }
            on_progress();
            Ok(x.tr_mul(&weights).iter().map(|&v| v as f32).collect())
        })
        .collect()
}

/// The central `level` percentile interval of `values` (linear interpolation,
/// as numpy's default percentile).
pub fn percentile_interval(values: &[f64], level: f64) -> Interval {
    let mut sorted: Vec<f64> = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0;
    Interval { low: quantile(&sorted, tail), high: quantile(&sorted, 1.0 - tail), level }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let sorted = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&sorted, 0.5), 3.0);
        assert_eq!(quantile(&sorted, 0.1), 1.4);
        let interval = percentile_interval(&[5.0, 1.0, 3.0, 2.0, 4.0], 0.5);
        assert_eq!((interval.low, interval.high), (2.0, 4.0));
    }
}
