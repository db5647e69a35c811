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
//!
//! The surfaces `elpv-mono` and `elpv-poly` are photographed: solar cells of
//! the ELPV dataset ([`crate::elpv`]), real EL defects as positives, rendered
//! EL defects and the practitioners' synthesis methods as generators
//! ([`spanwatch_synth::el_defects`], [`spanwatch_synth::synthesis`]).
//!
//! This crate is research code over the calibration library: the CLI's
//! `spanwatch study` (feature `study`, off for the CLI users install) runs it,
//! and it alone compiles candle (the small CNN of the downstream truth), zip
//! (the ELPV wheel reader) and the baselines FID, KID and PRDC.
#![warn(missing_docs)]

pub mod anomaly;
pub mod baselines;
mod cnn;
pub mod concat;
pub mod correlations;
mod data;
pub mod elpv;
mod elpv_data;
mod evaluate;
pub mod generator;
pub mod local;
mod plots;
pub mod report;
mod selection;
pub mod streams;

use crate::elpv::CellType;
use anyhow::{Context, Result};
use data::SurfaceImages;
pub use elpv_data::FAMILY as EL_FAMILY;
pub use evaluate::Metric;
pub use generator::{Reference, StudyGenerator};
use spanwatch_calibrate::embedding::{embed_with_models, CacheChoice};
use spanwatch_calibrate::progress;
use spanwatch_synth::defects::{Family, Generator};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What the study covers.
#[derive(Clone, Debug)]
pub struct StudyConfig {
    /// Texture file stems under data/textures, and `elpv-mono` / `elpv-poly`.
    pub surfaces: Vec<String>,
    /// Defect families.
    pub families: Vec<Family>,
    /// Synthetic generators.
    pub generators: Vec<Generator>,
    /// Numbers of synthetic pairs scored (the largest also trains the downstream truth).
    pub pair_counts: Vec<usize>,
    /// Numbers of real positives given to the probe.
    pub positive_counts: Vec<usize>,
    /// Real positives set aside per family for the probes (at least the
    /// largest of [`Self::positive_counts`]): it decides which images are
    /// held out, so a run that scores fewer sizes keeps the same split.
    pub probe_pool: usize,
    /// The first real positives of the pool, which every probe sees, whose
    /// defect regions the transplant generator moves (at most the smallest
    /// of [`Self::positive_counts`]).
    pub transplant_donors: usize,
    /// Real negatives for training.
    pub train_negatives: usize,
    /// Held-out real negatives.
    pub test_negatives: usize,
    /// Held-out real positives per family.
    pub test_positives: usize,
    /// Held-out real defect-free and real defective cells each, on ELPV.
    pub real_test: usize,
    /// Embedding models (each one's truth comes from the other).
    pub models: Vec<String>,
    /// Bootstrap replicates for correlation intervals.
    pub bootstrap: usize,
    /// Seeds of the CNN trainings averaged into the pixel-level truth.
    pub cnn_seeds: u64,
    /// Pairs per generator made from the held-out negatives, for the stream
    /// experiment (none for the ranking study).
    pub held_out_pairs: usize,
    /// The stream experiment's calibration margin for a shift of the line's
    /// change size (`calibrate --size-margin`).
    pub size_margin: f64,
    /// Which disjoint set of held-out defect-free cells the stream
    /// experiment's pairs are made from on ELPV (0: the ranking study's
    /// test cells; n: the n-th next [`Self::real_test`] cells, which no
    /// earlier set holds), to confirm a choice made on another set.
    pub held_out_set: usize,
}

