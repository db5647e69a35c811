//! spanwatch's calibration library, the host side under the `spanwatch` CLI:
//! it embeds image sets, trains the reference probe, scores and ranks
//! synthetic sets by their discriminative span, and makes the calibration
//! bundle for the edge.
//!
//! Layout: [`metric`] is the batch math, [`dataset`] the folder layout and
//! pairing, [`embedding`] runs the shared embedder over a dataset (or looks
//! up embeddings made elsewhere, in the [`precomputed`] format),
//! [`pipeline`] turns a dataset into standardized vectors and a probe,
//! [`ranking`] scores and ranks generators, [`curation`] keeps the samples
//! worth keeping, [`calibration`] makes the edge's bundle and [`bundle_summary`] reads one back, [`stats`] holds
//! the small statistics the reports share, [`report_html`] writes the HTML
//! report and [`progress`] the progress bars of the long calls (hidden when
//! the caller asks for quiet). The CLI (crate `spanwatch`, `crates/cli`)
//! parses arguments and prints; the validation study (`research/study`) is
//! research code over this library.
#![warn(missing_docs)]

pub mod bundle_summary;
pub mod calibration;
pub mod curation;
pub mod dataset;
pub mod embedding;
pub mod metric;
pub mod pipeline;
pub mod precomputed;
pub mod progress;
pub mod ranking;
pub mod report_html;
pub mod stats;
