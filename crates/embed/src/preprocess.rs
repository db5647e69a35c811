//! Image decoding with limits, and preprocessing into the model's input
//! tensor exactly as the manifest says, and as torchvision's
//! `Resize(short) + CenterCrop(crop)` does on PIL images (the reference
//! pipeline of the method's code and of most Python users): RGB (grayscale
//! promoted); the short side resized to `resize_short_side` and the long side
//! to `int(short * long / short_side)` (truncated) with Pillow's bilinear
//! convolution ([`crate::resample`]); a centred square crop whose offset is
//! `round(excess / 2)` (halves to even, as Python's round); then
//! (pixel * scale - mean) / std per channel, CHW order.

use crate::EmbedError;
use image::{DynamicImage, ImageReader, Limits, RgbImage};
use serde::Deserialize;
use std::io::Cursor;
use std::path::Path;

/// Preprocessing from decoded RGB pixels to the input tensor.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PreprocessSpec {
    /// The short side is resized to this many pixels (Pillow's bilinear,
    /// [`crate::resample`]).
    pub resize_short_side: u32,
    /// Then a centred square of this side is cropped.
    pub crop: u32,
    /// x = (pixel * scale - mean[c]) / std[c].
    pub scale: f32,
    /// Per-channel mean, RGB.
    pub mean: [f32; 3],
    /// Per-channel standard deviation, RGB.
    pub std: [f32; 3],
}

/// Largest width or height accepted, in pixels.
pub const MAX_SIDE: u32 = 16_384;
/// Largest image accepted, in pixels (24 megapixels, e.g. 6000 x 4000:
/// beyond any inspection camera's frame the model's 224-pixel input needs).
/// Checked from the file's header before anything is decoded, so a
/// decompression bomb (a 249 KB PNG of 16000 x 16000) costs nothing.
pub const MAX_PIXELS: u64 = 24_000_000;
/// Largest buffer the decoder may allocate, in bytes: 16-bit RGBA at the
/// pixel limit. Decoding an accepted image needs at most the decoded image,
/// its 8-bit RGB form and the resize's intermediate (see [`load_rgb`]).
pub const MAX_DECODED_BYTES: u64 = MAX_PIXELS * 8;
/// Largest image file read, in bytes: a little over the decoded size at the
/// limits (an encoded image is never much larger than its pixels), so that a
/// huge file is refused from its size before any of it is read.
pub const MAX_FILE_BYTES: u64 = MAX_DECODED_BYTES + MAX_DECODED_BYTES / 16;

/// Reads an image file whole, refusing, before reading, anything that is not
/// a regular file (a FIFO would block, a device never end) or is larger than
/// [`MAX_FILE_BYTES`]. The error names the file.
pub fn read_image_file(path: &Path) -> Result<Vec<u8>, EmbedError> {
    use std::io::Read;
    let (file, len) = crate::private::open_regular(path, MAX_FILE_BYTES, true).map_err(|error| match error.kind() {
        std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => {
            EmbedError::Image { path: path.into(), reason: format!("{error}; refused before reading") }
        }
        _ => EmbedError::Io { path: path.into(), error },
    })?;
    let mut bytes = Vec::with_capacity(len as usize);
    // A file that grows while it is read stops at the limit.
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(|error| EmbedError::Io { path: path.into(), error })?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(EmbedError::Image { path: path.into(), reason: format!("grew past {MAX_FILE_BYTES} bytes while it was read") });
    }
    Ok(bytes)
}

/// Largest long-side / short-side ratio accepted: beyond it the centre crop
/// would see a sliver of the image and the resize would be enormous.
pub const MAX_ASPECT_RATIO: u32 = 16;

/// Decodes an image file (PNG or JPEG) to 8-bit RGB, refusing empty,
/// corrupt, truncated or oversized files with an error that names the file.
/// The size is checked from the header before decoding (at most
/// [`MAX_PIXELS`]); the memory an accepted image needs is bounded by its
/// decoded form plus its RGB form: under 100 MB at the limit for 8-bit
/// images (measured in crates/embed/tests/decode_limits.rs).
pub fn load_rgb(path: &Path, bytes: &[u8]) -> Result<RgbImage, EmbedError> {
    Ok(load_image(path, bytes)?.into_rgb8())
}

