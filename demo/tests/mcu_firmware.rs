//! The Cortex-M4F firmware (firmware/mcu) under QEMU's MPS2 AN386 board
//! against the host's batch scores: the test builds the firmware for
//! thumbv7em-none-eabihf, runs it in qemu-system-arm, decodes its defmt log
//! (semihosting) with the firmware's own symbol table (firmware/mcu-log), and checks every
//! pair's window scores against the host's SVD and NNLS on the same window
//! within 1e-4, and its drift detector's CUSUMs (within 1e-4), alert and
//! alarm LED against the host's replay of the bundle's detector. The data is the committed demo stream (ViT-S/14 embeddings
//! of CC0 texture tiles with DRAWN defects; see firmware/mcu/data/README.md).

use nalgebra::DMatrix;
use spanwatch_calibrate::metric::SpanFit;
use spanwatch_core::alert::AlertState;
use spanwatch_core::bundle::Bundle;
use spanwatch_core::detector::{DetectorState, PairStatistics, Watch};
use spanwatch_core::span::{alignment, Solver};
use spanwatch_core::standardize::difference_into;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[path = "../../tests/support/programs.rs"]
mod programs;
use programs::needs;

fn firmware_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware/mcu")
}

/// Builds the crate in `dir` (its own workspace) in release with `cargo_args`
/// into its own target folder, with `toolchain` (None: the one running the
/// tests), and returns that folder.
fn build_workspace(dir: &Path, name: &str, toolchain: Option<&str>, cargo_args: &[&str]) -> PathBuf {
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let mut command = match toolchain {
        Some(toolchain) => {
            let mut rustup = Command::new("rustup");
            rustup.args(["run", toolchain, "cargo"]);
            rustup
        }
        None => Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())),
    };
    let output = command
        .args(["build", "--release", "--locked"])
        .args(cargo_args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("SPANWATCH_MCU_DATA")
        .output()
        .expect("cannot run cargo");
    assert!(output.status.success(), "{} does not build:\n{}", dir.display(), String::from_utf8_lossy(&output.stderr));
    target_dir
}

/// The firmware's target. rust-toolchain.toml lists it, but rustup adds a
/// toolchain file's targets only when it installs the toolchain itself, so a
/// toolchain that was already there gets it here, once.
const TARGET: &str = "thumbv7em-none-eabihf";

