//! Model manifests: a TOML file beside each ONNX model saying everything
//! needed to use it (file and checksum, input and output, preprocessing,
//! dimension, licence and provenance).

use crate::preprocess::PreprocessSpec;
use crate::{sha256, EmbedError};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The model used when none is named: the ViT-S/14 CLS token, which with the
/// cone predicted downstream utility best across the drawn families and the
/// photographed ELPV defects (docs/validation.md, "Which score").
pub const DEFAULT_MODEL: &str = "vit-s14";

/// A model manifest as read from TOML.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Short name, used by `--model NAME`.
    pub name: String,
    /// The ONNX file, relative to the manifest's folder.
    pub file: PathBuf,
    /// Expected sha256 of the ONNX file, hex.
    pub sha256: String,
    /// Licence of the weights.
    pub licence: String,
    /// Where the weights come from.
    pub provenance: String,
    /// The model's input.
    pub input: InputSpec,
    /// How an image becomes the input tensor.
    pub preprocess: PreprocessSpec,
    /// The output used as the embedding.
    pub output: OutputSpec,
    /// How to make the ONNX file when it is not shipped ([`crate::provision`]).
    #[serde(default)]
    pub fetch: Option<FetchSpec>,
    /// Folder the manifest was read from (not in the TOML).
    #[serde(skip)]
    pub dir: PathBuf,
}

/// The model input.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// Input tensor name.
    pub name: String,
    /// Memory layout; only "NCHW" is supported.
    pub layout: String,
    /// Shape [1, 3, H, W].
    pub shape: [usize; 4],
}

/// The recipe that makes a model which is not shipped as a file: a Python
/// script run with `--out PATH` in a private environment holding the pinned
/// requirements. Both paths are relative to the manifest's folder.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchSpec {
    /// The script that writes the model.
    pub script: PathBuf,
    /// Its pip requirements file (pinned: the made file's sha256 depends on them).
    pub requirements: PathBuf,
}

/// The model output used as the embedding.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// Output tensor name.
    pub name: String,
    /// Embedding dimension d.
    pub dim: usize,
    /// When set, the output is spatial ([1, d, H, W] or [1, T, d]) and is
    /// pooled over its positions this way; when absent it is the embedding.
    #[serde(default)]
    pub pooling: Option<crate::Pooling>,
}

impl Manifest {
    /// Reads and checks a manifest file.
    pub fn load(path: &Path) -> Result<Manifest, EmbedError> {
        let text = std::fs::read_to_string(path).map_err(|error| EmbedError::Io { path: path.into(), error })?;
        let bad = |reason: String| EmbedError::Manifest { path: path.into(), reason };
        let mut manifest: Manifest = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        manifest.dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let p = &manifest.preprocess;
        if manifest.input.layout != "NCHW" {
            return Err(bad(format!("layout {:?} is not supported (only NCHW)", manifest.input.layout)));
        }
        let [n, c, h, w] = manifest.input.shape;
        if n != 1 || c != 3 || h != p.crop as usize || w != p.crop as usize {
            return Err(bad(format!("input shape {:?} must be [1, 3, crop, crop] with crop = {}", manifest.input.shape, p.crop)));
        }
        if p.crop == 0 || p.resize_short_side < p.crop {
            return Err(bad("resize_short_side must be at least crop, and crop > 0".into()));
        }
        if p.std.iter().any(|s| !(*s > 0.0)) || !(p.scale > 0.0) {
            return Err(bad("std and scale must be positive".into()));
        }
        if hex::decode(&manifest.sha256).map(|b| b.len()) != Ok(32) {
            return Err(bad("sha256 must be 64 hex digits".into()));
        }
        if manifest.output.dim == 0 {
            return Err(bad("output dim must be positive".into()));
        }
        Ok(manifest)
    }

    /// Finds a model by name or path: an existing `.toml` path is read as it
    /// is; a name is looked up as `NAME.toml` in the shared models folder
    /// ([`crate::install::MODELS`]: `$SPANWATCH_MODELS`, the install prefix,
    /// `/usr/share/spanwatch/models`, a source checkout).
    pub fn resolve(name_or_path: &str) -> Result<Manifest, EmbedError> {
        let as_path = Path::new(name_or_path);
        if as_path.extension().is_some_and(|e| e == "toml") || as_path.is_file() {
            return Manifest::load(as_path);
        }
        let places = crate::install::MODELS.candidates();
        for dir in &places {
            let candidate = dir.join(format!("{name_or_path}.toml"));
            if candidate.is_file() {
                return Manifest::load(&candidate);
            }
        }
        Err(EmbedError::Manifest {
            path: name_or_path.into(),
            reason: format!(
                "no such model; looked for {name_or_path}.toml in {} (set $SPANWATCH_MODELS or pass a manifest path)",
                crate::install::list(&places)
            ),
        })
    }

    /// The identity of the embeddings this manifest makes from an ONNX file
    /// with sha256 `file_sha256`: the sha256 of the file's sha256, the
    /// preprocessing (its version, [`crate::preprocess::PREPROCESS_VERSION`],
    /// and the manifest's sizes and normalization) and, for a pooled output,
    /// the output name and the pooling. Embeddings made another way never
    /// share a cache entry, a calibration bundle or a precomputed shard.
    pub fn embedding_identity(&self, file_sha256: &[u8; 32]) -> [u8; 32] {
        let p = &self.preprocess;
        let mut text = format!(
            "{}/preprocess-v{}/{}/{}/{:?}/{:?}/{:?}",
            hex::encode(file_sha256),
            crate::preprocess::PREPROCESS_VERSION,
            p.resize_short_side,
            p.crop,
            p.scale,
            p.mean,
            p.std
        );
        if let Some(pooling) = self.output.pooling {
            text.push_str(&format!("/{}/{}", self.output.name, pooling.name()));
        }
        sha256(text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_manifests_load() {
        let lite = Manifest::resolve("efficientnet-lite0").unwrap();
        assert_eq!(lite.output.dim, 1280);
        assert_eq!(lite.preprocess.mean, [127.0; 3]);
        let vit = Manifest::resolve("vit-s14").unwrap();
        assert_eq!(vit.output.dim, 384);
        assert_eq!(vit.input.name, "input_image");
    }

    #[test]
    fn unknown_model_names_where_it_looked() {
        let err = Manifest::resolve("no-such-model").unwrap_err().to_string();
        assert!(err.contains("no-such-model.toml"), "{err}");
    }

    #[test]
    fn malformed_manifest_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        let text = std::fs::read_to_string(crate::install::MODELS.find().unwrap().join("efficientnet-lite0.toml"))
            .unwrap()
            .replace("crop = 224", "crop = 200");
        std::fs::write(&path, text).unwrap();
        let err = Manifest::load(&path).unwrap_err().to_string();
        assert!(err.contains("bad.toml") && err.contains("input shape"), "{err}");
    }
}