impl StudyConfig {
    /// The full study.
    pub fn full() -> StudyConfig {
        StudyConfig {
            surfaces: DRAWN_SURFACES.iter().chain(&["elpv-mono", "elpv-poly"]).map(|s| s.to_string()).collect(),
            families: Family::ALL.to_vec(),
            generators: Generator::STUDY.to_vec(),
            pair_counts: vec![16, 32, 64, 128, 256],
            positive_counts: vec![3, 5, 10, 25],
            probe_pool: 25,
            transplant_donors: 3,
            train_negatives: 100,
            test_negatives: 60,
            test_positives: 60,
            real_test: 150,
            models: ["efficientnet-lite0", "efficientnet-lite0-gem", "vit-s14", "vit-s14-max"].map(String::from).to_vec(),
            bootstrap: 500,
            cnn_seeds: 2,
            held_out_pairs: 0,
            size_margin: spanwatch_calibrate::metric::drift::DEFAULT_SIZE_MARGIN,
            held_out_set: 0,
        }
    }

    /// The stream experiment: every surface, one drawn family, the default
    /// model, the largest calibration set, and held-out pairs.
    pub fn streams() -> StudyConfig {
        StudyConfig {
            families: vec![Family::Scratch],
            pair_counts: vec![256],
            positive_counts: vec![10],
            probe_pool: 10,
            transplant_donors: 10,
            models: vec![spanwatch_embed::manifest::DEFAULT_MODEL.into()],
            held_out_pairs: 150,
            ..StudyConfig::full()
        }
    }

    /// A small study for CI: one surface, one family, every generator.
    pub fn quick() -> StudyConfig {
        StudyConfig {
            surfaces: vec!["gravel".into()],
            families: vec![Family::Scratch],
            pair_counts: vec![16, 32],
            positive_counts: vec![5, 10],
            probe_pool: 10,
            transplant_donors: 5,
            train_negatives: 40,
            test_negatives: 30,
            test_positives: 30,
            real_test: 60,
            models: vec!["efficientnet-lite0".into(), "vit-s14".into()],
            bootstrap: 200,
            cnn_seeds: 2,
            ..StudyConfig::full()
        }
    }

    /// The same study scoring only its headline cells (the real positives
    /// nearest 10, the most pairs): the same images, probes' pool,
    /// transplant donors and truths, in a fraction of the time.
    pub fn headline(self) -> StudyConfig {
        StudyConfig { positive_counts: vec![self.default_positives()], pair_counts: vec![self.max_pairs()], ..self }
    }

    /// The largest number of pairs.
    pub fn max_pairs(&self) -> usize {
        self.pair_counts.iter().copied().max().unwrap_or(0)
    }

    /// The real positives set aside for the probes: the pool, or the
    /// largest number scored when that is more.
    pub fn max_positives(&self) -> usize {
        self.positive_counts.iter().copied().max().unwrap_or(0).max(self.probe_pool)
    }

    /// What a CNN truth depends on besides its surface, family, generator and
    /// seed: the sizes that decide which images it trains and tests on.
    pub fn cnn_signature(&self) -> String {
        format!(
            "pairs={} train_negatives={} test_negatives={} test_positives={} real_test={} positives={}",
            self.max_pairs(),
            self.train_negatives,
            self.test_negatives,
            self.test_positives,
            self.real_test,
            self.max_positives()
        )
    }

    /// The number of real positives of the headline results (10, or the nearest available).
    pub fn default_positives(&self) -> usize {
        *self.positive_counts.iter().min_by_key(|&&n| n.abs_diff(10)).expect("positive counts")
    }
}

/// The drawn study's surfaces: CC0 textures under data/textures.
pub const DRAWN_SURFACES: [&str; 3] = ["brick", "grass", "gravel"];

/// One scored cell.
#[derive(Clone, Debug)]
pub struct CellResult {
    /// Surface.
    pub surface: String,
    /// Defect family (a drawn family's name, or `el` for the real EL defects).
    pub family: String,
    /// The generator.
    pub generator: StudyGenerator,
    /// Model of the metrics.
    pub model: String,
    /// Real positives given to the probe.
    pub n_positives: usize,
    /// Synthetic pairs scored.
    pub n_pairs: usize,
    /// The values of [`Metric::ALL`], in that order.
    pub metrics: Vec<f64>,
    /// The downstream truths, in the order of [`TRUTHS`].
    pub truths: [f64; 4],
    /// The same truths on the secondary test set (ELPV's uncertain cells),
    /// in the order of [`UNCERTAIN_TRUTHS`]; none on drawn surfaces.
    pub uncertain_truths: Option<[f64; 4]>,
}

