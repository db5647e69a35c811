//! Drawn defects and the demo's synthetic generators.

use image::{GrayImage, Luma};
use rand::Rng;

/// A dark scratch: a slightly bent line with soft edges.
#[derive(Clone, Copy, Debug)]
pub struct Scratch {
    /// Length range in pixels.
    pub length: (f32, f32),
    /// Width range in pixels.
    pub width: (f32, f32),
    /// Darkening range (grey levels subtracted at the centre of the line).
    pub darkness: (f32, f32),
}

impl Scratch {
    /// The scratches on the real positives.
    pub const REAL: Scratch = Scratch { length: (40.0, 100.0), width: (2.0, 4.0), darkness: (60.0, 110.0) };
    /// The same geometry, at a contrast too low to matter.
    pub const FAINT: Scratch = Scratch { length: (40.0, 100.0), width: (2.0, 4.0), darkness: (4.0, 8.0) };

    /// Draws one scratch at a random place, angle and bend.
    pub fn draw(&self, tile: &GrayImage, rng: &mut impl Rng) -> GrayImage {
        let (w, h) = (tile.width() as f32, tile.height() as f32);
        let length = rng.random_range(self.length.0..=self.length.1);
        let half_width = rng.random_range(self.width.0..=self.width.1) / 2.0;
        let darkness = rng.random_range(self.darkness.0..=self.darkness.1);
        let angle = rng.random_range(0.0..std::f32::consts::PI);
        let bend = rng.random_range(-0.25..0.25f32);
        let (cx, cy) = (rng.random_range(0.3 * w..0.7 * w), rng.random_range(0.3 * h..0.7 * h));
        // Three segments, each turned by `bend` from the last.
        let mut points = vec![(cx - angle.cos() * length / 2.0, cy - angle.sin() * length / 2.0)];
        for i in 0..3 {
            let a = angle + bend * i as f32;
            let (x, y) = *points.last().expect("starts with a point");
            points.push((x + a.cos() * length / 3.0, y + a.sin() * length / 3.0));
        }
        darken(tile, darkness, |x, y| {
            let distance = points.windows(2).map(|s| segment_distance((x, y), s[0], s[1])).fold(f32::INFINITY, f32::min);
            (half_width + 0.5 - distance).clamp(0.0, 1.0)
        })
    }
}

/// A dark roundish spot: the wrong defect family for a scratch inspection.
pub fn spot(tile: &GrayImage, rng: &mut impl Rng) -> GrayImage {
    let (w, h) = (tile.width() as f32, tile.height() as f32);
    let (rx, ry) = (rng.random_range(5.0..12.0f32), rng.random_range(5.0..12.0f32));
    let (cx, cy) = (rng.random_range(0.25 * w..0.75 * w), rng.random_range(0.25 * h..0.75 * h));
    let darkness = rng.random_range(60.0..110.0f32);
    darken(tile, darkness, |x, y| {
        let r = (((x - cx) / rx).powi(2) + ((y - cy) / ry).powi(2)).sqrt();
        ((1.0 - r) * rx.min(ry) + 0.5).clamp(0.0, 1.0)
    })
}

/// Subtracts `darkness * coverage(x, y)` from every pixel.
fn darken(tile: &GrayImage, darkness: f32, coverage: impl Fn(f32, f32) -> f32) -> GrayImage {
    GrayImage::from_fn(tile.width(), tile.height(), |x, y| {
        let value = tile.get_pixel(x, y)[0] as f32 - darkness * coverage(x as f32 + 0.5, y as f32 + 0.5);
        Luma([value.round().clamp(0.0, 255.0) as u8])
    })
}

fn segment_distance(p: (f32, f32), a: (f32, f32), b: (f32, f32)) -> f32 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let t = (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / (dx * dx + dy * dy).max(f32::EPSILON)).clamp(0.0, 1.0);
    ((p.0 - a.0 - t * dx).powi(2) + (p.1 - a.1 - t * dy).powi(2)).sqrt()
}

/// The demo's synthetic generators, from faithful to useless.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Generator {
    /// Scratches with the real positives' parameter ranges.
    Faithful,
    /// Spots instead of scratches.
    WrongType,
    /// Scratches at a tenth of the contrast.
    TooFaint,
    /// A global brightness and contrast change, no defect.
    Photometric,
    /// The source unchanged.
    Copy,
}

impl Generator {
    /// Every generator, in order of intended fidelity.
    pub const ALL: [Generator; 5] = [Generator::Faithful, Generator::WrongType, Generator::TooFaint, Generator::Photometric, Generator::Copy];

    /// Folder name.
    pub fn name(&self) -> &'static str {
        match self {
            Generator::Faithful => "faithful",
            Generator::WrongType => "wrong-type",
            Generator::TooFaint => "too-faint",
            Generator::Photometric => "photometric",
            Generator::Copy => "copy",
        }
    }

    /// Makes a synthetic "defect" from a real negative tile.
    pub fn apply(&self, tile: &GrayImage, rng: &mut impl Rng) -> GrayImage {
        match self {
            Generator::Faithful => Scratch::REAL.draw(tile, rng),
            Generator::WrongType => spot(tile, rng),
            Generator::TooFaint => Scratch::FAINT.draw(tile, rng),
            Generator::Photometric => {
                let gain = rng.random_range(0.75..1.25f32);
                let offset = rng.random_range(-30.0..30.0f32);
                GrayImage::from_fn(tile.width(), tile.height(), |x, y| {
                    Luma([(tile.get_pixel(x, y)[0] as f32 * gain + offset).round().clamp(0.0, 255.0) as u8])
                })
            }
            Generator::Copy => tile.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn scratches_darken_a_thin_region_only() {
        let tile = GrayImage::from_pixel(128, 128, Luma([200]));
        let mut rng = StdRng::seed_from_u64(3);
        let drawn = Scratch::REAL.draw(&tile, &mut rng);
        let changed = drawn.pixels().filter(|p| p[0] < 200).count();
        assert!(changed > 40 && changed < 128 * 128 / 8, "{changed} pixels changed");
        assert!(drawn.pixels().all(|p| p[0] <= 200));
        let faint = Scratch::FAINT.draw(&tile, &mut rng);
        assert!(faint.pixels().all(|p| p[0] >= 190));
        assert_eq!(Generator::Copy.apply(&tile, &mut rng), tile);
    }
}
