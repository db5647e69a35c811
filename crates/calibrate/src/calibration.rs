//! Writing the edge's calibration bundle for one generator of a prepared
//! dataset: probe, standardization, oriented reference basis, reference
//! score and the drift detector, calibrated out of sample.

use crate::metric::drift::{self, CalibratedDetector, CalibrationStatistics, DetectorSettings, ScoreTableData};
use crate::metric::probe;
use crate::metric::SpanFit;
use crate::pipeline::{GeneratorDiffs, Prepared};
use anyhow::{bail, Context, Result};
use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use spanwatch_core::bundle::{Bundle, DetectorSpec, F32Le, ModelIdentity, ScoreTable};
use spanwatch_core::detector::{NamedThresholds, PairStatistics};
use spanwatch_core::span::{Solver, SpanScore};
use spanwatch_core::tracker::WINDOW_CAPACITY;
use spanwatch_embed::extent::change_extent;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Fewest pairs a calibration accepts: the detector's score tables and its
/// simulation need at least this many distinct pairs.
pub const MIN_CALIBRATION_PAIRS: usize = 8;
/// Fewer calibration pairs than this, and `calibrate` warns that the
/// alert's false-alarm rate on the line may be well above its target: the
/// normal-score tables and the simulated threshold know only the pairs
/// they saw (docs/validation.md, "Calibration pairs and false alarms").
pub const FEW_CALIBRATION_PAIRS: usize = 100;

/// How to calibrate.
#[derive(Clone, Copy, Debug)]
pub struct CalibrationSettings {
    /// The span score the edge computes over its window.
    pub solver: Solver,
    /// Pairs per window (clamped to 4..=min(pairs, 64)).
    pub window: usize,
    /// The drift detector's calibration.
    pub detector: DetectorSettings,
    /// Folds of the cross-fitting (by source image).
    pub folds: usize,
}

impl Default for CalibrationSettings {
    fn default() -> Self {
        CalibrationSettings { solver: Solver::Nnls, window: 32, detector: DetectorSettings::default(), folds: 5 }
    }
}

/// What a calibration made.
#[derive(Clone, Debug)]
pub struct Calibrated {
    /// Bundle size in bytes.
    pub bytes: usize,
    /// Calibration pairs.
    pub pairs: usize,
    /// Effective rank of the calibration differences.
    pub k: usize,
    /// The calibration set's own score.
    pub reference: SpanScore,
    /// The edge's window.
    pub window: usize,
    /// The drift detector.
    pub detector: CalibratedDetector,
    /// Folds the alignments were cross-fitted in (0: no pair's source was a probe negative).
    pub folds: usize,
    /// Each calibration pair's statistics, as the detector was calibrated
    /// on them (cross-fitted by source).
    pub statistics: Vec<PairStatistics>,
    /// Each calibration pair's source label (pairs with one label share a source image).
    pub sources: Vec<usize>,
}

/// Calibrates generator `name` of `prepared` and writes the bundle to `output` (atomically).
pub fn write_bundle(prepared: &Prepared, name: &str, settings: &CalibrationSettings, output: &Path) -> Result<Calibrated> {
    let (bytes, calibrated) = calibrate(prepared, name, settings)?;
    let temporary = output.with_extension("partial");
    std::fs::write(&temporary, &bytes).with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, output).with_context(|| format!("cannot write {}", output.display()))?;
    Ok(calibrated)
}

