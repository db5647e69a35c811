//! Running an embedding model with tract.

use crate::cache::EmbeddingCache;
use crate::manifest::Manifest;
use crate::{preprocess, sha256, EmbedError};
use std::path::Path;
use std::sync::Arc;
use tract_onnx::prelude::*;

type Plan = Arc<TypedRunnableModel>;

/// A loaded, optimized embedding model.
pub struct Embedder {
    manifest: Manifest,
    identity: [u8; 32],
    plan: Plan,
}

/// Where an embedding came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Computed by the model now.
    Computed,
    /// Read from the embedding cache.
    Cached,
}

impl Embedder {
    /// Loads the manifest's ONNX file, checks its sha256, and prepares tract's
    /// optimized plan with the manifest's output as the only output.
    pub fn load(manifest: &Manifest) -> Result<Embedder, EmbedError> {
        let path = crate::provision::onnx_path(manifest);
        if !path.is_file() {
            let hint = match &manifest.fetch {
                Some(recipe) => format!(
                    "the spanwatch CLI makes it on first use (any command with --model {}), or run {} --out {}",
                    manifest.name,
                    manifest.dir.join(&recipe.script).display(),
                    path.display()
                ),
                None => format!("the manifest in {} names it", manifest.dir.display()),
            };
            return Err(EmbedError::ModelMissing { path, hint });
        }
        let bytes = std::fs::read(&path).map_err(|error| EmbedError::Io { path: path.clone(), error })?;
        let digest = sha256(&bytes);
        if hex::encode(digest) != manifest.sha256.to_lowercase() {
            return Err(EmbedError::ModelChecksum { path, expected: manifest.sha256.clone(), actual: hex::encode(digest) });
        }
        let plan = build_plan(&bytes, manifest).map_err(|e| EmbedError::Model { path: path.clone(), reason: format!("{e:#}") })?;
        Ok(Embedder { manifest: manifest.clone(), identity: manifest.embedding_identity(&digest), plan })
    }

    /// The model's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The identity of its embeddings: the ONNX file's sha256, or for a
    /// pooled output the hash of that, the output and the pooling
    /// ([`Manifest::embedding_identity`]). Caches and bundles record it.
    pub fn sha256(&self) -> &[u8; 32] {
        &self.identity
    }

    /// tract's optimized plan of the model (for profiling it node by node).
    pub fn plan(&self) -> &Arc<TypedRunnableModel> {
        &self.plan
    }

    /// Embedding dimension d.
    pub fn dim(&self) -> usize {
        self.manifest.output.dim
    }

    /// Runs the model on a preprocessed CHW tensor (3 x crop x crop values).
    /// `path` only names the source in errors.
    pub fn embed_tensor(&self, path: &Path, chw: Vec<f32>) -> Result<Vec<f32>, EmbedError> {
        let side = self.manifest.preprocess.crop as usize;
        let model_error = |e: TractError| EmbedError::Model {
            path: crate::provision::onnx_path(&self.manifest),
            reason: format!("{}: {e:#}", path.display()),
        };
        let input = Tensor::from_shape(&[1, 3, side, side], &chw).map_err(model_error)?;
        let outputs = self.plan.run(tvec!(input.into())).map_err(model_error)?;
        let view = outputs[0].to_plain_array_view::<f32>().map_err(model_error)?;
        let values: Vec<f32> = view.iter().copied().collect();
        let embedding = match self.manifest.output.pooling {
            None => values,
            Some(pooling) => pooling.apply(&values, view.shape(), self.dim()).ok_or_else(|| EmbedError::Model {
                path: crate::provision::onnx_path(&self.manifest),
                reason: format!(
                    "output {:?} has shape {:?}, not [1, {d}, H, W] or [1, T, {d}] to pool",
                    self.manifest.output.name,
                    view.shape(),
                    d = self.dim()
                ),
            })?,
        };
        if embedding.len() != self.dim() {
            return Err(EmbedError::Model {
                path: crate::provision::onnx_path(&self.manifest),
                reason: format!("output {:?} has {} values, the manifest says {}", self.manifest.output.name, embedding.len(), self.dim()),
            });
        }
        let bad = embedding.iter().filter(|v| !v.is_finite()).count();
        if bad > 0 {
            return Err(EmbedError::NonFinite { path: path.into(), bad });
        }
        Ok(embedding)
    }

    /// Embeds an image from the bytes of its file (`path` names it in errors).
    pub fn embed_bytes(&self, path: &Path, bytes: &[u8]) -> Result<Vec<f32>, EmbedError> {
        let image = preprocess::load_rgb(path, bytes)?;
        self.embed_tensor(path, preprocess::to_tensor(&image, &self.manifest.preprocess))
    }

    /// Embeds an image file, reading and filling `cache` when given (the
    /// file's content is hashed only then, as the cache's key). The file is
    /// read once ([`preprocess::read_image_file`]: bounded, regular files only).
    pub fn embed_file(&self, path: &Path, cache: Option<&EmbeddingCache>) -> Result<(Vec<f32>, Origin), EmbedError> {
        if cache.is_some() {
            return self.embed_file_with_content(path, cache).map(|(embedding, _, origin)| (embedding, origin));
        }
        let bytes = preprocess::read_image_file(path)?;
        Ok((self.embed_bytes(path, &bytes)?, Origin::Computed))
    }

    /// Embeds an image file and returns the sha256 of the very bytes that
    /// were embedded (so a file rewritten meanwhile cannot pair one file's
    /// hash with another's embedding), reading and filling `cache` when given.
    pub fn embed_file_with_content(&self, path: &Path, cache: Option<&EmbeddingCache>) -> Result<(Vec<f32>, [u8; 32], Origin), EmbedError> {
        let bytes = preprocess::read_image_file(path)?;
        let content = sha256(&bytes);
        if let Some(hit) = cache.and_then(|cache| cache.get(&content)) {
            return Ok((hit, content, Origin::Cached));
        }
        let embedding = self.embed_bytes(path, &bytes)?;
        if let Some(cache) = cache {
            // A cache that cannot be written costs speed next time, nothing else.
            let _ = cache.put(&content, &embedding);
        }
        Ok((embedding, content, Origin::Computed))
    }
}

fn build_plan(onnx: &[u8], manifest: &Manifest) -> TractResult<Plan> {
    let mut model = tract_onnx::onnx().model_for_read(&mut std::io::Cursor::new(onnx))?;
    let input = model
        .input_outlets()?
        .iter()
        .position(|o| model.node(o.node).name == manifest.input.name)
        .ok_or_else(|| TractError::msg(format!("no input named {:?}", manifest.input.name)))?;
    model.set_input_fact(input, f32::fact(manifest.input.shape).into())?;
    model.select_outputs_by_name([manifest.output.name.as_str()])?;
    model.into_optimized()?.into_runnable()
}
