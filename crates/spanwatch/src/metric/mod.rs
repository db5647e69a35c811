//! The batch discriminative-span metric (METHOD.md), computed exactly on the
//! host: standardization, the reference probe, the thin SVD of the difference
//! vectors, the solvers, and what is built on them (bootstrap intervals,
//! per-sample utility), and the probe shift beside them.

#[cfg(feature = "study")]
pub mod baselines;
pub mod bootstrap;
pub mod downstream;
pub mod drift;
pub mod nnls;
pub mod pair_window;
pub mod per_sample;
pub mod probe;
pub mod score;
pub mod shift;
pub mod standardization;
pub mod svd;

pub use score::{score_span, SpanFit};
pub use standardization::Standardization;
