//! The monitor proper: a pair's two images are embedded, their standardized
//! difference goes into the no_std span tracker (the window's scores for
//! the metrics) and the pair's own statistics into the drift detector, which
//! the alert and the alarm line follow.
//!
//! Embedding and scoring are two steps: pairs are embedded several at a
//! time, one image per core ([`Monitor::embed`]), then scored one by one in
//! order ([`Monitor::score`]). A synthesis run makes many defects from each
//! normal image, so the source of a pair has often been embedded before: the
//! monitor keeps the embeddings of the last [`SOURCES_KEPT`] sources it
//! used, keyed by their files' content (sha256), and embeds only the
//! synthetic image of a pair whose source it remembers.

use anyhow::{bail, Context, Result};
use lru::LruCache;
use spanwatch_core::detector::DetectorState;
use spanwatch_embed::extent::change_extent;
use spanwatch_embed::manifest::Manifest;
use spanwatch_embed::model::Embedder;
use spanwatch_embed::EmbedError;
use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::path::Path;

pub use spanwatch_monitor::calibration::Calibration;
pub use spanwatch_monitor::scorer::{PairScorer, Scored};

/// How many source embeddings the monitor remembers (1.3 MB at d = 1280).
pub const SOURCES_KEPT: usize = 256;

/// Loads the model (the bundle's unless `model` names another) and refuses
/// one whose sha256 or dimension differs from the bundle's.
pub fn load_checked_model(calibration: &Calibration, model: Option<&str>, bundle_path: &Path) -> Result<Embedder> {
    let name = model.unwrap_or(&calibration.model_name);
    let manifest = Manifest::resolve(name).with_context(|| format!("cannot find the model {name:?}"))?;
    let embedder = Embedder::load(&manifest)?;
    if embedder.sha256() != &calibration.model_sha256 || embedder.dim() != calibration.dim {
        bail!(
            "refusing to start: bundle {} was calibrated with model {} (sha256 {}.., d = {}), but model {:?} is sha256 {}.. (d = {}); \
             recalibrate with this model or use the bundle's",
            bundle_path.display(),
            calibration.model_name,
            &hex::encode(calibration.model_sha256)[..16],
            calibration.dim,
            manifest.name,
            &hex::encode(embedder.sha256())[..16],
            embedder.dim()
        );
    }
    Ok(embedder)
}

/// Embeds pairs and tracks them.
pub struct Monitor {
    embedder: Embedder,
    scorer: PairScorer,
    /// Embeddings of recent sources by their files' sha256.
    sources: LruCache<[u8; 32], Vec<f32>>,
    /// Images embedded at once.
    threads: usize,
}

impl Monitor {
    /// Checks that the monitor can run this calibration (its dimension is
    /// one the edge is built for, its window fits, its seeds are sound),
    /// exactly as starting would, without starting.
    pub fn check(calibration: &Calibration) -> Result<()> {
        PairScorer::check(calibration)
    }

