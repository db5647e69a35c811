//! The dataset layout and how synthetic images are paired with their sources.
//!
//! ```text
//! DATA/real/negative/*.png|jpg
//! DATA/real/positive/*.png|jpg
//! DATA/synthetic/<generator>/*.png|jpg   # made from real/negative/<same stem>.*
//! DATA/synthetic/<generator>/pairs.csv   # optional: synthetic,source
//! ```

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A synthetic image and the real negative it was made from.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Pair {
    /// The synthetic image.
    pub synthetic: PathBuf,
    /// Its source, a real negative.
    pub source: PathBuf,
}

/// One synthetic set.
#[derive(Clone, Debug)]
pub struct Generator {
    /// Folder name under `synthetic/`.
    pub name: String,
    /// Its pairs, ordered by synthetic file name.
    pub pairs: Vec<Pair>,
    /// Synthetic images skipped for want of a source (with `--skip-unpaired`).
    pub skipped: Vec<PathBuf>,
}

/// A dataset found on disk.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// The DATA folder.
    pub root: PathBuf,
    /// Real negatives, sorted.
    pub negatives: Vec<PathBuf>,
    /// Real positives, sorted.
    pub positives: Vec<PathBuf>,
    /// Synthetic sets, sorted by name.
    pub generators: Vec<Generator>,
}

/// True for the image files spanwatch reads (by extension).
pub fn is_image(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
}

/// The image files directly in `dir`, sorted.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("cannot read folder {}", dir.display()))?;
    let mut images = Vec::new();
    for entry in entries {
        let path = entry.with_context(|| format!("cannot read folder {}", dir.display()))?.path();
        if path.is_file() && is_image(&path) {
            images.push(path);
        }
    }
    images.sort();
    Ok(images)
}

