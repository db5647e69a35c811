//! The validation study: does DS predict what a classifier trained on the
//! synthetic data actually achieves, better than FID, KID and PRDC?
//!
//! Real surface tiles (brick, grass, gravel) are the negatives; defects of
//! three drawn families (scratch, pit, crack) make the real positives; ten
//! generators of graded fidelity make synthetic positives from the real
//! negatives. Every metric is computed for both bundled models at several
//! numbers of real positives and of pairs. The downstream truth of a
//! generator is a logistic regression trained on real negatives plus all its
//! synthetic positives, in the embedding space of the *other* model, tested
//! on held-out real negatives and positives (F1 and AUROC). The defects are
//! drawn, not photographed: a controlled benchmark.

mod cnn;
mod data;
mod evaluate;
mod plots;
pub mod report;
pub mod stats;

use crate::defects::{Family, Generator};
use crate::embedding::{CacheChoice, EmbeddingSession};
use crate::progress;
use anyhow::{Context, Result};
use data::SurfaceImages;
pub use evaluate::METRICS;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What the study covers.
#[derive(Clone, Debug)]
pub struct StudyConfig {
    /// Texture file stems under data/textures.
    pub surfaces: Vec<String>,
    /// Defect families.
    pub families: Vec<Family>,
    /// Synthetic generators.
    pub generators: Vec<Generator>,
    /// Numbers of synthetic pairs scored (the largest also trains the downstream truth).
    pub pair_counts: Vec<usize>,
    /// Numbers of real positives given to the probe.
    pub positive_counts: Vec<usize>,
    /// Real negatives for training.
    pub train_negatives: usize,
    /// Held-out real negatives.
    pub test_negatives: usize,
    /// Held-out real positives per family.
    pub test_positives: usize,
    /// Embedding models (each one's truth comes from the other).
    pub models: Vec<String>,
    /// Bootstrap replicates for correlation intervals.
    pub bootstrap: usize,
    /// Seeds of the CNN trainings averaged into the pixel-level truth.
    pub cnn_seeds: u64,
}

impl StudyConfig {
    /// The full study.
    pub fn full() -> StudyConfig {
        StudyConfig {
            surfaces: ["brick", "grass", "gravel"].map(String::from).to_vec(),
            families: Family::ALL.to_vec(),
            generators: Generator::STUDY.to_vec(),
            pair_counts: vec![16, 32, 64, 128, 256],
            positive_counts: vec![3, 5, 10, 25],
            train_negatives: 100,
            test_negatives: 60,
            test_positives: 60,
            models: vec!["efficientnet-lite0".into(), "vit-s14".into()],
            bootstrap: 500,
            cnn_seeds: 2,
        }
    }

    /// A small study for CI: one surface, one family, every generator.
    pub fn quick() -> StudyConfig {
        StudyConfig {
            surfaces: vec!["gravel".into()],
            families: vec![Family::Scratch],
            pair_counts: vec![16, 32],
            positive_counts: vec![5, 10],
            train_negatives: 40,
            test_negatives: 30,
            test_positives: 30,
            bootstrap: 200,
            cnn_seeds: 2,
            ..StudyConfig::full()
        }
    }

    /// The largest number of pairs.
    pub fn max_pairs(&self) -> usize {
        self.pair_counts.iter().copied().max().unwrap_or(0)
    }

    /// The largest number of real positives.
    pub fn max_positives(&self) -> usize {
        self.positive_counts.iter().copied().max().unwrap_or(0)
    }

    /// The number of real positives of the headline results (10, or the nearest available).
    pub fn default_positives(&self) -> usize {
        *self.positive_counts.iter().min_by_key(|&&n| n.abs_diff(10)).expect("positive counts")
    }
}

/// One scored cell.
#[derive(Clone, Debug)]
pub struct CellResult {
    /// Surface.
    pub surface: String,
    /// Family.
    pub family: Family,
    /// Generator name.
    pub generator: String,
    /// Model of the metrics.
    pub model: String,
    /// Real positives given to the probe.
    pub n_positives: usize,
    /// Synthetic pairs scored.
    pub n_pairs: usize,
    /// The values of [`METRICS`].
    pub metrics: Vec<f64>,
    /// The downstream truths, in the order of [`TRUTHS`].
    pub truths: [f64; 4],
}

/// The downstream truths, each trained on real negatives plus all synthetic
/// pairs and tested on held-out real images (F1 and AUROC): a logistic
/// regression on the other model's embeddings, and a small CNN from pixels
/// (mean over seeds).
pub const TRUTHS: [&str; 4] = ["lr_f1", "lr_auroc", "cnn_f1", "cnn_auroc"];

