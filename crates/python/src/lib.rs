//! spanwatch's Python package, its native half (`spanwatch._spanwatch`): the
//! calibration library's scores on arrays, its rankings of dataset folders,
//! its calibration bundles (made and read), the CLI's embedder and the
//! edge's monitoring of a pair stream (spanwatch-monitor). The Python module `spanwatch`
//! (python/spanwatch/__init__.py) checks shapes and dtypes, hands float32
//! rows over as bytes, and builds the typed results from the JSON returned
//! here, whose fields are the CLI's `score --json` fields.
//!
//! Every call releases the GIL while it computes, and turns an error into
//! `FileNotFoundError` (a missing file or folder) or `ValueError` (anything
//! else), with the CLI's message; a panic becomes a `RuntimeError`.

mod arrays;
mod errors;
mod folder;

use anyhow::Context;
use errors::run;
use folder::{solver, Folder};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use spanwatch_calibrate::bundle_summary::read_bundle;
use spanwatch_calibrate::calibration::{calibrate, CalibrationSettings};
use spanwatch_calibrate::curation::curate;
use spanwatch_calibrate::dataset::{write_pairs_csv, Pair};
use spanwatch_calibrate::embedding::{CacheChoice, EmbeddingSession, EmbeddingSource};
use spanwatch_calibrate::metric::drift::DetectorSettings;
use spanwatch_calibrate::metric::SpanFit;
use spanwatch_calibrate::pipeline::prepare_embedded;
use spanwatch_calibrate::ranking::{per_sample, score_generators, ScoreReport};
use spanwatch_core::detector::DetectorState;
use spanwatch_monitor::calibration::Calibration;
use spanwatch_monitor::payloads::{timestamp, Alert, Metrics, PairMessage};
use spanwatch_monitor::scorer::PairScorer;
use std::path::PathBuf;
use std::time::SystemTime;

/// The score report (JSON) of one synthetic set given as arrays: float32
/// rows, native byte order, `dim` values each.
#[pyfunction]
#[pyo3(signature = (negatives, positives, sources, synthetics, dim, solver_name, ridge_lambda, bootstrap, seed))]
#[allow(clippy::too_many_arguments)]
fn score_arrays(
    py: Python<'_>,
    negatives: &[u8],
    positives: &[u8],
    sources: &[u8],
    synthetics: &[u8],
    dim: usize,
    solver_name: &str,
    ridge_lambda: f64,
    bootstrap: usize,
    seed: u64,
) -> PyResult<String> {
    run(py, || {
        let solver = solver(solver_name, ridge_lambda)?;
        let (dataset, model, embeddings) = arrays::dataset(negatives, positives, sources, synthetics, dim)?;
        let prepared = prepare_embedded(dataset, model, &embeddings)?;
        let rows = score_generators(&prepared, solver, bootstrap, seed, true)?;
        Ok(serde_json::to_string(&ScoreReport::new(&prepared, solver, bootstrap, rows))?)
    })
}

/// `spanwatch score DATA --json` as a string: every generator of the
/// dataset folder, embedded by its model (or read from its embeddings).
#[pyfunction]
#[pyo3(signature = (folder, bootstrap, seed))]
fn rank_folder(py: Python<'_>, folder: Folder, bootstrap: usize, seed: u64) -> PyResult<String> {
    run(py, || {
        let solver = folder.solver()?;
        let prepared = folder.prepare()?;
        let rows = score_generators(&prepared, solver, bootstrap, seed, true)?;
        Ok(serde_json::to_string(&ScoreReport::new(&prepared, solver, bootstrap, rows))?)
    })
}

/// `spanwatch score DATA --per-sample F.csv` as JSON: each synthetic
/// sample's alignment and marginal effect on its generator's DS.
#[pyfunction]
#[pyo3(signature = (folder))]
fn per_sample_folder(py: Python<'_>, folder: Folder) -> PyResult<String> {
    run(py, || {
        let solver = folder.solver()?;
        Ok(serde_json::to_string(&per_sample(&folder.prepare()?, solver, true))?)
    })
}

/// What `filter` kept.
#[derive(serde::Serialize)]
struct Kept<'a> {
    pairs: Vec<&'a Pair>,
    subset_ds: f64,
    full_ds: f64,
}

