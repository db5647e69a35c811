//! What must survive a restart of the daemon: alerts the broker has not
//! acknowledged yet (`pending-alerts.jsonl`, one message per line, written
//! and synced before the alert is sent) and the alert state with the next
//! alert sequence number (`alert-state.json`). Files are replaced by
//! write-then-rename, so a crash leaves the old or the new version.

use crate::messages::{Kind, Message};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use spanwatch_core::alert::AlertState;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The state folder.
pub struct Journal {
    dir: PathBuf,
    pending: Vec<Message>,
}

/// The alert state as persisted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// Whether the alert was raised.
    pub raised: bool,
    /// The sequence number the next alert gets.
    pub next_seq: u64,
}

impl AlertRecord {
    /// The core's state.
    pub fn state(&self) -> AlertState {
        if self.raised {
            AlertState::Raised
        } else {
            AlertState::Clear
        }
    }
}

impl Journal {
    /// Opens (creating) the state folder and reads the pending alerts.
    pub fn open(dir: &Path) -> Result<Journal> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create the state folder {}", dir.display()))?;
        let path = dir.join("pending-alerts.jsonl");
        let pending = match std::fs::read_to_string(&path) {
            Ok(text) => text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .enumerate()
                .map(|(i, line)| {
                    serde_json::from_str(line).with_context(|| format!("{} line {}: not a pending alert", path.display(), i + 1))
                })
                .collect::<Result<Vec<Message>>>()?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        Ok(Journal { dir: dir.to_path_buf(), pending })
    }

    /// Alerts not yet acknowledged by the broker, oldest first.
    pub fn pending(&self) -> &[Message] {
        &self.pending
    }

    /// Records an alert before it is sent.
    pub fn add(&mut self, message: &Message) -> Result<()> {
        self.pending.push(message.clone());
        self.write_pending()
    }

    /// Forgets an acknowledged alert.
    pub fn acknowledged(&mut self, seq: u64) -> Result<()> {
        let before = self.pending.len();
        self.pending.retain(|m| m.kind != Kind::Alert { seq });
        if self.pending.len() != before {
            self.write_pending()?;
        }
        Ok(())
    }

    /// The persisted alert state (clear, sequence 1 on first start).
    pub fn alert_record(&self) -> Result<AlertRecord> {
        let path = self.dir.join("alert-state.json");
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).with_context(|| format!("{} is not an alert state", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AlertRecord { raised: false, next_seq: 1 }),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Persists the alert state.
    pub fn save_alert_record(&self, record: AlertRecord) -> Result<()> {
        replace(&self.dir.join("alert-state.json"), serde_json::to_string(&record)?.as_bytes())
    }

    fn write_pending(&self) -> Result<()> {
        let mut text = String::new();
        for message in &self.pending {
            text.push_str(&serde_json::to_string(message)?);
            text.push('\n');
        }
        replace(&self.dir.join("pending-alerts.jsonl"), text.as_bytes())
    }
}

/// Writes `bytes` to `path` atomically and durably.
fn replace(path: &Path, bytes: &[u8]) -> Result<()> {
    let temporary = path.with_extension("partial");
    let mut file = std::fs::File::create(&temporary).with_context(|| format!("cannot write {}", temporary.display()))?;
    file.write_all(bytes).and_then(|_| file.sync_all()).with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("cannot replace {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(seq: u64) -> Message {
        Message { topic: "t/alert".into(), payload: format!("{{\"seq\":{seq}}}"), retain: true, kind: Kind::Alert { seq } }
    }

    #[test]
    fn pending_alerts_and_state_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(dir.path()).unwrap();
        assert_eq!(journal.alert_record().unwrap(), AlertRecord { raised: false, next_seq: 1 });
        journal.add(&alert(1)).unwrap();
        journal.add(&alert(2)).unwrap();
        journal.add(&alert(3)).unwrap();
        journal.acknowledged(2).unwrap();
        journal.save_alert_record(AlertRecord { raised: true, next_seq: 4 }).unwrap();
        let reopened = Journal::open(dir.path()).unwrap();
        assert_eq!(reopened.pending(), &[alert(1), alert(3)]);
        assert_eq!(reopened.alert_record().unwrap().state(), AlertState::Raised);
        std::fs::write(dir.path().join("pending-alerts.jsonl"), "{not json\n").unwrap();
        let error = Journal::open(dir.path()).err().unwrap().to_string();
        assert!(error.contains("pending-alerts.jsonl line 1"), "{error}");
    }
}
