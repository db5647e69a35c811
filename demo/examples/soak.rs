//! The edge monitor's soak: a long stream of good pairs through the real
//! `spanwatch-edge` binary against a real broker, then each degraded
//! generator in turn. It counts false alarms, the pairs each degradation
//! takes to raise the alert (and good pairs to clear it), the daemon's
//! resident memory along the way, and every message a subscriber receives.
//!
//! Two surfaces (`--surface`), the default model (ViT-S/14) unless `--model`:
//! - `drawn`: the demo's CC0 texture tiles with DRAWN scratch defects; the
//!   stream's tiles are the ones the calibration never saw (cycled), each
//!   with a fresh random defect.
//! - `elpv-mono`, `elpv-poly`: ELPV mono- or polycrystalline solar cells
//!   (CC BY-NC-SA 4.0, fetched at run time with pip, written only under the
//!   work folder), `--calibration-pairs` faithful pairs on the probe's
//!   100 negatives (several rendered defects per cell). The probe is
//!   trained on PHOTOGRAPHED defects (cells an expert marked defective); the
//!   synthetic defects are rendered EL cracks and dark regions on
//!   defect-free cells; the stream's cells are defect-free ones the
//!   calibration never saw (cycled), each with a fresh rendered defect.
//!
//! ```text
//! cargo build --release -p spanwatch-edge
//! cargo run --release -p spanwatch-demo --example soak -- --edge target/release/spanwatch-edge [--surface drawn|elpv-mono|elpv-poly] [--good 10000] [--calibration-pairs 256]
//! ```
//! The broker is mosquitto when installed (else the in-process rumqttd).

use anyhow::{bail, Context, Result};
use clap::Parser;
use image::GrayImage;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use spanwatch_calibrate::calibration::{write_bundle, CalibrationSettings};
use spanwatch_calibrate::embedding::{CacheChoice, EmbeddingSource};
use spanwatch_calibrate::pipeline::prepare;
use spanwatch_core::alert::AlertState;
use spanwatch_demo::broker::{free_port, start_local_broker};
use spanwatch_demo::stream::{drop_images, PairMaker};
use spanwatch_edge::messages::{Alert, Metrics};
use spanwatch_study::elpv::{CellType, Label};
use spanwatch_synth::defects::Generator;
use spanwatch_synth::demo_data::{build, DemoSize};
use spanwatch_synth::el_defects::ElGenerator;
use spanwatch_synth::synthesis::Donors;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// The spanwatch-edge binary to soak.
    #[arg(long)]
    edge: PathBuf,
    /// `drawn` (texture tiles, drawn defects), `elpv-mono` or `elpv-poly`
    /// (solar cells, photographed real defects, rendered synthetic ones).
    #[arg(long, default_value = "drawn")]
    surface: String,
    /// Faithful calibration pairs on ELPV (the drawn surface has the demo's 30).
    #[arg(long, default_value_t = 256)]
    calibration_pairs: usize,
    /// Good (faithful) pairs before the degraded generators.
    #[arg(long, default_value_t = 10_000)]
    good: usize,
    /// Most degraded pairs fed per generator before giving up on detection.
    #[arg(long, default_value_t = 100)]
    most_degraded: usize,
    /// Most good pairs fed after a detection to clear the alert.
    #[arg(long, default_value_t = 300)]
    most_recovery: usize,
    /// The embedding model (a manifest name).
    #[arg(long, default_value = spanwatch_embed::manifest::DEFAULT_MODEL)]
    model: String,
    /// The window the calibration is asked for (clamped to the calibration's pairs).
    #[arg(long, default_value_t = 32)]
    window: usize,
    /// Working folder (kept); a temporary one by default.
    #[arg(long)]
    work: Option<PathBuf>,
}

const SEED: u64 = 7;
const TOPICS: &str = "spanwatch/soak/line1";

/// A child process (the daemon, mosquitto), killed if the soak ends early.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// What the subscriber saw.
#[derive(Default)]
struct Seen {
    metrics: Vec<Metrics>,
    alerts: Vec<Alert>,
    verdicts: usize,
}

fn subscribe(port: u16) -> Result<Arc<Mutex<Seen>>> {
    let mut options = MqttOptions::new("soak-subscriber", "127.0.0.1", port);
    options.set_clean_session(false).set_keep_alive(Duration::from_secs(30)).set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut connection) = Client::new(options, 1024);
    client.subscribe(format!("{TOPICS}/#"), QoS::AtLeastOnce)?;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let sink = seen.clone();
    std::thread::spawn(move || {
        let _client = client;
        for event in connection.iter() {
            match event {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let mut seen = sink.lock().unwrap();
                    if p.topic.ends_with("/metrics") {
                        seen.metrics.push(serde_json::from_slice(&p.payload).expect("metrics"));
                    } else if p.topic.ends_with("/alert") {
                        let alert: Alert = serde_json::from_slice(&p.payload).expect("alert");
                        if seen.alerts.iter().all(|a| a.seq != alert.seq) {
                            seen.alerts.push(alert);
                        }
                    } else if p.topic.ends_with("/pair") {
                        seen.verdicts += 1;
                    }
                }
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    });
    Ok(seen)
}

