//! `spanwatch embed`: embeddings as .npy plus an index, for Python users.

use super::Global;
use anyhow::{bail, Context, Result};
use npyz::WriterBuilder;
use spanwatch::dataset::is_image;
use spanwatch::embedding::EmbeddingSession;
use std::path::PathBuf;

/// Arguments of `spanwatch embed`.
#[derive(clap::Args)]
pub struct EmbedArgs {
    /// A folder of images (searched recursively).
    input: PathBuf,
    /// Output folder: embeddings.npy (n x d float32), index.csv, model.json.
    #[arg(long, short)]
    output: PathBuf,
    /// Embedding model: a bundled name or a manifest path.
    #[arg(long, default_value = spanwatch_embed::manifest::DEFAULT_MODEL)]
    model: String,
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
    let session = EmbeddingSession::open(&args.model, &global.cache_choice(), global.quiet)?;
    let embeddings = session.embed_all(images.iter().map(|p| p.as_path()))?;
    let model = session.model();
    std::fs::create_dir_all(&args.output).with_context(|| format!("cannot create {}", args.output.display()))?;
    let npy_path = args.output.join("embeddings.npy");
    let file = std::fs::File::create(&npy_path).with_context(|| format!("cannot write {}", npy_path.display()))?;
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&[images.len() as u64, model.dim as u64])
        .writer(std::io::BufWriter::new(file))
        .begin_nd()?;
    writer.extend(images.iter().flat_map(|p| embeddings[p].iter().copied()))?;
    writer.finish()?;
    let mut index = csv::Writer::from_path(args.output.join("index.csv"))?;
    index.write_record(["row", "file"])?;
    for (row, path) in images.iter().enumerate() {
        let relative = path.strip_prefix(&args.input).unwrap_or(path);
        index.write_record([row.to_string(), relative.display().to_string()])?;
    }
    index.flush()?;
    std::fs::write(args.output.join("model.json"), serde_json::to_string_pretty(&model)?)?;
    println!(
        "wrote {} embeddings of d = {} by {} ({}..) to {}",
        images.len(),
        model.dim,
        model.name,
        &model.sha256[..12],
        args.output.display()
    );
    Ok(())
}
