//! The defect synthesis methods practitioners use to make training data for
//! anomaly and defect detectors, on grey images: CutPaste and CutPaste-scar
//! (Li et al. 2021), DRAEM-style Perlin-noise masks filled with a foreign
//! texture (Zavrtanik et al. 2021), NSA-style seamless (Poisson) blending of
//! patches from other normal images (Schlueter et al. 2022), and defect
//! transplant: a defect region of a real positive blended onto a normal
//! image. Recipes as in docs/SYNTHESIS.md of the project's brief; the
//! parameters are the papers', scaled from their 256 px images to the image.

use image::imageops::{self, FilterType};
use image::{GrayImage, Luma};
use rand::Rng;

/// What the methods that need more than the source image take from.
pub struct Donors {
    /// Foreign textures for DRAEM.
    pub textures: Vec<GrayImage>,
    /// Other normal images for NSA.
    pub normals: Vec<GrayImage>,
    /// Defect regions of real positives for the transplant.
    pub defect_patches: Vec<Patch>,
}

/// A rectangular region of an image, with where it was taken from.
#[derive(Clone, Debug)]
pub struct Patch {
    /// The pixels.
    pub image: GrayImage,
    /// Left column of the region in its image.
    pub x: u32,
    /// Top row of the region in its image.
    pub y: u32,
}

/// A uniformly placed top-left corner for a `w` x `h` region.
fn place(rng: &mut impl Rng, image: &GrayImage, w: u32, h: u32) -> (u32, u32) {
    (rng.random_range(0..=image.width() - w), rng.random_range(0..=image.height() - h))
}

/// CutPaste: a rectangle of 2 to 15% of the area, aspect ratio log-uniform in
/// [0.3, 3.3], cut at one place and pasted at another, brightness jittered by
/// up to 10%.
pub fn cut_paste(image: &GrayImage, rng: &mut impl Rng) -> GrayImage {
    let (iw, ih) = (image.width() as f32, image.height() as f32);
    let area = rng.random_range(0.02..0.15f32) * iw * ih;
    let aspect = rng.random_range(0.3f32.ln()..3.3f32.ln()).exp();
    let w = ((area * aspect).sqrt().round() as u32).clamp(2, image.width() - 1);
    let h = ((area / aspect).sqrt().round() as u32).clamp(2, image.height() - 1);
    let (sx, sy) = place(rng, image, w, h);
    let (tx, ty) = place(rng, image, w, h);
    let gain = rng.random_range(0.9..1.1f32);
    let mut out = image.clone();
    for y in 0..h {
        for x in 0..w {
            let v = image.get_pixel(sx + x, sy + y)[0] as f32 * gain;
            out.put_pixel(tx + x, ty + y, Luma([v.round().clamp(0.0, 255.0) as u8]));
        }
    }
    out
}

/// CutPaste-scar: a strip 2 to 16 px wide and 10 to 25 px long (at 256 px),
/// rotated by up to 45 degrees, cut at one place and pasted at another.
pub fn cut_paste_scar(image: &GrayImage, rng: &mut impl Rng) -> GrayImage {
    let scale = image.width().min(image.height()) as f32 / 256.0;
    let (half_w, half_l) = (rng.random_range(2.0..16.0f32) * scale / 2.0, rng.random_range(10.0..25.0f32) * scale / 2.0);
    let angle = rng.random_range(-45.0f32..45.0).to_radians();
    let margin = half_w.hypot(half_l).ceil() + 1.0;
    let (w, h) = (image.width() as f32, image.height() as f32);
    let source = (rng.random_range(margin..w - margin), rng.random_range(margin..h - margin));
    let target = (rng.random_range(margin..w - margin), rng.random_range(margin..h - margin));
    let (sin, cos) = angle.sin_cos();
    let mut out = image.clone();
    let (x0, x1) = ((target.0 - margin) as u32, (target.0 + margin) as u32);
    let (y0, y1) = ((target.1 - margin) as u32, (target.1 + margin) as u32);
    for y in y0..y1.min(image.height()) {
        for x in x0..x1.min(image.width()) {
            let (dx, dy) = (x as f32 + 0.5 - target.0, y as f32 + 0.5 - target.1);
            // Coordinates along and across the rotated strip.
            let (u, v) = (dx * cos + dy * sin, -dx * sin + dy * cos);
            if u.abs() <= half_w && v.abs() <= half_l {
                let (px, py) = ((source.0 + dx).clamp(0.0, w - 1.0) as u32, (source.1 + dy).clamp(0.0, h - 1.0) as u32);
                out.put_pixel(x, y, *image.get_pixel(px, py));
            }
        }
    }
    out
}

