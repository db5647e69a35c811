//! Choosing the default configuration (embedding model and pooling, score)
//! on evidence that is not tuned to one set: per-surface rank correlations
//! with downstream truth, leave-one-surface-out choices, and how well the
//! trained truths agree with each other (the ceiling for any predictor).
//! Written as selection.md.

use crate::correlations::{find, CorrelationRow};
use crate::evaluate::Metric;
use crate::{CellResult, StudyConfig};
use spanwatch_calibrate::stats::{spearman, with_interval, Correlation};
use std::fmt::Write as _;

/// The truths a choice is judged on: F1 of the LR on the other network's
/// embeddings and of the pixel CNN.
const JUDGING_TRUTHS: [&str; 2] = ["lr_f1", "cnn_f1"];

/// The scores that may become the default: training-free and computed from
/// the pairs (the reference code's probe accuracy trains a classifier).
fn candidates(config: &StudyConfig) -> Vec<(String, Metric)> {
    config
        .models
        .iter()
        .flat_map(|m| Metric::ALL.into_iter().filter(|&metric| metric != Metric::ProbeAccuracy).map(move |metric| (m.clone(), metric)))
        .collect()
}

/// The surfaces present in the results, in study order.
fn surfaces(config: &StudyConfig, results: &[CellResult]) -> Vec<String> {
    config.surfaces.iter().filter(|s| results.iter().any(|c| &c.surface == *s)).cloned().collect()
}

/// Mean over `surfaces` and the judging truths of a candidate's Spearman rho
/// at the headline sample size (NaN when a value is missing).
fn mean_rho(config: &StudyConfig, rows: &[CorrelationRow], (model, metric): &(String, Metric), surfaces: &[&String]) -> f64 {
    let (n_pos, n_pairs) = (config.default_positives(), config.max_pairs());
    let values: Vec<f64> = surfaces
        .iter()
        .flat_map(|s| JUDGING_TRUTHS.iter().map(move |t| (s, t)))
        .map(|(s, t)| find(rows, model, *metric, t, s, n_pos, n_pairs).map_or(f64::NAN, |r| r.spearman.value))
        .collect();
    values.iter().sum::<f64>() / values.len() as f64
}

/// [`mean_rho`] for ranking: a candidate without a value on some surface
/// ranks last.
fn rank_value(config: &StudyConfig, rows: &[CorrelationRow], candidate: &(String, Metric), surfaces: &[&String]) -> f64 {
    Some(mean_rho(config, rows, candidate, surfaces)).filter(|v| v.is_finite()).unwrap_or(f64::NEG_INFINITY)
}

/// The candidate with the highest mean rho over `surfaces`.
fn best<'a>(
    config: &StudyConfig,
    rows: &[CorrelationRow],
    candidates: &'a [(String, Metric)],
    surfaces: &[&String],
) -> &'a (String, Metric) {
    let value = |c: &(String, Metric)| rank_value(config, rows, c, surfaces);
    candidates.iter().max_by(|a, b| value(a).total_cmp(&value(b))).expect("at least one candidate")
}

/// A correlation with its interval, or why it has none: Spearman's rho is
/// undefined when the score or the truth is the same for every generator.
fn interval(c: &Correlation) -> String {
    if c.value.is_nan() {
        return "undefined (constant over the generators)".into();
    }
    format!("{:+.2} [{:+.2}, {:+.2}]", c.value, c.low, c.high)
}

/// How well the trained truths agree: Spearman rho of LR F1 against CNN F1
/// across the generators of a surface, for the LR on `model`'s truth.
fn agreement(config: &StudyConfig, results: &[CellResult], surface: &str, model: &str) -> Correlation {
    let (n_pos, n_pairs) = (config.default_positives(), config.max_pairs());
    let cells: Vec<&CellResult> =
        results.iter().filter(|c| c.surface == surface && c.model == model && c.n_positives == n_pos && c.n_pairs == n_pairs).collect();
    let (x, y): (Vec<f64>, Vec<f64>) = cells.iter().map(|c| (c.truths[0], c.truths[2])).unzip();
    with_interval(&x, &y, spearman, config.bootstrap, 7)
}

