//! Local pair differences (issue 26): a pair's change read from a layer's
//! patch tokens where its pixels changed, instead of from the whole image.
//!
//! Pairs are pixel-aligned, so where a generator changed the image is known:
//! the absolute difference of the two preprocessed input tensors, summed
//! over each patch of the model's grid (14 x 14 pixels for ViT-S/14), weighs
//! that patch. A pair's local difference is the weighted mean over patches
//! of (synthetic token - source token); a global pooling would average the
//! changes that attention spreads to untouched patches in with the defect's
//! own. Pixel noise and brightness changes touch every patch, so their
//! local difference is the plain mean of the patches' changes.
//!
//! The probe cannot be trained on local differences: a real positive has
//! no source, and where its defect lies is not labelled. It is trained on
//! the same layer's patch tokens pooled over the image (the candidate's
//! base manifest), whose pair difference is the unweighted mean of the
//! same per-patch changes: the two live in one space. The study names such
//! a candidate `<base manifest>+local`; a synthetic image's embedding is its
//! source's pooled embedding plus the local difference, so the span scores
//! see exactly the local differences. Only the direction of a local
//! difference is comparable with the probe (a change confined to k of 256
//! patches is about 256 / k times its global mean), so the span scores
//! (cone DS, which is scale-free) are its meaningful ones.

use crate::parallel_map;
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use spanwatch_calibrate::embedding::CacheChoice;
use spanwatch_calibrate::progress;
use spanwatch_embed::model::RawOutput;
use spanwatch_embed::preprocess::{load_rgb, read_image_file, to_tensor};
use spanwatch_embed::{EmbedderSet, EmbeddingCache, Manifest};
use std::collections::btree_map::{BTreeMap, Entry};
use std::path::{Path, PathBuf};

/// The suffix of a study model name that scores its base manifest's layer
/// by local pair differences.
pub const LOCAL_SUFFIX: &str = "+local";

/// The suffix of a study model name that scores its base manifest's layer
/// by local pair differences against a probe on each real image's most
/// anomalous patches.
pub const ANOMALY_SUFFIX: &str = "+anomaly";

/// Versions the cached local differences (bump when their definition changes).
const CACHE_TAG: &[u8] = b"spanwatch local pair difference v1";

/// How a local candidate embeds the real images, which have no source.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RealFeature {
    /// The base manifest's pooling of the whole image (`+local`).
    Pooled,
    /// The mean of the most anomalous patches (`+anomaly`, see the anomaly module).
    AnomalyRegion,
}

/// The base manifest a local candidate's name builds on and how its real
/// images are embedded, or None when the name is an image feature.
pub fn base_of(model: &str) -> Option<(&str, RealFeature)> {
    model
        .strip_suffix(LOCAL_SUFFIX)
        .map(|base| (base, RealFeature::Pooled))
        .or_else(|| model.strip_suffix(ANOMALY_SUFFIX).map(|base| (base, RealFeature::AnomalyRegion)))
}

/// How much each patch of a `grid` x `grid` grid changed between two
/// preprocessed CHW tensors of `side` x `side` pixels: the sum of absolute
/// differences over the patch's pixels and channels, patches in row-major
/// order (the order of a ViT's patch tokens).
pub fn patch_change(source: &[f32], synthetic: &[f32], side: usize, grid: usize) -> Vec<f64> {
    let patch = side / grid;
    let mut change = vec![0.0; grid * grid];
    for (i, (a, b)) in source.iter().zip(synthetic).enumerate() {
        let (y, x) = ((i / side) % side, i % side);
        change[(y / patch).min(grid - 1) * grid + (x / patch).min(grid - 1)] += (a - b).abs() as f64;
    }
    change
}

/// The patch grid's side of a token output of shape [1, T, C]: T is g * g
/// patch tokens, or a class token and g * g patch tokens.
pub fn token_grid(shape: &[usize]) -> Option<usize> {
    let &[1, t, _] = shape else { return None };
    let g = (t as f64).sqrt().floor() as usize;
    (g > 0 && (t == g * g || t == g * g + 1)).then_some(g)
}

/// The weighted mean over patches of the change of their tokens, weights
/// `weights` (one per patch, row-major); tokens laid out [1, T, C] as
/// [`token_grid`] reads them. All zeros when no patch changed (a copy).
/// None when the shapes disagree.
pub fn local_difference(source: &[f32], synthetic: &[f32], shape: &[usize], weights: &[f64]) -> Option<Vec<f32>> {
    let grid = token_grid(shape)?;
    let (t, c) = (shape[1], shape[2]);
    if source.len() != t * c || synthetic.len() != t * c || weights.len() != grid * grid {
        return None;
    }
    let first = t - grid * grid;
    let total: f64 = weights.iter().sum();
    let mut difference = vec![0.0f64; c];
    if total > 0.0 {
        for (p, &weight) in weights.iter().enumerate().filter(|(_, w)| **w > 0.0) {
            let at = (first + p) * c;
            for (d, (a, b)) in difference.iter_mut().zip(source[at..at + c].iter().zip(&synthetic[at..at + c])) {
                *d += weight / total * (*b as f64 - *a as f64);
            }
        }
    }
    Some(difference.into_iter().map(|v| v as f32).collect())
}

