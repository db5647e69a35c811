//! Arrays from Python as a dataset: each row gets a name (`negatives[3]`,
//! `synthetics[0]`) that stands for an image path, so the calibration
//! library's pipeline, its checks and its messages serve arrays unchanged.

use anyhow::{bail, Result};
use spanwatch_calibrate::dataset::{Dataset, Generator, Pair};
use spanwatch_calibrate::precomputed::ModelInfo;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The name of the synthetic set an array call scores.
pub const SET: &str = "synthetic";

/// The rows of `bytes` (float32, native byte order, `dim` per row).
pub fn rows(what: &str, bytes: &[u8], dim: usize) -> Result<Vec<Vec<f32>>> {
    if dim == 0 || !bytes.len().is_multiple_of(4 * dim) {
        bail!("{what}: {} bytes are not rows of {dim} float32 values", bytes.len());
    }
    Ok(bytes.chunks_exact(4 * dim).map(|row| row.chunks_exact(4).map(|v| f32::from_ne_bytes([v[0], v[1], v[2], v[3]])).collect()).collect())
}

/// The dataset, model and embeddings of one synthetic set given as arrays:
/// `sources[i]` is the normal image `synthetics[i]` was made from.
pub fn dataset(
    negatives: &[u8],
    positives: &[u8],
    sources: &[u8],
    synthetics: &[u8],
    dim: usize,
) -> Result<(Dataset, ModelInfo, BTreeMap<PathBuf, Vec<f32>>)> {
    let mut embeddings = BTreeMap::new();
    let mut named = |what: &str, bytes: &[u8]| -> Result<Vec<PathBuf>> {
        Ok(rows(what, bytes, dim)?
            .into_iter()
            .enumerate()
            .map(|(i, row)| {
                let name = PathBuf::from(format!("{what}[{i}]"));
                embeddings.insert(name.clone(), row);
                name
            })
            .collect())
    };
    let (negatives, positives) = (named("negatives", negatives)?, named("positives", positives)?);
    let (sources, synthetics) = (named("sources", sources)?, named("synthetics", synthetics)?);
    if sources.len() != synthetics.len() || synthetics.is_empty() {
        bail!(
            "{} sources and {} synthetics: each synthetic row needs the row of its source, and there must be at least one",
            sources.len(),
            synthetics.len()
        );
    }
    let pairs = synthetics.into_iter().zip(sources).map(|(synthetic, source)| Pair { synthetic, source }).collect();
    let dataset = Dataset {
        root: PathBuf::from("arrays"),
        negatives,
        positives,
        generators: vec![Generator { name: SET.into(), pairs, skipped: Vec::new() }],
    };
    // Embeddings from outside carry no model identity.
    let model = ModelInfo { name: "arrays".into(), sha256: [0; 32], dim };
    Ok((dataset, model, embeddings))
}
