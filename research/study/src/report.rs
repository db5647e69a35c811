//! The study's outputs: results.csv (every cell), correlations.csv (every
//! metric against the downstream truth, per family and pooled, at every
//! sample size), and summary.md.

use crate::correlations::{correlations, families, find, generators, CorrelationRow};
use crate::evaluate::Metric;
use crate::{CellResult, Reference, StudyConfig, TRUTHS, UNCERTAIN_TRUTHS};
use anyhow::{Context, Result};
use spanwatch_calibrate::stats::Correlation;
use std::fmt::Write as _;
use std::path::Path;

fn write_results(results: &[CellResult], path: &Path) -> Result<()> {
    let mut writer = csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))?;
    let mut header = vec!["surface", "family", "generator", "model", "n_positives", "n_pairs"];
    header.extend(Metric::ALL.map(Metric::name));
    header.extend(TRUTHS);
    header.extend(UNCERTAIN_TRUTHS);
    writer.write_record(&header)?;
    for c in results {
        let mut record = vec![
            c.surface.clone(),
            c.family.clone(),
            c.generator.to_string(),
            c.model.clone(),
            c.n_positives.to_string(),
            c.n_pairs.to_string(),
        ];
        record.extend(c.metrics.iter().map(|v| format!("{v:.6}")));
        record.extend(c.truths.iter().map(|v| format!("{v:.6}")));
        match c.uncertain_truths {
            Some(values) => record.extend(values.iter().map(|v| format!("{v:.6}"))),
            None => record.extend(UNCERTAIN_TRUTHS.map(|_| String::new())),
        }
        writer.write_record(&record)?;
    }
    writer.flush()?;
    Ok(())
}

fn write_correlations(rows: &[CorrelationRow], path: &Path) -> Result<()> {
    let mut writer = csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))?;
    writer.write_record([
        "model",
        "metric",
        "truth",
        "group",
        "n_positives",
        "n_pairs",
        "points",
        "spearman",
        "spearman_low",
        "spearman_high",
        "pearson",
        "pearson_low",
        "pearson_high",
    ])?;
    for r in rows {
        let f = |v: f64| format!("{v:.4}");
        writer.write_record([
            r.model.clone(),
            r.metric.name().into(),
            r.truth.into(),
            r.group.clone(),
            r.n_positives.to_string(),
            r.n_pairs.to_string(),
            r.points.to_string(),
            f(r.spearman.value),
            f(r.spearman.low),
            f(r.spearman.high),
            f(r.pearson.value),
            f(r.pearson.low),
            f(r.pearson.high),
        ])?;
    }
    writer.flush()?;
    Ok(())
}

fn cell(c: &Correlation) -> String {
    if c.value.is_finite() {
        format!("{:+.2} [{:+.2}, {:+.2}]", c.value, c.low, c.high)
    } else {
        "n/a".into()
    }
}

/// The scores whose structural behaviour the study checks: the DS variants
/// and the direction and shift scores beside them.
pub const CHECKED_SCORES: [Metric; 7] =
    [Metric::DsRidge, Metric::DsLstsq, Metric::DsNnls, Metric::DsCorrected, Metric::Alignment, Metric::ProbeShift, Metric::ShiftCapped];

/// A structural truth any sane data must show, counted over the (surface,
/// family, model) cases at the headline sample size.
#[derive(Clone, Debug)]
pub struct StructuralCheck {
    /// The score checked.
    pub score: Metric,
    /// What must hold.
    pub what: &'static str,
    /// Cases where it holds.
    pub holds: usize,
    /// Cases.
    pub cases: usize,
}

