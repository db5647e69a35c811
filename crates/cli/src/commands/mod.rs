//! The command line: one thin module per subcommand over the library.

mod calibrate;
mod embed;
mod filter;
mod inspect;
mod report;
mod score;
#[cfg(feature = "study")]
mod study;
mod synthesize;

use clap::{Args, Parser, Subcommand, ValueEnum};
use spanwatch_calibrate::embedding::{CacheChoice, EmbeddingSource};
use spanwatch_cli::flags::CacheFlags;
use spanwatch_core::span::Solver;
use std::path::PathBuf;

/// spanwatch: will this synthetic defect data help? Scores synthetic image
/// sets by how well their changes span a linear probe trained on real data
/// (the discriminative span, DS), without training a model.
#[derive(Parser)]
#[command(name = "spanwatch", version, about, long_about = None)]
pub struct Cli {
    /// Options for every subcommand.
    #[command(flatten)]
    pub global: Global,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Options for every subcommand.
#[derive(Args)]
pub struct Global {
    /// No progress bars or warnings, only results and errors.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Where the embeddings are cached.
    #[command(flatten)]
    pub cache: CacheFlags,
}

impl Global {
    fn cache_choice(&self) -> CacheChoice {
        self.cache.choice()
    }
}

/// The subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Score every synthetic set under DATA and rank them by DS.
    Score(score::ScoreArgs),
    /// Write the synthetic samples of one generator worth keeping.
    Filter(filter::FilterArgs),
    /// Write the edge monitor's calibration bundle for one generator.
    Calibrate(calibrate::CalibrateArgs),
    /// Print a calibration bundle, refusing corrupt or foreign files.
    Inspect(inspect::InspectArgs),
    /// Embed images and write them as .npy with an index, for Python users.
    Embed(embed::EmbedArgs),
    /// Write a self-contained HTML report for a dataset.
    Report(report::ReportArgs),
    /// Make a synthetic set from the real negatives with a standard defect
    /// synthesis method (CutPaste, CutPaste-scar, DRAEM, NSA, transplant).
    Synthesize(synthesize::SynthesizeArgs),
    /// Run the validation study: DS against FID, KID and PRDC on downstream truth.
    #[cfg(feature = "study")]
    Study(study::StudyArgs),
}

/// Where the data is and which model embeds it.
#[derive(Args, Clone)]
pub struct DataArgs {
    /// Dataset folder: real/negative, real/positive, synthetic/<generator>.
    pub data: PathBuf,
    /// Embedding model: a bundled name (efficientnet-lite0, vit-s14) or a manifest path.
    #[arg(long, default_value = spanwatch_embed::manifest::DEFAULT_MODEL)]
    pub model: String,
    /// Leave out synthetic images without a source (counted) instead of failing.
    #[arg(long)]
    pub skip_unpaired: bool,
    /// Take the embeddings from `spanwatch embed` output instead of running
    /// the model: an output folder or a folder of shards (repeatable). Each
    /// image is found by its contents; the model must be the one named by --model.
    #[arg(long, value_name = "DIR")]
    pub embeddings: Vec<PathBuf>,
}

impl DataArgs {
    /// Where the embeddings come from: the given outputs, else the model with the cache.
    pub fn source(&self, global: &Global) -> EmbeddingSource {
        if self.embeddings.is_empty() {
            EmbeddingSource::Model(global.cache_choice())
        } else {
            EmbeddingSource::Precomputed(self.embeddings.clone())
        }
    }
}

/// A dataset, a solver, and one of the dataset's generators.
#[derive(Args, Clone)]
pub struct GeneratorArgs {
    /// The dataset and model.
    #[command(flatten)]
    pub data: DataArgs,
    /// The solver.
    #[command(flatten)]
    pub solver: SolverArgs,
    /// The synthetic generator: a folder name under DATA/synthetic.
    #[arg(long)]
    pub generator: String,
}

/// How w is reconstructed from the span.
#[derive(Args, Clone)]
pub struct SolverArgs {
    /// Solver: nnls (the sign-aware cone; the default, chosen by the
    /// validation study, docs/validation.md), ridge (the paper's span), lstsq
    /// (exact truncated projection).
    #[arg(long, value_enum, default_value_t = SolverName::Nnls)]
    pub solver: SolverName,
    /// Ridge parameter lambda (ridge only): finite and not negative.
    #[arg(long, default_value_t = 0.01, value_parser = non_negative)]
    pub lambda: f64,
}

/// A finite number >= 0 (NaN, infinities and negatives are refused: a NaN
/// lambda made every DS 0 and a bundle whose edge published DS 1).
fn non_negative(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 => Ok(value),
        Ok(value) => Err(format!("{value} is not a finite number >= 0")),
        Err(e) => Err(format!("{text:?} is not a number: {e}")),
    }
}

/// Solver names on the command line.
#[derive(Clone, Copy, ValueEnum)]
pub enum SolverName {
    /// Ridge-shrunk projection onto the top-k singular directions.
    Ridge,
    /// Exact projection onto the top-k singular directions.
    Lstsq,
    /// Non-negative combination of the difference vectors.
    Nnls,
}

impl SolverArgs {
    /// The solver these arguments choose.
    pub fn solver(&self) -> Solver {
        match self.solver {
            SolverName::Ridge => Solver::Ridge { lambda: self.lambda },
            SolverName::Lstsq => Solver::Lstsq,
            SolverName::Nnls => Solver::Nnls,
        }
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let g = &cli.global;
    match cli.command {
        Command::Score(args) => score::run(args, g),
        Command::Filter(args) => filter::run(args, g),
        Command::Calibrate(args) => calibrate::run(args, g),
        Command::Inspect(args) => inspect::run(args),
        Command::Embed(args) => embed::run(args, g),
        #[cfg(feature = "study")]
        Command::Study(args) => study::run(args, g),
        Command::Report(args) => report::run(args, g),
        Command::Synthesize(args) => synthesize::run(args),
    }
}
