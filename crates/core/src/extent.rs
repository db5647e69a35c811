//! The pixel extent of a pair's change: the share of the image's pixels
//! whose gray level the generator moved by more than [`CHANGED_LEVEL`].
//!
//! A faithful defect changes a small region (the study's calibration pairs:
//! 0.9% of an ELPV cell, 1.6% of a drawn tile), pixel noise and photometric
//! changes nearly every pixel, an unchanged copy none. The embedding can
//! take noise on a texture for more texture; the pixels cannot
//! (docs/validation.md, "A candidate fifth statistic").

/// A pixel counts as changed when its gray level moved by more than this
/// (of 255): above the rounding of a re-encoded image, below a faint defect.
pub const CHANGED_LEVEL: u8 = 8;

/// The share of positions where the gray levels `source` and `synthetic`
/// (pixel-aligned, row-major, one byte a pixel) differ by more than
/// [`CHANGED_LEVEL`]; 0 for no pixels.
pub fn changed_share(source: &[u8], synthetic: &[u8]) -> f64 {
    let changed = source.iter().zip(synthetic).filter(|(a, b)| a.abs_diff(**b) > CHANGED_LEVEL).count();
    changed as f64 / source.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_counts_changes_above_the_level_only() {
        let a = [100u8, 100, 100, 100];
        assert_eq!(changed_share(&a, &[100, 108, 109, 0]), 0.5, "8 is not a change, 9 and 100 are");
        assert_eq!(changed_share(&a, &a), 0.0);
        assert_eq!(changed_share(&[], &[]), 0.0);
    }
}
