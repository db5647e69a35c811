//! Bootstrap over the real positives: the probe is the noisiest part of the
//! metric when positives are few, so its uncertainty is shown as an interval.
//!
//! Each replicate resamples the real positives with replacement (negatives
//! stay as they are), refits the probe in the same standardized space, and
//! scores it against the same span. Standardization and the span are held
//! fixed: the interval is the probe's uncertainty, not the generator's.

use super::probe;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

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
/// `negatives` and `positives` are standardized embeddings (rows).
pub fn resampled_probes(
    negatives: &[Vec<f32>],
    positives: &[Vec<f32>],
    replicates: usize,
    seed: u64,
    mut on_progress: impl FnMut(),
) -> Result<Vec<Vec<f32>>, probe::ProbeError> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut probes = Vec::with_capacity(replicates);
    for _ in 0..replicates {
        let picked: Vec<&Vec<f32>> = (0..positives.len()).map(|_| &positives[rng.random_range(0..positives.len())]).collect();
        probes.push(probe::fit_classes(negatives, &picked)?.w);
        on_progress();
    }
    Ok(probes)
}

/// The central `level` percentile interval of `values` (linear interpolation,
/// as numpy's default percentile).
pub fn percentile_interval(values: &[f64], level: f64) -> Interval {
    let mut sorted: Vec<f64> = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0;
    Interval { low: quantile(&sorted, tail), high: quantile(&sorted, 1.0 - tail), level }
}

/// The q-quantile of sorted values, linearly interpolated.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let (below, above) = (position.floor() as usize, position.ceil() as usize);
    sorted[below] + (sorted[above] - sorted[below]) * (position - below as f64)
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