impl CellResult {
    /// The value of `metric`.
    pub fn metric(&self, metric: Metric) -> f64 {
        self.metrics[metric as usize]
    }
}

/// The downstream truths, each trained on real negatives plus all synthetic
/// pairs and tested on held-out real images (F1 and AUROC): a logistic
/// regression on the other model's embeddings, and a small CNN from pixels
/// (mean over seeds).
pub const TRUTHS: [&str; 4] = ["lr_f1", "lr_auroc", "cnn_f1", "cnn_auroc"];

/// The truths of the same classifiers tested on the secondary test set: the
/// held-out defect-free cells and the cells the experts were unsure of.
pub const UNCERTAIN_TRUTHS: [&str; 4] = ["lr_f1_uncertain", "lr_auroc_uncertain", "cnn_f1_uncertain", "cnn_auroc_uncertain"];

/// A trained classifier's (F1, AUROC) on the held-out test set, and on the
/// secondary one when its surface has it.
#[derive(Clone, Copy, Debug)]
struct Outcome {
    primary: (f64, f64),
    uncertain: Option<(f64, f64)>,
}

/// Runs the study and writes its outputs under `out`.
pub fn run(config: &StudyConfig, out: &Path, cache: &CacheChoice, quiet: bool) -> Result<Vec<CellResult>> {
    let surfaces = surface_images(config, out, quiet)?;
    let embeddings = embed(config, &surfaces, cache, out, quiet)?;
    let truth_model = truth_models(config)?;
    let truths = truths(config, &surfaces, &embeddings, &truth_model)?;
    let cnn_truths = cnn_truths(config, &surfaces, out, quiet)?;
    let jobs = jobs(config, &surfaces);
    let bar = progress::bar(jobs.len(), "scoring", quiet);
    let results = parallel_map(&jobs, |job| {
        let r = score_job(config, job, &embeddings, &truths, &truth_model, &cnn_truths);
        bar.inc(1);
        r
    })
    .into_iter()
    .collect::<Result<Vec<CellResult>>>()?;
    bar.finish_and_clear();
    report::write(config, &results, out)?;
    Ok(results)
}

/// Runs the edge's stream experiment ([`streams`]) and writes streams.md under `out`.
pub fn run_streams(config: &StudyConfig, out: &Path, cache: &CacheChoice, quiet: bool) -> Result<Vec<streams::SurfaceStreams>> {
    let surfaces = surface_images(config, out, quiet)?;
    streams::run(config, &surfaces, out, cache, quiet)
}

/// Writes (or finds) every surface's images under `out`.
fn surface_images(config: &StudyConfig, out: &Path, quiet: bool) -> Result<Vec<SurfaceImages>> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let data = spanwatch_synth::demo_data::textures_dir()?;
    let texture = |name: &str| -> Result<image::GrayImage> {
        let path = data.join(format!("{name}.png"));
        Ok(image::open(&path).with_context(|| format!("cannot read {}", path.display()))?.to_luma8())
    };
    let mut surfaces = Vec::new();
    let (mut elpv_cells, mut textures) = (None, None);
    for surface in &config.surfaces {
        let cell_type = match surface.as_str() {
            "elpv-mono" => CellType::Mono,
            "elpv-poly" => CellType::Poly,
            drawn => {
                surfaces.push(data::surface_images(config, drawn, &texture(drawn)?, out)?);
                continue;
            }
        };
        if elpv_cells.is_none() {
            // The dataset is kept beside the default embedding cache whatever
            // --cache says, so that it is fetched once per machine.
            elpv_cells = Some(elpv::load(&elpv::wheel(&spanwatch_embed::EmbeddingCache::default_root(), quiet)?)?);
        }
        if textures.is_none() {
            // DRAEM's foreign textures.
            textures = Some(DRAWN_SURFACES.iter().map(|name| texture(name)).collect::<Result<Vec<_>>>()?);
        }
        let cells = elpv_cells.as_deref().unwrap_or_default();
        surfaces.push(elpv_data::surface_images(config, cell_type, cells, textures.as_deref().unwrap_or_default(), out)?);
    }
    Ok(surfaces)
}

