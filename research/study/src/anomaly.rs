//! Label-free defect regions of the real images (issue 26): where in a real
//! positive its defect lies, found as PatchCore finds it, so the probe of a
//! local candidate learns from defect patches rather than whole images.
//!
//! A surface's memory bank holds the patch tokens of its training
//! negatives (every [`BANK_STRIDE`]-th patch, a fixed subsample where
//! PatchCore takes a greedy coreset). A patch's anomaly is its distance to
//! the nearest bank patch of another image (an image never meets its own
//! patches, so a training negative is scored as an unseen one would be). A
//! real image's feature is the mean of its [`TOP_PATCHES`] most anomalous
//! patch tokens: the defect's patches in a positive, the least typical
//! patches of a negative. Both constants were fixed before any result was
//! seen and are not tuned.
//!
//! The study names such a candidate `<base manifest>+anomaly`; its pairs
//! are read as a `+local` candidate's (see [`crate::local`]): a synthetic
//! image is its source's feature plus the pair's local difference, the
//! change of the same layer's tokens where the pixels changed. Probe and
//! pairs then both contrast defect patches with normal ones.

use crate::local::{patch_change, shared_run, token_grid, Seen};
use crate::parallel_map;
use anyhow::{bail, Context, Result};
use nalgebra::DMatrix;
use spanwatch_calibrate::progress;
use spanwatch_embed::preprocess::{load_rgb, read_image_file, to_tensor};
use spanwatch_embed::Manifest;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Patches pooled into a real image's feature (of 256 for ViT-S/14: a defect
/// of about a sixteenth of the image).
pub const TOP_PATCHES: usize = 16;

/// One bank patch is kept in every this many of the training negatives'.
pub const BANK_STRIDE: usize = 8;

/// The patch tokens of one surface's training negatives, one column per kept
/// patch, with the image each came from.
pub struct Bank {
    patches: DMatrix<f32>,
    squared_norms: Vec<f32>,
    owners: Vec<usize>,
}

impl Bank {
    /// The bank of `negatives`, each the patch tokens of one image
    /// (`dim` values per patch, patches in order).
    pub fn new(negatives: &[&[f32]], dim: usize) -> Bank {
        let mut columns = Vec::new();
        let mut owners = Vec::new();
        let mut index = 0;
        for (owner, tokens) in negatives.iter().enumerate() {
            for patch in tokens.chunks_exact(dim) {
                if index % BANK_STRIDE == 0 {
                    columns.extend_from_slice(patch);
                    owners.push(owner);
                }
                index += 1;
            }
        }
        let patches = DMatrix::from_vec(dim, owners.len(), columns);
        let squared_norms = patches.column_iter().map(|c| c.norm_squared()).collect();
        Bank { patches, squared_norms, owners }
    }

    /// Each patch's distance to its nearest bank patch that is not from
    /// image `own` (a training negative's index in the bank; None for
    /// other images). Infinite when the bank holds no other image.
    pub fn anomalies(&self, tokens: &[f32], own: Option<usize>) -> Vec<f32> {
        let dim = self.patches.nrows();
        let queries = DMatrix::from_row_slice(tokens.len() / dim, dim, tokens);
        let dots = &queries * &self.patches;
        queries
            .row_iter()
            .zip(dots.row_iter())
            .map(|(query, dots)| {
                let query_norm = query.norm_squared();
                dots.iter()
                    .zip(&self.squared_norms)
                    .zip(&self.owners)
                    .filter(|(_, &owner)| Some(owner) != own)
                    .map(|((dot, norm), _)| (query_norm + norm - 2.0 * dot).max(0.0))
                    .fold(f32::INFINITY, f32::min)
                    .sqrt()
            })
            .collect()
    }
}

/// The indices of the `k` patches with the largest anomalies, largest
/// first (all of them when there are fewer).
pub fn top_patches(anomalies: &[f32], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..anomalies.len()).collect();
    order.sort_by(|&a, &b| anomalies[b].total_cmp(&anomalies[a]));
    order.truncate(k);
    order
}

/// The mean of the patch tokens (`dim` values each) at `patches`.
pub fn region_mean(tokens: &[f32], dim: usize, patches: &[usize]) -> Vec<f32> {
    let mut mean = vec![0.0f64; dim];
    for &p in patches {
        for (m, &v) in mean.iter_mut().zip(&tokens[p * dim..(p + 1) * dim]) {
            *m += v as f64 / patches.len() as f64;
        }
    }
    mean.into_iter().map(|v| v as f32).collect()
}

