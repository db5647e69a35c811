//! Writes the data the MCU firmware compiles in (firmware/mcu/data): the
//! demo's calibration bundle (default model, faithful generator, alert on
//! the mean alignment) and the embeddings of the demo's live stream (40 new
//! faithful pairs, then 40 whose generator degraded to photometric changes),
//! each pair followed by its pixel extent,
//! with the demo's seed, so the firmware sees what the Linux edge sees in
//! the demo. Every image is a CC0 texture tile; the defects are DRAWN.
//!
//! cargo run --release -p spanwatch-demo --example mcu_stream [-- OUT_DIR]

use anyhow::{Context, Result};
use spanwatch_calibrate::calibration::{write_bundle, CalibrationSettings};
use spanwatch_calibrate::embedding::{CacheChoice, EmbeddingSource};
use spanwatch_calibrate::pipeline::prepare;
use spanwatch_demo::stream::degrading_stream;
use spanwatch_embed::extent::change_extent;
use spanwatch_embed::manifest::{Manifest, DEFAULT_MODEL};
use spanwatch_embed::model::Embedder;
use spanwatch_synth::defects::Generator;
use spanwatch_synth::demo_data::{build, DemoSize};
use std::io::Write;
use std::path::PathBuf;

/// The demo's defaults (src/main.rs): seed, pairs before and after the degradation.
const SEED: u64 = 7;
const GOOD: usize = 40;
const BAD: usize = 40;

fn main() -> Result<()> {
    let out = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../firmware/mcu/data"));
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let scratch = tempfile::tempdir()?;
    let size = DemoSize::default();
    let data = build(&scratch.path().join("demo"), size, SEED)?;
    let cache = CacheChoice::new(None, false);
    let prepared = prepare(&data, DEFAULT_MODEL, &EmbeddingSource::Model(cache), false, true)?;
    let settings = CalibrationSettings::default();
    let bundle = out.join("calibration.bundle");
    let calibrated = write_bundle(&prepared, "faithful", &settings, &bundle)?;

    let embedder = Embedder::load(&Manifest::resolve(DEFAULT_MODEL)?)?;
    let stream = degrading_stream(size, SEED, GOOD, BAD, Generator::Photometric)?;
    let path = out.join("stream.f32");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?);
    for pair in &stream {
        let mut files = Vec::new();
        for (half, image) in [("source", &pair.source), ("synthetic", &pair.synthetic)] {
            let png = scratch.path().join(format!("{}.{half}.png", pair.id));
            image.save(&png)?;
            let (embedding, _) = embedder.embed_file(&png, None)?;
            embedding.iter().try_for_each(|v| file.write_all(&v.to_le_bytes()))?;
            files.push(png);
        }
        file.write_all(&(change_extent(&files[0], &files[1])? as f32).to_le_bytes())?;
    }
    file.flush()?;
    println!(
        "{}: {} bytes, CUSUM drift alert above thresholds {}, window of {} pairs; {}: {} pairs x (2 x {} + 1) f32 ({} faithful, then {} photometric)",
        bundle.display(),
        calibrated.bytes,
        spanwatch_core::detector::NamedThresholds(&calibrated.detector.params.thresholds),
        calibrated.window,
        path.display(),
        stream.len(),
        embedder.dim(),
        GOOD,
        BAD
    );
    Ok(())
}
