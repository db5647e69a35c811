//! The `spanwatch-edge` binary as a process against a real mosquitto: it
//! announces itself, publishes metrics for real image pairs embedded by the
//! real EfficientNet-Lite0, shuts down cleanly on SIGTERM, leaves its last
//! will when killed, and refuses a bundle for another model or a corrupt one.
//! The bundle is made here from real embeddings with the core's encoder (its
//! numbers do not matter to these tests; the host's calibration is tested
//! with the host, and the edge's scores against it in spanwatch-demo).

use spanwatch_core::bundle::{AlertBand, AlertStatistic, Bundle, F32Le, ModelIdentity};
use spanwatch_core::span::{Solver, SpanScore};
use spanwatch_embed::{Embedder, Manifest};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

#[path = "support/mqtt.rs"]
mod mqtt;
use mqtt::{have, wait_until, Mosquitto, Subscriber};

fn fixture_images() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/images");
    std::fs::read_to_string(dir.join("INDEX.txt")).unwrap().lines().map(|name| dir.join(name)).collect()
}

/// A valid bundle for EfficientNet-Lite0: mu the mean of the fixture images'
/// embeddings, unit sigma, w and the one basis vector differences of them.
fn small_bundle(dir: &Path) -> PathBuf {
    let embedder = Embedder::load(&Manifest::resolve("efficientnet-lite0").unwrap()).unwrap();
    let e: Vec<Vec<f32>> = fixture_images().iter().map(|p| embedder.embed_file(p, None).unwrap().0).collect();
    let d = embedder.dim();
    let mu: Vec<f32> = (0..d).map(|j| e.iter().map(|v| v[j]).sum::<f32>() / e.len() as f32).collect();
    let w: Vec<f32> = (0..d).map(|j| e[0][j] - e[1][j]).collect();
    let change: Vec<f32> = (0..d).map(|j| e[2][j] - e[3][j]).collect();
    let norm = change.iter().map(|v| v * v).sum::<f32>().sqrt();
    let basis: Vec<f32> = change.iter().map(|v| v / norm).collect();
    let encoded = [F32Le::encode(&mu), F32Le::encode(&vec![1.0; d]), F32Le::encode(&w), F32Le::encode(&basis), F32Le::encode(&[norm])];
    let view = |i: usize| F32Le::from_bytes(&encoded[i]).unwrap();
    let bundle = Bundle {
        model: ModelIdentity { sha256: *embedder.sha256(), name: "efficientnet-lite0", dim: d as u32 },
        generator: "faithful",
        solver: Solver::Nnls,
        n_pairs: 1,
        mu: view(0),
        sigma: view(1),
        w: view(2),
        basis: view(3),
        singular_values: view(4),
        reference: SpanScore { rpe: 0.9, ds: 0.1, capture: 0.19, chance_ds: 0.0004, corrected: 0.19 },
        alert: AlertBand {
            statistic: AlertStatistic::MeanAlignment,
            window: 8,
            min_pairs: 8,
            raise_below: -1.0,
            clear_above: -0.5,
            horizon: 500,
            false_alarm: 0.05,
        },
    };
    let path = dir.join("faithful.bundle");
    std::fs::write(&path, bundle.encode().unwrap()).unwrap();
    path
}

/// Drops `n` pairs of the fixture images into the spool as a generator
/// should (under a hidden temporary name, then renamed).
fn drop_pairs(spool: &Path, n: usize) {
    std::fs::create_dir_all(spool).unwrap();
    let images = fixture_images();
    for i in 0..n {
        for (half, image) in [("source", &images[i % images.len()]), ("synthetic", &images[(i + 1) % images.len()])] {
            let name = format!("pair-{i:04}.{half}.png");
            let temporary = spool.join(format!(".{name}.partial.png"));
            std::fs::copy(image, &temporary).unwrap();
            std::fs::rename(&temporary, spool.join(name)).unwrap();
        }
    }
}

#[test]
fn the_binary_announces_itself_shuts_down_on_sigterm_and_leaves_a_last_will() {
    if !have("mosquitto") || !have("mosquitto_sub") {
        println!("SKIPPED: needs mosquitto and mosquitto_sub (CI installs them)");
        return;
    }
    let binary = env!("CARGO_BIN_EXE_spanwatch-edge");
    let work = tempfile::tempdir().unwrap();
    let bundle = small_bundle(work.path());
    let broker = Mosquitto::start();
    let spool = tempfile::tempdir().unwrap();
    let config = spool.path().join("edge.toml");
    std::fs::write(
        &config,
        format!(
            "bundle = {:?}\ninput = {:?}\nbroker = 'mqtt://127.0.0.1:{}'\nsite = 'test'\ndevice = 'line1'\nsettle_ms = 20\n",
            bundle,
            spool.path().join("in"),
            broker.port
        ),
    )
    .unwrap();
    let subscriber = Subscriber::start(broker.port, "binary");
    let status = || subscriber.on("spanwatch/test/line1/status");
    let start = || Command::new(binary).arg("--config").arg(&config).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();

    let mut edge = start();
    wait_until("online", Duration::from_secs(30), || status().last().map(String::as_str) == Some("online"));
    drop_pairs(&spool.path().join("in"), 3);
    wait_until("3 metrics", Duration::from_secs(30), || subscriber.metrics().len() == 3);
    Command::new("kill").arg("-TERM").arg(edge.id().to_string()).status().unwrap();
    let exit = edge.wait().unwrap();
    assert!(exit.success(), "SIGTERM is a clean shutdown: {exit:?}");
    wait_until("offline after SIGTERM", Duration::from_secs(10), || status().last().map(String::as_str) == Some("offline"));
    assert_eq!(std::fs::read_dir(spool.path().join("in/done")).unwrap().count(), 6);

    // Killed without a word: the broker publishes the last will.
    let mut edge = start();
    wait_until("online again", Duration::from_secs(30), || status().last().map(String::as_str) == Some("online"));
    edge.kill().unwrap();
    edge.wait().unwrap();
    wait_until("the last will", Duration::from_secs(20), || status().last().map(String::as_str) == Some("offline"));

    // A bundle for another model: refused with a message naming both.
    let output = Command::new(binary).arg("--config").arg(&config).args(["--model", "efficientnet-lite0-gem"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("refusing to start") && stderr.contains("faithful.bundle") && stderr.contains("d = 1280"), "{stderr}");
    // A corrupt bundle: named, with the problem.
    let corrupt = spool.path().join("corrupt.bundle");
    let mut bytes = std::fs::read(&bundle).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&corrupt, bytes).unwrap();
    let output = Command::new(binary).arg("--config").arg(&config).arg("--bundle").arg(&corrupt).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("corrupt.bundle") && stderr.contains("checksum"), "{stderr}");
}