/// A real image's anomaly region: the patches it pools (row-major
/// indices on the patch grid, most anomalous first) and their mean token.
#[derive(Clone, Debug, PartialEq)]
pub struct Region {
    /// The side of the patch grid.
    pub grid: usize,
    /// The pooled patches.
    pub patches: Vec<usize>,
    /// The mean of their tokens: the image's feature.
    pub feature: Vec<f32>,
}

/// One surface's real images: its training negatives (the bank) and every
/// other real image.
pub struct SurfaceReals<'a> {
    /// The training negatives.
    pub negatives: Vec<&'a Path>,
    /// The other real images.
    pub others: Vec<&'a Path>,
}

/// Each base's anomaly region of every real image of each surface (the
/// bases share one model file, run once per image).
pub fn real_regions(bases: &[&str], surfaces: &[SurfaceReals], quiet: bool) -> Result<Vec<BTreeMap<PathBuf, Region>>> {
    let Some((manifests, set)) = shared_run(bases, "anomaly", quiet)? else { return Ok(Vec::new()) };
    let first = &manifests[0];
    let mut out = vec![BTreeMap::new(); bases.len()];
    let total = surfaces.iter().map(|s| s.negatives.len() + s.others.len()).sum();
    if !quiet {
        eprintln!("anomaly regions of {total} real images with {}", bases.join(", "));
    }
    let bar = progress::bar(total, "anomaly regions", quiet);
    for surface in surfaces {
        // Each base's patch tokens of every real image of the surface: (patch count x dim) values.
        let tokens = |paths: &[&Path]| -> Result<Vec<Vec<Vec<f32>>>> {
            parallel_map(paths, |path| -> Result<Vec<Vec<f32>>> {
                let seen = Seen::of(&set, first, path)?;
                bar.inc(1);
                seen.tokens.into_iter().map(|(values, shape)| patch_tokens(values, &shape)).collect::<Result<_>>()
            })
            .into_iter()
            .collect()
        };
        let negatives = tokens(&surface.negatives)?;
        let others = tokens(&surface.others)?;
        for (b, (map, manifest)) in out.iter_mut().zip(&manifests).enumerate() {
            let dim = manifest.output.dim;
            let bank_tokens: Vec<&[f32]> = negatives.iter().map(|t| t[b].as_slice()).collect();
            let bank = Bank::new(&bank_tokens, dim);
            let images = surface.negatives.iter().zip(&negatives).enumerate().map(|(i, (p, t))| (*p, t, Some(i)));
            let images: Vec<_> = images.chain(surface.others.iter().zip(&others).map(|(p, t)| (*p, t, None))).collect();
            let features = parallel_map(&images, |&(path, tokens, own)| {
                let patches = top_patches(&bank.anomalies(&tokens[b], own), TOP_PATCHES);
                let feature = region_mean(&tokens[b], dim, &patches);
                if feature.iter().any(|v| !v.is_finite()) {
                    bail!("{}: non-finite anomaly-region feature with {}", path.display(), manifest.name);
                }
                Ok((path.to_path_buf(), Region { grid: (tokens[b].len() / dim).isqrt(), patches, feature }))
            });
            for region in features {
                let (path, region) = region?;
                map.insert(path, region);
            }
        }
    }
    bar.finish_and_clear();
    Ok(out)
}

/// How well the anomaly regions of the drawn real positives of one surface
/// find their defects, whose place is known from the tile they were drawn
/// on (photographed defects have no such tile).
#[derive(Clone, Debug, PartialEq)]
pub struct RegionCheck {
    /// Real positives checked.
    pub positives: usize,
    /// Mean share of a region's patches that the defect changed.
    pub precision: f64,
    /// Mean share of the defect's patches that the region holds.
    pub recall: f64,
    /// Mean share of all patches that the defect changed: a region placed
    /// at random has this precision.
    pub chance: f64,
}

/// [`RegionCheck`] of `regions` (real positive -> its region) against the
/// tiles the positives were drawn on, through `manifest`'s preprocessing.
/// None when no positive has its tile.
pub fn check_regions(
    regions: &BTreeMap<PathBuf, Region>,
    sources: &BTreeMap<PathBuf, image::GrayImage>,
    manifest: &Manifest,
) -> Result<Option<RegionCheck>> {
    let tensor = |image: &image::RgbImage| to_tensor(image, &manifest.preprocess);
    let side = manifest.preprocess.crop as usize;
    let mut shares = Vec::new();
    for (path, source) in sources {
        let Some(region) = regions.get(path) else { continue };
        let drawn = tensor(&load_rgb(path, &read_image_file(path)?)?);
        let clean = tensor(&image::DynamicImage::ImageLuma8(source.clone()).into_rgb8());
        let changed: Vec<bool> = patch_change(&clean, &drawn, side, region.grid).iter().map(|&c| c > 0.0).collect();
        let defect = changed.iter().filter(|&&c| c).count();
        let hits = region.patches.iter().filter(|&&p| changed[p]).count();
        shares.push((
            hits as f64 / region.patches.len() as f64,
            if defect == 0 { 0.0 } else { hits as f64 / defect as f64 },
            defect as f64 / changed.len() as f64,
        ));
    }
    let n = shares.len() as f64;
    Ok((!shares.is_empty()).then(|| RegionCheck {
        positives: shares.len(),
        precision: shares.iter().map(|s| s.0).sum::<f64>() / n,
        recall: shares.iter().map(|s| s.1).sum::<f64>() / n,
        chance: shares.iter().map(|s| s.2).sum::<f64>() / n,
    }))
}

