//! What the edge publishes: topics under `spanwatch/<site>/<device>/` and
//! their JSON payloads (the contract is in docs/mqtt.md, with examples).

use serde::{Deserialize, Serialize};
pub use spanwatch_monitor::payloads::{
    timestamp, Alert, DetectorName, DriftReading, Health, HealthState, Metrics, PairMessage, ScoreName, Verdict,
};

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
    /// `health`: only the latest one waits in the outbox; not kept on disk.
    Health,
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

    /// `…/health`: [`Health`] (retained), whether pairs are being taken.
    pub fn health(&self) -> String {
        format!("{}/health", self.prefix)
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

/// A JSON message.
pub fn json<T: Serialize>(topic: String, body: &T, retain: bool, kind: Kind) -> Message {
    Message { topic, payload: serde_json::to_string(body).expect("plain data serializes"), retain, kind }
}