    /// A monitor for `calibration` with a checked `embedder`, resuming
    /// where a previous run left off: its detector (and alert) in `state`
    /// and its window holding the seeds followed by `recent` (the latest
    /// pairs' differences, oldest first).
    pub fn new(embedder: Embedder, calibration: Calibration, state: DetectorState, recent: &[Vec<f32>]) -> Result<Monitor> {
        let scorer = PairScorer::new(calibration, state, recent)?;
        let sources = LruCache::new(NonZeroUsize::new(SOURCES_KEPT).expect("a positive constant"));
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 4);
        Ok(Monitor { embedder, scorer, sources, threads })
    }

    /// Forgets the last pair scored (one that could not be recorded): the
    /// window and the detector go back to where they were before it. Does
    /// nothing when there is none to forget.
    pub fn forget_last(&mut self) {
        self.scorer.forget_last();
    }

    /// The calibration in use.
    pub fn calibration(&self) -> &Calibration {
        self.scorer.calibration()
    }

    /// How many pairs [`Self::embed`] embeds at once to keep every core
    /// busy: one image per core (tract runs one image on one core), at
    /// least 2 and at most 4 (each image in flight holds the model's
    /// activations).
    pub fn pairs_at_once(&self) -> usize {
        self.threads
    }

    /// Embeds pairs (source, synthetic) without scoring them, spread over
    /// [`Self::pairs_at_once`] threads: every synthetic image, and each
    /// source the monitor does not remember (once, however many of the
    /// pairs share it). The sources embedded are remembered. Each pair's
    /// pixel extent is measured from its two files. Each pair's result
    /// names the file that failed; the tracker is not touched.
    pub fn embed(&mut self, pairs: &[(&Path, &Path)]) -> Vec<Result<EmbeddedPair>> {
        let mut jobs: Vec<Job> = Vec::new();
        let mut queued: HashMap<[u8; 32], usize> = HashMap::new();
        let mut plans = Vec::with_capacity(pairs.len());
        for &(source, synthetic) in pairs {
            let source_plan = match spanwatch_embed::preprocess::read_image_file(source) {
                Err(error) => SourcePlan::Unreadable(error),
                Ok(bytes) => {
                    let content = spanwatch_embed::sha256(&bytes);
                    if let Some(embedding) = self.sources.get(&content) {
                        SourcePlan::Remembered(embedding.clone())
                    } else if let Some(&job) = queued.get(&content) {
                        SourcePlan::Shared(job)
                    } else {
                        queued.insert(content, jobs.len());
                        jobs.push(Job { path: source, bytes: Some(bytes) });
                        SourcePlan::Embed(jobs.len() - 1)
                    }
                }
            };
            jobs.push(Job { path: synthetic, bytes: None });
            plans.push((source_plan, jobs.len() - 1));
        }
        let mut results = run_jobs(&self.embedder, &jobs, self.threads);
        for (content, &job) in &queued {
            if let Ok(embedding) = &results[job] {
                self.sources.put(*content, embedding.clone());
            }
        }
        plans
            .into_iter()
            .zip(pairs)
            .map(|((source_plan, synthetic_job), &(source_path, synthetic_path))| {
                let (source, source_remembered) = match source_plan {
                    SourcePlan::Unreadable(error) => return Err(error.into()),
                    SourcePlan::Remembered(embedding) => (embedding, true),
                    SourcePlan::Shared(job) => (results[job].clone().map_err(anyhow::Error::msg)?, true),
                    SourcePlan::Embed(job) => (results[job].clone().map_err(anyhow::Error::msg)?, false),
                };
                let synthetic = std::mem::replace(&mut results[synthetic_job], Ok(Vec::new())).map_err(anyhow::Error::msg)?;
                let extent = change_extent(source_path, synthetic_path)?;
                Ok(EmbeddedPair { source, synthetic, extent, source_remembered })
            })
            .collect()
    }

    /// Scores an embedded pair: its standardized difference goes into the
    /// tracker and the alert follows. `source` and `synthetic` name the
    /// files in errors; an error leaves the tracker untouched.
    pub fn score(&mut self, source: &Path, synthetic: &Path, pair: &EmbeddedPair) -> Result<Scored> {
        self.scorer
            .score(&pair.source, &pair.synthetic, pair.extent)
            .with_context(|| format!("{} and {}", source.display(), synthetic.display()))
    }
}

/// A pair's two embeddings, ready to score.
pub struct EmbeddedPair {
    source: Vec<f32>,
    synthetic: Vec<f32>,
    /// The share of pixels the pair's images differ in.
    extent: f64,
    /// Whether the source's embedding was remembered rather than computed.
    pub source_remembered: bool,
}

/// An image to embed: its file, and its bytes if already read.
struct Job<'a> {
    path: &'a Path,
    bytes: Option<Vec<u8>>,
}

/// Where a pair's source embedding comes from.
enum SourcePlan {
    /// Its file cannot be read.
    Unreadable(EmbedError),
    /// The monitor remembers it.
    Remembered(Vec<f32>),
    /// Another pair of the batch embeds the same content (this job).
    Shared(usize),
    /// This job embeds it.
    Embed(usize),
}

