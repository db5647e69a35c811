//! The demo's live part: an in-process broker, a subscriber, and the edge
//! monitor watching a spool into which a stream of pairs is dropped whose
//! generator degrades partway. Prints what the subscriber receives.

use super::stream::{drop_into_spool, StreamPair};
use anyhow::{Context, Result};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use spanwatch_edge::config::{Options, Settings};
use spanwatch_edge::messages::{Alert, Metrics};
use spanwatch_edge::{Edge, Summary};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the live run saw.
pub struct LiveOutcome {
    /// The edge monitor's own account.
    pub summary: Summary,
    /// Every alert the subscriber received, in order.
    pub alerts: Vec<Alert>,
    /// Metrics messages the subscriber received.
    pub metrics: usize,
}

/// The live run's inputs.
pub struct LiveRun<'a> {
    /// The bundle to monitor with.
    pub bundle: &'a Path,
    /// The spool folder (emptied first).
    pub spool: PathBuf,
    /// Broker port on 127.0.0.1.
    pub port: u16,
    /// The stream, in order.
    pub stream: &'a [StreamPair],
    /// Print every message as it arrives.
    pub verbose: bool,
}

/// Runs the edge monitor on the stream and returns once every pair is processed.
pub fn run_live(run: LiveRun<'_>) -> Result<LiveOutcome> {
    if run.spool.exists() {
        std::fs::remove_dir_all(&run.spool).with_context(|| format!("cannot clear {}", run.spool.display()))?;
    }
    let options = Options {
        bundle: Some(run.bundle.to_path_buf()),
        input: Some(run.spool.clone()),
        broker: Some(format!("mqtt://127.0.0.1:{}", run.port)),
        site: Some("demo".into()),
        device: Some("line1".into()),
        settle_ms: Some(30),
        ..Options::default()
    };
    let settings = Settings::resolve(options)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        let received = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
        let subscriber = tokio::spawn(subscribe(run.port, received.clone(), run.verbose));
        let edge = Edge::start(settings)?;
        let stop = Arc::new(AtomicBool::new(false));
        let monitor = tokio::spawn(edge.run(stop.clone()));
        let spool = run.spool.clone();
        let done = spool.join("done");
        let expected = 2 * run.stream.len();
        for pair in run.stream {
            drop_into_spool(&spool, pair)?;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let deadline = Instant::now() + Duration::from_secs(300);
        while std::fs::read_dir(&done).map(|d| d.count()).unwrap_or(0) < expected && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stop.store(true, Ordering::SeqCst);
        let summary = monitor.await.context("the edge monitor panicked")??;
        // Let the subscriber receive the last messages and the offline status.
        tokio::time::sleep(Duration::from_millis(500)).await;
        subscriber.abort();
        let received = received.lock().expect("received").clone();
        let alerts = received.iter().filter(|(t, _)| t.ends_with("/alert")).filter_map(|(_, p)| serde_json::from_str(p).ok()).collect();
        let metrics = received.iter().filter(|(t, _)| t.ends_with("/metrics")).count();
        Ok(LiveOutcome { summary, alerts, metrics })
    })
}

/// Subscribes to `spanwatch/#` and records (and prints) what arrives.
async fn subscribe(port: u16, received: Arc<Mutex<Vec<(String, String)>>>, verbose: bool) {
    let mut options = MqttOptions::new("spanwatch-demo-subscriber", "127.0.0.1", port);
    options.set_max_packet_size(256 * 1024, 256 * 1024);
    let (client, mut eventloop) = AsyncClient::new(options, 16);
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                let _ = client.subscribe("spanwatch/#", QoS::AtLeastOnce).await;
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let payload = String::from_utf8_lossy(&p.payload).into_owned();
                if let Some(line) = describe(&p.topic, &payload).filter(|_| verbose) {
                    println!("{line}");
                }
                received.lock().expect("received").push((p.topic.clone(), payload));
            }
            Ok(_) => {}
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// One line for a received message (none for the per-pair verdicts, which
/// repeat the metrics' alignment).
fn describe(topic: &str, payload: &str) -> Option<String> {
    if topic.ends_with("/metrics") {
        if let Ok(m) = serde_json::from_str::<Metrics>(payload) {
            return Some(format!(
                "  {topic:<27} {}  align {:>+.3} novelty {:.2} | window of {:>2} (seeds {:>2}): mean align {:>+.4}  {} DS {:.4} (k {:>2})  alert {}",
                m.pair,
                m.alignment.unwrap_or(0.0),
                m.novelty,
                m.window,
                m.seeds,
                m.mean_alignment,
                m.score,
                m.ds,
                m.k,
                m.alert
            ));
        }
    }
    (!topic.ends_with("/pair")).then(|| format!("  {topic:<27} {payload}"))
}
