//! Every metric's correlation with every downstream truth, per family, per
//! surface and pooled, at every sample size: what report, selection and
//! plots all read.

use crate::evaluate::Metric;
use crate::{CellResult, StudyConfig, TRUTHS, UNCERTAIN_TRUTHS};
use spanwatch_calibrate::stats::{pearson, spearman, with_interval, Correlation};

/// A correlation of one metric with one truth over one group of cells.
#[derive(Clone, Debug)]
pub struct CorrelationRow {
    /// Model of the metric.
    pub model: String,
    /// The metric.
    pub metric: Metric,
    /// One of [`TRUTHS`] or [`UNCERTAIN_TRUTHS`].
    pub truth: &'static str,
    /// A family name, a surface name, or "pooled".
    pub group: String,
    /// Real positives.
    pub n_positives: usize,
    /// Pairs.
    pub n_pairs: usize,
    /// Points (generators x surfaces [x families]).
    pub points: usize,
    /// Spearman's rho of the oriented metric (higher = better) with the truth.
    pub spearman: Correlation,
    /// Pearson's r of the oriented metric with the truth.
    pub pearson: Correlation,
}

/// The distinct values of `field` over `results`, in order of first appearance.
fn distinct(results: &[CellResult], field: impl Fn(&CellResult) -> &str) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for c in results {
        if !seen.iter().any(|s| s == field(c)) {
            seen.push(field(c).to_string());
        }
    }
    seen
}

/// The defect families present in `results`.
pub fn families(results: &[CellResult]) -> Vec<String> {
    distinct(results, |c| &c.family)
}

/// The names of the generators present in `results` (a drawn and an EL
/// generator of one name, such as faithful, count as one).
pub fn generators(results: &[CellResult]) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for c in results {
        let name = c.generator.name();
        if !seen.contains(&name) {
            seen.push(name);
        }
    }
    seen
}

/// Every correlation the study reports: per family, per surface and pooled.
pub fn correlations(config: &StudyConfig, results: &[CellResult]) -> Vec<CorrelationRow> {
    let mut groups: Vec<String> = families(results);
    groups.extend(config.surfaces.iter().filter(|s| results.iter().any(|c| &c.surface == *s)).cloned());
    groups.push("pooled".into());
    let mut rows = Vec::new();
    for model in &config.models {
        for &n_positives in &config.positive_counts {
            for &n_pairs in &config.pair_counts {
                for group in &groups {
                    let cells: Vec<&CellResult> = results
                        .iter()
                        .filter(|c| {
                            &c.model == model
                                && c.n_positives == n_positives
                                && c.n_pairs == n_pairs
                                && (group == "pooled" || &c.family == group || &c.surface == group)
                        })
                        .collect();
                    for metric in Metric::ALL {
                        let sign = if metric.higher_is_better() { 1.0 } else { -1.0 };
                        let x: Vec<f64> = cells.iter().map(|c| sign * c.metric(metric)).collect();
                        // The secondary test set's truths where every cell of the group has them.
                        let uncertain: Option<Vec<[f64; 4]>> = cells.iter().map(|c| c.uncertain_truths).collect();
                        let mut truths: Vec<(&'static str, Vec<f64>)> =
                            TRUTHS.into_iter().enumerate().map(|(t, name)| (name, cells.iter().map(|c| c.truths[t]).collect())).collect();
                        if let Some(uncertain) = uncertain.filter(|u| !u.is_empty()) {
                            truths.extend(
                                UNCERTAIN_TRUTHS.into_iter().enumerate().map(|(t, name)| (name, uncertain.iter().map(|u| u[t]).collect())),
                            );
                        }
                        for (truth, y) in truths {
                            let seed = rows.len() as u64;
                            rows.push(CorrelationRow {
                                model: model.clone(),
                                metric,
                                truth,
                                group: group.clone(),
                                n_positives,
                                n_pairs,
                                points: x.len(),
                                spearman: with_interval(&x, &y, spearman, config.bootstrap, seed),
                                pearson: with_interval(&x, &y, pearson, config.bootstrap, seed),
                            });
                        }
                    }
                }
            }
        }
    }
    rows
}

/// The correlation row of one metric, truth, group and sample size.
pub fn find<'a>(
    rows: &'a [CorrelationRow],
    model: &str,
    metric: Metric,
    truth: &str,
    group: &str,
    n_positives: usize,
    n_pairs: usize,
) -> Option<&'a CorrelationRow> {
    rows.iter().find(|r| {
        r.model == model
            && r.metric == metric
            && r.truth == truth
            && r.group == group
            && r.n_positives == n_positives
            && r.n_pairs == n_pairs
    })
}
