//! The study's images: tiles of real surfaces, real defects drawn on some of
//! them, and every generator's synthetic pairs, written once under the work
//! folder (so a rerun reuses files and cached embeddings).
//!
//! Each texture is split by rows: tiles from the top 5/8 train (negatives,
//! probe positives, sources of synthetic pairs), tiles from the bottom 3/8 are
//! held out for testing, so no pixel of a test tile is seen in training. The
//! eight rotations and flips of every tile give several hundred per split.
//!
//! Every synthetic image is drawn with its own seed, derived from what it is
//! (surface, drawn family, parameter ranges, index), so identical images
//! across generators are identical files: a mixture's faithful samples are
//! the faithful generator's, a wrong-family sample is that family's faithful
//! one, and the embedding cache computes each only once.

use crate::generator::StudyGenerator;
use crate::StudyConfig;
use anyhow::{Context, Result};
use image::imageops;
use image::GrayImage;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use spanwatch_synth::defects::{Family, Generator};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Side of a tile in pixels.
const TILE: u32 = 128;
/// Tile stride in pixels.
const STRIDE: u32 = 32;

/// One surface's images on disk.
pub struct SurfaceImages {
    /// Surface name (texture file stem, or `elpv-mono` / `elpv-poly`).
    pub surface: String,
    /// Defect families on this surface (the drawn families, or `el` for the real EL defects).
    pub families: Vec<String>,
    /// The generators that made its synthetic pairs, in study order.
    pub generators: Vec<StudyGenerator>,
    /// Side of the grey pixel tiles the CNN truth trains on.
    pub cnn_side: u32,
    /// Real negatives for training (also the sources of synthetic pairs).
    pub train_negatives: Vec<PathBuf>,
    /// Held-out real negatives.
    pub test_negatives: Vec<PathBuf>,
    /// Per family: real positives for the probe.
    pub probe_positives: BTreeMap<String, Vec<PathBuf>>,
    /// Per family: held-out real positives.
    pub test_positives: BTreeMap<String, Vec<PathBuf>>,
    /// Each probe positive's tile before its defect was drawn, so that
    /// where the defect lies is known (to check label-free defect
    /// regions). Empty on ELPV, whose defects are photographed.
    pub probe_sources: BTreeMap<PathBuf, GrayImage>,
    /// Held-out real cells whose experts were unsure (ELPV probability 1/3
    /// or 2/3): the secondary test set, with the same held-out negatives.
    /// Empty on drawn surfaces.
    pub uncertain_positives: Vec<PathBuf>,
    /// Per (family, generator): (synthetic, source) pairs made from the training negatives.
    pub pairs: PairSets,
    /// Per (family, generator): pairs made from the held-out negatives,
    /// which no probe, generator or calibration sees (the stream
    /// experiment's; none unless [`StudyConfig::held_out_pairs`] asks).
    pub held_out_pairs: PairSets,
}

/// (synthetic, source) pairs per (family, generator).
pub type PairSets = BTreeMap<(String, StudyGenerator), Vec<(PathBuf, PathBuf)>>;

/// The eight rotations and flips of a tile.
fn dihedral(tile: &GrayImage) -> [GrayImage; 8] {
    let r90 = imageops::rotate90(tile);
    let r180 = imageops::rotate180(tile);
    let r270 = imageops::rotate270(tile);
    [
        imageops::flip_horizontal(tile),
        imageops::flip_horizontal(&r90),
        imageops::flip_horizontal(&r180),
        imageops::flip_horizontal(&r270),
        tile.clone(),
        r90,
        r180,
        r270,
    ]
}

/// Tiles whose top row lies in [y_from, y_to - TILE], with their 8 variants, shuffled.
fn tiles(texture: &GrayImage, y_from: u32, y_to: u32, rng: &mut StdRng) -> Vec<GrayImage> {
    let mut out = Vec::new();
    for y in (y_from..=y_to.saturating_sub(TILE)).step_by(STRIDE as usize) {
        for x in (0..=texture.width() - TILE).step_by(STRIDE as usize) {
            out.extend(dihedral(&imageops::crop_imm(texture, x, y, TILE, TILE).to_image()));
        }
    }
    out.shuffle(rng);
    out
}

