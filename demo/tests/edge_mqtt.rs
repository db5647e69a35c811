//! The edge monitor against a real MQTT broker, with bundles the host's
//! library calibrates (so these tests live in spanwatch-demo, over both): mosquitto (started here on a
//! free loopback port) where it is installed, as in CI, else the in-process
//! rumqttd. Messages are read with mosquitto_sub, an independent client,
//! where it is installed. The model, the images and the broker are real;
//! only the alarm's GPIO line is absent (the alarm is logged).
//!
//! The data: the demo's real texture tiles with DRAWN defects (no real
//! defect data set exists offline), calibrated on the faithful generator;
//! live pairs come from tiles the calibration never saw.

use spanwatch_calibrate::calibration::{write_bundle, Calibrated, CalibrationSettings};
use spanwatch_calibrate::embedding::{CacheChoice, EmbeddingSource};
use spanwatch_calibrate::pipeline::prepare;
use spanwatch_core::alert::AlertState;
use spanwatch_core::detector::Watch;
use spanwatch_demo::broker::start_local_broker;
use spanwatch_demo::live::EdgeRun;
use spanwatch_demo::stream::{degrading_stream, StreamPair};
use spanwatch_edge::config::Options;
use spanwatch_edge::messages::DetectorName;
use spanwatch_synth::defects::Generator;
use spanwatch_synth::demo_data::{build, DemoSize};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

#[path = "../../tests/support/mqtt.rs"]
mod mqtt;
use mqtt::{free_port, readable_tempdir, wait_until, Mosquitto, Subscriber};
#[path = "../../tests/support/programs.rs"]
mod programs;
use programs::{needs, needs_for, MOSQUITTO};

const SEED: u64 = 7;

/// The demo data, its faithful bundle and its calibration, built once per test run.
struct Fixture {
    _dir: tempfile::TempDir,
    bundle: PathBuf,
    calibrated: Calibrated,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let data = build(&dir.path().join("demo"), DemoSize::default(), SEED).unwrap();
        let prepared = prepare(&data, "efficientnet-lite0", &EmbeddingSource::Model(CacheChoice::Off), false, true).unwrap();
        let bundle = dir.path().join("faithful.bundle");
        let calibrated = write_bundle(&prepared, "faithful", &CalibrationSettings::default(), &bundle).unwrap();
        Fixture { _dir: dir, bundle, calibrated }
    })
}

fn stream(good: usize, bad: usize, degraded: Generator) -> Vec<StreamPair> {
    degrading_stream(DemoSize::default(), SEED, good, bad, degraded).unwrap()
}

/// A broker for the tests that need not restart it: mosquitto if installed, else rumqttd.
fn any_broker() -> (u16, Option<Mosquitto>) {
    if needs_for("mosquitto as the broker; rumqttd stands in", &MOSQUITTO[..1]) {
        let broker = Mosquitto::start();
        (broker.port, Some(broker))
    } else {
        (start_local_broker().unwrap().port, None)
    }
}

fn edge_options(port: u16, spool: &Path) -> Options {
    Options {
        bundle: Some(fixture().bundle.clone()),
        input: Some(spool.to_path_buf()),
        broker: Some(format!("mqtt://127.0.0.1:{port}")),
        site: Some("test".into()),
        device: Some("line1".into()),
        settle_ms: Some(20),
        ..Options::default()
    }
}

/// Starts an in-process edge monitor.
fn start_edge(options: Options) -> EdgeRun {
    EdgeRun::start(options).unwrap()
}

/// Feeds pairs and waits (up to 120 s) until the edge processed them.
fn feed(edge: &EdgeRun, pairs: &[StreamPair]) {
    edge.feed(pairs, Duration::from_secs(120)).unwrap();
}

/// Equal but for the last bits a JSON round trip may change.
fn same(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs()
}

fn pair_number(id: &str) -> usize {
    id.trim_start_matches("pair-").parse().unwrap()
}

