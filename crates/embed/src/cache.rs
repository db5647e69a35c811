//! On-disk embedding cache keyed by (model sha256, file content sha256), so a
//! second run over the same images skips inference. One small file per
//! embedding: `<root>/<model sha256>/<content sha256>.f32`, the values as
//! little-endian f32 followed by their CRC-32, written atomically (a new
//! temporary file, then rename). Both folders are private
//! ([`crate::private::private_folder`]); an entry is read only if it is a
//! regular file (never through a link, never a FIFO or device) of exactly
//! the right size whose checksum matches: anything else counts as absent.

use crate::private::{create_new, open_regular, private_folder, UnsafeFolder};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// An embedding cache for one model.
#[derive(Clone, Debug)]
pub struct EmbeddingCache {
    dir: PathBuf,
    dim: usize,
}

/// spanwatch's folder in the user's cache: `$XDG_CACHE_HOME/spanwatch`, else
/// `~/.cache/spanwatch` (none without either variable).
pub(crate) fn user_cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|home| !home.is_empty()).map(|home| PathBuf::from(home).join(".cache")))
        .map(|cache| cache.join("spanwatch"))
}

impl EmbeddingCache {
    /// Opens the cache for the model with this sha256 and dimension under
    /// `root`, making its folders private; a folder that another user could
    /// have planted entries in is refused.
    pub fn open(root: &Path, model_sha256: &[u8; 32], dim: usize) -> Result<EmbeddingCache, UnsafeFolder> {
        private_folder(root, "embedding cache")?;
        let dir = root.join(hex::encode(model_sha256));
        private_folder(&dir, "embedding cache's model folder")?;
        Ok(EmbeddingCache { dir, dim })
    }

    /// The default cache root: `$SPANWATCH_CACHE`, else `$XDG_CACHE_HOME/spanwatch`,
    /// else `$HOME/.cache/spanwatch`, else `.spanwatch-cache`.
    pub fn default_root() -> PathBuf {
        if let Some(dir) = std::env::var_os("SPANWATCH_CACHE") {
            return dir.into();
        }
        user_cache_dir().unwrap_or_else(|| PathBuf::from(".spanwatch-cache"))
    }

    fn entry(&self, content_sha256: &[u8; 32]) -> PathBuf {
        self.dir.join(format!("{}.f32", hex::encode(content_sha256)))
    }

    /// The cached embedding of a file with this content hash, if present and
    /// intact (a damaged, foreign or odd entry counts as absent).
    pub fn get(&self, content_sha256: &[u8; 32]) -> Option<Vec<f32>> {
        let size = 4 * self.dim as u64 + 4;
        let (file, len) = open_regular(&self.entry(content_sha256), size, false).ok()?;
        if len != size {
            return None;
        }
        let mut bytes = Vec::with_capacity(size as usize);
        file.take(size).read_to_end(&mut bytes).ok()?;
        let (values, checksum) = bytes.split_at_checked(4 * self.dim)?;
        if checksum != CRC32.checksum(values).to_le_bytes() {
            return None;
        }
        let values: Vec<f32> = values.as_chunks::<4>().0.iter().map(|c| f32::from_le_bytes(*c)).collect();
        values.iter().all(|v| v.is_finite()).then_some(values)
    }

    /// Stores an embedding. Failing to write the cache is not an error for the
    /// caller's work, so the result says only whether it was stored.
    pub fn put(&self, content_sha256: &[u8; 32], embedding: &[f32]) -> std::io::Result<()> {
        let mut bytes: Vec<u8> = embedding.iter().flat_map(|v| v.to_le_bytes()).collect();
        bytes.extend(CRC32.checksum(&bytes).to_le_bytes());
        let target = self.entry(content_sha256);
        let temporary = self.dir.join(format!(".{}.tmp{}", hex::encode(content_sha256), std::process::id()));
        // A leftover of a process with this id (or a planted link) goes first.
        let _ = std::fs::remove_file(&temporary);
        let mut file = create_new(&temporary)?;
        file.write_all(&bytes)?;
        drop(file);
        std::fs::rename(&temporary, &target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damaged_entries() {
        let root = tempfile::tempdir().unwrap();
        let cache = EmbeddingCache::open(root.path(), &[1; 32], 3).unwrap();
        assert_eq!(cache.get(&[2; 32]), None);
        cache.put(&[2; 32], &[1.0, -2.5, 3.0]).unwrap();
        assert_eq!(cache.get(&[2; 32]), Some(vec![1.0, -2.5, 3.0]));
        // Another model does not see it.
        assert_eq!(EmbeddingCache::open(root.path(), &[9; 32], 3).unwrap().get(&[2; 32]), None);
        // One flipped bit: the checksum no longer matches.
        let mut bytes = std::fs::read(cache.entry(&[2; 32])).unwrap();
        bytes[5] ^= 0x10;
        std::fs::write(cache.entry(&[2; 32]), &bytes).unwrap();
        assert_eq!(cache.get(&[2; 32]), None);
        // A damaged (short) entry is ignored.
        std::fs::write(cache.entry(&[2; 32]), [0u8; 5]).unwrap();
        assert_eq!(cache.get(&[2; 32]), None);
    }

    #[test]
    fn links_fifos_and_planted_folders_are_never_used() {
        let root = tempfile::tempdir().unwrap();
        let cache = EmbeddingCache::open(root.path(), &[1; 32], 3).unwrap();
        // An entry that links to /dev/zero, or is a FIFO: absent, at once.
        std::os::unix::fs::symlink("/dev/zero", cache.entry(&[3; 32])).unwrap();
        assert_eq!(cache.get(&[3; 32]), None);
        assert!(std::process::Command::new("mkfifo").arg(cache.entry(&[4; 32])).status().unwrap().success());
        assert_eq!(cache.get(&[4; 32]), None);
        // The model's folder as a link to elsewhere: refused, nothing written there.
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), root.path().join(hex::encode([7u8; 32]))).unwrap();
        let error = EmbeddingCache::open(root.path(), &[7; 32], 3).unwrap_err().to_string();
        assert!(error.contains("not a folder"), "{error}");
        assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
        // A planted link at the temporary name is removed, not written through.
        let victim = elsewhere.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let temporary = cache.dir.join(format!(".{}.tmp{}", hex::encode([5u8; 32]), std::process::id()));
        std::os::unix::fs::symlink(&victim, &temporary).unwrap();
        cache.put(&[5; 32], &[1.0, 2.0, 3.0]).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert_eq!(cache.get(&[5; 32]), Some(vec![1.0, 2.0, 3.0]));
    }
}
