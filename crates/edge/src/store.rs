//! What must survive a crash or a restart of the daemon, in one redb file
//! (`<state_dir>/state.redb`): every message the broker has not yet
//! acknowledged (the outbox), the standardized differences of the window's
//! latest pairs, the alert state, and the file moves of pairs already
//! recorded. A pair is one transaction: its messages, its difference, the
//! alert change and its move are durable together before anything is sent
//! or moved, so a killed daemon neither loses a message nor scores a pair
//! twice, and a restarted one judges the next pair on the same window.

use crate::messages::Message;
use crate::spool::Settle;
use anyhow::{Context, Result};
use redb::{Database, Durability, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};
use spanwatch_core::alert::AlertState;
use spanwatch_core::detector::DetectorState;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Messages not yet acknowledged, by sequence (JSON [`Message`]).
const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");
/// The latest pairs' standardized differences, by pair number (f32, little endian).
const WINDOW: TableDefinition<u64, &[u8]> = TableDefinition::new("window");
/// Recorded pairs whose files are still to be moved, by pair id (JSON [`Settle`]).
const SETTLES: TableDefinition<&str, &[u8]> = TableDefinition::new("settles");
/// The alert record and the calibration the window belongs to.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const ALERT_KEY: &str = "alert";
const CALIBRATION_KEY: &str = "calibration";

/// The persisted drift detector and alert, written with every scored pair.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// The sequence number the next alert gets.
    pub next_seq: u64,
    /// The detector's CUSUMs and the alert (clear for a record written
    /// before the detector existed).
    #[serde(default)]
    pub detector: DetectorState,
}

impl AlertRecord {
    /// The record of a first start: clear, sequence 1.
    pub const FIRST: AlertRecord =
        AlertRecord { next_seq: 1, detector: DetectorState { sums: [0.0; spanwatch_core::detector::WATCHES], quiet: 0, raised: false } };

    /// Reads a stored record. One an earlier release wrote with another
    /// detector (bundle format 5 had three CUSUMs, 7 four, 8 six) keeps its sequence
    /// number and starts clear: its detector belonged to a bundle this
    /// release no longer reads.
    fn decode(bytes: &[u8]) -> Result<AlertRecord> {
        #[derive(Deserialize)]
        struct Sequence {
            next_seq: u64,
        }
        match serde_json::from_slice(bytes) {
            Ok(record) => Ok(record),
            Err(_) => {
                let Sequence { next_seq } = serde_json::from_slice(bytes).context("the alert record is not valid")?;
                tracing::warn!("the saved alert record is from an earlier detector; starting clear, alert sequence kept at {next_seq}");
                Ok(AlertRecord { next_seq, ..AlertRecord::FIRST })
            }
        }
    }

    /// The alert state.
    pub fn state(&self) -> AlertState {
        self.detector.alert()
    }
}

/// What one pair adds, in one transaction.
pub struct Entry<'a> {
    /// Its messages, in order.
    pub messages: &'a [Message],
    /// Its standardized difference, if it was scored.
    pub difference: Option<&'a [f32]>,
    /// The detector and alert after the pair, if it was scored.
    pub alert: Option<AlertRecord>,
    /// Its files' move.
    pub settle: &'a Settle,
}

/// What a restart resumes from.
#[derive(Debug, Default)]
pub struct Restored {
    /// The alert state (clear, sequence 1 on a first start).
    pub alert: Option<AlertRecord>,
    /// The window's latest differences, oldest first.
    pub recent: Vec<Vec<f32>>,
    /// Unacknowledged messages with their keys, oldest first.
    pub outbox: Vec<(u64, Message)>,
    /// Recorded pairs whose files are still to be moved.
    pub settles: Vec<Settle>,
}

/// The state file.
pub struct Store {
    /// None after a failed write until it is opened again: redb refuses
    /// every write after an I/O error until the file is reopened (and
    /// recovered to its last commit).
    db: Mutex<Option<Database>>,
    path: PathBuf,
    /// How many differences the window keeps.
    window: u64,
}

