//! Running an embedding model with tract.

use crate::cache::EmbeddingCache;
use crate::manifest::{InputSpec, Manifest};
use crate::{preprocess, sha256, EmbedError};
use std::path::Path;
use std::sync::Arc;
use tract_onnx::prelude::*;

type Plan = Arc<TypedRunnableModel>;

/// An [`EmbedderSet`]'s embeddings of one file (one per manifest, in
/// order), the sha256 of the bytes embedded, and where they came from.
pub type SetEmbedded = (Vec<Vec<f32>>, [u8; 32], Origin);

/// A model output as it leaves the model: its values and its shape.
pub type RawOutput = (Vec<f32>, Vec<usize>);

/// A loaded, optimized embedding model.
pub struct Embedder(EmbedderSet);

/// Several embeddings of one ONNX file from one run of it per image: the
/// manifests share the file, its input and its preprocessing, and each
/// names its own output (inner tensors of one model, pooled their own way:
/// the study's feature candidates).
pub struct EmbedderSet {
    members: Vec<Member>,
    /// Index into the plan's outputs of each member's output.
    outlets: Vec<usize>,
    plan: Plan,
}

/// One embedding of an [`EmbedderSet`].
struct Member {
    manifest: Manifest,
    identity: [u8; 32],
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
        EmbedderSet::load(std::slice::from_ref(manifest)).map(Embedder)
    }

    /// The model's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.0.members[0].manifest
    }

    /// The identity of its embeddings: the ONNX file's sha256, or for a
    /// pooled output the hash of that, the output and the pooling
    /// ([`Manifest::embedding_identity`]). Caches and bundles record it.
    pub fn sha256(&self) -> &[u8; 32] {
        &self.0.members[0].identity
    }

    /// tract's optimized plan of the model (for profiling it node by node).
    pub fn plan(&self) -> &Arc<TypedRunnableModel> {
        &self.0.plan
    }

    /// Embedding dimension d.
    pub fn dim(&self) -> usize {
        self.manifest().output.dim
    }

    /// Runs the model on a preprocessed CHW tensor (3 x crop x crop values).
    /// `path` only names the source in errors.
    pub fn embed_tensor(&self, path: &Path, chw: Vec<f32>) -> Result<Vec<f32>, EmbedError> {
        Ok(self.0.embed_tensor(path, chw)?.swap_remove(0))
    }

    /// Embeds an image from the bytes of its file (`path` names it in errors).
    pub fn embed_bytes(&self, path: &Path, bytes: &[u8]) -> Result<Vec<f32>, EmbedError> {
        Ok(self.0.embed_bytes(path, bytes)?.swap_remove(0))
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
        let (mut embeddings, content, origin) = self.0.embed_file_with_content(path, cache.map(std::slice::from_ref))?;
        Ok((embeddings.swap_remove(0), content, origin))
    }
}

impl EmbedderSet {
    /// Loads the ONNX file that all of `manifests` (at least one) name,
    /// checks its sha256, and prepares one optimized plan with each
    /// manifest's output. Refuses manifests that differ in file, checksum,
    /// input or preprocessing: one run could not serve them all.
    pub fn load(manifests: &[Manifest]) -> Result<EmbedderSet, EmbedError> {
        let first = manifests.first().expect("an embedder set of at least one manifest");
        let path = crate::provision::onnx_path(first);
        if let Some(other) = manifests.iter().find(|m| !EmbedderSet::shares_run(m, first)) {
            return Err(EmbedError::Model {
                path,
                reason: format!("manifests {} and {} do not share one model file, input and preprocessing", first.name, other.name),
            });
        }
        if !path.is_file() {
            let hint = match &first.fetch {
                Some(recipe) => format!(
                    "the spanwatch CLI makes it on first use (any command with --model {}), or run {} --out {}",
                    first.name,
                    first.dir.join(&recipe.script).display(),
                    path.display()
                ),
                None => format!("the manifest in {} names it", first.dir.display()),
            };
            return Err(EmbedError::ModelMissing { path, hint });
        }
        let bytes = std::fs::read(&path).map_err(|error| EmbedError::Io { path: path.clone(), error })?;
        let digest = sha256(&bytes);
        if hex::encode(digest) != first.sha256.to_lowercase() {
            return Err(EmbedError::ModelChecksum { path, expected: first.sha256.clone(), actual: hex::encode(digest) });
        }
        // Manifests that pool one tensor two ways share its outlet.
        let mut names: Vec<&str> = Vec::new();
        let outlets = manifests
            .iter()
            .map(|m| {
                let name = m.output.name.as_str();
                names.iter().position(|&n| n == name).unwrap_or_else(|| {
                    names.push(name);
                    names.len() - 1
                })
            })
            .collect();
        let plan =
            build_plan(&bytes, &first.input, &names).map_err(|e| EmbedError::Model { path: path.clone(), reason: format!("{e:#}") })?;
        let members = manifests.iter().map(|m| Member { manifest: m.clone(), identity: m.embedding_identity(&digest) }).collect();
        Ok(EmbedderSet { members, outlets, plan })
    }

