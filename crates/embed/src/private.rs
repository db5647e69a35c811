//! Folders whose contents spanwatch runs or trusts: the model store (with
//! the Python environment it runs), the embedding cache and the edge's
//! state. Each is made private (0700) when missing, and refused when another
//! user could have planted something in it or can swap it: it must be a real
//! folder (not a link), this process's user's, writable by nobody else, and
//! every folder above it must be this user's or root's and either writable
//! by nobody else or sticky (as /tmp is: others cannot rename what is ours).

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::Path;

/// Why a folder is refused (the message names the folder and its role).
#[derive(Debug, thiserror::Error)]
#[error("refusing the {what} {path}: {reason}")]
pub struct UnsafeFolder {
    /// What the folder is for ("model store", "state folder", ...).
    pub what: String,
    /// The folder.
    pub path: std::path::PathBuf,
    /// What is wrong, and what to do.
    pub reason: String,
}

/// This process's effective user id.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Makes `dir` (mode 0700, with any missing parents) if it is missing, then
/// checks it and the folders above it as the module says.
pub fn private_folder(dir: &Path, what: &str) -> Result<(), UnsafeFolder> {
    let refuse = |path: &Path, reason: String| UnsafeFolder { what: what.into(), path: path.into(), reason };
    if std::fs::symlink_metadata(dir).is_err() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| refuse(dir, format!("cannot create it: {e}")))?;
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|e| refuse(dir, format!("cannot read it: {e}")))?;
    if !meta.file_type().is_dir() {
        return Err(refuse(dir, "it is not a folder (a symbolic link or a file)".into()));
    }
    let me = effective_uid();
    if meta.uid() != me {
        return Err(refuse(dir, format!("it belongs to user {}, not to this process's user {me}", meta.uid())));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(refuse(
            dir,
            format!(
                "it is writable by group or others (mode {:o}), so another user may have planted files in it; check what is in it, then chmod 700 it",
                meta.mode() & 0o7777
            ),
        ));
    }
    let real = dir.canonicalize().map_err(|e| refuse(dir, format!("cannot resolve it: {e}")))?;
    for parent in real.ancestors().skip(1) {
        let meta = std::fs::metadata(parent).map_err(|e| refuse(dir, format!("cannot read {}: {e}", parent.display())))?;
        if meta.uid() != me && meta.uid() != 0 {
            return Err(refuse(dir, format!("{} above it belongs to user {}, who could swap it", parent.display(), meta.uid())));
        }
        let sticky = meta.mode() & 0o1000 != 0;
        if meta.mode() & 0o022 != 0 && !sticky {
            return Err(refuse(
                dir,
                format!(
                    "{} above it is writable by group or others (mode {:o}) and not sticky, so another user could swap it",
                    parent.display(),
                    meta.mode() & 0o7777
                ),
            ));
        }
    }
    Ok(())
}

/// Opens `path` for reading without blocking on a FIFO (and, unless
/// `follow_links`, without following a final symbolic link), and checks that
/// it is a regular file of at most `max_bytes`; returns the file and its size.
pub fn open_regular(path: &Path, max_bytes: u64, follow_links: bool) -> std::io::Result<(std::fs::File, u64)> {
    use std::os::unix::fs::OpenOptionsExt;
    let flags = if follow_links { libc::O_NONBLOCK } else { libc::O_NONBLOCK | libc::O_NOFOLLOW };
    let file = std::fs::OpenOptions::new().read(true).custom_flags(flags).open(path)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file (a FIFO, device or folder)"));
    }
    if meta.len() > max_bytes {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} bytes, more than the {max_bytes} bytes allowed", meta.len()),
        ));
    }
    Ok((file, meta.len()))
}

/// Creates `path` new for writing (O_EXCL, so never through a planted link
/// or over another file), mode 0600.
pub fn create_new(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn made_private_and_planted_or_open_folders_refused() {
        let top = tempfile::tempdir().unwrap();
        let store = top.path().join("a/b/models");
        private_folder(&store, "model store").unwrap();
        assert_eq!(std::fs::metadata(&store).unwrap().permissions().mode() & 0o777, 0o700);

        let open = top.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let error = private_folder(&open, "state folder").unwrap_err().to_string();
        assert!(error.contains("state folder") && error.contains("mode 777"), "{error}");
        // A folder under an open (not sticky) one can be swapped by others.
        let error = private_folder(&open.join("inner"), "model store").unwrap_err().to_string();
        assert!(error.contains("above it is writable"), "{error}");
        // Sticky and open, as /tmp: fine.
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
        private_folder(&open.join("inner"), "model store").unwrap();

        let link = top.path().join("link");
        std::os::unix::fs::symlink(&store, &link).unwrap();
        let error = private_folder(&link, "model store").unwrap_err().to_string();
        assert!(error.contains("not a folder"), "{error}");
    }

    #[test]
    fn open_regular_refuses_links_fifos_and_large_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.png");
        std::fs::write(&file, [0u8; 10]).unwrap();
        assert_eq!(open_regular(&file, 10, false).unwrap().1, 10);
        assert!(open_regular(&file, 9, false).unwrap_err().to_string().contains("10 bytes"));
        let link = dir.path().join("zero.png");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert!(open_regular(&link, 10, false).is_err(), "a link is not followed");
        let error = open_regular(&link, 10, true).unwrap_err().to_string();
        assert!(error.contains("not a regular file"), "a followed link to a device is refused: {error}");
        let fifo = dir.path().join("fifo.png");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let error = open_regular(&fifo, 10, true).unwrap_err().to_string();
        assert!(error.contains("not a regular file"), "a FIFO is refused at once: {error}");
    }
}
