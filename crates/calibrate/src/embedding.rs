//! Embedding the images of a dataset: with the shared embedder and cache, or
//! by looking up embeddings computed elsewhere ([`crate::precomputed`]).

use crate::precomputed::{ModelInfo, Precomputed};
use crate::progress;
use anyhow::{bail, Result};
use spanwatch_embed::{Embedder, EmbedderSet, EmbeddingCache, Manifest};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where embeddings are cached, if anywhere.
#[derive(Clone, Debug)]
pub enum CacheChoice {
    /// No cache.
    Off,
    /// A cache under this root.
    At(PathBuf),
}

impl CacheChoice {
    /// No cache when `off`; else the cache under `dir`, or under the
    /// default root (`$SPANWATCH_CACHE` or `~/.cache/spanwatch`) when none
    /// is given.
    pub fn new(dir: Option<PathBuf>, off: bool) -> CacheChoice {
        if off {
            CacheChoice::Off
        } else {
            CacheChoice::At(dir.unwrap_or_else(EmbeddingCache::default_root))
        }
    }
}

/// Where a session's embeddings come from.
#[derive(Clone, Debug)]
pub enum EmbeddingSource {
    /// The model computes them, with this cache.
    Model(CacheChoice),
    /// `spanwatch embed` output folders (or folders of shards) hold them.
    Precomputed(Vec<PathBuf>),
}

/// How a session gets an image's embedding.
enum Backend {
    Model { embedder: Box<Embedder>, cache: Option<EmbeddingCache> },
    Precomputed(Precomputed),
}

/// A model's embeddings, computed or looked up.
pub struct EmbeddingSession {
    model: ModelInfo,
    backend: Backend,
    quiet: bool,
}

/// An embedding and the sha256 of the file bytes it was made from.
pub type Embedded = (Vec<f32>, [u8; 32]);

impl EmbeddingSession {
    /// Opens the model named by `model` (name or manifest path): loads it,
    /// making it first from its recipe when it is not there yet, or reads the
    /// precomputed embeddings after checking they are that model's.
    pub fn open(model: &str, source: &EmbeddingSource, quiet: bool) -> Result<EmbeddingSession> {
        let manifest = Manifest::resolve(model)?;
        let info = ModelInfo::of(&manifest)?;
        let backend = match source {
            EmbeddingSource::Model(cache) => {
                spanwatch_embed::provision::ensure_model(&manifest, quiet)?;
                let embedder = Box::new(Embedder::load(&manifest)?);
                let cache = match cache {
                    CacheChoice::Off => None,
                    CacheChoice::At(root) => Some(EmbeddingCache::open(root, embedder.sha256(), embedder.dim())?),
                };
                Backend::Model { embedder, cache }
            }
            EmbeddingSource::Precomputed(folders) => Backend::Precomputed(Precomputed::load(folders, &info)?),
        };
        Ok(EmbeddingSession { model: info, backend, quiet })
    }

    /// The model's identity.
    pub fn model(&self) -> ModelInfo {
        self.model.clone()
    }

    /// The embedding of one image and the sha256 of the very bytes it was
    /// made from (the file is read once), or why there is none.
    fn embed_one(&self, path: &Path) -> Result<Embedded, String> {
        match &self.backend {
            Backend::Model { embedder, cache } => {
                embedder.embed_file_with_content(path, cache.as_ref()).map(|(e, content, _)| (e, content)).map_err(|e| e.to_string())
            }
            Backend::Precomputed(precomputed) => {
                let bytes = spanwatch_embed::preprocess::read_image_file(path).map_err(|e| e.to_string())?;
                let content = spanwatch_embed::sha256(&bytes);
                let embedding = precomputed.get(&content).map(<[f32]>::to_vec).ok_or_else(|| {
                    format!(
                        "image {}: none of the {} embeddings in {} is of this file's contents (embed it with `spanwatch embed`)",
                        path.display(),
                        precomputed.len(),
                        precomputed.folders().iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
                    )
                })?;
                Ok((embedding, content))
            }
        }
    }

