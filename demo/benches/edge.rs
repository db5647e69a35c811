//! Edge monitor benchmarks:
//!
//! - tracker: one pair's update of the no_std span tracker (Gram row, both
//!   span scores, novelty, alignment) at d = 1280 and 384 with windows of
//!   32 and 64, beside the cone alone (what the default alert needs) and
//!   against recomputing the batch scores (thin SVD, ridge and NNLS) of the
//!   same window from scratch;
//! - end to end: pairs per second of the edge monitor on the demo's live
//!   stream (embedding included) through an in-process broker, and on the
//!   same stream made from a quarter as many normal images (the edge
//!   remembers a source's embedding);
//! - memory: peak resident memory (VmHWM) of the `spanwatch-edge` binary
//!   after it has processed the same stream.
//!
//! Run: `cargo build --release -p spanwatch-edge && cargo bench -p spanwatch-demo --bench edge`.

use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use spanwatch_calibrate::calibration::{write_bundle, CalibrationSettings};
use spanwatch_calibrate::embedding::{CacheChoice, EmbeddingSource};
use spanwatch_calibrate::metric::SpanFit;
use spanwatch_calibrate::pipeline::prepare;
use spanwatch_core::dot;
use spanwatch_core::span::Solver;
use spanwatch_core::tracker::SpanTracker;
use spanwatch_core::window::GramWindow;
use spanwatch_demo::broker::start_local_broker;
use spanwatch_demo::live::{run_live, LiveRun};
use spanwatch_demo::stream::{degrading_stream, drop_into_spool, wait_until_processed, StreamPair};
use spanwatch_synth::defects::{Family, Generator};
use spanwatch_synth::demo_data::{build, DemoSize};
use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PAIRS: usize = 400;
/// Rows of the reference basis each pair is measured against (the demo's ViT-S/14 bundle has k = 16).
const BASIS_ROWS: usize = 24;

fn random_vectors<const D: usize>(n: usize, seed: u64) -> Vec<[f32; D]> {
    let mut rng = StdRng::seed_from_u64(seed);
    // Low-rank structure plus noise, like real difference vectors.
    let loadings: Vec<[f32; D]> = (0..20).map(|_| std::array::from_fn(|_| rng.random_range(-1.0..1.0))).collect();
    (0..n)
        .map(|_| {
            let factors: Vec<f32> = (0..20).map(|_| rng.random_range(-1.0..1.0)).collect();
            std::array::from_fn(|j| factors.iter().zip(&loadings).map(|(f, l)| f * l[j]).sum::<f32>() + rng.random_range(-0.3..0.3))
        })
        .collect()
}

/// Seconds per pair of what the default alert needs alone, on the same
/// vectors: the dot products with the window, its Gram row and the cone
/// (warm NNLS), without the spectrum (eigenvalues for the ridge span and
/// the effective rank, the novelty's reduction) that a full update also
/// computes for the per-pair metrics.
fn bench_cone_only<const D: usize>(vectors: &[[f32; D]], window: usize) -> f64 {
    let w = &vectors[PAIRS];
    let mut gram = Box::new(GramWindow::<64>::new(dot(w, w), D, Solver::Nnls, window).unwrap());
    let mut ring = vec![[0.0f32; D]; window];
    let mut push = |v: &[f32; D]| {
        let inner: Vec<f64> = ring.iter().take(gram.len()).map(|r| dot(r, v)).collect();
        let energy = dot(v, v);
        let slot = gram.insert(false, dot(v, w), 0.0, |slot, i| if i == slot { energy } else { inner[i] });
        ring[slot] = *v;
        gram.span_ds(Solver::Nnls)
    };
    let mut sink = 0.0;
    for v in &vectors[..window] {
        sink += push(v);
    }
    let start = Instant::now();
    for v in &vectors[window..PAIRS] {
        sink += push(v);
    }
    std::hint::black_box(sink);
    start.elapsed().as_secs_f64() / (PAIRS - window) as f64
}

fn bench_tracker<const D: usize>(window: usize) {
    let vectors = random_vectors::<D>(PAIRS + 1, D as u64);
    let w = vectors[PAIRS];
    let mut tracker = Box::new(SpanTracker::<D, 64>::new(&w, Solver::Nnls, window).unwrap());
    // Each pair's off-span share is measured against a reference basis of BASIS_ROWS rows.
    let basis: Vec<f32> = vectors[..BASIS_ROWS].iter().flatten().copied().collect();
    for v in &vectors[..window] {
        tracker.push(v, basis.iter().copied(), 0.015);
    }
    let start = Instant::now();
    let mut sink = 0.0;
    for v in &vectors[window..PAIRS] {
        sink += tracker.push(v, basis.iter().copied(), 0.015).scores.cone.ds;
    }
    let streamed = start.elapsed().as_secs_f64() / (PAIRS - window) as f64;
    let cone_only = bench_cone_only(&vectors, window);
    let w_vec: Vec<f32> = w.to_vec();
    let batches = 40;
    let start = Instant::now();
    for t in window..window + batches {
        let rows = &vectors[t + 1 - window..=t];
        let fit = SpanFit::new(DMatrix::from_fn(window, D, |i, j| rows[i][j] as f64));
        sink += fit.score(&w_vec, Solver::Nnls).ds + fit.score(&w_vec, Solver::Ridge { lambda: 0.01 }).ds;
    }
    let batch = start.elapsed().as_secs_f64() / batches as f64;
    println!(
        "tracker d = {D:>4}, W = {window:>2}: {:>8.1} us per pair streamed ({:.1} us for the cone alone), {:>8.1} us batch recompute, {:>5.1}x  (checksum {sink:.3})",
        streamed * 1e6,
        cone_only * 1e6,
        batch * 1e6,
        batch / streamed
    );
}

