//! spanwatch-monitor: what the edge does with a pair once both its images
//! are embedded, without the embedding or the transport, so that the edge
//! daemon and the Python package's `Tracker` run the same code.
//!
//! [`calibration`] reads the bundle into what monitoring needs; [`scorer`]
//! scores each pair's difference through the core's span tracker and drift
//! detector (and can forget the last pair); [`payloads`] are the typed
//! messages the edge publishes for a pair and an alert (docs/mqtt.md).
#![warn(missing_docs)]

pub mod calibration;
pub mod payloads;
pub mod scorer;