/// One image as the model saw it: its input tensor and each base's raw token output.
pub(crate) struct Seen {
    pub(crate) tensor: Vec<f32>,
    pub(crate) tokens: Vec<RawOutput>,
}

impl Seen {
    /// Runs `set` (whose first manifest is `manifest`) once on the image at `path`.
    pub(crate) fn of(set: &EmbedderSet, manifest: &Manifest, path: &Path) -> Result<Seen> {
        let bytes = read_image_file(path)?;
        let tensor = to_tensor(&load_rgb(path, &bytes)?, &manifest.preprocess);
        let tokens = set.raw_outputs(path, tensor.clone())?;
        Ok(Seen { tensor, tokens })
    }
}

/// The manifests of `bases` and their model loaded to serve all of them in
/// one run per image (None for no bases). `kind` names the candidates in
/// the error when the bases are outputs of different model files.
pub(crate) fn shared_run(bases: &[&str], kind: &str, quiet: bool) -> Result<Option<(Vec<Manifest>, EmbedderSet)>> {
    let manifests = bases.iter().map(|b| Manifest::resolve(b)).collect::<Result<Vec<_>, _>>()?;
    let Some(first) = manifests.first() else { return Ok(None) };
    if let Some(other) = manifests.iter().find(|m| !EmbedderSet::shares_run(m, first)) {
        bail!("{kind} candidates {} and {} do not share one model file: name them in separate runs", first.name, other.name);
    }
    spanwatch_embed::provision::ensure_model(first, quiet)?;
    let set = EmbedderSet::load(&manifests)?;
    Ok(Some((manifests, set)))
}

