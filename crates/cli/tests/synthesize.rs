//! `spanwatch synthesize` end to end on real CC0 texture tiles, grey and
//! colour, of several sizes: every method's set is paired, keeps each
//! source's size and colour mode, changes it only where the method says, is
//! reproducible from its seed, and `spanwatch score` ranks the five sets.
//! The colour tiles are the grey textures tinted per channel (the bundled
//! textures are grey); the defects are synthesized, not photographed.

use image::{DynamicImage, GenericImageView, RgbImage};
use serde_json::Value;
use spanwatch_synth::method::Method;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn spanwatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spanwatch")).args(args).output().expect("the spanwatch binary runs")
}

fn ok(out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "failed:\nstdout: {stdout}\nstderr: {}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// A clean failure (exit 1, no panic): its stderr.
fn fails(out: Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "expected a clean failure: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// A dataset of real texture tiles: 8 grey 128 x 128 negatives, 4 colour
/// 150 x 100 negatives, and 4 positives (grey, with a dark blot).
fn dataset(root: &Path) -> PathBuf {
    let tiles = spanwatch_synth::demo_data::texture_tiles().unwrap();
    let (negative, positive) = (root.join("real/negative"), root.join("real/positive"));
    std::fs::create_dir_all(&negative).unwrap();
    std::fs::create_dir_all(&positive).unwrap();
    for (i, tile) in tiles.iter().step_by(7).take(8).enumerate() {
        tile.save(negative.join(format!("grey{i}.png"))).unwrap();
    }
    for (i, tile) in tiles.iter().skip(3).step_by(11).take(4).enumerate() {
        let grey = DynamicImage::ImageLuma8(tile.clone()).resize_exact(150, 100, image::imageops::FilterType::Triangle).to_luma8();
        let tint = [1.0, 0.8, 0.6];
        let colour = RgbImage::from_fn(150, 100, |x, y| {
            let v = grey.get_pixel(x, y)[0] as f32;
            image::Rgb(tint.map(|t| (v * t) as u8))
        });
        colour.save(negative.join(format!("colour{i}.png"))).unwrap();
    }
    for (i, tile) in tiles.iter().skip(5).step_by(13).take(4).enumerate() {
        let mut tile = tile.clone();
        for y in 30..60 {
            for x in 70..100 {
                tile.put_pixel(x, y, image::Luma([tile.get_pixel(x, y)[0] / 4]));
            }
        }
        tile.save(positive.join(format!("defect{i}.png"))).unwrap();
    }
    root.to_path_buf()
}

/// The share of the image the changed pixels' bounding box covers.
fn changed_share(a: &DynamicImage, b: &DynamicImage) -> f64 {
    let (a, b) = (a.to_rgb8(), b.to_rgb8());
    let changed: Vec<(u32, u32)> = a.enumerate_pixels().filter(|(x, y, p)| *p != b.get_pixel(*x, *y)).map(|(x, y, _)| (x, y)).collect();
    if changed.is_empty() {
        return 0.0;
    }
    let (x0, x1) = (changed.iter().map(|c| c.0).min().unwrap(), changed.iter().map(|c| c.0).max().unwrap());
    let (y0, y1) = (changed.iter().map(|c| c.1).min().unwrap(), changed.iter().map(|c| c.1).max().unwrap());
    ((x1 - x0 + 1) * (y1 - y0 + 1)) as f64 / (a.width() * a.height()) as f64
}

#[test]
fn every_method_writes_a_paired_local_reproducible_set_that_score_ranks() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(&dir.path().join("data"));
    let d = data.to_str().unwrap();
    for method in Method::ALL {
        let name = method.name();
        let stdout = ok(spanwatch(&["synthesize", d, "--method", name, "--per-image", "2", "--seed", "3"]));
        assert!(stdout.contains("wrote 24 synthetic images") && stdout.contains("4 colour, 8 grey"), "{stdout}");
        let folder = data.join("synthetic").join(name);
        let mut reader = csv::Reader::from_path(folder.join("pairs.csv")).unwrap();
        let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
        assert_eq!(rows.len(), 24, "{name}");
        let mut changed = 0;
        for row in &rows {
            let synthetic = image::open(folder.join(&row[0])).unwrap();
            let source = image::open(data.join("real/negative").join(&row[1])).unwrap();
            assert!(row[0].starts_with(row[1].trim_end_matches(".png")), "{name}: {} is not named after {}", &row[0], &row[1]);
            assert_eq!(synthetic.dimensions(), source.dimensions(), "{name} {}", &row[0]);
            assert_eq!(synthetic.color().has_color(), source.color().has_color(), "{name} {}: colour mode changed", &row[0]);
            let share = changed_share(&source, &synthetic);
            assert!(share <= method.local_share(), "{name} {}: the change covers {share:.3} of the image", &row[0]);
            changed += usize::from(share > 0.0);
        }
        assert!(changed >= 22, "{name}: only {changed} of 24 images changed");
        // The same seed makes the same set, byte for byte; an existing set
        // is kept unless --force.
        let first = std::fs::read(folder.join(&rows[5][0])).unwrap();
        let refused = fails(spanwatch(&["synthesize", d, "--method", name, "--per-image", "2", "--seed", "3"]));
        assert!(refused.contains(folder.to_str().unwrap()) && refused.contains("--force"), "{refused}");
        ok(spanwatch(&["synthesize", d, "--method", name, "--per-image", "2", "--seed", "3", "--force"]));
        assert_eq!(std::fs::read(folder.join(&rows[5][0])).unwrap(), first, "{name} is not reproducible");
    }
    // Generate, then rank: the five sets scored by the bundled EfficientNet.
    let cache = dir.path().join("cache");
    let json: Value = serde_json::from_str(&ok(spanwatch(&[
        "score",
        d,
        "--json",
        "-q",
        "--model",
        "efficientnet-lite0",
        "--cache",
        cache.to_str().unwrap(),
    ])))
    .unwrap();
    let names: Vec<&str> = json["generators"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, ["cutpaste", "cutpaste-scar", "draem", "nsa", "transplant"]);
    for generator in json["generators"].as_array().unwrap() {
        let ds = generator["ds"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&ds) && generator["n_pairs"] == 24, "{generator}");
    }
}

