//! Drawn defects on real surface tiles, and the synthetic generators built
//! from them. Used by the demo and the validation study.
//!
//! Every defect darkens a region with soft (anti-aliased) edges. The families
//! differ in shape: scratches are long thin bent lines, pits small clusters of
//! round dark spots, cracks jagged branching random walks.

use image::{GrayImage, Luma};
use rand::Rng;

/// A defect family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// Long, thin, slightly bent dark lines.
    Scratch,
    /// One to three small round dark spots.
    Pit,
    /// Jagged, branching thin dark lines.
    Crack,
}

/// Parameter ranges of a family's defects.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ranges {
    /// Size (length, or radius for pits) in pixels.
    pub size: (f32, f32),
    /// Line width in pixels (unused by pits).
    pub width: (f32, f32),
    /// Darkening at the centre, in grey levels.
    pub contrast: (f32, f32),
}

impl Ranges {
    /// The middle fifth of every range: the "narrow" generator's parameters.
    pub fn narrow(&self) -> Ranges {
        Ranges { size: middle_fifth(self.size), width: middle_fifth(self.width), contrast: middle_fifth(self.contrast) }
    }

    /// The same ranges at a tenth of the contrast.
    pub fn faint(&self) -> Ranges {
        Ranges { contrast: (self.contrast.0 / 10.0, self.contrast.1 / 10.0), ..*self }
    }
}

/// The middle fifth of a parameter range (lo, hi).
pub(crate) fn middle_fifth((lo, hi): (f32, f32)) -> (f32, f32) {
    (lo + 0.4 * (hi - lo), lo + 0.6 * (hi - lo))
}

pub(crate) fn sample(rng: &mut impl Rng, (lo, hi): (f32, f32)) -> f32 {
    if hi > lo {
        rng.random_range(lo..=hi)
    } else {
        lo
    }
}

impl Family {
    /// Every family.
    pub const ALL: [Family; 3] = [Family::Scratch, Family::Pit, Family::Crack];

    /// Lower-case name.
    pub fn name(&self) -> &'static str {
        match self {
            Family::Scratch => "scratch",
            Family::Pit => "pit",
            Family::Crack => "crack",
        }
    }

    /// The parameter ranges of the real defects of this family.
    pub fn real_ranges(&self) -> Ranges {
        match self {
            Family::Scratch => Ranges { size: (40.0, 100.0), width: (2.0, 4.0), contrast: (60.0, 110.0) },
            Family::Pit => Ranges { size: (4.0, 10.0), width: (0.0, 0.0), contrast: (60.0, 110.0) },
            Family::Crack => Ranges { size: (50.0, 110.0), width: (1.0, 2.5), contrast: (60.0, 110.0) },
        }
    }

    /// The family a "wrong family" generator draws instead of this one.
    pub fn other(&self) -> Family {
        match self {
            Family::Scratch => Family::Pit,
            Family::Pit => Family::Crack,
            Family::Crack => Family::Scratch,
        }
    }

    /// Draws one defect of this family with parameters from `ranges` at a random place.
    pub fn draw(&self, tile: &GrayImage, ranges: &Ranges, rng: &mut impl Rng) -> GrayImage {
        let (w, h) = (tile.width() as f32, tile.height() as f32);
        let contrast = sample(rng, ranges.contrast);
        let centre = (rng.random_range(0.3 * w..0.7 * w), rng.random_range(0.3 * h..0.7 * h));
        match self {
            Family::Scratch => {
                let (length, half_width) = (sample(rng, ranges.size), sample(rng, ranges.width) / 2.0);
                let (angle, bend) = (rng.random_range(0.0..std::f32::consts::PI), rng.random_range(-0.25..0.25f32));
                let points = walk(centre, angle, length, 3, |_| bend);
                darken(tile, contrast, |p| line_coverage(p, &[points.as_slice()], half_width))
            }
            Family::Pit => {
                let spots: Vec<((f32, f32), f32)> = (0..rng.random_range(1..=3))
                    .map(|_| {
                        let r = sample(rng, ranges.size);
                        ((centre.0 + rng.random_range(-12.0..12.0f32), centre.1 + rng.random_range(-12.0..12.0f32)), r)
                    })
                    .collect();
                darken(tile, contrast, |(x, y)| {
                    spots
                        .iter()
                        .map(|&((cx, cy), r)| (r + 0.5 - ((x - cx).powi(2) + (y - cy).powi(2)).sqrt()).clamp(0.0, 1.0))
                        .fold(0.0, f32::max)
                })
            }
            Family::Crack => {
                let (length, half_width) = (sample(rng, ranges.size), sample(rng, ranges.width) / 2.0);
                let angle = rng.random_range(0.0..std::f32::consts::PI);
                let turns: Vec<f32> = (0..12).map(|_| rng.random_range(-0.7..0.7f32)).collect();
                let trunk = walk(centre, angle, length, 12, |i| turns[i]);
                let fork = trunk[rng.random_range(3..9)];
                let branch_turns: Vec<f32> = (0..6).map(|_| rng.random_range(-0.7..0.7f32)).collect();
                let branch = walk(fork, angle + rng.random_range(0.5..1.2f32), length / 2.5, 6, |i| branch_turns[i]);
                darken(tile, contrast, |p| line_coverage(p, &[trunk.as_slice(), branch.as_slice()], half_width))
            }
        }
    }
}

