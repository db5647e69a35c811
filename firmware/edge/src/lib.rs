//! spanwatch-edge: the edge monitor on an inspection-line camera box.
//!
//! A generator drops synthetic defects with their source images into a
//! spool ([`spool`]); each pair is embedded and scored by the no_std span
//! tracker against the calibration bundle ([`monitor`]); the drift alert
//! drives an alarm line ([`alarm_line`]) and everything is reported over
//! MQTT ([`mqtt`], [`messages`], [`discovery`]), with undelivered alerts and
//! the alert state kept on disk ([`journal`]). [`config`] reads the options.

pub mod alarm_line;
pub mod config;
pub mod discovery;
pub mod journal;
pub mod messages;
pub mod monitor;
pub mod mqtt;
pub mod spool;

use anyhow::{Context, Result};
use config::Settings;
use journal::{AlertRecord, Journal};
use messages::{json, timestamp, Alert, Kind, Message, Metrics, PairMessage, Topics};
use monitor::{load_checked_model, Calibration, Monitor, Scored};
use mqtt::{Delivery, PublisherSettings};
use spanwatch_core::alarm::Alarm;
use spanwatch_core::alert::AlertState;
use spanwatch_embed::logtext::Escaped;
use spool::{PairFiles, Spool};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;

/// What a run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Pairs scored.
    pub pairs: u32,
    /// Pairs or orphan files moved to failed/.
    pub failed: u32,
    /// Alert raises and clears.
    pub alerts: u32,
    /// What reached the broker.
    pub delivery: Delivery,
}

/// A started monitor: model loaded and checked against the bundle, spool,
/// journal and alarm line open. Nothing is published until [`Edge::run`].
pub struct Edge {
    settings: Settings,
    monitor: Monitor,
    journal: Arc<Mutex<Journal>>,
    record: AlertRecord,
    alarm: Alarm<alarm_line::AlarmLine>,
    spool: Spool,
}

/// What `--check-config` checks, without touching the spool, the state or
/// the broker: the bundle reads and is consistent, the model is found and
/// is the bundle's (sha256 and dimension), and the spool is a folder.
/// Returns a summary of what would run.
pub fn check(settings: &Settings) -> Result<String> {
    let calibration = Calibration::load(&settings.bundle)?;
    let embedder = load_checked_model(&calibration, settings.model.as_deref(), &settings.bundle)?;
    anyhow::ensure!(settings.input.is_dir(), "the spool {} is not a folder (create it, or fix `input`)", settings.input.display());
    let c = &calibration;
    Ok(format!(
        "config ok: bundle {} (generator {}, {} of the last {} pairs, raise below {:.4}, clear above {:.4}); model {} from {} (d = {}); \
         spool {}; state {}; broker {}:{}; topics {}/...; alarm {}",
        settings.bundle.display(),
        c.generator,
        c.statistic(),
        c.band.window,
        c.band.raise_below,
        c.band.clear_above,
        embedder.manifest().name,
        embedder.manifest().onnx_path().display(),
        embedder.dim(),
        settings.input.display(),
        settings.state_dir.display(),
        settings.broker.host,
        settings.broker.port,
        settings.topic_prefix,
        settings.alarm_gpio.as_ref().map_or("logged (no GPIO line)".to_string(), |g| format!("{}:{}", g.chip.display(), g.line)),
    ))
}

