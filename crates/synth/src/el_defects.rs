//! Rendered defects of electroluminescence (EL) images of solar cells, and
//! the study's generators on them.
//!
//! In an EL image a defect is where the cell emits less light: a crack is a
//! thin dark line, often long and branching; a crack that cuts off part of
//! the cell leaves that part dark (an inactive region); broken fingers are
//! short dark streaks along the fingers, which run across the busbars. Every
//! renderer darkens multiplicatively (the emission drops by a share), with
//! soft edges. [`ElGenerator`] grades them in fidelity, as the drawn study's
//! generators do, and adds the synthesis methods practitioners use
//! ([`crate::synthesis`]).

use crate::defects::{line_coverage, middle_fifth, noise, photometric, sample, walk, Family};
use crate::synthesis::{self, Donors};
use image::{GrayImage, Luma};
use rand::Rng;

/// A kind of EL defect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElDefect {
    /// A thin dark line with a branch.
    Crack,
    /// A dark region cut off by a straight-ish crack across a corner or side.
    Inactive,
    /// A cluster of short dark streaks along the fingers.
    BrokenFingers,
}

/// Parameter ranges of rendered EL defects.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ElRanges {
    /// Crack length as a share of the cell side.
    pub length: (f32, f32),
    /// Crack width in pixels.
    pub width: (f32, f32),
    /// Share of the emission lost on a crack or streak.
    pub loss: (f32, f32),
    /// Share of the emission lost in an inactive region.
    pub region_loss: (f32, f32),
}

impl ElRanges {
    /// The ranges of the defects seen in the real cells.
    pub const REAL: ElRanges = ElRanges { length: (0.3, 1.0), width: (1.0, 3.0), loss: (0.3, 0.7), region_loss: (0.4, 0.85) };

    /// The middle fifth of every range.
    pub fn narrow(&self) -> ElRanges {
        ElRanges {
            length: middle_fifth(self.length),
            width: middle_fifth(self.width),
            loss: middle_fifth(self.loss),
            region_loss: middle_fifth(self.region_loss),
        }
    }

    /// A tenth of the contrast.
    pub fn faint(&self) -> ElRanges {
        ElRanges {
            loss: (self.loss.0 / 10.0, self.loss.1 / 10.0),
            region_loss: (self.region_loss.0 / 10.0, self.region_loss.1 / 10.0),
            ..*self
        }
    }
}

/// Multiplies every pixel by `1 - loss(x, y)`.
fn dim(cell: &GrayImage, loss: impl Fn((f32, f32)) -> f32) -> GrayImage {
    GrayImage::from_fn(cell.width(), cell.height(), |x, y| {
        let factor = 1.0 - loss((x as f32 + 0.5, y as f32 + 0.5)).clamp(0.0, 1.0);
        Luma([(cell.get_pixel(x, y)[0] as f32 * factor).round().clamp(0.0, 255.0) as u8])
    })
}