/// Every image of `surfaces` embedded with every model of the study (the
/// models that share one ONNX file in one run of it per image). A local
/// candidate ([`local`]) embeds the real images with its base manifest and
/// each synthetic image as its source's embedding plus the pair's local
/// difference; a concatenated one ([`concat`]) joins its parts' embeddings.
fn embed<'a>(config: &'a StudyConfig, surfaces: &[SurfaceImages], cache: &CacheChoice, out: &Path, quiet: bool) -> Result<Embeddings<'a>> {
    let (local_models, image_models): (Vec<&str>, Vec<&str>) =
        config.models.iter().map(String::as_str).partition(|m| local::base_of(m).is_some());
    let (joined_models, mut image_models): (Vec<&str>, Vec<&str>) = image_models.into_iter().partition(|m| concat::parts_of(m).is_some());
    for joined in &joined_models {
        concat::manifests(joined)?;
        for part in concat::parts_of(joined).into_iter().flatten() {
            if !image_models.contains(&part) {
                image_models.push(part);
            }
        }
    }
    let paths: Vec<&Path> = surfaces.iter().flat_map(|s| s.all_paths()).collect();
    let mut embeddings: Embeddings = image_models.iter().copied().zip(embed_with_models(&image_models, cache, paths, quiet)?).collect();
    for joined in joined_models {
        let parts: Vec<_> = concat::parts_of(joined).into_iter().flatten().map(|part| &embeddings[part]).collect();
        let map = concat::concatenate(&parts);
        embeddings.insert(joined, map);
    }
    if local_models.is_empty() {
        return Ok(embeddings);
    }
    // The bases the candidates build on, each once, whose real images are embedded `how` (any way for None).
    let bases_for = |how: Option<local::RealFeature>| {
        let mut bases: Vec<&str> = Vec::new();
        for (base, real) in local_models.iter().filter_map(|m| local::base_of(m)) {
            if how.is_none_or(|how| how == real) && !bases.contains(&base) {
                bases.push(base);
            }
        }
        bases
    };
    let (bases, pooled_bases, region_bases) =
        (bases_for(None), bases_for(Some(local::RealFeature::Pooled)), bases_for(Some(local::RealFeature::AnomalyRegion)));
    let real_paths: Vec<&Path> = surfaces.iter().flat_map(|s| s.real_paths()).collect();
    let pairs: Vec<(&Path, &Path)> =
        surfaces.iter().flat_map(|s| s.pairs.values().flatten()).map(|(s, o)| (s.as_path(), o.as_path())).collect();
    let pooled: BTreeMap<&str, _> = pooled_bases.iter().copied().zip(embed_with_models(&pooled_bases, cache, real_paths, quiet)?).collect();
    let reals: Vec<anomaly::SurfaceReals> = surfaces
        .iter()
        .map(|s| {
            let negatives: Vec<&Path> = s.train_negatives.iter().map(PathBuf::as_path).collect();
            let others = s.real_paths().into_iter().filter(|p| !negatives.contains(p)).collect();
            anomaly::SurfaceReals { negatives, others }
        })
        .collect();
    let regions: BTreeMap<&str, _> = region_bases.iter().copied().zip(anomaly::real_regions(&region_bases, &reals, quiet)?).collect();
    if !regions.is_empty() {
        write_region_checks(surfaces, &regions, out)?;
    }
    let differences: BTreeMap<&str, _> = bases.iter().copied().zip(local::pair_differences(&bases, &pairs, cache, quiet)?).collect();
    for model in local_models {
        let Some((base, real)) = local::base_of(model) else { continue };
        let mut map = match real {
            local::RealFeature::Pooled => pooled[base].clone(),
            local::RealFeature::AnomalyRegion => {
                regions[base].iter().map(|(path, region)| (path.clone(), region.feature.clone())).collect()
            }
        };
        for (synthetic, source) in &pairs {
            let moved = map[*source].iter().zip(&differences[base][*synthetic]).map(|(o, d)| o + d).collect();
            map.insert(synthetic.to_path_buf(), moved);
        }
        embeddings.insert(model, map);
    }
    Ok(embeddings)
}