fn stem(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

impl Dataset {
    /// Reads the layout under `root`. Unpaired synthetic images are an error
    /// that lists them, or, with `skip_unpaired`, are left out and recorded.
    pub fn open(root: &Path, skip_unpaired: bool) -> Result<Dataset> {
        let negatives = list_images(&root.join("real/negative"))?;
        let positives = list_images(&root.join("real/positive"))?;
        let by_stem = index_by_stem(&negatives)?;
        let synthetic_root = root.join("synthetic");
        let mut generators = Vec::new();
        if synthetic_root.is_dir() {
            let mut dirs: Vec<PathBuf> = std::fs::read_dir(&synthetic_root)
                .with_context(|| format!("cannot read folder {}", synthetic_root.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .collect();
            dirs.sort();
            for dir in dirs {
                generators.push(pair_generator(&dir, &root.join("real/negative"), &by_stem, skip_unpaired)?);
            }
        }
        Ok(Dataset { root: root.to_path_buf(), negatives, positives, generators })
    }

    /// The generator with this name.
    pub fn generator(&self, name: &str) -> Result<&Generator> {
        match self.generators.iter().find(|g| g.name == name) {
            Some(g) => Ok(g),
            None => bail!(
                "no generator {name:?} under {}; found: {}",
                self.root.join("synthetic").display(),
                self.generators.iter().map(|g| g.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
        }
    }
}

/// The real negatives by file stem; two sharing a stem are an error that names both.
pub fn index_by_stem(negatives: &[PathBuf]) -> Result<BTreeMap<String, PathBuf>> {
    let mut by_stem = BTreeMap::new();
    for path in negatives {
        if let Some(previous) = by_stem.insert(stem(path), path.clone()) {
            bail!(
                "two real negatives share the stem {:?}: {} and {}; pairing by stem would be ambiguous",
                stem(path),
                previous.display(),
                path.display()
            );
        }
    }
    Ok(by_stem)
}

fn pair_generator(dir: &Path, negative_dir: &Path, by_stem: &BTreeMap<String, PathBuf>, skip_unpaired: bool) -> Result<Generator> {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let images = list_images(dir)?;
    let manifest = dir.join("pairs.csv");
    let explicit = if manifest.is_file() { Some(read_pairs_csv(&manifest, dir, negative_dir, by_stem.values())?) } else { None };
    let mut pairs = Vec::new();
    let mut unpaired = Vec::new();
    for synthetic in images {
        let source = match &explicit {
            Some(map) => map.get(synthetic.file_name().unwrap_or_default().to_string_lossy().as_ref()).cloned(),
            None => by_stem.get(&stem(&synthetic)).cloned(),
        };
        match source {
            Some(source) if source.is_file() => pairs.push(Pair { synthetic, source }),
            _ => unpaired.push(synthetic),
        }
    }
    if !unpaired.is_empty() && !skip_unpaired {
        let how = if explicit.is_some() {
            format!("listed with an existing source in {}", manifest.display())
        } else {
            format!("matched by file stem in {}", negative_dir.display())
        };
        bail!(
            "generator {name:?}: {} synthetic image(s) have no source image ({how}):\n  {}\n(use --skip-unpaired to leave them out)",
            unpaired.len(),
            unpaired.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join("\n  ")
        );
    }
    if pairs.is_empty() {
        bail!("generator {name:?}: {} holds no paired synthetic images", dir.display());
    }
    Ok(Generator { name, pairs, skipped: unpaired })
}

/// Reads `synthetic,source` rows: synthetic is a file name in the generator's
/// folder, listed once; source one of the real negatives, named relative to
/// `real/negative` (or by an absolute path to it). A source outside the real
/// negatives (`../../etc/passwd`, another folder) is an error naming the row;
/// a source that does not exist leaves its synthetic image unpaired.
fn read_pairs_csv<'a>(
    path: &Path,
    dir: &Path,
    negative_dir: &Path,
    negatives: impl Iterator<Item = &'a PathBuf>,
) -> Result<BTreeMap<String, PathBuf>> {
    let by_real_path: BTreeMap<PathBuf, &PathBuf> = negatives.filter_map(|n| Some((n.canonicalize().ok()?, n))).collect();
    let mut reader = csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let headers = reader.headers().with_context(|| format!("{}: cannot read the header", path.display()))?.clone();
    if headers.len() < 2 || &headers[0] != "synthetic" || &headers[1] != "source" {
        bail!("{}: the header must be `synthetic,source`, found `{}`", path.display(), headers.iter().collect::<Vec<_>>().join(","));
    }
    let mut map = BTreeMap::new();
    let mut rows: BTreeMap<String, usize> = BTreeMap::new();
    for (line, record) in reader.records().enumerate() {
        let row = line + 2;
        let record = record.with_context(|| format!("{}: malformed row {row}", path.display()))?;
        let (synthetic, source) = (from_spreadsheet_safe(record[0].trim()).to_string(), from_spreadsheet_safe(record[1].trim()));
        if !dir.join(&synthetic).is_file() {
            bail!("{} row {row}: synthetic image {} does not exist", path.display(), dir.join(&synthetic).display());
        }
        if let Some(first) = rows.insert(synthetic.clone(), row) {
            bail!(
                "{} row {row}: synthetic image {synthetic:?} is listed again (first on row {first}); each has one source",
                path.display()
            );
        }
        let candidate = negative_dir.join(source);
        let Ok(real) = candidate.canonicalize() else { continue }; // missing: reported as unpaired
        let Some(&negative) = by_real_path.get(&real) else {
            bail!(
                "{} row {row}: source {source:?} is not one of the real negatives in {} (a source must be a real negative image)",
                path.display(),
                negative_dir.display()
            );
        };
        map.insert(synthetic, negative.clone());
    }
    Ok(map)
}

/// Writes `pairs` as a `pairs.csv` (synthetic,source file names; a name a
/// spreadsheet would run as a formula is written behind a `'`, which reading
/// a pairs.csv takes off again).
pub fn write_pairs_csv<'a>(path: &Path, pairs: impl IntoIterator<Item = &'a Pair>) -> Result<()> {
    let mut writer = csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))?;
    writer.write_record(["synthetic", "source"])?;
    let name = |p: &Path| p.file_name().unwrap_or_default().to_string_lossy().into_owned();
    for pair in pairs {
        let (synthetic, source) = (name(&pair.synthetic), name(&pair.source));
        writer.write_record([spreadsheet_safe(&synthetic).as_bytes(), spreadsheet_safe(&source).as_bytes()])?;
    }
    writer.flush().with_context(|| format!("cannot write {}", path.display()))
}

/// A CSV cell a spreadsheet will not run as a formula: text that starts with
/// `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`.
pub fn spreadsheet_safe(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(FORMULA_STARTS) {
        format!("'{text}").into()
    } else {
        text.into()
    }
}

/// The text [`spreadsheet_safe`] protected.
fn from_spreadsheet_safe(cell: &str) -> &str {
    cell.strip_prefix('\'').filter(|rest| rest.starts_with(FORMULA_STARTS)).unwrap_or(cell)
}

const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"x").unwrap();
    }

    #[test]
    fn pairs_by_stem_and_lists_the_unpaired() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in [
            "real/negative/a.png",
            "real/negative/b.jpg",
            "real/positive/p.png",
            "synthetic/g/a.png",
            "synthetic/g/b.png",
            "synthetic/g/zz.png",
        ] {
            touch(&root.join(f));
        }
        let err = Dataset::open(root, false).unwrap_err().to_string();
        assert!(err.contains("zz.png") && err.contains("1 synthetic image(s)"), "{err}");
        let data = Dataset::open(root, true).unwrap();
        let g = data.generator("g").unwrap();
        assert_eq!(g.pairs.len(), 2);
        assert_eq!(g.pairs[1].source, root.join("real/negative/b.jpg"));
        assert_eq!(g.skipped, [root.join("synthetic/g/zz.png")]);
        assert!(data.generator("nope").unwrap_err().to_string().contains("found: g"));
    }

    #[test]
    fn pairs_csv_overrides_stems() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in ["real/negative/a.png", "real/negative/b.png", "real/positive/p.png", "synthetic/g/out1.png"] {
            touch(&root.join(f));
        }
        std::fs::write(root.join("synthetic/g/pairs.csv"), "synthetic,source\nout1.png,b.png\n").unwrap();
        let data = Dataset::open(root, false).unwrap();
        assert_eq!(data.generators[0].pairs[0].source, root.join("real/negative/b.png"));
        // Sources outside real/negative, however named, are refused naming the row (they panicked).
        std::fs::create_dir_all(root.join("real/other")).unwrap();
        touch(&root.join("real/other/x.png"));
        let outside = root.join("real/other/x.png").display().to_string();
        for source in ["../other/x.png", "../../real/other/x.png", outside.as_str(), "../../../../../../etc/passwd"] {
            std::fs::write(root.join("synthetic/g/pairs.csv"), format!("synthetic,source\nout1.png,{source}\n")).unwrap();
            let err = format!("{:#}", Dataset::open(root, false).expect_err("refused"));
            assert!(err.contains("row 2") && err.contains("not one of the real negatives"), "{source}: {err}");
        }
        // The same negative named another way is that negative.
        let absolute = root.join("real/negative/b.png").display().to_string();
        for source in ["../negative/b.png", "./b.png", absolute.as_str()] {
            std::fs::write(root.join("synthetic/g/pairs.csv"), format!("synthetic,source\nout1.png,{source}\n")).unwrap();
            assert_eq!(Dataset::open(root, false).unwrap().generators[0].pairs[0].source, root.join("real/negative/b.png"), "{source}");
        }
        // A synthetic listed twice, with two sources: refused, not the last row winning.
        std::fs::write(root.join("synthetic/g/pairs.csv"), "synthetic,source\nout1.png,a.png\nout1.png,b.png\n").unwrap();
        let err = format!("{:#}", Dataset::open(root, false).expect_err("refused"));
        assert!(err.contains("row 3") && err.contains("first on row 2"), "{err}");
        std::fs::write(root.join("synthetic/g/pairs.csv"), "synthetic,source\nout1.png,missing.png\n").unwrap();
        assert!(Dataset::open(root, false).unwrap_err().to_string().contains("out1.png"));
    }

    #[test]
    fn names_a_spreadsheet_would_run_are_written_safe_and_read_back() {
        for name in ["=HYPERLINK(1).png", "+1.png", "-x.png", "@a.png"] {
            let safe = spreadsheet_safe(name);
            assert!(safe.starts_with('\''), "{safe}");
            assert_eq!(from_spreadsheet_safe(&safe), name);
        }
        assert_eq!(spreadsheet_safe("a.png"), "a.png");
        assert_eq!(from_spreadsheet_safe("'quoted.png"), "'quoted.png", "a name that starts with ' itself is kept");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Any pairs.csv (the fuzz target pairs_csv's twin): an error or
        /// pairs whose sources are real negatives, never a panic.
        #[test]
        fn any_pairs_csv_pairs_with_real_negatives_or_fails(rows in proptest::collection::vec(
            ("(s1|s2|s3|=s1|'s1)\\.png", "(a|b|x|\\.\\./negative/a|\\.\\./other/x|\\.\\./\\.\\./\\.\\./etc/passwd|/etc/passwd|[a-z./]{0,12})(\\.png)?"),
            0..5,
        ), header in "(synthetic,source|source,synthetic|[a-z,]{0,20})") {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path();
            for f in ["real/negative/a.png", "real/negative/b.png", "real/positive/p.png", "real/other/x.png", "synthetic/g/s1.png", "synthetic/g/s2.png"] {
                touch(&root.join(f));
            }
            let text: String = std::iter::once(header).chain(rows.iter().map(|(s, src)| format!("{s},{src}"))).collect::<Vec<_>>().join("\n");
            std::fs::write(root.join("synthetic/g/pairs.csv"), text).unwrap();
            if let Ok(data) = Dataset::open(root, true) {
                for pair in data.generators.iter().flat_map(|g| &g.pairs) {
                    proptest::prop_assert!(pair.source.starts_with(root.join("real/negative")), "{}", pair.source.display());
                }
            }
        }
    }
}