impl ElDefect {
    /// Renders one defect of this kind with parameters from `ranges`.
    pub fn render(&self, cell: &GrayImage, ranges: &ElRanges, rng: &mut impl Rng) -> GrayImage {
        let side = cell.width().min(cell.height()) as f32;
        let (w, h) = (cell.width() as f32, cell.height() as f32);
        let loss = sample(rng, ranges.loss);
        match self {
            ElDefect::Crack => {
                let length = sample(rng, ranges.length) * side;
                let half_width = sample(rng, ranges.width) / 2.0;
                let centre = (rng.random_range(0.25 * w..0.75 * w), rng.random_range(0.25 * h..0.75 * h));
                let angle = rng.random_range(0.0..std::f32::consts::PI);
                let turns: Vec<f32> = (0..10).map(|_| rng.random_range(-0.25..0.25f32)).collect();
                let trunk = walk(centre, angle, length, 10, |i| turns[i]);
                let fork = trunk[rng.random_range(2..8)];
                let branch_turns: Vec<f32> = (0..5).map(|_| rng.random_range(-0.3..0.3f32)).collect();
                let branch = walk(fork, angle + rng.random_range(0.4..1.1f32), length / 3.0, 5, |i| branch_turns[i]);
                dim(cell, |p| loss * line_coverage(p, &[trunk.as_slice(), branch.as_slice()], half_width))
            }
            ElDefect::Inactive => {
                // A line across a corner: the corner's side of it goes dark.
                let corner = (if rng.random_bool(0.5) { 0.0 } else { w }, if rng.random_bool(0.5) { 0.0 } else { h });
                let (a, b) = (rng.random_range(0.25..0.7f32) * w, rng.random_range(0.25..0.7f32) * h);
                let start = (if corner.0 == 0.0 { a } else { w - a }, corner.1);
                let end = (corner.0, if corner.1 == 0.0 { b } else { h - b });
                let turns: Vec<f32> = (0..8).map(|_| rng.random_range(-0.15..0.15f32)).collect();
                let (dx, dy) = (end.0 - start.0, end.1 - start.1);
                let length = (dx * dx + dy * dy).sqrt();
                let mid = ((start.0 + end.0) / 2.0, (start.1 + end.1) / 2.0);
                let crack = walk(mid, dy.atan2(dx), length * 1.15, 8, |i| turns[i]);
                let region_loss = sample(rng, ranges.region_loss);
                let half_width = sample(rng, ranges.width) / 2.0;
                // Signed side of the straight chord; the corner's side is inside.
                let side_of = |p: (f32, f32)| (dx * (p.1 - start.1) - dy * (p.0 - start.0)) / length;
                let inside = side_of(corner).signum();
                dim(cell, |p| {
                    let region = (inside * side_of(p) / 3.0 + 0.5).clamp(0.0, 1.0) * region_loss;
                    region.max(loss * line_coverage(p, &[crack.as_slice()], half_width))
                })
            }
            ElDefect::BrokenFingers => {
                let centre = (rng.random_range(0.15 * w..0.85 * w), rng.random_range(0.15 * h..0.85 * h));
                let streaks: Vec<[(f32, f32); 2]> = (0..rng.random_range(3..=9))
                    .map(|_| {
                        let x = centre.0 + rng.random_range(-0.12..0.12f32) * side;
                        let y = centre.1 + rng.random_range(-0.08..0.08f32) * side;
                        let half = rng.random_range(0.03..0.09f32) * side;
                        [(x, y - half), (x, y + half)]
                    })
                    .collect();
                let lines: Vec<&[(f32, f32)]> = streaks.iter().map(|s| s.as_slice()).collect();
                let half_width = sample(rng, ranges.width) / 2.0;
                dim(cell, |p| loss * line_coverage(p, &lines, half_width))
            }
        }
    }

    /// One defect of a kind drawn with the real data's mixture: cracks half
    /// of the time, inactive regions and broken fingers a quarter each.
    pub fn random(rng: &mut impl Rng) -> ElDefect {
        match rng.random_range(0..4) {
            0 | 1 => ElDefect::Crack,
            2 => ElDefect::Inactive,
            _ => ElDefect::BrokenFingers,
        }
    }
}

/// A synthetic generator on EL cells: how a real defect-free cell becomes a
/// synthetic "defect".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ElGenerator {
    /// Rendered cracks, inactive regions and broken fingers with the real ranges.
    Faithful,
    /// Cracks only, the middle fifth of each range.
    Narrow,
    /// Rendered defects at a tenth of the contrast.
    TooFaint,
    /// Round dark spots (the drawn pit family), a defect the cells do not show.
    WrongFamily,
    /// A global brightness and contrast change, no defect.
    Photometric,
    /// Gaussian pixel noise, no defect.
    Noise,
    /// The source unchanged.
    Copy,
    /// This percentage of faithful samples, the rest unchanged copies.
    Mix(u8),
    /// CutPaste (Li et al. 2021): a rectangle of the cell pasted elsewhere on it.
    CutPaste,
    /// CutPaste-scar: a thin rotated strip of the cell pasted elsewhere on it.
    CutPasteScar,
    /// DRAEM-style (Zavrtanik et al. 2021): a Perlin-noise mask filled with a foreign texture.
    Draem,
    /// NSA-style (Schlueter et al. 2022): a patch of another defect-free cell, Poisson-blended in.
    Nsa,
    /// A defect region cut from a real positive the probe may use, blended onto the cell.
    Transplant,
}