/// The structural checks for every score of [`CHECKED_SCORES`].
pub fn structural_checks(config: &StudyConfig, results: &[CellResult]) -> Vec<StructuralCheck> {
    let (n_pos, n_pairs) = (config.default_positives(), config.max_pairs());
    let mut checks = Vec::new();
    for score in CHECKED_SCORES {
        let mut counts = [(0, 0); 3];
        for surface in &config.surfaces {
            for family in &families(results) {
                for model in &config.models {
                    let cells: Vec<&CellResult> = results
                        .iter()
                        .filter(|c| {
                            &c.surface == surface
                                && &c.family == family
                                && &c.model == model
                                && c.n_positives == n_pos
                                && c.n_pairs == n_pairs
                        })
                        .collect();
                    let by_name = |which: Reference| cells.iter().find(|c| c.generator.reference() == Some(which)).map(|c| c.metric(score));
                    let (Some(copy), Some(faithful)) = (by_name(Reference::Copy), by_name(Reference::Faithful)) else { continue };
                    let lowest = cells.iter().all(|c| c.generator.reference() == Some(Reference::Copy) || c.metric(score) > copy);
                    for (slot, holds) in [
                        Some(lowest),
                        by_name(Reference::Photometric).map(|p| faithful > p),
                        by_name(Reference::Noise).map(|n| faithful > n),
                    ]
                    .into_iter()
                    .enumerate()
                    {
                        if let Some(holds) = holds {
                            counts[slot].0 += holds as usize;
                            counts[slot].1 += 1;
                        }
                    }
                }
            }
        }
        let whats = [
            "the unchanged copy scores lowest of all generators",
            "faithful scores above photometric-only",
            "faithful scores above noise-only",
        ];
        for (what, (holds, cases)) in whats.into_iter().zip(counts) {
            checks.push(StructuralCheck { score, what, holds, cases });
        }
    }
    checks
}

/// A table of rho for every metric (rows) at every sample size (columns).
fn sweep_table<'a>(md: &mut String, title: &str, unit: &str, sizes: &[usize], row: impl Fn(Metric, usize) -> Option<&'a CorrelationRow>) {
    let _ = writeln!(md, "\n### {title}\n");
    let _ = writeln!(md, "| metric | {} |", sizes.iter().map(|n| format!("{n} {unit}")).collect::<Vec<_>>().join(" | "));
    let _ = writeln!(md, "|---|{}", "---|".repeat(sizes.len()));
    for metric in Metric::ALL {
        let values: Vec<String> =
            sizes.iter().map(|&n| row(metric, n).map_or("n/a".into(), |r| format!("{:+.2}", r.spearman.value))).collect();
        let _ = writeln!(md, "| {metric} | {} |", values.join(" | "));
    }
}

