//! The edge's drift detector on streams of held-out pairs
//! (`spanwatch study --streams`): its false alarms on good streams and its
//! delay after a generator degrades, per surface.
//!
//! Each surface is calibrated as a user would calibrate it: a dataset folder
//! of the training negatives, the probe's real positives and the faithful
//! generator's pairs made from those negatives goes through `prepare` and
//! [`calibration::calibrate`] with the default settings. The bundle's own detector then
//! runs, as the edge runs it, over pairs made from the held-out negatives,
//! which neither the probe nor the calibration saw (every generator makes
//! [`StudyConfig::held_out_pairs`] pairs from them):
//! - false alarms: a good stream of [`GOOD_PAIRS`] held-out faithful pairs
//!   drawn with replacement, the detector restarted after each crossing;
//!   the rate per 10,000 pairs with its exact Poisson interval, and an
//!   interval over the held-out images ([`IMAGE_REPLICATES`] streams, each
//!   from a bootstrap resample of the held-out sources), and the rate on a
//!   stream of the same length in blocks by source (as the calibration's
//!   simulation resamples, and a line sends several defects of one normal
//!   image); the run lengths against a geometric distribution of the same mean;
//! - delays: for each degraded generator, [`CHANGE_POINTS`] change points
//!   after each of [`CHANGE_AFTER`] good pairs (0: right after a start), then
//!   its held-out pairs drawn with replacement until the alert; a stream that
//!   alarms before its change is drawn again (and counted);
//! - effect sizes: the shift of each normal score's mean (alignment, log
//!   change size, off span, log pixel extent), clamped as the detector
//!   clamps it, in held-out good-pair standard deviations.
//!
//! Every statistic of every pair is also written to `statistics.csv` per
//! surface (the calibration pairs' cross-fitted ones and the held-out ones),
//! for `benchmarks/alibi_streams.py`. On ELPV surfaces these are derived from
//! CC BY-NC-SA images: they stay in the work folder.

use crate::{StudyConfig, StudyGenerator, SurfaceImages};
use anyhow::{ensure, Context, Result};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use spanwatch_calibrate::calibration::{self, CalibrationSettings};
use spanwatch_calibrate::embedding::{CacheChoice, EmbeddingSession, EmbeddingSource};
use spanwatch_calibrate::metric::drift::DetectorSettings;
use spanwatch_calibrate::pipeline::prepare;
use spanwatch_calibrate::stats::quantile;
use spanwatch_core::bundle::Bundle;
use spanwatch_core::detector::{
    CusumParams, DetectorState, DriftDetector, NamedThresholds, PairStatistics, Reading, Watch, SCORES, WATCHES,
};
use spanwatch_core::standardize::difference_into;
use spanwatch_embed::extent::change_extent;
use statrs::distribution::{ContinuousCDF, Gamma};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Good pairs of the false-alarm stream.
pub const GOOD_PAIRS: usize = 10_000_000;
/// Streams over bootstrap resamples of the held-out sources.
pub const IMAGE_REPLICATES: usize = 40;
/// Good pairs of each of those streams.
const REPLICATE_PAIRS: usize = 250_000;
/// Good pairs before a change.
pub const CHANGE_AFTER: [usize; 3] = [0, 500, 5_000];
/// Change points per degraded generator and start.
pub const CHANGE_POINTS: usize = 100;
/// Most degraded pairs fed before a change counts as missed.
pub const MOST_DEGRADED: usize = 1_000;
/// Most restarts of a change point whose good stream alarmed first.
const MOST_REDRAWS: usize = 1_000;

/// A held-out or calibration pair as the detector sees it.
#[derive(Clone, Copy, Debug)]
struct Scored {
    statistics: PairStatistics,
    /// Normal scores (alignment, log size, off span, log extent), clamped.
    scores: [f64; SCORES],
    /// Index of the pair's source image.
    source: usize,
}