impl Store {
    /// Opens (creating) `<dir>/state.redb` for the calibration `calibration`
    /// (a bundle digest) with a window of `window` pairs. The folder is made
    /// private (0700); one that is a symbolic link, another user's, or
    /// writable by others is refused. A window recorded under another
    /// calibration is dropped. A damaged state file (redb finds it corrupt,
    /// panics on it, or it ends early) is moved aside to
    /// `state.redb.damaged-<unix seconds>` and the daemon starts from a fresh
    /// one, saying so: what it held (unsent messages, the window) is lost,
    /// but the line is watched again.
    pub fn open(dir: &Path, calibration: &str, window: usize) -> Result<(Store, Restored)> {
        spanwatch_embed::private::private_folder(dir, "state folder")?;
        let path = dir.join("state.redb");
        if std::fs::symlink_metadata(&path).is_ok_and(|m| !m.file_type().is_file()) {
            anyhow::bail!("refusing the state file {}: it is not a regular file (a symbolic link?)", path.display());
        }
        let attempt = || std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Store::open_file(&path, calibration, window)));
        let why = match attempt() {
            Ok(Ok(opened)) => return Ok(opened),
            Ok(Err(e)) if !is_damage(&e) => return Err(e),
            Ok(Err(e)) => format!("{e:#}"),
            Err(panic) => format!("redb panicked reading it: {}", panic_text(&*panic)),
        };
        let seconds = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let aside = dir.join(format!("state.redb.damaged-{seconds}"));
        std::fs::rename(&path, &aside)
            .with_context(|| format!("the state file {} is damaged ({why}) and cannot be moved aside", path.display()))?;
        tracing::error!(
            state = %path.display(),
            moved_to = %aside.display(),
            "the state file is damaged ({why}); moved aside, starting from a fresh state (its unsent messages and window are lost)"
        );
        match attempt() {
            Ok(opened) => opened,
            Err(panic) => anyhow::bail!("a fresh state file {} cannot be made: redb panicked: {}", path.display(), panic_text(&*panic)),
        }
    }

    fn open_file(path: &Path, calibration: &str, window: usize) -> Result<(Store, Restored)> {
        let mut db = Database::create(path).with_context(|| format!("cannot open the state file {}", path.display()))?;
        // redb opens some damaged files without a word and panics later (at
        // its first commit, or when it closes): check every page now.
        if !db.check_integrity().with_context(|| format!("the state file {} fails redb's integrity check", path.display()))? {
            tracing::warn!(state = %path.display(), "the state file was damaged and redb repaired it");
        }
        let store = Store { db: Mutex::new(Some(db)), path: path.to_path_buf(), window: window as u64 };
        let restored = store
            .write(Durability::Immediate, |txn| store.restore(txn, calibration))
            .with_context(|| format!("cannot read the state file {}", store.path.display()))?;
        Ok((store, restored))
    }

    fn restore(&self, txn: &redb::WriteTransaction, calibration: &str) -> Result<Restored> {
        let mut restored = Restored::default();
        {
            let mut meta = txn.open_table(META)?;
            if let Some(bytes) = meta.get(ALERT_KEY)? {
                restored.alert = Some(AlertRecord::decode(bytes.value())?);
            }
            let same = meta.get(CALIBRATION_KEY)?.is_some_and(|c| c.value() == calibration.as_bytes());
            let mut window = txn.open_table(WINDOW)?;
            if !same {
                if window.len()? > 0 {
                    tracing::warn!("the saved window belongs to another calibration; starting from the bundle's seeds");
                }
                window.retain(|_, _| false)?;
                meta.insert(CALIBRATION_KEY, calibration.as_bytes())?;
                // A detector (and an alert) of another calibration says nothing
                // about this one: start clear with the CUSUMs at 0 (and the
                // alarm line low), keeping the sequence numbers increasing.
                if let Some(alert) = restored.alert.as_mut() {
                    if alert.detector.raised {
                        tracing::warn!("the saved alert was raised under another calibration; starting clear");
                    }
                    alert.detector = DetectorState::default();
                    meta.insert(ALERT_KEY, serde_json::to_vec(&*alert)?.as_slice())?;
                }
            }
            for item in window.iter()? {
                let (_, bytes) = item?;
                restored.recent.push(bytes.value().as_chunks::<4>().0.iter().map(|b| f32::from_le_bytes(*b)).collect());
            }
            let recent = restored.recent.len();
            restored.recent.drain(..recent.saturating_sub(self.window as usize));
            for item in txn.open_table(OUTBOX)?.iter()? {
                let (key, bytes) = item?;
                let message =
                    serde_json::from_slice(bytes.value()).with_context(|| format!("outbox entry {} is not a message", key.value()))?;
                restored.outbox.push((key.value(), message));
            }
            for item in txn.open_table(SETTLES)?.iter()? {
                let (id, bytes) = item?;
                let settle =
                    serde_json::from_slice(bytes.value()).with_context(|| format!("the move of pair {:?} is not valid", id.value()))?;
                restored.settles.push(settle);
            }
        }
        Ok(restored)
    }

    /// Records one pair durably; returns the outbox keys of its messages.
    pub fn record(&self, entry: Entry<'_>) -> Result<Vec<u64>> {
        self.write(Durability::Immediate, |txn| {
            let mut outbox = txn.open_table(OUTBOX)?;
            let first = outbox.last()?.map_or(0, |(k, _)| k.value() + 1);
            let mut keys = Vec::with_capacity(entry.messages.len());
            for (key, message) in (first..).zip(entry.messages) {
                outbox.insert(key, serde_json::to_vec(message)?.as_slice())?;
                keys.push(key);
            }
            if let Some(difference) = entry.difference {
                let mut window = txn.open_table(WINDOW)?;
                let next = window.last()?.map_or(0, |(k, _)| k.value() + 1);
                let bytes: Vec<u8> = difference.iter().flat_map(|v| v.to_le_bytes()).collect();
                window.insert(next, bytes.as_slice())?;
                let keep_from = (next + 1).saturating_sub(self.window);
                window.retain(|k, _| k >= keep_from)?;
            }
            if let Some(alert) = entry.alert {
                txn.open_table(META)?.insert(ALERT_KEY, serde_json::to_vec(&alert)?.as_slice())?;
            }
            txn.open_table(SETTLES)?.insert(entry.settle.id.as_str(), serde_json::to_vec(entry.settle)?.as_slice())?;
            Ok(keys)
        })
        .with_context(|| format!("cannot record pair {:?} in {}", entry.settle.id, self.path.display()))
    }

    /// Forgets a pair's move once its files are in done/ or failed/.
    pub fn settled(&self, id: &str) -> Result<()> {
        self.write(Durability::Immediate, |txn| {
            txn.open_table(SETTLES)?.remove(id)?;
            Ok(())
        })
        .with_context(|| format!("cannot update {}", self.path.display()))
    }

    /// Forgets messages the broker acknowledged (or the outbox dropped).
    /// Not synced: after a crash a forgotten message may be sent again,
    /// which at-least-once delivery allows; the next pair's record syncs it.
    pub fn forget(&self, keys: &[u64]) -> Result<()> {
        self.write(Durability::None, |txn| {
            let mut outbox = txn.open_table(OUTBOX)?;
            for key in keys {
                outbox.remove(key)?;
            }
            Ok(())
        })
        .with_context(|| format!("cannot update {}", self.path.display()))
    }

    /// Makes every earlier change durable (at shutdown).
    pub fn sync(&self) -> Result<()> {
        self.write(Durability::Immediate, |_| Ok(())).with_context(|| format!("cannot sync {}", self.path.display()))
    }

    /// Runs `body` in one write transaction; after any failure the file is
    /// closed, and opened again by the next write.
    fn write<T>(&self, durability: Durability, body: impl FnOnce(&redb::WriteTransaction) -> Result<T>) -> Result<T> {
        let mut db = self.db.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if db.is_none() {
            *db = Some(Database::create(&self.path).context("cannot open it again")?);
        }
        let attempt = |db: &Database| -> Result<T> {
            let mut txn = db.begin_write()?;
            txn.set_durability(durability)?;
            let value = body(&txn)?;
            txn.commit()?;
            Ok(value)
        };
        let outcome = attempt(db.as_ref().expect("opened above"));
        if outcome.is_err() {
            *db = None;
        }
        outcome
    }
}

