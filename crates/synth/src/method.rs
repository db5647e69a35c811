//! The synthesis methods as users run them on their own images: grey or
//! colour, of any size. Each method of [`crate::synthesis`] works on one grey
//! plane; a colour image is its three planes, each changed with the same
//! random draws (the same rectangle, mask, donor and place), so a CutPaste of
//! a colour image moves a colour patch. The methods' draws never depend on
//! the pixels, which is what keeps the planes in step.

use crate::synthesis::{self, defect_region, Donors, Patch};
use anyhow::{bail, ensure, Result};
use image::imageops::{self, FilterType};
use image::{DynamicImage, GrayImage, RgbImage};
use rand::rngs::StdRng;
use std::collections::BTreeMap;

/// A defect synthesis method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// CutPaste: a rectangle of 2 to 15% of the image moved elsewhere.
    CutPaste,
    /// CutPaste-scar: a thin rotated strip moved elsewhere.
    CutPasteScar,
    /// DRAEM: a Perlin-noise mask filled with a foreign texture.
    Draem,
    /// NSA: a patch of another normal image blended in seamlessly (Poisson).
    Nsa,
    /// Transplant: a real positive's defect region blended in (Poisson).
    Transplant,
}

/// Smallest width or height a method accepts, in pixels.
pub const MIN_SIDE: u32 = 16;
/// Side of the defect region a transplant takes, as a share of the image's
/// short side (the study's 90 px on 300 px ELPV cells).
pub const TRANSPLANT_SHARE: f32 = 0.3;

impl Method {
    /// Every method, in the order the CLI lists them.
    pub const ALL: [Method; 5] = [Method::CutPaste, Method::CutPasteScar, Method::Draem, Method::Nsa, Method::Transplant];

    /// The method's name: the CLI's `--method` and the folder under `DATA/synthetic`.
    pub fn name(self) -> &'static str {
        match self {
            Method::CutPaste => "cutpaste",
            Method::CutPasteScar => "cutpaste-scar",
            Method::Draem => "draem",
            Method::Nsa => "nsa",
            Method::Transplant => "transplant",
        }
    }

    /// The largest share of the image's area the changed pixels' bounding
    /// box may cover: the method's change is local (1.0 for DRAEM, whose
    /// noise mask may reach anywhere).
    pub fn local_share(self) -> f64 {
        match self {
            // The pasted rectangle: at most 15% of the area (plus rounding).
            Method::CutPaste => 0.16,
            // A strip at most 16 x 25 px at 256 px, rotated: its box is at most 2 x 21 px square.
            Method::CutPasteScar => 0.03,
            Method::Draem => 1.0,
            // A patch of at most 40% of each side.
            Method::Nsa => 0.16,
            Method::Transplant => (TRANSPLANT_SHARE * TRANSPLANT_SHARE) as f64,
        }
    }
}

/// What a method takes from besides the image it changes: foreign textures
/// (DRAEM), other normal images (NSA), real positives (transplant).
#[derive(Default)]
pub struct Sources {
    /// Foreign textures, any size.
    pub textures: Vec<DynamicImage>,
    /// Other normal images, any size (resized to each image's size).
    pub normals: Vec<DynamicImage>,
    /// Real positives, any size (resized to each image's size).
    pub positives: Vec<DynamicImage>,
}

/// How many image sizes' donors a [`Synthesizer`] keeps: a dataset of one
/// camera's images has one size; one of many sizes costs a resize of the
/// donors per new size, not memory without bound.
pub const KEPT_SIZES: usize = 4;

/// One method with its sources, applied image by image. The donors of each
/// image size and colour mode are prepared once and kept.
pub struct Synthesizer {
    method: Method,
    sources: Sources,
    /// Donors per (width, height, colour): one [`Donors`] per plane.
    donors: BTreeMap<(u32, u32, bool), Vec<Donors>>,
}

/// The planes of an image: one for grey, three for colour (alpha is dropped).
fn planes(image: &DynamicImage, colour: bool) -> Vec<GrayImage> {
    if !colour {
        return vec![image.to_luma8()];
    }
    let rgb = image.to_rgb8();
    (0..3).map(|c| GrayImage::from_fn(rgb.width(), rgb.height(), |x, y| image::Luma([rgb.get_pixel(x, y)[c]]))).collect()
}