/// False alarms on the held-out good stream.
#[derive(Clone, Debug)]
pub struct FalseAlarms {
    /// Pairs streamed.
    pub pairs: usize,
    /// Crossings among them.
    pub alarms: usize,
    /// Alarms per 10,000 pairs.
    pub per_10k: f64,
    /// Exact Poisson 95% interval of that rate.
    pub poisson: (f64, f64),
    /// 95% percentile interval of the rate over resamples of the held-out images.
    pub images: (f64, f64),
    /// The rate per 10,000 pairs on a stream of [`GOOD_PAIRS`] pairs in
    /// blocks by source (a random source's pairs together, in random
    /// order, as a line that makes several defects of one normal image
    /// sends them), with its exact Poisson 95% interval.
    pub in_blocks: (f64, (f64, f64)),
    /// Mean run length (pairs per crossing).
    pub mean_run: f64,
    /// Kolmogorov distance of the run lengths from the geometric distribution of the same mean.
    pub geometric_distance: f64,
    /// Run-length 10th, 50th and 90th percentiles: observed, then geometric.
    pub run_quantiles: [(f64, f64); 3],
    /// Which CUSUM crossed, per [`Watch::ALL`].
    pub by_watch: [usize; WATCHES],
}

/// Delays after one kind of start.
#[derive(Clone, Debug)]
pub struct Delays {
    /// Good pairs before the change.
    pub after: usize,
    /// Mean pairs from the change to the alert (a miss counts as [`MOST_DEGRADED`]).
    pub mean: f64,
    /// 95th percentile of the same.
    pub p95: f64,
    /// Share caught within 100 pairs.
    pub within_100: f64,
    /// Change points not caught within [`MOST_DEGRADED`].
    pub missed: usize,
    /// Good streams drawn again because they alarmed before the change.
    pub redrawn: usize,
}

/// One degraded generator on one surface.
#[derive(Clone, Debug)]
pub struct StreamRow {
    /// The generator.
    pub generator: StudyGenerator,
    /// Effect size on the alignment, log-size, off-span and log-extent scores.
    pub effect: [f64; SCORES],
    /// Delays per [`CHANGE_AFTER`].
    pub delays: Vec<Delays>,
}

impl StreamRow {
    /// The least delay any detector could reach at `arl0` if the four
    /// scores were independent unit normals whose means shift by the effect
    /// sizes: Lorden's bound ln ARL0 / KL, with the Kullback-Leibler
    /// divergence (a² + s² + o² + e²) / 2 per pair, in pairs.
    pub fn least_possible_delay(&self, arl0: f64) -> f64 {
        let information: f64 = self.effect.iter().map(|e| e * e).sum::<f64>() / 2.0;
        arl0.ln() / information
    }
}

/// One surface's experiment.
#[derive(Clone, Debug)]
pub struct SurfaceStreams {
    /// Surface.
    pub surface: String,
    /// Defect family.
    pub family: String,
    /// Model.
    pub model: String,
    /// The bundle's CUSUM tuning.
    pub params: CusumParams,
    /// The normal scores' correlations on the calibration pairs.
    pub correlations: [[f64; SCORES]; SCORES],
    /// Target ARL0 and the calibration's simulated one.
    pub false_alarm_every: u32,
    /// The calibration's simulated ARL0.
    pub simulated_every: f64,
    /// The calibration's margin for a shift of the line's change size.
    pub size_margin: f64,
    /// The simulated ARL0 with the change size or extent shifted by the margin toward one of their CUSUMs (the smallest).
    pub shifted_every: f64,
    /// The held-out good pairs' mean evidence per CUSUM, in the order of
    /// `Watch::ALL`: each residual toward its alarm (-a, -s, s, o, e, -e).
    pub held_out_evidence: [f64; WATCHES],
    /// The calibration pairs' median pixel extent.
    pub median_extent: f64,
    /// The between-source shares the simulation added to its blocks.
    pub source_effects: [f64; SCORES],
    /// Calibration pairs.
    pub calibration_pairs: usize,
    /// Held-out good pairs and their distinct sources.
    pub held_out: (usize, usize),
    /// Mean alignment of the calibration pairs (cross-fitted) and of the held-out good pairs.
    pub mean_alignment: (f64, f64),
    /// False alarms on held-out good streams.
    pub false_alarms: FalseAlarms,
    /// Every degraded generator.
    pub rows: Vec<StreamRow>,
}