/// A stable seed for what `parts` and `index` name.
pub(super) fn seed(parts: &[&str], index: usize) -> u64 {
    // FNV-1a: a stable hash across builds and platforms.
    let mut h: u64 = 0xcbf29ce484222325;
    for byte in parts.join("/").bytes().chain(index.to_le_bytes()) {
        h = (h ^ byte as u64).wrapping_mul(0x100000001b3);
    }
    h
}

/// The seed of the `index`-th synthetic sample of kind `key` in `split`
/// (`synthetic` for the training pairs, which keep the seeds they always had,
/// or `held-out`).
pub(super) fn sample_seed(surface: &str, split: &str, key: &str, index: usize) -> u64 {
    if split == "synthetic" {
        seed(&[surface, key], index)
    } else {
        seed(&[surface, split, key], index)
    }
}

/// Writes `image` to `path` unless a file is there already.
pub(super) fn save(image: &GrayImage, path: &Path) -> Result<PathBuf> {
    if !path.is_file() {
        std::fs::create_dir_all(path.parent().expect("file in a folder"))?;
        image.save(path).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(path.to_path_buf())
}

/// What a synthetic sample's seed and file name depend on: generators that
/// make the same image share it.
fn identity(family: Family, generator: Generator, index: usize) -> Option<(String, String)> {
    let drawn = |f: Family, kind: &str| Some((format!("{}-{kind}", f.name()), format!("{}_{kind}", f.name())));
    match generator {
        Generator::Faithful => drawn(family, "faithful"),
        Generator::Narrow => drawn(family, "narrow"),
        Generator::TooFaint => drawn(family, "faint"),
        Generator::WrongFamily => drawn(family.other(), "faithful"),
        Generator::Photometric => Some(("photometric".into(), "photometric".into())),
        Generator::Noise => Some(("noise".into(), "noise".into())),
        Generator::Copy => None,
        Generator::Mix(p) => {
            if (index * p as usize) % 100 < p as usize {
                drawn(family, "faithful")
            } else {
                None
            }
        }
    }
}

/// Writes (or finds) one surface's images under `work`.
pub fn surface_images(config: &StudyConfig, surface: &str, texture: &GrayImage, work: &Path) -> Result<SurfaceImages> {
    anyhow::ensure!(
        config.held_out_set == 0,
        "surface {surface}: a drawn surface has one held-out set (its texture's test region, whose tiles' rotations would repeat in another); a later held-out set exists on elpv-mono and elpv-poly only"
    );
    let dir = work.join("images").join(surface);
    let mut rng = StdRng::seed_from_u64(seed(&[surface, "tiles"], 0));
    let split = texture.height() * 5 / 8;
    let train = tiles(texture, 0, split, &mut rng);
    let test = tiles(texture, split, texture.height(), &mut rng);
    let families = &config.families;
    let need_train = config.train_negatives + families.len() * config.max_positives();
    let need_test = config.test_negatives + families.len() * config.test_positives;
    anyhow::ensure!(
        train.len() >= need_train && test.len() >= need_test,
        "surface {surface}: {} train and {} test tiles, {need_train} and {need_test} needed",
        train.len(),
        test.len()
    );
    let mut train_tiles = train.into_iter();
    let mut test_tiles = test.into_iter();

    let negatives: Vec<GrayImage> = train_tiles.by_ref().take(config.train_negatives).collect();
    let train_negatives =
        negatives.iter().enumerate().map(|(i, t)| save(t, &dir.join(format!("train/negative/{i:04}.png")))).collect::<Result<Vec<_>>>()?;
    let held_out: Vec<GrayImage> = test_tiles.by_ref().take(config.test_negatives).collect();
    let test_negatives =
        held_out.iter().enumerate().map(|(i, t)| save(t, &dir.join(format!("test/negative/{i:04}.png")))).collect::<Result<Vec<_>>>()?;
    let mut probe_positives = BTreeMap::new();
    let mut test_positives = BTreeMap::new();
    let mut probe_sources = BTreeMap::new();
    for &family in families {
        let draw = |tile: GrayImage, kind: &str, i: usize| {
            let mut rng = StdRng::seed_from_u64(seed(&[surface, family.name(), kind], i));
            family.draw(&tile, &family.real_ranges(), &mut rng)
        };
        let probe: Vec<PathBuf> = train_tiles
            .by_ref()
            .take(config.max_positives())
            .enumerate()
            .map(|(i, t)| {
                let path = save(&draw(t.clone(), "probe", i), &dir.join(format!("train/{}/{i:04}.png", family.name())))?;
                probe_sources.insert(path.clone(), t);
                Ok(path)
            })
            .collect::<Result<_>>()?;
        let test: Vec<PathBuf> = test_tiles
            .by_ref()
            .take(config.test_positives)
            .enumerate()
            .map(|(i, t)| save(&draw(t, "test", i), &dir.join(format!("test/{}/{i:04}.png", family.name()))))
            .collect::<Result<_>>()?;
        probe_positives.insert(family.name().to_string(), probe);
        test_positives.insert(family.name().to_string(), test);
    }
    let made_from = |sources: &[GrayImage], paths: &[PathBuf], split: &str, count: usize| -> Result<PairSets> {
        let mut pairs = BTreeMap::new();
        for &family in families {
            for &generator in &config.generators {
                let list = (0..count)
                    .map(|i| {
                        let source_index = i % sources.len();
                        let source = &paths[source_index];
                        match identity(family, generator, i) {
                            None => Ok((source.clone(), source.clone())),
                            Some((seed_key, file_key)) => {
                                let path = dir.join(format!("{split}/{file_key}/{i:04}.png"));
                                if !path.is_file() {
                                    let mut rng = StdRng::seed_from_u64(sample_seed(surface, split, &seed_key, i));
                                    save(&generator.apply(family, &sources[source_index], i, &mut rng), &path)?;
                                }
                                Ok((path, source.clone()))
                            }
                        }
                    })
                    .collect::<Result<Vec<_>>>()?;
                pairs.insert((family.name().to_string(), StudyGenerator::Drawn(generator)), list);
            }
        }
        Ok(pairs)
    };
    let pairs = made_from(&negatives, &train_negatives, "synthetic", config.max_pairs())?;
    let held_out_pairs = made_from(&held_out, &test_negatives, "held-out", config.held_out_pairs)?;
    Ok(SurfaceImages {
        surface: surface.to_string(),
        families: families.iter().map(|f| f.name().to_string()).collect(),
        generators: config.generators.iter().map(|&g| StudyGenerator::Drawn(g)).collect(),
        cnn_side: crate::cnn::SIDE,
        train_negatives,
        test_negatives,
        probe_positives,
        test_positives,
        probe_sources,
        uncertain_positives: Vec::new(),
        pairs,
        held_out_pairs,
    })
}

impl SurfaceImages {
    /// The held-out real images for `family` (negatives, then its positives) with their labels.
    pub fn test_set(&self, family: &str) -> (Vec<&PathBuf>, Vec<bool>) {
        self.held_out_with(&self.test_positives[family])
    }

    /// The secondary test set (held-out negatives, then the uncertain cells)
    /// with its labels, when the surface has one.
    pub fn uncertain_test_set(&self) -> Option<(Vec<&PathBuf>, Vec<bool>)> {
        (!self.uncertain_positives.is_empty()).then(|| self.held_out_with(&self.uncertain_positives))
    }

    /// The held-out negatives, then `positives`, with their labels.
    fn held_out_with<'a>(&'a self, positives: &'a [PathBuf]) -> (Vec<&'a PathBuf>, Vec<bool>) {
        let paths: Vec<&PathBuf> = self.test_negatives.iter().chain(positives).collect();
        let labels = (0..paths.len()).map(|i| i >= self.test_negatives.len()).collect();
        (paths, labels)
    }

    /// Every image path, for embedding.
    pub fn all_paths(&self) -> Vec<&Path> {
        let synthetic = self.pairs.values().flatten().map(|(s, _)| s.as_path());
        self.real_paths().into_iter().chain(synthetic).collect()
    }

    /// The real images' paths (training, probe and test images; the
    /// sources of the pairs are training negatives).
    pub fn real_paths(&self) -> Vec<&Path> {
        self.train_negatives
            .iter()
            .chain(&self.test_negatives)
            .chain(self.probe_positives.values().flatten())
            .chain(self.test_positives.values().flatten())
            .chain(&self.uncertain_positives)
            .map(|p| p.as_path())
            .collect()
    }
}
