//! The second outside probe's cases against the real `spanwatch` binary
//! (issue 22): a model store that another user could have planted a Python
//! in, links planted in the store, huge and odd files given as images, and
//! values on the command line that made nonsense scores. Each case failed
//! before its fix.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/images")
}

/// Asserts a clean failure (exit 1, no panic) and returns stderr.
fn failure(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "expected a clean failure, got {:?}:\n{stderr}", out.status);
    assert!(!stderr.contains("panicked"), "panicked:\n{stderr}");
    stderr
}

/// A model made by a recipe (never made here: every case stops before the
/// recipe runs, and the recipe would leave `ran-the-recipe` if it ran).
struct RecipeModel {
    dir: tempfile::TempDir,
    manifest: PathBuf,
}

impl RecipeModel {
    fn new() -> RecipeModel {
        let dir = tempfile::tempdir().unwrap();
        let vit = spanwatch_embed::Manifest::resolve("vit-s14").unwrap();
        let manifest = std::fs::read_to_string(vit.dir.join("vit-s14.toml"))
            .unwrap()
            .replace("name = \"vit-s14\"", "name = \"probe\"")
            .replace("file = \"vit_s14_b1.onnx\"", "file = \"probe.onnx\"")
            .replace("script = \"fetch_vit_s14.py\"", "script = \"recipe.py\"")
            .replace("requirements = \"requirements-fetch.txt\"", "requirements = \"requirements.txt\"");
        let path = dir.path().join("probe.toml");
        std::fs::write(&path, manifest).unwrap();
        std::fs::write(dir.path().join("requirements.txt"), "# nothing to install\n").unwrap();
        let marker = dir.path().join("ran-the-recipe");
        std::fs::write(dir.path().join("recipe.py"), format!("open({:?}, 'w').write('ran')\n", marker.display().to_string())).unwrap();
        RecipeModel { dir, manifest: path }
    }

    /// `spanwatch embed` of the fixture images with this model, the
    /// environment changed by `env`.
    fn embed(&self, env: impl FnOnce(&mut Command)) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_spanwatch"));
        let out = self.dir.path().join("emb");
        command.args(["--no-cache", "embed"]).arg(fixtures()).arg("-o").arg(out).arg("--model").arg(&self.manifest).arg("--quiet");
        env(&mut command);
        command.output().expect("the spanwatch binary runs")
    }

    /// A fake `venv/bin/python` in `store`, with the requirements marker that
    /// tells spanwatch the environment is ready: if it ever runs, it leaves `planted-ran`.
    fn plant_python(&self, store: &Path) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let bin = store.join("venv/bin");
        std::fs::create_dir_all(&bin).unwrap();
        let ran = self.dir.path().join("planted-ran");
        let python = bin.join("python");
        std::fs::write(&python, format!("#!/bin/sh\ntouch {}\n", ran.display())).unwrap();
        std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::copy(self.dir.path().join("requirements.txt"), store.join("venv/spanwatch-requirements.txt")).unwrap();
        ran
    }
}

#[test]
fn without_home_the_model_store_is_never_the_shared_temp_folder() {
    let model = RecipeModel::new();
    let tmp = model.dir.path().join("tmp");
    let ran = model.plant_python(&tmp.join("spanwatch/models"));
    let err = failure(&model.embed(|c| {
        c.env_remove("HOME").env_remove("XDG_CACHE_HOME").env_remove("SPANWATCH_MODEL_STORE").env("TMPDIR", &tmp);
    }));
    assert!(err.contains("find the model store") && err.contains("$HOME"), "{err}");
    assert!(!ran.exists(), "the planted python in $TMPDIR ran");
}

#[test]
fn a_store_others_can_write_or_links_planted_in_it_are_refused_and_nothing_is_run_or_written_through() {
    use std::os::unix::fs::PermissionsExt;
    let model = RecipeModel::new();
    // Writable by the group: another user could have planted venv/bin/python.
    let store = model.dir.path().join("open-store");
    let ran = model.plant_python(&store);
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o770)).unwrap();
    let err = failure(&model.embed(|c| {
        c.env("SPANWATCH_MODEL_STORE", &store);
    }));
    assert!(err.contains("refusing the model store") && err.contains("writable by group or others"), "{err}");
    assert!(!ran.exists(), "the planted python ran");

    // A link planted as the lock file: its target is not truncated.
    let store = model.dir.path().join("store");
    std::fs::create_dir(&store).unwrap();
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o700)).unwrap();
    let victim = model.dir.path().join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&victim, store.join(".provision.lock")).unwrap();
    let err = failure(&model.embed(|c| {
        c.env("SPANWATCH_MODEL_STORE", &store);
    }));
    assert!(err.contains("lock the model store"), "{err}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    std::fs::remove_file(store.join(".provision.lock")).unwrap();

    // A link planted as venv: the folder it points to is not emptied (venv --clear).
    let elsewhere = model.dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("keep.txt"), "keep").unwrap();
    std::os::unix::fs::symlink(&elsewhere, store.join("venv")).unwrap();
    let err = failure(&model.embed(|c| {
        c.env("SPANWATCH_MODEL_STORE", &store);
    }));
    assert!(err.contains("venv") && err.contains("not a folder"), "{err}");
    assert_eq!(std::fs::read_to_string(elsewhere.join("keep.txt")).unwrap(), "keep");
    assert!(!model.dir.path().join("ran-the-recipe").exists(), "nothing was run in any case");
}