/// Calibrates generator `name` of `prepared`: the encoded bundle and what it holds.
pub fn calibrate(prepared: &Prepared, name: &str, settings: &CalibrationSettings) -> Result<(Vec<u8>, Calibrated)> {
    if name.len() > spanwatch_core::bundle::MAX_GENERATOR_NAME {
        bail!(
            "generator name of {} bytes; a bundle takes at most {} (it is sent with every alert): rename its folder",
            name.len(),
            spanwatch_core::bundle::MAX_GENERATOR_NAME
        );
    }
    let generator = prepared.generator(name)?;
    let n = generator.pairs.len();
    if n < MIN_CALIBRATION_PAIRS {
        bail!("generator {name:?} has {n} pairs; calibration needs at least {MIN_CALIBRATION_PAIRS}");
    }
    let positive = |k: f64| k > 0.0 && k.is_finite();
    let ks = [settings.detector.alignment_k, settings.detector.size_k, settings.detector.off_span_k, settings.detector.extent_k];
    if !ks.into_iter().all(positive) || settings.detector.false_alarm_every < 100 {
        bail!("the detector needs reference values k > 0 and a false-alarm target of at least 100 good pairs");
    }
    let (margin, size_k, extent_k) = (settings.detector.size_margin, settings.detector.size_k, settings.detector.extent_k);
    if !(0.0..size_k.min(extent_k)).contains(&margin) {
        bail!(
            "the change-size margin must be at least 0 and less than the size's k ({size_k}) and the extent's ({extent_k}); it is {margin}"
        );
    }
    let solver = settings.solver;
    let w = &prepared.probe.w;
    let fit = SpanFit::new(generator.diffs.clone());
    let reference = fit.score(w, solver);
    let window = settings.window.clamp(4, n.min(WINDOW_CAPACITY));
    let split = SourceFolds::of(prepared, generator, settings.folds.max(2), settings.detector.seed);
    let extents = pair_extents(generator)?;
    let statistics = cross_fitted_statistics(prepared, generator, &split, fit.basis(), &extents)?;
    let detector = drift::calibrate(&CalibrationStatistics { statistics: &statistics, sources: &split.sources }, &settings.detector);
    let singular: Vec<f32> = fit.singular_values()[..fit.k()].iter().map(|&s| s as f32).collect();
    let oriented = oriented_basis(fit.basis(), fit.k(), &generator.diffs);
    let (mu, sigma, w_bytes) =
        (F32Le::encode(&prepared.standardization.mu), F32Le::encode(&prepared.standardization.sigma), F32Le::encode(w));
    let (basis, singular_bytes) = (F32Le::encode(&oriented), F32Le::encode(&singular));
    let tables = EncodedTables::of(&detector);
    let bundle = Bundle {
        model: ModelIdentity { sha256: prepared.model.sha256, name: &prepared.model.name, dim: prepared.model.dim as u32 },
        generator: name,
        solver,
        n_pairs: n as u32,
        mu: view(&mu),
        sigma: view(&sigma),
        w: view(&w_bytes),
        basis: view(&basis),
        singular_values: view(&singular_bytes),
        reference,
        window: window as u32,
        detector: DetectorSpec {
            alignment: tables.alignment.view(),
            size: tables.size.view(),
            off_span: tables.off_span.view(),
            extent: tables.extent.view(),
            alignment_k: detector.params.alignment_k,
            size_k: detector.params.size_k,
            off_span_k: detector.params.off_span_k,
            extent_k: detector.params.extent_k,
            residuals: detector.params.residuals,
            thresholds: detector.params.thresholds,
            size_margin: detector.size_margin,
            clear_after: detector.params.clear_after,
            false_alarm_every: detector.false_alarm_every,
            simulated_every: detector.simulated_every,
        },
    };
    let bytes = bundle.encode().context("cannot encode the bundle")?;
    let calibrated = Calibrated {
        bytes: bytes.len(),
        pairs: n,
        k: fit.k(),
        reference,
        window,
        detector,
        folds: split.folds,
        statistics,
        sources: split.sources,
    };
    Ok((bytes, calibrated))
}

/// What `calibrate` prints about a bundle it wrote to `output`.
pub fn summary(output: &Path, name: &str, settings: &CalibrationSettings, done: &Calibrated) -> String {
    let d = &done.detector;
    let folds = if done.folds > 0 {
        format!("cross-fitted in {} folds by source image", done.folds)
    } else {
        "no pair's source was a probe negative".into()
    };
    format!(
        "wrote {} ({} bytes): generator {name:?}, {} pairs, k = {}, DS = {:.4} ({}), window of {} pairs;\n\
         drift alert: CUSUM on each pair's alignment ({folds}, k = {}), change size (k = {}), share outside the reference basis (k = {}) and pixel extent (k = {}),\n\
         scores correlated {:+.3} (alignment, size), {:+.3} (alignment, off span), {:+.3} (size, off span), {:+.3} (size, extent),\n\
         thresholds {} for one false alarm per {} good pairs with a margin of {} sd on the change size and extent (simulated: one per {:.0} in {} pairs, one per {:.0} with either shifted by the margin); clears after {} quiet pairs",
        output.display(),
        done.bytes,
        done.pairs,
        done.k,
        done.reference.ds,
        settings.solver.name(),
        done.window,
        d.params.alignment_k,
        d.params.size_k,
        d.params.off_span_k,
        d.params.extent_k,
        d.correlations[0][1],
        d.correlations[0][2],
        d.correlations[1][2],
        d.correlations[1][3],
        NamedThresholds(&d.params.thresholds),
        d.false_alarm_every,
        d.size_margin,
        d.simulated_every,
        d.simulated_pairs,
        d.shifted_every,
        d.params.clear_after
    ) + &few_pairs_warning(done.pairs)
}

