//! What the edge publishes: topics under `spanwatch/<site>/<device>/` and
//! their JSON payloads (the contract is in docs/mqtt.md, with examples).

use serde::{Deserialize, Serialize};
use std::time::SystemTime;

/// One message for the broker. Every message is sent with QoS 1, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Full topic.
    pub topic: String,
    /// Payload (JSON, or `online`/`offline` for the status).
    pub payload: String,
    /// Whether the broker keeps it as the topic's last value.
    pub retain: bool,
    /// Alerts are persisted on disk until the broker acknowledged them.
    pub kind: Kind,
}

/// What a message is, which decides how it is buffered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// `status`: never buffered behind data (sent first on every connection).
    Status,
    /// `metrics` and `pair`: dropped oldest-first when the buffer is full.
    Data,
    /// `alert`: never dropped, persisted until acknowledged.
    Alert {
        /// The alert's sequence number (increasing across restarts).
        seq: u64,
    },
    /// Home Assistant discovery config.
    Discovery,
}

/// The topics of one device.
#[derive(Clone, Debug)]
pub struct Topics {
    prefix: String,
}

impl Topics {
    /// Topics under `prefix` (`spanwatch/<site>/<device>`).
    pub fn new(prefix: &str) -> Topics {
        Topics { prefix: prefix.to_string() }
    }

    /// `…/status`: `online` (retained) or `offline` (retained; also the last will).
    pub fn status(&self) -> String {
        format!("{}/status", self.prefix)
    }

    /// `…/metrics`: one [`Metrics`] per pair.
    pub fn metrics(&self) -> String {
        format!("{}/metrics", self.prefix)
    }

    /// `…/alert`: [`Alert`] on every raise and clear (retained).
    pub fn alert(&self) -> String {
        format!("{}/alert", self.prefix)
    }

    /// `…/pair`: [`PairMessage`], the per-pair verdict.
    pub fn pair(&self) -> String {
        format!("{}/pair", self.prefix)
    }

    /// The prefix itself.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

/// The window's scores after one pair (`…/metrics`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// When the pair was scored (RFC 3339, UTC).
    pub timestamp: String,
    /// The pair id.
    pub pair: String,
    /// The span score of the bundle's solver: "cone" or "ridge".
    pub score: String,
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
    /// What the alert watches: "mean_alignment", "cone" or "ridge".
    pub alert_statistic: String,
    /// Its value over the window.
    pub alert_value: f64,
    /// Vectors in the window.
    pub window: usize,
    /// Calibration seeds still in the window.
    pub seeds: usize,
    /// Pairs scored since start.
    pub pairs: u32,
    /// Pairs that failed since start.
    pub failed: u32,
    /// "raised" or "clear".
    pub alert: String,
}

/// A raise or clear of the drift alert (`…/alert`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Increases by one per alert message, across restarts; a subscriber
    /// drops a repeat (QoS 1 delivers at least once).
    pub seq: u64,
    /// When it happened (RFC 3339, UTC).
    pub timestamp: String,
    /// "raised" or "cleared".
    pub state: String,
    /// Why, in words.
    pub reason: String,
    /// What the alert watches: "mean_alignment", "cone" or "ridge".
    pub statistic: String,
    /// The windowed value that crossed the threshold.
    pub value: f64,
    /// The threshold it crossed.
    pub threshold: f64,
    /// The pair whose arrival crossed it.
    pub pair: String,
    /// The calibrated generator.
    pub generator: String,
}

/// The verdict on one pair (`…/pair`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairMessage {
    /// When (RFC 3339, UTC).
    pub timestamp: String,
    /// The pair id.
    pub pair: String,
    /// "useful" (alignment > 0), "opposed" (alignment <= 0 or no change) or "failed".
    pub verdict: String,
    /// The pair's alignment with the probe.
    pub alignment: Option<f64>,
    /// Share of its change outside the window's span.
    pub novelty: Option<f64>,
    /// Why it failed (verdict "failed" only).
    pub reason: Option<String>,
}

/// `now` as RFC 3339 with milliseconds.
pub fn timestamp(now: SystemTime) -> String {
    humantime::format_rfc3339_millis(now).to_string()
}

/// A JSON message.
pub fn json<T: Serialize>(topic: String, body: &T, retain: bool, kind: Kind) -> Message {
    Message { topic, payload: serde_json::to_string(body).expect("plain data serializes"), retain, kind }
}