/// A polyline of `steps` segments of total `length`, centred on `centre`,
/// each segment turned by `turn(i)` from the previous.
pub(crate) fn walk(centre: (f32, f32), angle: f32, length: f32, steps: usize, turn: impl Fn(usize) -> f32) -> Vec<(f32, f32)> {
    let step = length / steps as f32;
    let mut points = vec![(centre.0 - angle.cos() * length / 2.0, centre.1 - angle.sin() * length / 2.0)];
    let mut heading = angle;
    for i in 0..steps {
        heading += turn(i);
        let (x, y) = *points.last().expect("starts with a point");
        points.push((x + heading.cos() * step, y + heading.sin() * step));
    }
    points
}

pub(crate) fn line_coverage(p: (f32, f32), lines: &[&[(f32, f32)]], half_width: f32) -> f32 {
    let distance = lines.iter().flat_map(|line| line.windows(2).map(|s| segment_distance(p, s[0], s[1]))).fold(f32::INFINITY, f32::min);
    (half_width + 0.5 - distance).clamp(0.0, 1.0)
}

/// Subtracts `contrast * coverage(x, y)` from every pixel.
fn darken(tile: &GrayImage, contrast: f32, coverage: impl Fn((f32, f32)) -> f32) -> GrayImage {
    GrayImage::from_fn(tile.width(), tile.height(), |x, y| {
        let value = tile.get_pixel(x, y)[0] as f32 - contrast * coverage((x as f32 + 0.5, y as f32 + 0.5));
        Luma([value.round().clamp(0.0, 255.0) as u8])
    })
}

fn segment_distance(p: (f32, f32), a: (f32, f32), b: (f32, f32)) -> f32 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let t = (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / (dx * dx + dy * dy).max(f32::EPSILON)).clamp(0.0, 1.0);
    ((p.0 - a.0 - t * dx).powi(2) + (p.1 - a.1 - t * dy).powi(2)).sqrt()
}

fn map_pixels(tile: &GrayImage, mut f: impl FnMut(f32) -> f32) -> GrayImage {
    GrayImage::from_fn(tile.width(), tile.height(), |x, y| Luma([f(tile.get_pixel(x, y)[0] as f32).round().clamp(0.0, 255.0) as u8]))
}

/// A synthetic generator: how a real negative tile becomes a synthetic "defect".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Generator {
    /// The real family with the real parameter ranges.
    Faithful,
    /// The real family, the middle fifth of each range.
    Narrow,
    /// Another family's defect.
    WrongFamily,
    /// The real family at a tenth of the contrast.
    TooFaint,
    /// A global brightness and contrast change, no defect.
    Photometric,
    /// Gaussian pixel noise, no defect.
    Noise,
    /// The source unchanged.
    Copy,
    /// This percentage of faithful samples, the rest unchanged copies.
    Mix(u8),
}

impl Generator {
    /// The validation study's generators, from faithful to useless.
    pub const STUDY: [Generator; 10] = [
        Generator::Faithful,
        Generator::Narrow,
        Generator::WrongFamily,
        Generator::TooFaint,
        Generator::Photometric,
        Generator::Noise,
        Generator::Copy,
        Generator::Mix(75),
        Generator::Mix(50),
        Generator::Mix(25),
    ];

