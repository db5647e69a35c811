//! spanwatch-demo: the top of the crate graph, where the host CLI's library
//! and the edge monitor meet. It holds the end-to-end demo (`spanwatch-demo`),
//! the tests that run the edge against a real MQTT broker with bundles the
//! host made, and the edge benchmark; neither `spanwatch` nor
//! `spanwatch-edge` depends on it or on each other.
//!
//! The demo dataset is built by `spanwatch_synth::demo_data`; [`stream`]
//! makes the live stream of new pairs and the spool they are dropped into, [`broker`] an in-process
//! MQTT broker (rumqttd), and [`live`] runs the edge monitor in-process
//! against it and listens to what it publishes.
#![warn(missing_docs)]

pub mod broker;
pub mod live;
pub mod stream;
