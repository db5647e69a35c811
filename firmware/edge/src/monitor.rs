//! The monitor proper: a pair's two images are embedded, their standardized
//! difference goes into the no_std span tracker, and the alert policy and
//! alarm line follow the windowed score the bundle names.

use crate::messages::{ScoreName, Statistic};
use anyhow::{bail, Context, Result};
use spanwatch_core::alert::{AlertChange, AlertPolicy, AlertState};
use spanwatch_core::bundle::{AlertBand, Bundle};
use spanwatch_core::span::{Solver, SpanScore};
use spanwatch_core::standardize::difference_into;
use spanwatch_core::tracker::{PairReport, SpanTracker, TrackerError, WINDOW_CAPACITY};
use spanwatch_embed::manifest::Manifest;
use spanwatch_embed::model::Embedder;
use std::path::Path;

/// The parts of a calibration bundle the edge uses, owned.
#[derive(Clone, Debug)]
pub struct Calibration {
    /// sha256 of the bundle file, hex: the saved window belongs to it.
    pub digest: String,
    /// The model's manifest name.
    pub model_name: String,
    /// sha256 of the model file.
    pub model_sha256: [u8; 32],
    /// Embedding dimension.
    pub dim: usize,
    /// The calibrated generator.
    pub generator: String,
    /// The span score the edge computes (the alert's, for `AlertStatistic::Span`).
    pub solver: Solver,
    /// Per-dimension standard deviation of the real embeddings (the mean
    /// cancels in a difference).
    pub sigma: Vec<f32>,
    /// The probe in standardized space.
    pub w: Vec<f32>,
    /// Seeds s_j v_j / sqrt(n) of the reference basis (a typical pair's size).
    pub seeds: Vec<Vec<f32>>,
    /// The alert band.
    pub band: AlertBand,
}

impl Calibration {
    /// Reads and checks a bundle file.
    pub fn load(path: &Path) -> Result<Calibration> {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read the calibration bundle {}", path.display()))?;
        let bundle = Bundle::decode(&bytes).map_err(|e| anyhow::anyhow!("calibration bundle {}: {e}", path.display()))?;
        let d = bundle.model.dim as usize;
        let seeds = (0..bundle.rank())
            .map(|j| {
                let mut seed = vec![0.0; d];
                bundle.seed_into(j, &mut seed);
                seed
            })
            .collect();
        Ok(Calibration {
            digest: hex::encode(spanwatch_embed::sha256(&bytes)),
            model_name: bundle.model.name.to_string(),
            model_sha256: bundle.model.sha256,
            dim: d,
            generator: bundle.generator.to_string(),
            solver: bundle.solver,
            sigma: bundle.sigma.to_vec(),
            w: bundle.w.to_vec(),
            seeds,
            band: bundle.alert,
        })
    }

    /// The span score of the bundle's solver.
    pub fn score(&self) -> ScoreName {
        ScoreName::of(self.solver)
    }

    /// What the alert watches.
    pub fn statistic(&self) -> Statistic {
        Statistic::of(self.band.statistic, self.solver)
    }
}

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

/// A tracker for one of the dimensions the edge is compiled for.
enum Tracker {
    /// EfficientNet-Lite0's 1280.
    D1280(Box<SpanTracker<1280, WINDOW_CAPACITY>>),
    /// ViT-S/14's 384.
    D384(Box<SpanTracker<384, WINDOW_CAPACITY>>),
}

/// Embedding dimensions the edge monitor is compiled for.
pub const SUPPORTED_DIMS: [usize; 2] = [1280, 384];

impl Tracker {
    fn new(calibration: &Calibration) -> Result<Tracker> {
        let window = calibration.band.window as usize;
        let describe = |e: TrackerError| anyhow::anyhow!("calibration bundle: {e}");
        fn build<const D: usize>(c: &Calibration, window: usize) -> Result<Box<SpanTracker<D, WINDOW_CAPACITY>>, TrackerError> {
            let w: &[f32; D] = c.w.as_slice().try_into().expect("dimension checked");
            let mut tracker = Box::new(SpanTracker::new(w, c.solver, window)?);
            for seed in c.seeds.iter().take(window) {
                tracker.seed(seed.as_slice().try_into().expect("dimension checked"));
            }
            Ok(tracker)
        }
        Ok(match calibration.dim {
            1280 => Tracker::D1280(build(calibration, window).map_err(describe)?),
            384 => Tracker::D384(build(calibration, window).map_err(describe)?),
            d => bail!("the edge monitor is built for embeddings of {SUPPORTED_DIMS:?} dimensions, the bundle has {d}"),
        })
    }