#[test]
fn a_good_stream_never_alerts_and_a_degraded_one_alerts_within_a_window() {
    let calibrated = &fixture().calibrated;
    let thresholds = calibrated.detector.params.thresholds;
    let threshold_of = |watch: Watch| thresholds[Watch::ALL.iter().position(|&w| w == watch).unwrap()];
    let (port, _broker) = any_broker();
    let spool = tempfile::tempdir().unwrap();
    let subscriber = needs_for("what a subscriber receives", &MOSQUITTO[1..]).then(|| Subscriber::start(port, "good-then-bad"));
    let edge = start_edge(Options { ha_discovery: Some(true), ..edge_options(port, spool.path()) });
    let (good, bad) = (80, 50);
    let pairs = stream(good, bad, Generator::WrongFamily);
    feed(&edge, &pairs);
    let summary = edge.stop().unwrap();
    assert_eq!((summary.pairs, summary.failed), (130, 0));
    assert_eq!(summary.alerts, 1, "raised once, never cleared: the stream stays degraded");
    assert_eq!((summary.delivery.dropped, summary.delivery.unsent), (0, 0));
    let Some(subscriber) = subscriber else {
        return;
    };
    wait_until("the offline status arrives", Duration::from_secs(10), || {
        subscriber.on("spanwatch/test/line1/status").last().map(String::as_str) == Some("offline")
    });
    let alerts = subscriber.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let raised = &alerts[0];
    assert_eq!((raised.seq, raised.state, raised.detector), (1, AlertState::Raised, DetectorName::Cusum));
    // Pits against scratches: on EfficientNet-Lite0 their changes are larger (large_change fires).
    assert_ne!(raised.watch, Watch::SmallChange, "pits are no fainter than scratches: {}", raised.reason);
    assert!(raised.value > raised.threshold && same(raised.threshold, threshold_of(raised.watch)), "{raised:?} against {thresholds:?}");
    assert_eq!(raised.false_alarm_every, 30_000);
    let at = pair_number(&raised.pair);
    assert!(at >= good, "a good stream of {good} pairs never raises the alert; it rose at {}", raised.pair);
    let delay = at + 1 - good;
    println!("alert raised {delay} pairs after the generator degraded ({} CUSUM, threshold {:.3})", raised.watch.name(), raised.threshold);
    assert!(delay <= 20, "the alert took {delay} pairs, more than 20");
    let metrics = subscriber.metrics();
    let ids: Vec<usize> = metrics.iter().map(|m| pair_number(&m.pair)).collect();
    assert_eq!(ids, (0..good + bad).collect::<Vec<_>>(), "every pair's metrics, in order");
    assert!(metrics[..good].iter().all(|m| m.alert == AlertState::Clear));
    assert!(
        metrics[..good].iter().all(|m| m.drift.statistic <= m.drift.threshold && same(m.drift.threshold, threshold_of(m.drift.watch))),
        "no good pair's CUSUM passed its threshold"
    );
    assert_eq!(metrics.last().unwrap().window, calibrated.window);
    assert_eq!(subscriber.on("spanwatch/test/line1/pair").len(), good + bad);
    let discovery = subscriber.count_under("homeassistant/");
    assert_eq!(discovery, 5, "Home Assistant discovery: 4 sensors and the alert");
}