/// 2-D Perlin noise on a `w` x `h` grid with `cells` = (columns, rows) of
/// random unit gradients, scaled by sqrt(2) to about [-1, 1] as DRAEM's.
fn perlin(w: u32, h: u32, cells: (u32, u32), rng: &mut impl Rng) -> Vec<f32> {
    let gradients: Vec<(f32, f32)> = (0..(cells.0 + 1) * (cells.1 + 1))
        .map(|_| {
            let a = rng.random_range(0.0..std::f32::consts::TAU);
            (a.cos(), a.sin())
        })
        .collect();
    let fade = |t: f32| t * t * t * (t * (t * 6.0 - 15.0) + 10.0);
    let mut out = Vec::with_capacity((w * h) as usize);
    for y in 0..h {
        for x in 0..w {
            let gx = (x as f32 + 0.5) / w as f32 * cells.0 as f32;
            let gy = (y as f32 + 0.5) / h as f32 * cells.1 as f32;
            let (cx, cy) = (gx.floor() as u32, gy.floor() as u32);
            let (fx, fy) = (gx - cx as f32, gy - cy as f32);
            let corner = |i: u32, j: u32| {
                let g = gradients[((cy + j) * (cells.0 + 1) + cx + i) as usize];
                g.0 * (fx - i as f32) + g.1 * (fy - j as f32)
            };
            let (u, v) = (fade(fx), fade(fy));
            let top = corner(0, 0) + u * (corner(1, 0) - corner(0, 0));
            let bottom = corner(0, 1) + u * (corner(1, 1) - corner(0, 1));
            out.push(std::f32::consts::SQRT_2 * (top + v * (bottom - top)));
        }
    }
    out
}

/// DRAEM: Perlin noise with 2^[0, 6) cells per axis, thresholded at 0.5,
/// is the mask; inside it the image becomes (1 - beta) texture + beta image
/// with beta in [0, 0.8], the texture a random crop of a foreign texture.
/// An empty mask (the noise stayed under the threshold) is drawn again.
pub fn draem(image: &GrayImage, textures: &[GrayImage], rng: &mut impl Rng) -> GrayImage {
    let (w, h) = image.dimensions();
    let mask = loop {
        let cells = (1 << rng.random_range(0..6u32), 1 << rng.random_range(0..6u32));
        let noise = perlin(w, h, cells, rng);
        let mask: Vec<bool> = noise.iter().map(|&v| v > 0.5).collect();
        if mask.iter().filter(|&&m| m).count() * 200 >= (w * h) as usize {
            break mask;
        }
    };
    let texture = &textures[rng.random_range(0..textures.len())];
    let side = texture.width().min(texture.height()).min(w.max(h) * 2);
    let (cx, cy) = (rng.random_range(0..=texture.width() - side), rng.random_range(0..=texture.height() - side));
    let crop = imageops::resize(&imageops::crop_imm(texture, cx, cy, side, side).to_image(), w, h, FilterType::Triangle);
    let beta = rng.random_range(0.0..0.8f32);
    GrayImage::from_fn(w, h, |x, y| {
        let v = image.get_pixel(x, y)[0] as f32;
        if mask[(y * w + x) as usize] {
            Luma([((1.0 - beta) * crop.get_pixel(x, y)[0] as f32 + beta * v).round() as u8])
        } else {
            Luma([v as u8])
        }
    })
}

