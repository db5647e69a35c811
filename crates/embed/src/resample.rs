//! Pillow's bilinear resize of 8-bit images, reproduced exactly
//! (`Image.resize(size, Image.BILINEAR)`, Pillow's src/libImaging/Resample.c):
//! a separable convolution with the triangle filter widened by the
//! downscale factor, coefficients normalized in f64 then rounded to 22-bit
//! fixed point, a horizontal pass into an 8-bit intermediate over the rows the
//! vertical pass reads, then the vertical pass; each sum starts at half a unit
//! and is shifted down and clamped to 0..=255.
//!
//! Why not a crate: fast_image_resize follows Pillow-SIMD, whose 16-bit
//! coefficients differ from Pillow's by one grey level on about one pixel in
//! seven (a 512 -> 256 real image), which moves EfficientNet-Lite0's
//! embedding by up to 0.057; the image crate's triangle filter differs more.

use image::RgbImage;
use std::borrow::Cow;

/// Fixed-point precision of the coefficients, as Pillow's PRECISION_BITS.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// One output position's taps: the first input index and the weights.
struct Taps {
    first: usize,
    weights: Vec<i32>,
}

/// Pillow's precompute_coeffs for the bilinear filter (support 1), then its
/// normalize_coeffs_8bpc: the taps of every output position along an axis
/// of `input` pixels resized to `output`.
fn taps(input: usize, output: usize) -> Vec<Taps> {
    let scale = input as f64 / output as f64;
    let filter_scale = scale.max(1.0);
    let support = filter_scale;
    let inverse = 1.0 / filter_scale;
    (0..output)
        .map(|out| {
            let center = (out as f64 + 0.5) * scale;
            // Pillow truncates toward zero, then clamps.
            let first = ((center - support + 0.5) as i64).max(0) as usize;
            let end = ((center + support + 0.5) as i64).min(input as i64) as usize;
            let raw: Vec<f64> = (first..end).map(|x| triangle((x as f64 - center + 0.5) * inverse)).collect();
            let total: f64 = raw.iter().sum();
            let weights = raw
                .iter()
                .map(|w| {
                    let w = if total != 0.0 { w / total } else { *w };
                    let fixed = w * (1u32 << PRECISION_BITS) as f64;
                    (if w < 0.0 { fixed - 0.5 } else { fixed + 0.5 }) as i32
                })
                .collect();
            Taps { first, weights }
        })
        .collect()
}

fn triangle(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.0 - x
    } else {
        0.0
    }
}

/// A fixed-point sum (started at half a unit) back to 0..=255.
fn clip8(sum: i32) -> u8 {
    (sum >> PRECISION_BITS).clamp(0, 255) as u8
}

/// `image` resized to `width` x `height` exactly as Pillow's BILINEAR does.
pub fn resize_bilinear(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (in_w, in_h) = (image.width() as usize, image.height() as usize);
    let (out_w, out_h) = (width as usize, height as usize);
    let half = 1i32 << (PRECISION_BITS - 1);
    let columns = taps(in_w, out_w);
    let rows = taps(in_h, out_h);
    let source = image.as_raw();
    // Horizontal pass (when the width changes), over the rows the vertical pass reads.
    let (first_row, last_row) = match (rows.first(), rows.last()) {
        (Some(top), Some(bottom)) => (top.first, bottom.first + bottom.weights.len()),
        _ => (0, 0),
    };
    // The band is out_w wide: the source itself when the width does not change.
    let (band, band_first): (Cow<[u8]>, usize) = if out_w != in_w {
        let mut band = vec![0u8; (last_row - first_row) * out_w * 3];
        for (y, out_row) in band.chunks_exact_mut(out_w * 3).enumerate() {
            let in_row = &source[(first_row + y) * in_w * 3..(first_row + y + 1) * in_w * 3];
            for (x, tap) in columns.iter().enumerate() {
                let mut sums = [half; 3];
                for (i, weight) in tap.weights.iter().enumerate() {
                    let pixel = &in_row[(tap.first + i) * 3..(tap.first + i) * 3 + 3];
                    for c in 0..3 {
                        sums[c] += pixel[c] as i32 * weight;
                    }
                }
                for c in 0..3 {
                    out_row[x * 3 + c] = clip8(sums[c]);
                }
            }
        }
        (Cow::Owned(band), first_row)
    } else {
        (Cow::Borrowed(source.as_slice()), 0)
    };
    if out_h == in_h {
        // The band is then every row: the output itself.
        return RgbImage::from_raw(width, height, band.into_owned()).expect("the band has the output's size");
    }
    // Vertical pass.
    let mut out = vec![0u8; out_w * out_h * 3];
    for (y, tap) in rows.iter().enumerate() {
        let out_row = &mut out[y * out_w * 3..(y + 1) * out_w * 3];
        for (x, value) in out_row.iter_mut().enumerate() {
            let mut sum = half;
            for (i, weight) in tap.weights.iter().enumerate() {
                sum += band[(tap.first - band_first + i) * out_w * 3 + x] as i32 * weight;
            }
            *value = clip8(sum);
        }
    }
    RgbImage::from_raw(width, height, out).expect("the output buffer has the output's size")
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn a_flat_image_stays_flat_at_any_size() {
        let flat = RgbImage::from_pixel(37, 23, Rgb([200, 3, 255]));
        for (w, h) in [(256, 256), (10, 7), (37, 100), (80, 23)] {
            let out = resize_bilinear(&flat, w, h);
            assert_eq!(out.dimensions(), (w, h));
            assert!(out.pixels().all(|p| *p == Rgb([200, 3, 255])), "{w}x{h}");
        }
    }

    #[test]
    fn halving_averages_with_the_widened_triangle() {
        // 4 -> 2 wide: scale 2, support 2; output 0 is centred at 1.0 over
        // inputs 0..=2 with weights 0.75, 0.75, 0.25 (normalized by 1.75).
        let row = RgbImage::from_fn(4, 1, |x, _| Rgb([[0, 100, 200, 40][x as usize]; 3]));
        let out = resize_bilinear(&row, 2, 1);
        let want = ((0.75 * 0.0 + 0.75 * 100.0 + 0.25 * 200.0) / 1.75f64).round() as u8;
        assert_eq!(out.get_pixel(0, 0)[0], want);
        // Output 1 is centred at 3.0 over inputs 1..=3: 0.25, 0.75, 0.75.
        let want = ((0.25 * 100.0 + 0.75 * 200.0 + 0.75 * 40.0) / 1.75f64).round() as u8;
        assert_eq!(out.get_pixel(1, 0)[0], want);
    }
}
