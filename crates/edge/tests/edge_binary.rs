//! The `spanwatch-edge` binary as a process against a real mosquitto: it
//! announces itself, publishes metrics for real image pairs embedded by the
//! real EfficientNet-Lite0, shuts down cleanly on SIGTERM, leaves its last
//! will when killed, and refuses a bundle for another model or a corrupt one.
//! The bundle is made here from real embeddings with the core's encoder (its
//! numbers do not matter to these tests; the host's calibration is tested
//! with the host, and the edge's scores against it in spanwatch-demo).

use spanwatch_core::bundle::{Bundle, DetectorSpec, F32Le, ModelIdentity, ScoreTable};
use spanwatch_core::detector::INDEPENDENT;
use spanwatch_core::span::{Solver, SpanScore};
use spanwatch_embed::{Embedder, Manifest};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

#[path = "../../../tests/support/mqtt.rs"]
mod mqtt;
use mqtt::{wait_until, Mosquitto, Subscriber};
#[path = "../../../tests/support/programs.rs"]
mod programs;
use programs::{needs, MOSQUITTO};

fn fixture_images() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/images");
    std::fs::read_to_string(dir.join("INDEX.txt")).unwrap().lines().map(|name| dir.join(name)).collect()
}

/// A valid bundle for EfficientNet-Lite0: mu the mean of the fixture images'
/// embeddings, unit sigma, w and the one basis vector differences of them,
/// a window of 8 pairs. Its drift detector never fires (h = 1e9).
fn small_bundle(dir: &Path) -> PathBuf {
    bundle_with_detector(dir, None, 8)
}

/// The bundle with a window of `window` pairs and a detector that raises
/// the alert at pair `fires_at` (1-based) whatever the pairs are, and never
/// clears it: every alignment (at most 1) scores far below its table's
/// knots (-6 after the clamp, 5.5 a pair with k = 0.5) while the size's
/// and off-span tables are wide enough that no other CUSUM moves at all.
fn bundle_with_detector(dir: &Path, fires_at: Option<u32>, window: u32) -> PathBuf {
    let embedder = Embedder::load(&Manifest::resolve("efficientnet-lite0").unwrap()).unwrap();
    let e: Vec<Vec<f32>> = fixture_images().iter().map(|p| embedder.embed_file(p, None).unwrap().0).collect();
    let d = embedder.dim();
    let mu: Vec<f32> = (0..d).map(|j| e.iter().map(|v| v[j]).sum::<f32>() / e.len() as f32).collect();
    let w: Vec<f32> = (0..d).map(|j| e[0][j] - e[1][j]).collect();
    let change: Vec<f32> = (0..d).map(|j| e[2][j] - e[3][j]).collect();
    let norm = change.iter().map(|v| v * v).sum::<f32>().sqrt();
    let basis: Vec<f32> = change.iter().map(|v| v / norm).collect();
    let encoded = [
        F32Le::encode(&mu),
        F32Le::encode(&vec![1.0; d]),
        F32Le::encode(&w),
        F32Le::encode(&basis),
        F32Le::encode(&[norm]),
        F32Le::encode(&[10.0, 11.0]),
        F32Le::encode(&[-1.0, 1.0]),
        F32Le::encode(&[-100.0, 100.0]),
    ];
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
        window,
        detector: DetectorSpec {
            alignment: ScoreTable { values: view(5), scores: view(6), tail: 0.1 },
            size: ScoreTable { values: view(7), scores: view(6), tail: 100.0 },
            off_span: ScoreTable { values: view(7), scores: view(6), tail: 100.0 },
            extent: ScoreTable { values: view(7), scores: view(6), tail: 100.0 },
            alignment_k: 0.5,
            size_k: 1.0,
            off_span_k: 1.0,
            extent_k: 1.0,
            residuals: INDEPENDENT,
            // Pair n leaves the alignment CUSUM at 5.5 n: above its threshold first at n = fires_at.
            thresholds: [fires_at.map_or(1e9, |n| 5.5 * n as f64 - 1.0), 1e9, 1e9, 1e9, 1e9, 1e9, 1e9],
            size_margin: 0.25,
            clear_after: 1_000_000,
            false_alarm_every: 30_000,
            simulated_every: 30_000.0,
        },
    };
    let path = dir.join("faithful.bundle");
    std::fs::write(&path, bundle.encode().unwrap()).unwrap();
    path
}