/// VmRSS and VmHWM of `pid`, in MB.
fn memory(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()).unwrap_or(0.0) / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Makes the stream's pairs: good ones, or by one of the degraded generators.
trait Stream {
    /// The degraded generators' names, in the order the soak runs them.
    fn degraded(&self) -> Vec<String>;
    /// The next pair's source and synthetic images: good (None) or by degraded generator `which`.
    fn next(&mut self, which: Option<usize>) -> (GrayImage, GrayImage);
    /// How many distinct normal images the stream cycles through.
    fn sources(&self) -> usize;
}

const DRAWN_DEGRADED: [Generator; 6] =
    [Generator::WrongFamily, Generator::TooFaint, Generator::Photometric, Generator::Noise, Generator::Copy, Generator::Narrow];

impl Stream for PairMaker {
    fn degraded(&self) -> Vec<String> {
        DRAWN_DEGRADED.iter().map(Generator::name).collect()
    }

    fn next(&mut self, which: Option<usize>) -> (GrayImage, GrayImage) {
        let pair = PairMaker::next(self, which.map_or(Generator::Faithful, |i| DRAWN_DEGRADED[i]));
        (pair.source, pair.synthetic)
    }

    fn sources(&self) -> usize {
        self.tiles()
    }
}

/// Rendered EL defects on held-out defect-free cells.
struct ElStream {
    cells: Vec<GrayImage>,
    rng: StdRng,
    made: usize,
    donors: Donors,
}

const EL_DEGRADED: [ElGenerator; 6] =
    [ElGenerator::WrongFamily, ElGenerator::TooFaint, ElGenerator::Photometric, ElGenerator::Noise, ElGenerator::Copy, ElGenerator::Narrow];

impl Stream for ElStream {
    fn degraded(&self) -> Vec<String> {
        EL_DEGRADED.iter().map(ElGenerator::name).collect()
    }

    fn next(&mut self, which: Option<usize>) -> (GrayImage, GrayImage) {
        let i = self.made;
        self.made += 1;
        let cell = self.cells[i % self.cells.len()].clone();
        let generator = which.map_or(ElGenerator::Faithful, |w| EL_DEGRADED[w]);
        let synthetic = generator.apply(&cell, i, &self.donors, &mut self.rng);
        (cell, synthetic)
    }

    fn sources(&self) -> usize {
        self.cells.len()
    }
}

/// The stream: drops pairs into the spool and waits until the daemon took them.
struct Feeder {
    stream: Box<dyn Stream>,
    spool: PathBuf,
    fed: usize,
}

