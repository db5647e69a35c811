//! A candidate statistic for the drift detector, measured but not watched:
//! the pixel extent of a pair's change, the share of the image whose gray
//! level the generator moved by more than [`CHANGED_LEVEL`].
//!
//! The detector's three statistics come from the embedding, where pixel
//! noise on a grass tile or a global photometric change can look like the
//! texture itself (their effect on every embedding statistic was at most
//! 1.6 good-pair sd on grass, so no CUSUM on them catches noise within 5
//! pairs). In pixels they are unmistakable: a faithful defect changes a
//! small region, noise and photometric changes touch nearly every pixel, a
//! copy none. `spanwatch study --streams` reports each degraded generator's
//! effect on this statistic's normal score beside the watched three, and the
//! least delay any detector could reach with it (docs/validation.md).

use anyhow::{ensure, Context, Result};
use std::path::Path;

/// A pixel counts as changed when its gray level moved by more than this
/// (of 255): above the rounding of a re-encoded image, below a faint defect.
pub const CHANGED_LEVEL: u8 = 8;
/// The smallest extent counted: an unchanged copy's log extent is ln of this.
pub const MIN_EXTENT: f64 = 1e-6;

/// ln of the share of pixels whose gray level differs by more than
/// [`CHANGED_LEVEL`] between `synthetic` and its `source` (at least ln
/// [`MIN_EXTENT`]); the two must have the same size (the pair is pixel-aligned).
pub fn log_extent(source: &Path, synthetic: &Path) -> Result<f64> {
    let gray = |path: &Path| image::open(path).with_context(|| format!("cannot read {}", path.display())).map(|i| i.to_luma8());
    let (a, b) = (gray(source)?, gray(synthetic)?);
    ensure!(
        a.dimensions() == b.dimensions(),
        "{} is {}x{}, its source {} {}x{}: a pair must be pixel-aligned",
        synthetic.display(),
        b.width(),
        b.height(),
        source.display(),
        a.width(),
        a.height()
    );
    Ok(changed_share(a.as_raw(), b.as_raw()).max(MIN_EXTENT).ln())
}

/// The share of positions where `a` and `b` differ by more than [`CHANGED_LEVEL`].
fn changed_share(a: &[u8], b: &[u8]) -> f64 {
    let changed = a.iter().zip(b).filter(|(x, y)| x.abs_diff(**y) > CHANGED_LEVEL).count();
    changed as f64 / a.len().max(1) as f64
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

    #[test]
    fn a_copy_has_the_least_extent_and_unaligned_pairs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let save = |name: &str, image: &image::GrayImage| {
            let path = dir.path().join(name);
            image.save(&path).unwrap();
            path
        };
        let source = save("source.png", &image::GrayImage::from_pixel(10, 10, image::Luma([50])));
        let mut changed = image::GrayImage::from_pixel(10, 10, image::Luma([50]));
        (0..10).for_each(|x| changed.put_pixel(x, 0, image::Luma([200])));
        let synthetic = save("synthetic.png", &changed);
        assert!((log_extent(&source, &synthetic).unwrap() - 0.1f64.ln()).abs() < 1e-12);
        assert_eq!(log_extent(&source, &source).unwrap(), MIN_EXTENT.ln());
        let small = save("small.png", &image::GrayImage::new(5, 10));
        let error = log_extent(&source, &small).unwrap_err().to_string();
        assert!(error.contains("small.png is 5x10") && error.contains("pixel-aligned"), "{error}");
    }
}