/// Runs the experiment on every surface (its first family) with every model
/// and writes streams.md under `out`.
pub fn run(config: &StudyConfig, surfaces: &[SurfaceImages], out: &Path, cache: &CacheChoice, quiet: bool) -> Result<Vec<SurfaceStreams>> {
    ensure!(config.held_out_pairs > 0, "the stream experiment needs held-out pairs");
    let mut results = Vec::new();
    for model in &config.models {
        let session = EmbeddingSession::open(model, &EmbeddingSource::Model(cache.clone()), quiet)?;
        for images in surfaces {
            let family = images.families.first().context("a surface without a defect family")?;
            let result = experiment(config, images, family, model, &session, out, cache, quiet)
                .with_context(|| format!("streams of {} / {family} / {model}", images.surface))?;
            if !quiet {
                eprintln!("{}", surface_summary(&result));
            }
            results.push(result);
        }
    }
    let path = out.join("streams.md");
    std::fs::write(&path, summary(&results, config.held_out_set)).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(results)
}

#[allow(clippy::too_many_arguments)]
fn experiment(
    config: &StudyConfig,
    images: &SurfaceImages,
    family: &str,
    model: &str,
    session: &EmbeddingSession,
    out: &Path,
    cache: &CacheChoice,
    quiet: bool,
) -> Result<SurfaceStreams> {
    let dir = out.join("streams").join(&images.surface);
    let faithful =
        images.generators.iter().copied().find(|g| g.reference() == Some(crate::Reference::Faithful)).context("no faithful generator")?;
    let dataset = calibration_dataset(config, images, family, faithful, &dir.join("calibration"))?;
    let prepared = prepare(&dataset, model, &EmbeddingSource::Model(cache.clone()), false, quiet)?;
    let bundle_path = dir.join(format!("{model}.bundle"));
    let defaults = CalibrationSettings::default();
    let settings = CalibrationSettings { detector: DetectorSettings { size_margin: config.size_margin, ..defaults.detector }, ..defaults };
    let (bytes, calibrated) = calibration::calibrate(&prepared, "faithful", &settings)?;
    std::fs::write(&bundle_path, &bytes).with_context(|| format!("cannot write {}", bundle_path.display()))?;
    let bundle = Bundle::decode(&bytes).with_context(|| bundle_path.display().to_string())?;
    let detector = bundle.detector.detector(DetectorState::default()).with_context(|| bundle_path.display().to_string())?;
    let (w, sigma) = (bundle.w.to_vec(), bundle.sigma.to_vec());

    let family_pairs: Vec<&(PathBuf, PathBuf)> =
        images.held_out_pairs.iter().filter(|((f, _), _)| f == family).flat_map(|(_, list)| list).collect();
    let embeddings = session.embed_all(family_pairs.iter().flat_map(|(s, o)| [s.as_path(), o.as_path()]))?;
    // The held-out sources (the test cells, or a later held-out set), numbered.
    let mut source_index: BTreeMap<&PathBuf, usize> = BTreeMap::new();
    for (_, source) in &family_pairs {
        let next = source_index.len();
        source_index.entry(source).or_insert(next);
    }
    let mut difference = vec![0.0f32; w.len()];
    let mut held_out: BTreeMap<StudyGenerator, Vec<Scored>> = BTreeMap::new();
    for &generator in &images.generators {
        let pairs = &images.held_out_pairs[&(family.to_string(), generator)];
        let scored = pairs
            .iter()
            .map(|(synthetic, source)| {
                difference_into(&embeddings[synthetic], &embeddings[source], &sigma, &mut difference);
                let statistics = PairStatistics::of(&w, bundle.basis.iter(), &difference, change_extent(source, synthetic)?);
                Ok(Scored { statistics, scores: detector.scores(statistics), source: source_index[source] })
            })
            .collect::<Result<_>>()?;
        held_out.insert(generator, scored);
    }
    write_statistics(&dir.join("statistics.csv"), &detector, (&calibrated.statistics, &calibrated.sources), &held_out)?;

    let good = &held_out[&faithful];
    let seed = crate::data::seed(&[&images.surface, model, "streams"], 0);
    let false_alarms = false_alarms(&detector, good, seed);
    let rows = images
        .generators
        .iter()
        .filter(|&&g| g != faithful)
        .map(|&generator| {
            let degraded = &held_out[&generator];
            let delays = CHANGE_AFTER
                .iter()
                .map(|&after| {
                    delays(&detector, good, degraded, after, crate::data::seed(&[&images.surface, model, &generator.name()], after))
                })
                .collect();
            StreamRow { generator, effect: effect_sizes(good, degraded), delays }
        })
        .collect();
    let mean = |values: Vec<f64>| values.iter().sum::<f64>() / values.len().max(1) as f64;
    let distinct_sources = good.iter().map(|p| p.source).collect::<std::collections::BTreeSet<_>>().len();
    Ok(SurfaceStreams {
        surface: images.surface.clone(),
        family: family.to_string(),
        model: model.to_string(),
        params: calibrated.detector.params,
        correlations: calibrated.detector.correlations,
        false_alarm_every: calibrated.detector.false_alarm_every,
        simulated_every: calibrated.detector.simulated_every,
        size_margin: calibrated.detector.size_margin,
        shifted_every: calibrated.detector.shifted_every,
        held_out_evidence: mean_evidence(&detector, good),
        median_extent: median(&calibrated.statistics.iter().map(|s| s.log_extent).collect::<Vec<_>>()).exp(),
        source_effects: calibrated.detector.source_effects,
        calibration_pairs: calibrated.pairs,
        held_out: (good.len(), distinct_sources),
        mean_alignment: (
            mean(calibrated.statistics.iter().map(|s| s.alignment).collect()),
            mean(good.iter().map(|p| p.statistics.alignment).collect()),
        ),
        false_alarms,
        rows,
    })
}