#[test]
fn messages_made_while_the_broker_is_away_arrive_in_order_after_it_returns_and_after_a_restart() {
    if !needs(&MOSQUITTO) {
        // CI installs mosquitto (.ci/run); rumqttd cannot be stopped and restarted in-process.
        return;
    }
    let mut broker = Mosquitto::start();
    let spool = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let options =
        Options { state_dir: Some(state.path().to_path_buf()), ha_discovery: Some(true), ..edge_options(broker.port, spool.path()) };
    let subscriber = Subscriber::start(broker.port, "fault");
    let discovery = || subscriber.on("homeassistant/binary_sensor/spanwatch_test_line1/alert/config").len();
    // 85 good pairs and 40 unchanged copies from unseen tiles, replayed as
    // 20 good, 40 copies, 65 good (copies raise the alert within a few
    // pairs; the test is about delivery, not about detection).
    let made = stream(85, 40, Generator::Copy);
    let order = (0..20).chain(85..125).chain(20..85);
    let all: Vec<StreamPair> = order
        .enumerate()
        .map(|(i, j)| {
            let p = &made[j];
            StreamPair { id: format!("pair-{i:04}"), generator: p.generator, source: p.source.clone(), synthetic: p.synthetic.clone() }
        })
        .collect();
    let (pairs, recovery) = all.split_at(60);
    let edge = start_edge(options.clone());
    feed(&edge, &pairs[..20]);
    wait_until("metrics of the first 20 pairs", Duration::from_secs(20), || subscriber.metrics().len() == 20);

    // Outage 1: the generator degrades while the broker is down.
    broker.stop();
    feed(&edge, &pairs[20..]);
    assert!(subscriber.alerts().is_empty());
    broker.restart();
    wait_until("the alert raised during the outage", Duration::from_secs(60), || subscriber.alerts().len() == 1);
    wait_until("the last metric of the outage", Duration::from_secs(30), || {
        subscriber.metrics().last().map(|m| pair_number(&m.pair)) == Some(59)
    });
    let raised = &subscriber.alerts()[0];
    assert_eq!((raised.seq, raised.state), (1, AlertState::Raised));
    let ids: Vec<usize> = subscriber.metrics().iter().map(|m| pair_number(&m.pair)).collect();
    assert_eq!(ids, (0..60).collect::<Vec<_>>(), "metrics of the outage arrive after it, in order");
    // The edge subscribed again after the restart: Home Assistant's birth
    // message makes it send its discovery configs once more.
    let before = discovery();
    Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &broker.port.to_string(), "-t", "homeassistant/status", "-m", "online"])
        .status()
        .unwrap();
    wait_until("discovery re-sent on homeassistant/status", Duration::from_secs(10), || discovery() > before);

    // Outage 2: the generator recovers while the broker is down, and the
    // daemon itself restarts before the broker is back.
    broker.stop();
    feed(&edge, &recovery[..55]);
    let summary = edge.stop().unwrap();
    assert_eq!(summary.alerts, 2, "raised in the first outage, cleared by the recovery in the second");
    assert!(summary.delivery.unsent > 0, "the outage's metrics were still waiting");
    broker.restart();
    let edge = start_edge(options);
    wait_until("the clear recorded by the stopped daemon", Duration::from_secs(60), || subscriber.alerts().len() == 2);
    let cleared = &subscriber.alerts()[1];
    assert_eq!((cleared.seq, cleared.state), (2, AlertState::Clear));
    assert!(cleared.value < cleared.threshold, "cleared with every CUSUM under its threshold");
    // Metrics resume with the restarted daemon.
    feed(&edge, &recovery[55..]);
    wait_until("metrics after the restart", Duration::from_secs(30), || {
        subscriber.metrics().last().map(|m| pair_number(&m.pair)) == Some(124)
    });
    let ids: Vec<usize> = subscriber.metrics().iter().map(|m| pair_number(&m.pair)).collect();
    assert_eq!(ids, (0..125).collect::<Vec<_>>(), "every metric, those of the stopped daemon's outage too, in order");
    assert_eq!(edge.stop().unwrap().alerts, 0, "the restarted daemon resumed in the cleared state");
}

