//! The spool directory: a generator drops `<id>.source.png` and
//! `<id>.synthetic.png` (or .jpg/.jpeg); a pair is ready once both files
//! exist and neither has changed for the settle time. Processed pairs move
//! to `done/`, rejected ones to `failed/` with `<id>.reason.txt`; nothing
//! is deleted. Hidden names (a writer's temporary files) are left alone, so
//! a writer can write under a dot-name and rename in; nothing is ignored
//! without a word: a pair name that is not a regular file (a symbolic link,
//! a folder) is refused into `failed/` (never followed), and any other entry
//! is reported once (a hidden one once it is older than the orphan timeout).
//!
//! A half waits for its partner for the orphan timeout counted from when the
//! spool first saw it, not from its modification time: files moved in with
//! their old times (`mv`, `cp -p`, `rsync -t`) are not orphans on arrival.
//! A file whose modification time lies in the future (clock skew) is
//! reported once and settles from first sight too.

use anyhow::{Context, Result};
use rustix::fs::{statat, AtFlags, Mode, OFlags, CWD};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Where a recorded pair's files go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Destination {
    /// Scored: to done/.
    Done,
    /// Refused: to failed/, with the reason written beside them.
    Failed {
        /// Why.
        reason: String,
    },
}

/// One spool file of a recorded pair: its name (bytes, any encoding) and
/// inode when recorded, so that a later file of the same name is never
/// mistaken for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpoolEntry {
    /// The file name in the spool.
    pub name: Vec<u8>,
    /// Its inode when the pair was recorded (0: it had already gone).
    pub inode: u64,
}

/// The move of a recorded pair's files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settle {
    /// The pair id.
    pub id: String,
    /// Its files.
    pub files: Vec<SpoolEntry>,
    /// Where they go.
    pub into: Destination,
}

const SOURCE: &str = ".source.";
const SYNTHETIC: &str = ".synthetic.";
const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// The two files of one synthetic defect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairFiles {
    /// The pair id (the shared file-name stem).
    pub id: String,
    /// The normal image the defect was made from.
    pub source: PathBuf,
    /// The synthetic defect image.
    pub synthetic: PathBuf,
    /// The inodes of source and synthetic when the scan found them: the pair
    /// is those files, whatever is renamed over their names later.
    pub inodes: [u64; 2],
}

impl PairFiles {
    /// The pair's file names in the spool with the inodes the scan found.
    fn entries(&self) -> [(&OsStr, u64); 2] {
        [(self.source.file_name().unwrap_or_default(), self.inodes[0]), (self.synthetic.file_name().unwrap_or_default(), self.inodes[1])]
    }
}