/// The image made of `planes` (one grey plane, or three colour planes).
fn join(planes: Vec<GrayImage>) -> DynamicImage {
    match <[GrayImage; 3]>::try_from(planes) {
        Ok([r, g, b]) => DynamicImage::ImageRgb8(RgbImage::from_fn(r.width(), r.height(), |x, y| {
            image::Rgb([r.get_pixel(x, y)[0], g.get_pixel(x, y)[0], b.get_pixel(x, y)[0]])
        })),
        Err(mut one) => DynamicImage::ImageLuma8(one.remove(0)),
    }
}

/// `image` at `w` x `h` (itself when it already is).
fn sized(image: &DynamicImage, w: u32, h: u32) -> DynamicImage {
    if image.width() == w && image.height() == h {
        image.clone()
    } else {
        image.resize_exact(w, h, FilterType::Triangle)
    }
}

impl Synthesizer {
    /// A synthesizer of `method` over `sources`; refuses a method whose sources are missing.
    pub fn new(method: Method, sources: Sources) -> Result<Synthesizer> {
        match method {
            Method::Draem => ensure!(!sources.textures.is_empty(), "draem needs foreign textures (none given)"),
            Method::Nsa => ensure!(!sources.normals.is_empty(), "nsa needs other normal images to take patches from (none given)"),
            Method::Transplant => {
                ensure!(!sources.positives.is_empty(), "transplant needs real positives to take defect regions from (none given)");
                ensure!(
                    !sources.normals.is_empty(),
                    "transplant needs normal images to find the positives' defect regions against (none given)"
                );
            }
            Method::CutPaste | Method::CutPasteScar => {}
        }
        Ok(Synthesizer { method, sources, donors: BTreeMap::new() })
    }

    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// One synthetic image made from `image` with `rng`'s draws: grey stays
    /// grey (8-bit), colour becomes 8-bit RGB, the size is kept.
    pub fn apply(&mut self, image: &DynamicImage, rng: &mut StdRng) -> Result<DynamicImage> {
        let (w, h) = (image.width(), image.height());
        if w.min(h) < MIN_SIDE {
            bail!("{w}x{h} is too small for {}: each side must be at least {MIN_SIDE} pixels", self.method.name());
        }
        let colour = image.color().has_color();
        let method = self.method;
        let donors = self.donors_for(w, h, colour);
        let start = rng.clone();
        let mut out = Vec::with_capacity(donors.len());
        for (plane, donors) in planes(image, colour).iter().zip(donors) {
            // Every plane takes the same draws.
            *rng = start.clone();
            out.push(match method {
                Method::CutPaste => synthesis::cut_paste(plane, rng),
                Method::CutPasteScar => synthesis::cut_paste_scar(plane, rng),
                Method::Draem => synthesis::draem(plane, &donors.textures, rng),
                Method::Nsa => synthesis::nsa(plane, &donors.normals, rng),
                Method::Transplant => synthesis::transplant(plane, &donors.defect_patches, rng),
            });
        }
        Ok(join(out))
    }

    /// The donors of a `w` x `h` image, one per plane, made on first use
    /// (the donors of at most [`KEPT_SIZES`] sizes are kept).
    fn donors_for(&mut self, w: u32, h: u32, colour: bool) -> &[Donors] {
        let (method, sources) = (self.method, &self.sources);
        if self.donors.len() >= KEPT_SIZES && !self.donors.contains_key(&(w, h, colour)) {
            self.donors.clear();
        }
        self.donors.entry((w, h, colour)).or_insert_with(|| {
            let n = if colour { 3 } else { 1 };
            let per_plane = |images: &[DynamicImage], resize: bool| -> Vec<Vec<GrayImage>> {
                let mut out = vec![Vec::new(); n];
                for image in images {
                    let image = if resize { sized(image, w, h) } else { image.clone() };
                    for (c, plane) in planes(&image, colour).into_iter().enumerate() {
                        out[c].push(plane);
                    }
                }
                out
            };
            let textures = if method == Method::Draem { per_plane(&sources.textures, false) } else { vec![Vec::new(); n] };
            let normals =
                if matches!(method, Method::Nsa | Method::Transplant) { per_plane(&sources.normals, true) } else { vec![Vec::new(); n] };
            let patches = if method == Method::Transplant {
                transplant_patches(&sources.positives, &normals, w, h, colour)
            } else {
                vec![Vec::new(); n]
            };
            textures
                .into_iter()
                .zip(normals)
                .zip(patches)
                .map(|((textures, normals), defect_patches)| Donors { textures, normals, defect_patches })
                .collect()
        })
    }
}

