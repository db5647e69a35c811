//! `spanwatch-demo`: the whole product end to end on bundled real textures:
//! demo data, generator ranking, calibration, and the edge monitor on a live
//! stream through an in-process MQTT broker.

use anyhow::Result;
use clap::Parser;
use spanwatch_calibrate::calibration::{summary, write_bundle, CalibrationSettings};
use spanwatch_calibrate::embedding::EmbeddingSource;
use spanwatch_calibrate::pipeline::prepare;
use spanwatch_calibrate::ranking::{format_table, score_generators};
use spanwatch_cli::flags::CacheFlags;
use spanwatch_core::alert::AlertState;
use spanwatch_core::span::Solver;
use spanwatch_demo::broker::start_local_broker;
use spanwatch_demo::live::{run_live, LiveRun};
use spanwatch_demo::stream::degrading_stream;
use spanwatch_synth::defects::Generator;
use spanwatch_synth::demo_data::{build, DemoSize};
use std::path::PathBuf;
use std::process::ExitCode;

/// spanwatch's demo: builds a small inspection dataset from the bundled real
/// textures, ranks its synthetic generators, calibrates the edge on the
/// faithful one and runs the edge monitor on a live stream through an
/// in-process MQTT broker.
#[derive(Parser)]
#[command(name = "spanwatch-demo", version, about, long_about = None)]
struct DemoArgs {
    /// No progress bars or warnings, only results and errors.
    #[arg(long, short)]
    quiet: bool,
    /// Where the embeddings are cached.
    #[command(flatten)]
    cache: CacheFlags,
    /// Folder for the demo dataset (rewritten if it is an earlier demo folder).
    #[arg(long, default_value = "spanwatch-demo")]
    out: PathBuf,
    /// Embedding model: a bundled name or a manifest path.
    #[arg(long, default_value = spanwatch_embed::manifest::DEFAULT_MODEL)]
    model: String,
    /// Bootstrap replicates over the real positives.
    #[arg(long, default_value_t = 200)]
    bootstrap: usize,
    /// Seed of the drawn defects and the bootstrap.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Pairs of the live stream before and after its generator degrades.
    #[arg(long, default_value_t = 40)]
    stream: usize,
    /// What the live stream's generator degrades to.
    #[arg(long, value_enum, default_value_t = Degradation::Photometric)]
    degrade: Degradation,
}

/// How the live stream's generator goes wrong.
#[derive(clap::ValueEnum, Clone, Copy)]
enum Degradation {
    /// Draws pits instead of scratches.
    WrongFamily,
    /// Changes brightness and contrast instead of drawing a defect.
    Photometric,
    /// Draws scratches too faint to see.
    TooFaint,
}

impl Degradation {
    fn generator(self) -> Generator {
        match self {
            Degradation::WrongFamily => Generator::WrongFamily,
            Degradation::Photometric => Generator::Photometric,
            Degradation::TooFaint => Generator::TooFaint,
        }
    }
}

fn main() -> ExitCode {
    let args = DemoArgs::parse();
    // The edge monitor and the broker run in this process; the demo's own output shows what they do.
    let level = if args.quiet { "error" } else { "warn,spanwatch_edge=error,rumqttd=off" };
    spanwatch_cli::logging::init(level);
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: DemoArgs) -> Result<()> {
    let cache = args.cache.choice();
    let size = DemoSize::default();
    let data = build(&args.out, size, args.seed)?;
    println!(
        "demo data in {}: {} real negative tiles of real CC0 textures, {} real positives with DRAWN scratches,\n\
         5 synthetic generators x {} pairs made from the negatives. The defects are drawn, not photographed:\n\
         this is a controlled benchmark, like the seed paper's watermark set, not evidence on real defect data.\n",
        data.display(),
        size.negatives,
        size.positives,
        size.pairs
    );
    let prepared = prepare(&data, &args.model, &EmbeddingSource::Model(cache.clone()), false, args.quiet)?;
    // The default score, as the validation study chose it (docs/validation.md).
    let solver = Solver::Nnls;
    let rows = score_generators(&prepared, solver, args.bootstrap, args.seed, args.quiet)?;
    println!(
        "1. Ranking the generators. Model {} ({}..), d = {}, solver {} (the sign-aware cone), 95% CI from {} bootstrap replicates over the real positives",
        prepared.model.name,
        prepared.model.short_id(),
        prepared.model.dim,
        solver.name(),
        args.bootstrap
    );
    print!("{}", format_table(&rows));
    println!(
        "\nDS = 1 - ||w - w_hat|| / ||w||: how much of the real-data probe w the synthetic changes span.\n\
         chance = DS of a random span of the same rank k; corrected = captured share above chance;\n\
         align = mean cosine of w and the changes; opposed = changes pointing away from the defect side.\n"
    );

    let bundle = data.join("faithful.bundle");
    let settings = CalibrationSettings::default();
    let calibrated = write_bundle(&prepared, "faithful", &settings, &bundle)?;
    println!("2. Calibrating the edge on the faithful generator:");
    for line in summary(&bundle, "faithful", &settings, &calibrated).lines() {
        println!("   {line}");
    }
    println!();

    let degraded = args.degrade.generator();
    let stream = degrading_stream(size, args.seed, args.stream, args.stream, degraded)?;
    let broker = start_local_broker()?;
    println!(
        "3. The edge monitor, live: in-process MQTT broker on 127.0.0.1:{}; {} new faithful pairs, then {} pairs whose\n   \
         generator degraded to {:?}, dropped into {}. A subscriber to spanwatch/# receives:",
        broker.port,
        args.stream,
        args.stream,
        degraded.name(),
        data.join("spool").display()
    );
    let outcome =
        run_live(LiveRun { bundle: &bundle, spool: data.join("spool"), port: broker.port, stream: &stream, verbose: !args.quiet })?;
    let first_bad = &stream[args.stream.min(stream.len() - 1)].id;
    match outcome.alerts.iter().find(|a| a.state == AlertState::Raised) {
        Some(raised) => {
            let at: usize = raised.pair.trim_start_matches("pair-").parse().unwrap_or(0);
            println!(
                "\nThe alert was raised at {} ({} pairs after the generator degraded at {first_bad}): its {} CUSUM reached {:.3} > its threshold {:.3}\n({}).",
                raised.pair,
                (at + 1).saturating_sub(args.stream),
                raised.watch.name(),
                raised.value,
                raised.threshold,
                raised.reason
            );
        }
        None => println!("\nNo alert was raised: no CUSUM of the degraded pairs' statistics reached its threshold."),
    }
    let summary = outcome.summary;
    println!(
        "Edge summary: {} pairs scored, {} failed, {} alert message(s); {} messages delivered to the broker, {} metrics received.\n\
         Next: spanwatch score {data} --solver ridge (the paper's span) | spanwatch report {data} -o report.html\n      \
         | spanwatch-edge --bundle {bundle} --input SPOOL --broker mqtt://HOST:1883",
        summary.pairs,
        summary.failed,
        summary.alerts,
        summary.delivery.delivered,
        outcome.metrics,
        data = data.display(),
        bundle = bundle.display()
    );
    Ok(())
}
