//! Models that are not shipped as files but made once, on first use, by the
//! recipe their manifest names (`[fetch]`: a Python script and its pinned
//! requirements), in a private virtual environment under the model store.
//!
//! A stock Debian or Ubuntu refuses `pip install` into the system Python
//! (PEP 668), so the recipe never touches it: `python3 -m venv` makes
//! `<store>/venv`, pip installs the requirements there, and the script writes
//! the model, whose sha256 is then checked against the manifest. A file lock
//! in the store lets parallel processes (tests, several CLIs) wait for one
//! build instead of racing.
//!
//! The store holds a Python that spanwatch runs, so it is private
//! ([`crate::private::private_folder`]): never a shared temporary folder,
//! never another user's or a folder others can write, and nothing in it is
//! opened through a planted link.

use crate::manifest::Manifest;
use crate::{sha256, EmbedError};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The environment variable that moves the model store.
pub const STORE_ENV: &str = "SPANWATCH_MODEL_STORE";

/// Where made models live: `$SPANWATCH_MODEL_STORE`, else
/// `$XDG_CACHE_HOME/spanwatch/models`, else `~/.cache/spanwatch/models`.
/// It is shared by every embedding cache, so `--cache` folders never hold a
/// copy of an 87 MB model. With none of the three variables there is no
/// store (an error that says so): never a fallback to the shared temp folder.
pub fn model_store() -> Result<PathBuf, EmbedError> {
    if let Some(dir) = std::env::var_os(STORE_ENV).filter(|dir| !dir.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    crate::cache::user_cache_dir().map(|dir| dir.join("models")).ok_or_else(|| EmbedError::Provision {
        model: "(any made by a recipe)".into(),
        step: "find the model store".into(),
        reason: format!("none of ${STORE_ENV}, $XDG_CACHE_HOME and $HOME is set; set one (spanwatch never uses a shared temporary folder)"),
    })
}

/// Path of `manifest`'s ONNX file: beside the manifest when it is there,
/// else, for a model made by a recipe, in the model store ([`model_store`]),
/// where it may not exist yet (with no store, beside the manifest, where
/// loading then says it is missing).
pub fn onnx_path(manifest: &Manifest) -> PathBuf {
    let beside = manifest.dir.join(&manifest.file);
    match &manifest.fetch {
        Some(_) if !beside.is_file() => model_store().map_or(beside, |store| store.join(&manifest.file)),
        _ => beside,
    }
}

/// Makes sure the manifest's ONNX file exists, running its recipe when it
/// does not, and returns its path. `quiet` hides the steps and pip's
/// progress bars (errors are always reported). A missing model without a
/// recipe is left to [`crate::Embedder::load`], which names where it looked.
pub fn ensure_model(manifest: &Manifest, quiet: bool) -> Result<PathBuf, EmbedError> {
    let path = onnx_path(manifest);
    let Some(recipe) = manifest.fetch.as_ref().filter(|_| !path.is_file()) else {
        return Ok(path);
    };
    let store = model_store()?;
    let fail = |step: &str, reason: String| EmbedError::Provision { model: manifest.name.clone(), step: step.into(), reason };
    crate::private::private_folder(&store, "model store").map_err(|e| fail("check the model store", e.to_string()))?;
    let lock_path = store.join(".provision.lock");
    let lock = open_lock(&lock_path).map_err(|e| fail("lock the model store", format!("{}: {e}", lock_path.display())))?;
    if lock.try_lock().is_err() {
        say(quiet, &format!("waiting for another spanwatch process that is making model {} ({})", manifest.name, lock_path.display()));
        lock.lock().map_err(|e| fail("lock the model store", format!("{}: {e}", lock_path.display())))?;
    }
    if path.is_file() {
        return Ok(path); // made by the process we waited for
    }
    let script = manifest.dir.join(&recipe.script);
    let requirements = manifest.dir.join(&recipe.requirements);
    say(
        quiet,
        &format!(
            "model {} is not here yet; making it once from its recipe {} into {} (a few minutes; needs PyPI)",
            manifest.name,
            script.display(),
            store.display()
        ),
    );
    let venv = store.join("venv");
    if std::fs::symlink_metadata(&venv).is_ok_and(|m| !m.file_type().is_dir()) {
        return Err(fail("check the model store", format!("{} is not a folder (a symbolic link?); remove it", venv.display())));
    }
    let python = venv.join("bin").join("python");
    let installed_marker = venv.join("spanwatch-requirements.txt");
    let wanted = std::fs::read(&requirements).map_err(|e| fail("read the requirements", format!("{}: {e}", requirements.display())))?;
    if std::fs::read(&installed_marker).ok().as_deref() != Some(&wanted[..]) {
        let system_python = std::env::var("SPANWATCH_PYTHON").unwrap_or_else(|_| "python3".into());
        say(quiet, &format!("[1/3] private Python environment: {system_python} -m venv {}", venv.display()));
        run(Command::new(&system_python).args(["-m", "venv", "--clear"]).arg(&venv), quiet).map_err(|reason| {
            fail("create the virtual environment", format!("{reason} (on Debian or Ubuntu: apt-get install python3-venv)"))
        })?;
        say(quiet, &format!("[2/3] pip install -r {} (pinned versions, into the private environment)", requirements.display()));
        let mut pip = Command::new(&python);
        pip.args(["-m", "pip", "install", "--disable-pip-version-check", "-r"]).arg(&requirements);
        if quiet {
            pip.arg("--quiet");
        }
        run(&mut pip, quiet).map_err(|reason| fail("install the requirements", format!("{reason}; is PyPI reachable?")))?;
        std::fs::write(&installed_marker, &wanted)
            .map_err(|e| fail("record the requirements", format!("{}: {e}", installed_marker.display())))?;
    }
    let partial = store.join(format!("{}.partial", manifest.file.display()));
    say(quiet, &format!("[3/3] {} --out {}", script.display(), partial.display()));
    run(Command::new(&python).arg(&script).arg("--out").arg(&partial), quiet).map_err(|reason| fail("run the recipe", reason))?;
    let bytes = std::fs::read(&partial).map_err(|e| fail("read the made model", format!("{}: {e}", partial.display())))?;
    let actual = hex::encode(sha256(&bytes));
    if actual != manifest.sha256.to_lowercase() {
        let _ = std::fs::remove_file(&partial);
        return Err(EmbedError::ModelChecksum { path: partial, expected: manifest.sha256.clone(), actual });
    }
    std::fs::rename(&partial, &path).map_err(|e| fail("move the model into place", format!("{}: {e}", path.display())))?;
    say(quiet, &format!("made {} (sha256 {}..)", path.display(), &actual[..12]));
    Ok(path)
}

/// The store's lock file, opened (made 0600 if new) without truncating it
/// and never through a symbolic link.
fn open_lock(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(path)
}

fn say(quiet: bool, line: &str) {
    if !quiet {
        eprintln!("{line}");
    }
}

/// Runs a command with its output on stderr (stdout stays for results);
/// when `quiet`, its output is kept and only shown, its last lines, in the
/// error. The error names the command and its exit status.
fn run(command: &mut Command, quiet: bool) -> Result<(), String> {
    let shown = format!("{command:?}");
    let cannot = |e: std::io::Error| format!("cannot run {shown}: {e}");
    if quiet {
        let output = command.stdin(Stdio::null()).output().map_err(cannot)?;
        if output.status.success() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = text.lines().rev().take(5).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!("{shown} failed ({}): {}", output.status, tail.join(" | ")));
    }
    let status = command.stdin(Stdio::null()).stdout(Stdio::from(std::io::stderr())).status().map_err(cannot)?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed ({status}); its output is above"))
    }
}
