//! A synthetic set written for a dataset folder (`spanwatch synthesize`):
//! every real negative made into `per_image` synthetic images by one method,
//! with the `pairs.csv` that pairs each with its source.
//!
//! The set is written into a staging folder beside `synthetic/` and renamed
//! into place when complete, so a failure (a corrupt source, a full disk)
//! leaves the dataset as it was; an existing set is replaced only when asked.

use crate::method::{Method, Sources, Synthesizer};
use anyhow::{bail, Context, Result};
use image::DynamicImage;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use spanwatch_calibrate::dataset::{index_by_stem, list_images, write_pairs_csv, Pair};
use std::path::{Path, PathBuf};

/// Largest number of donor images (other normals, positives, textures) a
/// method reads: enough variety, bounded memory on large datasets.
pub const MAX_DONORS: usize = 64;

/// What to make.
#[derive(Clone, Debug)]
pub struct SetRequest {
    /// The method.
    pub method: Method,
    /// Synthetic images per real negative.
    pub per_image: usize,
    /// Seed of every random draw.
    pub seed: u64,
    /// Replace an existing set of the same name.
    pub replace: bool,
}

/// Where the images come from and where the set goes.
#[derive(Clone, Debug)]
pub struct SetFolders {
    /// The real negatives, the sources of the set (image files).
    pub negatives: Vec<PathBuf>,
    /// The real positives (image files; the transplant's defects).
    pub positives: Vec<PathBuf>,
    /// Foreign textures (image files; DRAEM's).
    pub textures: Vec<PathBuf>,
    /// The `synthetic/` folder the set goes into, as `<method name>/`.
    pub synthetic_root: PathBuf,
}

impl SetFolders {
    /// The folders of the dataset under `data`: its real negatives and
    /// positives, its `synthetic/` folder, and the textures under `textures`.
    pub fn of_dataset(data: &Path, textures: Option<&Path>) -> Result<SetFolders> {
        let negatives = list_images(&data.join("real/negative"))?;
        let positive_dir = data.join("real/positive");
        let positives = if positive_dir.is_dir() { list_images(&positive_dir)? } else { Vec::new() };
        let textures = textures.map(list_images).transpose()?.unwrap_or_default();
        Ok(SetFolders { negatives, positives, textures, synthetic_root: data.join("synthetic") })
    }
}

/// The set written.
#[derive(Clone, Debug)]
pub struct WrittenSet {
    /// Its folder.
    pub folder: PathBuf,
    /// Synthetic images written.
    pub images: usize,
    /// Real negatives they were made from.
    pub sources: usize,
    /// How many of them are colour (the rest are grey).
    pub colour: usize,
}

/// The seed of source `index`'s draws: each source's images depend only on
/// the seed and its place in the sorted list, not on the other sources.
fn source_seed(seed: u64, index: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(index as u64)
}

/// Decodes `path` with the embedder's limits (size, pixels, corrupt files),
/// keeping its colour mode; the error names the file.
fn read(path: &Path) -> Result<DynamicImage> {
    let bytes = spanwatch_embed::preprocess::read_image_file(path)?;
    Ok(spanwatch_embed::preprocess::load_image(path, &bytes)?)
}

/// Up to [`MAX_DONORS`] of `paths`, drawn with `seed`, decoded.
fn donors(paths: &[PathBuf], seed: u64) -> Result<Vec<DynamicImage>> {
    let mut chosen: Vec<&PathBuf> = paths.iter().collect();
    chosen.shuffle(&mut StdRng::seed_from_u64(seed));
    chosen.truncate(MAX_DONORS);
    chosen.into_iter().map(|p| read(p)).collect()
}

/// Writes the set `request` asks for from `folders`, or an error that names
/// the file or the problem (and then writes nothing).
pub fn write_set(folders: &SetFolders, request: &SetRequest) -> Result<WrittenSet> {
    let name = request.method.name();
    if folders.negatives.is_empty() {
        bail!("no real negatives to synthesize from");
    }
    if request.per_image == 0 {
        bail!("--per-image must be at least 1");
    }
    // Synthetic images are named after their source's stem.
    index_by_stem(&folders.negatives)?;
    let folder = folders.synthetic_root.join(name);
    if folder.exists() && !request.replace {
        bail!("{} exists already; pass --force to replace it", folder.display());
    }
    let needs = |method| request.method == method;
    let sources = Sources {
        textures: if needs(Method::Draem) { donors(&folders.textures, request.seed)? } else { Vec::new() },
        normals: if needs(Method::Nsa) || needs(Method::Transplant) { donors(&folders.negatives, request.seed)? } else { Vec::new() },
        positives: if needs(Method::Transplant) { donors(&folders.positives, request.seed)? } else { Vec::new() },
    };
    let mut synthesizer = Synthesizer::new(request.method, sources)?;
    let parent = folders.synthetic_root.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(&format!(".synthesize-{name}-"))
        .tempdir_in(parent)
        .with_context(|| format!("cannot create a staging folder in {}", parent.display()))?;
    let mut pairs = Vec::new();
    let mut colour = 0;
    for (index, source) in folders.negatives.iter().enumerate() {
        let image = read(source)?;
        colour += usize::from(image.color().has_color());
        let stem = source.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let mut rng = StdRng::seed_from_u64(source_seed(request.seed, index));
        for k in 0..request.per_image {
            let made = synthesizer.apply(&image, &mut rng).with_context(|| format!("{}", source.display()))?;
            let path = staging.path().join(format!("{stem}_{name}_{k}.png"));
            made.save(&path).with_context(|| format!("cannot write {}", path.display()))?;
            pairs.push(Pair { synthetic: path, source: source.clone() });
        }
    }
    write_pairs_csv(&staging.path().join("pairs.csv"), &pairs)?;
    std::fs::create_dir_all(&folders.synthetic_root).with_context(|| format!("cannot create {}", folders.synthetic_root.display()))?;
    if folder.exists() {
        std::fs::remove_dir_all(&folder).with_context(|| format!("cannot replace {}", folder.display()))?;
    }
    let staged = staging.keep();
    if let Err(error) = std::fs::rename(&staged, &folder) {
        let _ = std::fs::remove_dir_all(&staged);
        bail!("cannot move the new set into {}: {error}", folder.display());
    }
    Ok(WrittenSet { folder, images: pairs.len(), sources: folders.negatives.len(), colour })
}