/// Runs `jobs` on `threads` threads (job j on thread j mod threads; the
/// images cost about the same), each error rendered with its file's name.
fn run_jobs(embedder: &Embedder, jobs: &[Job], threads: usize) -> Vec<Result<Vec<f32>, String>> {
    let workers = threads.min(jobs.len()).max(1);
    let run = |first: usize| -> Vec<(usize, Result<Vec<f32>, String>)> {
        (first..jobs.len())
            .step_by(workers)
            .map(|j| {
                let job = &jobs[j];
                let embedding = match &job.bytes {
                    Some(bytes) => embedder.embed_bytes(job.path, bytes),
                    None => embedder.embed_file(job.path, None).map(|(embedding, _)| embedding),
                };
                (j, embedding.map_err(|e| format!("{e:#}")))
            })
            .collect()
    };
    let mut results: Vec<Result<Vec<f32>, String>> = vec![Ok(Vec::new()); jobs.len()];
    let done: Vec<(usize, Result<Vec<f32>, String>)> = std::thread::scope(|scope| {
        let others: Vec<_> = (1..workers).map(|first| scope.spawn(move || run(first))).collect();
        let mut done = run(0);
        for other in others {
            done.extend(other.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
        }
        done
    });
    for (j, result) in done {
        results[j] = result;
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use spanwatch_core::detector::{CusumParams, DriftDetector, NormalScores, ScoreTables, INDEPENDENT};
    use spanwatch_core::span::Solver;
    use std::path::PathBuf;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/images").join(name)
    }

    fn monitor() -> Monitor {
        let embedder = Embedder::load(&Manifest::resolve("efficientnet-lite0").unwrap()).unwrap();
        let d = embedder.dim();
        let w: Vec<f32> = (0..d).map(|j| if j % 2 == 0 { 1.0 } else { -0.5 }).collect();
        let table = NormalScores::new([-1.0f32, 1.0].into_iter(), [-1.0f32, 1.0].into_iter(), 1.0).unwrap();
        let params = CusumParams {
            alignment_k: 0.5,
            size_k: 1.0,
            off_span_k: 1.0,
            extent_k: 1.0,
            residuals: INDEPENDENT,
            thresholds: [1e6; spanwatch_core::detector::WATCHES],
            clear_after: 10,
        };
        let tables = ScoreTables { alignment: table, size: table, off_span: table, extent: table };
        let detector = DriftDetector::new(tables, params, DetectorState::default()).unwrap();
        let calibration = Calibration {
            digest: String::new(),
            model_name: "efficientnet-lite0".into(),
            model_sha256: *embedder.sha256(),
            dim: d,
            generator: "faithful".into(),
            solver: Solver::Nnls,
            sigma: vec![1.0; d],
            w,
            seeds: Vec::new(),
            basis: Vec::new(),
            window: 8,
            detector,
            false_alarm_every: 30_000,
        };
        Monitor::new(embedder, calibration, DetectorState::default(), &[]).unwrap()
    }

    /// Embeds and scores one pair: what it scored, and whether its source was remembered.
    fn process(monitor: &mut Monitor, source: &Path, synthetic: &Path) -> (Scored, bool) {
        let embedded = monitor.embed(&[(source, synthetic)]).pop().unwrap().unwrap();
        (monitor.score(source, synthetic, &embedded).unwrap(), embedded.source_remembered)
    }

    fn images() -> Vec<PathBuf> {
        std::fs::read_to_string(fixture("INDEX.txt")).unwrap().lines().map(fixture).collect()
    }

    /// A pair whose source was used before gets exactly the difference it
    /// gets when its source is embedded anew; sources are told apart by
    /// content, not by name.
    #[test]
    fn a_remembered_source_gives_the_difference_of_a_computed_one() {
        let images = images();
        let (a, b, c) = (&images[0], &images[1], &images[2]);
        let mut seen = monitor();
        assert!(!process(&mut seen, a, b).1);
        let copy = tempfile::tempdir().unwrap();
        let renamed = copy.path().join("renamed.png");
        std::fs::copy(a, &renamed).unwrap();
        let (remembered, was_remembered) = process(&mut seen, &renamed, c);
        assert!(was_remembered, "same content under another name");
        let mut fresh = monitor();
        let (computed, computed_remembered) = process(&mut fresh, a, c);
        assert!(!computed_remembered);
        assert_eq!(remembered.difference, computed.difference);
        let (other, other_remembered) = process(&mut seen, b, c);
        assert!(!other_remembered, "another source is embedded");
        assert!(other.difference.iter().any(|&v| v != 0.0));
    }

    /// A pair that could not be recorded is forgotten: the monitor scores
    /// the next pair exactly as one that never saw it, window and detector
    /// alike.
    #[test]
    fn a_forgotten_pair_leaves_no_trace() {
        let images = images();
        let (a, b, c, d) = (&images[0], &images[1], &images[2], &images[3]);
        let mut forgetful = monitor();
        process(&mut forgetful, a, b);
        process(&mut forgetful, b, c);
        forgetful.forget_last();
        let (after, _) = process(&mut forgetful, c, d);
        let mut plain = monitor();
        process(&mut plain, a, b);
        let (expected, _) = process(&mut plain, c, d);
        assert_eq!((after.report, after.step, after.detector), (expected.report, expected.step, expected.detector));
        assert_eq!(after.report.pairs, 2, "the forgotten pair is not counted");
        forgetful.forget_last();
        forgetful.forget_last();
        assert_eq!(process(&mut forgetful, c, d).0.report, expected.report, "only the last pair is forgotten, once");
    }

    /// Pairs embedded together score as pairs embedded one at a time, a
    /// source shared in the batch is embedded once, and a pair with a
    /// missing file fails alone, naming it.
    #[test]
    fn a_batch_scores_as_single_pairs_and_fails_pair_by_pair() {
        let images = images();
        let (a, b, c, d) = (&images[0], &images[1], &images[2], &images[3]);
        let missing = fixture("no-such-image.png");
        let pairs: [(&Path, &Path); 5] = [(a, b), (a, c), (&missing, d), (b, &missing), (c, d)];
        let mut batch = monitor();
        let embedded = batch.embed(&pairs);
        assert_eq!(embedded.len(), pairs.len());
        let mut single = monitor();
        for ((source, synthetic), result) in pairs.iter().zip(&embedded) {
            match result {
                Ok(pair) => {
                    let scored = batch.score(source, synthetic, pair).unwrap();
                    let (expected, _) = process(&mut single, source, synthetic);
                    assert_eq!(scored.difference, expected.difference);
                    assert_eq!(scored.report, expected.report);
                }
                Err(e) => assert!(format!("{e:#}").contains("no-such-image.png"), "{e:#}"),
            }
        }
        let remembered: Vec<bool> = embedded.iter().map(|r| r.as_ref().map(|p| p.source_remembered).unwrap_or(false)).collect();
        assert_eq!(remembered, [false, true, false, false, false]);
        assert!(embedded[2].is_err() && embedded[3].is_err());
    }

    /// A 3 GiB file (sparse: no disk is used) or a FIFO named like a pair's
    /// image fails its pair alone, at once and from its size or type, never
    /// read into memory (a daemon in a 1 GiB cgroup was OOM-killed on every
    /// start by such a file) nor waited on.
    #[test]
    fn a_huge_file_or_a_fifo_fails_its_pair_before_it_is_read() {
        let images = images();
        let dir = tempfile::tempdir().unwrap();
        let huge = dir.path().join("pair-1.synthetic.png");
        std::fs::File::create(&huge).unwrap().set_len(3 << 30).unwrap();
        let fifo = dir.path().join("pair-2.source.png");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let mut monitor = monitor();
        let started = std::time::Instant::now();
        let pairs: [(&Path, &Path); 4] = [(&images[0], &huge), (&huge, &images[1]), (&fifo, &images[1]), (&images[0], &images[1])];
        let results = monitor.embed(&pairs);
        for (result, name) in results[..3].iter().zip(["pair-1.synthetic.png", "pair-1.synthetic.png", "pair-2.source.png"]) {
            let error = format!("{:#}", result.as_ref().err().expect("refused"));
            assert!(error.contains(name) && error.contains("refused before reading"), "{error}");
        }
        assert!(results[3].is_ok(), "the good pair beside them is embedded");
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "nothing waited on the FIFO");
    }
}
