//! The demo's live part: an in-process broker, a subscriber, and the edge
//! monitor watching a spool into which a stream of pairs is dropped whose
//! generator degrades partway. Prints what the subscriber receives.

use crate::stream::{drop_into_spool, processed_pairs, wait_until_processed, StreamPair};
use anyhow::{Context, Result};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use spanwatch_edge::config::{Options, Settings};
use spanwatch_edge::messages::{Alert, Metrics};
use spanwatch_edge::{Edge, Summary};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    let listener = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let received = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let subscriber = listener.spawn(subscribe(run.port, received.clone(), run.verbose));
    let edge = EdgeRun::start(options)?;
    edge.feed(run.stream, Duration::from_secs(300))?;
    let summary = edge.stop()?;
    // Let the subscriber receive the last messages and the offline status.
    std::thread::sleep(Duration::from_millis(500));
    subscriber.abort();
    let received = received.lock().expect("received").clone();
    let alerts = received.iter().filter(|(t, _)| t.ends_with("/alert")).filter_map(|(_, p)| serde_json::from_str(p).ok()).collect();
    let metrics = received.iter().filter(|(t, _)| t.ends_with("/metrics")).count();
    Ok(LiveOutcome { summary, alerts, metrics })
}

/// An edge monitor running in this process on its own runtime, fed through
/// its spool (the demo, the tests and the benchmark drive it this way).
pub struct EdgeRun {
    runtime: tokio::runtime::Runtime,
    stop: Arc<AtomicBool>,
    handle: Option<tokio::task::JoinHandle<Result<Summary>>>,
    spool: PathBuf,
}

impl EdgeRun {
    /// Starts the monitor with `options` (which must name the spool, `input`).
    pub fn start(options: Options) -> Result<EdgeRun> {
        let spool = options.input.clone().context("the edge monitor needs a spool folder (input)")?;
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let edge = Edge::start(Settings::resolve(options)?)?;
        let stop = Arc::new(AtomicBool::new(false));
        let handle = Some(runtime.spawn(edge.run(stop.clone())));
        Ok(EdgeRun { runtime, stop, handle, spool })
    }

    /// Drops `pairs` into the spool and waits, up to `limit`, until all of them are in done/.
    pub fn feed(&self, pairs: &[StreamPair], limit: Duration) -> Result<()> {
        let before = processed_pairs(&self.spool);
        for pair in pairs {
            drop_into_spool(&self.spool, pair)?;
        }
        wait_until_processed(&self.spool, before + pairs.len(), limit)
    }

    /// Stops the monitor (it finishes the current pair, flushes and says `offline`) and returns its account.
    pub fn stop(mut self) -> Result<Summary> {
        self.stop.store(true, Ordering::SeqCst);
        let handle = self.handle.take().expect("stopped once");
        self.runtime.block_on(handle).context("the edge monitor panicked")?
    }
}

impl Drop for EdgeRun {
    /// Dropped without `stop` (an error, a failing test): the monitor thread
    /// still ends, so dropping the runtime does not wait forever.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
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
                "  {topic:<27} {}  align {:>+.3} size {:.2} | CUSUM {:>5.2} of {:.2} | window of {:>2} (seeds {:>2}): mean align {:>+.4}  {} DS {:.4} (k {:>2})  alert {}",
                m.pair,
                m.alignment.unwrap_or(0.0),
                m.drift.log_size,
                m.drift.statistic,
                m.drift.threshold,
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
