//! Concatenated features (issue 26): several outputs of one model run, side
//! by side in one vector, so a score sees a layer's global token and an
//! earlier layer's pooled patches together.
//!
//! The study names such a candidate by its manifests joined with commas
//! (`vit-s14,vit-s14-l6-patchmean`). Every part must share one run of one
//! model file (the layers of one network; an embedding is then what one
//! forward pass gives, and the candidate keeps one network for its LR
//! truth to differ from). Each part is embedded, cached and checked for
//! parity with onnxruntime as its own manifest; the concatenation adds no
//! arithmetic. The parts are not rescaled: the probe and the scores
//! standardize every dimension, so each part weighs by its dimension.

use anyhow::{bail, Result};
use spanwatch_embed::{EmbedderSet, Manifest};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What separates the parts of a concatenated candidate's name.
pub const SEPARATOR: char = ',';

/// The manifest names a concatenated candidate joins, or None when the
/// name is a single feature.
pub fn parts_of(model: &str) -> Option<Vec<&str>> {
    model.contains(SEPARATOR).then(|| model.split(SEPARATOR).map(str::trim).collect())
}

/// The parts' manifests, refused unless there are at least two, none is
/// empty or repeated, and all share one run of one model file.
pub fn manifests(model: &str) -> Result<Vec<Manifest>> {
    let parts = parts_of(model).unwrap_or_else(|| vec![model]);
    if parts.len() < 2 || parts.iter().any(|p| p.is_empty()) {
        bail!("{model:?} is not a concatenation: name two or more manifests joined by {SEPARATOR:?}");
    }
    if let Some(part) = parts.iter().enumerate().find_map(|(i, p)| parts[..i].contains(p).then_some(p)) {
        bail!("{model:?} names {part} twice");
    }
    let manifests = parts.iter().map(|p| Manifest::resolve(p)).collect::<Result<Vec<_>, _>>()?;
    if let Some(other) = manifests.iter().find(|m| !EmbedderSet::shares_run(m, &manifests[0])) {
        bail!(
            "{model:?}: {} and {} are not outputs of one model run; a concatenation joins layers of one network",
            manifests[0].name,
            other.name
        );
    }
    Ok(manifests)
}

/// Each image's parts joined in order; only images every part has.
pub fn concatenate(parts: &[&BTreeMap<PathBuf, Vec<f32>>]) -> BTreeMap<PathBuf, Vec<f32>> {
    let Some((first, rest)) = parts.split_first() else { return BTreeMap::new() };
    first
        .iter()
        .filter_map(|(path, head)| {
            let mut joined = head.clone();
            for part in rest {
                joined.extend_from_slice(part.get(path)?);
            }
            Some((path.clone(), joined))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_concatenation_joins_its_parts_in_order_for_the_images_all_have() {
        let (a, b) = (PathBuf::from("a.png"), PathBuf::from("b.png"));
        let first = BTreeMap::from([(a.clone(), vec![1.0, 2.0]), (b.clone(), vec![3.0, 4.0])]);
        let second = BTreeMap::from([(a.clone(), vec![5.0])]);
        assert_eq!(concatenate(&[&first, &second]), BTreeMap::from([(a.clone(), vec![1.0, 2.0, 5.0])]));
        assert_eq!(concatenate(&[&second, &first]), BTreeMap::from([(a, vec![5.0, 1.0, 2.0])]));
        assert_eq!(parts_of("vit-s14, vit-s14-l6-patchmean"), Some(vec!["vit-s14", "vit-s14-l6-patchmean"]));
        assert_eq!(parts_of("vit-s14"), None);
    }

    #[test]
    fn a_concatenation_of_two_networks_or_of_one_part_twice_is_refused() {
        let message = |name: &str| manifests(name).unwrap_err().to_string();
        assert!(
            message("efficientnet-lite0,vit-s14").contains("not outputs of one model run"),
            "{}",
            message("efficientnet-lite0,vit-s14")
        );
        assert!(message("vit-s14,vit-s14").contains("names vit-s14 twice"));
        assert!(message("vit-s14,").contains("not a concatenation"));
        let parts = manifests("vit-s14,vit-s14-l6-patchmean").unwrap();
        assert_eq!(parts.iter().map(|m| m.output.dim).sum::<usize>(), 768);
    }
}
