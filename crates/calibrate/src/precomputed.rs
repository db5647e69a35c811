//! The `spanwatch embed` output format, written and read in one place, and
//! embeddings computed elsewhere looked up by file content.
//!
//! An output folder holds `embeddings.npy` (n x d, float32, C order),
//! `index.csv` (`row,file,sha256`: each row's file, relative to the folder
//! embedded, and the sha256 of its contents) and `model.json` (the model's
//! identity, [`ModelInfo`]). A sharded run (`spanwatch embed --shard i/n`)
//! writes one such folder per shard; a folder of them reads as one set.
//! Rows are found by the sha256 of a file's contents, so a shard may come
//! from any machine and any mount point, and a file edited after it was
//! embedded is not matched with its old embedding.

use anyhow::{bail, Context, Result};
use npyz::WriterBuilder;
use spanwatch_embed::Manifest;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Which model embedded a set of vectors.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelInfo {
    /// Manifest name.
    pub name: String,
    /// The embedding identity: sha256 of the ONNX file with the pooling
    /// folded in (hex in model.json).
    #[serde(with = "hex::serde")]
    pub sha256: [u8; 32],
    /// Embedding dimension.
    pub dim: usize,
}

impl ModelInfo {
    /// The identity of the embeddings `manifest`'s model makes (its ONNX
    /// file's sha256 as the manifest pins it, with the pooling folded in).
    pub fn of(manifest: &Manifest) -> Result<ModelInfo> {
        let file: [u8; 32] = hex::decode(&manifest.sha256)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| anyhow::anyhow!("model {}: sha256 {:?} is not 64 hex digits", manifest.name, manifest.sha256))?;
        Ok(ModelInfo { name: manifest.name.clone(), sha256: manifest.embedding_identity(&file), dim: manifest.output.dim })
    }

    /// The identity's first 12 hex digits, to name the model in messages.
    pub fn short_id(&self) -> String {
        hex::encode(&self.sha256[..6])
    }
}

/// The three files of an output folder.
const EMBEDDINGS: &str = "embeddings.npy";
const INDEX: &str = "index.csv";
const MODEL: &str = "model.json";

/// One embedded file: where it is, relative to the folder embedded, the
/// sha256 of its contents, and its embedding.
pub struct Row<'a> {
    /// The file, relative to the folder embedded.
    pub file: &'a Path,
    /// sha256 of the file's contents.
    pub content: [u8; 32],
    /// Its embedding (d values).
    pub embedding: &'a [f32],
}

/// Writes `rows` embedded by `model` as an output folder `dir` (created).
pub fn write(dir: &Path, model: &ModelInfo, rows: &[Row]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let npy_path = dir.join(EMBEDDINGS);
    let cannot_write = || format!("cannot write {}", npy_path.display());
    let file = std::fs::File::create(&npy_path).with_context(cannot_write)?;
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&[rows.len() as u64, model.dim as u64])
        .writer(std::io::BufWriter::new(file))
        .begin_nd()
        .with_context(cannot_write)?;
    writer.extend(rows.iter().flat_map(|r| r.embedding.iter().copied())).with_context(cannot_write)?;
    writer.finish().with_context(cannot_write)?;
    let index_path = dir.join(INDEX);
    let mut index = csv::Writer::from_path(&index_path).with_context(|| format!("cannot write {}", index_path.display()))?;
    index.write_record(["row", "file", "sha256"])?;
    for (number, row) in rows.iter().enumerate() {
        index.write_record([number.to_string(), row.file.display().to_string(), hex::encode(row.content)])?;
    }
    index.flush().with_context(|| format!("cannot write {}", index_path.display()))?;
    let model_path = dir.join(MODEL);
    std::fs::write(&model_path, serde_json::to_string_pretty(model)?).with_context(|| format!("cannot write {}", model_path.display()))?;
    Ok(())
}

/// Which part of a sorted file list one machine embeds: shard `index` of `count`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shard {
    /// This shard, 0-based.
    pub index: usize,
    /// How many shards there are.
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// Parses `i/n` (0 <= i < n).
    fn from_str(text: &str) -> Result<Shard, String> {
        let parsed = text.split_once('/').and_then(|(i, n)| Some((i.trim().parse::<usize>().ok()?, n.trim().parse::<usize>().ok()?)));
        match parsed {
            Some((index, count)) if index < count => Ok(Shard { index, count }),
            _ => Err(format!("{text:?} is not a shard i/n with 0 <= i < n (for example 0/4)")),
        }
    }
}