    /// Embeds every path once, on all cores (see [`Self::embed_all_with_content`]).
    pub fn embed_all<'a>(&self, paths: impl IntoIterator<Item = &'a Path>) -> Result<BTreeMap<PathBuf, Vec<f32>>> {
        Ok(self.embed_all_with_content(paths)?.into_iter().map(|(path, (embedding, _))| (path, embedding)).collect())
    }

    /// Embeds every path once, on all cores, with the sha256 of the bytes
    /// each embedding was made from. Fails after trying them all, listing
    /// every file that could not be embedded and why.
    pub fn embed_all_with_content<'a>(&self, paths: impl IntoIterator<Item = &'a Path>) -> Result<BTreeMap<PathBuf, Embedded>> {
        each_in_parallel(paths, self.quiet, |path| self.embed_one(path))
    }
}

/// Embeds every path with each of `models` (names or manifest paths), in
/// their order: models whose manifests share one ONNX file, input and
/// preprocessing (a model's inner tensors pooled several ways, as the
/// study's feature candidates are) are served by one run of the model per
/// image. Each model's embeddings are cached under its own identity, and
/// an image is run only when one of its group's caches lacks it.
pub fn embed_with_models<'a>(
    models: &[&str],
    cache: &CacheChoice,
    paths: impl IntoIterator<Item = &'a Path>,
    quiet: bool,
) -> Result<Vec<BTreeMap<PathBuf, Vec<f32>>>> {
    let paths: Vec<&Path> = paths.into_iter().collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let manifests = models.iter().map(|m| Manifest::resolve(m)).collect::<Result<Vec<_>, _>>()?;
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, manifest) in manifests.iter().enumerate() {
        match groups.iter_mut().find(|group| EmbedderSet::shares_run(&manifests[group[0]], manifest)) {
            Some(group) => group.push(i),
            None => groups.push(vec![i]),
        }
    }
    let mut out: Vec<BTreeMap<PathBuf, Vec<f32>>> = vec![BTreeMap::new(); models.len()];
    for group in groups {
        let members: Vec<Manifest> = group.iter().map(|&i| manifests[i].clone()).collect();
        spanwatch_embed::provision::ensure_model(&members[0], quiet)?;
        let set = EmbedderSet::load(&members)?;
        let caches = match cache {
            CacheChoice::Off => None,
            CacheChoice::At(root) => Some(
                set.identities()
                    .zip(&members)
                    .map(|(identity, m)| EmbeddingCache::open(root, identity, m.output.dim))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        if !quiet {
            let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
            eprintln!("embedding {} images with {} (one run per image)", paths.len(), names.join(", "));
        }
        let embedded = each_in_parallel(paths.iter().copied(), quiet, |path| {
            set.embed_file_with_content(path, caches.as_deref()).map(|(embeddings, _, _)| embeddings).map_err(|e| e.to_string())
        })?;
        for (path, embeddings) in embedded {
            for (&model, embedding) in group.iter().zip(embeddings) {
                out[model].insert(path.clone(), embedding);
            }
        }
    }
    Ok(out)
}

/// `embed(path)` for every distinct path, on all cores, with a progress bar
/// unless `quiet`. Fails after trying them all, listing every file that
/// could not be embedded and why.
fn each_in_parallel<'a, T: Send>(
    paths: impl IntoIterator<Item = &'a Path>,
    quiet: bool,
    embed: impl Fn(&Path) -> Result<T, String> + Sync,
) -> Result<BTreeMap<PathBuf, T>> {
    let unique: Vec<&Path> = paths.into_iter().collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let bar = progress::bar(unique.len(), "embedding", quiet);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(unique.len().max(1));
    let chunk = unique.len().div_ceil(threads).max(1);
    let embed = &embed;
    let results: Vec<(PathBuf, Result<T, String>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = unique
            .chunks(chunk)
            .map(|part| {
                let bar = bar.clone();
                scope.spawn(move || {
                    part.iter()
                        .map(|&path| {
                            let result = embed(path);
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
