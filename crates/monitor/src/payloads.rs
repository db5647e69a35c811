//! The typed messages the edge publishes about pairs and alerts: the
//! window's metrics after each pair, the verdict on each pair, the drift
//! alert's raises and clears, the monitor's health. Their JSON is the
//! contract of docs/mqtt.md, whose examples round-trip through these types.

use crate::calibration::Calibration;
use crate::scorer::Scored;
use serde::{Deserialize, Serialize};
use spanwatch_core::alert::{pair_verdict, AlertState, PairVerdict};
use spanwatch_core::detector::{nearest, AlertChange, DetectorStep, Watch, WATCHES};
use spanwatch_core::span::Solver;
use spanwatch_core::tracker::PairReport;
use std::time::SystemTime;

/// The span score a window reports: the cone (the bundle's solver is NNLS,
/// the default) or the ridge span (ridge or lstsq).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoreName {
    /// The sign-aware cone (NNLS).
    Cone,
    /// The ridge span (the paper's score).
    Ridge,
}

impl ScoreName {
    /// The score the bundle's `solver` reports.
    pub fn of(solver: Solver) -> ScoreName {
        match solver {
            Solver::Nnls => ScoreName::Cone,
            Solver::Ridge { .. } | Solver::Lstsq => ScoreName::Ridge,
        }
    }

    /// Its name in messages: "cone" or "ridge".
    pub fn name(self) -> &'static str {
        match self {
            ScoreName::Cone => "cone",
            ScoreName::Ridge => "ridge",
        }
    }
}

/// The drift detector a bundle carries: `cusum`, Page's CUSUM on each
/// pair's normalized alignment, change size, share outside the reference
/// basis and pixel extent (the only one so far).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectorName {
    /// Seven one-sided CUSUMs: low alignment, small change, large change,
    /// outside the span, wide change, narrow change, outside the span by
    /// the off span's own score.
    Cusum,
}

impl DetectorName {
    /// Its name in messages: "cusum".
    pub fn name(self) -> &'static str {
        match self {
            DetectorName::Cusum => "cusum",
        }
    }
}

/// The drift detector after one pair (in `…/metrics`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DriftReading {
    /// The detector.
    pub detector: DetectorName,
    /// The pair's log change size (ln of its difference's norm, standardized).
    pub log_size: f64,
    /// The pair's alignment as a normal score against the calibration pairs'.
    pub alignment_score: f64,
    /// Its log change size as a normal score against the calibration pairs'.
    pub size_score: f64,
    /// The pair's share of its change outside the bundle's reference basis
    /// (0: all inside, 1: all outside).
    pub off_span: f64,
    /// That share as a normal score against the calibration pairs'.
    pub off_span_score: f64,
    /// ln of the share of the image's pixels the pair's change moved (null
    /// when not measured).
    pub log_extent: Option<f64>,
    /// That log extent as a normal score against the calibration pairs'.
    pub extent_score: f64,
    /// The CUSUM of low alignments after this pair.
    pub low_alignment: f64,
    /// The CUSUM of small changes after this pair.
    pub small_change: f64,
    /// The CUSUM of large changes after this pair.
    pub large_change: f64,
    /// The CUSUM of changes outside the reference basis after this pair.
    pub outside_span: f64,
    /// The CUSUM of changes over more of the image's pixels after this pair.
    pub wide_change: f64,
    /// The CUSUM of changes over fewer of the image's pixels after this pair.
    pub narrow_change: f64,
    /// The CUSUM of the off span's own score (not its residual) after this pair.
    pub outside_span_alone: f64,
    /// The CUSUM nearest its threshold (the largest share of it).
    pub watch: Watch,
    /// Its value: the statistic compared with `threshold` (all seven
    /// restart from 0 after one crosses its own).
    pub statistic: f64,
    /// Its threshold.
    pub threshold: f64,
    /// `statistic / threshold`: how near the alert is, on one scale for
    /// all seven CUSUMs (it rises above 1).
    pub level: f64,
}