impl Drop for Store {
    /// Closes the file; a panic of redb's while closing a file damaged
    /// under it is caught and logged, never an abort of the daemon's exit.
    fn drop(&mut self) {
        let db = self.db.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(db))).is_err() {
            tracing::error!(state = %self.path.display(), "redb panicked closing the state file; it will be checked at the next start");
        }
    }
}

/// Whether opening the state failed because the file is damaged (redb
/// calls it corrupt or not its own, or it ends early), not because it is in
/// use or the disk or its permissions failed.
fn is_damage(error: &anyhow::Error) -> bool {
    let mut damaged = false;
    for cause in error.chain() {
        if let Some(redb::DatabaseError::DatabaseAlreadyOpen) = cause.downcast_ref() {
            return false;
        }
        let io = cause.downcast_ref::<std::io::Error>().or_else(|| match storage_error(cause) {
            Some(redb::StorageError::Io(e)) => Some(e),
            _ => None,
        });
        if let Some(io) = io {
            // redb reports a file that is not one of its own (a bad magic number) as invalid data.
            return matches!(io.kind(), std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData);
        }
        damaged |= matches!(storage_error(cause), Some(redb::StorageError::Corrupted(_)))
            || matches!(cause.downcast_ref(), Some(redb::DatabaseError::UpgradeRequired(_) | redb::DatabaseError::RepairAborted))
            || matches!(cause.downcast_ref(), Some(redb::Error::Corrupted(_)))
            || cause.downcast_ref::<serde_json::Error>().is_some();
    }
    damaged
}

