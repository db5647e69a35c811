//! `spanwatch synthesize`: a synthetic set made from the dataset's real
//! negatives by one of the standard defect synthesis methods.

use anyhow::Result;
use clap::ValueEnum;
use spanwatch_synth::demo_data::textures_dir;
use spanwatch_synth::method::Method;
use spanwatch_synth::write_set::{write_set, SetFolders, SetRequest};
use std::path::PathBuf;

/// Arguments of `spanwatch synthesize`.
#[derive(clap::Args)]
pub struct SynthesizeArgs {
    /// Dataset folder: real/negative (the sources), real/positive (the
    /// transplant's defects); the set goes to synthetic/<method>/.
    data: PathBuf,
    /// The synthesis method.
    #[arg(long, value_enum)]
    method: MethodName,
    /// Synthetic images per real negative.
    #[arg(long, default_value_t = 1)]
    per_image: usize,
    /// Seed of the random draws (the same seed makes the same set).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Foreign textures for draem: a folder of images [default: the bundled CC0 textures].
    #[arg(long, value_name = "DIR")]
    textures: Option<PathBuf>,
    /// Replace synthetic/<method>/ if it exists.
    #[arg(long)]
    force: bool,
}

/// Method names on the command line.
#[derive(Clone, Copy, ValueEnum)]
enum MethodName {
    /// CutPaste: a rectangle of 2 to 15% of the image moved elsewhere (Li et al. 2021).
    #[value(name = "cutpaste")]
    CutPaste,
    /// CutPaste-scar: a thin rotated strip moved elsewhere.
    #[value(name = "cutpaste-scar")]
    CutPasteScar,
    /// DRAEM: a Perlin-noise mask filled with a foreign texture (Zavrtanik et al. 2021).
    Draem,
    /// NSA: a patch of another normal image blended in seamlessly (Schlueter et al. 2022).
    Nsa,
    /// Transplant: a real positive's defect region blended in at its place.
    Transplant,
}

impl MethodName {
    fn method(self) -> Method {
        match self {
            MethodName::CutPaste => Method::CutPaste,
            MethodName::CutPasteScar => Method::CutPasteScar,
            MethodName::Draem => Method::Draem,
            MethodName::Nsa => Method::Nsa,
            MethodName::Transplant => Method::Transplant,
        }
    }
}

pub(super) fn run(args: SynthesizeArgs) -> Result<()> {
    let method = args.method.method();
    let textures = match (method, args.textures) {
        (Method::Draem, None) => Some(textures_dir()?),
        (_, textures) => textures,
    };
    let folders = SetFolders::of_dataset(&args.data, textures.as_deref())?;
    let request = SetRequest { method, per_image: args.per_image, seed: args.seed, replace: args.force };
    let set = write_set(&folders, &request)?;
    println!(
        "wrote {} synthetic images ({}) from {} real negatives ({} colour, {} grey) and their pairs.csv to {}; rank it with `spanwatch score {}`",
        set.images,
        method.name(),
        set.sources,
        set.colour,
        set.sources - set.colour,
        set.folder.display(),
        args.data.display()
    );
    Ok(())
}