fn summary(config: &StudyConfig, results: &[CellResult], rows: &[CorrelationRow]) -> String {
    let (n_pos, n_pairs) = (config.default_positives(), config.max_pairs());
    let mut md = String::new();
    let _ = writeln!(md, "# spanwatch validation study\n");
    let _ = writeln!(
        md,
        "Surfaces {:?}; families {:?}; {} generators; models {:?}; pairs {:?}; real positives {:?}; {} train negatives, {} + {} held-out test images per drawn family, {} + {} per ELPV cell type.\n",
        config.surfaces,
        families(results),
        generators(results).len(),
        config.models,
        config.pair_counts,
        config.positive_counts,
        config.train_negatives,
        config.test_negatives,
        config.test_positives,
        config.real_test,
        config.real_test
    );
    if results.iter().any(|c| c.family != crate::EL_FAMILY) {
        let _ = writeln!(md, "**On brick, grass and gravel the defects are drawn on real CC0 surface textures, not photographed**: a controlled benchmark, not evidence on real defect data.\n");
    }
    if results.iter().any(|c| c.family == crate::EL_FAMILY) {
        let _ = writeln!(md, "**On elpv-mono and elpv-poly the defects are photographed**: real cracks, inactive regions and broken fingers in electroluminescence images of solar cells. {}\n", crate::elpv::ATTRIBUTION);
    }
    let _ = writeln!(
        md,
        "Downstream truth, actually trained on real negatives plus all {n_pairs} synthetic positives and tested on held-out real images (F1 at the decision threshold, and AUROC): (LR) logistic regression on the *other* model's embeddings; (CNN) a small CNN from pixels, mean of {} seeds. Correlations are across generators (x surfaces [x families]), with 95% bootstrap intervals; FID and KID are negated so that higher is better for every metric.\n",
        config.cnn_seeds
    );
    for model in &config.models {
        let _ = writeln!(md, "## {model}: Spearman rho with downstream F1 ({n_pos} real positives, {n_pairs} pairs)\n");
        let mut groups: Vec<String> = vec!["pooled".into()];
        groups.extend(config.surfaces.iter().filter(|s| results.iter().any(|c| &c.surface == *s)).cloned());
        groups.extend(families(results));
        let _ = writeln!(
            md,
            "| metric | {} | Pearson r (pooled) | rho with AUROC (pooled) | rho with CNN F1 (pooled) | rho with CNN AUROC (pooled) |",
            groups.join(" | ")
        );
        let _ = writeln!(md, "|---|{}---|---|---|---|", "---|".repeat(groups.len()));
        for metric in Metric::ALL {
            let values: Vec<String> = groups
                .iter()
                .map(|g| find(rows, model, metric, "lr_f1", g, n_pos, n_pairs).map_or("n/a".into(), |r| cell(&r.spearman)))
                .collect();
            let pearson = find(rows, model, metric, "lr_f1", "pooled", n_pos, n_pairs).map_or("n/a".into(), |r| cell(&r.pearson));
            let others: Vec<String> = ["lr_auroc"]
                .iter()
                .map(|t| find(rows, model, metric, t, "pooled", n_pos, n_pairs).map_or("n/a".into(), |r| cell(&r.spearman)))
                .collect();
            let _ = writeln!(md, "| {metric} | {} | {pearson} | {} |", values.join(" | "), others.join(" | "));
        }
        sweep_table(
            &mut md,
            &format!("{model}: pooled rho with F1 against the number of pairs ({n_pos} real positives)"),
            "pairs",
            &config.pair_counts,
            |metric, n| find(rows, model, metric, "lr_f1", "pooled", n_pos, n),
        );
        sweep_table(
            &mut md,
            &format!("{model}: pooled rho with F1 against the number of real positives ({n_pairs} pairs)"),
            "positives",
            &config.positive_counts,
            |metric, n| find(rows, model, metric, "lr_f1", "pooled", n, n_pairs),
        );
        let _ = writeln!(md);
    }
    let _ = writeln!(md, "## Per generator (mean over surfaces and families, {n_pos} positives, {n_pairs} pairs)\n");
    let _ =
        writeln!(md, "| generator | model | DS ridge | DS nnls | alignment | probe shift | FID | LR F1 | LR AUROC | CNN F1 | CNN AUROC |");
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|");
    for generator in &generators(results) {
        for model in &config.models {
            let cells: Vec<&CellResult> = results
                .iter()
                .filter(|c| &c.generator.name() == generator && &c.model == model && c.n_positives == n_pos && c.n_pairs == n_pairs)
                .collect();
            let mean = |f: &dyn Fn(&CellResult) -> f64| cells.iter().map(|c| f(c)).sum::<f64>() / cells.len().max(1) as f64;
            let _ = writeln!(
                md,
                "| {generator} | {model} | {:.4} | {:.4} | {:+.3} | {:+.3} | {:.1} | {:.3} | {:.3} | {:.3} | {:.3} |",
                mean(&|c| c.metric(Metric::DsRidge)),
                mean(&|c| c.metric(Metric::DsNnls)),
                mean(&|c| c.metric(Metric::Alignment)),
                mean(&|c| c.metric(Metric::ProbeShift)),
                mean(&|c| c.metric(Metric::Frechet)),
                mean(&|c| c.truths[0]),
                mean(&|c| c.truths[1]),
                mean(&|c| c.truths[2]),
                mean(&|c| c.truths[3])
            );
        }
    }
    uncertain_table(&mut md, config, rows);
    let _ = writeln!(md, "\n## Structural checks\n");
    let _ = writeln!(md, "Counted over (surface, family, model) cases at {n_pos} real positives and {n_pairs} pairs.\n");
    let _ = writeln!(md, "| score | check | holds |");
    let _ = writeln!(md, "|---|---|---|");
    for c in structural_checks(config, results) {
        let _ = writeln!(md, "| {} | {} | {} of {} |", c.score, c.what, c.holds, c.cases);
    }
    md
}

