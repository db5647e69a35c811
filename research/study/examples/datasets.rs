//! Writes a dataset folder for `spanwatch synthesize` and `spanwatch score`:
//! the bundled demo dataset (drawn scratches on CC0 texture tiles, with its
//! five graded generators), or ELPV solar cells of one type (photographed
//! defects, fetched at run time from PyPI and never committed).
//!
//! ```text
//! cargo run --release -p spanwatch-study --example datasets -- demo DIR
//! cargo run --release -p spanwatch-study --example datasets -- elpv-mono DIR [NEGATIVES POSITIVES]
//! ```
//! benchmarks/synthesize_rank.sh runs it, then every method and the score.

use anyhow::{bail, Context, Result};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use spanwatch_study::elpv::{self, CellType, Label};
use std::path::Path;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (kind, out) = match args.as_slice() {
        [kind, out, ..] => (kind.as_str(), Path::new(out)),
        _ => bail!("usage: datasets demo|elpv-mono|elpv-poly DIR [NEGATIVES POSITIVES]"),
    };
    let count = |i: usize, default: usize| args.get(i).map(|a| a.parse::<usize>().context("a count")).unwrap_or(Ok(default));
    match kind {
        "demo" => {
            let data = spanwatch_synth::demo_data::build(out, spanwatch_synth::demo_data::DemoSize::default(), 7)?;
            println!("demo dataset (drawn scratches on CC0 textures) in {}", data.display());
        }
        "elpv-mono" | "elpv-poly" => {
            let cell_type = if kind == "elpv-mono" { CellType::Mono } else { CellType::Poly };
            let (negatives, positives) = (count(2, 200)?, count(3, 60)?);
            let cells = elpv::load(&elpv::wheel(&spanwatch_embed::EmbeddingCache::default_root(), false)?)?;
            let mut rng = StdRng::seed_from_u64(7);
            for (label, folder, n) in [(Label::DefectFree, "real/negative", negatives), (Label::Defective, "real/positive", positives)] {
                let mut chosen: Vec<&elpv::Cell> = cells.iter().filter(|c| c.cell_type == cell_type && c.label == label).collect();
                chosen.shuffle(&mut rng);
                if chosen.len() < n {
                    bail!("ELPV has {} {label:?} {} cells, fewer than {n}", chosen.len(), cell_type.name());
                }
                let dir = out.join(folder);
                std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
                for cell in &chosen[..n] {
                    cell.image.save(dir.join(&cell.file)).with_context(|| format!("cannot write {}", dir.join(&cell.file).display()))?;
                }
            }
            println!("{negatives} defect-free and {positives} defective {} cells in {}", cell_type.name(), out.display());
            println!("{}", elpv::ATTRIBUTION);
        }
        other => bail!("unknown dataset {other:?}: demo, elpv-mono or elpv-poly"),
    }
    Ok(())
}