#[test]
fn bad_input_names_the_problem_and_leaves_the_dataset_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(&dir.path().join("data"));
    let d = data.to_str().unwrap();
    // A corrupt source: named, and no set (nor a staging folder) is left.
    std::fs::write(data.join("real/negative/zz_corrupt.png"), b"\x89PNG\r\n\x1a\n not really").unwrap();
    let err = fails(spanwatch(&["synthesize", d, "--method", "cutpaste"]));
    assert!(err.contains("zz_corrupt.png"), "{err}");
    let left: Vec<_> = std::fs::read_dir(&data).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(!data.join("synthetic/cutpaste").exists() && left.iter().all(|n| !n.starts_with(".synthesize")), "{left:?}");
    std::fs::remove_file(data.join("real/negative/zz_corrupt.png")).unwrap();
    // A source too small for the methods.
    image::GrayImage::new(12, 40).save(data.join("real/negative/tiny.png")).unwrap();
    let err = fails(spanwatch(&["synthesize", d, "--method", "nsa"]));
    assert!(err.contains("tiny.png") && err.contains("12x40") && err.contains("at least 16"), "{err}");
    std::fs::remove_file(data.join("real/negative/tiny.png")).unwrap();
    // A transplant without positives; DRAEM with an empty textures folder.
    std::fs::remove_dir_all(data.join("real/positive")).unwrap();
    let err = fails(spanwatch(&["synthesize", d, "--method", "transplant"]));
    assert!(err.contains("positives"), "{err}");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let err = fails(spanwatch(&["synthesize", d, "--method", "draem", "--textures", empty.to_str().unwrap()]));
    assert!(err.contains("textures"), "{err}");
    // No dataset at all.
    let err = fails(spanwatch(&["synthesize", dir.path().join("nowhere").to_str().unwrap(), "--method", "cutpaste"]));
    assert!(err.contains("nowhere"), "{err}");
    assert!(!data.join("synthetic").exists());
}