/// `spanwatch filter DATA --generator G`: the samples worth keeping (JSON),
/// also written as a pairs.csv to `output` when given.
#[pyfunction]
#[pyo3(signature = (folder, generator, output))]
fn filter_folder(py: Python<'_>, folder: Folder, generator: String, output: Option<PathBuf>) -> PyResult<String> {
    run(py, || {
        let solver = folder.solver()?;
        let prepared = folder.prepare_generator(&generator)?;
        let set = prepared.generator(&generator)?;
        let curation = curate(&prepared.probe.w, &SpanFit::new(set.diffs.clone()), solver, true);
        let pairs: Vec<&Pair> = curation.keep.iter().map(|&i| &set.pairs[i]).collect();
        if let Some(output) = &output {
            write_pairs_csv(output, pairs.iter().copied())?;
        }
        Ok(serde_json::to_string(&Kept { pairs, subset_ds: curation.subset_ds, full_ds: curation.full_ds })?)
    })
}

/// `spanwatch calibrate DATA --generator G`: the calibration bundle's bytes
/// for the edge (nothing is written).
#[pyfunction]
#[pyo3(signature = (folder, generator, window, false_alarm_every, alignment_k, size_k, off_span_k, extent_k, size_margin, folds, seed))]
#[allow(clippy::too_many_arguments)]
fn calibrate_folder<'py>(
    py: Python<'py>,
    folder: Folder,
    generator: String,
    window: usize,
    false_alarm_every: u32,
    alignment_k: f64,
    size_k: f64,
    off_span_k: f64,
    extent_k: f64,
    size_margin: f64,
    folds: usize,
    seed: u64,
) -> PyResult<Bound<'py, PyBytes>> {
    let bytes = run(py, || {
        let settings = CalibrationSettings {
            solver: folder.solver()?,
            window,
            detector: DetectorSettings {
                alignment_k,
                size_k,
                off_span_k,
                extent_k,
                false_alarm_every,
                size_margin,
                seed,
                ..DetectorSettings::default()
            },
            folds,
        };
        Ok(calibrate(&folder.prepare_generator(&generator)?, &generator, &settings)?.0)
    })?;
    Ok(PyBytes::new(py, &bytes))
}

/// `spanwatch inspect BUNDLE --json` as a string; with `model`, the bundle
/// must have been made with that model's embeddings.
#[pyfunction]
#[pyo3(signature = (path, model))]
fn read_bundle_json(py: Python<'_>, path: PathBuf, model: Option<String>) -> PyResult<String> {
    run(py, || Ok(serde_json::to_string(&read_bundle(&path, model.as_deref())?)?))
}

/// A bundled embedding model (or a manifest path), as the CLI runs it: the
/// same preprocessing, model store and embedding cache.
#[pyclass(module = "spanwatch._spanwatch")]
struct NativeEmbedder {
    session: EmbeddingSession,
}

#[pymethods]
impl NativeEmbedder {
    /// Loads `model`, making it first from its recipe when it is not there yet.
    #[new]
    #[pyo3(signature = (model, cache, no_cache))]
    fn new(py: Python<'_>, model: String, cache: Option<PathBuf>, no_cache: bool) -> PyResult<NativeEmbedder> {
        let session = run(py, || EmbeddingSession::open(&model, &EmbeddingSource::Model(CacheChoice::new(cache, no_cache)), true))?;
        Ok(NativeEmbedder { session })
    }

    /// The images' embeddings as float32 bytes, row by row in `paths`' order.
    fn embed<'py>(&self, py: Python<'py>, paths: Vec<PathBuf>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = run(py, || {
            // A missing file is FileNotFoundError, before anything is embedded.
            if let Some(missing) = paths.iter().find(|p| !p.exists()) {
                let error = std::io::Error::new(std::io::ErrorKind::NotFound, format!("{}: no such file", missing.display()));
                return Err(anyhow::Error::new(error));
            }
            let embedded = self.session.embed_all(paths.iter().map(|p| p.as_path()))?;
            Ok(paths.iter().flat_map(|p| embedded[p].iter().flat_map(|v| v.to_ne_bytes())).collect::<Vec<u8>>())
        })?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// The model's manifest name.
    #[getter]
    fn name(&self) -> String {
        self.session.model().name
    }

    /// The embedding identity (hex): the sha256 a calibration bundle and the
    /// embedding cache record.
    #[getter]
    fn identity(&self) -> String {
        hex::encode(self.session.model().sha256)
    }

    /// Embedding dimension.
    #[getter]
    fn dim(&self) -> usize {
        self.session.model().dim
    }
}

