//! The demo's live stream: new synthetic defects made from held-out tiles by
//! a generator that degrades partway, dropped into the edge's spool the way
//! a generator should (write under a temporary name, then rename).

use anyhow::{bail, Context, Result};
use image::GrayImage;
use rand::rngs::StdRng;
use rand::SeedableRng;
use spanwatch_synth::defects::{Family, Generator};
use spanwatch_synth::demo_data::{held_out_tiles, DemoSize};
use std::path::Path;
use std::time::{Duration, Instant};

/// One pair of the stream.
pub struct StreamPair {
    /// Pair id (file stem in the spool), in stream order.
    pub id: String,
    /// The generator that made it.
    pub generator: Generator,
    /// The normal image.
    pub source: GrayImage,
    /// Its synthetic defect.
    pub synthetic: GrayImage,
}

/// `good` faithful scratch pairs, then `bad` pairs of `degraded`, made from
/// the tiles the demo data of `size` and `seed` left unused (cycled if
/// there are fewer), with fresh random defects.
pub fn degrading_stream(size: DemoSize, seed: u64, good: usize, bad: usize, degraded: Generator) -> Result<Vec<StreamPair>> {
    let mut maker = PairMaker::new(size, seed)?;
    Ok((0..good + bad).map(|i| maker.next(if i < good { Generator::Faithful } else { degraded })).collect())
}

/// Makes the stream's pairs one at a time (a long stream need not be held
/// in memory): scratch defects by any generator on the held-out tiles.
pub struct PairMaker {
    tiles: Vec<GrayImage>,
    rng: StdRng,
    made: usize,
}

impl PairMaker {
    /// A maker over the tiles the demo data of `size` and `seed` left unused.
    pub fn new(size: DemoSize, seed: u64) -> Result<PairMaker> {
        Ok(PairMaker { tiles: held_out_tiles(size, seed)?, rng: StdRng::seed_from_u64(seed ^ 0x005E_ED0F_57EA), made: 0 })
    }

    /// The next pair, `pair-<n>`, by `generator`.
    pub fn next(&mut self, generator: Generator) -> StreamPair {
        let i = self.made;
        self.made += 1;
        let source = self.tiles[i % self.tiles.len()].clone();
        let synthetic = generator.apply(Family::Scratch, &source, i, &mut self.rng);
        StreamPair { id: format!("pair-{i:04}"), generator, source, synthetic }
    }

    /// How many distinct tiles the stream cycles through.
    pub fn tiles(&self) -> usize {
        self.tiles.len()
    }
}

/// Writes `pair` into `spool` as `<id>.source.png` and `<id>.synthetic.png`,
/// each written under a dot-name first and renamed, so the edge never reads
/// a half-written file.
pub fn drop_into_spool(spool: &Path, pair: &StreamPair) -> Result<()> {
    drop_images(spool, &pair.id, &pair.source, &pair.synthetic)
}

/// Writes a pair's two images into `spool` under `id`, as [`drop_into_spool`] does.
pub fn drop_images(spool: &Path, id: &str, source: &GrayImage, synthetic: &GrayImage) -> Result<()> {
    for (half, image) in [("source", source), ("synthetic", synthetic)] {
        let name = format!("{id}.{half}.png");
        let temporary = spool.join(format!(".{name}.partial.png"));
        image.save(&temporary).with_context(|| format!("cannot write {}", temporary.display()))?;
        std::fs::rename(&temporary, spool.join(&name)).with_context(|| format!("cannot move {name} into {}", spool.display()))?;
    }
    Ok(())
}

/// Pairs the edge monitor has moved to `spool`/done/.
pub fn processed_pairs(spool: &Path) -> usize {
    std::fs::read_dir(spool.join("done")).map(|d| d.count() / 2).unwrap_or(0)
}

/// Waits, up to `limit`, until `spool`/done/ holds `count` pairs.
pub fn wait_until_processed(spool: &Path, count: usize, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    while processed_pairs(spool) < count {
        if Instant::now() > deadline {
            bail!("the edge monitor processed {} of {count} pairs in {} within {limit:?}", processed_pairs(spool), spool.display());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Ok(())
}
