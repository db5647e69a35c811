//! From a dataset on disk to what every scoring command needs: standardized
//! real embeddings, the reference probe, and each generator's difference
//! vectors in the same standardized space.

use crate::dataset::{Dataset, Pair};
use crate::embedding::{CacheChoice, EmbeddingSession, ModelInfo};
use crate::metric::probe::{self, Probe};
use crate::metric::Standardization;
use anyhow::{bail, Context, Result};
use nalgebra::DMatrix;
use std::path::Path;
use tracing::warn;

/// Fewer real positives than this get a warning that the probe is noisy.
pub const FEW_POSITIVES: usize = 5;

/// One generator's difference vectors.
pub struct GeneratorDiffs {
    /// Generator name.
    pub name: String,
    /// Its pairs, in the order of the rows of `diffs`.
    pub pairs: Vec<Pair>,
    /// n x d standardized difference vectors.
    pub diffs: DMatrix<f64>,
    /// Pairs whose difference vector is exactly zero (synthetic embeds like its source).
    pub zero_pairs: usize,
}

/// A dataset ready to score.
pub struct Prepared {
    /// The dataset.
    pub dataset: Dataset,
    /// The model that embedded it.
    pub model: ModelInfo,
    /// Standardization fitted on the real images.
    pub standardization: Standardization,
    /// Standardized real negatives.
    pub negatives: Vec<Vec<f32>>,
    /// Standardized real positives.
    pub positives: Vec<Vec<f32>>,
    /// The reference probe.
    pub probe: Probe,
    /// Every generator's difference vectors.
    pub generators: Vec<GeneratorDiffs>,
    /// Things the user should know (also logged).
    pub warnings: Vec<String>,
}

/// Embeds and prepares the dataset under `root`.
pub fn prepare(root: &Path, model: &str, cache: &CacheChoice, skip_unpaired: bool, quiet: bool) -> Result<Prepared> {
    let dataset = Dataset::open(root, skip_unpaired)?;
    let mut warnings = Vec::new();
    for (folder, count) in [("real/negative", dataset.negatives.len()), ("real/positive", dataset.positives.len())] {
        if count < 2 {
            bail!("{} holds {count} image(s); the probe needs at least 2 real negatives and 2 real positives", root.join(folder).display());
        }
    }
    if dataset.positives.len() < FEW_POSITIVES {
        warnings.push(format!(
            "only {} real positives: the probe is noisy; --bootstrap N shows how much that moves DS",
            dataset.positives.len()
        ));
    }
    for g in dataset.generators.iter().filter(|g| !g.skipped.is_empty()) {
        warnings.push(format!("generator {:?}: {} unpaired synthetic image(s) skipped", g.name, g.skipped.len()));
    }
    let session = EmbeddingSession::open(model, cache, quiet)?;
    let paths = dataset
        .negatives
        .iter()
        .chain(&dataset.positives)
        .chain(dataset.generators.iter().flat_map(|g| g.pairs.iter().map(|p| &p.synthetic)))
        .map(|p| p.as_path());
    let embeddings = session.embed_all(paths)?;
    let raw = |p: &Path| embeddings[p].as_slice();
    let real: Vec<&[f32]> = dataset.negatives.iter().chain(&dataset.positives).map(|p| raw(p)).collect();
    let standardization = Standardization::fit(&real);
    if standardization.constant_dims > 0 {
        warnings.push(format!(
            "{} embedding dimension(s) are constant over the real images (kept with sigma = 1)",
            standardization.constant_dims
        ));
    }
    let negatives: Vec<Vec<f32>> = dataset.negatives.iter().map(|p| standardization.apply(raw(p))).collect();
    let positives: Vec<Vec<f32>> = dataset.positives.iter().map(|p| standardization.apply(raw(p))).collect();
    let probe = probe::fit_classes(&negatives, &positives).context("training the reference probe")?;
    let generators = dataset
        .generators
        .iter()
        .map(|g| {
            let rows: Vec<Vec<f32>> = g.pairs.iter().map(|p| standardization.difference(raw(&p.synthetic), raw(&p.source))).collect();
            let zero_pairs = rows.iter().filter(|r| r.iter().all(|&v| v == 0.0)).count();
            if zero_pairs == rows.len() {
                warnings.push(format!(
                    "generator {:?}: all {} synthetic images embed exactly like their sources (an unchanged copy?); its span is empty and DS = 0",
                    g.name, zero_pairs
                ));
            } else if zero_pairs > 0 {
                warnings.push(format!("generator {:?}: {zero_pairs} of {} synthetic images embed exactly like their sources", g.name, rows.len()));
            }
            let d = standardization.mu.len();
            GeneratorDiffs { name: g.name.clone(), pairs: g.pairs.clone(), diffs: DMatrix::from_fn(rows.len(), d, |i, j| rows[i][j] as f64), zero_pairs }
        })
        .collect();
    for w in &warnings {
        warn!("{w}");
    }
    Ok(Prepared { dataset, model: session.model(), standardization, negatives, positives, probe, generators, warnings })
}

impl Prepared {
    /// The generator with this name.
    pub fn generator(&self, name: &str) -> Result<&GeneratorDiffs> {
        self.dataset.generator(name)?;
        Ok(self.generators.iter().find(|g| g.name == name).expect("prepared with the dataset"))
    }
}