impl Edge {
    /// Loads everything; refuses a bundle for another model or dimension.
    pub fn start(settings: Settings) -> Result<Edge> {
        // TLS uses rustls with ring; a second install (tests, the demo) is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let calibration = Calibration::load(&settings.bundle)?;
        let embedder = load_checked_model(&calibration, settings.model.as_deref(), &settings.bundle)?;
        let journal = Journal::open(&settings.state_dir)?;
        let record = journal.alert_record()?;
        let monitor = Monitor::new(embedder, calibration, record.state())?;
        let mut alarm = Alarm::new(alarm_line::AlarmLine::open(settings.alarm_gpio.as_ref())?).map_err(|e| anyhow::anyhow!("{e}"))?;
        alarm.show(record.state()).map_err(|e| anyhow::anyhow!("{e}"))?;
        let spool = Spool::open(&settings.input, settings.settle, settings.orphan_after, &settings.state_dir)?;
        let c = monitor.calibration();
        tracing::info!(
            bundle = %Escaped(settings.bundle.display()), model = %c.model_name, d = c.dim, generator = %c.generator, score = %c.score(),
            window = c.band.window, raise_below = c.band.raise_below, clear_above = c.band.clear_above,
            alert = ?record.state(), "edge monitor ready"
        );
        Ok(Edge { journal: Arc::new(Mutex::new(journal)), settings, monitor, record, alarm, spool })
    }

    /// Watches the spool until `stop` is set, then finishes the current
    /// pair, flushes the outbox, publishes `offline` and returns.
    pub async fn run(self, stop: Arc<AtomicBool>) -> Result<Summary> {
        let topics = Topics::new(&self.settings.topic_prefix);
        let (tx, rx) = mpsc::unbounded_channel();
        let publisher_settings = PublisherSettings {
            topics: topics.clone(),
            capacity: self.settings.buffer,
            discovery: if self.settings.ha_discovery { discovery::discovery_messages(&topics) } else { Vec::new() },
            flush_timeout: Duration::from_secs(5),
        };
        let publisher = tokio::spawn(mqtt::publish(self.settings.broker.clone(), publisher_settings, self.journal.clone(), rx));
        let worker = Worker { topics, tx, edge: self, pairs: 0, failed: 0, alerts: 0 };
        let outcome = tokio::task::spawn_blocking(move || worker.run(&stop)).await.context("the monitor thread panicked")?;
        let delivery = publisher.await.context("the MQTT publisher panicked")?;
        if delivery.unsent > 0 {
            tracing::warn!(unsent = delivery.unsent, "shut down with messages undelivered; alerts among them are kept in the journal");
        }
        let (pairs, failed, alerts) = outcome?;
        tracing::info!(pairs, failed, alerts, delivered = delivery.delivered, "edge monitor stopped");
        Ok(Summary { pairs, failed, alerts, delivery })
    }
}

/// The monitor thread: spool in, messages out.
struct Worker {
    edge: Edge,
    topics: Topics,
    tx: mpsc::UnboundedSender<Message>,
    pairs: u32,
    failed: u32,
    alerts: u32,
}

impl Worker {
    fn run(mut self, stop: &AtomicBool) -> Result<(u32, u32, u32)> {
        let (wake_tx, wake) = std_mpsc::channel();
        let _watcher = watch(self.edge.spool.root(), wake_tx);
        while !stop.load(Ordering::SeqCst) {
            let scan = self.edge.spool.scan(SystemTime::now())?;
            for (path, why) in &scan.strangers {
                tracing::warn!(entry = %Escaped(path.display()), "spool entry {why}");
            }
            for (id, path, why) in &scan.refused {
                let reason = format!("{} {why}", path.display());
                self.fail(id, &[path], &reason)?;
            }
            for (id, file) in &scan.orphans {
                let reason = format!("{} has no partner after {} s", file.display(), self.edge.settings.orphan_after.as_secs());
                self.fail(id, &[file], &reason)?;
            }
            for pair in &scan.ready {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                self.handle(pair)?;
            }
            // Files still settling: look again soon; otherwise wait for the watcher (or a periodic rescan).
            let wait = if scan.waiting > 0 { self.edge.settings.settle.max(Duration::from_millis(20)) } else { Duration::from_millis(500) };
            let _ = wake.recv_timeout(wait);
            while wake.try_recv().is_ok() {}
        }
        Ok((self.pairs, self.failed, self.alerts))
    }