/// The secondary test set (ELPV cells the experts were unsure of, 1/3 and
/// 2/3): rho of the main scores with F1 there, beside rho with F1 on the
/// certain defects, per ELPV surface and truth.
fn uncertain_table(md: &mut String, config: &StudyConfig, rows: &[CorrelationRow]) {
    let (n_pos, n_pairs) = (config.default_positives(), config.max_pairs());
    let surfaces: Vec<&String> =
        config.surfaces.iter().filter(|s| rows.iter().any(|r| &r.group == *s && r.truth == UNCERTAIN_TRUTHS[0])).collect();
    if surfaces.is_empty() {
        return;
    }
    let _ = writeln!(md, "\n## Secondary test set: cells the experts were unsure of (photographed, {n_pos} positives, {n_pairs} pairs)\n");
    let _ = writeln!(md, "The same trained classifiers tested on the held-out defect-free cells plus held-out cells labelled defective with probability 1/3 or 2/3. Spearman rho with F1; in brackets the rho with F1 on the certain defects (probability 1).\n");
    let columns: Vec<(String, &str, &str)> = surfaces
        .iter()
        .flat_map(|s| {
            [(format!("{s}, LR"), "lr_f1_uncertain", "lr_f1"), (format!("{s}, CNN"), "cnn_f1_uncertain", "cnn_f1")]
                .map(|(h, u, c)| (h, u, c, s.as_str()))
        })
        .map(|(h, u, c, _)| (h, u, c))
        .collect();
    let _ = writeln!(md, "| model | metric | {} |", columns.iter().map(|c| c.0.as_str()).collect::<Vec<_>>().join(" | "));
    let _ = writeln!(md, "|---|---|{}", "---|".repeat(columns.len()));
    for model in &config.models {
        for metric in [Metric::DsNnls, Metric::DsRidge, Metric::Alignment, Metric::Kid, Metric::Frechet, Metric::Recall] {
            let values: Vec<String> = surfaces
                .iter()
                .flat_map(|s| [("lr_f1_uncertain", "lr_f1"), ("cnn_f1_uncertain", "cnn_f1")].map(|(u, c)| (s.as_str(), u, c)))
                .map(|(s, u, c)| {
                    let get = |t: &str| find(rows, model, metric, t, s, n_pos, n_pairs).map(|r| r.spearman);
                    match (get(u), get(c)) {
                        (Some(u), Some(c)) => format!("{} ({:+.2})", cell(&u), c.value),
                        _ => "n/a".into(),
                    }
                })
                .collect();
            let _ = writeln!(md, "| {model} | {metric} | {} |", values.join(" | "));
        }
    }
}

/// Writes results.csv, correlations.csv and summary.md under `out`.
pub fn write(config: &StudyConfig, results: &[CellResult], out: &Path) -> Result<()> {
    write_results(results, &out.join("results.csv"))?;
    let rows = correlations(config, results);
    write_correlations(&rows, &out.join("correlations.csv"))?;
    std::fs::write(out.join("summary.md"), summary(config, results, &rows))
        .with_context(|| format!("cannot write {}", out.join("summary.md").display()))?;
    std::fs::write(out.join("selection.md"), crate::selection::summary(config, results, &rows))
        .with_context(|| format!("cannot write {}", out.join("selection.md").display()))?;
    crate::plots::score_vs_truth(config, results, &rows, Metric::DsRidge, &out.join("ds_ridge_vs_f1.svg"))?;
    crate::plots::score_vs_truth(config, results, &rows, Metric::DsNnls, &out.join("ds_nnls_vs_f1.svg"))?;
    crate::plots::rho_bars(config, &rows, &out.join("rho_by_metric.svg"))?;
    crate::plots::rho_vs_pairs(
        config,
        &rows,
        &[Metric::DsRidge, Metric::DsNnls, Metric::Alignment, Metric::Frechet, Metric::Kid, Metric::Precision],
        &out.join("rho_vs_pairs.svg"),
    )?;
    Ok(())
}