/// selection.md: the evidence for the default configuration.
pub fn summary(config: &StudyConfig, results: &[CellResult], rows: &[CorrelationRow]) -> String {
    let (n_pos, n_pairs) = (config.default_positives(), config.max_pairs());
    let surfaces = surfaces(config, results);
    let all: Vec<&String> = surfaces.iter().collect();
    let candidates = candidates(config);
    let mut md = String::new();
    let _ = writeln!(md, "# Choosing the default configuration\n");
    let _ = writeln!(
        md,
        "Spearman rho between a score and downstream F1 across the generators of each surface ({n_pos} real positives, {n_pairs} pairs), with 95% bootstrap intervals. LR: logistic regression on the other network's embeddings; CNN: the pixel CNN. A candidate is an embedding model (with its pooling) and a score. Surfaces brick, grass and gravel have drawn defects; elpv-mono and elpv-poly photographed ones.\n"
    );
    let _ = writeln!(md, "## Leave one surface out\n");
    let _ = writeln!(md, "The candidate chosen on the other surfaces (highest mean rho over them and both truths), and how it does on the one left out, beside the best candidate for that surface alone.\n");
    let _ = writeln!(
        md,
        "| left out | chosen on the others | its rho, LR | its rho, CNN | best on this surface | its rho, LR | its rho, CNN |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|");
    for held_out in &surfaces {
        let others: Vec<&String> = surfaces.iter().filter(|s| *s != held_out).collect();
        if others.is_empty() {
            continue;
        }
        let chosen = best(config, rows, &candidates, &others);
        let oracle = best(config, rows, &candidates, &[held_out]);
        let rho = |(model, metric): &(String, Metric), truth: &str| {
            find(rows, model, *metric, truth, held_out, n_pos, n_pairs).map_or("n/a".into(), |r| interval(&r.spearman))
        };
        let _ = writeln!(
            md,
            "| {held_out} | {} {} | {} | {} | {} {} | {} | {} |",
            chosen.0,
            chosen.1,
            rho(chosen, "lr_f1"),
            rho(chosen, "cnn_f1"),
            oracle.0,
            oracle.1,
            rho(oracle, "lr_f1"),
            rho(oracle, "cnn_f1")
        );
    }
    let _ = writeln!(md, "\n## Every candidate on every surface\n");
    let _ = writeln!(md, "Mean rho over both truths per surface; the last column is the mean over all surfaces. Sorted by it.\n");
    let _ = writeln!(md, "| model | score | {} | mean |", surfaces.join(" | "));
    let _ = writeln!(md, "|---|---|{}---|", "---|".repeat(surfaces.len()));
    let mut ranked: Vec<&(String, Metric)> = candidates.iter().collect();
    ranked.sort_by(|a, b| rank_value(config, rows, b, &all).total_cmp(&rank_value(config, rows, a, &all)));
    for candidate in ranked {
        let per: Vec<String> = surfaces.iter().map(|s| format!("{:+.2}", mean_rho(config, rows, candidate, &[s]))).collect();
        let _ =
            writeln!(md, "| {} | {} | {} | {:+.2} |", candidate.0, candidate.1, per.join(" | "), mean_rho(config, rows, candidate, &all));
    }
    let _ = writeln!(md, "\n## How well the trained truths agree (the ceiling for any predictor)\n");
    let _ = writeln!(md, "Spearman rho of the LR's F1 (on the named model's embeddings) against the CNN's F1, across generators.\n");
    // A local or concatenated candidate shares its network's judge: one column per plain feature.
    let judges: Vec<&String> = config.models.iter().filter(|m| crate::is_plain(m)).collect();
    let _ = writeln!(md, "| surface | {} |", judges.iter().map(|m| format!("LR on {m}'s judge vs CNN")).collect::<Vec<_>>().join(" | "));
    let _ = writeln!(md, "|---|{}", "---|".repeat(judges.len()));
    for surface in &surfaces {
        let values: Vec<String> = judges.iter().map(|m| interval(&agreement(config, results, surface, m))).collect();
        let _ = writeln!(md, "| {surface} | {} |", values.join(" | "));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_undefined_correlation_says_why_instead_of_printing_nan() {
        let defined = Correlation { value: 0.5, low: -0.125, high: 0.75 };
        assert_eq!(interval(&defined), "+0.50 [-0.12, +0.75]");
        let constant = Correlation { value: f64::NAN, low: f64::NAN, high: f64::NAN };
        assert_eq!(interval(&constant), "undefined (constant over the generators)");
    }
}