#[test]
fn check_config_validates_the_config_bundle_and_model_without_starting() {
    let work = tempfile::tempdir().unwrap();
    let bundle = small_bundle(work.path());
    let spool = work.path().join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let config = work.path().join("edge.toml");
    // No broker listens on this port: a check must not connect.
    std::fs::write(&config, format!("bundle = {bundle:?}\ninput = {spool:?}\nbroker = 'mqtt://127.0.0.1:9'\n")).unwrap();
    let check = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_spanwatch-edge")).arg("--config").arg(&config).arg("--check-config").args(extra).output().unwrap()
    };
    let ok = check(&[]);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{stdout}{}", String::from_utf8_lossy(&ok.stderr));
    assert!(stdout.contains("config ok") && stdout.contains("efficientnet-lite0") && stdout.contains("d = 1280"), "{stdout}");
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0, "a check leaves the spool alone");
    // A bundle for another model, and a spool that is not a folder: refused, named.
    let foreign = check(&["--model", "efficientnet-lite0-gem"]);
    assert!(!foreign.status.success() && String::from_utf8_lossy(&foreign.stderr).contains("refusing to start"));
    let missing = check(&["--input", work.path().join("nowhere").to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success() && stderr.contains("nowhere") && stderr.contains("not a folder"), "{stderr}");
}

/// Runs the edge binary with `args`, stderr to a file, until its stderr holds
/// every one of `needles` or it exits (up to 60 s); returns stderr.
fn stderr_until(args: &[std::ffi::OsString], needles: &[&str]) -> String {
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut edge = Command::new(env!("CARGO_BIN_EXE_spanwatch-edge"))
        .args(args)
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let read = || std::fs::read_to_string(log.path()).unwrap_or_default();
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(60) && !needles.iter().all(|n| read().contains(n)) {
        if edge.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = edge.kill();
    let _ = edge.wait();
    read()
}

#[test]
fn connection_failures_are_logged_at_warn_and_file_names_cannot_forge_log_lines() {
    let work = tempfile::tempdir().unwrap();
    let bundle = small_bundle(work.path());
    let spool = work.path().join("in");
    drop_pairs(&spool, 1);
    // A pair whose id carries a newline and a forged log line.
    let images = fixture_images();
    let evil = "evil\n2026-01-01T00:00:00Z  WARN spanwatch_edge: forged";
    for (half, image) in [("source", &images[0]), ("synthetic", &images[1])] {
        std::fs::copy(image, spool.join(format!("{evil}.{half}.png"))).unwrap();
    }
    let port = mqtt::free_port(); // nothing listens there
                                  // The edge on this spool and bundle, against `broker`, with `more` flags.
    let edge_args = |broker: String, more: &[&std::ffi::OsStr]| -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> =
            vec!["--bundle".into(), bundle.clone().into(), "--input".into(), spool.clone().into(), "--broker".into(), broker.into()];
        args.extend(more.iter().map(|a| a.to_os_string()));
        args
    };
    let args = edge_args(format!("mqtt://127.0.0.1:{port}"), &["--settle-ms".as_ref(), "20".as_ref()]);
    let needles = ["cannot connect to the broker", "scored pair=pair-0000", "scored pair=evil"];
    let stderr = stderr_until(&args, &needles);
    let warning = stderr.lines().find(|l| l.contains("cannot connect to the broker")).unwrap_or_else(|| panic!("{stderr}"));
    assert!(warning.contains("WARN") && warning.contains(&format!("127.0.0.1:{port}")) && warning.contains("reason="), "{warning}");
    assert!(warning.to_lowercase().contains("refused"), "the reason is given: {warning}");
    assert!(!stderr.contains('\u{1b}'), "no colour codes when stderr is not a terminal: {stderr:?}");
    assert!(stderr.contains("scored pair=evil\\n2026-01-01T00:00:00Z  WARN spanwatch_edge: forged"), "{stderr}");
    assert!(!stderr.lines().any(|l| l.starts_with("2026-01-01T00:00:00Z")), "a file name forged a log line: {stderr}");

    // mqtts:// with a CA file that is not a certificate: said, not silent.
    let garbage = work.path().join("garbage-ca.pem");
    std::fs::write(&garbage, "this is not a certificate\n").unwrap();
    let tls_args = edge_args(format!("mqtts://127.0.0.1:{port}"), &["--tls-ca".as_ref(), garbage.as_os_str()]);
    let stderr = stderr_until(&tls_args, &["cannot connect to the broker"]);
    assert!(
        stderr.contains("cannot connect to the broker") || stderr.contains("garbage-ca.pem"),
        "a broken TLS setup is reported: {stderr}"
    );
}
