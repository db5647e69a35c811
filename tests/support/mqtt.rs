//! Test support shared by the edge's binary tests and the end-to-end MQTT
//! tests: a real mosquitto broker on a free loopback port that can be
//! restarted with its sessions, and a `mosquitto_sub` subscriber that
//! collects what the edge publishes. Included with `#[path]` by each test.

#![allow(dead_code)] // each including test uses its own part

use spanwatch_edge::messages::{Alert, Metrics};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap().local_addr().unwrap().port()
}

/// A temporary folder mosquitto can use: started as root it drops to its
/// own user, which must be able to read its files and write its sessions.
pub fn readable_tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

/// mosquitto on 127.0.0.1:port, persisting sessions across its own restarts.
pub struct Mosquitto {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Configuration after the listener and persistence (a bridge, say).
    extra: String,
}

impl Mosquitto {
    pub fn start() -> Mosquitto {
        Mosquitto::start_with(String::new())
    }

    /// mosquitto with `extra` appended to its configuration.
    pub fn start_with(extra: String) -> Mosquitto {
        let dir = readable_tempdir();
        let mut broker = Mosquitto { port: free_port(), dir, child: None, extra };
        broker.restart();
        broker
    }

    pub fn restart(&mut self) {
        let config = self.dir.path().join("mosquitto.conf");
        std::fs::write(
            &config,
            format!(
                "listener {} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\nautosave_interval 0\n{}\n",
                self.port,
                self.dir.path().display(),
                self.extra
            ),
        )
        .unwrap();
        let log = std::fs::File::create(self.dir.path().join("mosquitto.log")).unwrap();
        self.child = Some(Command::new("mosquitto").arg("-c").arg(&config).stdout(Stdio::null()).stderr(log).spawn().unwrap());
        wait_until("mosquitto accepts connections", Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        });
    }

    /// SIGTERM (mosquitto saves its sessions), and wait for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `mosquitto_sub` with a persistent session (QoS 1), collecting `topic payload` lines.
pub struct Subscriber {
    child: Child,
    lines: Arc<Mutex<Vec<(String, String)>>>,
}

impl Subscriber {
    pub fn start(port: u16, id: &str) -> Subscriber {
        let mut child = Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-c", "-i", id, "-v"])
            .args(["-t", "spanwatch/#", "-t", "homeassistant/#"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub");
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some((topic, payload)) = line.split_once(' ') {
                    sink.lock().unwrap().push((topic.to_string(), payload.to_string()));
                }
            }
        });
        // Until its subscription is in place, nothing would reach it: wait for a retained probe.
        let probe = format!("spanwatch/test/{id}");
        Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-t", &probe, "-m", "ready", "-r", "-q", "1"])
            .status()
            .unwrap();
        let subscriber = Subscriber { child, lines };
        wait_until("mosquitto_sub receives", Duration::from_secs(10), || subscriber.on(&probe).len() == 1);
        subscriber
    }

    /// Messages received on topics that start with `prefix`.
    pub fn count_under(&self, prefix: &str) -> usize {
        self.lines.lock().unwrap().iter().filter(|(t, _)| t.starts_with(prefix)).count()
    }

    pub fn on(&self, topic: &str) -> Vec<String> {
        self.lines.lock().unwrap().iter().filter(|(t, _)| t == topic).map(|(_, p)| p.clone()).collect()
    }

    /// Alerts as a subscriber should read them: a repeat of a sequence
    /// number (QoS 1 is at least once) is dropped.
    pub fn alerts(&self) -> Vec<Alert> {
        let mut alerts: Vec<Alert> = Vec::new();
        for payload in self.on("spanwatch/test/line1/alert") {
            let alert: Alert = serde_json::from_str(&payload).unwrap();
            if alerts.iter().all(|a| a.seq != alert.seq) {
                alerts.push(alert);
            }
        }
        alerts
    }

    /// Metrics, a repeated message (same pair and timestamp) dropped.
    pub fn metrics(&self) -> Vec<Metrics> {
        let mut metrics: Vec<Metrics> = Vec::new();
        for payload in self.on("spanwatch/test/line1/metrics") {
            let m: Metrics = serde_json::from_str(&payload).unwrap();
            if metrics.last().is_none_or(|last| (&last.pair, &last.timestamp) != (&m.pair, &m.timestamp)) {
                metrics.push(m);
            }
        }
        metrics
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting until {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}