impl DriftReading {
    /// The reading of a pair's detector step.
    fn of(report: &PairReport, step: &DetectorStep, thresholds: &[f64; WATCHES]) -> DriftReading {
        let [low_alignment, small_change, large_change, outside_span, wide_change, narrow_change, outside_span_alone] = step.sums;
        let nearest = nearest(&step.sums, thresholds);
        DriftReading {
            detector: DetectorName::Cusum,
            log_size: report.statistics.log_size,
            alignment_score: step.scores[0],
            size_score: step.scores[1],
            off_span: report.statistics.off_span,
            off_span_score: step.scores[2],
            log_extent: Some(report.statistics.log_extent).filter(|e| e.is_finite()),
            extent_score: step.scores[3],
            low_alignment,
            small_change,
            large_change,
            outside_span,
            wide_change,
            narrow_change,
            outside_span_alone,
            watch: nearest.watch,
            statistic: nearest.value,
            threshold: nearest.threshold,
            level: nearest.level(),
        }
    }
}

/// What a crossing of `watch` means, in words.
fn describe(watch: Watch) -> &'static str {
    match watch {
        Watch::LowAlignment => "the pairs' changes align with the probe less than the calibration pairs' (a defect of another kind?)",
        Watch::SmallChange => "the pairs change less than the calibration pairs (faint defects, or none at all)",
        Watch::LargeChange => "the pairs change more than the calibration pairs (noise or a photometric change?)",
        Watch::OutsideSpan => {
            "the pairs' changes lie further outside the calibration pairs' span than theirs do (a change of another kind?)"
        }
        Watch::WideChange => "the pairs change more of the image's pixels than the calibration pairs (noise or a photometric change?)",
        Watch::NarrowChange => {
            "the pairs change fewer of the image's pixels than the calibration pairs (smaller or faint defects, or none at all)"
        }
        Watch::OutsideSpanAlone => {
            "the pairs' changes lie further outside the calibration pairs' span than theirs do, as they shrink (a smaller change of another kind?)"
        }
    }
}

/// The verdict on one pair: the core's [`PairVerdict`], or a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Alignment > 0: the change moves toward the defect side.
    Useful,
    /// Alignment <= 0 or no change: useless or harmful on its own.
    Opposed,
    /// The pair could not be scored.
    Failed,
}

impl From<PairVerdict> for Verdict {
    fn from(verdict: PairVerdict) -> Verdict {
        match verdict {
            PairVerdict::Useful => Verdict::Useful,
            PairVerdict::Opposed => Verdict::Opposed,
        }
    }
}

macro_rules! display_by_name {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    )*};
}
display_by_name!(ScoreName, DetectorName);

/// The window's scores after one pair (`…/metrics`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// When the pair was scored (RFC 3339, UTC).
    pub timestamp: String,
    /// The pair id.
    pub pair: String,
    /// The span score of the bundle's solver.
    pub score: ScoreName,
    /// That score's DS over the window.
    pub ds: f64,
    /// Its relative projection error.
    pub rpe: f64,
    /// DS of a random span of the same rank.
    pub chance_ds: f64,
    /// Chance-corrected capture.
    pub corrected: f64,
    /// Ridge span DS (the paper's score).
    pub ridge_ds: f64,
    /// Cone DS.
    pub cone_ds: f64,
    /// Effective rank of the window.
    pub k: usize,
    /// The pair's alignment with the probe (null for no change).
    pub alignment: Option<f64>,
    /// Share of the pair's change outside the window's span.
    pub novelty: f64,
    /// Mean alignment of the window's pairs.
    pub mean_alignment: f64,
    /// The drift detector after this pair.
    pub drift: DriftReading,
    /// Vectors in the window.
    pub window: usize,
    /// Calibration seeds still in the window.
    pub seeds: usize,
    /// Pairs scored since start, plus those the window resumed with.
    pub pairs: u32,
    /// Pairs that failed since start.
    pub failed: u32,
    /// The alert state after this pair.
    pub alert: AlertState,
}