/// What the edge would publish for one pair.
#[derive(serde::Serialize)]
struct PairUpdate {
    metrics: Metrics,
    pair: PairMessage,
    alert: Option<Alert>,
}

/// The edge's monitoring of one calibrated generator, without the daemon:
/// the same window, drift detector and messages (spanwatch-monitor).
#[pyclass(module = "spanwatch._spanwatch")]
struct NativeTracker {
    scorer: PairScorer,
    /// The next alert message's sequence number (the edge's start at 1).
    next_seq: u64,
}

#[pymethods]
impl NativeTracker {
    /// A tracker for the bundle at `bundle`, its alert clear and its window
    /// holding only the calibration's seeds.
    #[new]
    fn new(py: Python<'_>, bundle: PathBuf) -> PyResult<NativeTracker> {
        let scorer = run(py, || {
            let calibration = Calibration::load(&bundle)?;
            PairScorer::new(calibration, DetectorState::default(), &[]).with_context(|| format!("calibration bundle {}", bundle.display()))
        })?;
        Ok(NativeTracker { scorer, next_seq: 1 })
    }

    /// Scores one pair from its two embeddings (float32 bytes) and the
    /// share of pixels its images differ in (None: not measured, no
    /// evidence for the pixel-extent CUSUMs): the JSON of the metrics and
    /// pair messages, and of the alert message when the alert changed (else
    /// null).
    #[pyo3(signature = (source, synthetic, pair, extent=None))]
    fn push(&mut self, py: Python<'_>, source: &[u8], synthetic: &[u8], pair: String, extent: Option<f64>) -> PyResult<String> {
        let (scorer, next_seq) = (&mut self.scorer, &mut self.next_seq);
        run(py, || {
            let dim = scorer.calibration().dim;
            let (source, synthetic) = (arrays::rows("source", source, dim)?, arrays::rows("synthetic", synthetic, dim)?);
            let (source, synthetic) = match (source.as_slice(), synthetic.as_slice()) {
                ([source], [synthetic]) => (source, synthetic),
                _ => anyhow::bail!("source and synthetic must each be one embedding of {dim} values"),
            };
            let scored = scorer.score(source, synthetic, extent.unwrap_or(f64::NAN)).with_context(|| format!("pair {pair}"))?;
            let now = timestamp(SystemTime::now());
            let c = scorer.calibration();
            let metrics = Metrics::from_scored(now.clone(), &pair, c, &scored, 0);
            let verdict = PairMessage::scored(now.clone(), &pair, &scored.report);
            let alert = scored.step.change.map(|change| {
                let alert = Alert::from_change(*next_seq, now, c, change, &pair);
                *next_seq += 1;
                alert
            });
            Ok(serde_json::to_string(&PairUpdate { metrics, pair: verdict, alert })?)
        })
    }

    /// Embedding dimension the bundle takes.
    #[getter]
    fn dim(&self) -> usize {
        self.scorer.calibration().dim
    }

    /// The calibrated generator.
    #[getter]
    fn generator(&self) -> String {
        self.scorer.calibration().generator.clone()
    }

    /// The model the bundle was calibrated with: its manifest name.
    #[getter]
    fn model(&self) -> String {
        self.scorer.calibration().model_name.clone()
    }

    /// Pairs in the window.
    #[getter]
    fn window(&self) -> usize {
        self.scorer.calibration().window
    }
}

/// The share of pixels a pair's images differ in (the edge's pixel extent).
#[pyfunction]
#[pyo3(signature = (source, synthetic))]
fn change_extent(py: Python<'_>, source: PathBuf, synthetic: PathBuf) -> PyResult<f64> {
    run(py, || Ok(spanwatch_embed::extent::change_extent(&source, &synthetic)?))
}

/// The native module.
#[pymodule]
fn _spanwatch(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_function(wrap_pyfunction!(score_arrays, module)?)?;
    module.add_function(wrap_pyfunction!(change_extent, module)?)?;
    module.add_function(wrap_pyfunction!(rank_folder, module)?)?;
    module.add_function(wrap_pyfunction!(calibrate_folder, module)?)?;
    module.add_function(wrap_pyfunction!(per_sample_folder, module)?)?;
    module.add_function(wrap_pyfunction!(filter_folder, module)?)?;
    module.add_function(wrap_pyfunction!(read_bundle_json, module)?)?;
    module.add_class::<NativeEmbedder>()?;
    module.add_class::<NativeTracker>()?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
