//! spanwatch, the host side: a calibration CLI that embeds image sets, trains
//! the reference probe, scores and ranks synthetic sets by their
//! discriminative span, and writes the calibration bundle for the edge.
//!
//! Layout: [`metric`] is the batch math, [`dataset`] the folder layout and
//! pairing, [`embedding`] runs the shared embedder over a dataset (or looks
//! up embeddings made elsewhere, in the [`precomputed`] format),
//! [`pipeline`] turns a dataset into standardized vectors and a probe,
//! [`ranking`] scores and ranks generators, [`curation`] keeps the samples
//! worth keeping, [`calibration`] writes the edge's bundle, [`stats`] holds
//! the small statistics the reports share, [`report_html`] writes the HTML
//! report and [`progress`] the binary's progress bars and log. `study` is
//! the validation study (built with the feature `study`, as are `elpv` and
//! `metric::baselines`; the synthetic defects it measures are the crate
//! spanwatch-synth's). The `spanwatch` binary's `cli` module is thin glue
//! over this library: it parses arguments and prints.
#![warn(missing_docs)]

pub mod calibration;
pub mod curation;
pub mod dataset;
#[cfg(feature = "study")]
pub mod elpv;
pub mod embedding;
pub mod metric;
pub mod pipeline;
pub mod precomputed;
pub mod progress;
pub mod ranking;
pub mod report_html;
pub mod stats;
#[cfg(feature = "study")]
pub mod study;
