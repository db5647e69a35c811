//! The study's images on photographed defects: ELPV solar cells of one type
//! (mono or poly). Defect-free cells are the negatives and the sources of
//! every synthetic pair; cells an expert marked defective with probability 1
//! are the positives. Train and test cells are disjoint: the held-out test
//! cells are seen by no probe, generator or calibration. Cells the experts
//! were unsure of (probability 1/3 or 2/3) form a secondary test set. The cells are
//! written under the work folder (never into the repository: CC BY-NC-SA).

use crate::data::{sample_seed, save, seed, PairSets, SurfaceImages};
use crate::elpv::{Cell, CellType, Label};
use crate::generator::StudyGenerator;
use crate::StudyConfig;
use anyhow::{ensure, Result};
use image::GrayImage;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use spanwatch_synth::el_defects::ElGenerator;
use spanwatch_synth::synthesis::{defect_region, Donors};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The family name of the real EL defects.
pub const FAMILY: &str = "el";
/// Side of the defect region a transplant takes from a real positive.
const TRANSPLANT_SIDE: u32 = 90;
/// Side of the grey tiles the CNN truth trains on (cracks are 1 to 3 px wide at 300 px).
const CNN_SIDE: u32 = 64;

/// The study surface name of a cell type.
pub fn surface_name(cell_type: CellType) -> String {
    format!("elpv-{}", cell_type.name())
}

/// Writes (or finds) the images of one cell type under `work`.
pub fn surface_images(
    config: &StudyConfig,
    cell_type: CellType,
    cells: &[Cell],
    textures: &[GrayImage],
    work: &Path,
) -> Result<SurfaceImages> {
    let surface = surface_name(cell_type);
    let dir = work.join("images").join(&surface);
    let of = |label: Label| -> Vec<&Cell> {
        let mut list: Vec<&Cell> = cells.iter().filter(|c| c.cell_type == cell_type && c.label == label).collect();
        list.shuffle(&mut StdRng::seed_from_u64(seed(&[&surface, &format!("{label:?}")], 0)));
        list
    };
    let (negatives, positives) = (of(Label::DefectFree), of(Label::Defective));
    let (n_train, n_test, n_probe) = (config.train_negatives, config.real_test, config.max_positives());
    let held_out_from = n_train + config.held_out_set * n_test;
    ensure!(
        negatives.len() >= held_out_from + n_test && positives.len() >= n_probe + n_test,
        "{surface}: {} defect-free and {} defective cells, {} and {} needed",
        negatives.len(),
        positives.len(),
        held_out_from + n_test,
        n_probe + n_test
    );
    let write = |list: &[&Cell], folder: &str| -> Result<Vec<PathBuf>> {
        list.iter().map(|c| save(&c.image, &dir.join(folder).join(&c.file))).collect()
    };
    let train_negatives = write(&negatives[..n_train], "train/negative")?;
    let test_negatives = write(&negatives[n_train..n_train + n_test], "test/negative")?;
    let probe = write(&positives[..n_probe], "train/positive")?;
    let test = write(&positives[n_probe..n_probe + n_test], "test/positive")?;
    let uncertain = of(Label::Uncertain);
    let uncertain_positives = write(&uncertain[..n_test.min(uncertain.len())], "test/uncertain")?;

    let sources: Vec<&GrayImage> = negatives[..n_train].iter().map(|c| &c.image).collect();
    let donors = donors(config, &sources, &positives[..n_probe], textures);
    let generators = ElGenerator::STUDY;
    let made_from = |sources: &[&GrayImage], paths: &[PathBuf], split: &str, count: usize| -> Result<PairSets> {
        let mut pairs = BTreeMap::new();
        for generator in &generators {
            let list = (0..count)
                .map(|i| {
                    let source_index = i % sources.len();
                    let source = &paths[source_index];
                    // A mixture's faithful samples are the faithful generator's own files.
                    let made_as = match generator {
                        ElGenerator::Copy => return Ok((source.clone(), source.clone())),
                        ElGenerator::Mix(p) if !ElGenerator::mixes_in(*p, i) => return Ok((source.clone(), source.clone())),
                        ElGenerator::Mix(_) => ElGenerator::Faithful,
                        other => *other,
                    };
                    let path = dir.join(format!("{split}/{}/{i:04}.png", made_as.name()));
                    if !path.is_file() {
                        let mut rng = StdRng::seed_from_u64(sample_seed(&surface, split, &made_as.name(), i));
                        save(&made_as.apply(sources[source_index], i, &donors, &mut rng), &path)?;
                    }
                    Ok((path, source.clone()))
                })
                .collect::<Result<Vec<_>>>()?;
            pairs.insert((FAMILY.to_string(), StudyGenerator::El(*generator)), list);
        }
        Ok(pairs)
    };
    let pairs = made_from(&sources, &train_negatives, "synthetic", config.max_pairs())?;
    // The stream experiment's sources: the test cells, or a later disjoint set of as many.
    let held_out_cells = &negatives[held_out_from..held_out_from + n_test];
    let (held_out_split, held_out_paths) = match config.held_out_set {
        0 => ("held-out".to_string(), test_negatives.clone()),
        set => (format!("held-out-{set}"), write(held_out_cells, &format!("held-out-{set}/negative"))?),
    };
    let held_out_sources: Vec<&GrayImage> = held_out_cells.iter().map(|c| &c.image).collect();
    let held_out_pairs = made_from(&held_out_sources, &held_out_paths, &held_out_split, config.held_out_pairs)?;
    Ok(SurfaceImages {
        surface,
        families: vec![FAMILY.into()],
        generators: generators.iter().map(|&g| StudyGenerator::El(g)).collect(),
        cnn_side: CNN_SIDE,
        train_negatives,
        test_negatives,
        probe_positives: BTreeMap::from([(FAMILY.to_string(), probe)]),
        test_positives: BTreeMap::from([(FAMILY.to_string(), test)]),
        probe_sources: BTreeMap::new(),
        uncertain_positives,
        pairs,
        held_out_pairs,
    })
}

/// What the synthesis methods take from: the CC0 textures (DRAEM), the other
/// training negatives (NSA), and the defect regions of the real positives
/// that every probe of the study sees, the first of them (transplant).
fn donors(config: &StudyConfig, sources: &[&GrayImage], probe: &[&Cell], textures: &[GrayImage]) -> Donors {
    let n = sources.len() as f32;
    let (w, h) = sources[0].dimensions();
    let mean: Vec<f32> =
        (0..(w * h) as usize).map(|i| sources.iter().map(|s| s.as_raw().get(i).copied().unwrap_or(0) as f32).sum::<f32>() / n).collect();
    let defect_patches =
        probe[..config.transplant_donors.clamp(1, probe.len())].iter().map(|c| defect_region(&c.image, &mean, TRANSPLANT_SIDE)).collect();
    Donors { textures: textures.to_vec(), normals: sources.iter().map(|s| (*s).clone()).collect(), defect_patches }
}
