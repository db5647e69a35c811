//! spanwatch-edge: the edge monitor on an inspection-line camera box.
//!
//! A generator drops synthetic defects with their source images into a
//! spool ([`spool`]); each pair is embedded and scored by the no_std span
//! tracker against the calibration bundle ([`monitor`]); the pair's
//! messages, difference and move are recorded on disk before anything is
//! sent or moved ([`store`]); the drift alert drives an alarm line
//! ([`alarm_line`]) and everything is reported over MQTT ([`mqtt`],
//! [`messages`], [`discovery`]). [`config`] reads the options.

pub(crate) mod alarm_line;
pub mod config;
pub(crate) mod discovery;
pub mod messages;
pub(crate) mod monitor;
pub(crate) mod mqtt;
pub mod spool;
pub mod store;

use anyhow::{Context, Result};
use config::Settings;
use messages::{json, timestamp, Alert, Health, HealthState, Kind, Message, Metrics, PairMessage, ScoreName, Topics};
use monitor::{load_checked_model, Calibration, EmbeddedPair, Monitor, Scored};
use mqtt::{Delivery, PublisherSettings, Queued};
use spanwatch_core::alarm::Alarm;
use spanwatch_core::detector::NamedThresholds;
use spanwatch_embed::logtext::Escaped;
use spool::{Destination, PairFiles, Settle, Spool};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::{Duration, Instant, SystemTime};
use store::{AlertRecord, Entry, Restored, Store};
use tokio::sync::mpsc;

/// How long the monitor waits before trying to record a pair again after
/// a record failed (a full disk).
const RETRY_RECORD: Duration = Duration::from_secs(5);

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
/// state file and alarm line open, the window and alert resumed from the
/// state file. Nothing is published until [`Edge::run`].
pub struct Edge {
    settings: Settings,
    monitor: Monitor,
    store: Arc<Store>,
    restored: Restored,
    record: AlertRecord,
    alarm: Alarm<alarm_line::AlarmLine>,
    spool: Spool,
}

