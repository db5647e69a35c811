//! Decoding memory is bounded by the pixel limit, checked from the header:
//! a decompression bomb (a 16000 x 16000 grey PNG of about 1 MB) is refused
//! before anything is decoded, and an image at the limit (24 megapixels)
//! decodes and preprocesses within the documented ceiling. Memory is the
//! process's peak resident set (VmHWM), so this file holds one test.

use spanwatch_embed::preprocess::{load_rgb, to_tensor, MAX_PIXELS};
use spanwatch_embed::Manifest;
use std::io::Write;
use std::path::Path;

/// Peak resident memory of this process so far, in MB.
fn peak_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<f64>().unwrap() / 1024.0
}

/// Writes a black grey PNG of `width` x `height` row by row (never in memory whole).
fn write_grey_png(path: &Path, width: u32, height: u32) {
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut encoder = png::Encoder::new(file, width, height);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header().unwrap();
    let mut stream = writer.stream_writer().unwrap();
    let row = vec![0u8; width as usize];
    for _ in 0..height {
        stream.write_all(&row).unwrap();
    }
    stream.finish().unwrap();
}

#[test]
fn a_bomb_is_refused_from_its_header_and_an_image_at_the_limit_decodes_within_the_ceiling() {
    let dir = tempfile::tempdir().unwrap();
    let bomb = dir.path().join("bomb.png");
    write_grey_png(&bomb, 16_000, 16_000);
    let bytes = std::fs::read(&bomb).unwrap();
    let before = peak_mb();
    let error = load_rgb(&bomb, &bytes).unwrap_err().to_string();
    let bomb_cost = peak_mb() - before;
    println!("bomb: {} KB file, refused with: {error}; peak memory +{bomb_cost:.1} MB", bytes.len() / 1024);
    assert!(error.contains("bomb.png") && error.contains("16000x16000") && error.contains("limit"), "{error}");
    assert!(bomb_cost < 8.0, "nothing is decoded: +{bomb_cost:.1} MB");

    // 6000 x 4000 = 24 megapixels, the largest accepted.
    let (width, height) = (6_000, 4_000);
    assert_eq!(width as u64 * height as u64, MAX_PIXELS);
    let large = dir.path().join("large.png");
    write_grey_png(&large, width, height);
    let bytes = std::fs::read(&large).unwrap();
    let spec = Manifest::resolve("vit-s14").unwrap().preprocess;
    let before = peak_mb();
    let image = load_rgb(&large, &bytes).unwrap();
    let tensor = to_tensor(&image, &spec);
    drop(image);
    let cost = peak_mb() - before;
    println!("24-megapixel grey PNG ({} KB): decoded and preprocessed with peak memory +{cost:.1} MB", bytes.len() / 1024);
    assert_eq!(tensor.len(), 3 * 224 * 224);
    // Grey (24 MB) and its RGB form (72 MB), plus the resize's intermediate.
    assert!(cost < 130.0, "+{cost:.1} MB over the documented ceiling");
}
