//! From a dataset on disk to what every scoring command needs: standardized
//! real embeddings, the reference probe, and each generator's difference
//! vectors in the same standardized space; optionally with some real images
//! held out of the probe to check the prediction on them.

use crate::dataset::{Dataset, Pair};
use crate::embedding::{EmbeddingSession, EmbeddingSource};
use crate::metric::probe::{self, Probe};
use crate::metric::Standardization;
use crate::precomputed::ModelInfo;
use anyhow::{bail, Context, Result};
use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tracing::warn;

/// Fewer real positives than this get a warning that the probe is noisy.
pub const FEW_POSITIVES: usize = 5;

/// One generator's difference vectors.
pub struct GeneratorDiffs {
    /// Generator name.
    pub name: String,
    /// Its pairs, in the order of the rows of `diffs`.
    pub pairs: Vec<Pair>,
    /// n x d standardized difference vectors (shared with the spans fitted on them).
    pub diffs: Arc<DMatrix<f64>>,
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
    /// Real images kept out of the probe, when asked for.
    pub held_out: Option<HeldOut>,
    /// Things the user should know (also logged).
    pub warnings: Vec<String>,
}

/// Which real images to keep out of the probe: `positives` real positives
/// and the same share of the real negatives, drawn with `seed`.
#[derive(Clone, Copy, Debug)]
pub struct Holdout {
    /// Real positives kept out.
    pub positives: usize,
    /// Seed of the draw.
    pub seed: u64,
}

/// Real images kept out of the probe, standardized like the rest, and what
/// a downstream classifier of each generator may train on.
pub struct HeldOut {
    /// Held-out real negatives.
    pub negatives: Vec<Vec<f32>>,
    /// Held-out real positives.
    pub positives: Vec<Vec<f32>>,
    /// Their files, negatives first.
    pub files: Vec<PathBuf>,
    /// Per generator (in the order of [`Prepared::generators`]): its synthetic
    /// images whose source is not held out, the training positives of its
    /// downstream classifier.
    pub training_positives: Vec<Vec<Vec<f32>>>,
}

/// Takes the held-out images out of `dataset`'s real sets and returns them
/// (negatives, positives). Negatives that are no synthetic image's source are
/// preferred, so that no test image has a synthetic copy in training.
fn hold_out(dataset: &mut Dataset, holdout: Holdout, warnings: &mut Vec<String>) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let (n_pos, n_neg) = (dataset.positives.len(), dataset.negatives.len());
    let k = holdout.positives;
    let k_neg = ((n_neg as f64 * k as f64 / n_pos as f64).round() as usize).max(1);
    if k == 0 || n_pos < k + 2 || n_neg < k_neg + 2 {
        bail!(
            "--holdout {k}: {n_pos} real positives and {n_neg} real negatives; holding out {k} and {k_neg} must leave at least 2 of each for the probe"
        );
    }
    let mut rng = StdRng::seed_from_u64(holdout.seed);
    let mut positives = std::mem::take(&mut dataset.positives);
    positives.shuffle(&mut rng);
    let held_positives = positives.split_off(positives.len() - k);
    positives.sort();
    dataset.positives = positives;
    let sources: BTreeSet<&PathBuf> = dataset.generators.iter().flat_map(|g| g.pairs.iter().map(|p| &p.source)).collect();
    let mut negatives = dataset.negatives.clone();
    negatives.shuffle(&mut rng);
    // Stable partition: non-sources first, in shuffled order.
    negatives.sort_by_key(|n| sources.contains(n));
    let used_as_source = negatives[..k_neg].iter().filter(|n| sources.contains(n)).count();
    if used_as_source > 0 {
        warnings.push(format!(
            "--holdout: {used_as_source} of the {k_neg} held-out negatives are sources of synthetic images; their synthetic images are left out of the downstream classifiers' training"
        ));
    }
    let held_negatives: Vec<PathBuf> = negatives[..k_neg].to_vec();
    dataset.negatives.retain(|n| !held_negatives.contains(n));
    Ok((held_negatives, held_positives))
}

/// Embeds and prepares the dataset under `root`.
pub fn prepare(root: &Path, model: &str, source: &EmbeddingSource, skip_unpaired: bool, quiet: bool) -> Result<Prepared> {
    prepare_with_holdout(root, model, source, skip_unpaired, None, quiet)
}

/// Embeds and prepares the dataset under `root` with its generator
/// `generator` alone: the commands that work on one generator (calibrate,
/// filter) embed only its synthetic images, not every generator's.
/// The real images, the standardization and the probe are those of
/// [`prepare`], so the result for `generator` is the same.
pub fn prepare_generator(
    root: &Path,
    model: &str,
    source: &EmbeddingSource,
    skip_unpaired: bool,
    generator: &str,
    quiet: bool,
) -> Result<Prepared> {
    let mut dataset = Dataset::open(root, skip_unpaired)?;
    dataset.generator(generator)?;
    dataset.generators.retain(|g| g.name == generator);
    prepare_dataset(dataset, model, source, None, quiet)
}

/// Embeds and prepares the dataset under `root`, keeping the `holdout`
/// images out of the standardization and the probe.
pub fn prepare_with_holdout(
    root: &Path,
    model: &str,
    source: &EmbeddingSource,
    skip_unpaired: bool,
    holdout: Option<Holdout>,
    quiet: bool,
) -> Result<Prepared> {
    prepare_dataset(Dataset::open(root, skip_unpaired)?, model, source, holdout, quiet)
}