impl Shard {
    /// This shard's contiguous part of `items`: every item is in exactly one
    /// of the `count` shards, and their sizes differ by at most one.
    pub fn part<'a, T>(&self, items: &'a [T]) -> &'a [T] {
        let bound = |i: usize| i * items.len() / self.count;
        &items[bound(self.index)..bound(self.index + 1)]
    }
}

/// Embeddings read from one or more output folders, by file content.
pub struct Precomputed {
    by_content: HashMap<[u8; 32], Vec<f32>>,
    folders: Vec<PathBuf>,
}

impl Precomputed {
    /// Reads every output folder under `paths` (each an output folder or a
    /// folder of them), refusing any embedded by another model than `model`,
    /// any whose files disagree with each other, and any non-finite value.
    pub fn load(paths: &[PathBuf], model: &ModelInfo) -> Result<Precomputed> {
        let mut folders = Vec::new();
        for path in paths {
            folders.extend(output_folders(path)?);
        }
        let mut by_content = HashMap::new();
        for folder in &folders {
            read_folder(folder, model, &mut by_content)?;
        }
        Ok(Precomputed { by_content, folders })
    }

    /// The embedding of a file with these contents, if any folder holds one.
    pub fn get(&self, content: &[u8; 32]) -> Option<&[f32]> {
        self.by_content.get(content).map(|v| v.as_slice())
    }

    /// Distinct file contents embedded.
    pub fn len(&self) -> usize {
        self.by_content.len()
    }

    /// True when no folder holds a row.
    pub fn is_empty(&self) -> bool {
        self.by_content.is_empty()
    }

    /// The output folders read, for messages.
    pub fn folders(&self) -> &[PathBuf] {
        &self.folders
    }
}

/// `path` itself when it is an output folder, else its subfolders that are, sorted.
fn output_folders(path: &Path) -> Result<Vec<PathBuf>> {
    if path.join(MODEL).is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path).with_context(|| format!("cannot read embeddings folder {}", path.display()))?;
    let mut folders: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.join(MODEL).is_file()).collect();
    folders.sort();
    if folders.is_empty() {
        bail!("{} is not `spanwatch embed` output: no {MODEL} in it or in its subfolders", path.display());
    }
    Ok(folders)
}

/// Reads one output folder into `by_content`, checking it against `model`.
fn read_folder(folder: &Path, model: &ModelInfo, by_content: &mut HashMap<[u8; 32], Vec<f32>>) -> Result<()> {
    let model_path = folder.join(MODEL);
    let text = std::fs::read_to_string(&model_path).with_context(|| format!("cannot read {}", model_path.display()))?;
    let found: ModelInfo = serde_json::from_str(&text).with_context(|| format!("{}: not a model identity", model_path.display()))?;
    if found != *model {
        bail!(
            "{}: these embeddings are from model {} ({}.., d = {}), not {} ({}.., d = {}); embed again with --model {} or score with the model that made them",
            model_path.display(),
            found.name,
            found.short_id(),
            found.dim,
            model.name,
            model.short_id(),
            model.dim,
            model.name
        );
    }
    let contents = read_index(&folder.join(INDEX))?;
    let npy_path = folder.join(EMBEDDINGS);
    let values = read_matrix(&npy_path, contents.len(), model.dim)?;
    for (row, (content, embedding)) in contents.iter().zip(values.chunks_exact(model.dim)).enumerate() {
        if let Some(bad) = embedding.iter().position(|v| !v.is_finite()) {
            bail!("{} row {row}: value {bad} is {} (NaN or infinite); embed that file again", npy_path.display(), embedding[bad]);
        }
        if let Some(bad) = embedding.iter().position(|v| v.abs() > MAX_ABS_VALUE) {
            bail!(
                "{} row {row}: value {bad} is {:e}, beyond the {MAX_ABS_VALUE:e} no embedding model here makes; embed that file again",
                npy_path.display(),
                embedding[bad]
            );
        }
        match by_content.entry(*content) {
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(embedding.to_vec());
            }
            std::collections::hash_map::Entry::Occupied(first) => {
                let gap = first.get().iter().zip(embedding).map(|(a, b)| (a - b).abs() / a.abs().max(b.abs()).max(1.0)).fold(0.0, f32::max);
                if gap > 1e-4 {
                    bail!(
                        "{} row {row}: the file with sha256 {} has another embedding in an earlier folder (largest relative difference {gap:.2e}); shards of one model agree, so one of them is not what it says: embed again",
                        npy_path.display(),
                        hex::encode(content)
                    );
                }
            }
        }
    }
    Ok(())
}