/// The patch tokens of a [1, T, C] token output, the class token dropped.
fn patch_tokens(mut values: Vec<f32>, shape: &[usize]) -> Result<Vec<f32>> {
    let grid = token_grid(shape).with_context(|| format!("output of shape {shape:?} is not a patch token sequence"))?;
    let first = shape[1] - grid * grid;
    values.drain(..first * shape[2]);
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_far_from_every_other_images_patches_leads_the_region() {
        // Two negatives of four 2-d patches; the bank keeps every BANK_STRIDE-th patch overall.
        let a: Vec<f32> = (0..4).flat_map(|i| [i as f32, 0.0]).collect();
        let b: Vec<f32> = (0..4).flat_map(|i| [0.0, i as f32]).collect();
        let stride_kept = Bank::new(&[&a, &b], 2);
        assert_eq!(stride_kept.owners, vec![0usize; 8usize.div_ceil(BANK_STRIDE)]);
        // A query patch at (3, 4) is 5 from the kept (0, 0) patch of image 0.
        assert_eq!(stride_kept.anomalies(&[3.0, 4.0], None), vec![5.0]);
        // Image 0's own patches are never its neighbours: with no other image it is infinitely far.
        assert_eq!(stride_kept.anomalies(&[3.0, 4.0], Some(0)), vec![f32::INFINITY]);
        // The region is the k largest anomalies' patches, and its feature their tokens' mean.
        let tokens = [1.0, 1.0, 9.0, 9.0, 3.0, 3.0];
        assert_eq!(top_patches(&[0.1, 5.0, 2.0], 2), vec![1, 2]);
        assert_eq!(top_patches(&[0.1, 5.0, 2.0], 9), vec![1, 2, 0]);
        assert_eq!(region_mean(&tokens, 2, &[1, 2]), vec![6.0, 6.0]);
        assert_eq!(region_mean(&tokens, 2, &[1, 2, 0]), vec![13.0 / 3.0, 13.0 / 3.0]);
        // The class token is dropped.
        assert_eq!(
            patch_tokens(vec![7.0, 7.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 9.0], &[1, 5, 2]).unwrap(),
            vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 9.0]
        );
    }

    #[test]
    fn a_region_on_the_drawn_defect_is_precise_and_one_elsewhere_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let clean = image::GrayImage::from_pixel(128, 128, image::Luma([100]));
        let mut drawn = clean.clone();
        // A bright block in the top-left corner of the tile.
        for (x, y, pixel) in drawn.enumerate_pixels_mut() {
            if x < 32 && y < 32 {
                *pixel = image::Luma([255]);
            }
        }
        let path = dir.path().join("positive.png");
        drawn.save(&path).unwrap();
        let manifest = Manifest::resolve("vit-s14-l6-patchmean").unwrap();
        let sources = BTreeMap::from([(path.clone(), clean)]);
        let check = |patches: Vec<usize>| {
            let regions = BTreeMap::from([(path.clone(), Region { grid: 16, patches, feature: Vec::new() })]);
            check_regions(&regions, &sources, &manifest).unwrap().unwrap()
        };
        let on = check(vec![0, 1, 16, 17]);
        assert_eq!((on.positives, on.precision), (1, 1.0));
        // The block covers a corner of the 224 x 224 crop: a few of its 256 patches.
        assert!(on.chance > 4.0 / 256.0 && on.chance < 0.15, "{on:?}");
        assert!((on.recall - 4.0 / (on.chance * 256.0)).abs() < 1e-9, "{on:?}");
        let off = check(vec![255, 254]);
        assert_eq!((off.precision, off.recall), (0.0, 0.0));
        // No positive with its tile: nothing to check.
        assert_eq!(check_regions(&BTreeMap::new(), &sources, &manifest).unwrap(), None);
    }
}