/// Decodes an image file (PNG or JPEG) as it is (grey, colour, 16-bit),
/// with the limits and errors of [`load_rgb`].
pub fn load_image(path: &Path, bytes: &[u8]) -> Result<DynamicImage, EmbedError> {
    let bad = |reason: String| EmbedError::Image { path: path.into(), reason };
    if bytes.is_empty() {
        return Err(bad("file is empty (0 bytes)".into()));
    }
    let open = || ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| bad(format!("cannot read: {e}")));
    let mut reader = open()?;
    if reader.format().is_none() {
        return Err(bad("not a PNG or JPEG image (unrecognised content)".into()));
    }
    let (width, height) = open()?.into_dimensions().map_err(|e| bad(format!("cannot read the image header: {e}")))?;
    let pixels = width as u64 * height as u64;
    if pixels > MAX_PIXELS {
        return Err(bad(format!(
            "image is {width}x{height} ({:.1} megapixels); the limit is {} megapixels (checked before decoding)",
            pixels as f64 / 1e6,
            MAX_PIXELS / 1_000_000
        )));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    reader.limits(limits);
    let image = reader.decode().map_err(|e| bad(format!("cannot decode: {e}")))?;
    let (w, h) = (image.width(), image.height());
    if w == 0 || h == 0 {
        return Err(bad(format!("image has no pixels ({w}x{h})")));
    }
    if w.max(h) > MAX_ASPECT_RATIO * w.min(h) {
        return Err(bad(format!("aspect ratio {w}x{h} is beyond 1:{MAX_ASPECT_RATIO}; the model's square crop cannot take it")));
    }
    Ok(image)
}

/// The version of the preprocessing, folded into every embedding's identity
/// ([`crate::Manifest::embedding_identity`]): a cache entry, a calibration
/// bundle or a precomputed shard made by another version never matches.
/// Version 2: Pillow's resize and torchvision's size and crop arithmetic
/// (version 1 resized with the image crate's triangle filter, rounded the
/// long side and floored the crop offset).
pub const PREPROCESS_VERSION: u32 = 2;

/// The size torchvision's `Resize(target)` gives a `w` x `h` image: the short
/// side becomes `target`, the long side `int(target * long / short)`.
pub fn resized_size(w: u32, h: u32, target: u32) -> (u32, u32) {
    let long = |long: u32, short: u32| ((target as u64 * long as u64) / short as u64) as u32;
    if w <= h {
        (target, long(h, w))
    } else {
        (long(w, h), target)
    }
}

/// The offset torchvision's `CenterCrop` takes `crop` pixels at from a side
/// of `side`: `round((side - crop) / 2)`, a half rounded to even.
pub fn crop_offset(side: u32, crop: u32) -> u32 {
    let excess = side - crop;
    let half = excess / 2;
    if excess % 2 == 1 && half % 2 == 1 {
        half + 1
    } else {
        half
    }
}

