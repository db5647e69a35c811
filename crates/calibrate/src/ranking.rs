//! Ranking generators: every generator's DS with its interval, chance
//! level, direction and shift, optionally the downstream truth on held-out
//! real images, and the ranking as a table or per-sample CSV.

use crate::metric::bootstrap::{percentile_interval, resampled_probes};
use crate::metric::downstream::train_and_test;
use crate::metric::per_sample::sample_utilities;
use crate::metric::shift::{mean_shift, real_gap};
use crate::metric::SpanFit;
use crate::pipeline::Prepared;
use crate::progress;
use anyhow::{Context, Result};
use rayon::prelude::*;
use serde::Serialize;
use spanwatch_core::span::{alignment, Solver};
use std::path::Path;

/// One generator's scores.
#[derive(Clone, Debug, Serialize)]
pub struct GeneratorRow {
    /// Generator name.
    pub name: String,
    /// Number of pairs.
    pub n_pairs: usize,
    /// Effective rank of the difference vectors.
    pub k: usize,
    /// Relative projection error.
    pub rpe: f64,
    /// Discriminative span.
    pub ds: f64,
    /// 95% bootstrap interval of DS over the real positives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ds_ci: Option<[f64; 2]>,
    /// DS of a random span of the same rank.
    pub chance_ds: f64,
    /// Chance-corrected captured share of the probe.
    pub corrected: f64,
    /// Mean cosine of w and each difference vector.
    pub mean_alignment: f64,
    /// Share of pairs whose change points away from the defect side (alignment <= 0).
    pub opposed_share: f64,
    /// Mean shift of the changes along w, as a share of the real defects' (see metric::shift).
    pub probe_shift: Option<f64>,
    /// With --holdout: F1 of a classifier trained on the generator's synthetic positives, on the held-out real images.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holdout_f1: Option<f64>,
    /// With --holdout: its AUROC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holdout_auroc: Option<f64>,
    /// Pairs whose synthetic image embeds exactly like its source.
    pub zero_pairs: usize,
}

/// Scores every generator of a prepared dataset, ranked by DS (highest first).
pub fn score_generators(prepared: &Prepared, solver: Solver, bootstrap: usize, seed: u64, quiet: bool) -> Result<Vec<GeneratorRow>> {
    let w = &prepared.probe.w;
    let probes = if bootstrap > 0 {
        let bar = progress::bar(bootstrap, "bootstrap", quiet);
        let probes = resampled_probes(&prepared.negatives, &prepared.positives, bootstrap, seed, || bar.inc(1))
            .context("bootstrapping the probe")?;
        bar.finish_and_clear();
        probes
    } else {
        Vec::new()
    };
    // What every generator's row shares: the real defects' gap along w, and
    // with --holdout the downstream classifiers' negatives and test set.
    let gap = real_gap(w, &prepared.negatives, &prepared.positives);
    let negatives: Vec<&[f32]> = prepared.negatives.iter().map(|v| v.as_slice()).collect();
    let test: Vec<&[f32]> = prepared.held_out.iter().flat_map(|h| h.negatives.iter().chain(&h.positives)).map(|v| v.as_slice()).collect();
    let labels: Vec<bool> = prepared.held_out.iter().flat_map(|h| (0..test.len()).map(|i| i >= h.negatives.len())).collect();
    let mut rows: Vec<GeneratorRow> = prepared
        .generators
        .iter()
        .enumerate()
        .map(|(index, g)| {
            let fit = SpanFit::new(g.diffs.clone());
            let score = fit.score(w, solver);
            let ds_ci = (!probes.is_empty()).then(|| {
                let values: Vec<f64> = probes.par_iter().map(|p| fit.score(p, solver).ds).collect();
                let interval = percentile_interval(&values, 0.95);
                [interval.low, interval.high]
            });
            let rows_f32 = || g.diffs.row_iter().map(|row| row.iter().map(|&v| v as f32).collect::<Vec<f32>>());
            let alignments: Vec<f64> = rows_f32().map(|d| alignment(w, &d).unwrap_or(0.0)).collect();
            let downstream = prepared.held_out.as_ref().map(|h| {
                let positives: Vec<&[f32]> = h.training_positives[index].iter().map(|v| v.as_slice()).collect();
                if positives.is_empty() {
                    return Ok((f64::NAN, f64::NAN));
                }
                train_and_test(&negatives, &positives, &test, &labels)
                    .map(|(f1, auroc, _)| (f1, auroc))
                    .with_context(|| format!("the downstream classifier of generator {:?}", g.name))
            });
            let downstream = downstream.transpose()?;
            Ok(GeneratorRow {
                name: g.name.clone(),
                n_pairs: g.pairs.len(),
                k: fit.k(),
                rpe: score.rpe,
                ds: score.ds,
                ds_ci,
                chance_ds: score.chance_ds,
                corrected: score.corrected,
                mean_alignment: alignments.iter().sum::<f64>() / alignments.len() as f64,
                opposed_share: alignments.iter().filter(|&&a| a <= 0.0).count() as f64 / alignments.len() as f64,
                probe_shift: gap.and_then(|gap| mean_shift(w, rows_f32(), gap)),
                holdout_f1: downstream.map(|d| d.0),
                holdout_auroc: downstream.map(|d| d.1),
                zero_pairs: g.zero_pairs,
            })
        })
        .collect::<Result<_>>()?;
    rows.sort_by(|a, b| b.ds.total_cmp(&a.ds).then_with(|| a.name.cmp(&b.name)));
    Ok(rows)
}