/// Makes a CA and a server certificate for localhost / 127.0.0.1 with openssl.
fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=spanwatch test CA",
    ]);
    openssl(&["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]);
    std::fs::write(dir.join("server.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("server.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
}

#[test]
fn tls_to_mosquitto_with_the_ca_and_refused_without_it() {
    if !needs(&[MOSQUITTO[0], MOSQUITTO[1], ("openssl", "openssl")]) {
        return;
    }
    let dir = readable_tempdir();
    make_certificates(dir.path());
    let port = free_port();
    let config = dir.path().join("mosquitto.conf");
    std::fs::write(
        &config,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\ncafile {0}/ca.crt\ncertfile {0}/server.crt\nkeyfile {0}/server.key\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let mut broker = Command::new("mosquitto").arg("-c").arg(&config).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    wait_until("mosquitto listens", Duration::from_secs(10), || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    let ca = dir.path().join("ca.crt");
    let mut subscriber = Command::new("mosquitto_sub")
        .args([
            "-h",
            "localhost",
            "-p",
            &port.to_string(),
            "--cafile",
            ca.to_str().unwrap(),
            "-t",
            "spanwatch/test/line1/status",
            "-C",
            "1",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let spool = tempfile::tempdir().unwrap();
    let tls = Options { broker: Some(format!("mqtts://localhost:{port}")), tls_ca: Some(ca.clone()), ..edge_options(port, spool.path()) };
    let edge = start_edge(tls);
    let deadline = Instant::now() + Duration::from_secs(20);
    while subscriber.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = subscriber.kill();
    let output = subscriber.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "online", "the edge connected over TLS and said so");
    let summary = edge.stop().unwrap();
    assert_eq!(summary.delivery.unsent, 0);
    assert_eq!(summary.delivery.delivered, 1, "the online status, acknowledged over TLS: {summary:?}");

    // The same broker with another CA: the handshake fails, nothing is delivered.
    let other = tempfile::tempdir().unwrap();
    make_certificates(other.path());
    let spool = tempfile::tempdir().unwrap();
    let wrong = Options {
        broker: Some(format!("mqtts://localhost:{port}")),
        tls_ca: Some(other.path().join("ca.crt")),
        ..edge_options(port, spool.path())
    };
    let edge = start_edge(wrong);
    std::thread::sleep(Duration::from_secs(2));
    let summary = edge.stop().unwrap();
    assert_eq!(summary.delivery.delivered, 0, "a broker whose certificate the CA did not sign is not trusted");
    let _ = broker.kill();
    let _ = broker.wait();
}

/// The box's broker configuration for the test: the shipped bridge example
/// (crates/edge/debian/mosquitto-bridge.conf) pointed at `central`, without
/// the lines the test broker sets itself (its listener and persistence).
fn bridge_config(central: u16, box_id: &str) -> String {
    let shipped =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/edge/debian/mosquitto-bridge.conf")).unwrap();
    shipped
        .lines()
        .filter(|line| !["listener", "allow_anonymous", "persistence"].iter().any(|own| line.starts_with(own)))
        .map(|line| if line.starts_with("address ") { format!("address 127.0.0.1:{central}") } else { line.replace("BOX", box_id) })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_box_bridged_to_a_central_broker_delivers_every_message_in_order_across_its_restart() {
    if !needs(&MOSQUITTO) {
        return;
    }
    let mut central = Mosquitto::start();
    let local = Mosquitto::start_with(bridge_config(central.port, "line1"));
    let subscriber = Subscriber::start(central.port, "plant");
    let spool = tempfile::tempdir().unwrap();
    let edge = start_edge(edge_options(local.port, spool.path()));
    // The generator degrades to unchanged copies, which raise the alert
    // within a few pairs (the test is about delivery; on EfficientNet-Lite0
    // a photometric change takes about 31 pairs, docs/validation.md).
    let pairs = stream(20, 40, Generator::Copy);
    feed(&edge, &pairs[..20]);
    wait_until("the first 20 metrics through the bridge", Duration::from_secs(30), || subscriber.metrics().len() == 20);

    // The central broker goes away while the generator degrades: the box's
    // broker queues, and delivers in order when the centre is back.
    central.stop();
    feed(&edge, &pairs[20..]);
    central.restart();
    wait_until("every metric at the centre", Duration::from_secs(90), || subscriber.metrics().len() == 60);
    wait_until("the alert at the centre", Duration::from_secs(30), || !subscriber.alerts().is_empty());
    let summary = edge.stop().unwrap();
    let ids: Vec<usize> = subscriber.metrics().iter().map(|m| pair_number(&m.pair)).collect();
    assert_eq!(ids, (0..60).collect::<Vec<_>>(), "every metric arrives at the centre, in order");
    let alerts = subscriber.alerts();
    assert_eq!(alerts.len(), summary.alerts as usize, "every alert the edge sent arrives");
    assert_eq!((alerts[0].seq, alerts[0].state), (1, AlertState::Raised));
    let raised_at = pair_number(&alerts[0].pair);
    assert!(raised_at >= 20, "raised after the degradation, at pair {raised_at}");
    let verdicts = subscriber.on("spanwatch/test/line1/pair").len();
    assert!(verdicts >= 60, "every pair's verdict arrives ({verdicts})");
}