/// What `--check-config` checks, without touching the spool, the state or
/// the broker: the bundle reads and is consistent, the monitor can run it
/// (dimension, window), the model is found and
/// is the bundle's (sha256 and dimension), and the spool is a folder.
/// Returns a summary of what would run.
pub fn check(settings: &Settings) -> Result<String> {
    let calibration = Calibration::load(&settings.bundle)?;
    Monitor::check(&calibration).with_context(|| format!("the daemon would refuse {}", settings.bundle.display()))?;
    let embedder = load_checked_model(&calibration, settings.model.as_deref(), &settings.bundle)?;
    anyhow::ensure!(settings.input.is_dir(), "the spool {} is not a folder (create it, or fix `input`)", settings.input.display());
    let c = &calibration;
    Ok(format!(
        "config ok: bundle {} (generator {}, window of {} pairs, CUSUM drift alert with thresholds {} for one false alarm per {} good pairs); \
         model {} from {} (d = {}); spool {}; state {}; broker {}:{}; topics {}/...; alarm {}",
        settings.bundle.display(),
        c.generator,
        c.window,
        NamedThresholds(&c.detector.params().thresholds),
        c.false_alarm_every,
        embedder.manifest().name,
        spanwatch_embed::provision::onnx_path(embedder.manifest()).display(),
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
        let (store, mut restored) = Store::open(&settings.state_dir, &calibration.digest, calibration.window)?;
        let record = restored.alert.unwrap_or(AlertRecord::FIRST);
        let monitor = Monitor::new(embedder, calibration, record.detector, &restored.recent)?;
        let mut alarm = Alarm::new(alarm_line::AlarmLine::open(settings.alarm_gpio.as_ref())?).map_err(|e| anyhow::anyhow!("{e}"))?;
        alarm.show(record.state()).map_err(|e| anyhow::anyhow!("{e}"))?;
        let spool = Spool::open(&settings.input, settings.settle, settings.orphan_after, &settings.state_dir)?;
        let c = monitor.calibration();
        tracing::info!(
            bundle = %Escaped(settings.bundle.display()), model = %c.model_name, d = c.dim, generator = %c.generator, score = %ScoreName::of(c.solver),
            window = c.window, thresholds = ?c.detector.params().thresholds, false_alarm_every = c.false_alarm_every,
            alert = ?record.state(), cusums = ?record.detector.sums, resumed_pairs = restored.recent.len(), unsent = restored.outbox.len(), moves = restored.settles.len(),
            "edge monitor ready"
        );
        // The monitor's window holds the restored differences now.
        restored.recent = Vec::new();
        Ok(Edge { store: Arc::new(store), restored, settings, monitor, record, alarm, spool })
    }

    /// Watches the spool until `stop` is set, then finishes the current
    /// pair, flushes the outbox, publishes `offline` and returns. A pair's
    /// file-system failure is reported and retried, never the end of the run.
    pub async fn run(mut self, stop: Arc<AtomicBool>) -> Result<Summary> {
        let topics = Topics::new(&self.settings.topic_prefix);
        let (tx, rx) = mpsc::unbounded_channel();
        let publisher_settings = PublisherSettings {
            topics: topics.clone(),
            capacity: self.settings.buffer,
            discovery: if self.settings.ha_discovery { discovery::discovery_messages(&topics) } else { Vec::new() },
            flush_timeout: Duration::from_secs(5),
        };
        let unsent = std::mem::take(&mut self.restored.outbox);
        let publisher = tokio::spawn(mqtt::publish(self.settings.broker.clone(), publisher_settings, self.store.clone(), unsent, rx));
        let pending = std::mem::take(&mut self.restored.settles).into_iter().map(|s| (s.id.clone(), s)).collect();
        let worker = Worker { topics, tx, edge: self, pending, paused: None, logged: HashSet::new(), pairs: 0, failed: 0, alerts: 0 };
        let (pairs, failed, alerts) =
            tokio::task::spawn_blocking(move || worker.run(&stop)).await.context("the monitor thread panicked")?;
        let delivery = publisher.await.context("the MQTT publisher panicked")?;
        if delivery.unsent > 0 {
            tracing::warn!(
                unsent = delivery.unsent,
                "shut down with messages undelivered; they are kept in the state file for the next run"
            );
        }
        tracing::info!(pairs, failed, alerts, delivered = delivery.delivered, "edge monitor stopped");
        Ok(Summary { pairs, failed, alerts, delivery })
    }
}

/// The monitor thread: spool in, records, messages out.
struct Worker {
    edge: Edge,
    topics: Topics,
    tx: mpsc::UnboundedSender<Queued>,
    /// Recorded pairs whose files could not be moved yet, by id.
    pending: BTreeMap<String, Settle>,
    /// While recording fails: when to try again.
    paused: Option<Instant>,
    /// What is failing and was logged already (a pair's move by its id, the
    /// spool scan as ""): logged once, forgotten when it works again.
    logged: HashSet<String>,
    pairs: u32,
    failed: u32,
    alerts: u32,
}

/// The longest the worker waits before looking at the stop flag again.
const STOP_CHECK: Duration = Duration::from_millis(500);

/// What [`Worker::take`] returns when nothing waits: rescan when the spool changes.
const IDLE: Duration = Duration::MAX;

/// With the spool watched, how often it is rescanned anyway when idle (a
/// missed event, a network file system): a scan of 100,000 stray files
/// costs about 0.15 s of a core, so twice a second was a third of a core.
const RESCAN_WATCHED: Duration = Duration::from_secs(10);

/// How many stray spool entries one scan names one by one.
const STRANGERS_LISTED: usize = 20;

impl Worker {
    fn run(mut self, stop: &AtomicBool) -> (u32, u32, u32) {
        let (wake_tx, wake) = std_mpsc::channel();
        let watcher = watch(self.edge.spool.root(), wake_tx);
        while !stop.load(Ordering::SeqCst) {
            self.finish_moves();
            let wait = match self.edge.spool.scan(SystemTime::now()) {
                Ok(scan) => {
                    self.logged.remove("");
                    // Each entry is reported once; a scan that finds thousands says so in one line.
                    for (path, why) in scan.strangers.iter().take(STRANGERS_LISTED) {
                        tracing::warn!(entry = %Escaped(path.display()), "spool entry {why}");
                    }
                    if scan.strangers.len() > STRANGERS_LISTED {
                        tracing::warn!(
                            more = scan.strangers.len() - STRANGERS_LISTED,
                            spool = %Escaped(self.edge.spool.root().display()),
                            "more spool entries that are not pair files: left alone, not listed one by one"
                        );
                    }
                    for (path, ahead) in &scan.future {
                        tracing::warn!(
                            entry = %Escaped(path.display()),
                            ahead_s = ahead.as_secs(),
                            "spool file modified in the future (clock skew?): settled from when it was first seen"
                        );
                    }
                    self.take(scan, stop)
                }
                Err(e) => {
                    self.log_once("", &format!("{e:#}"), "cannot scan the spool; retrying");
                    Duration::from_secs(1)
                }
            };
            // With nothing waiting and a watcher, only a change (or the slow safety rescan) is worth a scan.
            let idle = if watcher.is_some() { RESCAN_WATCHED } else { STOP_CHECK };
            let wait = if wait == IDLE { idle } else { wait };
            wait_for_change(&wake, Instant::now() + wait, stop);
        }
        (self.pairs, self.failed, self.alerts)
    }

    /// Takes what a scan found, unless paused; returns how long to wait
    /// before the next scan.
    fn take(&mut self, scan: spool::Scan, stop: &AtomicBool) -> Duration {
        if let Some(retry) = self.paused {
            let now = Instant::now();
            if now < retry {
                return retry - now;
            }
        }
        let is_new = |id: &String| !self.pending.contains_key(id);
        let refused =
            scan.refused.iter().filter(|(id, ..)| is_new(id)).map(|(id, path, why)| (id, path, format!("{} {why}", path.display())));
        let orphan_after = self.edge.settings.orphan_after.as_secs();
        let orphans = scan
            .orphans
            .iter()
            .filter(|(id, _)| is_new(id))
            .map(|(id, path)| (id, path, format!("{} has no partner after {orphan_after} s", path.display())));
        let failures: Vec<_> = refused.chain(orphans).map(|(id, path, reason)| (id.clone(), path.clone(), reason)).collect();
        for (id, path, reason) in failures {
            if !self.record_failed(&id, &[&path], &reason, scan.ready.len()) {
                return RETRY_RECORD;
            }
        }
        let fresh: Vec<&PairFiles> = scan.ready.iter().filter(|pair| !self.pending.contains_key(&pair.id)).collect();
        for batch in fresh.chunks(self.edge.monitor.pairs_at_once()) {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let files: Vec<(&Path, &Path)> = batch.iter().map(|pair| (pair.source.as_path(), pair.synthetic.as_path())).collect();
            let embedded = self.edge.monitor.embed(&files);
            for (pair, embedded) in batch.iter().zip(embedded) {
                if !self.handle(pair, embedded, scan.ready.len()) {
                    return RETRY_RECORD;
                }
            }
        }
        // Moves still to retry: soon. Files settling or waiting for a partner: when the first is due.
        // Otherwise: when the watcher sees a change (or the periodic rescan).
        if !self.pending.is_empty() {
            STOP_CHECK
        } else {
            scan.due.map_or(IDLE, |due| due.max(Duration::from_millis(20)))
        }
    }

    /// Scores one embedded pair and records it; false if it could not be recorded.
    fn handle(&mut self, pair: &PairFiles, embedded: Result<EmbeddedPair>, waiting: usize) -> bool {
        if !self.edge.spool.unchanged(pair) {
            // What was read may be the replacement: not scored; the next scan takes the files as they are now.
            tracing::warn!(pair = %Escaped(&pair.id), "a file of the pair was replaced while it was read; not scored, taken again");
            return true;
        }
        let scored = embedded.and_then(|embedded| {
            let remembered = embedded.source_remembered;
            self.edge.monitor.score(&pair.source, &pair.synthetic, &embedded).map(|scored| (scored, remembered))
        });
        match scored {
            Ok((scored, source_remembered)) => self.record_scored(pair, &scored, source_remembered, waiting),
            Err(e) => self.record_failed(&pair.id, &[&pair.source, &pair.synthetic], &format!("{e:#}"), waiting),
        }
    }

    fn record_scored(&mut self, pair: &PairFiles, scored: &Scored, source_remembered: bool, waiting: usize) -> bool {
        let now = timestamp(SystemTime::now());
        let c = self.edge.monitor.calibration();
        let report = &scored.report;
        let metrics = Metrics::from_scored(now.clone(), &pair.id, c, scored, self.failed);
        let mut messages = vec![
            json(self.topics.metrics(), &metrics, false, Kind::Data),
            json(self.topics.pair(), &PairMessage::scored(now.clone(), &pair.id, report), false, Kind::Data),
        ];
        let before = self.edge.record;
        let change = scored.step.change;
        if let Some(change) = change {
            let seq = before.next_seq;
            let body = Alert::from_change(seq, now.clone(), c, change, &pair.id);
            messages.push(json(self.topics.alert(), &body, true, Kind::Alert { seq }));
        }
        let record = AlertRecord { next_seq: before.next_seq + u64::from(change.is_some()), detector: scored.detector };
        let settle = self.edge.spool.settle_of_pair(pair, Destination::Done);
        if !self.commit(settle, messages, Some(&scored.difference), Some(record), waiting) {
            // Not recorded, so not scored: the window and the detector as they were.
            self.edge.monitor.forget_last();
            return false;
        }
        self.pairs += 1;
        tracing::info!(
            pair = %Escaped(&pair.id), ds = format!("{:.4}", scored.score.ds), cusum = format!("{:.3}", metrics.drift.statistic), k = report.scores.k, window = report.scores.window,
            alignment = ?report.alignment.map(|a| (a * 1e4).round() / 1e4), novelty = format!("{:.3}", report.novelty), alert = %record.state(),
            source_remembered, "scored"
        );
        self.edge.record = record;
        if let Some(change) = change {
            tracing::warn!(seq = before.next_seq, state = %change.state, pair = %Escaped(&pair.id), watch = change.watch.name(), value = change.value, threshold = change.threshold, "drift alert");
            self.alerts += 1;
        }
        if let Err(e) = self.edge.alarm.show(record.state()) {
            tracing::error!("cannot set the alarm line: {e}");
        }
        true
    }

    /// Records a pair (or a lone file) that could not be scored, and moves
    /// it to failed/; false if it could not be recorded.
    fn record_failed(&mut self, id: &str, files: &[&Path], reason: &str, waiting: usize) -> bool {
        let body = PairMessage::failed(timestamp(SystemTime::now()), id, reason);
        let message = json(self.topics.pair(), &body, false, Kind::Data);
        let settle = self.edge.spool.settle_of(id, files, Destination::Failed { reason: reason.to_string() });
        if !self.commit(settle, vec![message], None, None, waiting) {
            return false;
        }
        self.failed += 1;
        tracing::warn!(pair = %Escaped(id), reason = %Escaped(reason), "pair failed; moved to failed/");
        true
    }

    /// Records a pair's messages, difference, alert change and move in one
    /// transaction; only then are the messages sent and the files moved.
    /// On failure nothing of the pair is kept and taking pairs pauses.
    fn commit(
        &mut self,
        settle: Settle,
        messages: Vec<Message>,
        difference: Option<&[f32]>,
        alert: Option<AlertRecord>,
        waiting: usize,
    ) -> bool {
        let entry = Entry { messages: &messages, difference, alert, settle: &settle };
        match self.edge.store.record(entry) {
            Ok(keys) => {
                if self.paused.take().is_some() {
                    tracing::info!("recording works again; taking pairs");
                    self.health(HealthState::Ok, None, waiting);
                }
                for (key, message) in keys.into_iter().zip(messages) {
                    self.send(Queued { key: Some(key), message });
                }
                self.settle(settle);
                true
            }
            Err(e) => {
                let reason = format!("{e:#}");
                if self.paused.is_none() {
                    tracing::error!(reason = %Escaped(&reason), "cannot record pairs: taking none until it works again (retrying every {} s); the alert and alarm stay as they are", RETRY_RECORD.as_secs());
                    self.health(HealthState::Paused, Some(reason), waiting);
                }
                self.paused = Some(Instant::now() + RETRY_RECORD);
                false
            }
        }
    }

    /// Moves a recorded pair's files; a failure is logged once and retried
    /// before every scan (the pair is not taken again meanwhile).
    fn settle(&mut self, settle: Settle) {
        match self.edge.spool.settle(&settle).and_then(|()| self.edge.store.settled(&settle.id)) {
            Ok(()) => {
                if self.pending.remove(&settle.id).is_some() {
                    self.logged.remove(&settle.id);
                    tracing::info!(pair = %Escaped(&settle.id), "pair's files moved at last");
                }
            }
            Err(e) => {
                let error = format!("pair {:?}: {e:#}", settle.id);
                self.log_once(&settle.id, &error, "cannot move a recorded pair's files; retrying before every scan");
                self.pending.insert(settle.id.clone(), settle);
            }
        }
    }

    /// Retries the moves still pending.
    fn finish_moves(&mut self) {
        let pending: Vec<Settle> = self.pending.values().cloned().collect();
        for settle in pending {
            self.settle(settle);
        }
    }

    fn health(&self, state: HealthState, reason: Option<String>, waiting: usize) {
        let body = Health { timestamp: timestamp(SystemTime::now()), state, reason, waiting };
        self.send(Queued { key: None, message: json(self.topics.health(), &body, true, Kind::Health) });
    }

    /// Logs `error` at error level unless `key` is already failing.
    fn log_once(&mut self, key: &str, error: &str, what: &str) {
        if self.logged.insert(key.to_string()) {
            tracing::error!(error = %Escaped(error), "{what}");
        }
    }

    fn send(&self, item: Queued) {
        // The publisher outlives the worker; a send fails only if it panicked.
        if self.tx.send(item).is_err() {
            tracing::error!("the MQTT publisher is gone; message dropped");
        }
    }
}

/// Waits until the watcher reports a change, `until`, or a stop, looking
/// at the stop flag at least every [`STOP_CHECK`].
fn wait_for_change(wake: &std_mpsc::Receiver<()>, until: Instant, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        if now >= until {
            return;
        }
        match wake.recv_timeout((until - now).min(STOP_CHECK)) {
            Ok(()) => {
                while wake.try_recv().is_ok() {}
                return;
            }
            Err(std_mpsc::RecvTimeoutError::Timeout) => {}
            // No watcher (it could not start): poll at STOP_CHECK.
            Err(std_mpsc::RecvTimeoutError::Disconnected) => return std::thread::sleep((until - now).min(STOP_CHECK)),
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
