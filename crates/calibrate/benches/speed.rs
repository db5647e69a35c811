//! Speed benchmarks, each against the reference implementation on the same
//! data in the same run (so the ratio is fair to the machine's state):
//!
//! - metric: thin SVD + effective rank + ridge DS for n = 1000 pairs,
//!   d = 1280, against numpy doing the same (tests/reference/bench_reference.py);
//! - embedding: images per second through tract for each bundled model,
//!   against onnxruntime on the same preprocessed images (1 thread each);
//! - preprocessing: decoding, resizing, cropping and normalizing the real
//!   images of the Pillow parity fixture (five sizes), against Pillow and
//!   numpy doing the same (torchvision's Resize + CenterCrop), and a pair's
//!   pixel extent (`spanwatch_embed::extent`: both files read and decoded
//!   again, as the edge does for every pair beside its embedding).
//!
//! Run: `cargo bench -p spanwatch-calibrate --bench speed` (needs python3 with numpy,
//! onnxruntime and Pillow for the reference side; without them it prints
//! Rust only).

use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use spanwatch_calibrate::metric::SpanFit;
use spanwatch_core::span::Solver;
use spanwatch_embed::{preprocess, Embedder, Manifest};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const REPEATS: usize = 5;

fn median_seconds(mut run: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..REPEATS)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[REPEATS / 2]
}

fn write_npy(path: &Path, rows: usize, cols: usize, values: &[f64]) {
    use npyz::WriterBuilder;
    let file = std::fs::File::create(path).unwrap();
    let mut writer = npyz::WriteOptions::new().default_dtype().shape(&[rows as u64, cols as u64]).writer(file).begin_nd().unwrap();
    writer.extend(values.iter().copied()).unwrap();
    writer.finish().unwrap();
}

fn reference(args: &[&str]) -> Option<f64> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/reference/bench_reference.py");
    let out = Command::new("python3").arg(script).args(args).output().ok()?;
    if !out.status.success() {
        eprintln!("reference unavailable: {}", String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or(""));
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn bench_metric(dir: &Path) {
    let (n, d) = (1000, 1280);
    let mut rng = StdRng::seed_from_u64(1);
    // Low-rank structure plus noise, like real difference vectors.
    let factors = DMatrix::from_fn(n, 40, |_, _| rng.random_range(-1.0..1.0f64));
    let loadings = DMatrix::from_fn(40, d, |_, _| rng.random_range(-1.0..1.0f64));
    let diffs = factors * loadings + DMatrix::from_fn(n, d, |_, _| rng.random_range(-0.1..0.1f64));
    let w: Vec<f32> = (0..d).map(|_| rng.random_range(-1.0..1.0f32)).collect();
    write_npy(&dir.join("D.npy"), n, d, diffs.transpose().as_slice());
    write_npy(&dir.join("w.npy"), 1, d, &w.iter().map(|&v| v as f64).collect::<Vec<_>>());
    let mut ds = 0.0;
    let rust = median_seconds(|| ds = SpanFit::new(diffs.clone()).score(&w, Solver::Ridge { lambda: 0.01 }).ds);
    let numpy = reference(&["metric", dir.to_str().unwrap(), &REPEATS.to_string()]);
    println!("metric  n = {n}, d = {d}: SVD + ridge DS {rust:.3} s (DS {ds:.4})");
    if let Some(numpy) = numpy {
        println!("metric  numpy (LAPACK) {numpy:.3} s; spanwatch / numpy = {:.2}", rust / numpy);
    }
}

fn bench_embedding(dir: &Path) {
    let images: Vec<PathBuf> = ["brick_gray", "camera_gray", "coins_gray", "textures_rgb"]
        .iter()
        .map(|n| Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../tests/fixtures/images/{n}.png")))
        .collect();
    for model in ["efficientnet-lite0", "vit-s14"] {
        let manifest = Manifest::resolve(model).unwrap();
        if !spanwatch_embed::provision::onnx_path(&manifest).is_file() {
            println!("embed   {model}: skipped, {} not present", spanwatch_embed::provision::onnx_path(&manifest).display());
            continue;
        }
        let embedder = Embedder::load(&manifest).unwrap();
        let tensors: Vec<Vec<f32>> = images
            .iter()
            .map(|p| preprocess::to_tensor(&preprocess::load_rgb(p, &std::fs::read(p).unwrap()).unwrap(), &manifest.preprocess))
            .collect();
        let per_round = median_seconds(|| {
            for (path, t) in images.iter().zip(&tensors) {
                embedder.embed_tensor(path, t.clone()).unwrap();
            }
        });
        let rate = images.len() as f64 / per_round;
        println!("embed   {model}: tract {rate:.1} images/s ({:.1} ms/image)", 1000.0 / rate);
        let stacked: Vec<f64> = tensors.iter().flatten().map(|&v| v as f64).collect();
        write_npy(&dir.join("inputs.npy"), tensors.len(), tensors[0].len(), &stacked);
        let manifest_path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../models/{model}.toml"));
        let onnx = spanwatch_embed::provision::onnx_path(&manifest);
        if let Some(ort) =
            reference(&["embed", dir.to_str().unwrap(), manifest_path.to_str().unwrap(), onnx.to_str().unwrap(), &REPEATS.to_string()])
        {
            let ort_rate = images.len() as f64 / ort;
            println!("embed   {model}: onnxruntime {ort_rate:.1} images/s; tract / onnxruntime throughput = {:.2}", rate / ort_rate);
        }
    }
}

fn bench_preprocessing() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let index = root.join("tests/fixtures/pillow/INDEX.txt");
    let paths: Vec<PathBuf> = std::fs::read_to_string(&index).unwrap().lines().map(|line| root.join(line)).collect();
    let manifest = Manifest::resolve("efficientnet-lite0").unwrap();
    let per_round = median_seconds(|| {
        for path in &paths {
            let image = preprocess::load_rgb(path, &std::fs::read(path).unwrap()).unwrap();
            std::hint::black_box(preprocess::to_tensor(&image, &manifest.preprocess));
        }
    });
    let ms = per_round * 1000.0 / paths.len() as f64;
    println!("prep    {} images of five sizes: spanwatch {ms:.2} ms/image (decode, resize, crop, normalize)", paths.len());
    let manifest_path = root.join("models/efficientnet-lite0.toml");
    if let Some(pillow) = reference(&["preprocess", index.to_str().unwrap(), manifest_path.to_str().unwrap(), &REPEATS.to_string()]) {
        let pillow_ms = pillow * 1000.0 / paths.len() as f64;
        println!("prep    Pillow + numpy {pillow_ms:.2} ms/image; spanwatch / Pillow time = {:.2}", ms / pillow_ms);
    }
    let per_round = median_seconds(|| {
        for path in &paths {
            std::hint::black_box(spanwatch_embed::extent::change_extent(path, path).unwrap());
        }
    });
    println!("extent  a pair's pixel extent, each image of the fixture as both: {:.2} ms/pair", per_round * 1000.0 / paths.len() as f64);
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: run only under bench.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    bench_metric(dir.path());
    bench_embedding(dir.path());
    bench_preprocessing();
}
