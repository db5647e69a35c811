//! Statistics shared by the study and the CLI: quantiles, rank and linear
//! correlations with bootstrap intervals, and the classification scores F1
//! and AUROC.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The q-quantile of sorted values, linearly interpolated.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let (below, above) = (position.floor() as usize, position.ceil() as usize);
    sorted[below] + (sorted[above] - sorted[below]) * (position - below as f64)
}

/// Pearson's r (NaN when either side is constant).
pub fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let cov: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
    cov / (vx * vy).sqrt()
}

/// Ranks with ties given their average rank (1-based).
pub fn ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut ranks = vec![0.0; x.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && x[order[j + 1]] == x[order[i]] {
            j += 1;
        }
        let average = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = average;
        }
        i = j + 1;
    }
    ranks
}

/// Spearman's rho: Pearson's r of the ranks (ties averaged, as scipy).
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    pearson(&ranks(x), &ranks(y))
}

/// A correlation with its 95% bootstrap interval over the points.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Correlation {
    /// The estimate on all points.
    pub value: f64,
    /// 2.5th percentile of the bootstrap replicates.
    pub low: f64,
    /// 97.5th percentile of the bootstrap replicates.
    pub high: f64,
}

/// `statistic` on (x, y) with a percentile interval from `replicates`
/// resamples of the points (replicates where it is undefined are dropped).
pub fn with_interval(x: &[f64], y: &[f64], statistic: fn(&[f64], &[f64]) -> f64, replicates: usize, seed: u64) -> Correlation {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = x.len();
    let mut values: Vec<f64> = (0..replicates)
        .filter_map(|_| {
            let picks: Vec<usize> = (0..n).map(|_| rng.random_range(0..n)).collect();
            let (bx, by): (Vec<f64>, Vec<f64>) = picks.iter().map(|&i| (x[i], y[i])).unzip();
            Some(statistic(&bx, &by)).filter(|v| v.is_finite())
        })
        .collect();
    values.sort_by(f64::total_cmp);
    let (low, high) = if values.is_empty() { (f64::NAN, f64::NAN) } else { (quantile(&values, 0.025), quantile(&values, 0.975)) };
    Correlation { value: statistic(x, y), low, high }
}

/// Area under the ROC curve of `scores` for `labels` (true = positive), by
/// the rank-sum (Mann-Whitney) statistic, ties counted half.
pub fn auroc(scores: &[f64], labels: &[bool]) -> f64 {
    let r = ranks(scores);
    let positives = labels.iter().filter(|&&l| l).count() as f64;
    let negatives = labels.len() as f64 - positives;
    let rank_sum: f64 = r.iter().zip(labels).filter(|(_, &l)| l).map(|(r, _)| r).sum();
    (rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)
}

/// F1 score of predictions (true = positive) against labels.
pub fn f1(predicted: &[bool], labels: &[bool]) -> f64 {
    let tp = predicted.iter().zip(labels).filter(|(&p, &l)| p && l).count() as f64;
    let fp = predicted.iter().zip(labels).filter(|(&p, &l)| p && !l).count() as f64;
    let fn_ = predicted.iter().zip(labels).filter(|(&p, &l)| !p && l).count() as f64;
    if tp == 0.0 {
        0.0
    } else {
        2.0 * tp / (2.0 * tp + fp + fn_)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_with_ties_matches_scipy() {
        // scipy.stats.spearmanr([1, 2, 2, 3, 5], [2, 1, 4, 4, 6]).statistic = 0.7631578947368421
        let rho = spearman(&[1.0, 2.0, 2.0, 3.0, 5.0], &[2.0, 1.0, 4.0, 4.0, 6.0]);
        assert!((rho - 0.7631578947368421).abs() < 1e-12, "{rho}");
        // scipy.stats.pearsonr([1, 2, 3, 4], [1, 3, 2, 5]).statistic = 0.8315218406202999
        assert!((pearson(&[1.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 5.0]) - 0.8315218406202999).abs() < 1e-12);
    }

    #[test]
    fn auroc_and_f1_of_known_cases() {
        // sklearn.metrics.roc_auc_score([0, 0, 1, 1, 1], [0.1, 0.4, 0.35, 0.8, 0.4]) = 0.75
        let auc = auroc(&[0.1, 0.4, 0.35, 0.8, 0.4], &[false, false, true, true, true]);
        assert!((auc - 0.75).abs() < 1e-12, "{auc}");
        assert_eq!(f1(&[true, true, false, false], &[true, false, true, false]), 0.5);
        assert_eq!(f1(&[false; 3], &[true; 3]), 0.0);
    }

    #[test]
    fn interval_brackets_a_strong_correlation() {
        let x: Vec<f64> = (0..30).map(|i| i as f64).collect();
        let y: Vec<f64> = x.iter().map(|v| v * 2.0 + (v * 1.7).sin()).collect();
        let c = with_interval(&x, &y, spearman, 200, 1);
        assert!(c.value > 0.99 && c.low > 0.95 && c.high <= 1.0);
    }
}
