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

impl CacheChoice {
    /// The choice the CLIs' `--cache DIR` and `--no-cache` flags make:
    /// off, the given folder, or the default root.
    pub fn from_flags(cache: Option<PathBuf>, no_cache: bool) -> CacheChoice {
        match (cache, no_cache) {
            (_, true) => CacheChoice::Off,
            (Some(dir), false) => CacheChoice::At(dir),
            (None, false) => CacheChoice::At(spanwatch_embed::EmbeddingCache::default_root()),
        }
    }
}

/// A loaded model with its cache.
pub struct EmbeddingSession {
    embedder: Embedder,
    cache: Option<EmbeddingCache>,
    quiet: bool,
}

impl EmbeddingSession {
    /// Loads the model named by `model` (name or manifest path), making it
    /// first from its recipe when it is not there yet.
    pub fn open(model: &str, cache: &CacheChoice, quiet: bool) -> Result<EmbeddingSession> {
        let manifest = Manifest::resolve(model)?;
        spanwatch_embed::provision::ensure_model(&manifest, quiet)?;
        let embedder = Embedder::load(&manifest)?;
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

    /// Embeds every path once, on all cores. Fails after trying them all,
    /// listing every file that could not be embedded and why.
    pub fn embed_all<'a>(&self, paths: impl IntoIterator<Item = &'a Path>) -> Result<BTreeMap<PathBuf, Vec<f32>>> {
        let unique: Vec<&Path> = paths.into_iter().collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        let bar = progress::bar(unique.len(), "embedding", self.quiet);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(unique.len().max(1));
        let chunk = unique.len().div_ceil(threads).max(1);
        let results: Vec<(PathBuf, Result<Vec<f32>, String>)> = std::thread::scope(|scope| {
            let workers: Vec<_> = unique
                .chunks(chunk)
                .map(|part| {
                    let bar = bar.clone();
                    scope.spawn(move || {
                        part.iter()
                            .map(|&path| {
                                let result = self.embedder.embed_file(path, self.cache.as_ref()).map(|(e, _)| e).map_err(|e| e.to_string());
                                bar.inc(1);
                                (path.to_path_buf(), result)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers.into_iter().flat_map(|w| w.join().expect("embedding worker panicked")).collect()
        });
        bar.finish_and_clear();
        let mut embeddings = BTreeMap::new();
        let mut failures = Vec::new();
        for (path, result) in results {
            match result {
                Ok(embedding) => {
                    embeddings.insert(path, embedding);
                }
                Err(error) => failures.push(error),
            }
        }
        if !failures.is_empty() {
            bail!("{} image(s) could not be embedded:\n  {}", failures.len(), failures.join("\n  "));
        }
        Ok(embeddings)
    }
}