/// Embeds and prepares an opened dataset (see [`prepare_with_holdout`]).
fn prepare_dataset(mut dataset: Dataset, model: &str, source: &EmbeddingSource, holdout: Option<Holdout>, quiet: bool) -> Result<Prepared> {
    let mut warnings = Vec::new();
    let held = holdout.map(|h| hold_out(&mut dataset, h, &mut warnings)).transpose()?;
    check_counts(&dataset)?;
    let session = EmbeddingSession::open(model, source, quiet)?;
    let model = session.model();
    let paths = dataset
        .negatives
        .iter()
        .chain(&dataset.positives)
        .chain(dataset.generators.iter().flat_map(|g| g.pairs.iter().map(|p| &p.synthetic)))
        .chain(held.iter().flat_map(|(n, p)| n.iter().chain(p)))
        .map(|p| p.as_path());
    let embeddings = session.embed_all(paths)?;
    drop(session);
    standardize_and_fit(dataset, model, held, &embeddings, warnings)
}

/// Prepares a dataset whose embeddings were made elsewhere (a notebook,
/// any model): `embeddings` holds the vector of each of the dataset's
/// images (the real ones and every pair's synthetic image and source), all
/// of `model.dim` values. A missing, mis-sized or non-finite vector is an
/// error that names its image.
pub fn prepare_embedded(dataset: Dataset, model: ModelInfo, embeddings: &BTreeMap<PathBuf, Vec<f32>>) -> Result<Prepared> {
    check_counts(&dataset)?;
    let images = dataset
        .negatives
        .iter()
        .chain(&dataset.positives)
        .chain(dataset.generators.iter().flat_map(|g| g.pairs.iter().flat_map(|p| [&p.synthetic, &p.source])));
    for image in images {
        let Some(vector) = embeddings.get(image) else { bail!("no embedding for {}", image.display()) };
        if vector.len() != model.dim {
            bail!("{}: the embedding has {} values, the others {}", image.display(), vector.len(), model.dim);
        }
        if let Some(at) = vector.iter().position(|v| !v.is_finite()) {
            bail!("{}: the embedding holds {} at dimension {at}", image.display(), vector[at]);
        }
    }
    standardize_and_fit(dataset, model, None, embeddings, Vec::new())
}

/// Refuses a dataset with fewer than 2 real negatives or positives.
fn check_counts(dataset: &Dataset) -> Result<()> {
    for (folder, count) in [("real/negative", dataset.negatives.len()), ("real/positive", dataset.positives.len())] {
        if count < 2 {
            bail!(
                "{} holds {count} image(s); the probe needs at least 2 real negatives and 2 real positives",
                dataset.root.join(folder).display()
            );
        }
    }
    Ok(())
}

/// The standardization, the probe and each generator's differences, from
/// every image's embedding.
fn standardize_and_fit(
    dataset: Dataset,
    model: ModelInfo,
    held: Option<(Vec<PathBuf>, Vec<PathBuf>)>,
    embeddings: &BTreeMap<PathBuf, Vec<f32>>,
    mut warnings: Vec<String>,
) -> Result<Prepared> {
    if dataset.positives.len() < FEW_POSITIVES {
        warnings.push(format!(
            "only {} real positives: the probe is noisy; --bootstrap N shows how much that moves DS",
            dataset.positives.len()
        ));
    }
    for g in dataset.generators.iter().filter(|g| !g.skipped.is_empty()) {
        warnings.push(format!("generator {:?}: {} unpaired synthetic image(s) skipped", g.name, g.skipped.len()));
    }
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
            // Filled row by row: the pairs' differences are held once, here.
            let d = standardization.mu.len();
            let mut diffs = DMatrix::<f64>::zeros(g.pairs.len(), d);
            let mut zero_pairs = 0;
            for (i, p) in g.pairs.iter().enumerate() {
                let row = standardization.difference(raw(&p.synthetic), raw(&p.source));
                zero_pairs += usize::from(row.iter().all(|&v| v == 0.0));
                diffs.row_mut(i).iter_mut().zip(&row).for_each(|(o, &v)| *o = v as f64);
            }
            if zero_pairs == g.pairs.len() {
                warnings.push(format!(
                    "generator {:?}: all {} synthetic images embed exactly like their sources (an unchanged copy?); its span is empty and DS = 0",
                    g.name, zero_pairs
                ));
            } else if zero_pairs > 0 {
                warnings.push(format!("generator {:?}: {zero_pairs} of {} synthetic images embed exactly like their sources", g.name, g.pairs.len()));
            }
            GeneratorDiffs { name: g.name.clone(), pairs: g.pairs.clone(), diffs: Arc::new(diffs), zero_pairs }
        })
        .collect();
    let held_out = held.map(|(held_negatives, held_positives)| {
        let z = |files: &[PathBuf]| files.iter().map(|p| standardization.apply(raw(p))).collect::<Vec<_>>();
        let training_positives = dataset
            .generators
            .iter()
            .map(|g| {
                g.pairs.iter().filter(|p| !held_negatives.contains(&p.source)).map(|p| standardization.apply(raw(&p.synthetic))).collect()
            })
            .collect();
        HeldOut {
            negatives: z(&held_negatives),
            positives: z(&held_positives),
            files: held_negatives.into_iter().chain(held_positives).collect(),
            training_positives,
        }
    });
    for w in &warnings {
        warn!("{w}");
    }
    Ok(Prepared { dataset, model, standardization, negatives, positives, probe, generators, held_out, warnings })
}

impl Prepared {
    /// The generator with this name.
    pub fn generator(&self, name: &str) -> Result<&GeneratorDiffs> {
        self.dataset.generator(name)?;
        Ok(self.generators.iter().find(|g| g.name == name).expect("prepared with the dataset"))
    }
}