impl Metrics {
    /// The metrics of pair `pair` scored at `timestamp`, with `failed` pairs so far.
    pub fn from_scored(timestamp: String, pair: &str, calibration: &Calibration, scored: &Scored, failed: u32) -> Metrics {
        let (report, score) = (&scored.report, &scored.score);
        Metrics {
            timestamp,
            pair: pair.to_string(),
            score: ScoreName::of(calibration.solver),
            ds: score.ds,
            rpe: score.rpe,
            chance_ds: score.chance_ds,
            corrected: score.corrected,
            ridge_ds: report.scores.ridge.ds,
            cone_ds: report.scores.cone.ds,
            k: report.scores.k,
            alignment: report.alignment,
            novelty: report.novelty,
            mean_alignment: report.scores.mean_alignment,
            drift: DriftReading::of(report, &scored.step, &calibration.detector.params().thresholds),
            window: report.scores.window,
            seeds: report.scores.seeds,
            pairs: report.pairs,
            failed,
            alert: scored.detector.alert(),
        }
    }
}

/// A raise or clear of the drift alert (`…/alert`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Increases by one per alert message, across restarts; a subscriber
    /// drops a repeat (QoS 1 delivers at least once).
    pub seq: u64,
    /// When it happened (RFC 3339, UTC).
    pub timestamp: String,
    /// The state the alert changed to.
    pub state: AlertState,
    /// Why, in words.
    pub reason: String,
    /// The detector that decided.
    pub detector: DetectorName,
    /// Its CUSUM that crossed its threshold (raised), or the one nearest its threshold (cleared).
    pub watch: Watch,
    /// That CUSUM's value.
    pub value: f64,
    /// That CUSUM's threshold.
    pub threshold: f64,
    /// Good pairs between false alarms the detector was calibrated for (ARL0).
    pub false_alarm_every: u32,
    /// The pair whose arrival crossed it.
    pub pair: String,
    /// The calibrated generator.
    pub generator: String,
}

impl Alert {
    /// Alert number `seq` for `change`, caused by pair `pair`.
    pub fn from_change(seq: u64, timestamp: String, calibration: &Calibration, change: AlertChange, pair: &str) -> Alert {
        let reason = match change.state {
            AlertState::Raised => format!("drift: {}", describe(change.watch)),
            AlertState::Clear => {
                format!("no drift: no CUSUM crossed its threshold in the last {} pairs", calibration.detector.params().clear_after)
            }
        };
        Alert {
            seq,
            timestamp,
            state: change.state,
            reason,
            detector: DetectorName::Cusum,
            watch: change.watch,
            value: change.value,
            threshold: change.threshold,
            false_alarm_every: calibration.false_alarm_every,
            pair: pair.to_string(),
            generator: calibration.generator.clone(),
        }
    }
}

/// The verdict on one pair (`…/pair`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairMessage {
    /// When (RFC 3339, UTC).
    pub timestamp: String,
    /// The pair id.
    pub pair: String,
    /// The verdict.
    pub verdict: Verdict,
    /// The pair's alignment with the probe.
    pub alignment: Option<f64>,
    /// Share of its change outside the window's span.
    pub novelty: Option<f64>,
    /// Why it failed (verdict `failed` only).
    pub reason: Option<String>,
}

impl PairMessage {
    /// The verdict on a scored pair.
    pub fn scored(timestamp: String, pair: &str, report: &PairReport) -> PairMessage {
        PairMessage {
            timestamp,
            pair: pair.to_string(),
            verdict: pair_verdict(report.alignment).into(),
            alignment: report.alignment,
            novelty: Some(report.novelty),
            reason: None,
        }
    }

    /// A pair that failed, and why.
    pub fn failed(timestamp: String, pair: &str, reason: &str) -> PairMessage {
        PairMessage {
            timestamp,
            pair: pair.to_string(),
            verdict: Verdict::Failed,
            alignment: None,
            novelty: None,
            reason: Some(reason.to_string()),
        }
    }
}