/// Writes the calibration dataset folder (hard links to the study's images)
/// and returns its root: the training negatives, the headline number of
/// real positives, and the faithful pairs with their pairs.csv.
fn calibration_dataset(
    config: &StudyConfig,
    images: &SurfaceImages,
    family: &str,
    faithful: StudyGenerator,
    root: &Path,
) -> Result<PathBuf> {
    let link = |from: &Path, to: PathBuf| -> Result<()> {
        if !to.is_file() {
            std::fs::create_dir_all(to.parent().expect("file in a folder"))?;
            std::fs::hard_link(from, &to).with_context(|| format!("cannot link {} to {}", from.display(), to.display()))?;
        }
        Ok(())
    };
    let mut names: BTreeMap<&PathBuf, String> = BTreeMap::new();
    for (i, negative) in images.train_negatives.iter().enumerate() {
        let name = format!("{i:04}.png");
        link(negative, root.join("real/negative").join(&name))?;
        names.insert(negative, name);
    }
    for (i, positive) in images.probe_positives[family][..config.default_positives()].iter().enumerate() {
        link(positive, root.join(format!("real/positive/{i:04}.png")))?;
    }
    let mut manifest = String::from("synthetic,source\n");
    for (i, (synthetic, source)) in images.pairs[&(family.to_string(), faithful)].iter().enumerate() {
        let name = format!("{i:04}.png");
        link(synthetic, root.join("synthetic/faithful").join(&name))?;
        let _ = writeln!(manifest, "{name},{}", names.get(source).context("a faithful pair whose source is no training negative")?);
    }
    let path = root.join("synthetic/faithful/pairs.csv");
    std::fs::write(&path, manifest).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(root.to_path_buf())
}

/// The per-pair statistics, for the alibi-detect and candidate benchmarks
/// (the calibration pairs' cross-fitted by source; their source column is
/// the calibration's source label, the held-out pairs' the held-out image's).
fn write_statistics(
    path: &Path,
    detector: &DriftDetector,
    (calibration, sources): (&[PairStatistics], &[usize]),
    held_out: &BTreeMap<StudyGenerator, Vec<Scored>>,
) -> Result<()> {
    let mut csv = String::from(
        "split,generator,source,alignment,log_size,alignment_score,size_score,off_span,off_span_score,log_extent,extent_score\n",
    );
    let mut row = |split: &str, generator: String, source: String, s: &PairStatistics, [a, z, o, e]: [f64; SCORES]| {
        let _ = writeln!(
            csv,
            "{split},{generator},{source},{:.9},{:.9},{a:.9},{z:.9},{:.9},{o:.9},{:.9},{e:.9}",
            s.alignment, s.log_size, s.off_span, s.log_extent
        );
    };
    for (s, source) in calibration.iter().zip(sources) {
        row("calibration", "faithful".into(), source.to_string(), s, detector.scores(*s));
    }
    for (generator, pairs) in held_out {
        for p in pairs {
            row("held_out", generator.to_string(), p.source.to_string(), &p.statistics, p.scores);
        }
    }
    std::fs::write(path, csv).with_context(|| format!("cannot write {}", path.display()))
}