/// What the spool found on one scan.
#[derive(Debug, Default)]
pub struct Scan {
    /// Complete pairs, oldest first (by the later file's modification time, then id).
    pub ready: Vec<PairFiles>,
    /// Files whose partner did not arrive within the orphan timeout.
    pub orphans: Vec<(String, PathBuf)>,
    /// Pairs still settling or waiting for their partner.
    pub waiting: usize,
    /// How long until the first of them has settled or expired as an
    /// orphan (a scan then finds something new without any file changing).
    pub due: Option<Duration>,
    /// Entries named like a pair's file that are not regular files (a
    /// symbolic link, a folder): id, path and why; to be moved to failed/.
    pub refused: Vec<(String, PathBuf, &'static str)>,
    /// Other entries the spool leaves alone, each reported on one scan only:
    /// path and why.
    pub strangers: Vec<(PathBuf, &'static str)>,
    /// Pair files whose modification time is in the future (clock skew),
    /// each reported on one scan only: path and how far ahead.
    pub future: Vec<(PathBuf, Duration)>,
}

/// When the spool first saw a pair file, and its modification time and inode then.
#[derive(Clone, Copy, Debug)]
struct Sighting {
    modified: SystemTime,
    first: SystemTime,
    inode: u64,
}

/// A spool directory with its done/ and failed/ folders.
pub struct Spool {
    root: PathBuf,
    /// The folders as opened at start: moves and reason files go through
    /// these descriptors (renameat, openat), so a folder swapped for a link
    /// later still cannot send a file elsewhere.
    root_dir: OwnedFd,
    done_dir: OwnedFd,
    failed_dir: OwnedFd,
    settle: Duration,
    orphan_after: Duration,
    /// The daemon's own folders in the spool: done/, failed/ and the state
    /// folder (when it is inside the spool).
    own: [PathBuf; 3],
    /// Strangers (and pair files from the future) already reported.
    reported: HashSet<PathBuf>,
    /// The pair files of the last scan, with when they were first seen.
    seen: HashMap<PathBuf, Sighting>,
}

/// Which half of a pair a file is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Half {
    /// `<id>.source.<ext>`: the normal image.
    Source,
    /// `<id>.synthetic.<ext>`: the synthetic defect.
    Synthetic,
}

impl Spool {
    /// Opens (creating if needed) the spool at `root`; `state_dir` is the
    /// daemon's state folder, left alone if it is inside the spool.
    pub fn open(root: &Path, settle: Duration, orphan_after: Duration, state_dir: &Path) -> Result<Spool> {
        for dir in [root.to_path_buf(), root.join("done"), root.join("failed")] {
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create the spool folder {}", dir.display()))?;
        }
        let directory = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let root_dir = rustix::fs::openat(CWD, root, directory, Mode::empty())
            .with_context(|| format!("cannot open the spool folder {}", root.display()))?;
        let sub = |name: &str| {
            rustix::fs::openat(&root_dir, name, directory | OFlags::NOFOLLOW, Mode::empty()).with_context(|| {
                format!(
                    "refusing the spool folder {}: it is not a folder (a symbolic link? files would land elsewhere)",
                    root.join(name).display()
                )
            })
        };
        let (done_dir, failed_dir) = (sub("done")?, sub("failed")?);
        let own = [root.join("done"), root.join("failed"), state_dir.to_path_buf()];
        Ok(Spool {
            root: root.to_path_buf(),
            root_dir,
            done_dir,
            failed_dir,
            settle,
            orphan_after,
            own,
            reported: HashSet::new(),
            seen: HashMap::new(),
        })
    }

