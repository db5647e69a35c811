//! The pixel extent of a pair's change, from its two image files: the share
//! of pixels whose gray level the generator moved
//! ([`spanwatch_core::extent::changed_share`]), which the drift detector
//! watches beside the embedding's statistics.

use crate::preprocess::{load_image, read_image_file};
use crate::EmbedError;
use std::path::Path;

/// The share of pixels that differ (by more than
/// [`spanwatch_core::extent::CHANGED_LEVEL`] gray levels) between a
/// `synthetic` image and its `source`, read and decoded with the limits of
/// [`crate::preprocess`]. The two must have the same size: a pair's images
/// are pixel-aligned.
pub fn change_extent(source: &Path, synthetic: &Path) -> Result<f64, EmbedError> {
    let gray = |path: &Path| -> Result<image::GrayImage, EmbedError> { Ok(load_image(path, &read_image_file(path)?)?.into_luma8()) };
    let (before, after) = (gray(source)?, gray(synthetic)?);
    if before.dimensions() != after.dimensions() {
        return Err(EmbedError::Image {
            path: synthetic.into(),
            reason: format!(
                "is {}x{}, its source {} {}x{}: a pair's images must be the same size (pixel-aligned) to measure its change",
                after.width(),
                after.height(),
                source.display(),
                before.width(),
                before.height()
            ),
        });
    }
    Ok(spanwatch_core::extent::changed_share(before.as_raw(), after.as_raw()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_changes_nothing_and_unaligned_pairs_are_refused() {
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
        assert!((change_extent(&source, &synthetic).unwrap() - 0.1).abs() < 1e-12);
        assert_eq!(change_extent(&source, &source).unwrap(), 0.0);
        let small = save("small.png", &image::GrayImage::new(5, 10));
        let error = change_extent(&source, &small).unwrap_err().to_string();
        assert!(error.contains("small.png: is 5x10") && error.contains("pixel-aligned"), "{error}");
        let missing = dir.path().join("missing.png");
        assert!(change_extent(&missing, &synthetic).unwrap_err().to_string().contains("missing.png"));
    }
}