    /// Whether one run of a model serves both manifests: the same ONNX file
    /// (where it is found, and its sha256), input and preprocessing; only
    /// their outputs may differ.
    pub fn shares_run(a: &Manifest, b: &Manifest) -> bool {
        crate::provision::onnx_path(a) == crate::provision::onnx_path(b)
            && a.sha256 == b.sha256
            && a.input == b.input
            && a.preprocess == b.preprocess
    }

    /// The identity of each manifest's embeddings (see [`Embedder::sha256`]).
    pub fn identities(&self) -> impl Iterator<Item = &[u8; 32]> {
        self.members.iter().map(|m| &m.identity)
    }

    /// Runs the model once on a preprocessed CHW tensor and returns each
    /// manifest's embedding. `path` only names the source in errors.
    pub fn embed_tensor(&self, path: &Path, chw: Vec<f32>) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.raw_outputs(path, chw)?
            .into_iter()
            .zip(&self.members)
            .map(|((values, shape), member)| finish(&member.manifest, path, values, &shape))
            .collect()
    }

    /// Runs the model once on a preprocessed CHW tensor and returns each
    /// manifest's output as the model leaves it, unpooled: its values and
    /// shape (for features made from two images' tokens at once, as the
    /// study's local pair differences are). `path` only names the source in
    /// errors.
    pub fn raw_outputs(&self, path: &Path, chw: Vec<f32>) -> Result<Vec<RawOutput>, EmbedError> {
        let first = &self.members[0].manifest;
        let side = first.preprocess.crop as usize;
        let model_error =
            |e: TractError| EmbedError::Model { path: crate::provision::onnx_path(first), reason: format!("{}: {e:#}", path.display()) };
        let input = Tensor::from_shape(&[1, 3, side, side], &chw).map_err(model_error)?;
        let outputs = self.plan.run(tvec!(input.into())).map_err(model_error)?;
        self.outlets
            .iter()
            .map(|&outlet| {
                let view = outputs[outlet].to_plain_array_view::<f32>().map_err(model_error)?;
                Ok((view.iter().copied().collect(), view.shape().to_vec()))
            })
            .collect()
    }

    /// Embeds an image from the bytes of its file with every manifest (`path`
    /// names it in errors).
    pub fn embed_bytes(&self, path: &Path, bytes: &[u8]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let image = preprocess::load_rgb(path, bytes)?;
        self.embed_tensor(path, preprocess::to_tensor(&image, &self.members[0].manifest.preprocess))
    }

    /// Embeds an image file with every manifest and returns the sha256 of
    /// the very bytes that were embedded. With `caches` (one per manifest,
    /// in order) the embeddings are read from them when every one holds the
    /// file, else the model runs once and fills them all.
    pub fn embed_file_with_content(&self, path: &Path, caches: Option<&[EmbeddingCache]>) -> Result<SetEmbedded, EmbedError> {
        let bytes = preprocess::read_image_file(path)?;
        let content = sha256(&bytes);
        if let Some(hits) = caches.and_then(|caches| caches.iter().map(|cache| cache.get(&content)).collect()) {
            return Ok((hits, content, Origin::Cached));
        }
        let embeddings = self.embed_bytes(path, &bytes)?;
        for (cache, embedding) in caches.into_iter().flatten().zip(&embeddings) {
            // A cache that cannot be written costs speed next time, nothing else.
            let _ = cache.put(&content, embedding);
        }
        Ok((embeddings, content, Origin::Computed))
    }
}

/// One output made into `manifest`'s embedding: pooled when it says so,
/// checked for its dimension and for non-finite values.
fn finish(manifest: &Manifest, path: &Path, values: Vec<f32>, shape: &[usize]) -> Result<Vec<f32>, EmbedError> {
    let dim = manifest.output.dim;
    let embedding = match manifest.output.pooling {
        None => values,
        Some(pooling) => pooling.apply(&values, shape, dim).ok_or_else(|| EmbedError::Model {
            path: crate::provision::onnx_path(manifest),
            reason: format!(
                "output {:?} has shape {shape:?}, which {} pooling cannot take (a [1, {dim}, H, W] map or [1, T, {dim}] tokens)",
                manifest.output.name,
                pooling.name()
            ),
        })?,
    };
    if embedding.len() != dim {
        return Err(EmbedError::Model {
            path: crate::provision::onnx_path(manifest),
            reason: format!("output {:?} has {} values, the manifest says {dim}", manifest.output.name, embedding.len()),
        });
    }
    let bad = embedding.iter().filter(|v| !v.is_finite()).count();
    if bad > 0 {
        return Err(EmbedError::NonFinite { path: path.into(), bad });
    }
    Ok(embedding)
}

/// tract's optimized plan of the ONNX file `onnx` with `input_spec`'s input
/// fixed and `outputs` (tensor names) as its outputs, in that order.
fn build_plan(onnx: &[u8], input_spec: &InputSpec, outputs: &[&str]) -> TractResult<Plan> {
    let mut model = tract_onnx::onnx().model_for_read(&mut std::io::Cursor::new(onnx))?;
    let input = model
        .input_outlets()?
        .iter()
        .position(|o| model.node(o.node).name == input_spec.name)
        .ok_or_else(|| TractError::msg(format!("no input named {:?}", input_spec.name)))?;
    model.set_input_fact(input, f32::fact(input_spec.shape).into())?;
    model.select_outputs_by_name(outputs)?;
    model.into_optimized()?.into_runnable()
}