/// The document `spanwatch score --json` prints and the Python package's
/// `rank` returns: the model, the solver, the counts and every generator's
/// row, best first.
#[derive(Clone, Debug, Serialize)]
pub struct ScoreReport {
    /// The model's manifest name.
    pub model: String,
    /// The embedding identity, hex.
    pub model_sha256: String,
    /// Embedding dimension.
    pub dim: usize,
    /// The solver's name.
    pub solver: &'static str,
    /// The ridge parameter (ridge only).
    pub lambda: Option<f64>,
    /// Real negatives the probe was trained on.
    pub n_negatives: usize,
    /// Real positives the probe was trained on.
    pub n_positives: usize,
    /// Bootstrap replicates behind the intervals (0 = none).
    pub bootstrap: usize,
    /// The generators, ranked by DS.
    pub generators: Vec<GeneratorRow>,
    /// The held-out check, with `--holdout`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holdout: Option<HoldoutReport>,
    /// What the pipeline warned about.
    pub warnings: Vec<String>,
}

/// What a held-out check adds to the [`ScoreReport`].
#[derive(Clone, Debug, Serialize)]
pub struct HoldoutReport {
    /// Real negatives held out of the probe.
    pub n_negatives: usize,
    /// Real positives held out of the probe.
    pub n_positives: usize,
    /// Spearman rho between DS and the held-out F1 across generators.
    pub ds_f1_spearman: f64,
}

impl ScoreReport {
    /// The report of `rows`, scored on `prepared` with `solver` and `bootstrap` replicates.
    pub fn new(prepared: &Prepared, solver: Solver, bootstrap: usize, rows: Vec<GeneratorRow>) -> ScoreReport {
        ScoreReport {
            model: prepared.model.name.clone(),
            model_sha256: hex::encode(prepared.model.sha256),
            dim: prepared.model.dim,
            solver: solver.name(),
            lambda: match solver {
                Solver::Ridge { lambda } => Some(lambda),
                _ => None,
            },
            n_negatives: prepared.negatives.len(),
            n_positives: prepared.positives.len(),
            bootstrap,
            holdout: prepared.held_out.as_ref().map(|h| HoldoutReport {
                n_negatives: h.negatives.len(),
                n_positives: h.positives.len(),
                ds_f1_spearman: holdout_agreement(&rows).unwrap_or(f64::NAN),
            }),
            generators: rows,
            warnings: prepared.warnings.clone(),
        }
    }
}

/// Spearman rho between DS and the held-out F1 across generators, when held out.
pub fn holdout_agreement(rows: &[GeneratorRow]) -> Option<f64> {
    let (ds, f1): (Vec<f64>, Vec<f64>) = rows.iter().filter_map(|r| Some((r.ds, r.holdout_f1?)).filter(|(_, f)| f.is_finite())).unzip();
    (ds.len() >= 3).then(|| crate::stats::spearman(&ds, &f1))
}

