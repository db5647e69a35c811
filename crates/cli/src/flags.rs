//! The embedding cache's command-line flags, `--cache DIR` and `--no-cache`.

use clap::Args;
use spanwatch_calibrate::embedding::CacheChoice;
use std::path::PathBuf;

/// Where the embeddings are cached, as the command line says.
#[derive(Args, Clone, Debug)]
pub struct CacheFlags {
    /// Embedding cache folder [default: $SPANWATCH_CACHE or ~/.cache/spanwatch].
    #[arg(long, global = true, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Do not read or write the embedding cache.
    #[arg(long, global = true, conflicts_with = "cache")]
    pub no_cache: bool,
}

impl CacheFlags {
    /// The choice these flags make: off, the given folder, or the default root.
    pub fn choice(&self) -> CacheChoice {
        CacheChoice::new(self.cache.clone(), self.no_cache)
    }
}
