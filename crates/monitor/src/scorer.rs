//! Each pair scored as the edge scores it: its standardized difference goes
//! into the core's span tracker (the window's scores) and its statistics
//! into the drift detector, which the alert follows. The last pair can be
//! forgotten (the edge does when its record cannot be written).

use crate::calibration::Calibration;
use anyhow::{bail, Context, Result};
use spanwatch_core::detector::{DetectorState, DetectorStep, DriftDetector};
use spanwatch_core::span::SpanScore;
use spanwatch_core::standardize::difference_into;
use spanwatch_core::tracker::{PairReport, SpanTracker, TrackerError, WINDOW_CAPACITY};

/// A tracker for one of the dimensions the monitoring is compiled for.
#[derive(Clone)]
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
        let window = calibration.window;
        fn build<const D: usize>(c: &Calibration, window: usize) -> Result<Box<SpanTracker<D, WINDOW_CAPACITY>>, TrackerError> {
            let w: &[f32; D] = c.w.as_slice().try_into().expect("dimension checked");
            let mut tracker = Box::new(SpanTracker::new(w, c.solver, window)?);
            for seed in c.seeds.iter().take(window) {
                tracker.seed(seed.as_slice().try_into().expect("dimension checked"));
            }
            Ok(tracker)
        }
        Ok(match calibration.dim {
            1280 => Tracker::D1280(build(calibration, window).context("calibration bundle")?),
            384 => Tracker::D384(build(calibration, window).context("calibration bundle")?),
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
        // Only the window is rebuilt: the detector's state is saved apart,
        // so the replayed pairs' statistics (and their pixel extents, not
        // saved) are not needed.
        for difference in recent {
            tracker.push(difference, &calibration.basis, f64::NAN);
        }
        Ok(tracker)
    }

    /// Adds difference `d`, its off-span share measured against `basis`,
    /// of a pair whose images differ in the share `extent` of their pixels.
    fn push(&mut self, d: &[f32], basis: &[f32], extent: f64) -> PairReport {
        let basis = basis.iter().copied();
        match self {
            Tracker::D1280(t) => t.push(d.try_into().expect("dimension checked"), basis, extent),
            Tracker::D384(t) => t.push(d.try_into().expect("dimension checked"), basis, extent),
        }
    }
}

/// What the monitor made of one pair.
#[derive(Clone, Debug)]
pub struct Scored {
    /// The pair's standardized difference, as the window holds it.
    pub difference: Vec<f32>,
    /// The tracker's report.
    pub report: PairReport,
    /// The span score of the bundle's solver.
    pub score: SpanScore,
    /// What the pair did to the drift detector.
    pub step: DetectorStep,
    /// The detector's state after this pair (the alert's among it).
    pub detector: DetectorState,
}

/// The monitoring of one calibrated generator: the window and the detector.
pub struct PairScorer {
    calibration: Calibration,
    tracker: Tracker,
    detector: DriftDetector,
    /// The tracker and the detector's state before the last pair scored:
    /// what [`PairScorer::forget_last`] puts back.
    before_last: Option<(Tracker, DetectorState)>,
}

impl PairScorer {
    /// Checks that `calibration` can be monitored (its dimension is one this
    /// build is compiled for, its window fits, its seeds are sound).
    pub fn check(calibration: &Calibration) -> Result<()> {
        Tracker::new(calibration).map(drop)
    }

    /// A scorer for `calibration` resuming where a previous run left off:
    /// its detector (and alert) in `state` and its window holding the seeds
    /// followed by `recent` (the latest pairs' differences, oldest first).
    pub fn new(calibration: Calibration, state: DetectorState, recent: &[Vec<f32>]) -> Result<PairScorer> {
        let tracker = Tracker::resumed(&calibration, recent)?;
        let mut detector = calibration.detector;
        detector.resume(state);
        Ok(PairScorer { calibration, tracker, detector, before_last: None })
    }

    /// The calibration in use.
    pub fn calibration(&self) -> &Calibration {
        &self.calibration
    }

    /// Scores a pair from its two embeddings and the share `extent` of the
    /// pixels its images differ in (`spanwatch_embed::extent`): the
    /// difference of their standardized forms goes into the window and the
    /// alert follows. A difference that is not finite is an error and
    /// leaves everything as it was.
    pub fn score(&mut self, source: &[f32], synthetic: &[f32], extent: f64) -> Result<Scored> {
        let c = &self.calibration;
        if source.len() != c.dim || synthetic.len() != c.dim {
            bail!("embeddings of {} and {} values; the bundle's have {}", source.len(), synthetic.len(), c.dim);
        }
        // The difference of standardized embeddings; mu cancels: (syn - src) / sigma.
        let mut difference = vec![0.0; c.dim];
        difference_into(synthetic, source, &c.sigma, &mut difference);
        if let Some(i) = difference.iter().position(|v| !v.is_finite()) {
            bail!("their difference is not finite in dimension {i}");
        }
        self.before_last = Some((self.tracker.clone(), self.detector.state()));
        let report = self.tracker.push(&difference, &c.basis, extent);
        let score = report.scores.of(c.solver);
        let step = self.detector.update(report.statistics);
        Ok(Scored { difference, report, score, step, detector: self.detector.state() })
    }

    /// Forgets the last pair scored: the window and the detector go back to
    /// where they were before it. Does nothing when there is none to forget.
    pub fn forget_last(&mut self) {
        if let Some((tracker, state)) = self.before_last.take() {
            self.tracker = tracker;
            self.detector.resume(state);
        }
    }
}