    /// The spool's root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Lists complete, settled pairs, expired orphans, refused entries and
    /// strangers not reported before.
    pub fn scan(&mut self, now: SystemTime) -> Result<Scan> {
        let mut halves: BTreeMap<String, [Option<(PathBuf, Sighting)>; 2]> = BTreeMap::new();
        let (mut refused, mut strangers, mut future) = (Vec::new(), Vec::new(), Vec::new());
        let mut seen = HashMap::new();
        let entries = std::fs::read_dir(&self.root).with_context(|| format!("cannot read the spool {}", self.root.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot read the spool {}", self.root.display()))?;
            let raw_name = entry.file_name();
            let name = raw_name.to_string_lossy().into_owned();
            // Lossy names of two files can be equal (q\xfe.png, q\xff.png): such a name is no pair's.
            let text = raw_name.to_str().is_some();
            // DirEntry::metadata does not follow symbolic links.
            let Ok(meta) = entry.metadata() else { continue };
            let modified = meta.modified().unwrap_or(now);
            let path = entry.path();
            if meta.is_dir() && self.own.contains(&path) {
                continue;
            }
            match classify(&name) {
                Some((id, half)) if meta.is_file() && text => {
                    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
                    let sighting = match self.seen.get(&path) {
                        Some(before) if before.modified == modified && before.inode == inode => *before,
                        _ => Sighting { modified, first: now, inode },
                    };
                    if let Ok(ahead) = modified.duration_since(now) {
                        if ahead > Duration::from_secs(2) && self.reported.insert(path.clone()) {
                            future.push((path.clone(), ahead));
                        }
                    }
                    seen.insert(path.clone(), sighting);
                    halves.entry(id).or_default()[half as usize] = Some((path, sighting));
                }
                Some((id, _)) => {
                    let why = if !text {
                        "has a name that is not valid UTF-8, so it cannot be told from other such names; rename it"
                    } else if meta.is_symlink() {
                        "is a symbolic link; the spool follows no links"
                    } else if meta.is_dir() {
                        "is a folder, not an image file"
                    } else {
                        "is not a regular file"
                    };
                    refused.push((id, path, why));
                }
                None => {
                    let why = if name.starts_with('.') {
                        "a hidden name (a writer's temporary file) older than the orphan timeout: left alone"
                    } else {
                        "not named <id>.source.<png|jpg|jpeg> or <id>.synthetic.<png|jpg|jpeg>: left alone"
                    };
                    let stale = now.duration_since(modified).unwrap_or_default() >= self.orphan_after;
                    if (!name.starts_with('.') || stale) && self.reported.insert(path.clone()) {
                        strangers.push((path, why));
                    }
                }
            }
        }
        self.seen = seen;
        // Unchanged for the settle time; a time from the future counts from first sight.
        let settled =
            |s: &Sighting| now.duration_since(s.modified).or_else(|_| now.duration_since(s.first)).unwrap_or_default() >= self.settle;
        let waited_out = |s: &Sighting| now.duration_since(s.first).unwrap_or_default() >= self.orphan_after;
        let mut ready = Vec::new();
        let mut orphans = Vec::new();
        let mut waiting = 0;
        let mut due: Option<Duration> = None;
        let mut due_in = |left: Duration| due = Some(due.map_or(left, |d| d.min(left)));
        for (id, [source, synthetic]) in halves {
            match (source, synthetic) {
                (Some((source, s1)), Some((synthetic, s2))) if settled(&s1) && settled(&s2) => {
                    ready.push((s1.modified.max(s2.modified), PairFiles { id, source, synthetic, inodes: [s1.inode, s2.inode] }));
                }
                (Some((path, s)), None) | (None, Some((path, s))) if waited_out(&s) => {
                    orphans.push((id, path));
                }
                (source, synthetic) => {
                    waiting += 1;
                    let lone = source.is_none() || synthetic.is_none();
                    for (_, s) in source.iter().chain(&synthetic) {
                        if !settled(s) {
                            let since = now.duration_since(s.modified).or_else(|_| now.duration_since(s.first)).unwrap_or_default();
                            due_in(self.settle.saturating_sub(since));
                        }
                        if lone {
                            due_in(self.orphan_after.saturating_sub(now.duration_since(s.first).unwrap_or_default()));
                        }
                    }
                }
            }
        }
        ready.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
        Ok(Scan { ready: ready.into_iter().map(|(_, pair)| pair).collect(), orphans, waiting, due, refused, strangers, future })
    }

    /// What moving `files` of pair `id` into `into` means, recorded before
    /// the move: each file's name and inode now (a file already gone has
    /// inode 0 and is skipped).
    pub fn settle_of(&self, id: &str, files: &[&Path], into: Destination) -> Settle {
        let files = files
            .iter()
            .map(|file| {
                let name = file.file_name().unwrap_or_default();
                SpoolEntry { name: name.as_bytes().to_vec(), inode: self.inode(name).unwrap_or(0) }
            })
            .collect();
        Settle { id: id.to_string(), files, into }
    }

    /// The move of a scanned pair's files: the very files the scan found
    /// (by their inodes then), not whatever holds their names now.
    pub fn settle_of_pair(&self, pair: &PairFiles, into: Destination) -> Settle {
        let files = pair.entries().into_iter().map(|(name, inode)| SpoolEntry { name: name.as_bytes().to_vec(), inode }).collect();
        Settle { id: pair.id.clone(), files, into }
    }

    /// Whether the pair's names still hold the files the scan found (a file
    /// renamed over one of them meanwhile means what was read may not be it).
    pub fn unchanged(&self, pair: &PairFiles) -> bool {
        pair.entries().into_iter().all(|(name, inode)| self.inode(name) == Some(inode))
    }

    /// Carries out a recorded move; safe to repeat after a crash. A file is
    /// moved only if the spool still holds that very file (same inode); the
    /// reason of a failed pair is written first, and only while some of its
    /// files are still to move. Entries are moved themselves, a symbolic
    /// link as a link, never its target, into the folders opened at start.
    pub fn settle(&mut self, settle: &Settle) -> Result<()> {
        let folder = match settle.into {
            Destination::Done => "done",
            Destination::Failed { .. } => "failed",
        };
        self.reopen_if_replaced(folder)?;
        let present: Vec<&OsStr> = settle
            .files
            .iter()
            .filter(|f| f.inode != 0 && self.inode(OsStr::from_bytes(&f.name)) == Some(f.inode))
            .map(|f| OsStr::from_bytes(&f.name))
            .collect();
        let (folder, dir) = match &settle.into {
            Destination::Done => ("done", &self.done_dir),
            Destination::Failed { reason } => {
                if !present.is_empty() {
                    self.write_reason(&settle.id, reason)?;
                }
                ("failed", &self.failed_dir)
            }
        };
        for name in present {
            let target = unused(dir, name);
            rustix::fs::renameat(&self.root_dir, name, dir, &target).with_context(|| {
                format!("cannot move {} to {}", self.root.join(name).display(), self.root.join(folder).join(&target).display())
            })?;
        }
        Ok(())
    }

    /// Notices that `done/` or `failed/` was removed, or replaced by another
    /// real folder (deleted and made again, renamed and made again), since
    /// it was opened, and opens the one now there (making it again when it
    /// is gone), so moves neither fail until a restart nor go on into a
    /// renamed folder. A link or a file in its place is never opened: moves
    /// keep going into the folder opened before.
    fn reopen_if_replaced(&mut self, name: &str) -> Result<()> {
        use rustix::fs::FileType;
        let held = if name == "done" { &self.done_dir } else { &self.failed_dir };
        let before = rustix::fs::fstat(held).with_context(|| format!("cannot read the spool folder {}", self.root.join(name).display()))?;
        match statat(&self.root_dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(now) if (now.st_dev, now.st_ino) == (before.st_dev, before.st_ino) => return Ok(()),
            Ok(now) if FileType::from_raw_mode(now.st_mode) != FileType::Directory => return Ok(()),
            Ok(_) => {}
            Err(_) => rustix::fs::mkdirat(&self.root_dir, name, Mode::from_raw_mode(0o755))
                .with_context(|| format!("cannot make the spool folder {} again", self.root.join(name).display()))?,
        }
        let directory = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fresh = rustix::fs::openat(&self.root_dir, name, directory, Mode::empty())
            .with_context(|| format!("cannot open the spool folder {}", self.root.join(name).display()))?;
        tracing::warn!(folder = %self.root.join(name).display(), "the spool folder was removed or replaced while running; moving into the one there now");
        if name == "done" {
            self.done_dir = fresh;
        } else {
            self.failed_dir = fresh;
        }
        Ok(())
    }

    /// The inode of the spool entry `name` itself (a link's own, never its target's).
    fn inode(&self, name: &OsStr) -> Option<u64> {
        statat(&self.root_dir, name, AtFlags::SYMLINK_NOFOLLOW).ok().map(|st| st.st_ino)
    }

    /// Writes `failed/<id>.reason.txt`, created new (O_EXCL, O_NOFOLLOW: a
    /// planted symbolic link is never followed); a file left half-written
    /// (a full disk) is removed, so a retry starts clean.
    fn write_reason(&self, id: &str, reason: &str) -> Result<()> {
        use std::io::Write;
        let name = unused(&self.failed_dir, OsStr::new(&format!("{id}.reason.txt")));
        let path = self.root.join("failed").join(&name);
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.failed_dir, &name, flags, Mode::from_raw_mode(0o644))
            .with_context(|| format!("cannot write {}", path.display()))?;
        let mut file = std::fs::File::from(fd);
        if let Err(e) = file.write_all(format!("{reason}\n").as_bytes()).and_then(|()| file.sync_all()) {
            let _ = rustix::fs::unlinkat(&self.failed_dir, &name, AtFlags::empty());
            return Err(e).with_context(|| format!("cannot write {}", path.display()));
        }
        Ok(())
    }
}

/// The longest file name Linux file systems take, in bytes.
const NAME_MAX: usize = 255;

/// `name`, or `name` with `.1`, `.2`, ... before the extension if an entry
/// of that name exists in `dir` (a reused pair id never overwrites an
/// earlier file; a symbolic link, even a dangling one, counts as taken).
/// The stem is shortened when a numbered name would be longer than a file
/// name can be.
fn unused(dir: &OwnedFd, name: &OsStr) -> OsString {
    let taken = |n: &OsStr| statat(dir, n, AtFlags::SYMLINK_NOFOLLOW).is_ok();
    if !taken(name) {
        return name.to_os_string();
    }
    let path = Path::new(name);
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let extension = path.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
    (1..)
        .map(|n| {
            let suffix = format!(".{n}{extension}");
            let mut end = stem.len().min(NAME_MAX.saturating_sub(suffix.len()));
            while !stem.is_char_boundary(end) {
                end -= 1;
            }
            OsString::from(format!("{}{suffix}", &stem[..end]))
        })
        .find(|n| !taken(n))
        .expect("an unused name")
}

/// The pair id and half of a spool file name, if it is one.
pub fn classify(name: &str) -> Option<(String, Half)> {
    if name.starts_with('.') {
        return None;
    }
    let (rest, extension) = name.rsplit_once('.')?;
    if !EXTENSIONS.contains(&extension.to_ascii_lowercase().as_str()) {
        return None;
    }
    let rest = format!("{rest}.");
    for (marker, half) in [(SOURCE, Half::Source), (SYNTHETIC, Half::Synthetic)] {
        if let Some(id) = rest.strip_suffix(marker) {
            return (!id.is_empty()).then(|| (id.to_string(), half));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(reason: &str) -> Destination {
        Destination::Failed { reason: reason.into() }
    }

    #[test]
    fn a_file_removed_before_its_move_is_skipped_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), Duration::from_millis(0), Duration::from_secs(60), &dir.path().join(".spanwatch")).unwrap();
        let (source, synthetic) = (dir.path().join("a.source.png"), dir.path().join("a.synthetic.png"));
        std::fs::write(&source, b"x").unwrap();
        std::fs::write(&synthetic, b"y").unwrap();
        let settle = spool.settle_of("a", &[&source, &synthetic], Destination::Done);
        std::fs::remove_file(&source).unwrap();
        spool.settle(&settle).unwrap();
        assert!(dir.path().join("done/a.synthetic.png").exists() && !dir.path().join("done/a.source.png").exists());
    }

