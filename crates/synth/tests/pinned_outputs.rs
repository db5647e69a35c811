//! The synthetic images the validation study measured, pinned byte for byte:
//! the synthesis methods (CutPaste, CutPaste-scar, DRAEM, NSA, transplant)
//! on a fixture photograph, and the drawn generators of the demo dataset.
//! docs/validation.md reports numbers on exactly these images, so a change
//! to any method or generator must be deliberate, with the study rerun and
//! these hashes renewed. They were taken on 2026-12-03; synthesis.rs,
//! defects.rs and demo_data.rs are unchanged since the quick study's
//! outputs were last checked byte-identical (fddb7db).

use image::DynamicImage;
use rand::rngs::StdRng;
use rand::SeedableRng;
use spanwatch_synth::method::{Method, Sources, Synthesizer};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/images").join(name)
}

fn grey(name: &str) -> DynamicImage {
    DynamicImage::ImageLuma8(image::open(fixture(name)).unwrap().to_luma8())
}

fn hex(bytes: &[u8]) -> String {
    spanwatch_embed::sha256(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// sha256 of the raw pixels each method makes from camera_gray.png with seed 0.
const METHODS: [(Method, &str); 5] = [
    (Method::CutPaste, "e6e18c56c9eb916864c8b5aefeefa626f7fc754e6bccea5910f279ad748d3a61"),
    (Method::CutPasteScar, "702136628442c12e794fd38913179260b82d548ec215dc1f0b5538d5edf4bfa6"),
    (Method::Draem, "24178732b6aade4842ebb78caa5348be5ad7da1bf4f24270e8353e1c490be5d2"),
    (Method::Nsa, "8e1008adcc13b5f9f1959a1587778340eded4dac18317e00f4ab18297f5673e7"),
    (Method::Transplant, "fe44ea6d3507e8b441385332e8a1450fda08e9752fac694d86a75acdfe1742bb"),
];

#[test]
fn the_synthesis_methods_make_the_images_the_study_measured() {
    let sources = || Sources {
        textures: vec![grey("brick_gray.png")],
        normals: vec![grey("coins_gray.png"), grey("brick_gray.png")],
        positives: vec![grey("coins_gray.png")],
    };
    let image = grey("camera_gray.png");
    let mut wrong = Vec::new();
    for (method, pinned) in METHODS {
        let made = Synthesizer::new(method, sources()).unwrap().apply(&image, &mut StdRng::seed_from_u64(0)).unwrap();
        let hash = hex(made.as_bytes());
        println!("{method:?}: {hash}");
        if hash != pinned {
            wrong.push(format!("{method:?}: {hash}"));
        }
    }
    assert!(wrong.is_empty(), "methods whose images changed: {wrong:?}");
}

/// sha256 over the demo dataset's files (names and bytes, sorted), seed 7.
const DEMO: &str = "191c182d56f79cca9ad80e64d308a5585bbce037c5852d4f5856267204f22c8f";

#[test]
fn the_drawn_generators_make_the_demo_dataset_the_study_measured() {
    let dir = tempfile::tempdir().unwrap();
    let root = spanwatch_synth::demo_data::build(&dir.path().join("demo"), spanwatch_synth::demo_data::DemoSize::default(), 7).unwrap();
    let mut files: Vec<PathBuf> = walk(&root);
    files.sort();
    let mut all = Vec::new();
    for file in &files {
        all.extend(file.strip_prefix(&root).unwrap().to_string_lossy().as_bytes());
        all.extend(std::fs::read(file).unwrap());
    }
    let hash = hex(&all);
    println!("demo dataset ({} files): {hash}", files.len());
    assert_eq!(hash, DEMO, "the demo dataset's images changed");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