/// Each base's local difference of every (synthetic, source) pair, keyed by
/// the synthetic image's path (a copy, whose two paths are one, gets
/// zeros). The bases (manifest names whose outputs are token sequences)
/// must share one model file, run once per image; pairs are grouped by
/// source, so each source runs once. Differences are cached under the
/// cache's root, keyed by both images' contents.
pub fn pair_differences(
    bases: &[&str],
    pairs: &[(&Path, &Path)],
    cache: &CacheChoice,
    quiet: bool,
) -> Result<Vec<BTreeMap<PathBuf, Vec<f32>>>> {
    let Some((manifests, set)) = shared_run(bases, "local", quiet)? else { return Ok(Vec::new()) };
    let first = &manifests[0];
    let dims: Vec<usize> = manifests.iter().map(|m| m.output.dim).collect();
    let caches: Option<Vec<EmbeddingCache>> = match cache {
        CacheChoice::Off => None,
        CacheChoice::At(root) => Some(
            set.identities()
                .zip(&dims)
                .map(|(identity, &dim)| {
                    EmbeddingCache::open(root, &Sha256::new().chain_update(identity).chain_update(CACHE_TAG).finalize().into(), dim)
                })
                .collect::<Result<_, _>>()?,
        ),
    };
    let mut out = vec![BTreeMap::new(); bases.len()];
    // Per source, its synthetic images not in the cache, with their cache keys.
    let mut by_source: BTreeMap<&Path, Vec<(&Path, [u8; 32])>> = BTreeMap::new();
    // Generators that share images (the mixtures) list a pair more than once.
    let unique: std::collections::BTreeSet<(&Path, &Path)> = pairs.iter().copied().collect();
    let content = |p: &Path| -> Result<[u8; 32]> { Ok(spanwatch_embed::sha256(&read_image_file(p)?)) };
    // A source's contents, hashed once for all of its pairs.
    let mut source_contents: BTreeMap<&Path, [u8; 32]> = BTreeMap::new();
    for (synthetic, source) in unique {
        if synthetic == source {
            for (map, &dim) in out.iter_mut().zip(&dims) {
                map.insert(synthetic.to_path_buf(), vec![0.0; dim]);
            }
            continue;
        }
        let source_content = match source_contents.entry(source) {
            Entry::Occupied(known) => *known.get(),
            Entry::Vacant(new) => *new.insert(content(source)?),
        };
        let key: [u8; 32] = Sha256::new().chain_update(source_content).chain_update(content(synthetic)?).finalize().into();
        match caches.as_ref().and_then(|caches| caches.iter().map(|c| c.get(&key)).collect::<Option<Vec<_>>>()) {
            Some(hits) => out.iter_mut().zip(hits).for_each(|(map, hit)| drop(map.insert(synthetic.to_path_buf(), hit))),
            None => by_source.entry(source).or_default().push((synthetic, key)),
        }
    }
    let sources: Vec<_> = by_source.into_iter().collect();
    if !quiet {
        eprintln!(
            "local differences of {} pairs with {} ({} sources)",
            sources.iter().map(|s| s.1.len()).sum::<usize>(),
            bases.join(", "),
            sources.len()
        );
    }
    let bar = progress::bar(sources.iter().map(|s| s.1.len()).sum(), "local differences", quiet);
    let computed = parallel_map(&sources, |(source, synthetics)| -> Result<Vec<(PathBuf, Vec<Vec<f32>>)>> {
        let before = Seen::of(&set, first, source)?;
        let side = first.preprocess.crop as usize;
        synthetics
            .iter()
            .map(|&(synthetic, key)| {
                let after = Seen::of(&set, first, synthetic)?;
                // The pixel change per patch, once per grid (the bases of one ViT share theirs).
                let mut weights: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
                let differences = before
                    .tokens
                    .iter()
                    .zip(&after.tokens)
                    .map(|((a, shape), (b, _))| {
                        let grid = token_grid(shape).with_context(|| format!("output of shape {shape:?} is not a patch token sequence"))?;
                        let weights = weights.entry(grid).or_insert_with(|| patch_change(&before.tensor, &after.tensor, side, grid));
                        let difference = local_difference(a, b, shape, weights).context("token outputs of different shapes")?;
                        if difference.iter().any(|v| !v.is_finite()) {
                            bail!("non-finite local difference");
                        }
                        Ok(difference)
                    })
                    .collect::<Result<Vec<_>>>()
                    .with_context(|| format!("local difference of {} against {}", synthetic.display(), source.display()))?;
                for (cache, difference) in caches.iter().flatten().zip(&differences) {
                    // A cache that cannot be written costs speed next time, nothing else.
                    let _ = cache.put(&key, difference);
                }
                bar.inc(1);
                Ok((synthetic.to_path_buf(), differences))
            })
            .collect()
    });
    bar.finish_and_clear();
    for per_source in computed {
        for (synthetic, differences) in per_source? {
            for (map, difference) in out.iter_mut().zip(differences) {
                map.insert(synthetic.clone(), difference);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_difference_weighs_each_patch_by_its_pixel_change() {
        // A 4 x 4 one-channel image on a 2 x 2 grid: only the top-right patch
        // changes, by 1 on one pixel and 3 on another.
        let source = vec![0.0f32; 16];
        let mut synthetic = source.clone();
        synthetic[2] = 1.0; // row 0, column 2
        synthetic[7] = -3.0; // row 1, column 3
        assert_eq!(patch_change(&source, &synthetic, 4, 2), vec![0.0, 4.0, 0.0, 0.0]);
        // Tokens [1, 5, 2]: a class token, then four patch tokens of two channels.
        let before = [9.0, 9.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0];
        let after = [0.0, 0.0, 5.0, 1.0, 2.0, 6.0, 3.0, 3.0, 4.0, 2.0];
        // Only patch 1 (tokens 2.0, 2.0 -> 2.0, 6.0) counts; the class token never does.
        assert_eq!(local_difference(&before, &after, &[1, 5, 2], &[0.0, 4.0, 0.0, 0.0]), Some(vec![0.0, 4.0]));
        // Weights 1 : 3 on patches 0 and 3: 0.25 * (4, 0) + 0.75 * (0, -2).
        assert_eq!(local_difference(&before, &after, &[1, 5, 2], &[1.0, 0.0, 0.0, 3.0]), Some(vec![1.0, -1.5]));
        // Equal weights are the patch mean's difference; no change gives zeros.
        let mean = local_difference(&before, &after, &[1, 5, 2], &[1.0; 4]).unwrap();
        assert_eq!(mean, vec![1.0, 0.5]);
        assert_eq!(local_difference(&before, &after, &[1, 5, 2], &[0.0; 4]), Some(vec![0.0, 0.0]));
        // Without a class token every token is a patch.
        assert_eq!(local_difference(&before[2..], &after[2..], &[1, 4, 2], &[0.0, 4.0, 0.0, 0.0]), Some(vec![0.0, 4.0]));
        // Shapes that are not a patch grid, or weights of another grid, are refused.
        assert_eq!(token_grid(&[1, 7, 2]), None);
        assert_eq!(token_grid(&[1, 2, 2, 2]), None);
        assert_eq!(local_difference(&before, &after, &[1, 5, 2], &[1.0; 9]), None);
        assert_eq!(base_of("vit-s14-l6-patchmean+local"), Some(("vit-s14-l6-patchmean", RealFeature::Pooled)));
        assert_eq!(base_of("vit-s14-l6-patchmean+anomaly"), Some(("vit-s14-l6-patchmean", RealFeature::AnomalyRegion)));
        assert_eq!(base_of("vit-s14"), None);
    }
}
