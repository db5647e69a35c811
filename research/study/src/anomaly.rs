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

use crate::local::{shared_run, token_grid, Seen};
use crate::parallel_map;
use anyhow::{bail, Context, Result};
use nalgebra::DMatrix;
use spanwatch_calibrate::progress;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The suffix of a study model name whose real images are pooled over
/// their most anomalous patches.
pub const ANOMALY_SUFFIX: &str = "+anomaly";

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

/// The mean of the `k` patch tokens (`dim` values each) with the largest
/// anomalies (all of them when there are fewer).
pub fn region_mean(tokens: &[f32], dim: usize, anomalies: &[f32], k: usize) -> Vec<f32> {
    let mut order: Vec<usize> = (0..anomalies.len()).collect();
    order.sort_by(|&a, &b| anomalies[b].total_cmp(&anomalies[a]));
    let top = &order[..k.min(order.len())];
    let mut mean = vec![0.0f64; dim];
    for &p in top {
        for (m, &v) in mean.iter_mut().zip(&tokens[p * dim..(p + 1) * dim]) {
            *m += v as f64 / top.len() as f64;
        }
    }
    mean.into_iter().map(|v| v as f32).collect()
}

/// One surface's real images: its training negatives (the bank) and every
/// other real image.
pub struct SurfaceReals<'a> {
    /// The training negatives.
    pub negatives: Vec<&'a Path>,
    /// The other real images.
    pub others: Vec<&'a Path>,
}

/// Each base's anomaly-region feature of every real image of each surface
/// (the bases share one model file, run once per image).
pub fn real_features(bases: &[&str], surfaces: &[SurfaceReals], quiet: bool) -> Result<Vec<BTreeMap<PathBuf, Vec<f32>>>> {
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
                let feature = region_mean(&tokens[b], dim, &bank.anomalies(&tokens[b], own), TOP_PATCHES);
                if feature.iter().any(|v| !v.is_finite()) {
                    bail!("{}: non-finite anomaly-region feature with {}", path.display(), manifest.name);
                }
                Ok((path.to_path_buf(), feature))
            });
            for feature in features {
                let (path, feature) = feature?;
                map.insert(path, feature);
            }
        }
    }
    bar.finish_and_clear();
    Ok(out)
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
        // The region mean takes the k largest anomalies' tokens.
        let tokens = [1.0, 1.0, 9.0, 9.0, 3.0, 3.0];
        assert_eq!(region_mean(&tokens, 2, &[0.1, 5.0, 2.0], 2), vec![6.0, 6.0]);
        assert_eq!(region_mean(&tokens, 2, &[0.1, 5.0, 2.0], 9), vec![13.0 / 3.0, 13.0 / 3.0]);
        // The class token is dropped.
        assert_eq!(
            patch_tokens(vec![7.0, 7.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 9.0], &[1, 5, 2]).unwrap(),
            vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 9.0]
        );
    }
}
