//! A dataset folder and how to read it, as the Python module passes it
//! (a dict): the options every folder call shares, as the CLI's
//! `DataArgs`, `SolverArgs` and cache flags are.

use pyo3::FromPyObject;
use spanwatch_calibrate::embedding::{CacheChoice, EmbeddingSource};
use spanwatch_calibrate::pipeline::{prepare_generator, prepare_with_holdout, Prepared};
use spanwatch_core::span::Solver;
use std::path::PathBuf;

/// A dataset folder with its model, solver and embedding source.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct Folder {
    /// The DATA folder.
    data: PathBuf,
    /// A bundled model name or a manifest path.
    model: String,
    /// `nnls`, `ridge` or `lstsq`.
    solver: String,
    /// The ridge parameter (ridge only).
    ridge_lambda: f64,
    /// `spanwatch embed` output to read instead of running the model.
    embeddings: Vec<PathBuf>,
    /// The embedding cache's folder (None: the default).
    cache: Option<PathBuf>,
    /// No embedding cache.
    no_cache: bool,
    /// Leave out synthetic images without a source.
    skip_unpaired: bool,
}

impl Folder {
    /// The solver named, or why there is none.
    pub fn solver(&self) -> anyhow::Result<Solver> {
        solver(&self.solver, self.ridge_lambda)
    }

    /// Where the embeddings come from: `spanwatch embed` output, else the model with the cache.
    fn source(&self) -> EmbeddingSource {
        if self.embeddings.is_empty() {
            EmbeddingSource::Model(CacheChoice::new(self.cache.clone(), self.no_cache))
        } else {
            EmbeddingSource::Precomputed(self.embeddings.clone())
        }
    }

    /// Every generator of the dataset, prepared.
    pub fn prepare(&self) -> anyhow::Result<Prepared> {
        prepare_with_holdout(&self.data, &self.model, &self.source(), self.skip_unpaired, None, true)
    }

    /// Generator `name` of the dataset, prepared alone.
    pub fn prepare_generator(&self, name: &str) -> anyhow::Result<Prepared> {
        prepare_generator(&self.data, &self.model, &self.source(), self.skip_unpaired, name, true)
    }
}

/// The solver named `name` (`nnls`, `ridge` with `ridge_lambda`, `lstsq`).
pub fn solver(name: &str, ridge_lambda: f64) -> anyhow::Result<Solver> {
    match name {
        "nnls" => Ok(Solver::Nnls),
        "lstsq" => Ok(Solver::Lstsq),
        "ridge" if ridge_lambda.is_finite() && ridge_lambda >= 0.0 => Ok(Solver::Ridge { lambda: ridge_lambda }),
        "ridge" => anyhow::bail!("ridge_lambda {ridge_lambda} is not a finite number >= 0"),
        other => anyhow::bail!("unknown solver {other:?}: nnls, ridge or lstsq"),
    }
}