    /// A tracker holding the calibration's seeds followed by `recent` (the
    /// latest pairs' differences, oldest first).
    fn resumed(calibration: &Calibration, recent: &[Vec<f32>]) -> Result<Tracker> {
        if let Some(bad) = recent.iter().find(|d| d.len() != calibration.dim || d.iter().any(|v| !v.is_finite())) {
            bail!("a saved difference has {} values (expected {}) or is not finite", bad.len(), calibration.dim);
        }
        let mut tracker = Tracker::new(calibration)?;
        for difference in recent {
            tracker.push(difference);
        }
        Ok(tracker)
    }

    fn push(&mut self, d: &[f32]) -> PairReport {
        match self {
            Tracker::D1280(t) => t.push(d.try_into().expect("dimension checked")),
            Tracker::D384(t) => t.push(d.try_into().expect("dimension checked")),
        }
    }
}

/// What the monitor made of one pair.
#[derive(Clone, Copy, Debug)]
pub struct Scored {
    /// The tracker's report.
    pub report: PairReport,
    /// The span score of the bundle's solver.
    pub score: SpanScore,
    /// The windowed statistic the alert watches.
    pub value: f64,
    /// The alert's change, if this pair caused one.
    pub change: Option<AlertChange>,
    /// The alert state after this pair.
    pub state: AlertState,
}

/// Embeds pairs and tracks them.
pub struct Monitor {
    embedder: Embedder,
    calibration: Calibration,
    tracker: Tracker,
    policy: AlertPolicy,
    difference: Vec<f32>,
}

impl Monitor {
    /// A monitor for `calibration` with a checked `embedder`, resuming
    /// where a previous run left off: its alert in `state` and its window
    /// holding the seeds followed by `recent` (the latest pairs'
    /// differences, oldest first).
    pub fn new(embedder: Embedder, calibration: Calibration, state: AlertState, recent: &[Vec<f32>]) -> Result<Monitor> {
        let tracker = Tracker::resumed(&calibration, recent)?;
        let policy = AlertPolicy::resume(calibration.band, state);
        let difference = vec![0.0; calibration.dim];
        Ok(Monitor { embedder, calibration, tracker, policy, difference })
    }

    /// Puts the window and the alert back to `state` and the seeds followed
    /// by `recent`: to forget a pair that could not be recorded.
    pub fn resume(&mut self, state: AlertState, recent: &[Vec<f32>]) -> Result<()> {
        self.tracker = Tracker::resumed(&self.calibration, recent)?;
        self.policy = AlertPolicy::resume(self.calibration.band, state);
        Ok(())
    }

    /// The standardized difference of the last pair scored.
    pub fn difference(&self) -> &[f32] {
        &self.difference
    }

    /// The calibration in use.
    pub fn calibration(&self) -> &Calibration {
        &self.calibration
    }

    /// The alert state.
    pub fn state(&self) -> AlertState {
        self.policy.state()
    }

    /// Embeds and scores one pair. The two images are embedded at once, on
    /// two threads (an edge box has at least two cores; tract runs one
    /// image per core). An error names the file and leaves the tracker
    /// untouched.
    pub fn process(&mut self, source: &Path, synthetic: &Path) -> Result<Scored> {
        let embedder = &self.embedder;
        let (source_embedding, synthetic_embedding) = std::thread::scope(|scope| {
            let synthetic = scope.spawn(|| embedder.embed_file(synthetic, None));
            let source = embedder.embed_file(source, None);
            (source, synthetic.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
        });
        let (source_embedding, _) = source_embedding?;
        let (synthetic_embedding, _) = synthetic_embedding?;
        let c = &self.calibration;
        // The difference of standardized embeddings; mu cancels: (syn - src) / sigma.
        difference_into(&synthetic_embedding, &source_embedding, &c.sigma, &mut self.difference);
        if let Some(i) = self.difference.iter().position(|v| !v.is_finite()) {
            bail!("{} and {}: their difference is not finite in dimension {i}", source.display(), synthetic.display());
        }
        let report = self.tracker.push(&self.difference);
        let score = report.scores.of(c.solver);
        let value = report.scores.statistic(c.band.statistic, c.solver);
        let change = self.policy.update(report.pairs, value);
        Ok(Scored { report, score, value, change, state: self.policy.state() })
    }
}
