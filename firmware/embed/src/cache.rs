//! On-disk embedding cache keyed by (model sha256, file content sha256), so a
//! second run over the same images skips inference. One small file per
//! embedding: `<root>/<model sha256>/<content sha256>.f32` (little-endian f32),
//! written atomically (temporary file, then rename).

use std::path::{Path, PathBuf};

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
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .map(|cache| cache.join("spanwatch"))
}

impl EmbeddingCache {
    /// The cache for the model with this sha256 and dimension under `root`.
    pub fn new(root: &Path, model_sha256: &[u8; 32], dim: usize) -> EmbeddingCache {
        EmbeddingCache { dir: root.join(hex::encode(model_sha256)), dim }
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
    /// well-formed (a damaged entry counts as absent).
    pub fn get(&self, content_sha256: &[u8; 32]) -> Option<Vec<f32>> {
        let bytes = std::fs::read(self.entry(content_sha256)).ok()?;
        if bytes.len() != 4 * self.dim {
            return None;
        }
        let values: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        values.iter().all(|v| v.is_finite()).then_some(values)
    }

    /// Stores an embedding. Failing to write the cache is not an error for the
    /// caller's work, so the result says only whether it was stored.
    pub fn put(&self, content_sha256: &[u8; 32], embedding: &[f32]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let bytes: Vec<u8> = embedding.iter().flat_map(|v| v.to_le_bytes()).collect();
        let target = self.entry(content_sha256);
        let temporary = target.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&temporary, bytes)?;
        std::fs::rename(&temporary, &target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damaged_entries() {
        let root = tempfile::tempdir().unwrap();
        let cache = EmbeddingCache::new(root.path(), &[1; 32], 3);
        assert_eq!(cache.get(&[2; 32]), None);
        cache.put(&[2; 32], &[1.0, -2.5, 3.0]).unwrap();
        assert_eq!(cache.get(&[2; 32]), Some(vec![1.0, -2.5, 3.0]));
        // Another model does not see it.
        assert_eq!(EmbeddingCache::new(root.path(), &[9; 32], 3).get(&[2; 32]), None);
        // A damaged (short) entry is ignored.
        std::fs::write(cache.entry(&[2; 32]), [0u8; 5]).unwrap();
        assert_eq!(cache.get(&[2; 32]), None);
    }
}