/// Pastes `patch` into `image` with its top-left corner at (tx, ty) by
/// Poisson (seamless) blending: inside the region the result keeps the
/// patch's Laplacian, on its border it equals the image (Perez et al. 2003),
/// solved by successive over-relaxation.
pub fn poisson_blend(image: &GrayImage, patch: &GrayImage, tx: u32, ty: u32) -> GrayImage {
    let (w, h) = (patch.width() as usize, patch.height() as usize);
    let target = |x: usize, y: usize| image.get_pixel(tx + x as u32, ty + y as u32)[0] as f32;
    let source = |x: usize, y: usize| patch.get_pixel(x as u32, y as u32)[0] as f32;
    // Start from the patch shifted to the image's mean level on the border.
    let border: Vec<(usize, usize)> =
        (0..w).flat_map(|x| [(x, 0), (x, h - 1)]).chain((1..h.saturating_sub(1)).flat_map(|y| [(0, y), (w - 1, y)])).collect();
    let shift = border.iter().map(|&(x, y)| target(x, y) - source(x, y)).sum::<f32>() / border.len() as f32;
    let mut f: Vec<f32> = (0..w * h).map(|i| source(i % w, i / w) + shift).collect();
    for &(x, y) in &border {
        f[y * w + x] = target(x, y);
    }
    let guidance: Vec<f32> = (0..w * h)
        .map(|i| {
            let (x, y) = (i % w, i / w);
            if x == 0 || y == 0 || x == w - 1 || y == h - 1 {
                0.0
            } else {
                4.0 * source(x, y) - source(x - 1, y) - source(x + 1, y) - source(x, y - 1) - source(x, y + 1)
            }
        })
        .collect();
    // The optimal over-relaxation for the Laplacian on this grid, and enough
    // sweeps for its slowest mode to decay (about n / 2 pi per e-fold).
    let n = w.max(h) as f32;
    let omega = 2.0 / (1.0 + (std::f32::consts::PI / n).sin());
    for _ in 0..(3 * w.max(h)).max(50) {
        for y in 1..h.saturating_sub(1) {
            for x in 1..w - 1 {
                let i = y * w + x;
                let gauss_seidel = (guidance[i] + f[i - 1] + f[i + 1] + f[i - w] + f[i + w]) / 4.0;
                f[i] += omega * (gauss_seidel - f[i]);
            }
        }
    }
    let mut out = image.clone();
    for y in 0..h {
        for x in 0..w {
            out.put_pixel(tx + x as u32, ty + y as u32, Luma([f[y * w + x].round().clamp(0.0, 255.0) as u8]));
        }
    }
    out
}

/// NSA: a patch of 10 to 40% of the side per axis from another normal image,
/// taken at one place and Poisson-blended in at another.
pub fn nsa(image: &GrayImage, normals: &[GrayImage], rng: &mut impl Rng) -> GrayImage {
    let donor = &normals[rng.random_range(0..normals.len())];
    let pw = (rng.random_range(0.1..0.4f32) * image.width() as f32) as u32;
    let ph = (rng.random_range(0.1..0.4f32) * image.height() as f32) as u32;
    let (sx, sy) = place(rng, donor, pw, ph);
    let (tx, ty) = place(rng, image, pw, ph);
    poisson_blend(image, &imageops::crop_imm(donor, sx, sy, pw, ph).to_image(), tx, ty)
}

/// Defect transplant: one of the real positives' defect regions, blended
/// (Poisson) onto the image at the place it was cut from (the cells are
/// aligned, so busbars meet busbars).
pub fn transplant(image: &GrayImage, patches: &[Patch], rng: &mut impl Rng) -> GrayImage {
    let patch = &patches[rng.random_range(0..patches.len())];
    poisson_blend(image, &patch.image, patch.x, patch.y)
}

/// Pixels at the border that [`defect_region`] does not search.
const MARGIN: u32 = 12;