/// The warning for a calibration on fewer than [`FEW_CALIBRATION_PAIRS`]
/// pairs (empty otherwise).
fn few_pairs_warning(pairs: usize) -> String {
    if pairs >= FEW_CALIBRATION_PAIRS {
        return String::new();
    }
    format!(
        "\nwarning: only {pairs} calibration pairs: on the line the alert may fire far more often than calibrated \
         (ELPV mono cells with 30 pairs: 9 false alarms in 10,000 good pairs, see docs/validation.md); calibrate on at least {FEW_CALIBRATION_PAIRS}"
    )
}

/// The cross-fitting's folds of one generator's pairs, by source image:
/// the sources that are probe negatives are shuffled and dealt into folds;
/// a pair whose source is no probe negative belongs to none.
struct SourceFolds {
    /// Each pair's source label (0.. in order of first appearance).
    pub sources: Vec<usize>,
    /// Each pair's fold, if its source is a probe negative.
    pub fold_of_pair: Vec<Option<usize>>,
    /// Folds used (at most `folds`, at most one per source).
    pub folds: usize,
}

impl SourceFolds {
    /// Deals `generator`'s sources into `folds` folds, shuffled with `seed`.
    pub fn of(prepared: &Prepared, generator: &GeneratorDiffs, folds: usize, seed: u64) -> SourceFolds {
        let negatives: BTreeSet<&PathBuf> = prepared.dataset.negatives.iter().collect();
        let mut labels: BTreeMap<&PathBuf, usize> = BTreeMap::new();
        let sources = generator
            .pairs
            .iter()
            .map(|p| {
                let next = labels.len();
                *labels.entry(&p.source).or_insert(next)
            })
            .collect();
        let mut seen: Vec<&PathBuf> =
            generator.pairs.iter().map(|p| &p.source).filter(|s| negatives.contains(s)).collect::<BTreeSet<_>>().into_iter().collect();
        seen.shuffle(&mut StdRng::seed_from_u64(seed));
        let folds = folds.min(seen.len());
        let fold_of: BTreeMap<&PathBuf, usize> = seen.iter().enumerate().map(|(i, s)| (*s, i % folds.max(1))).collect();
        let fold_of_pair = generator.pairs.iter().map(|p| fold_of.get(&p.source).copied()).collect();
        SourceFolds { sources, fold_of_pair, folds }
    }
}

/// The pixel extent of each of `generator`'s pairs' change (the share of
/// pixels its images differ in), from the image files, on every core.
fn pair_extents(generator: &GeneratorDiffs) -> Result<Vec<f64>> {
    use rayon::prelude::*;
    generator
        .pairs
        .par_iter()
        .map(|pair| {
            change_extent(&pair.source, &pair.synthetic)
                .with_context(|| format!("the pixel extent of generator {:?}'s pair", generator.name))
        })
        .collect()
}

