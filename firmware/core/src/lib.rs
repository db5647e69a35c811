//! spanwatch-core: the part of spanwatch that runs everywhere, including on a
//! microcontroller without an allocator.
//!
//! It holds what both the host calibration CLI and the edge monitor need, in
//! one place: the calibration bundle format ([`bundle`]), standardization of
//! embeddings ([`standardize`]), and scoring a probe vector against a span of
//! difference vectors ([`span`]). Everything here works on caller-provided
//! slices; nothing allocates. The `std` feature only adds bundle *encoding*
//! (the host writes bundles, the device only reads them).
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "std")]
extern crate std;

pub mod bundle;
pub mod span;
pub mod standardize;
mod vector;

pub use vector::{dot, norm};