    #[test]
    fn a_reused_long_id_gets_a_numbered_name_that_fits() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), Duration::from_millis(0), Duration::from_secs(60), &dir.path().join(".spanwatch")).unwrap();
        let id = "é".repeat(120) + "x"; // 241 bytes: `<id>.synthetic.png` is 255, the longest name there is
        for round in 0..3 {
            let file = dir.path().join(format!("{id}.synthetic.png"));
            std::fs::write(&file, format!("round {round}")).unwrap();
            spool.settle(&spool.settle_of(&id, &[&file], failed("no partner"))).unwrap();
        }
        let mut names: Vec<String> =
            std::fs::read_dir(dir.path().join("failed")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names.len(), 6, "three files and three reasons: {names:?}");
        assert!(names.iter().all(|n| n.len() <= 255));
        assert!(names.iter().any(|n| n.ends_with(".2.png")), "{names:?}");
    }

    // The property of the fuzz target fuzz/fuzz_targets/spool_name.rs.
    proptest::proptest! {
        #[test]
        fn a_classified_name_is_exactly_its_id_half_and_extension(name in "\\PC{0,40}(\\.(source|synthetic)\\.(png|jpg|jpeg|PNG|Jpg|txt))?") {
            if let Some((id, half)) = classify(&name) {
                let marker = match half { Half::Source => "source", Half::Synthetic => "synthetic" };
                let extension = name.rsplit_once('.').unwrap().1.to_ascii_lowercase();
                proptest::prop_assert!(!id.is_empty() && !name.starts_with('.'));
                proptest::prop_assert!(EXTENSIONS.contains(&extension.as_str()));
                proptest::prop_assert_eq!(name.to_ascii_lowercase(), format!("{id}.{marker}.{extension}").to_ascii_lowercase());
            }
        }
    }

    #[test]
    fn names_are_classified() {
        assert_eq!(classify("0001.source.png"), Some(("0001".into(), Half::Source)));
        assert_eq!(classify("a.b.synthetic.JPG"), Some(("a.b".into(), Half::Synthetic)));
        assert_eq!(classify("0001.source.png.tmp"), None);
        assert_eq!(classify(".0001.source.png"), None);
        assert_eq!(classify("source.png"), None);
        assert_eq!(classify("0001.png"), None);
    }

    #[test]
    fn pairs_are_ready_when_complete_and_settled_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), Duration::from_millis(0), Duration::from_secs(60), &dir.path().join(".spanwatch")).unwrap();
        for name in ["b.source.png", "b.synthetic.png", "a.source.png", "a.synthetic.png", "c.source.png"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let later = SystemTime::now() + Duration::from_secs(1);
        let scan = spool.scan(later).unwrap();
        // Same modification second on most file systems: id order breaks ties.
        let ids: Vec<_> = scan.ready.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids.len(), 2);
        assert!(ids.contains(&"a") && ids.contains(&"b"));
        assert!(scan.orphans.is_empty(), "c is not old enough to be an orphan");
        let mut unsettled =
            Spool::open(dir.path(), Duration::from_secs(3600), Duration::from_secs(60), &dir.path().join(".spanwatch")).unwrap();
        assert!(unsettled.scan(SystemTime::now()).unwrap().ready.is_empty(), "fresh files are not read yet");
        let scan = spool.scan(SystemTime::now() + Duration::from_secs(120)).unwrap();
        assert_eq!(scan.orphans.len(), 1);
        // Done and failed keep every file, a reused id included.
        let pair = &scan.ready[0];
        let done = spool.settle_of(&pair.id, &[&pair.source, &pair.synthetic], Destination::Done);
        spool.settle(&done).unwrap();
        std::fs::write(dir.path().join(pair.source.file_name().unwrap()), b"again").unwrap();
        spool.settle(&done).unwrap();
        assert_eq!(std::fs::read(&pair.source).unwrap(), b"again", "a repeated move leaves a new file of the same name alone");
        spool.settle(&spool.settle_of("x", &[&pair.source], failed("unreadable"))).unwrap();
        spool.settle(&spool.settle_of("x", &[&scan.orphans[0].1], failed("no partner"))).unwrap();
        let failed: Vec<_> = std::fs::read_dir(dir.path().join("failed")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(failed.len(), 4, "{failed:?}");
        assert!(dir.path().join("failed/x.reason.txt").exists() && dir.path().join("failed/x.reason.1.txt").exists());
        assert_eq!(std::fs::read_dir(dir.path().join("done")).unwrap().count(), 2);
    }

    #[test]
    fn no_entry_is_ignored_without_a_word_and_links_are_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("secret.png");
        std::fs::write(&target, b"not the spool's").unwrap();
        let mut spool = Spool::open(dir.path(), Duration::from_millis(0), Duration::from_secs(60), &dir.path().join(".spanwatch")).unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("a.source.png")).unwrap();
        std::fs::write(dir.path().join("a.synthetic.png"), b"x").unwrap();
        std::fs::create_dir(dir.path().join("b.source.png")).unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        std::fs::write(dir.path().join(".c.source.png.partial.png"), b"x").unwrap();
        std::fs::create_dir(dir.path().join(".spanwatch")).unwrap(); // the daemon's own state folder

        let scan = spool.scan(SystemTime::now() + Duration::from_secs(1)).unwrap();
        let refused: Vec<(&str, &str)> = scan.refused.iter().map(|(id, _, why)| (id.as_str(), *why)).collect();
        assert_eq!(refused.len(), 2, "{refused:?}");
        assert!(refused.contains(&("a", "is a symbolic link; the spool follows no links")));
        assert!(refused.contains(&("b", "is a folder, not an image file")));
        assert!(scan.ready.is_empty(), "a link is never read as a pair's file");
        let strangers: Vec<_> = scan.strangers.iter().map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(strangers, ["notes.txt"], "a fresh hidden file is a writer's temporary file");
        // Reported once; a hidden file once it is older than the orphan timeout.
        let later = spool.scan(SystemTime::now() + Duration::from_secs(120)).unwrap();
        let strangers: Vec<_> = later.strangers.iter().map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(strangers, [".c.source.png.partial.png"]);
        assert!(spool.scan(SystemTime::now() + Duration::from_secs(240)).unwrap().strangers.is_empty());

        // Refused entries move to failed/ themselves: the link, not its target.
        for (id, path, why) in &scan.refused {
            spool.settle(&spool.settle_of(id, &[path], failed(why))).unwrap();
        }
        let moved = dir.path().join("failed/a.source.png");
        assert!(std::fs::symlink_metadata(&moved).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"not the spool's");
        assert!(dir.path().join("failed/b.source.png").is_dir());
    }

    #[test]
    fn planted_links_in_done_or_failed_are_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), Duration::from_millis(0), Duration::from_secs(60), &dir.path().join(".spanwatch")).unwrap();
        // A link planted as the reason file of pair x: the reason goes beside it.
        let planted = outside.path().join("created-by-the-daemon");
        std::os::unix::fs::symlink(&planted, dir.path().join("failed/x.reason.txt")).unwrap();
        std::fs::write(dir.path().join("x.source.png"), b"x").unwrap();
        assert!(spool.scan(SystemTime::now()).unwrap().orphans.is_empty(), "first seen now");
        let scan = spool.scan(SystemTime::now() + Duration::from_secs(120)).unwrap();
        spool.settle(&spool.settle_of("x", &[&scan.orphans[0].1], failed("no partner"))).unwrap();
        assert!(!planted.exists(), "the link's target was not created");
        assert_eq!(std::fs::read_to_string(dir.path().join("failed/x.reason.1.txt")).unwrap(), "no partner\n");

        // done/ swapped for a link after start: moves still go into the folder opened at start.
        std::fs::write(dir.path().join("y.source.png"), b"y").unwrap();
        std::fs::write(dir.path().join("y.synthetic.png"), b"y").unwrap();
        let y = spool.settle_of("y", &[&dir.path().join("y.source.png"), &dir.path().join("y.synthetic.png")], Destination::Done);
        std::fs::rename(dir.path().join("done"), dir.path().join("done.old")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("done")).unwrap();
        spool.settle(&y).unwrap();
        assert!(dir.path().join("done.old/y.source.png").exists() && dir.path().join("done.old/y.synthetic.png").exists());
        assert!(!outside.path().join("y.source.png").exists(), "nothing lands behind the link");

        // done/ as a link to another folder: the spool refuses to open.
        let other = tempfile::tempdir().unwrap();
        std::fs::remove_dir(other.path().join("done")).ok();
        std::os::unix::fs::symlink(outside.path(), other.path().join("done")).unwrap();
        let error = Spool::open(other.path(), Duration::from_millis(0), Duration::from_secs(60), &other.path().join(".spanwatch"))
            .err()
            .expect("refused")
            .to_string();
        assert!(error.contains("symbolic link"), "{error}");
    }

    /// A half moved in with an old modification time waits the orphan
    /// timeout from first sight (a bulk `mv` lost 18% of its pairs as false
    /// orphans), and its partner arriving later makes a pair; a file from
    /// the future is reported once and settles from first sight.
    #[test]
    fn orphans_are_timed_from_first_sight_and_future_times_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), Duration::from_secs(1), Duration::from_secs(600), &dir.path().join(".spanwatch")).unwrap();
        let old = SystemTime::now() - Duration::from_secs(86_400);
        let source = dir.path().join("a.source.png");
        std::fs::write(&source, b"x").unwrap();
        std::fs::File::options().write(true).open(&source).unwrap().set_modified(old).unwrap();
        let t0 = SystemTime::now();
        let scan = spool.scan(t0).unwrap();
        assert!(scan.orphans.is_empty() && scan.waiting == 1, "a day-old file just moved in is not an orphan");
        assert_eq!(scan.due, Some(Duration::from_secs(600)), "settled, so next due when it would be an orphan");
        let scan = spool.scan(t0 + Duration::from_secs(599)).unwrap();
        assert!(scan.orphans.is_empty());
        assert_eq!(scan.due, Some(Duration::from_secs(1)));
        let synthetic = dir.path().join("a.synthetic.png");
        std::fs::write(&synthetic, b"y").unwrap();
        std::fs::File::options().write(true).open(&synthetic).unwrap().set_modified(old).unwrap();
        let scan = spool.scan(t0 + Duration::from_secs(599)).unwrap();
        assert_eq!(scan.ready.len(), 1, "the partner arrived: a pair, settled by its old times");
        std::fs::remove_file(&synthetic).unwrap();
        // Gone and back with another time: first sight again.
        std::fs::write(&synthetic, b"y").unwrap();
        std::fs::remove_file(&source).unwrap();
        let later = t0 + Duration::from_secs(700);
        let scan = spool.scan(later).unwrap();
        assert!(scan.orphans.is_empty(), "first seen at {later:?}");
        assert_eq!(scan.due, Some(Duration::from_secs(600)), "due when it would be an orphan, counted from first sight");
        assert_eq!(spool.scan(later + Duration::from_secs(600)).unwrap().orphans.len(), 1);

        let ahead = dir.path().join("b.source.png");
        std::fs::write(&ahead, b"x").unwrap();
        std::fs::write(dir.path().join("b.synthetic.png"), b"x").unwrap();
        let now = SystemTime::now();
        std::fs::File::options().write(true).open(&ahead).unwrap().set_modified(now + Duration::from_secs(300)).unwrap();
        let scan = spool.scan(now).unwrap();
        let settling = Duration::from_millis(500)..=Duration::from_secs(1);
        assert!(scan.due.is_some_and(|due| settling.contains(&due)), "both just written: due when settled, {:?}", scan.due);
        assert_eq!(scan.future.len(), 1, "{:?}", scan.future);
        assert!(scan.future[0].1 > Duration::from_secs(290));
        let scan = spool.scan(now + Duration::from_secs(2)).unwrap();
        assert!(scan.future.is_empty(), "reported once");
        assert!(scan.ready.iter().any(|p| p.id == "b"), "settled from first sight, not minutes later");
    }

    /// Names that are not UTF-8 looked alike once made text (q\xfe, q\xff)
    /// and were paired with each other: they are refused, each alone.
    #[test]
    fn names_that_are_not_utf8_are_refused_not_paired() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), Duration::from_millis(0), Duration::from_secs(60), &dir.path().join(".spanwatch")).unwrap();
        for name in [&b"q\xfe.source.png"[..], b"q\xff.synthetic.png"] {
            std::fs::write(dir.path().join(OsStr::from_bytes(name)), b"x").unwrap();
        }
        let scan = spool.scan(SystemTime::now() + Duration::from_secs(1)).unwrap();
        assert!(scan.ready.is_empty(), "{:?}", scan.ready);
        assert_eq!(scan.refused.len(), 2);
        assert!(scan.refused.iter().all(|(_, _, why)| why.contains("not valid UTF-8")));
        for (id, path, why) in &scan.refused {
            spool.settle(&spool.settle_of(id, &[path], failed(why))).unwrap();
        }
        assert_eq!(std::fs::read_dir(dir.path().join("failed")).unwrap().count(), 4, "both files and a reason for each");
    }

    /// A synthetic renamed over right after the daemon read it: the pair no
    /// longer counts as unchanged (it is not scored), and its move takes the
    /// files the scan found, never the replacement (which was moved to done/
    /// unscored).
    #[test]
    fn a_file_renamed_over_after_the_scan_is_not_taken_for_the_scanned_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), Duration::from_millis(0), Duration::from_secs(60), &dir.path().join(".spanwatch")).unwrap();
        std::fs::write(dir.path().join("a.source.png"), b"s").unwrap();
        std::fs::write(dir.path().join("a.synthetic.png"), b"old").unwrap();
        let scan = spool.scan(SystemTime::now() + Duration::from_secs(1)).unwrap();
        let pair = &scan.ready[0];
        assert!(spool.unchanged(pair));
        std::fs::write(dir.path().join(".new"), b"new").unwrap();
        std::fs::rename(dir.path().join(".new"), dir.path().join("a.synthetic.png")).unwrap();
        assert!(!spool.unchanged(pair), "the synthetic's name now holds another file");
        spool.settle(&spool.settle_of_pair(pair, Destination::Done)).unwrap();
        assert!(dir.path().join("done/a.source.png").exists());
        assert_eq!(std::fs::read(dir.path().join("a.synthetic.png")).unwrap(), b"new", "the replacement stays in the spool");
        assert!(!dir.path().join("done/a.synthetic.png").exists());
    }

    /// done/ deleted and made again, or renamed and made again, while the
    /// daemon runs: moves go into the folder there now (every move failed
    /// until a restart, or went on into the renamed folder); removed and not
    /// made again, it is made again.
    #[test]
    fn a_done_folder_removed_or_replaced_while_running_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), Duration::from_millis(0), Duration::from_secs(60), &dir.path().join(".spanwatch")).unwrap();
        let pair = |id: &str| {
            for half in ["source", "synthetic"] {
                std::fs::write(dir.path().join(format!("{id}.{half}.png")), id).unwrap();
            }
            let files = [dir.path().join(format!("{id}.source.png")), dir.path().join(format!("{id}.synthetic.png"))];
            spool.settle_of(id, &[&files[0], &files[1]], Destination::Done)
        };
        let (a, b, c) = (pair("a"), pair("b"), pair("c"));
        std::fs::remove_dir(dir.path().join("done")).unwrap();
        std::fs::create_dir(dir.path().join("done")).unwrap();
        spool.settle(&a).unwrap();
        assert!(dir.path().join("done/a.source.png").exists(), "into the folder made again");
        std::fs::rename(dir.path().join("done"), dir.path().join("done.1")).unwrap();
        std::fs::create_dir(dir.path().join("done")).unwrap();
        spool.settle(&b).unwrap();
        assert!(dir.path().join("done/b.synthetic.png").exists() && !dir.path().join("done.1/b.synthetic.png").exists());
        std::fs::rename(dir.path().join("done"), dir.path().join("done.2")).unwrap();
        spool.settle(&c).unwrap();
        assert!(dir.path().join("done/c.source.png").exists(), "removed: made again");
    }
}
