//! What a calibration bundle holds, for people and programs: the CLI's
//! `spanwatch inspect` prints it and the Python package's `Bundle.read`
//! returns it. Reading refuses a corrupt or truncated file, and, given a
//! model, a bundle made for another model or dimension.

use anyhow::{anyhow, Context, Result};
use serde::Serialize;
use spanwatch_core::bundle::{Bundle, ScoreTable, FORMAT_VERSION};
use spanwatch_core::detector::{SCORES, WATCHES};
use spanwatch_core::norm;
use spanwatch_core::span::{Solver, SpanScore};
use spanwatch_embed::Manifest;
use std::path::Path;

/// A bundle's contents, summarized (the fields of `spanwatch inspect --json`).
#[derive(Clone, Debug, Serialize)]
pub struct BundleSummary {
    /// The bundle file.
    pub file: String,
    /// Its size in bytes.
    pub bytes: usize,
    /// The bundle format this build reads.
    pub format_version: u16,
    /// The model's manifest name.
    pub model: String,
    /// The embedding identity, hex.
    pub model_sha256: String,
    /// Embedding dimension.
    pub dim: u32,
    /// The calibrated generator.
    pub generator: String,
    /// The span score the edge computes over its window.
    pub solver: Solver,
    /// Calibration pairs.
    pub n_pairs: u32,
    /// Vectors of the reference basis.
    pub k: usize,
    /// The basis's largest singular values (up to 5).
    pub singular_values_top: Vec<f32>,
    /// The calibration set's own score.
    pub reference: SpanScore,
    /// Pairs in the edge's window.
    pub window: u32,
    /// The drift detector.
    pub detector: DetectorSummary,
    /// ||w|| of the probe.
    pub w_norm: f64,
    /// Smallest and largest standard deviation of the real embeddings.
    pub sigma_range: [f32; 2],
}

/// The drift detector of a [`BundleSummary`].
#[derive(Clone, Debug, Serialize)]
pub struct DetectorSummary {
    /// Always "cusum".
    pub kind: &'static str,
    /// The alignment CUSUM's reference value.
    pub alignment_k: f64,
    /// The change-size CUSUMs' reference value.
    pub size_k: f64,
    /// The off-span CUSUM's reference value.
    pub off_span_k: f64,
    /// The pixel-extent CUSUMs' reference value.
    pub extent_k: f64,
    /// Each score's residual given the others (rows: alignment, size, off span, extent).
    pub residuals: [[f64; SCORES]; SCORES],
    /// Each CUSUM's threshold, in the order of `Watch::ALL`.
    pub thresholds: [f64; WATCHES],
    /// The shift of good pairs' change size and pixel extent, in sd, their thresholds tolerate.
    pub size_margin: f64,
    /// Quiet pairs before a raised alert clears.
    pub clear_after: u32,
    /// Target good pairs between false alarms.
    pub false_alarm_every: u32,
    /// Good pairs between false alarms in the calibration's simulation.
    pub simulated_every: f64,
    /// Knots of the alignment's score table.
    pub alignment_knots: usize,
    /// Knots of the size's score table.
    pub size_knots: usize,
    /// Knots of the off span's score table.
    pub off_span_knots: usize,
    /// Knots of the pixel extent's score table.
    pub extent_knots: usize,
    /// First and last calibrated alignment.
    #[serde(skip)]
    pub alignment_range: [f32; 2],
    /// First and last calibrated log change size.
    #[serde(skip)]
    pub size_range: [f32; 2],
    /// First and last calibrated off-span share.
    #[serde(skip)]
    pub off_span_range: [f32; 2],
    /// First and last calibrated log pixel extent.
    #[serde(skip)]
    pub extent_range: [f32; 2],
}

/// The first and last values of a score table.
fn ends(table: &ScoreTable) -> [f32; 2] {
    [table.values.iter().next().unwrap_or(f32::NAN), table.values.iter().last().unwrap_or(f32::NAN)]
}

/// Reads and checks the bundle at `path`; with `model` (a name or manifest
/// path), also that it was made with that model's embeddings.
pub fn read_bundle(path: &Path, model: Option<&str>) -> Result<BundleSummary> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let bundle = Bundle::decode(&bytes).with_context(|| path.display().to_string())?;
    if let Some(model) = model {
        let manifest = Manifest::resolve(model)?;
        let sha: [u8; 32] = hex::decode(&manifest.sha256)?.try_into().map_err(|_| anyhow!("bad sha256 in the manifest"))?;
        bundle.check_model(&manifest.embedding_identity(&sha), manifest.output.dim).with_context(|| path.display().to_string())?;
    }
    let w = bundle.w.to_vec();
    let sigma = bundle.sigma.to_vec();
    let d = bundle.detector;
    Ok(BundleSummary {
        file: path.display().to_string(),
        bytes: bytes.len(),
        format_version: FORMAT_VERSION,
        model: bundle.model.name.to_string(),
        model_sha256: hex::encode(bundle.model.sha256),
        dim: bundle.model.dim,
        generator: bundle.generator.to_string(),
        solver: bundle.solver,
        n_pairs: bundle.n_pairs,
        k: bundle.rank(),
        singular_values_top: bundle.singular_values.iter().take(5).collect(),
        reference: bundle.reference,
        window: bundle.window,
        detector: DetectorSummary {
            kind: "cusum",
            alignment_k: d.alignment_k,
            size_k: d.size_k,
            off_span_k: d.off_span_k,
            extent_k: d.extent_k,
            residuals: d.residuals,
            thresholds: d.thresholds,
            size_margin: d.size_margin,
            clear_after: d.clear_after,
            false_alarm_every: d.false_alarm_every,
            simulated_every: d.simulated_every,
            alignment_knots: d.alignment.values.len(),
            size_knots: d.size.values.len(),
            off_span_knots: d.off_span.values.len(),
            extent_knots: d.extent.values.len(),
            alignment_range: ends(&d.alignment),
            size_range: ends(&d.size),
            off_span_range: ends(&d.off_span),
            extent_range: ends(&d.extent),
        },
        w_norm: norm(&w),
        sigma_range: [sigma.iter().copied().fold(f32::INFINITY, f32::min), sigma.iter().copied().fold(0f32, f32::max)],
    })
}