/// The storage error inside one of redb's error types, if any.
fn storage_error<'a>(cause: &'a (dyn std::error::Error + 'static)) -> Option<&'a redb::StorageError> {
    if let Some(e) = cause.downcast_ref::<redb::StorageError>() {
        return Some(e);
    }
    match (cause.downcast_ref(), cause.downcast_ref(), cause.downcast_ref(), cause.downcast_ref()) {
        (Some(redb::DatabaseError::Storage(e)), _, _, _)
        | (_, Some(redb::TableError::Storage(e)), _, _)
        | (_, _, Some(redb::TransactionError::Storage(e)), _)
        | (_, _, _, Some(redb::CommitError::Storage(e))) => Some(e),
        _ => None,
    }
}

/// The message of a caught panic.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::Kind;
    use crate::spool::{Destination, SpoolEntry};

    fn message(n: u64, kind: Kind) -> Message {
        Message { topic: "t".into(), payload: n.to_string(), retain: false, kind }
    }

    fn settle(id: &str) -> Settle {
        Settle { id: id.into(), files: vec![SpoolEntry { name: b"a\xffb.source.png".to_vec(), inode: 7 }], into: Destination::Done }
    }

    #[test]
    fn a_reopened_store_has_the_outbox_window_alert_and_moves_it_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let (store, restored) = Store::open(dir.path(), "bundle-a", 2).unwrap();
        assert!(restored.alert.is_none() && restored.recent.is_empty() && restored.outbox.is_empty());
        let alert =
            AlertRecord { next_seq: 2, detector: DetectorState { sums: [1.5, 0.0, 7.25, 0.5, 0.25, 0.0, 0.75], quiet: 3, raised: true } };
        for (i, id) in ["p1", "p2", "p3"].into_iter().enumerate() {
            let messages = [message(2 * i as u64, Kind::Data), message(2 * i as u64 + 1, Kind::Alert { seq: 1 })];
            let difference = [i as f32, -0.5];
            let keys = store
                .record(Entry { messages: &messages, difference: Some(&difference), alert: (i == 1).then_some(alert), settle: &settle(id) })
                .unwrap();
            assert_eq!(keys, [2 * i as u64, 2 * i as u64 + 1]);
        }
        store.forget(&[0, 1, 3]).unwrap();
        store.settled("p1").unwrap();
        drop(store);

        let (store, restored) = Store::open(dir.path(), "bundle-a", 2).unwrap();
        assert_eq!(restored.alert, Some(alert));
        assert_eq!(restored.recent, [vec![1.0, -0.5], vec![2.0, -0.5]], "the last two pairs, oldest first");
        let keys: Vec<u64> = restored.outbox.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, [2, 4, 5]);
        assert_eq!(restored.outbox[0].1, message(2, Kind::Data));
        let ids: Vec<&str> = restored.settles.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["p2", "p3"]);
        assert_eq!(restored.settles[0], settle("p2"), "a file name that is not UTF-8 survives");
        // New keys continue after the last one, never reusing an unsent key.
        let keys =
            store.record(Entry { messages: &[message(9, Kind::Data)], difference: None, alert: None, settle: &settle("p4") }).unwrap();
        assert_eq!(keys, [6]);
        drop(store);

        // Another calibration: the window, the CUSUMs and a raised alert go
        // (the sequence goes on), the rest stays.
        let (_, restored) = Store::open(dir.path(), "bundle-b", 2).unwrap();
        assert!(restored.recent.is_empty());
        let cleared = AlertRecord { detector: DetectorState::default(), ..alert };
        assert_eq!((restored.alert, restored.outbox.len()), (Some(cleared), 4));
    }

    /// A record written before the detector existed reads as clear with
    /// the CUSUMs at 0, keeping its sequence number.
    #[test]
    fn an_alert_record_without_a_detector_reads_as_clear() {
        let record: AlertRecord = serde_json::from_str(r#"{"raised":true,"next_seq":5}"#).unwrap();
        assert_eq!(record, AlertRecord { next_seq: 5, detector: DetectorState::default() });
    }

    /// A record of bundle format 5's three CUSUMs, format 7's four or
    /// format 8's six, raised, reads as clear with its sequence number; one
    /// of this release's seven reads as it was; one that is not a record is
    /// refused.
    #[test]
    fn an_alert_record_of_an_earlier_detector_keeps_its_sequence() {
        let three = br#"{"next_seq":9,"detector":{"sums":[1.0,2.0,3.0],"quiet":4,"raised":true}}"#;
        assert_eq!(AlertRecord::decode(three).unwrap(), AlertRecord { next_seq: 9, ..AlertRecord::FIRST });
        let four = br#"{"next_seq":2,"detector":{"sums":[1.0,2.0,3.0,4.0],"quiet":4,"raised":true}}"#;
        assert_eq!(AlertRecord::decode(four).unwrap(), AlertRecord { next_seq: 2, ..AlertRecord::FIRST });
        assert!(AlertRecord::decode(b"{}").is_err());
        let six = br#"{"next_seq":3,"detector":{"sums":[1.0,2.0,3.0,4.0,5.0,6.0],"quiet":4,"raised":true}}"#;
        assert_eq!(AlertRecord::decode(six).unwrap(), AlertRecord { next_seq: 3, ..AlertRecord::FIRST });
        let seven = br#"{"next_seq":2,"detector":{"sums":[1.0,2.0,3.0,4.0,5.0,6.0,7.0],"quiet":4,"raised":true}}"#;
        assert!(AlertRecord::decode(seven).unwrap().detector.raised);
    }

    #[test]
    fn a_second_daemon_on_the_same_state_is_refused_and_so_is_a_foreign_folder() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("state");
        let (_first, _) = Store::open(&dir, "b", 4).unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700, "made private");
        }
        let error = format!("{:#}", Store::open(&dir, "b", 4).err().expect("refused"));
        assert!(error.contains("state.redb"), "{error}");

        let outside = tempfile::tempdir().unwrap();
        let planted = parent.path().join("planted");
        std::fs::create_dir(&planted).unwrap();
        std::os::unix::fs::symlink(outside.path().join("victim"), planted.join("state.redb")).unwrap();
        let error = Store::open(&planted, "b", 4).err().expect("a linked state file is refused").to_string();
        assert!(error.contains("not a regular file"), "{error}");
        assert!(!outside.path().join("victim").exists(), "the link's target was not created");
        let linked = parent.path().join("linked");
        std::os::unix::fs::symlink(outside.path(), &linked).unwrap();
        let error = Store::open(&linked, "b", 4).err().expect("a linked state folder is refused").to_string();
        assert!(error.contains("not a folder"), "{error}");
        assert!(!outside.path().join("state.redb").exists());
        // Owned by another user (needs root to set up, as CI runs).
        let foreign = parent.path().join("foreign");
        std::fs::create_dir(&foreign).unwrap();
        if std::process::Command::new("chown").arg("65534").arg(&foreign).status().is_ok_and(|s| s.success()) {
            let error = Store::open(&foreign, "b", 4).err().expect("a foreign state folder is refused").to_string();
            assert!(error.contains("belongs to user 65534"), "{error}");
        } else {
            println!("not root: the foreign-owner case is not checked here");
        }
    }

    /// A state file with flipped bytes or cut short never panics the daemon
    /// (redb did, exit 101, on every start): it is moved aside, named, and a
    /// fresh state begins; a state in use is still refused, not moved.
    #[test]
    fn a_damaged_state_file_is_moved_aside_and_a_fresh_one_begins() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("state");
        let make = || {
            let (store, _) = Store::open(&dir, "b", 4).unwrap();
            for n in 0..20 {
                let settle = settle(&format!("p{n}"));
                store
                    .record(Entry { messages: &[message(n, Kind::Data)], difference: Some(&[n as f32; 8]), alert: None, settle: &settle })
                    .unwrap();
            }
        };
        type Damage = Box<dyn Fn(&mut Vec<u8>)>;
        let damages: Vec<(&str, Damage)> = vec![
            ("cut in half", Box::new(|b: &mut Vec<u8>| b.truncate(b.len() / 2))),
            ("cut to 100 bytes", Box::new(|b: &mut Vec<u8>| b.truncate(100))),
            ("header byte flipped", Box::new(|b: &mut Vec<u8>| b[9] ^= 0xff)),
            ("region header flipped", Box::new(|b: &mut Vec<u8>| b[4096 + 3] ^= 0xff)),
            ("zeros", Box::new(|b: &mut Vec<u8>| b.iter_mut().for_each(|x| *x = 0))),
        ];
        for (what, damage) in damages {
            let _ = std::fs::remove_dir_all(&dir);
            make();
            let path = dir.join("state.redb");
            let mut bytes = std::fs::read(&path).unwrap();
            damage(&mut bytes);
            std::fs::write(&path, &bytes).unwrap();
            let opened = Store::open(&dir, "b", 4);
            let (store, restored) = opened.unwrap_or_else(|e| panic!("{what}: {e:#}"));
            let aside: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
            if aside.iter().any(|n| n.starts_with("state.redb.damaged-")) {
                assert!(restored.recent.is_empty() && restored.outbox.is_empty(), "{what}: a fresh state");
            } else {
                // redb recovered the file itself (its repair on open): then the state is whole.
                assert_eq!(restored.outbox.len(), 20, "{what}: recovered whole or moved aside");
            }
            drop(store);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        /// Any damage to a real state file (the fuzz target state_file's
        /// twin): the state opens, restored or fresh, never a panic or error.
        #[test]
        fn any_damaged_state_file_opens(flips in proptest::collection::vec((0usize..1 << 20, 1u8..=255), 0..8), cut in proptest::option::of(0usize..1 << 20)) {
            let parent = tempfile::tempdir().unwrap();
            let dir = parent.path().join("state");
            {
                let (store, _) = Store::open(&dir, "b", 4).unwrap();
                for n in 0..6 {
                    let settle = settle(&format!("p{n}"));
                    store.record(Entry { messages: &[message(n, Kind::Data)], difference: Some(&[n as f32; 8]), alert: None, settle: &settle }).unwrap();
                }
            }
            let path = dir.join("state.redb");
            let mut bytes = std::fs::read(&path).unwrap();
            for (at, mask) in flips {
                let len = bytes.len();
                bytes[at % len] ^= mask;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut % (bytes.len() + 1));
            }
            std::fs::write(&path, &bytes).unwrap();
            let opened = Store::open(&dir, "b", 4);
            proptest::prop_assert!(opened.is_ok(), "{:#}", opened.err().unwrap());
        }
    }
}