/// The ranking as a fixed-width table.
pub fn format_table(rows: &[GeneratorRow]) -> String {
    let with_ci = rows.iter().any(|r| r.ds_ci.is_some());
    let with_holdout = rows.iter().any(|r| r.holdout_f1.is_some());
    let mut out = format!(
        "{:>4}  {:<18} {:>6} {:>5} {:>7} {:>7}{} {:>7} {:>9} {:>9} {:>8} {:>7}{}\n",
        "rank",
        "generator",
        "pairs",
        "k",
        "RPE",
        "DS",
        if with_ci { "  95% CI        " } else { "" },
        "chance",
        "corrected",
        "align",
        "opposed",
        "shift",
        if with_holdout { "  held-out F1  AUROC" } else { "" }
    );
    for (i, r) in rows.iter().enumerate() {
        let ci = match r.ds_ci {
            Some([lo, hi]) => format!("  [{lo:.3}, {hi:.3}]"),
            None if with_ci => " ".repeat(16),
            None => String::new(),
        };
        let shift = r.probe_shift.map_or("n/a".to_string(), |s| format!("{s:+.3}"));
        let held = match (r.holdout_f1, r.holdout_auroc) {
            (Some(f1), Some(auroc)) => format!("  {f1:>11.3} {auroc:>6.3}"),
            _ => String::new(),
        };
        out += &format!(
            "{:>4}  {:<18} {:>6} {:>5} {:>7.4} {:>7.4}{ci} {:>7.4} {:>9.4} {:>+8.3} {:>7.0}% {shift:>7}{held}\n",
            i + 1,
            r.name,
            r.n_pairs,
            r.k,
            r.rpe,
            r.ds,
            r.chance_ds,
            r.corrected,
            r.mean_alignment,
            100.0 * r.opposed_share
        );
    }
    out
}

/// One synthetic sample's utility: its alignment with w and what it adds to
/// its generator's DS (DS with it minus DS without it).
#[derive(Clone, Debug, Serialize)]
pub struct SampleRow {
    /// The generator.
    pub generator: String,
    /// The synthetic image.
    pub synthetic: std::path::PathBuf,
    /// Its source.
    pub source: std::path::PathBuf,
    /// Cosine of w and its difference vector (None for no change).
    pub alignment: Option<f64>,
    /// Its marginal effect on its generator's DS.
    pub marginal_ds: f64,
}

/// Every synthetic sample's utility, generator by generator.
pub fn per_sample(prepared: &Prepared, solver: Solver, quiet: bool) -> Vec<SampleRow> {
    let total = prepared.generators.iter().map(|g| g.pairs.len()).sum();
    let bar = progress::bar(total, "per-sample", quiet);
    let mut rows = Vec::with_capacity(total);
    for g in &prepared.generators {
        let fit = SpanFit::new(g.diffs.clone());
        let utilities = sample_utilities(&prepared.probe.w, &fit, solver, || bar.inc(1));
        for (pair, u) in g.pairs.iter().zip(utilities) {
            rows.push(SampleRow {
                generator: g.name.clone(),
                synthetic: pair.synthetic.clone(),
                source: pair.source.clone(),
                alignment: u.alignment,
                marginal_ds: u.marginal,
            });
        }
    }
    bar.finish_and_clear();
    rows
}

/// Writes one CSV row per synthetic sample: generator, file, source, alignment, marginal DS.
pub fn write_per_sample(path: &Path, prepared: &Prepared, solver: Solver, quiet: bool) -> Result<()> {
    let mut writer = csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))?;
    writer.write_record(["generator", "synthetic", "source", "alignment", "marginal_ds"])?;
    for row in per_sample(prepared, solver, quiet) {
        writer.write_record([
            row.generator,
            row.synthetic.display().to_string(),
            row.source.display().to_string(),
            row.alignment.map(|a| format!("{a:.6}")).unwrap_or_default(),
            format!("{:.6}", row.marginal_ds),
        ])?;
    }
    writer.flush().with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
