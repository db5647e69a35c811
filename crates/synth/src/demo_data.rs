//! The bundled demo dataset: tiles of real CC0 surface textures (brick,
//! grass, gravel from scikit-image's data) as real negatives, a few tiles with
//! one drawn defect family (scratches) as real positives, and synthetic
//! generators of graded fidelity made from the real negatives.
//!
//! The defects are drawn, not photographed, like the seed paper's own
//! watermark set: a controlled benchmark, not evidence on real defect data.

use crate::defects::{Family, Generator};
use anyhow::{bail, Context, Result};
use image::GrayImage;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::path::{Path, PathBuf};

/// The texture files the demo tiles, in the shared textures folder
/// ([`spanwatch_embed::install::TEXTURES`]).
pub const TEXTURES: [&str; 3] = ["brick.png", "grass.png", "gravel.png"];
/// Marks a folder as written by `spanwatch-demo` (or the tests), so it may be rewritten.
const MARKER: &str = ".spanwatch-demo";
/// The demo's generators for its scratch inspection, from faithful to useless
/// (the wrong family draws pits).
pub const DEMO_GENERATORS: [Generator; 5] =
    [Generator::Faithful, Generator::WrongFamily, Generator::TooFaint, Generator::Photometric, Generator::Copy];
/// Side of a tile in pixels.
pub const TILE: u32 = 128;

/// How many images of each kind the demo makes.
#[derive(Clone, Copy, Debug)]
pub struct DemoSize {
    /// Real negatives.
    pub negatives: usize,
    /// Real positives.
    pub positives: usize,
    /// Pairs per synthetic generator (made from the first real negatives).
    pub pairs: usize,
}

impl Default for DemoSize {
    fn default() -> Self {
        DemoSize { negatives: 60, positives: 15, pairs: 30 }
    }
}

/// The folder of the bundled CC0 textures, or an error that lists where it was looked for.
pub fn textures_dir() -> Result<PathBuf> {
    spanwatch_embed::install::TEXTURES.find().map_err(|places| {
        anyhow::anyhow!(
            "cannot find the bundled textures (brick.png, ...); looked in {} (set $SPANWATCH_TEXTURES)",
            spanwatch_embed::install::list(&places)
        )
    })
}

/// Cuts every texture into TILE x TILE tiles at half-tile stride.
pub fn texture_tiles() -> Result<Vec<GrayImage>> {
    let dir = textures_dir()?;
    let mut tiles = Vec::new();
    for name in TEXTURES {
        let path = dir.join(name);
        let texture = image::open(&path).with_context(|| format!("cannot read the demo texture {}", path.display()))?.to_luma8();
        let stride = TILE / 2;
        for y in (0..=texture.height() - TILE).step_by(stride as usize) {
            for x in (0..=texture.width() - TILE).step_by(stride as usize) {
                tiles.push(image::imageops::crop_imm(&texture, x, y, TILE, TILE).to_image());
            }
        }
    }
    Ok(tiles)
}

/// Writes the demo dataset under `out` (which must be empty, absent, or an
/// earlier demo folder) and returns it.
pub fn build(out: &Path, size: DemoSize, seed: u64) -> Result<PathBuf> {
    prepare_folder(out)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let tiles = shuffled_tiles(&mut rng)?;
    if tiles.len() < size.negatives + size.positives || size.pairs > size.negatives {
        bail!("the demo textures give {} tiles; {size:?} asks for more", tiles.len());
    }
    let (positives, rest) = tiles.split_at(size.positives);
    let negatives = &rest[..size.negatives];
    let save = |image: &GrayImage, path: PathBuf| -> Result<()> {
        std::fs::create_dir_all(path.parent().expect("file in a folder"))?;
        image.save(&path).with_context(|| format!("cannot write {}", path.display()))
    };
    for (i, tile) in negatives.iter().enumerate() {
        save(tile, out.join(format!("real/negative/tile_{i:03}.png")))?;
    }
    let family = Family::Scratch;
    for (i, tile) in positives.iter().enumerate() {
        save(&family.draw(tile, &family.real_ranges(), &mut rng), out.join(format!("real/positive/defect_{i:03}.png")))?;
    }
    for generator in DEMO_GENERATORS {
        for (i, tile) in negatives.iter().take(size.pairs).enumerate() {
            save(&generator.apply(family, tile, i, &mut rng), out.join(format!("synthetic/{}/tile_{i:03}.png", generator.name())))?;
        }
    }
    std::fs::write(
        out.join("README.txt"),
        "spanwatch demo data. Negatives are tiles of real CC0 textures (brick, grass, gravel);\n\
         the defects (scratches, pits) are DRAWN on them, not photographed.\n",
    )?;
    Ok(out.to_path_buf())
}

/// Every tile in the order `build` with `seed` uses them: real positives
/// first, then real negatives, then the tiles the demo data leaves unused.
fn shuffled_tiles(rng: &mut StdRng) -> Result<Vec<GrayImage>> {
    let mut tiles = texture_tiles()?;
    tiles.shuffle(rng);
    Ok(tiles)
}

/// The tiles `build(_, size, seed)` did not use: normal images the demo's
/// live stream makes new synthetic defects from.
pub fn held_out_tiles(size: DemoSize, seed: u64) -> Result<Vec<GrayImage>> {
    let tiles = shuffled_tiles(&mut StdRng::seed_from_u64(seed))?;
    let held_out = tiles.get(size.positives + size.negatives..).unwrap_or_default().to_vec();
    if held_out.is_empty() {
        bail!("the demo textures leave no tiles for a live stream with {size:?}");
    }
    Ok(held_out)
}

fn prepare_folder(out: &Path) -> Result<()> {
    if out.exists() {
        let is_demo = out.join(MARKER).is_file();
        let is_empty = std::fs::read_dir(out).with_context(|| format!("cannot read {}", out.display()))?.next().is_none();
        if !is_demo && !is_empty {
            bail!("{} exists and is not a spanwatch-demo folder; refusing to write into it (choose another --out)", out.display());
        }
        for sub in ["real", "synthetic", "spool"] {
            if out.join(sub).exists() {
                std::fs::remove_dir_all(out.join(sub)).with_context(|| format!("cannot clear {}", out.join(sub).display()))?;
            }
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    std::fs::write(out.join(MARKER), "written by spanwatch-demo\n")?;
    Ok(())
}