/// Runs the study and writes its outputs under `out`.
pub fn run(config: &StudyConfig, out: &Path, cache: &CacheChoice, quiet: bool) -> Result<Vec<CellResult>> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let textures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/textures");
    let mut surfaces = Vec::new();
    for surface in &config.surfaces {
        let path = textures.join(format!("{surface}.png"));
        let texture = image::open(&path).with_context(|| format!("cannot read {}", path.display()))?.to_luma8();
        surfaces.push(data::surface_images(config, surface, &texture, out)?);
    }
    let paths: Vec<&Path> = surfaces.iter().flat_map(|s| s.all_paths()).collect();
    let mut embeddings: Embeddings = BTreeMap::new();
    for model in &config.models {
        if !quiet {
            eprintln!("embedding {} images with {model}", paths.iter().collect::<std::collections::BTreeSet<_>>().len());
        }
        let session = EmbeddingSession::open(model, cache, quiet)?;
        embeddings.insert(model, session.embed_all(paths.iter().copied())?);
    }
    let truths = truths(config, &surfaces, &embeddings)?;
    let cnn_truths = cnn_truths(config, &surfaces, quiet)?;
    let jobs = jobs(config, &surfaces);
    let bar = progress::bar(jobs.len(), "scoring", quiet);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let results: Vec<CellResult> = std::thread::scope(|scope| -> Result<Vec<CellResult>> {
        let workers: Vec<_> = jobs
            .chunks(jobs.len().div_ceil(threads).max(1))
            .map(|part| {
                let (bar, embeddings, truths, cnn_truths) = (bar.clone(), &embeddings, &truths, &cnn_truths);
                scope.spawn(move || {
                    part.iter()
                        .map(|job| {
                            let r = score_job(config, job, embeddings, truths, cnn_truths);
                            bar.inc(1);
                            r
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("scoring worker panicked")).collect()
    })?;
    bar.finish_and_clear();
    report::write(config, &results, out)?;
    Ok(results)
}

/// One cell to score.
struct Job<'a> {
    images: &'a SurfaceImages,
    family: Family,
    model_index: usize,
    n_positives: usize,
    generator: String,
    n_pairs: usize,
}

/// Every cell of the study, in output order.
fn jobs<'a>(config: &StudyConfig, surfaces: &'a [SurfaceImages]) -> Vec<Job<'a>> {
    let mut jobs = Vec::new();
    for images in surfaces {
        for &family in &config.families {
            for model_index in 0..config.models.len() {
                for &n_positives in &config.positive_counts {
                    for generator in &config.generators {
                        for &n_pairs in &config.pair_counts {
                            jobs.push(Job { images, family, model_index, n_positives, generator: generator.name(), n_pairs });
                        }
                    }
                }
            }
        }
    }
    jobs
}

type Embeddings<'a> = BTreeMap<&'a str, BTreeMap<PathBuf, Vec<f32>>>;
type Truths = BTreeMap<(String, Family, String, usize), (f64, f64)>;

fn score_job(config: &StudyConfig, job: &Job, embeddings: &Embeddings, truths: &Truths, cnn_truths: &CnnTruths) -> Result<CellResult> {
    let model = &config.models[job.model_index];
    let e = &embeddings[model.as_str()];
    let get = |p: &PathBuf| e[p].as_slice();
    let images = job.images;
    let negatives: Vec<&[f32]> = images.train_negatives.iter().map(get).collect();
    let (test_paths, labels) = images.test_set(job.family);
    let test: Vec<&[f32]> = test_paths.into_iter().map(get).collect();
    let positives: Vec<&[f32]> = images.probe_positives[&job.family][..job.n_positives].iter().map(get).collect();
    let pairs: Vec<(&[f32], &[f32])> =
        images.pairs[&(job.family, job.generator.clone())][..job.n_pairs].iter().map(|(s, o)| (get(s), get(o))).collect();
    let truth_model = (job.model_index + 1) % config.models.len();
    let (lr_f1, lr_auroc) = truths[&(images.surface.clone(), job.family, job.generator.clone(), truth_model)];
    let (cnn_f1, cnn_auroc) = cnn_truths[&(images.surface.clone(), job.family, job.generator.clone())];
    let cell = evaluate::Cell { negatives: &negatives, positives: &positives, pairs: &pairs, test: &test, labels: &labels };
    let metrics = evaluate::score_cell(&cell).with_context(|| {
        format!(
            "{} / {} / {} / {model}: {} positives, {} pairs",
            images.surface,
            job.family.name(),
            job.generator,
            job.n_positives,
            job.n_pairs
        )
    })?;
    Ok(CellResult {
        surface: images.surface.clone(),
        family: job.family,
        generator: job.generator.clone(),
        model: model.clone(),
        n_positives: job.n_positives,
        n_pairs: job.n_pairs,
        metrics,
        truths: [lr_f1, lr_auroc, cnn_f1, cnn_auroc],
    })
}

type CnnTruths = BTreeMap<(String, Family, String), (f64, f64)>;

/// Pixel-level truth per (surface, family, generator): the CNN's (F1, AUROC)
/// averaged over the configured seeds, trainings spread over all cores.
fn cnn_truths(config: &StudyConfig, surfaces: &[SurfaceImages], quiet: bool) -> Result<CnnTruths> {
    let mut pixels: BTreeMap<&Path, Vec<f32>> = BTreeMap::new();
    for path in surfaces.iter().flat_map(|s| s.all_paths()) {
        if !pixels.contains_key(path) {
            pixels.insert(path, cnn::load_pixels(path)?);
        }
    }
    let mut trainings = Vec::new();
    for images in surfaces {
        for &family in &config.families {
            for generator in &config.generators {
                for seed in 0..config.cnn_seeds {
                    trainings.push((images, family, generator.name(), seed));
                }
            }
        }
    }
    let bar = progress::bar(trainings.len(), "CNN truth", quiet);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let outcomes: Vec<Result<((String, Family, String), (f64, f64))>> = std::thread::scope(|scope| {
        let workers: Vec<_> = trainings
            .chunks(trainings.len().div_ceil(threads).max(1))
            .map(|part| {
                let (bar, pixels) = (bar.clone(), &pixels);
                scope.spawn(move || {
                    part.iter()
                        .map(|(images, family, generator, seed)| {
                            let get = |p: &PathBuf| pixels[p.as_path()].as_slice();
                            let negatives: Vec<&[f32]> = images.train_negatives.iter().map(get).collect();
                            let positives: Vec<&[f32]> = images.pairs[&(*family, generator.clone())].iter().map(|(s, _)| get(s)).collect();
                            let (test_paths, labels) = images.test_set(*family);
                            let test: Vec<&[f32]> = test_paths.into_iter().map(get).collect();
                            let outcome = cnn::train_and_test(&negatives, &positives, &test, &labels, *seed)
                                .with_context(|| format!("CNN truth of {} / {} / {generator}", images.surface, family.name()))?;
                            bar.inc(1);
                            Ok(((images.surface.clone(), *family, generator.clone()), outcome))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("CNN worker panicked")).collect()
    });
    bar.finish_and_clear();
    let mut means: CnnTruths = BTreeMap::new();
    for outcome in outcomes {
        let (key, (f1, auroc)) = outcome?;
        let entry = means.entry(key).or_insert((0.0, 0.0));
        entry.0 += f1 / config.cnn_seeds as f64;
        entry.1 += auroc / config.cnn_seeds as f64;
    }
    Ok(means)
}

/// Downstream truth per (surface, family, generator, model index): a linear
/// classifier on that model's embeddings, trained on the real negatives and
/// all of the generator's synthetic positives, tested on held-out real images.
/// Cells of model i are judged by the truth of the next model (the other
/// one of two; the same one when only one model is studied).
fn truths(config: &StudyConfig, surfaces: &[SurfaceImages], embeddings: &Embeddings) -> Result<Truths> {
    let mut truths = BTreeMap::new();
    for images in surfaces {
        for &family in &config.families {
            for (model_index, model) in config.models.iter().enumerate() {
                let e = &embeddings[model.as_str()];
                let get = |p: &PathBuf| e[p].as_slice();
                let negatives: Vec<&[f32]> = images.train_negatives.iter().map(get).collect();
                let (test_paths, labels) = images.test_set(family);
                let test: Vec<&[f32]> = test_paths.into_iter().map(get).collect();
                for generator in &config.generators {
                    let synthetic: Vec<&[f32]> = images.pairs[&(family, generator.name())].iter().map(|(s, _)| get(s)).collect();
                    let (f1, auroc, _) = evaluate::train_and_test(&negatives, &synthetic, &test, &labels).with_context(|| {
                        format!("downstream truth of {} / {} / {} on {model}", images.surface, family.name(), generator.name())
                    })?;
                    truths.insert((images.surface.clone(), family, generator.name(), model_index), (f1, auroc));
                }
            }
        }
    }
    Ok(truths)
}
