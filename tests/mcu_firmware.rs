//! The Cortex-M4F firmware (firmware/mcu) under QEMU's MPS2 AN386 board
//! against the host's batch scores: the test builds the firmware for
//! thumbv7em-none-eabihf, runs it in qemu-system-arm, decodes its defmt log
//! (semihosting) with the firmware's own symbol table (firmware/mcu-log), and checks every
//! pair's window scores against the host's SVD and NNLS on the same window
//! within 1e-4, and its alert and alarm LED against the host's replay of the
//! bundle's band. The data is the committed demo stream (ViT-S/14 embeddings
//! of CC0 texture tiles with DRAWN defects; see firmware/mcu/data/README.md).

use nalgebra::DMatrix;
use spanwatch::metric::SpanFit;
use spanwatch_core::bundle::Bundle;
use spanwatch_core::span::{alignment, Solver};
use spanwatch_core::standardize::difference_into;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::io::Write;
use std::process::{Command, Stdio};

#[path = "support/programs.rs"]
mod programs;
use programs::needs;

fn firmware_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware/mcu")
}

/// Builds the crate in `dir` (its own workspace) in release with `cargo_args`
/// into its own target folder, and returns that folder.
fn build_workspace(dir: &Path, name: &str, cargo_args: &[&str]) -> PathBuf {
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
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

/// Whether the firmware's target is installed, adding it with rustup when it
/// is not. Without rustup the toolchain is taken as it is (the build says).
fn have_target() -> bool {
    let Ok(listed) = Command::new("rustup").args(["target", "list", "--installed"]).output() else { return true };
    if String::from_utf8_lossy(&listed.stdout).lines().any(|line| line.trim() == TARGET) {
        return true;
    }
    let added = Command::new("rustup").args(["target", "add", TARGET]).output();
    if added.as_ref().is_ok_and(|o| o.status.success()) {
        return true;
    }
    let why = added.map_or_else(|e| e.to_string(), |o| String::from_utf8_lossy(&o.stderr).trim().to_string());
    let line = format!("SKIPPED: the MCU firmware test needs the {TARGET} target (rustup target add {TARGET}: {why})");
    assert!(std::env::var_os("CI").is_none(), "{line}");
    let _ = writeln!(std::io::stderr(), "{line}");
    false
}

/// Builds the firmware for the Cortex-M4F and returns the ELF.
fn build_firmware() -> PathBuf {
    build_workspace(&firmware_dir(), "mcu", &["--target", TARGET]).join(format!("{TARGET}/release/spanwatch-mcu"))
}

/// Builds the host-side defmt log reader (firmware/mcu-log) and returns it.
fn build_log_reader() -> PathBuf {
    build_workspace(&firmware_dir().join("../mcu-log"), "mcu-log", &[]).join("release/spanwatch-mcu-log")
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
    if !needs(&[("qemu-system-arm", "qemu-system-arm")]) || !have_target() {
        return;
    }
    let elf = build_firmware();
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
        std::fs::read(data.join("stream.f32")).unwrap().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    let (w, sigma) = (bundle.w.to_vec(), bundle.sigma.to_vec());
    let band = bundle.alert;
    let window = band.window as usize;
    let seeds: Vec<Vec<f32>> = (0..bundle.rank().min(window))
        .map(|j| {
            let mut seed = vec![0.0; d];
            assert!(bundle.seed_into(j, &mut seed));
            seed
        })
        .collect();
    let pairs: Vec<Vec<f32>> = stream
        .chunks_exact(2 * d)
        .map(|pair| {
            let mut difference = vec![0.0; d];
            difference_into(&pair[d..], &pair[..d], &sigma, &mut difference);
            difference
        })
        .collect();

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
        // The host's replay of the band on its own batch statistic.
        if expected_raise.is_none() && t + 1 >= band.min_pairs as usize && mean_alignment < band.raise_below {
            expected_raise = Some(t);
        }
    }
    println!("largest difference between the firmware's and the host's batch scores over {} pairs: {worst:.2e}", pairs.len());

    let raise = expected_raise.expect("the degraded half of the demo stream raises the alert on the host");
    let alert = log.iter().find(|l| l.starts_with("warn alert raised")).expect("the firmware raises the alert");
    assert!(alert.contains(&format!("at pair-{raise:04}:")), "host raises at pair-{raise:04}; firmware: {alert}");
    assert!(alert.ends_with("alarm LED true"), "the board's LED 0 is lit with the alert: {alert}");
    assert!(raise >= 40, "no false alarm on the 40 faithful pairs (raised at pair-{raise:04})");
    let footprint = log.iter().find(|l| l.contains("footprint:")).expect("the firmware reports its footprint");
    println!("{footprint}");
}