/// Resizes and crops an RGB image and writes the normalized CHW tensor.
pub fn to_tensor(image: &RgbImage, spec: &PreprocessSpec) -> Vec<f32> {
    let (w, h) = image.dimensions();
    let (nw, nh) = resized_size(w, h, spec.resize_short_side);
    let resized;
    let source = if (nw, nh) == (w, h) {
        image
    } else {
        resized = crate::resample::resize_bilinear(image, nw, nh);
        &resized
    };
    let crop = spec.crop;
    let (x0, y0) = (crop_offset(source.width(), crop), crop_offset(source.height(), crop));
    let plane = (crop * crop) as usize;
    let mut tensor = vec![0f32; 3 * plane];
    for y in 0..crop {
        for x in 0..crop {
            let pixel = source.get_pixel(x0 + x, y0 + y);
            let offset = (y * crop + x) as usize;
            for c in 0..3 {
                tensor[c * plane + offset] = (pixel[c] as f32 * spec.scale - spec.mean[c]) / spec.std[c];
            }
        }
    }
    tensor
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma, Rgb};

    fn spec() -> PreprocessSpec {
        PreprocessSpec { resize_short_side: 8, crop: 4, scale: 1.0, mean: [127.0; 3], std: [128.0; 3] }
    }

    fn png(image: &GrayImage) -> Vec<u8> {
        let mut bytes = Vec::new();
        image.write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png).unwrap();
        bytes
    }

    #[test]
    fn crop_is_centred_and_normalized_in_chw() {
        let image = RgbImage::from_fn(8, 8, |x, y| Rgb([(x * 10) as u8, (y * 10) as u8, 255]));
        let t = to_tensor(&image, &spec());
        assert_eq!(t.len(), 3 * 16);
        // (0, 0) of the crop is pixel (2, 2).
        assert_eq!(t[0], (20.0 - 127.0) / 128.0);
        assert_eq!(t[16], (20.0 - 127.0) / 128.0);
        assert_eq!(t[32], 1.0);
        // (row 1, col 3) of the crop is pixel (x 5, y 3).
        assert_eq!(t[4 + 3], (50.0 - 127.0) / 128.0);
        assert_eq!(t[16 + 4 + 3], (30.0 - 127.0) / 128.0);
    }

    #[test]
    fn sizes_and_crop_offsets_are_torchvisions() {
        // int(256 * long / short) for the long side.
        assert_eq!(resized_size(512, 384, 256), (341, 256));
        assert_eq!(resized_size(331, 512, 256), (256, 395));
        assert_eq!(resized_size(200, 200, 256), (256, 256));
        // round((side - crop) / 2), halves to even as Python's round.
        assert_eq!(crop_offset(256, 224), 16);
        assert_eq!(crop_offset(395, 224), 86, "85.5 -> 86");
        assert_eq!(crop_offset(393, 224), 84, "84.5 -> 84");
        assert_eq!(crop_offset(341, 224), 58, "58.5 -> 58");
        assert_eq!(crop_offset(224, 224), 0);
    }

    #[test]
    fn grayscale_is_promoted_and_short_side_resized() {
        let gray = GrayImage::from_pixel(32, 16, Luma([200]));
        let path = Path::new("gray.png");
        let rgb = load_rgb(path, &png(&gray)).unwrap();
        assert_eq!(rgb.get_pixel(3, 3), &Rgb([200, 200, 200]));
        let t = to_tensor(&rgb, &spec());
        assert!(t.iter().all(|v| (v - (200.0 - 127.0) / 128.0).abs() < 1e-6));
    }

    #[test]
    fn bad_files_are_named_and_described() {
        let path = Path::new("defect_17.png");
        let empty = load_rgb(path, &[]).unwrap_err().to_string();
        assert!(empty.contains("defect_17.png") && empty.contains("empty"), "{empty}");
        let junk = load_rgb(path, b"this is not an image at all").unwrap_err().to_string();
        assert!(junk.contains("not a PNG or JPEG"), "{junk}");
        let bytes = png(&GrayImage::from_pixel(64, 64, Luma([9])));
        let truncated = load_rgb(path, &bytes[..bytes.len() / 2]).unwrap_err().to_string();
        assert!(truncated.contains("cannot decode"), "{truncated}");
        let sliver = load_rgb(path, &png(&GrayImage::new(400, 2))).unwrap_err().to_string();
        assert!(sliver.contains("aspect ratio"), "{sliver}");
    }

    #[test]
    fn a_forged_header_is_refused_before_decoding() {
        // A PNG header patched to declare 100000 x 100000 pixels (its
        // checksum no longer matches); crates/embed/tests/decode_limits.rs has a real bomb.
        let mut bytes = png(&GrayImage::new(1, 1));
        bytes[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bytes[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let err = load_rgb(Path::new("bomb.png"), &bytes).unwrap_err().to_string();
        assert!(err.contains("bomb.png") && err.contains("cannot read the image header"), "{err}");
    }

    // The property of the fuzz target fuzz/fuzz_targets/image_decode.rs: any
    // bytes, and real PNG and JPEG files with bytes changed or cut, decode to
    // an image within the limits or to an error naming the file.
    fn real_files() -> &'static [Vec<u8>; 2] {
        static FILES: std::sync::OnceLock<[Vec<u8>; 2]> = std::sync::OnceLock::new();
        FILES.get_or_init(small_png_and_jpeg)
    }

    /// The brick fixture shrunk to 48 px, as PNG and as JPEG.
    fn small_png_and_jpeg() -> [Vec<u8>; 2] {
        let png = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/images/brick_gray.png")).unwrap();
        let decoded = load_rgb(Path::new("brick_gray.png"), &png).unwrap();
        let small = image::imageops::thumbnail(&decoded, 48, 48);
        let mut jpeg = Vec::new();
        small.write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg).unwrap();
        let mut small_png = Vec::new();
        small.write_to(&mut std::io::Cursor::new(&mut small_png), image::ImageFormat::Png).unwrap();
        [small_png, jpeg]
    }

    fn within_limits_or_named(result: Result<RgbImage, EmbedError>) -> Result<(), proptest::test_runner::TestCaseError> {
        match result {
            Ok(image) => proptest::prop_assert!(image.width() as u64 * image.height() as u64 <= MAX_PIXELS && image.width() > 0),
            Err(e) => proptest::prop_assert!(e.to_string().contains("fuzzed.img"), "{e}"),
        }
        Ok(())
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_decode_within_the_limits_or_fail_naming_the_file(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            within_limits_or_named(load_rgb(Path::new("fuzzed.img"), &bytes))?;
        }

        #[test]
        fn real_images_with_bytes_changed_or_cut_decode_within_the_limits_or_fail(
            which in 0usize..2,
            edits in proptest::collection::vec((proptest::prelude::any::<proptest::sample::Index>(), proptest::prelude::any::<u8>()), 0..6),
            cut in proptest::prelude::any::<proptest::sample::Index>(),
        ) {
            let mut bytes = real_files()[which].clone();
            for (at, value) in &edits {
                let i = at.index(bytes.len());
                bytes[i] = *value;
            }
            within_limits_or_named(load_rgb(Path::new("fuzzed.img"), &bytes))?;
            within_limits_or_named(load_rgb(Path::new("fuzzed.img"), &bytes[..cut.index(bytes.len())]))?;
        }
    }
}