/// Whether the monitor is taking pairs (`…/health`, retained).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// When it changed (RFC 3339, UTC).
    pub timestamp: String,
    /// `ok`, or `paused` while pairs cannot be recorded (a full disk).
    pub state: HealthState,
    /// Why it is paused.
    pub reason: Option<String>,
    /// Pairs waiting in the spool when it changed.
    pub waiting: usize,
}

/// See [`Health`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    /// Pairs are taken as they come.
    Ok,
    /// No pair is taken until its record can be written; the alert and the
    /// alarm line stay as they are and messages already recorded are sent.
    Paused,
}

/// `now` as RFC 3339 with milliseconds.
pub fn timestamp(now: SystemTime) -> String {
    humantime::format_rfc3339_millis(now).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;
    use serde_json::Value;

    /// The JSON objects of the ```json blocks in the section of docs/mqtt.md titled `section`.
    fn documented(section: &str) -> Vec<Value> {
        let page = include_str!("../../../docs/mqtt.md");
        let start = page.find(&format!("\n## {section}\n")).unwrap_or_else(|| panic!("docs/mqtt.md has no section {section}"));
        let body = &page[start + 1..];
        let body = &body[..body[3..].find("\n## ").map_or(body.len(), |end| end + 3)];
        body.split("```json\n")
            .skip(1)
            .filter_map(|block| block.split("```").next())
            .flat_map(|block| {
                serde_json::Deserializer::from_str(block).into_iter::<Value>().map(|v| v.expect("valid JSON")).collect::<Vec<_>>()
            })
            .collect()
    }

    /// Every example reads into `T` and writes back to the same JSON.
    fn round_trip<T: DeserializeOwned + Serialize>(section: &str) -> Vec<T> {
        let examples = documented(section);
        assert!(!examples.is_empty(), "docs/mqtt.md shows no {section} example");
        examples
            .into_iter()
            .map(|example| {
                let typed: T = serde_json::from_value(example.clone()).unwrap_or_else(|e| panic!("{section} example {example}: {e}"));
                assert_eq!(serde_json::to_value(&typed).unwrap(), example, "{section} example changed in a round trip");
                typed
            })
            .collect()
    }

    #[test]
    fn every_documented_message_round_trips_through_its_type() {
        let metrics: Vec<Metrics> = round_trip("metrics");
        assert_eq!(
            (metrics[0].score, metrics[0].drift.detector, metrics[0].alert),
            (ScoreName::Cone, DetectorName::Cusum, AlertState::Clear)
        );
        let pairs: Vec<PairMessage> = round_trip("pair");
        assert_eq!(pairs.iter().map(|p| p.verdict).collect::<Vec<_>>(), [Verdict::Useful, Verdict::Failed]);
        let health: Vec<Health> = round_trip("health");
        assert_eq!(health.iter().map(|h| h.state).collect::<Vec<_>>(), [HealthState::Paused, HealthState::Ok]);
        let alerts: Vec<Alert> = round_trip("alert");
        assert_eq!((alerts[0].state, alerts[0].watch), (AlertState::Raised, Watch::LowAlignment));
        assert_eq!(alerts[1].state, AlertState::Clear);
    }

    #[test]
    fn names_are_the_wire_spellings() {
        for (solver, score) in [(Solver::Nnls, "cone"), (Solver::Lstsq, "ridge"), (Solver::Ridge { lambda: 0.01 }, "ridge")] {
            assert_eq!(serde_json::to_value(ScoreName::of(solver)).unwrap(), score);
            assert_eq!(ScoreName::of(solver).to_string(), score);
        }
        assert_eq!(serde_json::to_value(DetectorName::Cusum).unwrap(), DetectorName::Cusum.name());
        for watch in Watch::ALL {
            assert_eq!(serde_json::to_value(watch).unwrap(), watch.name());
        }
        assert_eq!(serde_json::to_value(AlertState::Clear).unwrap(), "clear");
        assert!(serde_json::from_str::<AlertState>("\"cleared\"").is_err(), "one spelling only");
    }
}