/// Largest embedding value accepted from a precomputed folder: the bundled
/// models' values stay within a few hundred (EfficientNet's are within 6),
/// and a value of 1e6 or more made every DS 1 without a word.
const MAX_ABS_VALUE: f32 = 1e4;

/// The content sha256 of each row of an index, checking the rows are numbered in order.
fn read_index(path: &Path) -> Result<Vec<[u8; 32]>> {
    let mut reader = csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let headers = reader.headers().with_context(|| format!("{}: cannot read the header", path.display()))?.clone();
    if headers.iter().collect::<Vec<_>>() != ["row", "file", "sha256"] {
        bail!(
            "{}: the header must be `row,file,sha256`, found `{}` (an index from an older spanwatch has no sha256: embed again)",
            path.display(),
            headers.iter().collect::<Vec<_>>().join(",")
        );
    }
    let mut contents = Vec::new();
    for (number, record) in reader.records().enumerate() {
        let line = number + 2;
        let record = record.with_context(|| format!("{} line {line}: malformed row", path.display()))?;
        if record[0].parse::<usize>().ok() != Some(number) {
            bail!("{} line {line}: row {:?} where row {number} was expected", path.display(), &record[0]);
        }
        let content = hex::decode(&record[2]).ok().and_then(|b| <[u8; 32]>::try_from(b).ok());
        let Some(content) = content else {
            bail!("{} line {line}: sha256 {:?} of {} is not 64 hex digits", path.display(), &record[2], &record[1]);
        };
        contents.push(content);
    }
    Ok(contents)
}

