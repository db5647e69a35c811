//! Embedding the images of a dataset with the shared embedder and cache.

use crate::progress;
use anyhow::{bail, Result};
use spanwatch_embed::{Embedder, EmbeddingCache, Manifest};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Which model embedded a set of vectors.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ModelInfo {
    /// Manifest name.
    pub name: String,
    /// sha256 of the ONNX file, hex.
    pub sha256: String,
    /// Embedding dimension.
    pub dim: usize,
}

/// Where embeddings are cached, if anywhere.
#[derive(Clone, Debug)]
pub enum CacheChoice {
    /// No cache.
    Off,
    /// A cache under this root.
    At(PathBuf),
}

/// A loaded model with its cache.
pub struct EmbeddingSession {
    embedder: Embedder,
    cache: Option<EmbeddingCache>,
    quiet: bool,
}

impl EmbeddingSession {
    /// Loads the model named by `model` (name or manifest path).
    pub fn open(model: &str, cache: &CacheChoice, quiet: bool) -> Result<EmbeddingSession> {
        let embedder = Embedder::load(&Manifest::resolve(model)?)?;
        let cache = match cache {
            CacheChoice::Off => None,
            CacheChoice::At(root) => Some(EmbeddingCache::new(root, embedder.sha256(), embedder.dim())),
        };
        Ok(EmbeddingSession { embedder, cache, quiet })
    }

    /// The model's identity.
    pub fn model(&self) -> ModelInfo {
        ModelInfo { name: self.embedder.manifest().name.clone(), sha256: hex::encode(self.embedder.sha256()), dim: self.embedder.dim() }
    }

    /// Embeds every path once. Fails after trying them all, listing every
    /// file that could not be embedded and why.
    pub fn embed_all<'a>(&self, paths: impl IntoIterator<Item = &'a Path>) -> Result<BTreeMap<PathBuf, Vec<f32>>> {
        let unique: std::collections::BTreeSet<&Path> = paths.into_iter().collect();
        let bar = progress::bar(unique.len(), "embedding", self.quiet);
        let mut embeddings = BTreeMap::new();
        let mut failures = Vec::new();
        for path in unique {
            match self.embedder.embed_file(path, self.cache.as_ref()) {
                Ok((embedding, _)) => {
                    embeddings.insert(path.to_path_buf(), embedding);
                }
                Err(error) => failures.push(error.to_string()),
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        if !failures.is_empty() {
            bail!("{} image(s) could not be embedded:\n  {}", failures.len(), failures.join("\n  "));
        }
        Ok(embeddings)
    }
}