/// anomaly_regions.md: how well each base's anomaly regions find the drawn
/// defects of the real positives (surfaces whose positives were drawn on
/// known tiles; none is written without one).
fn write_region_checks(surfaces: &[SurfaceImages], regions: &BTreeMap<&str, BTreeMap<PathBuf, anomaly::Region>>, out: &Path) -> Result<()> {
    use std::fmt::Write as _;
    let mut md = format!(
        "# Label-free defect regions of the drawn real positives\n\nEach real positive's region is its {} patches farthest from the training negatives' patches (`+anomaly` candidates). Precision: the share of a region's patches that the drawn defect changed; recall: the share of the defect's patches in the region; chance: the share of all patches the defect changed (a random region's precision). Drawn defects only: a photographed defect's place is not known.\n\n| surface | base | positives | precision | recall | chance |\n|---|---|---|---|---|---|\n",
        anomaly::TOP_PATCHES
    );
    let mut any = false;
    for (base, regions) in regions {
        let manifest = spanwatch_embed::Manifest::resolve(base)?;
        for images in surfaces {
            if let Some(check) = anomaly::check_regions(regions, &images.probe_sources, &manifest)? {
                any = true;
                let _ = writeln!(
                    md,
                    "| {} | {base} | {} | {:.3} | {:.3} | {:.3} |",
                    images.surface, check.positives, check.precision, check.recall, check.chance
                );
            }
        }
    }
    if any {
        let path = out.join("anomaly_regions.md");
        std::fs::write(&path, md).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// One cell to score.
struct Job<'a> {
    images: &'a SurfaceImages,
    family: &'a str,
    model_index: usize,
    n_positives: usize,
    generator: StudyGenerator,
    n_pairs: usize,
}

/// Every cell of the study, in output order.
fn jobs<'a>(config: &StudyConfig, surfaces: &'a [SurfaceImages]) -> Vec<Job<'a>> {
    let mut jobs = Vec::new();
    for images in surfaces {
        for family in &images.families {
            for model_index in 0..config.models.len() {
                for &n_positives in &config.positive_counts {
                    for &generator in &images.generators {
                        for &n_pairs in &config.pair_counts {
                            jobs.push(Job { images, family, model_index, n_positives, generator, n_pairs });
                        }
                    }
                }
            }
        }
    }
    jobs
}

type Embeddings<'a> = BTreeMap<&'a str, BTreeMap<PathBuf, Vec<f32>>>;
/// Keyed by (surface, family, generator).
type TruthKey = (String, String, String);
type Truths = BTreeMap<(TruthKey, usize), Outcome>;

fn key(images: &SurfaceImages, family: &str, generator: StudyGenerator) -> TruthKey {
    (images.surface.clone(), family.to_string(), generator.name())
}

/// Whether a study model name is a plain feature (one manifest), not a
/// local, anomaly or concatenated candidate: only such a feature judges others.
fn is_plain(model: &str) -> bool {
    local::base_of(model).is_none() && concat::parts_of(model).is_none()
}

/// For each model, the model whose LR truth judges it: the next one in the
/// list whose ONNX file differs (another network, not another pooling of the
/// same one) and that is a plain feature (not a local or concatenated
/// candidate, so adding candidates never changes another's truth), or
/// itself when there is none.
fn truth_models(config: &StudyConfig) -> Result<Vec<usize>> {
    let files = config
        .models
        .iter()
        .map(|m| match concat::parts_of(m) {
            Some(_) => Ok(concat::manifests(m)?.remove(0).file),
            None => Ok(spanwatch_embed::Manifest::resolve(local::base_of(m).map_or(m, |(base, _)| base))?.file),
        })
        .collect::<Result<Vec<_>>>()?;
    let n = files.len();
    Ok((0..n)
        .map(|i| (1..n).map(|step| (i + step) % n).find(|&j| files[j] != files[i] && is_plain(&config.models[j])).unwrap_or(i))
        .collect())
}