/// The statistics of `generator`'s pairs as the edge computes them, each
/// pair measured without its own source image: the pairs of each fold
/// (`SourceFolds`) get their alignment from a probe fitted on the other
/// folds' negatives and every positive, and their off-span share from a
/// reference basis fitted on the other folds' pairs (a pair whose source is
/// no probe negative is measured with the full probe, which never saw it,
/// and `full_basis`, the basis of all pairs, k x d, as the bundle has it).
/// The standardization stays the one fitted on every real image.
fn cross_fitted_statistics(
    prepared: &Prepared,
    generator: &GeneratorDiffs,
    split: &SourceFolds,
    full_basis: &[f32],
    extents: &[f64],
) -> Result<Vec<PairStatistics>> {
    let folds = split.folds;
    let fold_of_negative: Vec<Option<usize>> = {
        let by_source: BTreeMap<&PathBuf, usize> =
            generator.pairs.iter().zip(&split.fold_of_pair).filter_map(|(p, f)| f.map(|f| (&p.source, f))).collect();
        prepared.dataset.negatives.iter().map(|p| by_source.get(p).copied()).collect()
    };
    let probes: Vec<Vec<f32>> = (0..folds)
        .map(|f| {
            let kept: Vec<&Vec<f32>> =
                prepared.negatives.iter().zip(&fold_of_negative).filter(|(_, fold)| **fold != Some(f)).map(|(z, _)| z).collect();
            if kept.len() < 2 {
                bail!(
                    "cross-fitting the alignments: fold {} of {folds} leaves {} real negatives for its probe; the probe needs at least 2",
                    f + 1,
                    kept.len()
                );
            }
            Ok(probe::fit_classes(&kept, &prepared.positives)
                .with_context(|| format!("cross-fitting the alignments: fold {} of {folds}", f + 1))?
                .w)
        })
        .collect::<Result<_>>()?;
    let bases: Vec<Vec<f32>> = (0..folds)
        .map(|f| {
            let rows: Vec<usize> = (0..generator.pairs.len()).filter(|&i| split.fold_of_pair[i] != Some(f)).collect();
            SpanFit::new(generator.diffs.select_rows(&rows)).basis().to_vec()
        })
        .collect();
    let statistics = split
        .fold_of_pair
        .iter()
        .enumerate()
        .map(|(i, fold)| {
            let (w, basis) = fold.map_or((&prepared.probe.w, full_basis), |f| (&probes[f], bases[f].as_slice()));
            let d: Vec<f32> = generator.diffs.row(i).iter().map(|&v| v as f32).collect();
            PairStatistics::of(w, basis.iter().copied(), &d, extents[i])
        })
        .collect();
    Ok(statistics)
}

/// The detector's tables as little-endian f32 bytes, for the bundle to borrow.
struct EncodedTables {
    alignment: EncodedTable,
    size: EncodedTable,
    off_span: EncodedTable,
    extent: EncodedTable,
}

/// One table's knots as bytes, with its tail scale.
struct EncodedTable {
    values: Vec<u8>,
    scores: Vec<u8>,
    tail: f64,
}

impl EncodedTable {
    fn of(table: &ScoreTableData) -> EncodedTable {
        EncodedTable { values: F32Le::encode(&table.values), scores: F32Le::encode(&table.scores), tail: table.tail }
    }

    fn view(&self) -> ScoreTable<'_> {
        ScoreTable { values: view(&self.values), scores: view(&self.scores), tail: self.tail }
    }
}

impl EncodedTables {
    fn of(detector: &CalibratedDetector) -> EncodedTables {
        EncodedTables {
            alignment: EncodedTable::of(&detector.alignment),
            size: EncodedTable::of(&detector.size),
            off_span: EncodedTable::of(&detector.off_span),
            extent: EncodedTable::of(&detector.extent),
        }
    }
}

/// Encoded f32 values as the bundle's view.
fn view(bytes: &[u8]) -> F32Le<'_> {
    F32Le::from_bytes(bytes).expect("encoded f32 values")
}

/// The k x d basis with each row v_j signed so that the calibration
/// differences project on it positively on average, so the edge's seeds
/// s_j v_j point the way the generator's changes point (a cone cares).
fn oriented_basis(basis: &[f32], k: usize, diffs: &DMatrix<f64>) -> Vec<f32> {
    let d = diffs.ncols();
    let column_sums: Vec<f64> = diffs.row_sum().iter().copied().collect();
    let mut oriented = basis.to_vec();
    for row in oriented.chunks_mut(d).take(k) {
        let projection: f64 = row.iter().zip(&column_sums).map(|(&v, &s)| v as f64 * s).sum();
        if projection < 0.0 {
            row.iter_mut().for_each(|v| *v = -*v);
        }
    }
    oriented
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basis_rows_point_the_way_the_differences_do() {
        let diffs = DMatrix::from_row_slice(2, 2, &[2.0, -1.0, 1.0, -3.0]);
        let basis = [-1.0f32, 0.0, 0.0, 1.0];
        // Sums of the differences: (3, -4): both rows flip.
        assert_eq!(oriented_basis(&basis, 2, &diffs), vec![1.0, 0.0, 0.0, -1.0]);
    }
}