/// The values of an `rows` x `dim` float32 C-order .npy file.
fn read_matrix(path: &Path, rows: usize, dim: usize) -> Result<Vec<f32>> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let npy = npyz::NpyFile::new(std::io::BufReader::new(file)).with_context(|| format!("{}: not a .npy file", path.display()))?;
    if npy.shape() != [rows as u64, dim as u64] {
        bail!("{}: shape {:?}, but the index lists {rows} rows and the model's d is {dim}", path.display(), npy.shape());
    }
    if npy.order() != npyz::Order::C {
        bail!("{}: Fortran order; save it in C order (numpy's default)", path.display());
    }
    let dtype = npy.dtype();
    if dtype != npyz::DType::Plain("<f4".parse().expect("a valid type string")) {
        bail!("{}: dtype {}, expected little-endian float32 (<f4)", path.display(), dtype.descr());
    }
    npy.into_vec::<f32>().with_context(|| format!("cannot read {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_every_item_once_in_order() {
        let items: Vec<usize> = (0..10).collect();
        for count in 1..=12 {
            let parts: Vec<&[usize]> = (0..count).map(|index| Shard { index, count }.part(&items)).collect();
            assert_eq!(parts.concat(), items, "{count} shards");
            let sizes: Vec<usize> = parts.iter().map(|p| p.len()).collect();
            assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1, "{sizes:?}");
        }
    }

    #[test]
    fn shard_text_is_checked() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        for bad in ["4/4", "1", "a/b", "0/0", "-1/3"] {
            assert!(bad.parse::<Shard>().unwrap_err().contains("0 <= i < n"), "{bad}");
        }
    }

    fn model(name: &str, dim: usize) -> ModelInfo {
        ModelInfo { name: name.into(), sha256: [0xab; 32], dim }
    }

    /// model.json keeps the identity as 64 hex digits, as earlier releases wrote it.
    #[test]
    fn the_model_identity_is_hex_in_json() {
        let json = format!(r#"{{"name":"m","sha256":"{}","dim":3}}"#, "ab".repeat(32));
        assert_eq!(serde_json::to_string(&model("m", 3)).unwrap(), json);
        assert_eq!(serde_json::from_str::<ModelInfo>(&json).unwrap(), model("m", 3));
        assert!(serde_json::from_str::<ModelInfo>(r#"{"name":"m","sha256":"abc","dim":3}"#).is_err());
        assert_eq!(model("m", 3).short_id(), "abababababab");
    }

    #[test]
    fn reads_what_it_writes_by_content_across_shards() {
        let dir = tempfile::tempdir().unwrap();
        let m = model("m", 3);
        let rows = |range: std::ops::Range<u8>| -> Vec<(PathBuf, [u8; 32], Vec<f32>)> {
            range.map(|i| (PathBuf::from(format!("f{i}.png")), [i; 32], vec![i as f32, 0.5, -1.0])).collect()
        };
        for (shard, range) in [("0", 0..3), ("1", 3..5)] {
            let owned = rows(range);
            let rows: Vec<Row> = owned.iter().map(|(f, c, e)| Row { file: f, content: *c, embedding: e }).collect();
            write(&dir.path().join(shard), &m, &rows).unwrap();
        }
        let all = Precomputed::load(&[dir.path().to_path_buf()], &m).unwrap();
        assert_eq!(all.len(), 5);
        assert_eq!(all.get(&[4; 32]), Some(&[4.0, 0.5, -1.0][..]));
        assert_eq!(all.get(&[9; 32]), None);
        let err = Precomputed::load(&[dir.path().to_path_buf()], &model("other", 3)).err().unwrap().to_string();
        assert!(err.contains("model.json") && err.contains("from model m") && err.contains("not other"), "{err}");
    }

    /// Two shards with other vectors for the same file contents (the first
    /// won silently), or an absurd but finite value (every DS became 1): refused.
    #[test]
    fn conflicting_shards_and_absurd_values_are_refused() {
        let m = model("m", 2);
        let write_rows = |dir: &Path, rows: &[([u8; 32], Vec<f32>)]| {
            let names: Vec<PathBuf> = (0..rows.len()).map(|i| PathBuf::from(format!("f{i}.png"))).collect();
            let rows: Vec<Row> = rows.iter().zip(&names).map(|((c, e), f)| Row { file: f, content: *c, embedding: e }).collect();
            write(dir, &m, &rows).unwrap();
        };
        let dir = tempfile::tempdir().unwrap();
        write_rows(&dir.path().join("0"), &[([1; 32], vec![1.0, 2.0])]);
        write_rows(&dir.path().join("1"), &[([1; 32], vec![1.0, 2.0 + 1e-6])]);
        assert_eq!(Precomputed::load(&[dir.path().to_path_buf()], &m).unwrap().len(), 1, "agreeing within rounding");
        write_rows(&dir.path().join("2"), &[([1; 32], vec![1.0, 3.0])]);
        let err = Precomputed::load(&[dir.path().to_path_buf()], &m).err().unwrap().to_string();
        assert!(err.contains("2/embeddings.npy row 0") && err.contains(&hex::encode([1u8; 32])), "{err}");
        for absurd in [1e6f32, -3e38] {
            let dir = tempfile::tempdir().unwrap();
            write_rows(dir.path(), &[([2; 32], vec![0.5, absurd])]);
            let err = Precomputed::load(&[dir.path().to_path_buf()], &m).err().unwrap().to_string();
            assert!(err.contains("row 0: value 1") && err.contains("beyond"), "{err}");
        }
    }

    #[test]
    fn bad_folders_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let m = model("m", 2);
        let load = || Precomputed::load(&[dir.path().to_path_buf()], &m).err().unwrap().to_string();
        assert!(load().contains("no model.json"), "{}", load());
        let nan = [f32::NAN, 1.0];
        write(dir.path(), &m, &[Row { file: Path::new("a.png"), content: [1; 32], embedding: &nan }]).unwrap();
        assert!(load().contains("embeddings.npy row 0") && load().contains("NaN"), "{}", load());
        std::fs::write(dir.path().join("index.csv"), "row,file\n0,a.png\n").unwrap();
        assert!(load().contains("index.csv") && load().contains("row,file,sha256"), "{}", load());
        std::fs::write(
            dir.path().join("index.csv"),
            format!("row,file,sha256\n0,a.png,{}\n1,b.png,{}\n", "00".repeat(32), "11".repeat(32)),
        )
        .unwrap();
        assert!(load().contains("shape [1, 2]") && load().contains("2 rows"), "{}", load());
        std::fs::write(dir.path().join("index.csv"), "row,file,sha256\n0,a.png,xyz\n").unwrap();
        assert!(load().contains("line 2") && load().contains("not 64 hex digits"), "{}", load());
    }
}