impl Feeder {
    /// Feeds `n` pairs, good (None) or by degraded generator `which`; returns their ids.
    fn feed(&mut self, which: Option<usize>, n: usize) -> Result<Vec<String>> {
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            let (source, synthetic) = self.stream.next(which);
            let id = format!("pair-{:05}", self.fed);
            drop_images(&self.spool, &id, &source, &synthetic)?;
            ids.push(id);
            self.fed += 1;
        }
        // Wait until the daemon took them, emptying done/ (the soak would fill the disk otherwise).
        // A generous deadline: a busy machine slows the daemon, which the
        // soak measures (pairs per second), rather than fails on.
        let deadline = Instant::now() + Duration::from_secs(60 + 10 * n as u64);
        let done = self.spool.join("done");
        loop {
            for entry in std::fs::read_dir(&done).into_iter().flatten().flatten() {
                let _ = std::fs::remove_file(entry.path());
            }
            let waiting = pending(&self.spool)?;
            if waiting == 0 {
                break;
            }
            if Instant::now() > deadline {
                bail!("the daemon took {} of {} pairs in time", self.fed - waiting, self.fed);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(ids)
    }
}

/// Feeds pairs of `generator`, five at a time and up to `most`, until an
/// alert to `state` newer than the first `alerts_before` names one of them;
/// returns which of the fed pairs it was (1 = the first) and how many were fed.
fn feed_until(
    feeder: &mut Feeder,
    seen: &Mutex<Seen>,
    which: Option<usize>,
    state: AlertState,
    alerts_before: usize,
    most: usize,
) -> Result<(Option<usize>, usize)> {
    let mut ids = Vec::new();
    loop {
        let found = {
            let seen = seen.lock().unwrap();
            seen.alerts[alerts_before..].iter().find(|a| a.state == state).and_then(|a| ids.iter().position(|id| *id == a.pair))
        };
        if found.is_some() || ids.len() >= most {
            return Ok((found.map(|i| i + 1), ids.len()));
        }
        ids.extend(feeder.feed(which, 5)?);
        // The pairs are recorded and sent once taken; give the broker a moment.
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Writes the ELPV calibration set of `cell_type` under `dir` (real
/// negatives and photographed positives, `pairs` faithful rendered defects
/// on the negatives, cycled) and returns it with a stream over the
/// defect-free cells it left unused.
fn elpv_surface(dir: &Path, cell_type: CellType, pairs: usize) -> Result<(PathBuf, ElStream)> {
    let cells = spanwatch_study::elpv::load(&spanwatch_study::elpv::wheel(&spanwatch_embed::EmbeddingCache::default_root(), false)?)?;
    println!("{}", spanwatch_study::elpv::ATTRIBUTION);
    let mut rng = StdRng::seed_from_u64(SEED);
    let pick = |label: Label, rng: &mut StdRng| {
        let mut list: Vec<GrayImage> =
            cells.iter().filter(|c| c.cell_type == cell_type && c.label == label).map(|c| c.image.clone()).collect();
        list.shuffle(rng);
        list
    };
    let (normal, defective) = (pick(Label::DefectFree, &mut rng), pick(Label::Defective, &mut rng));
    let (negatives, positives) = (100, 40);
    anyhow::ensure!(normal.len() > negatives + 50 && defective.len() >= positives, "too few ELPV {cell_type:?} cells");
    let donors = Donors { textures: Vec::new(), normals: Vec::new(), defect_patches: Vec::new() };
    let save = |image: &GrayImage, path: PathBuf| -> Result<()> {
        std::fs::create_dir_all(path.parent().expect("in a folder"))?;
        image.save(&path).with_context(|| format!("cannot write {}", path.display()))
    };
    for (i, cell) in normal[..negatives].iter().enumerate() {
        save(cell, dir.join(format!("real/negative/cell_{i:03}.png")))?;
    }
    for (i, cell) in defective[..positives].iter().enumerate() {
        save(cell, dir.join(format!("real/positive/defect_{i:03}.png")))?;
    }
    let mut csv = String::from("synthetic,source\n");
    for i in 0..pairs {
        let cell = &normal[i % negatives];
        save(&ElGenerator::Faithful.apply(cell, i, &donors, &mut rng), dir.join(format!("synthetic/faithful/pair_{i:04}.png")))?;
        csv += &format!("pair_{i:04}.png,cell_{:03}.png\n", i % negatives);
    }
    std::fs::write(dir.join("synthetic/faithful/pairs.csv"), csv)?;
    let stream = ElStream { cells: normal[negatives..].to_vec(), rng, made: 0, donors };
    Ok((dir.to_path_buf(), stream))
}

/// Pairs still in the spool (by their synthetic files, written second).
fn pending(spool: &Path) -> Result<usize> {
    Ok(std::fs::read_dir(spool)?.filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().contains(".synthetic.")).count())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let temporary = tempfile::tempdir()?;
    let work = args.work.clone().unwrap_or_else(|| temporary.path().to_path_buf());
    std::fs::create_dir_all(&work)?;

    // Calibrate the faithful generator with the defaults of `calibrate`.
    let (data, stream, defects): (PathBuf, Box<dyn Stream>, &str) = match args.surface.as_str() {
        "drawn" => {
            let data = build(&work.join("demo"), DemoSize::default(), SEED)?;
            (data, Box::new(PairMaker::new(DemoSize::default(), SEED)?), "drawn defects on CC0 texture tiles")
        }
        "elpv-mono" | "elpv-poly" => {
            let cell_type = if args.surface == "elpv-mono" { CellType::Mono } else { CellType::Poly };
            let (data, stream) = elpv_surface(&work.join(&args.surface), cell_type, args.calibration_pairs)?;
            (data, Box::new(stream), "ELPV cells: probe on photographed defects, rendered synthetic defects")
        }
        other => bail!("unknown surface {other:?}: drawn, elpv-mono or elpv-poly"),
    };
    let prepared = prepare(&data, &args.model, &EmbeddingSource::Model(CacheChoice::Off), false, true)?;
    let bundle = work.join("faithful.bundle");
    let settings = CalibrationSettings { window: args.window, ..CalibrationSettings::default() };
    let calibrated = write_bundle(&prepared, "faithful", &settings, &bundle)?;
    println!("calibrated: {}", spanwatch_calibrate::calibration::summary(&bundle, "faithful", &settings, &calibrated));

    // A broker, a subscriber, the daemon.
    let (port, mosquitto) = if Command::new("mosquitto").arg("-h").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok() {
        let port = free_port()?;
        let config = work.join("mosquitto.conf");
        std::fs::write(&config, format!("listener {port} 127.0.0.1\nallow_anonymous true\n"))?;
        let child = Command::new("mosquitto").arg("-c").arg(&config).stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
        (port, Some(KillOnDrop(child)))
    } else {
        (start_local_broker()?.port, None)
    };
    let broker = if mosquitto.is_some() { "mosquitto" } else { "rumqttd (in-process)" };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        anyhow::ensure!(Instant::now() < deadline, "the broker did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let seen = subscribe(port)?;
    std::thread::sleep(Duration::from_millis(500));
    let spool = work.join("spool");
    std::fs::create_dir_all(&spool)?;
    let log = std::fs::File::create(work.join("edge.log"))?;
    let mut edge = KillOnDrop(
        Command::new(&args.edge)
            .args(["--bundle".as_ref(), bundle.as_os_str(), "--input".as_ref(), spool.as_os_str()])
            .args(["--broker", &format!("mqtt://127.0.0.1:{port}"), "--site", "soak", "--device", "line1", "--settle-ms", "20"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", args.edge.display()))?,
    );
    let pid = edge.0.id();
    let mut feeder = Feeder { stream, spool: spool.clone(), fed: 0 };
    println!("broker {broker}; {} held-out normal images, cycled; pid {pid}", feeder.stream.sources());

    // The good stream.
    let started = Instant::now();
    feeder.feed(None, 100)?;
    let (rss_start, _) = memory(pid);
    let mut samples = vec![(100, rss_start)];
    while feeder.fed < args.good {
        let n = (args.good - feeder.fed).min(100);
        feeder.feed(None, n)?;
        if feeder.fed.is_multiple_of(1000) {
            samples.push((feeder.fed, memory(pid).0));
            println!("{} good pairs, {:.0} s, RSS {:.1} MB", feeder.fed, started.elapsed().as_secs_f64(), memory(pid).0);
        }
    }
    let good_seconds = started.elapsed().as_secs_f64();
    let (rss_end, hwm) = memory(pid);
    let false_alarms = seen.lock().unwrap().alerts.iter().filter(|a| a.state == AlertState::Raised).count();

    // Each degraded generator: pairs until the alert, then good pairs until it clears.
    let mut rows = Vec::new();
    for (which, name) in feeder.stream.degraded().into_iter().enumerate() {
        let alerts_before = seen.lock().unwrap().alerts.len();
        let (detected, fed) = feed_until(&mut feeder, &seen, Some(which), AlertState::Raised, alerts_before, args.most_degraded)?;
        let cleared = match detected {
            Some(_) => feed_until(&mut feeder, &seen, None, AlertState::Clear, alerts_before, args.most_recovery)?.0,
            None => None,
        };
        rows.push((name, detected, cleared, fed));
    }

    // Stop and count what arrived.
    Command::new("kill").arg("-TERM").arg(pid.to_string()).status()?;
    let exit = edge.0.wait()?;
    std::thread::sleep(Duration::from_secs(2));
    let seen = seen.lock().unwrap();
    let unique: HashSet<&str> = seen.metrics.iter().map(|m| m.pair.as_str()).collect();
    drop(mosquitto);

    println!("\n## Soak: {} good pairs, then each degraded generator ({defects}; {}; {broker})\n", args.good, args.model);
    println!("| what | result |\n|---|---|");
    println!("| false alarms in {} good pairs | {false_alarms} |", args.good);
    println!("| good pairs per second, end to end | {:.1} |", args.good as f64 / good_seconds);
    println!("| daemon RSS after 100 pairs / after {} | {rss_start:.1} MB / {rss_end:.1} MB (peak {hwm:.1} MB) |", args.good);
    println!("| RSS every 1,000 pairs (MB) | {} |", samples.iter().map(|(_, m)| format!("{m:.1}")).collect::<Vec<_>>().join(", "));
    println!("| messages: metrics received / pairs fed | {} ({} distinct) / {} |", seen.metrics.len(), unique.len(), feeder.fed);
    println!("| verdicts received | {} |", seen.verdicts);
    println!("| daemon exit on SIGTERM | {exit} |");
    println!("\n| degraded generator | pairs to raise the alert | good pairs to clear it |\n|---|---|---|");
    for (name, detected, cleared, fed) in &rows {
        let detected = detected.map_or(format!("not within {fed}"), |n| n.to_string());
        let cleared = cleared.map_or("-".to_string(), |n| n.to_string());
        println!("| {name} | {detected} | {cleared} |");
    }
    Ok(())
}