    fn handle(&mut self, pair: &PairFiles) -> Result<()> {
        match self.edge.monitor.process(&pair.source, &pair.synthetic) {
            Ok(scored) => {
                self.report(pair, &scored)?;
                self.edge.spool.done(pair)
            }
            Err(e) => self.fail(&pair.id, &[&pair.source, &pair.synthetic], &format!("{e:#}")),
        }
    }

    fn report(&mut self, pair: &PairFiles, scored: &Scored) -> Result<()> {
        self.pairs += 1;
        let now = timestamp(SystemTime::now());
        let c = self.edge.monitor.calibration();
        let report = &scored.report;
        tracing::info!(
            pair = %Escaped(&pair.id), ds = format!("{:.4}", scored.score.ds), alert_value = format!("{:.4}", scored.value), k = report.scores.k, window = report.scores.window,
            alignment = ?report.alignment.map(|a| (a * 1e4).round() / 1e4), novelty = format!("{:.3}", report.novelty), alert = %scored.state,
            "scored"
        );
        let metrics = Metrics::from_scored(now.clone(), &pair.id, c, scored, self.failed);
        let pair_message = PairMessage::scored(now.clone(), &pair.id, report);
        let alert = scored.change.map(|change| {
            let seq = self.edge.record.next_seq;
            let body = Alert::from_change(seq, now.clone(), c, change, report.scores.window, &pair.id);
            (json(self.topics.alert(), &body, true, Kind::Alert { seq }), change.state, seq)
        });
        self.send(json(self.topics.metrics(), &metrics, false, Kind::Data));
        self.send(json(self.topics.pair(), &pair_message, false, Kind::Data));
        if let Some((message, state, seq)) = alert {
            // On disk before it is sent: a restart delivers it.
            self.edge.record = AlertRecord { raised: state == AlertState::Raised, next_seq: seq + 1 };
            let mut journal = self.edge.journal.lock().expect("journal lock");
            journal.add(&message)?;
            journal.save_alert_record(self.edge.record)?;
            drop(journal);
            tracing::warn!(seq, %state, payload = %message.payload, "drift alert");
            self.alerts += 1;
            self.send(message);
        }
        self.edge.alarm.show(scored.state).map_err(|e| anyhow::anyhow!("{e}"))
    }

    fn fail(&mut self, id: &str, files: &[&std::path::Path], reason: &str) -> Result<()> {
        self.failed += 1;
        tracing::warn!(pair = %Escaped(id), reason = %Escaped(reason), "pair failed; moved to failed/");
        self.edge.spool.failed(id, files, reason)?;
        let body = PairMessage::failed(timestamp(SystemTime::now()), id, reason);
        self.send(json(self.topics.pair(), &body, false, Kind::Data));
        Ok(())
    }

    fn send(&self, message: Message) {
        // The publisher outlives the worker; a send fails only if it panicked.
        if self.tx.send(message).is_err() {
            tracing::error!("the MQTT publisher is gone; message dropped");
        }
    }
}

/// Watches `root` with notify, waking the worker on any change; without a
/// watcher (e.g. inotify limits) the worker still rescans twice a second.
fn watch(root: &std::path::Path, wake: std_mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher;
    // Only changes matter: the worker's own reads (Access events) must not wake it.
    let mut watcher = match notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.map_or(true, |e| !e.kind.is_access()) {
            let _ = wake.send(());
        }
    }) {
        Ok(watcher) => watcher,
        Err(e) => {
            tracing::warn!("cannot watch the spool ({e}); rescanning it twice a second instead");
            return None;
        }
    };
    match watcher.watch(root, notify::RecursiveMode::NonRecursive) {
        Ok(()) => Some(watcher),
        Err(e) => {
            tracing::warn!("cannot watch {} ({e}); rescanning it twice a second instead", Escaped(root.display()));
            None
        }
    }
}