/// The `side` x `side` region of `positive` that is darkest against the
/// mean normal image `reference` (both scaled to the same median level):
/// where a real defect is.
pub fn defect_region(positive: &GrayImage, reference: &[f32], side: u32) -> Patch {
    let (w, h) = positive.dimensions();
    let median = |values: &mut Vec<f32>| {
        values.sort_by(f32::total_cmp);
        values[values.len() / 2].max(1.0)
    };
    let mut own: Vec<f32> = positive.pixels().map(|p| p[0] as f32).collect();
    let own_median = median(&mut own.clone());
    let reference_median = median(&mut reference.to_vec());
    own.iter_mut().for_each(|v| *v /= own_median);
    // Darkening against the reference, summed over windows with an integral image.
    let darkening: Vec<f32> = own.iter().zip(reference).map(|(v, r)| (r / reference_median - v).max(0.0)).collect();
    let stride = (w + 1) as usize;
    let mut integral = vec![0.0f64; stride * (h + 1) as usize];
    for y in 0..h as usize {
        for x in 0..w as usize {
            integral[(y + 1) * stride + x + 1] =
                darkening[y * w as usize + x] as f64 + integral[y * stride + x + 1] + integral[(y + 1) * stride + x]
                    - integral[y * stride + x];
        }
    }
    let window = |x: usize, y: usize| {
        let s = side as usize;
        integral[(y + s) * stride + x + s] - integral[y * stride + x + s] - integral[(y + s) * stride + x] + integral[y * stride + x]
    };
    // Windows keep off the outermost pixels, where the cells' cut corners and
    // edges differ from one cell to the next.
    let (step, margin) = (4, (MARGIN as usize).min(((w.min(h) - side) / 2) as usize));
    let (mut best, mut at) = (f64::NEG_INFINITY, (margin as u32, margin as u32));
    for y in (margin..=(h - side) as usize - margin).step_by(step) {
        for x in (margin..=(w - side) as usize - margin).step_by(step) {
            if window(x, y) > best {
                (best, at) = (window(x, y), (x as u32, y as u32));
            }
        }
    }
    Patch { image: imageops::crop_imm(positive, at.0, at.1, side, side).to_image(), x: at.0, y: at.1 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn gradient() -> GrayImage {
        GrayImage::from_fn(120, 100, |x, y| Luma([(x + y) as u8]))
    }

    #[test]
    fn poisson_blending_keeps_the_border_and_the_patch_gradients() {
        let image = GrayImage::from_pixel(60, 60, Luma([100]));
        // A patch at another level with a dark line in its middle.
        let patch = GrayImage::from_fn(20, 20, |x, _| Luma([if x == 10 { 150 } else { 200 }]));
        let out = poisson_blend(&image, &patch, 20, 20);
        // The border of the region is the image's; far from it nothing changed.
        assert_eq!(out.get_pixel(20, 25)[0], 100);
        assert_eq!(out.get_pixel(5, 5)[0], 100);
        // The line stays about 50 levels darker than its neighbours.
        let step = out.get_pixel(29, 30)[0] as i32 - out.get_pixel(30, 30)[0] as i32;
        assert!((40..=55).contains(&step), "gradient kept: {step}");
        // The flat part sits at the image's level, not the patch's.
        assert!((out.get_pixel(24, 30)[0] as i32 - 100).abs() <= 12, "{}", out.get_pixel(24, 30)[0]);
    }

    #[test]
    fn poisson_blending_of_a_large_flat_patch_converges_to_the_image() {
        let image = GrayImage::from_pixel(300, 300, Luma([100]));
        let patch = GrayImage::from_pixel(120, 110, Luma([220]));
        let out = poisson_blend(&image, &patch, 90, 100);
        let worst = out.pixels().map(|p| (p[0] as i32 - 100).abs()).max().unwrap();
        assert!(worst <= 1, "a flat patch leaves no trace, off by {worst}");
    }

    #[test]
    fn cut_paste_methods_change_a_bounded_region() {
        let image = gradient();
        let mut rng = StdRng::seed_from_u64(2);
        for _ in 0..20 {
            let changed = |out: GrayImage| out.pixels().zip(image.pixels()).filter(|(a, b)| a != b).count();
            let n = changed(cut_paste(&image, &mut rng));
            assert!(n <= 120 * 100 * 15 / 100 + 10, "cut-paste changed {n}");
            let n = changed(cut_paste_scar(&image, &mut rng));
            assert!(n <= 30 * 30, "scar changed {n}");
        }
    }

    #[test]
    fn draem_fills_a_non_empty_mask_with_the_texture() {
        let image = GrayImage::from_pixel(64, 64, Luma([200]));
        let texture = GrayImage::from_pixel(256, 256, Luma([0]));
        let mut rng = StdRng::seed_from_u64(4);
        for _ in 0..10 {
            let out = draem(&image, std::slice::from_ref(&texture), &mut rng);
            let darker = out.pixels().filter(|p| p[0] < 200).count();
            assert!(darker * 200 >= 64 * 64, "mask of {darker} pixels");
            // beta < 0.8: at least a fifth of a masked pixel is the texture's.
            assert!(out.pixels().all(|p| p[0] == 200 || p[0] <= 160), "the texture shows in the mask");
        }
    }

    #[test]
    fn the_defect_region_is_found_where_the_positive_is_dark() {
        let reference: Vec<f32> = vec![150.0; 100 * 100];
        let mut positive = GrayImage::from_pixel(100, 100, Luma([150]));
        for y in 60..80 {
            for x in 20..40 {
                positive.put_pixel(x, y, Luma([40]));
            }
        }
        let patch = defect_region(&positive, &reference, 24);
        assert!(patch.x <= 20 && patch.x + 24 >= 40 && patch.y <= 60 && patch.y + 24 >= 80, "{} {}", patch.x, patch.y);
    }
}
