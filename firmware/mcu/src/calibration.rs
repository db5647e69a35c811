//! The compiled-in calibration and the stored stream of pairs (see build.rs):
//! a bundle written by `spanwatch calibrate`, read straight from flash by the
//! core's decoder, and each pair as little-endian f32: the embeddings of its
//! source and synthetic image (D values each), then the share of pixels
//! they differ in (the pixel extent, measured where the images are).

/// The calibration bundle's bytes, in flash.
pub static BUNDLE: &[u8] = include_bytes!(env!("SPANWATCH_MCU_BUNDLE"));

/// The stored pairs' embeddings, in flash.
static STREAM: &[u8] = include_bytes!(env!("SPANWATCH_MCU_STREAM"));

/// The stored stream of pairs of D-dimensional embeddings and their extents.
pub struct StoredStream<const D: usize>;

impl<const D: usize> StoredStream<D> {
    /// Bytes a stored pair takes.
    pub const PAIR_BYTES: usize = (2 * D + 1) * 4;

    /// Number of whole pairs stored.
    pub fn len(&self) -> usize {
        STREAM.len() / Self::PAIR_BYTES
    }

    /// Whether the stored bytes are whole pairs of D-dimensional embeddings and an extent.
    pub fn is_whole(&self) -> bool {
        STREAM.len().is_multiple_of(Self::PAIR_BYTES)
    }

    /// Copies pair `index`'s source and synthetic embeddings out of flash
    /// and returns its pixel extent.
    pub fn read(&self, index: usize, source: &mut [f32; D], synthetic: &mut [f32; D]) -> f32 {
        let pair = &STREAM[index * Self::PAIR_BYTES..(index + 1) * Self::PAIR_BYTES];
        let (a, rest) = pair.split_at(D * 4);
        let (b, extent) = rest.split_at(D * 4);
        for (out, bytes) in source.iter_mut().zip(a.chunks_exact(4)).chain(synthetic.iter_mut().zip(b.chunks_exact(4))) {
            *out = f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        f32::from_le_bytes([extent[0], extent[1], extent[2], extent[3]])
    }
}
