//! `spanwatch embed`: embeddings as .npy plus an index, for Python users and
//! for scoring elsewhere (`--embeddings`), whole or one shard at a time.

use super::Global;
use anyhow::{bail, Context, Result};
use spanwatch_calibrate::dataset::is_image;
use spanwatch_calibrate::embedding::{EmbeddingSession, EmbeddingSource};
use spanwatch_calibrate::precomputed::{self, Row, Shard};
use std::path::PathBuf;

/// Arguments of `spanwatch embed`.
#[derive(clap::Args)]
pub struct EmbedArgs {
    /// A folder of images (searched recursively).
    input: PathBuf,
    /// Output folder: embeddings.npy (n x d float32), index.csv (row, file, sha256 of its contents), model.json.
    #[arg(long, short)]
    output: PathBuf,
    /// Embedding model: a bundled name or a manifest path.
    #[arg(long, default_value = spanwatch_embed::manifest::DEFAULT_MODEL)]
    model: String,
    /// Embed only shard i of n (0-based) of the sorted image list, so that n
    /// machines embed one folder between them; `score --embeddings` reads a
    /// folder of the n outputs as one.
    #[arg(long, value_name = "i/n")]
    shard: Option<Shard>,
}

pub(super) fn run(args: EmbedArgs, global: &Global) -> Result<()> {
    let mut images = Vec::new();
    for entry in walkdir::WalkDir::new(&args.input).sort_by_file_name() {
        let entry = entry.with_context(|| format!("cannot read {}", args.input.display()))?;
        if entry.file_type().is_file() && is_image(entry.path()) {
            images.push(entry.into_path());
        }
    }
    if images.is_empty() {
        bail!("{} holds no PNG or JPEG images", args.input.display());
    }
    let all = images.len();
    let images = args.shard.map_or(&images[..], |shard| shard.part(&images));
    let session = EmbeddingSession::open(&args.model, &EmbeddingSource::Model(global.cache_choice()), global.quiet)?;
    // Each row's sha256 is of the very bytes its embedding was made from (one
    // read), so an image rewritten meanwhile cannot pair one file's hash with
    // another's embedding.
    let embeddings = session.embed_all_with_content(images.iter().map(|p| p.as_path()))?;
    let rows: Vec<Row> = images
        .iter()
        .map(|path| {
            let (embedding, content) = &embeddings[path];
            Row { file: path.strip_prefix(&args.input).unwrap_or(path.as_path()), content: *content, embedding }
        })
        .collect();
    let model = session.model();
    precomputed::write(&args.output, &model, &rows)?;
    let part = args.shard.map_or(String::new(), |s| format!(" (shard {}/{} of {all} images)", s.index, s.count));
    println!(
        "wrote {} embeddings{part} of d = {} by {} ({}..) to {}",
        images.len(),
        model.dim,
        model.name,
        model.short_id(),
        args.output.display()
    );
    Ok(())
}