    /// Folder-safe name.
    pub fn name(&self) -> String {
        match self {
            Generator::Faithful => "faithful".into(),
            Generator::Narrow => "narrow".into(),
            Generator::WrongFamily => "wrong-family".into(),
            Generator::TooFaint => "too-faint".into(),
            Generator::Photometric => "photometric".into(),
            Generator::Noise => "noise".into(),
            Generator::Copy => "copy".into(),
            Generator::Mix(p) => format!("mix{p}"),
        }
    }

    /// Makes the `index`-th synthetic "defect" of `family` from a real
    /// negative tile. A mixture takes its faithful samples at the indices
    /// where `index * p % 100 < p`, spread evenly.
    pub fn apply(&self, family: Family, tile: &GrayImage, index: usize, rng: &mut impl Rng) -> GrayImage {
        match *self {
            Generator::Faithful => family.draw(tile, &family.real_ranges(), rng),
            Generator::Narrow => family.draw(tile, &family.real_ranges().narrow(), rng),
            Generator::WrongFamily => family.other().draw(tile, &family.other().real_ranges(), rng),
            Generator::TooFaint => family.draw(tile, &family.real_ranges().faint(), rng),
            Generator::Photometric => photometric(tile, rng),
            Generator::Noise => noise(tile, rng),
            Generator::Copy => tile.clone(),
            Generator::Mix(p) => {
                if (index * p as usize) % 100 < p as usize {
                    family.draw(tile, &family.real_ranges(), rng)
                } else {
                    tile.clone()
                }
            }
        }
    }
}

/// A global brightness and contrast change: gain in [0.75, 1.25], offset in [-30, 30] grey levels.
pub fn photometric(image: &GrayImage, rng: &mut impl Rng) -> GrayImage {
    let (gain, offset) = (rng.random_range(0.75..1.25f32), rng.random_range(-30.0..30.0f32));
    map_pixels(image, |v| v * gain + offset)
}

/// Gaussian pixel noise with a standard deviation in [8, 16] grey levels.
pub fn noise(image: &GrayImage, rng: &mut impl Rng) -> GrayImage {
    let sigma = rng.random_range(8.0..16.0f32);
    map_pixels(image, |v| v + sigma * standard_normal(rng))
}

/// A standard normal sample (Box-Muller).
fn standard_normal(rng: &mut impl Rng) -> f32 {
    let u1: f32 = rng.random_range(f32::EPSILON..1.0);
    let u2: f32 = rng.random_range(0.0..1.0);
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn changed(a: &GrayImage, b: &GrayImage) -> usize {
        a.pixels().zip(b.pixels()).filter(|(x, y)| x != y).count()
    }

    #[test]
    fn every_family_darkens_a_small_region_only() {
        let tile = GrayImage::from_pixel(128, 128, Luma([200]));
        let mut rng = StdRng::seed_from_u64(3);
        for family in Family::ALL {
            let drawn = family.draw(&tile, &family.real_ranges(), &mut rng);
            let n = changed(&tile, &drawn);
            assert!(n > 20 && n < 128 * 128 / 6, "{family:?}: {n} pixels changed");
            assert!(drawn.pixels().all(|p| p[0] <= 200));
            let faint = family.draw(&tile, &family.real_ranges().faint(), &mut rng);
            assert!(faint.pixels().all(|p| p[0] >= 189), "{family:?}: faint defects stay faint");
        }
    }

    #[test]
    fn generators_that_add_no_defect_change_what_they_should() {
        let tile = GrayImage::from_fn(64, 64, |x, y| Luma([(x + y) as u8 + 60]));
        let mut rng = StdRng::seed_from_u64(5);
        assert_eq!(Generator::Copy.apply(Family::Pit, &tile, 0, &mut rng), tile);
        assert!(changed(&tile, &Generator::Noise.apply(Family::Pit, &tile, 0, &mut rng)) > 64 * 64 / 2);
        // A 50% mixture alternates faithful and copy.
        let kinds: Vec<bool> = (0..4).map(|i| Generator::Mix(50).apply(Family::Scratch, &tile, i, &mut rng) != tile).collect();
        assert_eq!(kinds, [true, false, true, false], "a 50% mixture alternates faithful and copy, starting faithful");
        assert_eq!(Family::Scratch.real_ranges().narrow().contrast, (80.0, 90.0));
    }
}