/// Pairs per second end to end with each model (the default ViT-S/14
/// first); returns the default model's bundle and stream for the memory run.
fn bench_end_to_end(dir: &Path, broker_port: u16) -> (std::path::PathBuf, Vec<StreamPair>) {
    let size = DemoSize::default();
    let data = build(&dir.join("demo"), size, 7).unwrap();
    let stream = degrading_stream(size, 7, 40, 40, Generator::WrongFamily).unwrap();
    let mut default = None;
    for model in ["vit-s14", "efficientnet-lite0"] {
        let prepared = prepare(&data, model, &EmbeddingSource::Model(CacheChoice::Off), false, true).unwrap();
        let bundle = dir.join(format!("{model}.bundle"));
        write_bundle(&prepared, "faithful", &CalibrationSettings::default(), &bundle).unwrap();
        stream_end_to_end(&dir.join(model), &bundle, model, &stream, broker_port);
        default.get_or_insert(bundle);
    }
    (default.unwrap(), stream)
}

/// The demo's live stream through the in-process edge monitor, as it is
/// and made from a quarter as many normal images.
fn stream_end_to_end(dir: &Path, bundle: &Path, model: &str, stream: &[StreamPair], broker_port: u16) {
    // The same pairs made from a quarter as many normal images, each the
    // source of 4 defects (as a synthesis run draws on a pool of normals):
    // the edge remembers a source's embedding and embeds only the defect.
    let mut rng = StdRng::seed_from_u64(11);
    let pool = stream.len() / 4;
    let reused: Vec<StreamPair> = stream
        .iter()
        .enumerate()
        .map(|(i, pair)| {
            let source = stream[i % pool].source.clone();
            let synthetic = pair.generator.apply(Family::Scratch, &source, i, &mut rng);
            StreamPair { id: pair.id.clone(), generator: pair.generator, source, synthetic }
        })
        .collect();

    // In process: drop the whole stream at once, time until every pair is done.
    for (name, pairs) in [("spool", stream), ("spool-reused", &reused[..])] {
        let sources: HashSet<&[u8]> = pairs.iter().map(|p| p.source.as_raw().as_slice()).collect();
        let start = Instant::now();
        let live = run_live(LiveRun { bundle, spool: dir.join(name), port: broker_port, stream: pairs, verbose: false }).unwrap();
        let seconds = start.elapsed().as_secs_f64();
        println!(
            "end to end (in process, {model}, MQTT included), {} pairs from {} normal images: {seconds:.2} s = {:.1} pairs/s",
            live.summary.pairs,
            sources.len(),
            live.summary.pairs as f64 / seconds
        );
    }
}

/// Peak resident memory of the `spanwatch-edge` binary after `stream`.
fn bench_memory(dir: &Path, bundle: &Path, stream: &[StreamPair], broker_port: u16) {
    // The binary: peak resident memory after the same stream.
    let binary = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("spanwatch-edge");
    if !binary.exists() {
        println!("memory: SKIPPED, build the binary first: cargo build --release -p spanwatch-edge");
        return;
    }
    let spool = dir.join("spool-binary");
    std::fs::create_dir_all(&spool).unwrap();
    let mut child = Command::new(&binary)
        .arg("--bundle")
        .arg(bundle)
        .arg("--input")
        .arg(&spool)
        .args(["--broker", &format!("mqtt://127.0.0.1:{broker_port}"), "--settle-ms", "20"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for pair in stream {
        drop_into_spool(&spool, pair).unwrap();
    }
    wait_until_processed(&spool, stream.len(), Duration::from_secs(300)).unwrap();
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let field = |name: &str| status.lines().find(|l| l.starts_with(name)).map(|l| l[name.len()..].trim().to_string()).unwrap_or_default();
    println!(
        "spanwatch-edge ({}) after {} pairs: peak resident {} (now {})",
        bundle.display(),
        stream.len(),
        field("VmHWM:"),
        field("VmRSS:")
    );
    Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    child.wait().unwrap();
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    for window in [32, 64] {
        bench_tracker::<1280>(window);
        bench_tracker::<384>(window);
    }
    let dir = tempfile::tempdir().unwrap();
    let broker = start_local_broker().unwrap();
    let (bundle, stream) = bench_end_to_end(dir.path(), broker.port);
    bench_memory(dir.path(), &bundle, &stream, broker.port);
}