fn score_job(
    config: &StudyConfig,
    job: &Job,
    embeddings: &Embeddings,
    truths: &Truths,
    truth_model: &[usize],
    cnn_truths: &CnnTruths,
) -> Result<CellResult> {
    let model = &config.models[job.model_index];
    let e = &embeddings[model.as_str()];
    let get = |p: &PathBuf| e[p].as_slice();
    let images = job.images;
    let negatives: Vec<&[f32]> = images.train_negatives.iter().map(get).collect();
    let (test_paths, labels) = images.test_set(job.family);
    let test: Vec<&[f32]> = test_paths.into_iter().map(get).collect();
    let positives: Vec<&[f32]> = images.probe_positives[job.family][..job.n_positives].iter().map(get).collect();
    let pairs: Vec<(&[f32], &[f32])> =
        images.pairs[&(job.family.to_string(), job.generator)][..job.n_pairs].iter().map(|(s, o)| (get(s), get(o))).collect();
    let key = key(images, job.family, job.generator);
    let lr = truths[&(key.clone(), truth_model[job.model_index])];
    let cnn = cnn_truths[&key];
    let ((lr_f1, lr_auroc), (cnn_f1, cnn_auroc)) = (lr.primary, cnn.primary);
    let uncertain_truths = lr.uncertain.zip(cnn.uncertain).map(|((a, b), (c, d))| [a, b, c, d]);
    let cell = evaluate::Cell { negatives: &negatives, positives: &positives, pairs: &pairs, test: &test, labels: &labels };
    let metrics = evaluate::score_cell(&cell).with_context(|| {
        format!("{} / {} / {} / {model}: {} positives, {} pairs", images.surface, job.family, job.generator, job.n_positives, job.n_pairs)
    })?;
    Ok(CellResult {
        surface: images.surface.clone(),
        family: job.family.to_string(),
        generator: job.generator,
        model: model.clone(),
        n_positives: job.n_positives,
        n_pairs: job.n_pairs,
        metrics,
        truths: [lr_f1, lr_auroc, cnn_f1, cnn_auroc],
        uncertain_truths,
    })
}

type CnnTruths = BTreeMap<TruthKey, Outcome>;