/// Pairs between crossings of `detector` (restarted after each) over
/// `length` pairs drawn by `draw`, and which CUSUM crossed.
fn run_lengths(detector: &DriftDetector, length: usize, mut draw: impl FnMut() -> [f64; SCORES]) -> (Vec<usize>, [usize; WATCHES]) {
    let mut detector = detector.with_params(detector.params()).expect("the bundle's parameters");
    let (mut runs, mut by_watch, mut since) = (Vec::new(), [0usize; WATCHES], 0usize);
    for _ in 0..length {
        since += 1;
        if let Some(Reading { watch, .. }) = detector.update_scores(draw()).crossed {
            runs.push(since);
            by_watch[Watch::ALL.iter().position(|&w| w == watch).expect("a watch")] += 1;
            since = 0;
        }
    }
    (runs, by_watch)
}

fn false_alarms(detector: &DriftDetector, good: &[Scored], seed: u64) -> FalseAlarms {
    let mut rng = StdRng::seed_from_u64(seed);
    let (runs, by_watch) = run_lengths(detector, GOOD_PAIRS, || good[rng.random_range(0..good.len())].scores);
    let alarms = runs.len();
    let per_10k = |alarms: f64, pairs: usize| 1e4 * alarms / pairs as f64;
    // The rate of `alarms` in GOOD_PAIRS pairs, with its exact Poisson 95% interval.
    let rate = |alarms: usize| {
        let (low, high) = poisson_interval(alarms);
        (per_10k(alarms as f64, GOOD_PAIRS), (per_10k(low, GOOD_PAIRS), per_10k(high, GOOD_PAIRS)))
    };
    let (per_10k_one_at_a_time, poisson) = rate(alarms);
    let mut by_source: BTreeMap<usize, Vec<[f64; SCORES]>> = BTreeMap::new();
    for p in good {
        by_source.entry(p.source).or_default().push(p.scores);
    }
    let sources: Vec<&Vec<[f64; SCORES]>> = by_source.values().collect();
    let mut rates: Vec<f64> = (0..IMAGE_REPLICATES)
        .map(|_| {
            let resample: Vec<&Vec<[f64; SCORES]>> = (0..sources.len()).map(|_| sources[rng.random_range(0..sources.len())]).collect();
            let mut draw_rng = StdRng::seed_from_u64(rng.random());
            let (runs, _) = run_lengths(detector, REPLICATE_PAIRS, || {
                let block = resample[draw_rng.random_range(0..resample.len())];
                block[draw_rng.random_range(0..block.len())]
            });
            per_10k(runs.len() as f64, REPLICATE_PAIRS)
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    let mut queue: Vec<[f64; SCORES]> = Vec::new();
    let (block_runs, _) = run_lengths(detector, GOOD_PAIRS, || {
        if queue.is_empty() {
            queue.extend(sources[rng.random_range(0..sources.len())]);
            queue.shuffle(&mut rng);
        }
        queue.pop().expect("a source has pairs")
    });
    let mean_run = if alarms == 0 { f64::INFINITY } else { runs.iter().sum::<usize>() as f64 / alarms as f64 };
    let (geometric_distance, run_quantiles) = geometric_fit(&runs);
    FalseAlarms {
        pairs: GOOD_PAIRS,
        alarms,
        per_10k: per_10k_one_at_a_time,
        poisson,
        images: (quantile(&rates, 0.025), quantile(&rates, 0.975)),
        in_blocks: rate(block_runs.len()),
        mean_run,
        geometric_distance,
        run_quantiles,
        by_watch,
    }
}

/// The exact (Garwood) 95% interval of a Poisson mean from `count` events.
pub fn poisson_interval(count: usize) -> (f64, f64) {
    let gamma = |shape: f64, p: f64| Gamma::new(shape, 1.0).expect("a positive shape").inverse_cdf(p);
    let low = if count == 0 { 0.0 } else { gamma(count as f64, 0.025) };
    (low, gamma(count as f64 + 1.0, 0.975))
}

/// How far `runs` are from the geometric distribution of their mean: the
/// Kolmogorov distance, and the 10th, 50th and 90th percentiles (observed,
/// geometric). NaN without runs.
pub fn geometric_fit(runs: &[usize]) -> (f64, [(f64, f64); 3]) {
    if runs.is_empty() {
        return (f64::NAN, [(f64::NAN, f64::NAN); 3]);
    }
    let mut sorted: Vec<f64> = runs.iter().map(|&r| r as f64).collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    let p = n / sorted.iter().sum::<f64>();
    let cdf = |r: f64| 1.0 - (1.0 - p).powf(r);
    let mut distance = 0.0f64;
    for (i, &r) in sorted.iter().enumerate() {
        // The empirical CDF steps from i/n to (i+1)/n at r (ties: the last one counts).
        let after = sorted.partition_point(|&x| x <= r) as f64 / n;
        let before = i as f64 / n;
        distance = distance.max((after - cdf(r)).abs()).max((cdf(r - 1.0) - before).abs());
    }
    let geometric_quantile = |q: f64| ((1.0 - q).ln() / (1.0 - p).ln()).ceil().max(1.0);
    let quantiles = [0.1, 0.5, 0.9].map(|q| (quantile(&sorted, q), geometric_quantile(q)));
    (distance, quantiles)
}

fn delays(detector: &DriftDetector, good: &[Scored], degraded: &[Scored], after: usize, seed: u64) -> Delays {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut taken, mut redrawn) = (Vec::with_capacity(CHANGE_POINTS), 0);
    while taken.len() < CHANGE_POINTS {
        let mut detector = detector.with_params(detector.params()).expect("the bundle's parameters");
        let alarmed_early = (0..after).any(|_| detector.update_scores(good[rng.random_range(0..good.len())].scores).crossed.is_some());
        if alarmed_early && redrawn < MOST_REDRAWS {
            redrawn += 1;
            continue;
        }
        let delay =
            (1..=MOST_DEGRADED).find(|_| detector.update_scores(degraded[rng.random_range(0..degraded.len())].scores).crossed.is_some());
        taken.push(delay);
    }
    let missed = taken.iter().filter(|d| d.is_none()).count();
    let mut values: Vec<f64> = taken.iter().map(|d| d.unwrap_or(MOST_DEGRADED) as f64).collect();
    values.sort_by(f64::total_cmp);
    Delays {
        after,
        mean: values.iter().sum::<f64>() / values.len() as f64,
        p95: quantile(&values, 0.95),
        within_100: taken.iter().filter(|d| d.is_some_and(|d| d <= 100)).count() as f64 / taken.len() as f64,
        missed,
        redrawn,
    }
}

/// Effect size per normal score: the shift of the degraded pairs' mean from
/// the good pairs', in good-pair standard deviations.
fn effect_sizes(good: &[Scored], degraded: &[Scored]) -> [f64; SCORES] {
    let moments = |pairs: &[Scored], i: usize| {
        let n = pairs.len() as f64;
        let mean = pairs.iter().map(|p| p.scores[i]).sum::<f64>() / n;
        let var = pairs.iter().map(|p| (p.scores[i] - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        (mean, var.sqrt())
    };
    std::array::from_fn(|i| {
        let ((good_mean, good_sd), (degraded_mean, _)) = (moments(good, i), moments(degraded, i));
        (degraded_mean - good_mean) / good_sd
    })
}

/// The median of `values`.
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    quantile(&sorted, 0.5)
}

/// The mean evidence of `pairs` per CUSUM (in the order of `Watch::ALL`):
/// each residual toward its alarm, as the detector adds it up before k.
fn mean_evidence(detector: &DriftDetector, pairs: &[Scored]) -> [f64; WATCHES] {
    let mut sums = [0.0; WATCHES];
    for pair in pairs {
        sums.iter_mut().zip(detector.evidence(pair.scores)).for_each(|(sum, e)| *sum += e);
    }
    sums.map(|sum| sum / pairs.len().max(1) as f64)
}

/// "+0.12 (low_alignment), ...".
fn evidence_text(evidence: &[f64; WATCHES]) -> String {
    let named: Vec<String> = Watch::ALL.iter().zip(evidence).map(|(w, e)| format!("{e:+.3} ({})", w.name())).collect();
    named.join(", ")
}

fn surface_summary(s: &SurfaceStreams) -> String {
    let f = &s.false_alarms;
    format!(
        "{} / {} / {}: thresholds {}, {} false alarms in {} held-out good pairs ({:.2} per 10k, 95% {:.2}-{:.2}, over images {:.2}-{:.2})",
        s.surface,
        s.family,
        s.model,
        NamedThresholds(&s.params.thresholds),
        f.alarms,
        f.pairs,
        f.per_10k,
        f.poisson.0,
        f.poisson.1,
        f.images.0,
        f.images.1
    )
}

fn summary(results: &[SurfaceStreams], held_out_set: usize) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# The edge's drift detector on held-out streams\n");
    if held_out_set > 0 {
        let _ =
            writeln!(md, "Held-out set {held_out_set}: the pairs are made from defect-free cells that no earlier held-out set holds.\n");
    }
    let _ = writeln!(
        md,
        "Calibrated with `calibrate`'s defaults on the training negatives' faithful pairs; streamed on pairs made from held-out negatives that neither the probe nor the calibration saw. \
         False alarms: {GOOD_PAIRS} held-out good pairs drawn with replacement (detector restarted after each crossing), exact Poisson 95% interval, and the 95% interval over {IMAGE_REPLICATES} streams of {REPLICATE_PAIRS} pairs from bootstrap resamples of the held-out images. \
         Delays: {CHANGE_POINTS} change points after each of {CHANGE_AFTER:?} good pairs, the degraded generator's held-out pairs after it; pairs from the change to the alert, a miss (none within {MOST_DEGRADED}) counted as {MOST_DEGRADED}. \
         Effect: shift of the clamped normal score's mean in held-out good-pair sds (alignment / log change size / off span / log pixel extent). Floor: Lorden's least delay ln ARL0 / KL of any detector at the target ARL0, were the four scores independent unit normals shifted by the effects (KL = (a² + s² + o² + e²) / 2 per pair).\n"
    );
    for s in results {
        let f = &s.false_alarms;
        let defects = if s.family == crate::EL_FAMILY {
            "photographed real defects, rendered and synthesized synthetic ones"
        } else {
            "DRAWN defects"
        };
        let _ = writeln!(md, "\n## {} / {} / {} ({defects})\n", s.surface, s.family, s.model);
        let _ = writeln!(
            md,
            "thresholds {} (k = {} for the alignment, {} for the change size, {} for the off span, {} for the pixel extent; scores correlated {:+.3} alignment-size, {:+.3} alignment-off span, {:+.3} size-off span, {:+.3} size-extent), target ARL0 {} with a margin of {} sd on the change size and extent (simulated {:.0}, {:.0} with either shifted by the margin; blocks shifted by between-source shares {:.3} / {:.3} / {:.3} / {:.3}); {} calibration pairs (median pixel extent {:.4}), {} held-out good pairs from {} images; mean alignment {:.4} (calibration, cross-fitted) vs {:.4} (held out). \
             Held-out good pairs' mean evidence per CUSUM (its residual toward its alarm, calibration pairs 0 and sd 1): {}.\n",
            NamedThresholds(&s.params.thresholds), s.params.alignment_k, s.params.size_k, s.params.off_span_k, s.params.extent_k, s.correlations[0][1], s.correlations[0][2], s.correlations[1][2], s.correlations[1][3], s.false_alarm_every, s.size_margin, s.simulated_every, s.shifted_every, s.source_effects[0], s.source_effects[1], s.source_effects[2], s.source_effects[3], s.calibration_pairs, s.median_extent, s.held_out.0, s.held_out.1, s.mean_alignment.0, s.mean_alignment.1,
            evidence_text(&s.held_out_evidence)
        );
        let [q10, q50, q90] = f.run_quantiles;
        let _ = writeln!(
            md,
            "False alarms: {} in {} pairs = **{:.3} per 10,000** (Poisson 95% {:.3} to {:.3}; over held-out images {:.3} to {:.3}; in blocks by source {:.3}, Poisson 95% {:.3} to {:.3}); by CUSUM {:?} ({}). \
             Run lengths: mean {:.0}; p10 / p50 / p90 {:.0} / {:.0} / {:.0} against the geometric's {:.0} / {:.0} / {:.0}; Kolmogorov distance {:.3}.\n",
            f.alarms, f.pairs, f.per_10k, f.poisson.0, f.poisson.1, f.images.0, f.images.1, f.in_blocks.0, f.in_blocks.1.0, f.in_blocks.1.1, f.by_watch, Watch::ALL.map(|w| w.name()).join(", "),
            f.mean_run, q10.0, q50.0, q90.0, q10.1, q50.1, q90.1, f.geometric_distance
        );
        let starts: Vec<String> = CHANGE_AFTER.iter().map(|a| format!("after {a}: mean / p95 / within 100")).collect();
        let _ = writeln!(md, "| generator | effect (alignment / size / off span / extent) | floor | {} |", starts.join(" | "));
        let _ = writeln!(md, "|---|---|---|{}", "---|".repeat(starts.len()));
        for row in &s.rows {
            let cells: Vec<String> = row
                .delays
                .iter()
                .map(|d| {
                    format!(
                        "{:.1} / {:.0} / {:.0}%{}",
                        d.mean,
                        d.p95,
                        100.0 * d.within_100,
                        if d.redrawn > 0 { format!(" ({} redrawn)", d.redrawn) } else { String::new() }
                    )
                })
                .collect();
            let _ = writeln!(
                md,
                "| {} | {:+.2} / {:+.2} / {:+.2} / {:+.2} | {:.1} | {} |",
                row.generator,
                row.effect[0],
                row.effect[1],
                row.effect[2],
                row.effect[3],
                row.least_possible_delay(s.false_alarm_every as f64),
                cells.join(" | ")
            );
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_intervals_match_scipy() {
        // scipy.stats.chi2.ppf(0.025, 2k) / 2 and chi2.ppf(0.975, 2k + 2) / 2.
        let (low, high) = poisson_interval(0);
        assert_eq!(low, 0.0);
        assert!((high - 3.688879).abs() < 1e-5, "{high}");
        let (low, high) = poisson_interval(5);
        assert!((low - 1.623486).abs() < 1e-5 && (high - 11.668332).abs() < 1e-5, "{low} {high}");
    }

    #[test]
    fn the_floor_is_lordens_bound_for_both_effects() {
        let row = StreamRow {
            generator: StudyGenerator::Drawn(spanwatch_synth::defects::Generator::Copy),
            effect: [1.0, 0.0, 0.0, 0.0],
            delays: Vec::new(),
        };
        assert!((row.least_possible_delay(10f64.exp()) - 20.0).abs() < 1e-9);
        let row = StreamRow { effect: [1.0, -1.0, 0.0, 0.0], ..row };
        assert!((row.least_possible_delay(10f64.exp()) - 10.0).abs() < 1e-9);
        let row = StreamRow { effect: [1.0, -1.0, 2.0, 0.0], ..row };
        assert!((row.least_possible_delay(10f64.exp()) - 10.0 / 3.0).abs() < 1e-9);
        let row = StreamRow { effect: [1.0, -1.0, 2.0, 2.0], ..row };
        assert!((row.least_possible_delay(10f64.exp()) - 2.0).abs() < 1e-9);
    }

    #[test]
    fn geometric_runs_fit_and_constant_runs_do_not() {
        let mut rng = StdRng::seed_from_u64(3);
        let p = 0.01f64;
        let runs: Vec<usize> = (0..5000).map(|_| ((1.0 - rng.random::<f64>()).ln() / (1.0 - p).ln()).ceil().max(1.0) as usize).collect();
        let (distance, quantiles) = geometric_fit(&runs);
        assert!(distance < 0.03, "{distance}");
        assert!((quantiles[1].0 - quantiles[1].1).abs() / quantiles[1].1 < 0.1, "{quantiles:?}");
        let (distance, _) = geometric_fit(&[100; 50]);
        assert!(distance > 0.3, "{distance}");
    }
}