/// Whether `toolchain` (None: the active one) has the firmware's target,
/// adding it with rustup when it has not; the error says why it cannot.
fn add_target(toolchain: Option<&str>) -> Result<(), String> {
    let with = |args: &[&str]| {
        let mut command = Command::new("rustup");
        command.args(args);
        if let Some(toolchain) = toolchain {
            command.args(["--toolchain", toolchain]);
        }
        command.output()
    };
    let listed = with(&["target", "list", "--installed"]).map_err(|e| format!("cannot run rustup: {e}"))?;
    if String::from_utf8_lossy(&listed.stdout).lines().any(|line| line.trim() == TARGET) {
        return Ok(());
    }
    match with(&["target", "add", TARGET]) {
        Ok(added) if added.status.success() => Ok(()),
        Ok(added) => Err(String::from_utf8_lossy(&added.stderr).lines().next().unwrap_or("").to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// The toolchain that builds the firmware: the project's own when its
/// target can be had, else nightly (where a mirror serves the target only
/// for nightly, as this workplace's does), else none: SKIPPED outside CI.
/// Some(None) is the active toolchain.
fn firmware_toolchain() -> Option<Option<&'static str>> {
    let active = match add_target(None) {
        Ok(()) => return Some(None),
        Err(why) => why,
    };
    let nightly = match add_target(Some("nightly")) {
        Ok(()) => return Some(Some("nightly")),
        Err(why) => why,
    };
    let line =
        format!("SKIPPED: the MCU firmware test needs the {TARGET} target (rustup target add {TARGET}: {active}; for nightly: {nightly})");
    assert!(std::env::var_os("CI").is_none(), "{line}");
    let _ = writeln!(std::io::stderr(), "{line}");
    None
}

/// Builds the firmware for the Cortex-M4F with `toolchain` and returns the ELF.
fn build_firmware(toolchain: Option<&str>) -> PathBuf {
    build_workspace(&firmware_dir(), "mcu", toolchain, &["--target", TARGET]).join(format!("{TARGET}/release/spanwatch-mcu"))
}

/// Builds the host-side defmt log reader (firmware/mcu-log) and returns it.
fn build_log_reader() -> PathBuf {
    build_workspace(&firmware_dir().join("../mcu-log"), "mcu-log", None, &[]).join("release/spanwatch-mcu-log")
}

/// Runs the firmware in QEMU and returns its decoded defmt log lines and exit code.
fn run_in_qemu(elf: &Path, reader: &Path) -> (Vec<String>, i32) {
    let output = Command::new("timeout")
        .arg("300")
        .arg("qemu-system-arm")
        .args(["-machine", "mps2-an386", "-cpu", "cortex-m4", "-nographic", "-monitor", "none", "-serial", "none"])
        .args(["-semihosting-config", "enable=on,target=native", "-kernel"])
        .arg(elf)
        .output()
        .expect("cannot run qemu-system-arm");
    let mut decode = Command::new(reader).arg(elf).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    decode.stdin.take().unwrap().write_all(&output.stdout).unwrap();
    let decoded = decode.wait_with_output().unwrap();
    assert!(
        decoded.status.success(),
        "{}; qemu's stderr: {}",
        String::from_utf8_lossy(&decoded.stderr),
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = String::from_utf8(decoded.stdout).unwrap().lines().map(str::to_string).collect();
    (lines, output.status.code().unwrap_or(-1))
}

/// The `key=value` fields of a log line.
fn fields(line: &str) -> BTreeMap<&str, &str> {
    line.split_whitespace().filter_map(|token| token.split_once('=')).collect()
}

#[test]
fn firmware_under_qemu_scores_like_the_host_batch() {
    if !needs(&[("qemu-system-arm", "qemu-system-arm")]) {
        return;
    }
    let Some(toolchain) = firmware_toolchain() else { return };
    if let Some(toolchain) = toolchain {
        println!("the active toolchain has no {TARGET} here: building the firmware with {toolchain}");
    }
    let elf = build_firmware(toolchain);
    let (log, code) = run_in_qemu(&elf, &build_log_reader());
    for line in &log {
        println!("mcu: {line}");
    }
    assert_eq!(code, 0, "the firmware exits 0 after the stream");

    let data = firmware_dir().join("data");
    let bundle_bytes = std::fs::read(data.join("calibration.bundle")).unwrap();
    let bundle = Bundle::decode(&bundle_bytes).unwrap();
    let d = bundle.model.dim as usize;
    let stream: Vec<f32> =
        std::fs::read(data.join("stream.f32")).unwrap().as_chunks::<4>().0.iter().map(|b| f32::from_le_bytes(*b)).collect();
    let (w, sigma) = (bundle.w.to_vec(), bundle.sigma.to_vec());
    let window = bundle.window as usize;
    // The host's replay of the detector, on the host's own statistics of each pair.
    let mut detector = bundle.detector.detector(DetectorState::default()).unwrap();
    let seeds: Vec<Vec<f32>> = (0..bundle.rank().min(window))
        .map(|j| {
            let mut seed = vec![0.0; d];
            assert!(bundle.seed_into(j, &mut seed));
            seed
        })
        .collect();
    let pairs: Vec<Vec<f32>> = stream
        .chunks_exact(2 * d + 1)
        .map(|pair| {
            let mut difference = vec![0.0; d];
            difference_into(&pair[d..2 * d], &pair[..d], &sigma, &mut difference);
            difference
        })
        .collect();
    let extents: Vec<f64> = stream.chunks_exact(2 * d + 1).map(|pair| f64::from(pair[2 * d])).collect();

    let scored: Vec<&String> = log.iter().filter(|l| l.starts_with("info pair ")).collect();
    assert_eq!(scored.len(), pairs.len(), "one scored line per stored pair");
    let (mut worst, mut expected_raise) = (0.0f64, None);
    for (t, line) in scored.iter().enumerate() {
        let f = fields(line);
        let value = |key: &str| -> f64 { f[key].parse().unwrap_or_else(|_| panic!("{key} in {line}")) };
        // The window the firmware should hold: the newest real pairs, and the
        // newest seeds that are not yet pushed out (seeds leave first).
        let real = &pairs[(t + 1).saturating_sub(window)..=t];
        let kept_seeds = seeds.len().min(window - real.len());
        let rows: Vec<&Vec<f32>> = seeds[seeds.len() - kept_seeds..].iter().chain(real).collect();
        let fit = SpanFit::new(DMatrix::from_fn(rows.len(), d, |i, j| rows[i][j] as f64));
        let (ridge, cone) = (fit.score(&w, Solver::Ridge { lambda: Solver::Nnls.ridge_lambda() }), fit.score(&w, Solver::Nnls));
        let mean_alignment = real.iter().map(|v| alignment(&w, v).unwrap_or(0.0)).sum::<f64>() / real.len() as f64;
        assert_eq!(value("window") as usize, rows.len(), "{line}");
        assert_eq!(value("seeds") as usize, kept_seeds, "{line}");
        for (name, batch) in [("ridge", ridge.ds), ("cone", cone.ds), ("mean_alignment", mean_alignment)] {
            let difference = (value(name) - batch).abs();
            assert!(difference <= 1e-4, "pair {t} {name}: firmware {} vs host batch {batch}", value(name));
            worst = worst.max(difference);
        }
        let step = detector.update(PairStatistics::of(&w, bundle.basis.iter(), &pairs[t], extents[t]));
        for (name, host) in Watch::ALL.map(|watch| watch.name()).into_iter().zip(step.sums) {
            let difference = (value(name) - host).abs();
            assert!(difference <= 1e-4, "pair {t} {name}: firmware {} vs host {host}", value(name));
            worst = worst.max(difference);
        }
        if expected_raise.is_none() && step.change.is_some_and(|c| c.state == AlertState::Raised) {
            expected_raise = Some(t);
        }
    }
    println!("largest difference between the firmware's and the host's scores and CUSUMs over {} pairs: {worst:.2e}", pairs.len());

    let raise = expected_raise.expect("the degraded half of the demo stream raises the alert on the host");
    let alert = log.iter().find(|l| l.starts_with("warn alert raised")).expect("the firmware raises the alert");
    assert!(alert.contains(&format!("at pair-{raise:04}:")), "host raises at pair-{raise:04}; firmware: {alert}");
    assert!(alert.ends_with("alarm LED true"), "the board's LED 0 is lit with the alert: {alert}");
    assert!(raise >= 40, "no false alarm on the 40 faithful pairs (raised at pair-{raise:04})");
    let footprint = log.iter().find(|l| l.contains("footprint:")).expect("the firmware reports its footprint");
    println!("{footprint}");
}
