//! spanwatch-embed: turning image files into embedding vectors.
//!
//! One home for everything between a file on disk and an embedding, shared by
//! the host CLI and the edge monitor: where shared files are found
//! ([`install`]), model manifests ([`manifest`]), image
//! decoding with limits and preprocessing ([`preprocess`], with Pillow's
//! resize in [`resample`]), inference with
//! tract ([`model`]) with optional spatial pooling ([`pooling`]), the pixel
//! extent of a pair's change ([`extent`]), models made
//! on first use by their recipe ([`provision`]), an on-disk embedding cache
//! keyed by model and file content ([`cache`]), and the checks that keep the
//! folders they trust private ([`private`]).
#![warn(missing_docs)]
// `!(x > 0.0)` is how this crate turns NaN away with the values out of range.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub(crate) mod cache;
mod error;
pub mod extent;
pub mod install;
pub mod logtext;
pub mod manifest;
pub mod model;
pub(crate) mod pooling;
pub mod preprocess;
pub mod private;
pub mod provision;
pub(crate) mod resample;

pub use cache::EmbeddingCache;
pub use error::EmbedError;
pub use manifest::Manifest;
pub use model::{Embedder, EmbedderSet};
pub use pooling::Pooling;

/// The sha256 of some bytes.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}
