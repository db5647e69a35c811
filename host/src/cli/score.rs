//! `spanwatch score`: every generator's DS, ranked.

use super::{DataArgs, Global, SolverArgs};
use crate::metric::bootstrap::{percentile_interval, resampled_probes};
use crate::metric::per_sample::sample_utilities;
use crate::metric::SpanFit;
use crate::pipeline::{prepare, Prepared};
use crate::progress;
use anyhow::{Context, Result};
use serde::Serialize;
use spanwatch_core::span::{alignment, Solver};
use std::path::PathBuf;

/// Arguments of `spanwatch score`.
#[derive(clap::Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    solver: SolverArgs,
    /// Bootstrap replicates over the real positives for a 95% interval on DS (0 = none).
    #[arg(long, default_value_t = 0, value_name = "N")]
    bootstrap: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Write each synthetic sample's alignment and marginal effect on DS to this CSV.
    #[arg(long, value_name = "FILE.csv")]
    per_sample: Option<PathBuf>,
}

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
    /// Pairs whose synthetic image embeds exactly like its source.
    pub zero_pairs: usize,
}

/// The JSON document of `spanwatch score --json`.
#[derive(Serialize)]
struct ScoreReport<'a> {
    model: &'a str,
    model_sha256: &'a str,
    dim: usize,
    solver: &'a str,
    lambda: Option<f64>,
    n_negatives: usize,
    n_positives: usize,
    bootstrap: usize,
    generators: &'a [GeneratorRow],
    warnings: &'a [String],
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
    let mut rows: Vec<GeneratorRow> = prepared
        .generators
        .iter()
        .map(|g| {
            let fit = SpanFit::new(g.diffs.clone());
            let score = fit.score(w, solver);
            let ds_ci = (!probes.is_empty()).then(|| {
                let values: Vec<f64> = probes.iter().map(|p| fit.score(p, solver).ds).collect();
                let interval = percentile_interval(&values, 0.95);
                [interval.low, interval.high]
            });
            let alignments: Vec<f64> = (0..g.diffs.nrows())
                .map(|i| alignment(w, &g.diffs.row(i).iter().map(|&v| v as f32).collect::<Vec<_>>()).unwrap_or(0.0))
                .collect();
            GeneratorRow {
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
                zero_pairs: g.zero_pairs,
            }
        })
        .collect();
    rows.sort_by(|a, b| b.ds.total_cmp(&a.ds).then_with(|| a.name.cmp(&b.name)));
    Ok(rows)
}

/// The ranking as a fixed-width table.
pub fn format_table(rows: &[GeneratorRow]) -> String {
    let with_ci = rows.iter().any(|r| r.ds_ci.is_some());
    let mut out = format!(
        "{:>4}  {:<18} {:>6} {:>5} {:>7} {:>7}{} {:>7} {:>9} {:>9} {:>8}\n",
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
        "opposed"
    );
    for (i, r) in rows.iter().enumerate() {
        let ci = match r.ds_ci {
            Some([lo, hi]) => format!("  [{lo:.3}, {hi:.3}]"),
            None if with_ci => " ".repeat(16),
            None => String::new(),
        };
        out += &format!(
            "{:>4}  {:<18} {:>6} {:>5} {:>7.4} {:>7.4}{ci} {:>7.4} {:>9.4} {:>+8.3} {:>7.0}%\n",
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

pub(super) fn run(args: ScoreArgs, global: &Global) -> Result<()> {
    let prepared = prepare(&args.data.data, &args.data.model, &global.cache_choice(), args.data.skip_unpaired, global.quiet)?;
    let solver = args.solver.solver();
    let rows = score_generators(&prepared, solver, args.bootstrap, args.seed, global.quiet)?;
    if let Some(path) = &args.per_sample {
        write_per_sample(path, &prepared, solver, global.quiet)?;
    }
    if args.json {
        let report = ScoreReport {
            model: &prepared.model.name,
            model_sha256: &prepared.model.sha256,
            dim: prepared.model.dim,
            solver: solver.name(),
            lambda: match solver {
                Solver::Ridge { lambda } => Some(lambda),
                _ => None,
            },
            n_negatives: prepared.negatives.len(),
            n_positives: prepared.positives.len(),
            bootstrap: args.bootstrap,
            generators: &rows,
            warnings: &prepared.warnings,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "model {} ({}..), d = {}, solver {}, {} real negatives, {} real positives",
            prepared.model.name,
            &prepared.model.sha256[..12],
            prepared.model.dim,
            solver.name(),
            prepared.negatives.len(),
            prepared.positives.len()
        );
        print!("{}", format_table(&rows));
    }
    Ok(())
}

/// Writes one CSV row per synthetic sample: generator, file, source, alignment, marginal DS.
fn write_per_sample(path: &std::path::Path, prepared: &Prepared, solver: Solver, quiet: bool) -> Result<()> {
    let mut writer = csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))?;
    writer.write_record(["generator", "synthetic", "source", "alignment", "marginal_ds"])?;
    let total = prepared.generators.iter().map(|g| g.pairs.len()).sum();
    let bar = progress::bar(total, "per-sample", quiet);
    for g in &prepared.generators {
        let fit = SpanFit::new(g.diffs.clone());
        let utilities = sample_utilities(&prepared.probe.w, &fit, solver, || bar.inc(1));
        for (pair, u) in g.pairs.iter().zip(utilities) {
            writer.write_record([
                g.name.clone(),
                pair.synthetic.display().to_string(),
                pair.source.display().to_string(),
                u.alignment.map(|a| format!("{a:.6}")).unwrap_or_default(),
                format!("{:.6}", u.marginal),
            ])?;
        }
    }
    bar.finish_and_clear();
    writer.flush().with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