/// Drops pairs `pair-0000`.. of the fixture images into the spool as a
/// generator should (under a hidden temporary name, then renamed).
fn drop_pairs(spool: &Path, n: usize) {
    drop_numbered(spool, 0..n);
}

/// Drops the pairs numbered `numbers`.
fn drop_numbered(spool: &Path, numbers: std::ops::Range<usize>) {
    std::fs::create_dir_all(spool).unwrap();
    let images = fixture_images();
    for i in numbers {
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
    if !needs(&MOSQUITTO) {
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
    let start = || Daemon(Command::new(binary).arg("--config").arg(&config).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap());

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
    // A window the daemon cannot hold: the check refuses it as starting would (it said ok).
    std::fs::create_dir_all(work.path().join("wide")).unwrap();
    let wide = bundle_with_detector(&work.path().join("wide"), None, 65);
    let refused = check(&["--bundle", wide.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains("would refuse") && stderr.contains("window"), "{stderr}");
}

/// Runs the edge binary with `args`, stderr to a file, until its stderr holds
/// every one of `needles` or it exits (up to 60 s); returns stderr.
fn stderr_until(args: &[std::ffi::OsString], needles: &[&str]) -> String {
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut edge = Daemon(
        Command::new(env!("CARGO_BIN_EXE_spanwatch-edge"))
            .args(args)
            .env_remove("NO_COLOR")
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap(),
    );
    let read = || std::fs::read_to_string(log.path()).unwrap_or_default();
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(60) && !needles.iter().all(|n| read().contains(n)) {
        if edge.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(edge);
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

/// The edge binary's config on `spool` against a broker on `port` as
/// device `device`, with more TOML lines.
fn edge_config(dir: &Path, bundle: &Path, spool: &Path, port: u16, device: &str, more: &str) -> PathBuf {
    let config = dir.join(format!("{device}.toml"));
    std::fs::write(
        &config,
        format!(
            "bundle = {bundle:?}\ninput = {spool:?}\nbroker = 'mqtt://127.0.0.1:{port}'\nsite = 'test'\ndevice = '{device}'\nsettle_ms = 20\n{more}\n"
        ),
    )
    .unwrap();
    config
}

/// A daemon process, killed when dropped still running (a failing test
/// must not leave it behind).
struct Daemon(std::process::Child);

impl std::ops::Deref for Daemon {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for Daemon {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts the edge binary with `config`, appending its stderr to `log`.
fn spawn_edge(config: &Path, log: &Path) -> Daemon {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    Daemon(
        Command::new(env!("CARGO_BIN_EXE_spanwatch-edge")).arg("--config").arg(config).stdout(Stdio::null()).stderr(log).spawn().unwrap(),
    )
}

/// Waits like `wait_until`; on timeout the failure shows the daemon's log.
fn wait_logged(what: &str, limit: Duration, log: &Path, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        if start.elapsed() > limit {
            panic!(
                "timed out after {limit:?} waiting until {what}; the daemon's log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.filter(|e| e.as_ref().is_ok_and(|e| e.file_type().is_ok_and(|t| t.is_file()))).count())
}

/// Metrics on `spanwatch/test/<device>/metrics`, in arrival order.
fn metrics_of(subscriber: &Subscriber, device: &str) -> Vec<spanwatch_edge::messages::Metrics> {
    subscriber.on(&format!("spanwatch/test/{device}/metrics")).iter().map(|p| serde_json::from_str(p).unwrap()).collect()
}

#[test]
fn a_daemon_killed_with_the_broker_down_loses_no_message_and_resumes_on_the_same_window() {
    if !needs(&MOSQUITTO) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    // The alert is raised at the 8th pair, and stays.
    let bundle = bundle_with_detector(work.path(), Some(8), 8);
    let mut broker = Mosquitto::start();
    let subscriber = Subscriber::start(broker.port, "killed");
    let log = work.path().join("edge.log");

    // The reference: one daemon sees all 12 pairs, the broker up.
    let reference_spool = work.path().join("reference");
    let reference = edge_config(work.path(), &bundle, &reference_spool, broker.port, "reference", "");
    let mut edge = spawn_edge(&reference, &log);
    drop_pairs(&reference_spool, 12);
    wait_logged("the reference's 12 metrics", Duration::from_secs(60), &log, || metrics_of(&subscriber, "reference").len() == 12);
    Command::new("kill").arg("-TERM").arg(edge.id().to_string()).status().unwrap();
    edge.wait().unwrap();

    // The broker goes away; the daemon takes 10 pairs (the alert rises at
    // the 8th) and is killed; the broker comes back; a new daemon sends all
    // of it and scores two more pairs.
    broker.stop();
    let spool = work.path().join("spool");
    let config = edge_config(work.path(), &bundle, &spool, broker.port, "line1", "");
    let mut edge = spawn_edge(&config, &log);
    drop_numbered(&spool, 0..10);
    wait_logged("10 pairs recorded and moved to done/", Duration::from_secs(60), &log, || files_in(&spool.join("done")) == 20);
    edge.kill().unwrap();
    edge.wait().unwrap();
    broker.restart();
    let mut edge = spawn_edge(&config, &log);
    wait_logged("the 10 pairs' metrics after the restart", Duration::from_secs(60), &log, || subscriber.metrics().len() == 10);
    drop_numbered(&spool, 10..12);
    wait_logged("12 metrics", Duration::from_secs(60), &log, || subscriber.metrics().len() == 12);
    Command::new("kill").arg("-TERM").arg(edge.id().to_string()).status().unwrap();
    edge.wait().unwrap();

    let log_text = std::fs::read_to_string(&log).unwrap();
    let metrics = subscriber.metrics();
    let ids: Vec<&str> = metrics.iter().map(|m| m.pair.as_str()).collect();
    let expected: Vec<String> = (0..12).map(|i| format!("pair-{i:04}")).collect();
    assert_eq!(ids, expected, "every pair's metrics, in order, each pair scored once\n{log_text}");
    let verdicts: HashSet<String> = subscriber.on("spanwatch/test/line1/pair").into_iter().collect();
    assert_eq!(verdicts.len(), 12, "every pair's verdict (a repeat of one counted once)");
    let alerts = subscriber.alerts();
    assert_eq!(alerts.len(), 1, "raised once, recorded before the kill, not raised again after it: {alerts:?}");
    assert_eq!((alerts[0].seq, alerts[0].pair.as_str()), (1, "pair-0007"));

    // Pairs 10 and 11 were judged on the window and detector the killed
    // daemon had: the same scores as the daemon that never stopped.
    let reference = metrics_of(&subscriber, "reference");
    for (after, before) in metrics[10..].iter().zip(&reference[10..]) {
        assert_eq!(after.pair, before.pair);
        assert_eq!((after.window, after.seeds, after.alert), (before.window, before.seeds, before.alert), "{}", after.pair);
        // The detector resumed from the state recorded with pair 9: the
        // same CUSUMs, exactly (each pair's statistics are its own).
        assert_eq!(after.drift, before.drift, "{}", after.pair);
        // The same vectors, pushed in another history (so in other slots):
        // equal up to rounding. The scores are within [-1, 1], and a DS near
        // 1 is 1 - sqrt(a residual at rounding level), so 1e-7 absolute.
        for (a, b) in [
            (after.ds, before.ds),
            (after.ridge_ds, before.ridge_ds),
            (after.mean_alignment, before.mean_alignment),
            (after.novelty, before.novelty),
        ] {
            assert!((a - b).abs() <= 1e-7, "{}: {a} after the restart, {b} without it", after.pair);
        }
    }
}

/// A tmpfs of `size` mounted at a new folder, unmounted on drop; None
/// unless this process may mount (root, as CI runs).
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then_some(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the disk with a file until it is full.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.path().join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0xa5u8; 4096];
        while file.write_all(&block).is_ok() {}
        while file.write_all(&block[..1]).is_ok() {}
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_full_disk_pauses_taking_pairs_and_loses_nothing_and_a_failed_pair_is_reported_when_its_reason_cannot_be_written() {
    if !needs(&MOSQUITTO) {
        return;
    }
    let (Some(state_disk), Some(spool_disk)) = (SmallDisk::mount("16m"), SmallDisk::mount("16m")) else {
        assert!(std::env::var_os("CI").is_none(), "mounting a small tmpfs needs root: CI runs as root");
        let _ = std::io::Write::write_all(&mut std::io::stderr(), b"SKIPPED: the full-disk test needs root (it mounts a small tmpfs)\n");
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let bundle = small_bundle(work.path());
    let broker = Mosquitto::start();
    let subscriber = Subscriber::start(broker.port, "full");
    let log = work.path().join("edge.log");
    let spool = spool_disk.path().join("in");
    let state = state_disk.path().join("state");
    let config = edge_config(work.path(), &bundle, &spool, broker.port, "line1", &format!("state_dir = {state:?}"));
    let mut edge = spawn_edge(&config, &log);
    drop_numbered(&spool, 0..2);
    wait_logged("2 metrics", Duration::from_secs(60), &log, || subscriber.metrics().len() == 2);

    // The state's disk fills: pairs wait in the spool, the daemon says so and lives on.
    let filler = state_disk.fill();
    let health = || subscriber.on("spanwatch/test/line1/health");
    let paused = || health().into_iter().find(|h| h.contains("\"paused\""));
    // redb may record a few pairs in pages it already has before a write
    // fails: pairs go in one at a time until the daemon pauses, then two more.
    let mut dropped = 2;
    while paused().is_none() {
        assert!(dropped < 40, "the state's disk is full, yet 38 more pairs were recorded");
        drop_numbered(&spool, dropped..dropped + 1);
        dropped += 1;
        wait_logged("the pair scored or health: paused", Duration::from_secs(60), &log, || {
            paused().is_some() || subscriber.metrics().len() == dropped
        });
    }
    let paused = paused().unwrap();
    assert!(paused.contains("No space left on device") && paused.contains("state.redb"), "{paused}");
    drop_numbered(&spool, dropped..dropped + 2);
    dropped += 2;
    // Looked at within the daemon's 5 s retry: by then redb may have room
    // again in its own file (the failed transaction's pages), and take them.
    std::thread::sleep(Duration::from_secs(2));
    assert!(edge.try_wait().unwrap().is_none(), "the daemon lives on");
    let waiting = files_in(&spool) / 2;
    assert!(waiting >= 2, "pairs wait in the spool while the disk is full: {waiting}");
    assert_eq!(subscriber.metrics().len(), dropped - waiting, "a pair waiting is not scored");
    // Space returns: the pairs are taken within one retry, each once.
    std::fs::remove_file(&filler).unwrap();
    wait_logged("every pair's metrics", Duration::from_secs(30), &log, || subscriber.metrics().len() == dropped);
    wait_logged("health: ok", Duration::from_secs(10), &log, || health().last().is_some_and(|h| h.contains("\"ok\"")));
    let ids: Vec<String> = subscriber.metrics().into_iter().map(|m| m.pair).collect();
    assert_eq!(ids, (0..dropped).map(|i| format!("pair-{i:04}")).collect::<Vec<_>>());

    // The spool's disk fills: a pair that cannot be read is reported as
    // failed at once, and its reason file is written when space returns.
    let images = fixture_images();
    std::fs::copy(&images[0], spool.join(".broken.source.png")).unwrap();
    std::fs::write(spool.join(".broken.synthetic.png"), b"not a png").unwrap();
    let filler = spool_disk.fill();
    for half in ["source", "synthetic"] {
        std::fs::rename(spool.join(format!(".broken.{half}.png")), spool.join(format!("broken.{half}.png"))).unwrap();
    }
    wait_logged("the failed verdict", Duration::from_secs(30), &log, || {
        subscriber.on("spanwatch/test/line1/pair").iter().any(|p| p.contains("broken"))
    });
    std::thread::sleep(Duration::from_secs(1));
    assert!(edge.try_wait().unwrap().is_none(), "the daemon lives on");
    std::fs::remove_file(&filler).unwrap();
    let reason = spool.join("failed/broken.reason.txt");
    wait_logged("the reason file", Duration::from_secs(10), &log, || {
        std::fs::read_to_string(&reason).is_ok_and(|r| r.contains("broken.synthetic.png"))
    });
    wait_logged("the pair's files in failed/", Duration::from_secs(10), &log, || files_in(&spool.join("failed")) == 3);
    drop_numbered(&spool, dropped..dropped + 1);
    wait_logged("one more pair's metrics", Duration::from_secs(30), &log, || subscriber.metrics().len() == dropped + 1);
    Command::new("kill").arg("-TERM").arg(edge.id().to_string()).status().unwrap();
    assert!(edge.wait().unwrap().success());
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(log_text.contains("cannot record pairs") && log_text.contains("cannot move a recorded pair's files"), "{log_text}");
}

/// Publishes `bytes` bytes retained on `topic` with mosquitto_pub.
fn retain(port: u16, topic: &str, bytes: usize) {
    let mut publish = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-t", topic, "-r", "-q", "1", "-s"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut publish.stdin.take().unwrap(), &vec![b'x'; bytes]).unwrap();
    assert!(publish.wait().unwrap().success());
}

/// How many lines of `log` contain `needle`.
fn count_lines(log: &Path, needle: &str) -> usize {
    std::fs::read_to_string(log).unwrap_or_default().lines().filter(|l| l.contains(needle)).count()
}

/// A retained 100 KB message on homeassistant/status (over the daemon's
/// 64 KiB packet limit) made it reconnect every 0.5 s forever with no
/// metrics, its outbox growing by 4 discovery messages a time: now the
/// subscription goes, once, with an error, and every pair's metrics arrive.
#[test]
fn a_retained_home_assistant_status_over_the_packet_limit_does_not_keep_the_daemon_offline() {
    if !needs(&MOSQUITTO) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let bundle = small_bundle(work.path());
    let broker = Mosquitto::start();
    retain(broker.port, "homeassistant/status", 100_000);
    let subscriber = Subscriber::start(broker.port, "ha-retained");
    let spool = work.path().join("in");
    let config = edge_config(work.path(), &bundle, &spool, broker.port, "line1", "ha_discovery = true");
    let log = work.path().join("edge.log");
    let _edge = spawn_edge(&config, &log);
    drop_pairs(&spool, 5);
    wait_logged("5 pairs' metrics", Duration::from_secs(90), &log, || metrics_of(&subscriber, "line1").len() == 5);
    assert_eq!(count_lines(&log, "no longer subscribing"), 1, "{}", std::fs::read_to_string(&log).unwrap());
    assert!(count_lines(&log, "connected to the broker") <= 3, "{}", std::fs::read_to_string(&log).unwrap());
    assert_eq!(
        subscriber.count_under("homeassistant/sensor/") + subscriber.count_under("homeassistant/binary_sensor/"),
        5,
        "4 sensors and the alert, once each"
    );
}

/// Two daemons with the same site and device (so the same client id) on
/// one broker knocked each other off every second with only "connection
/// closed by peer": the warning now says the client id is the likely cause
/// and names it, and the backoff grows instead of restarting at 0.5 s.
#[test]
fn two_daemons_with_one_client_id_are_told_so_and_back_off() {
    if !needs(&MOSQUITTO) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let bundle = small_bundle(work.path());
    let broker = Mosquitto::start();
    let (a, b) = (work.path().join("a"), work.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let config_a = edge_config(&a, &bundle, &a.join("in"), broker.port, "line1", "");
    let config_b = edge_config(&b, &bundle, &b.join("in"), broker.port, "line1", "");
    let (log_a, log_b) = (work.path().join("a.log"), work.path().join("b.log"));
    let _first = spawn_edge(&config_a, &log_a);
    let _second = spawn_edge(&config_b, &log_b);
    let hint = "another client connected with this client id";
    wait_logged("the client-id hint", Duration::from_secs(30), &log_a, || count_lines(&log_a, hint) + count_lines(&log_b, hint) >= 2);
    std::thread::sleep(Duration::from_secs(8));
    let connects = count_lines(&log_a, "connected to the broker") + count_lines(&log_b, "connected to the broker");
    let logs = std::fs::read_to_string(&log_a).unwrap() + &std::fs::read_to_string(&log_b).unwrap();
    assert!(logs.contains("client_id=spanwatch-test-line1"), "{logs}");
    // Without backoff growth: about 2 connects a second each, 30+ in the ~10 s.
    assert!(connects <= 16, "{connects} connections in about 10 s: the backoff did not grow\n{logs}");
}

/// SIGTERM waited for the settle time (up to forever with a huge value):
/// with the longest settle allowed (60 s) the daemon stops within 2 s; a
/// password file others can read is warned about; a spool with 300 stray
/// files logs 20 of them and one line for the rest (100,000 gave 19 MB of log).
#[test]
fn sigterm_is_prompt_with_a_long_settle_and_stray_files_and_readable_secrets_are_logged_briefly() {
    if !needs(&MOSQUITTO) {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::tempdir().unwrap();
    let bundle = small_bundle(work.path());
    let broker = Mosquitto::start();
    let spool = work.path().join("in");
    std::fs::create_dir_all(&spool).unwrap();
    for i in 0..300 {
        std::fs::write(spool.join(format!("stray-{i:03}.txt")), b"x").unwrap();
    }
    let password = work.path().join("password");
    std::fs::write(&password, "secret\n").unwrap();
    std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o644)).unwrap();
    let more = format!("username = 'u'\npassword_file = {password:?}");
    let config = edge_config(work.path(), &bundle, &spool, broker.port, "line1", &more);
    let text = std::fs::read_to_string(&config).unwrap().replace("settle_ms = 20", "settle_ms = 60000");
    std::fs::write(&config, text).unwrap();
    let log = work.path().join("edge.log");
    let mut edge = spawn_edge(&config, &log);
    drop_pairs(&spool, 1); // settles for a minute: the daemon waits on it
    wait_logged("the stray files are reported", Duration::from_secs(30), &log, || count_lines(&log, "more spool entries") == 1);
    std::thread::sleep(Duration::from_millis(500));
    let asked = std::time::Instant::now();
    Command::new("kill").arg("-TERM").arg(edge.id().to_string()).status().unwrap();
    let exit = edge.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    assert!(asked.elapsed() < Duration::from_secs(2), "SIGTERM took {:?} with settle_ms = 60000", asked.elapsed());
    assert_eq!(count_lines(&log, "spool entry not named"), 20, "{}", std::fs::read_to_string(&log).unwrap());
    assert_eq!(count_lines(&log, "can be read by other users"), 1, "{}", std::fs::read_to_string(&log).unwrap());
}

/// A broker whose `max_packet_size` is below the metrics message (about
/// 650 bytes) closes the connection each time it is sent: the daemon
/// blocked its outbox on that message forever. Now a message that lost the
/// link three times running is dropped with an error naming its topic, and
/// the smaller pair verdict behind it still arrives. (Before, the `online`
/// acknowledged first on each connection reset the count of losses.)
#[test]
fn a_message_the_broker_refuses_as_too_large_is_dropped_and_the_rest_arrive() {
    if !needs(&MOSQUITTO) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let bundle = small_bundle(work.path());
    let broker = Mosquitto::start_with("max_packet_size 400".into());
    let subscriber = Subscriber::start(broker.port, "refused-metrics");
    let spool = work.path().join("in");
    let config = edge_config(work.path(), &bundle, &spool, broker.port, "line1", "");
    let log = work.path().join("edge.log");
    let _edge = spawn_edge(&config, &log);
    drop_pairs(&spool, 1);
    let verdicts = || subscriber.on("spanwatch/test/line1/pair");
    wait_logged("the pair's verdict", Duration::from_secs(60), &log, || !verdicts().is_empty());
    let log_text = std::fs::read_to_string(&log).unwrap();
    let dropped: Vec<&str> = log_text.lines().filter(|l| l.contains("lost the link every time it was sent")).collect();
    assert_eq!(dropped.len(), 1, "the metrics message is dropped once:\n{log_text}");
    assert!(dropped.iter().all(|l| l.contains("topic=spanwatch/test/line1/metrics")), "{log_text}");
    assert!(metrics_of(&subscriber, "line1").is_empty(), "the broker refuses every metrics message");
    assert!(log_text.contains("is it over the broker's max_packet_size"), "the loss names the likely cause:\n{log_text}");
    let pairs: HashSet<String> =
        verdicts().iter().map(|p| serde_json::from_str::<serde_json::Value>(p).unwrap()["pair"].as_str().unwrap().to_string()).collect();
    assert_eq!(pairs, HashSet::from(["pair-0000".to_string()]));
}