impl ElGenerator {
    /// The study's generators on EL cells.
    pub const STUDY: [ElGenerator; 15] = [
        ElGenerator::Faithful,
        ElGenerator::Narrow,
        ElGenerator::TooFaint,
        ElGenerator::WrongFamily,
        ElGenerator::Photometric,
        ElGenerator::Noise,
        ElGenerator::Copy,
        ElGenerator::Mix(75),
        ElGenerator::Mix(50),
        ElGenerator::Mix(25),
        ElGenerator::CutPaste,
        ElGenerator::CutPasteScar,
        ElGenerator::Draem,
        ElGenerator::Nsa,
        ElGenerator::Transplant,
    ];

    /// Folder-safe name.
    pub fn name(&self) -> String {
        match self {
            ElGenerator::Faithful => "faithful".into(),
            ElGenerator::Narrow => "narrow".into(),
            ElGenerator::TooFaint => "too-faint".into(),
            ElGenerator::WrongFamily => "wrong-family".into(),
            ElGenerator::Photometric => "photometric".into(),
            ElGenerator::Noise => "noise".into(),
            ElGenerator::Copy => "copy".into(),
            ElGenerator::Mix(p) => format!("mix{p}"),
            ElGenerator::CutPaste => "cutpaste".into(),
            ElGenerator::CutPasteScar => "cutpaste-scar".into(),
            ElGenerator::Draem => "draem".into(),
            ElGenerator::Nsa => "nsa".into(),
            ElGenerator::Transplant => "transplant".into(),
        }
    }

    /// Whether the `index`-th sample of a mixture is a faithful one (spread evenly).
    pub fn mixes_in(p: u8, index: usize) -> bool {
        (index * p as usize) % 100 < p as usize
    }

    /// Makes the `index`-th synthetic sample from a defect-free `cell`.
    pub fn apply(&self, cell: &GrayImage, index: usize, donors: &Donors, rng: &mut impl Rng) -> GrayImage {
        match *self {
            ElGenerator::Faithful => ElDefect::random(rng).render(cell, &ElRanges::REAL, rng),
            ElGenerator::Narrow => ElDefect::Crack.render(cell, &ElRanges::REAL.narrow(), rng),
            ElGenerator::TooFaint => ElDefect::random(rng).render(cell, &ElRanges::REAL.faint(), rng),
            ElGenerator::WrongFamily => Family::Pit.draw(cell, &Family::Pit.real_ranges(), rng),
            ElGenerator::Photometric => photometric(cell, rng),
            ElGenerator::Noise => noise(cell, rng),
            ElGenerator::Copy => cell.clone(),
            ElGenerator::Mix(p) => {
                if ElGenerator::mixes_in(p, index) {
                    ElDefect::random(rng).render(cell, &ElRanges::REAL, rng)
                } else {
                    cell.clone()
                }
            }
            ElGenerator::CutPaste => synthesis::cut_paste(cell, rng),
            ElGenerator::CutPasteScar => synthesis::cut_paste_scar(cell, rng),
            ElGenerator::Draem => synthesis::draem(cell, &donors.textures, rng),
            ElGenerator::Nsa => synthesis::nsa(cell, &donors.normals, rng),
            ElGenerator::Transplant => synthesis::transplant(cell, &donors.defect_patches, rng),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn every_el_defect_darkens_part_of_the_cell_only() {
        let cell = GrayImage::from_pixel(300, 300, Luma([180]));
        let mut rng = StdRng::seed_from_u64(1);
        for kind in [ElDefect::Crack, ElDefect::Inactive, ElDefect::BrokenFingers] {
            let out = kind.render(&cell, &ElRanges::REAL, &mut rng);
            let changed = out.pixels().filter(|p| p[0] != 180).count();
            assert!(out.pixels().all(|p| p[0] <= 180), "{kind:?} only darkens");
            assert!(changed > 50 && changed < 300 * 300 * 3 / 4, "{kind:?}: {changed} pixels changed");
            let faint = kind.render(&cell, &ElRanges::REAL.faint(), &mut rng);
            assert!(faint.pixels().all(|p| p[0] >= 180 - 16), "{kind:?}: a faint defect stays faint");
        }
    }
}