/// Each positive's defect region at `w` x `h`: found on its grey form (the
/// region darkest against the normals' mean) and cut from every plane.
fn transplant_patches(positives: &[DynamicImage], normals: &[Vec<GrayImage>], w: u32, h: u32, colour: bool) -> Vec<Vec<Patch>> {
    let side = ((w.min(h) as f32 * TRANSPLANT_SHARE) as u32).max(2);
    let grey_normals: Vec<GrayImage> = if colour {
        (0..normals[0].len())
            .map(|i| {
                GrayImage::from_fn(w, h, |x, y| {
                    let v = (0..3).map(|c| normals[c][i].get_pixel(x, y)[0] as f32).sum::<f32>() / 3.0;
                    image::Luma([v.round() as u8])
                })
            })
            .collect()
    } else {
        normals[0].clone()
    };
    let n = grey_normals.len() as f32;
    let mean: Vec<f32> = (0..(w * h) as usize).map(|i| grey_normals.iter().map(|g| g.as_raw()[i] as f32).sum::<f32>() / n).collect();
    let mut out = vec![Vec::new(); if colour { 3 } else { 1 }];
    for positive in positives {
        let positive = sized(positive, w, h);
        let region = defect_region(&positive.to_luma8(), &mean, side);
        for (c, plane) in planes(&positive, colour).iter().enumerate() {
            let image = imageops::crop_imm(plane, region.x, region.y, region.image.width(), region.image.height()).to_image();
            out[c].push(Patch { image, x: region.x, y: region.y });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// A textured test image: smooth gradients plus seeded noise, grey or colour.
    fn textured(w: u32, h: u32, colour: bool, seed: u64) -> DynamicImage {
        let mut rng = StdRng::seed_from_u64(seed);
        let rgb = RgbImage::from_fn(w, h, |x, y| {
            let base = (x * 200 / w + y * 50 / h) as i32;
            let mut p = [0u8; 3];
            for (c, v) in p.iter_mut().enumerate() {
                *v = (base + c as i32 * 20 + rng.random_range(-15..15)).clamp(0, 255) as u8;
            }
            image::Rgb(p)
        });
        if colour {
            DynamicImage::ImageRgb8(rgb)
        } else {
            DynamicImage::ImageLuma8(DynamicImage::ImageRgb8(rgb).to_luma8())
        }
    }

    /// A positive: a normal image with a dark blob at a known place.
    fn positive(w: u32, h: u32, colour: bool, seed: u64) -> DynamicImage {
        let mut image = textured(w, h, colour, seed).to_rgb8();
        for y in h / 5..h / 5 + h / 6 {
            for x in w / 2..w / 2 + w / 6 {
                image.put_pixel(x, y, image::Rgb([10, 10, 10]));
            }
        }
        if colour {
            DynamicImage::ImageRgb8(image)
        } else {
            DynamicImage::ImageLuma8(DynamicImage::ImageRgb8(image).to_luma8())
        }
    }

    fn synthesizer(method: Method, colour: bool) -> Synthesizer {
        let sources = Sources {
            textures: vec![textured(300, 200, colour, 90), textured(64, 64, colour, 91)],
            normals: (0..4).map(|i| textured(100 + 20 * i, 80 + 10 * i, colour, 100 + i as u64)).collect(),
            positives: (0..3).map(|i| positive(120, 90, colour, 200 + i)).collect(),
        };
        Synthesizer::new(method, sources).unwrap()
    }

    /// The bounding box of the pixels that differ, as a share of the image.
    fn changed_share(a: &DynamicImage, b: &DynamicImage) -> f64 {
        let (a, b) = (a.to_rgb8(), b.to_rgb8());
        let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
        for (x, y, p) in a.enumerate_pixels() {
            if p != b.get_pixel(x, y) {
                (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
            }
        }
        if x0 == u32::MAX {
            return 0.0;
        }
        ((x1 - x0 + 1) * (y1 - y0 + 1)) as f64 / (a.width() * a.height()) as f64
    }

    #[test]
    fn every_method_keeps_size_and_mode_and_changes_only_where_it_says() {
        for method in Method::ALL {
            for colour in [false, true] {
                let mut synth = synthesizer(method, colour);
                let mut rng = StdRng::seed_from_u64(7);
                for (w, h) in [(64, 64), (257, 130), (40, 300)] {
                    let image = textured(w, h, colour, 1);
                    for _ in 0..5 {
                        let out = synth.apply(&image, &mut rng).unwrap();
                        assert_eq!((out.width(), out.height()), (w, h), "{method:?}");
                        assert_eq!(out.color().has_color(), colour, "{method:?} changed the colour mode");
                        assert_eq!(out.color().bytes_per_pixel(), if colour { 3 } else { 1 });
                        let share = changed_share(&image, &out);
                        assert!(share <= method.local_share(), "{method:?} {w}x{h}: changed {share:.3} of the image");
                    }
                }
            }
        }
    }

    #[test]
    fn the_methods_change_the_image_and_follow_the_seed() {
        for method in Method::ALL {
            let image = textured(128, 128, true, 3);
            let run = |seed| {
                let mut synth = synthesizer(method, true);
                let mut rng = StdRng::seed_from_u64(seed);
                (0..4).map(|_| synth.apply(&image, &mut rng).unwrap().into_bytes()).collect::<Vec<_>>()
            };
            let first = run(1);
            assert_eq!(first, run(1), "{method:?} is not reproducible");
            assert_ne!(first, run(2), "{method:?} ignores the seed");
            assert!(first.iter().filter(|out| **out != image.as_bytes()).count() >= 3, "{method:?} left the image as it was");
        }
    }

    /// A colour image's planes move together: where one plane changed, the
    /// change has the same place in the others (one rectangle, one mask).
    #[test]
    fn a_colour_image_changes_in_one_place_on_every_plane() {
        // Equal planes stay equal: the same draws on the same pixels.
        let grey = textured(96, 96, false, 5).to_luma8();
        let rgb = DynamicImage::ImageRgb8(RgbImage::from_fn(96, 96, |x, y| {
            let v = grey.get_pixel(x, y)[0];
            image::Rgb([v, v, v])
        }));
        for method in [Method::CutPaste, Method::CutPasteScar] {
            let mut synth = synthesizer(method, true);
            let out = synth.apply(&rgb, &mut StdRng::seed_from_u64(11)).unwrap().to_rgb8();
            assert!(out.pixels().all(|p| p[0] == p[1] && p[1] == p[2]), "{method:?}: the planes went apart");
            let mut grey_synth = synthesizer(method, false);
            let grey_out = grey_synth.apply(&DynamicImage::ImageLuma8(grey.clone()), &mut StdRng::seed_from_u64(11)).unwrap().to_luma8();
            assert!(out.pixels().zip(grey_out.pixels()).all(|(c, g)| c[0] == g[0]), "{method:?}: colour and grey took other draws");
        }
    }

    #[test]
    fn a_transplant_puts_the_positives_defect_where_it_was() {
        let mut synth = synthesizer(Method::Transplant, false);
        let image = textured(120, 90, false, 8);
        let out = synth.apply(&image, &mut StdRng::seed_from_u64(1)).unwrap().to_luma8();
        // The dark blob of every positive sits at (60..80, 18..33).
        let mean = |img: &GrayImage| {
            (18..33).flat_map(|y| (62..78).map(move |x| (x, y))).map(|(x, y)| img.get_pixel(x, y)[0] as f64).sum::<f64>() / 240.0
        };
        assert!(
            mean(&out) < mean(&image.to_luma8()) - 40.0,
            "the defect region was not transplanted: {} vs {}",
            mean(&out),
            mean(&image.to_luma8())
        );
    }

    #[test]
    fn missing_sources_and_tiny_images_are_refused() {
        for (method, what) in [(Method::Draem, "textures"), (Method::Nsa, "normal images"), (Method::Transplant, "positives")] {
            let err = Synthesizer::new(method, Sources::default()).err().unwrap().to_string();
            assert!(err.contains(what), "{err}");
        }
        let mut synth = synthesizer(Method::CutPaste, false);
        let err = synth.apply(&textured(15, 200, false, 1), &mut StdRng::seed_from_u64(1)).unwrap_err().to_string();
        assert!(err.contains("15x200") && err.contains("at least 16"), "{err}");
    }
}