/// Pixel-level truth per (surface, family, generator): the CNN's (F1, AUROC)
/// averaged over the configured seeds, trainings spread over all cores.
fn cnn_truths(config: &StudyConfig, surfaces: &[SurfaceImages], out: &Path, quiet: bool) -> Result<CnnTruths> {
    let mut trainings = Vec::new();
    for images in surfaces {
        for family in &images.families {
            for &generator in &images.generators {
                for seed in 0..config.cnn_seeds {
                    trainings.push((images, family, generator, seed));
                }
            }
        }
    }
    let signature = config.cnn_signature();
    let cache_path = out.join(CNN_CACHE);
    let mut known = read_cnn_cache(&cache_path, &signature);
    // An outcome from before the secondary test set existed is trained again.
    trainings.retain(|(images, family, generator, seed)| {
        !known
            .get(&(key(images, family, *generator), *seed))
            .is_some_and(|o| o.uncertain.is_some() || images.uncertain_positives.is_empty())
    });
    let mut pixels: BTreeMap<&Path, Vec<f32>> = BTreeMap::new();
    for images in surfaces.iter().filter(|s| trainings.iter().any(|t| t.0.surface == s.surface)) {
        for path in images.all_paths() {
            if !pixels.contains_key(path) {
                pixels.insert(path, cnn::load_pixels(path, images.cnn_side)?);
            }
        }
    }
    let bar = progress::bar(trainings.len(), "CNN truth", quiet);
    let outcomes: Vec<Result<((TruthKey, u64), Outcome)>> = parallel_map(&trainings, |&(images, family, generator, seed)| {
        let get = |p: &PathBuf| pixels[p.as_path()].as_slice();
        let negatives: Vec<&[f32]> = images.train_negatives.iter().map(get).collect();
        let positives: Vec<&[f32]> = images.pairs[&(family.clone(), generator)].iter().map(|(s, _)| get(s)).collect();
        let (test_paths, labels) = images.test_set(family);
        let test: Vec<&[f32]> = test_paths.into_iter().map(get).collect();
        let mut tests: Vec<cnn::TestSet> = vec![(&test, &labels)];
        let uncertain = images.uncertain_test_set().map(|(paths, labels)| (paths.into_iter().map(get).collect::<Vec<_>>(), labels));
        if let Some((images, labels)) = &uncertain {
            tests.push((images, labels));
        }
        let outcome = cnn::train_and_test(&negatives, &positives, &tests, images.cnn_side, seed)
            .with_context(|| format!("CNN truth of {} / {family} / {generator}", images.surface))?;
        bar.inc(1);
        Ok(((key(images, family, generator), seed), Outcome { primary: outcome[0], uncertain: outcome.get(1).copied() }))
    });
    bar.finish_and_clear();
    for outcome in outcomes {
        let (key, value) = outcome?;
        known.insert(key, value);
    }
    write_cnn_cache(&cache_path, &signature, &known)?;
    let mut means: CnnTruths = BTreeMap::new();
    let share = |(f1, auroc): (f64, f64)| (f1 / config.cnn_seeds as f64, auroc / config.cnn_seeds as f64);
    let add = |a: (f64, f64), b: (f64, f64)| (a.0 + b.0, a.1 + b.1);
    for ((key, seed), outcome) in known {
        if seed < config.cnn_seeds {
            let entry = means.entry(key).or_insert(Outcome { primary: (0.0, 0.0), uncertain: outcome.uncertain.map(|_| (0.0, 0.0)) });
            entry.primary = add(entry.primary, share(outcome.primary));
            entry.uncertain = entry.uncertain.zip(outcome.uncertain).map(|(a, b)| add(a, share(b)));
        }
    }
    Ok(means)
}

/// The file under the study folder that keeps every CNN training's outcome,
/// so that a rerun with the same images trains only what is new.
const CNN_CACHE: &str = "cnn_truths.csv";

type CnnOutcomes = BTreeMap<(TruthKey, u64), Outcome>;

/// The outcomes in `path` made with `signature` (none when it is missing or unreadable).
fn read_cnn_cache(path: &Path, signature: &str) -> CnnOutcomes {
    let Ok(mut reader) = csv::Reader::from_path(path) else { return BTreeMap::new() };
    reader
        .records()
        .filter_map(|r| r.ok())
        .filter(|r| r.get(0) == Some(signature))
        .filter_map(|r| {
            let field = |i: usize| r.get(i).map(str::to_string);
            let key = (field(1)?, field(2)?, field(3)?);
            let number = |i: usize| r.get(i)?.parse::<f64>().ok();
            let uncertain = number(7).zip(number(8));
            Some(((key, r.get(4)?.parse().ok()?), Outcome { primary: (number(5)?, number(6)?), uncertain }))
        })
        .collect()
}

fn write_cnn_cache(path: &Path, signature: &str, outcomes: &CnnOutcomes) -> Result<()> {
    let mut writer = csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))?;
    writer.write_record(["signature", "surface", "family", "generator", "seed", "f1", "auroc", "f1_uncertain", "auroc_uncertain"])?;
    let exact = |v: f64| format!("{v:.17}");
    for (((surface, family, generator), seed), outcome) in outcomes {
        let (f1, auroc) = outcome.primary;
        let (f1_uncertain, auroc_uncertain) = outcome.uncertain.map_or((String::new(), String::new()), |(f, a)| (exact(f), exact(a)));
        writer.write_record([
            signature,
            surface,
            family,
            generator,
            &seed.to_string(),
            &exact(f1),
            &exact(auroc),
            &f1_uncertain,
            &auroc_uncertain,
        ])?;
    }
    writer.flush().with_context(|| format!("cannot write {}", path.display()))
}