/// The largest resident size of any child waited for so far, in kB.
fn children_peak_kb() -> i64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) }, 0);
    usage.ru_maxrss
}

#[test]
fn a_huge_or_odd_file_named_like_an_image_is_refused_from_its_size_or_type() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir(&images).unwrap();
    std::fs::copy(fixtures().join("coins_gray.png"), images.join("a.png")).unwrap();
    // 3 GiB, sparse: the CLI read it whole (3.2 GB peak) before checking it.
    std::fs::File::create(images.join("huge.png")).unwrap().set_len(3 << 30).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_spanwatch"))
        .args(["--no-cache", "embed"])
        .arg(&images)
        .arg("-o")
        .arg(dir.path().join("emb"))
        .args(["--model", "efficientnet-lite0", "--quiet"])
        .output()
        .unwrap();
    let err = failure(&out);
    assert!(err.contains("huge.png") && err.contains("3221225472 bytes") && err.contains("refused before reading"), "{err}");
    let peak_mb = children_peak_kb() / 1024;
    println!("peak resident size of the spanwatch run: {peak_mb} MB");
    assert!(peak_mb < 600, "the file was refused before it was read, yet the run peaked at {peak_mb} MB");
}

#[test]
fn a_ridge_lambda_that_is_not_a_finite_non_negative_number_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for lambda in ["nan", "inf", "-1", "-0.5", "x"] {
        let out = Command::new(env!("CARGO_BIN_EXE_spanwatch"))
            .args(["score"])
            .arg(dir.path())
            .args(["--solver", "ridge", &format!("--lambda={lambda}")])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "clap refuses --lambda {lambda}: {err}");
        assert!(err.contains("--lambda") && !err.contains("panicked"), "{err}");
    }
}

/// Files swapped between two images (atomic renames, as an editor or a
/// sync tool does) for the whole of a `spanwatch embed` run: every row of
/// `index.csv` must pair a sha256 with the embedding of those very bytes
/// (the hash was taken in a second read, so a swap in between paired one
/// image's hash with the other's embedding). A staged race: how many reads
/// land mid-swap varies, but a wrong row is never allowed.
#[test]
fn images_overwritten_while_embedding_keep_each_hash_with_its_own_embedding() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let embedder = spanwatch_embed::Embedder::load(&spanwatch_embed::Manifest::resolve("efficientnet-lite0").unwrap()).unwrap();
    let contents = ["coins_gray.png", "camera_gray.png"].map(|name| std::fs::read(fixtures().join(name)).unwrap());
    let embeddings = ["coins_gray.png", "camera_gray.png"].map(|name| embedder.embed_file(&fixtures().join(name), None).unwrap().0);
    let hashes = contents.each_ref().map(|bytes| spanwatch_embed::sha256(bytes));
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir(&images).unwrap();
    let names: Vec<String> = (0..24).map(|i| format!("img{i:02}.png")).collect();
    for name in &names {
        std::fs::write(images.join(name), &contents[0]).unwrap();
    }
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, images, names, contents) = (stop.clone(), images.clone(), names.clone(), contents.clone());
        std::thread::spawn(move || {
            let (mut turn, staging) = (0usize, images.join(".staging"));
            while !stop.load(Ordering::Relaxed) {
                let name = &names[turn % names.len()];
                std::fs::write(&staging, &contents[(turn / names.len() + 1) % 2]).unwrap();
                std::fs::rename(&staging, images.join(name)).unwrap();
                turn += 1;
            }
            turn
        })
    };
    let out = dir.path().join("emb");
    let run = Command::new(env!("CARGO_BIN_EXE_spanwatch"))
        .args(["--no-cache", "embed"])
        .arg(&images)
        .arg("-o")
        .arg(&out)
        .args(["--model", "efficientnet-lite0", "--quiet"])
        .output()
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let npy = npyz::NpyFile::new(std::fs::File::open(out.join("embeddings.npy")).unwrap()).unwrap();
    let rows: Vec<f32> = npy.into_vec().unwrap();
    let d = embedder.dim();
    let index = std::fs::read_to_string(out.join("index.csv")).unwrap();
    let mut seen = [0usize; 2];
    for line in index.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        let row: usize = fields[0].parse().unwrap();
        let which = hashes.iter().position(|h| hex::encode(h) == fields[2]).expect("the hash of one of the two images");
        seen[which] += 1;
        let embedding = &rows[row * d..(row + 1) * d];
        assert_eq!(embedding, &embeddings[which][..], "{}: its hash is of one image and its embedding of the other", fields[1]);
    }
    println!("{swaps} swaps during the run; rows of each image: {seen:?}");
    assert!(swaps > names.len(), "the files were swapped during the run ({swaps} swaps)");
}
