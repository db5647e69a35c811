//! The batch discriminative-span metric (METHOD.md), computed exactly on the
//! host: standardization, the reference probe, the thin SVD of the difference
//! vectors, the solvers, and what is built on them (bootstrap intervals,
//! per-sample utility), and the probe shift beside them.

pub(crate) mod bootstrap;
pub mod downstream;
pub mod drift;
pub(crate) mod nnls;
pub(crate) mod per_sample;
pub mod probe;
pub(crate) mod score;
pub mod shift;
pub(crate) mod standardization;
pub(crate) mod svd;

pub use score::{score_span, SpanFit};
pub use standardization::Standardization;
