//! spanwatch-core: the part of spanwatch that runs everywhere, including on a
//! microcontroller without an allocator.
//!
//! It holds what both the host calibration CLI and the edge monitor need, in
//! one place: the calibration bundle format ([`bundle`]), standardization of
//! embeddings ([`standardize`]), scoring a probe vector against a span of
//! difference vectors ([`span`]), the window of recent difference vectors
//! that the edge and the host's calibration share ([`window`], on private
//! fixed-size linear algebra), the streaming tracker over it ([`tracker`]), the drift detector
//! ([`detector`]: CUSUMs on each pair's normalized statistics), the alert state ([`alert`]) and the alarm output over embedded-hal ([`alarm`]). Nothing
//! here allocates; sizes are fixed at compile time or by the caller's slices. The `std` feature only adds bundle *encoding*
//! (the host writes bundles, the device only reads them).
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// `!(x > 0.0)` is how this crate turns NaN away with the values out of range.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

#[cfg(feature = "std")]
extern crate std;

pub mod alarm;
pub mod alert;
pub mod bundle;
pub mod detector;
pub mod extent;
mod gram;
pub mod span;
pub mod standardize;
pub mod tracker;
mod vector;
pub mod window;

pub use vector::{dot, norm};