/// `f` over `items` on all cores, results in the order of `items`.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|scope| {
        let f = &f;
        let workers: Vec<_> = items
            .chunks(items.len().div_ceil(threads).max(1))
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<_>>()))
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("study worker panicked")).collect()
    })
}

/// Downstream truth per (surface, family, generator) and model index: a
/// linear classifier on that model's embeddings, trained on the real
/// negatives and all of the generator's synthetic positives, tested on
/// held-out real images. Only the models that judge another are trained.
fn truths(config: &StudyConfig, surfaces: &[SurfaceImages], embeddings: &Embeddings, truth_model: &[usize]) -> Result<Truths> {
    let mut truths = BTreeMap::new();
    let judges: std::collections::BTreeSet<usize> = truth_model.iter().copied().collect();
    for images in surfaces {
        for family in &images.families {
            for &model_index in &judges {
                let model = &config.models[model_index];
                let e = &embeddings[model.as_str()];
                let get = |p: &PathBuf| e[p].as_slice();
                let negatives: Vec<&[f32]> = images.train_negatives.iter().map(get).collect();
                let (test_paths, labels) = images.test_set(family);
                let test: Vec<&[f32]> = test_paths.into_iter().map(get).collect();
                let uncertain = images.uncertain_test_set().map(|(paths, labels)| (paths.into_iter().map(get).collect::<Vec<_>>(), labels));
                for &generator in &images.generators {
                    let synthetic: Vec<&[f32]> = images.pairs[&(family.clone(), generator)].iter().map(|(s, _)| get(s)).collect();
                    let judged = |test: &[&[f32]], labels: &[bool]| {
                        spanwatch_calibrate::metric::downstream::train_and_test(&negatives, &synthetic, test, labels)
                            .map(|(f1, auroc, _)| (f1, auroc))
                            .with_context(|| format!("downstream truth of {} / {family} / {generator} on {model}", images.surface))
                    };
                    let primary = judged(&test, &labels)?;
                    let uncertain = uncertain.as_ref().map(|(test, labels)| judged(test, labels)).transpose()?;
                    truths.insert((key(images, family, generator), model_index), Outcome { primary, uncertain });
                }
            }
        }
    }
    Ok(truths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_headline_study_keeps_the_full_studys_images_and_truths() {
        let (full, headline) = (StudyConfig::full(), StudyConfig::full().headline());
        assert_eq!((headline.positive_counts.as_slice(), headline.pair_counts.as_slice()), (&[10][..], &[256][..]));
        // The split (probe pool), the transplant's donors and the CNN truths' cache key do not move.
        assert_eq!(headline.max_positives(), full.max_positives());
        assert_eq!(headline.transplant_donors, full.transplant_donors);
        assert_eq!(headline.cnn_signature(), full.cnn_signature());
        assert_eq!(headline.default_positives(), full.default_positives());
    }

    #[test]
    fn only_a_plain_feature_of_another_network_judges_a_candidate() {
        let models = [
            "efficientnet-lite0",
            "vit-s14",
            "vit-s14,vit-s14-l6-patchmean",
            "efficientnet-lite0,efficientnet-lite0-b10-gem",
            "vit-s14-l6-patchmean+local",
        ];
        let config = StudyConfig { models: models.map(String::from).to_vec(), ..StudyConfig::quick() };
        // Every ViT feature is judged by EfficientNet's LR and every EfficientNet feature by the ViT's class token.
        assert_eq!(truth_models(&config).unwrap(), vec![1, 0, 0, 1, 0]);
        // With no other network, each judges itself.
        let alone = StudyConfig { models: vec!["vit-s14".into(), "vit-s14,vit-s14-patchmean".into()], ..StudyConfig::quick() };
        assert_eq!(truth_models(&alone).unwrap(), vec![0, 1]);
    }
}
