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
    /// The folder is made private to the daemon (0700) when it creates it;
    /// one that is a symbolic link, or owned by another user, is refused.
    pub fn open(dir: &Path) -> Result<Journal> {
        private_folder(dir)?;
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

/// Makes `dir` (0700) if it is missing, and checks that it is a real folder
/// owned by the daemon's user: state must not be readable by others, nor
/// planted by them.
fn private_folder(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    if std::fs::symlink_metadata(dir).is_err() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create the state folder {}", dir.display()))?;
    }
    let meta = std::fs::symlink_metadata(dir).with_context(|| format!("cannot read the state folder {}", dir.display()))?;
    if !meta.file_type().is_dir() {
        anyhow::bail!("refusing the state folder {}: it is not a folder (a symbolic link or a file)", dir.display());
    }
    // /proc/self belongs to the process's effective user.
    let me = std::fs::metadata("/proc/self").map(|m| m.uid()).context("cannot read /proc/self to learn this process's user")?;
    if meta.uid() != me {
        anyhow::bail!("refusing the state folder {}: it belongs to user {}, not to this daemon's user {me}", dir.display(), meta.uid());
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically and durably. The temporary file is
/// created new (O_EXCL: a planted symbolic link is refused, never followed)
/// after any leftover entry of its name is removed (a link itself, not its
/// target); the rename replaces `path` itself, never a link's target.
fn replace(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let temporary = path.with_extension("partial");
    match std::fs::remove_file(&temporary) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot remove the leftover {}", temporary.display())),
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
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

    #[test]
    fn planted_links_are_never_followed_and_a_foreign_state_folder_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("state");
        let journal = Journal::open(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700, "made private");
        std::os::unix::fs::symlink(&victim, dir.join("alert-state.partial")).unwrap();
        std::os::unix::fs::symlink(&victim, dir.join("pending-alerts.partial")).unwrap();
        journal.save_alert_record(AlertRecord { raised: true, next_seq: 3 }).unwrap();
        let mut journal = journal;
        journal.add(&alert(1)).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious", "the link's target is untouched");
        assert_eq!(Journal::open(&dir).unwrap().alert_record().unwrap(), AlertRecord { raised: true, next_seq: 3 });

        // The state folder itself as a link: refused.
        let linked = parent.path().join("linked");
        std::os::unix::fs::symlink(outside.path(), &linked).unwrap();
        let error = Journal::open(&linked).err().expect("a linked state folder is refused").to_string();
        assert!(error.contains("not a folder"), "{error}");
        // Owned by another user (needs root to set up, as CI runs).
        let foreign = parent.path().join("foreign");
        std::fs::create_dir(&foreign).unwrap();
        if std::process::Command::new("chown").arg("65534").arg(&foreign).status().is_ok_and(|s| s.success()) {
            let error = Journal::open(&foreign).err().expect("a foreign state folder is refused").to_string();
            assert!(error.contains("belongs to user 65534"), "{error}");
        } else {
            println!("not root: the foreign-owner case is not checked here");
        }
    }
}
