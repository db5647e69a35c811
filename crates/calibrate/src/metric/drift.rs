//! The edge's drift detector, calibrated: the normal-score tables of the
//! calibration pairs' statistics, and the seven CUSUMs' thresholds set by
//! simulation for a target average run length to a false alarm (ARL0).
//!
//! Each CUSUM gets its own threshold (bundle format 7 on): the smallest at
//! which it alone runs `share` good pairs between crossings, with `share`
//! the smallest multiple of the target (1 to 7, a union bound) at which the
//! seven together reach it. The two change-size CUSUMs' thresholds, and the
//! two pixel-extent CUSUMs', are set on the simulated stream with their
//! score's residual shifted toward their alarm by a margin
//! ([`DetectorSettings::size_margin`], in its standard deviations): the
//! size and the extent of a faithful change move with the normal images'
//! contrast, the line's normal images are not the calibration's, and a
//! threshold fitted to the calibration pairs alone is crossed by a shift of
//! a few tenths of a standard deviation (held-out grass tiles change 0.22
//! of one less than the calibration's in the embedding, and 0.18 more of
//! their pixels; docs/validation.md). The alignment and the off span are
//! scale-free and get no margin; the off span's own score (the seventh
//! CUSUM) is scale-free too, but a size shift that keeps the other
//! residuals moves it, so its threshold is set on the size's shift that
//! moves it toward its alarm (docs/validation.md, "Bundle format 9").
//!
//! The simulation resamples the calibration pairs in blocks by source image
//! (a drawn source contributes all its pairs, in random order), so pairs
//! that share a source stay together as they do on a line. It is a smoothed
//! bootstrap: each resampled pair's normal scores get Gaussian jitter of
//! Silverman's bandwidth for as many blocks, so the simulated streams also
//! hold values between and past the calibration's (a plain bootstrap never
//! leaves them, and a line does). The jitter is correlated as the scores
//! are (its covariance the bandwidth squared times their correlation
//! matrix, the multivariate smoothed bootstrap's kernel): independent
//! jitter on correlated scores would blow up in a residual (the off span's
//! given a size it correlates with at -0.6 to -0.9 drew 1.5 to 2.8 times
//! the bandwidth's spread on the study's surfaces) and set thresholds for
//! noise the line does not have. The jitter widens the scores' spread,
//! which sets the thresholds a little higher than the calibration alone
//! would. Every simulated pair goes
//! through the core's own [`DriftDetector`], as the edge runs it.
//!
//! Pairs of one source can share more than the calibration's blocks show:
//! with 100 sources of 2 or 3 pairs a between-source share of a score's
//! variance (an intraclass correlation) is known only to about +-0.1, and a
//! held-out brick tile's pairs shared 0.13 of their alignment where the
//! calibration's shared nothing, which the alignment's CUSUM added up into
//! 1.5 false alarms per 10,000 held-out pairs (docs/validation.md). So the
//! simulation gives each resampled block a shared shift as well: for each
//! score, the share its calibration blocks could hide, the upper one-sided
//! 95% confidence bound of its intraclass correlation less what the blocks
//! already carry ([`source_effects`]), correlated as the scores are.
//!
//! The normal scores are correlated over the calibration pairs. The bundle
//! carries each score's residual as coefficients of the scores
//! ([`residual_rows`]): the alignment and the size each given the other
//! (as bundle format 5 did), and the off-span share given both, so that its
//! CUSUM adds only what the alignment and size do not already say
//! (docs/validation.md, "A fourth CUSUM"); the pixel extent alone (given
//! the size it did no better: docs/validation.md, "A candidate fifth
//! statistic"). The seventh CUSUM adds up the off span's own score
//! (bundle format 9; docs/validation.md, "Mono's transplant").

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use spanwatch_core::detector::{
    cusum_step, CusumParams, DetectorState, DriftDetector, NormalScores, PairStatistics, ScoreTables, Watch, INDEPENDENT, MAX_KNOTS,
    SCORES, SCORE_CAP, WATCHES,
};
use statrs::distribution::{ContinuousCDF, Normal};

/// The default [`DetectorSettings::size_margin`].
pub const DEFAULT_SIZE_MARGIN: f64 = 0.4;

/// How the detector is calibrated.
#[derive(Clone, Copy, Debug)]
pub struct DetectorSettings {
    /// The alignment CUSUM's reference value k: half the shift, in good-pair
    /// standard deviations, it is tuned for.
    pub alignment_k: f64,
    /// The change-size CUSUMs' reference value k.
    pub size_k: f64,
    /// The off-span CUSUM's reference value k.
    pub off_span_k: f64,
    /// The pixel-extent CUSUMs' reference value k.
    pub extent_k: f64,
    /// Target ARL0: good pairs between false alarms.
    pub false_alarm_every: u32,
    /// The shift of the line's good pairs' change size and pixel extent, in
    /// standard deviations of their residuals, that the size and extent
    /// CUSUMs' thresholds tolerate.
    pub size_margin: f64,
    /// Whether the bootstrap is smoothed (see the module's documentation).
    pub smoothed: bool,
    /// Seed of the simulation.
    pub seed: u64,
}

impl Default for DetectorSettings {
    fn default() -> Self {
        DetectorSettings {
            alignment_k: 0.5,
            size_k: 1.0,
            off_span_k: 1.0,
            extent_k: 1.0,
            false_alarm_every: 30_000,
            size_margin: DEFAULT_SIZE_MARGIN,
            smoothed: true,
            seed: 0,
        }
    }
}

/// A normal-score table, owned, as the bundle stores it.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreTableData {
    /// Knot values, non-decreasing.
    pub values: Vec<f32>,
    /// Their normal scores, increasing.
    pub scores: Vec<f32>,
    /// Tail scale.
    pub tail: f64,
}

impl ScoreTableData {
    /// The table of `values` (at least 2, finite): up to [`MAX_KNOTS`] order
    /// statistics at evenly spaced ranks r (0-based) of the sorted values,
    /// each with the normal score of its plotting position (r + 0.5) / n; the
    /// tail scale is the values' robust standard deviation (interquartile
    /// range / 1.349), or their range per normal score when that is 0.
    pub fn of(values: &[f64]) -> ScoreTableData {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        assert!(n >= 2, "a score table needs at least 2 values");
        let m = n.min(MAX_KNOTS);
        let unit = Normal::standard();
        let ranks: Vec<usize> = (0..m).map(|i| ((i * (n - 1)) as f64 / (m - 1) as f64).round() as usize).collect();
        let values: Vec<f32> = ranks.iter().map(|&r| sorted[r] as f32).collect();
        let scores: Vec<f32> = ranks.iter().map(|&r| unit.inverse_cdf((r as f64 + 0.5) / n as f64) as f32).collect();
        let at = |q: f64| sorted[(q * (n - 1) as f64).round() as usize];
        let iqr = at(0.75) - at(0.25);
        let range = sorted[n - 1] - sorted[0];
        let tail = if iqr > 0.0 {
            iqr / 1.349
        } else if range > 0.0 {
            range / (scores[m - 1] - scores[0]) as f64
        } else {
            1e-6 * (1.0 + sorted[0].abs())
        };
        ScoreTableData { values, scores, tail }
    }

    /// The core's table.
    pub fn normal_scores(&self) -> NormalScores {
        NormalScores::new(self.values.iter().copied(), self.scores.iter().copied(), self.tail).expect("a table built by ScoreTableData::of")
    }
}

/// The calibrated detector, ready for the bundle.
#[derive(Clone, Debug)]
pub struct CalibratedDetector {
    /// Normal scores of the alignments.
    pub alignment: ScoreTableData,
    /// Normal scores of the log change sizes.
    pub size: ScoreTableData,
    /// Normal scores of the shares outside the reference basis.
    pub off_span: ScoreTableData,
    /// Normal scores of the log pixel extents.
    pub extent: ScoreTableData,
    /// Pearson's correlations of the four normal scores on the
    /// calibration pairs (alignment, log size, off span, log extent).
    pub correlations: [[f64; SCORES]; SCORES],
    /// The CUSUM tuning.
    pub params: CusumParams,
    /// The target ARL0.
    pub false_alarm_every: u32,
    /// The margin the thresholds were set with ([`DetectorSettings::size_margin`]).
    pub size_margin: f64,
    /// The ARL0 the simulation measured at the thresholds.
    pub simulated_every: f64,
    /// The smallest ARL0 it measured with the change size or the extent
    /// shifted by the margin toward one of their CUSUMs.
    pub shifted_every: f64,
    /// Pairs simulated.
    pub simulated_pairs: usize,
    /// The between-source share of each score's variance the simulation
    /// added to its blocks ([`source_effects`]).
    pub source_effects: [f64; SCORES],
}

impl CalibratedDetector {
    /// The core detector, in its start state.
    pub fn detector(&self) -> DriftDetector {
        DriftDetector::new(self.tables(), self.params, DetectorState::default()).expect("calibrated parameters")
    }

    /// The core's score tables.
    pub fn tables(&self) -> ScoreTables {
        ScoreTables {
            alignment: self.alignment.normal_scores(),
            size: self.size.normal_scores(),
            off_span: self.off_span.normal_scores(),
            extent: self.extent.normal_scores(),
        }
    }
}

/// The calibration pairs' statistics: `statistics[i]` of pair i, whose
/// source image is `sources[i]` (any label; pairs with equal labels share a
/// source).
pub struct CalibrationStatistics<'a> {
    /// Each pair's statistics, its alignment out of sample.
    pub statistics: &'a [PairStatistics],
    /// Each pair's source label.
    pub sources: &'a [usize],
}

/// Simulated pairs per target ARL0: about 100 false alarms at h.
const PAIRS_PER_ARL0: usize = 100;
/// Fewest and most pairs simulated.
const SIMULATED_PAIRS: (usize, usize) = (200_000, 6_000_000);
/// Largest threshold searched.
const MAX_H: f64 = 200.0;
/// The largest share of the target ARL0 (times the target) one CUSUM's
/// threshold is set for: a union bound over the seven.
const MAX_SHARE: f64 = WATCHES as f64;
/// Bisection steps of a threshold: (MAX_H - SCORE_CAP) / 2^24, about 1e-5.
const THRESHOLD_STEPS: usize = 24;
/// Bisection steps of the share: 7^(1/64), a 3% step.
const SHARE_STEPS: usize = 6;

/// The largest correlation, or multiple correlation, a residual is taken
/// with: beyond it a residual would rest on too few pairs' worth of
/// independent evidence.
pub const MAX_CORRELATION: f64 = 0.9;

/// Pearson's correlations of the columns of `scores` (0 where a column is
/// constant; 1 on the diagonal).
pub fn score_correlations<const N: usize>(scores: &[[f64; N]]) -> [[f64; N]; N] {
    let n = scores.len() as f64;
    let means: [f64; N] = std::array::from_fn(|i| scores.iter().map(|z| z[i]).sum::<f64>() / n);
    let mut cross = [[0.0; N]; N];
    for z in scores {
        for i in 0..N {
            for j in 0..N {
                cross[i][j] += (z[i] - means[i]) * (z[j] - means[j]);
            }
        }
    }
    std::array::from_fn(|i| {
        std::array::from_fn(|j| match (i == j, cross[i][i] > 0.0 && cross[j][j] > 0.0) {
            (true, _) => 1.0,
            (false, true) => cross[i][j] / (cross[i][i] * cross[j][j]).sqrt(),
            (false, false) => 0.0,
        })
    })
}

/// The residual coefficients the bundle carries for correlations `c`: the
/// alignment and the size each given the other, (z - rho z') / sqrt(1 -
/// rho^2) with rho held within +-[`MAX_CORRELATION`]; the off span given
/// both, its least-squares residual on them at unit variance, the
/// regression shrunk so its multiple correlation is at most
/// [`MAX_CORRELATION`]; the pixel extent alone.
pub fn residual_rows(c: &[[f64; SCORES]; SCORES]) -> [[f64; SCORES]; SCORES] {
    let rho = c[0][1].clamp(-MAX_CORRELATION, MAX_CORRELATION);
    let det = 1.0 - rho * rho;
    let scale = det.sqrt();
    // The off span's regression on (alignment, size): beta = C_as^-1 c_o.
    let (ca, cs) = (c[0][2], c[1][2]);
    let mut beta = [(ca - rho * cs) / det, (cs - rho * ca) / det];
    let explained = beta[0] * ca + beta[1] * cs;
    if explained > MAX_CORRELATION * MAX_CORRELATION {
        let t = MAX_CORRELATION / explained.sqrt();
        beta = beta.map(|b| b * t);
    }
    // Var(o - beta . (a, s)) = 1 - 2 beta . c_o + beta' C_as beta.
    let variance = 1.0 - 2.0 * (beta[0] * ca + beta[1] * cs) + beta[0] * beta[0] + beta[1] * beta[1] + 2.0 * rho * beta[0] * beta[1];
    let off_scale = variance.max(1.0 - MAX_CORRELATION * MAX_CORRELATION).sqrt();
    [
        [1.0 / scale, -rho / scale, 0.0, 0.0],
        [-rho / scale, 1.0 / scale, 0.0, 0.0],
        [-beta[0] / off_scale, -beta[1] / off_scale, 1.0 / off_scale, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
}

/// Calibrates the detector on `pairs`.
pub fn calibrate(pairs: &CalibrationStatistics<'_>, settings: &DetectorSettings) -> CalibratedDetector {
    let column = |f: fn(&PairStatistics) -> f64| ScoreTableData::of(&pairs.statistics.iter().map(f).collect::<Vec<_>>());
    let (alignment, size, off_span) = (column(|s| s.alignment), column(|s| s.log_size), column(|s| s.off_span));
    let extent = column(|s| s.log_extent);
    let tables = ScoreTables {
        alignment: alignment.normal_scores(),
        size: size.normal_scores(),
        off_span: off_span.normal_scores(),
        extent: extent.normal_scores(),
    };
    let params = CusumParams {
        alignment_k: settings.alignment_k,
        size_k: settings.size_k,
        off_span_k: settings.off_span_k,
        extent_k: settings.extent_k,
        residuals: INDEPENDENT,
        thresholds: [f64::MAX; WATCHES],
        clear_after: 1,
    };
    let independent = DriftDetector::new(tables, params, DetectorState::default()).expect("k is checked by the caller");
    // The normal scores do not depend on the residuals: score once, for both.
    let blocks = blocks_of(pairs, &independent);
    let correlations = score_correlations(&blocks.concat());
    let probe = independent.with_params(CusumParams { residuals: residual_rows(&correlations), ..params }).expect("finite residuals");
    let length = (settings.false_alarm_every as usize).saturating_mul(PAIRS_PER_ARL0).clamp(SIMULATED_PAIRS.0, SIMULATED_PAIRS.1);
    let source_effects = source_effects(&blocks);
    let stream = good_stream(&blocks, length, settings, &correlations, source_effects);
    let shifts = Watch::ALL.map(|watch| margin_shift_toward(&probe.params().residuals, watch, settings.size_margin));
    // What each CUSUM adds up on the stream shifted toward it.
    let evidence: [Vec<f32>; WATCHES] = std::array::from_fn(|i| {
        stream.iter().map(|z| probe.evidence(std::array::from_fn(|j| f64::from(z[j]) + shifts[i][j]))[i] as f32).collect()
    });
    let ks = probe.reference_values();
    let target = settings.false_alarm_every as f64;
    // Each CUSUM's threshold: the smallest at which it alone runs `share`
    // good pairs between crossings on the stream shifted toward it.
    let thresholds_for = |share: f64| -> [f64; WATCHES] {
        let allowed = (stream.len() as f64 / share).floor() as usize;
        std::array::from_fn(|i| smallest_threshold(ks[i], |h| crossings_alone(&evidence[i], ks[i], h, allowed) <= allowed))
    };
    // The seven together through the core's detector: unshifted, and the
    // worst of that and each margin's shift (the alignment's and the off
    // span residual's shifts are none: the unshifted run; the off span's
    // own is one of the size's: run once).
    let mut margin_shifts: Vec<[f64; SCORES]> = Vec::new();
    for shift in shifts.into_iter().filter(|shift| shift.iter().any(|&x| x != 0.0)) {
        if !margin_shifts.contains(&shift) {
            margin_shifts.push(shift);
        }
    }
    let every = |thresholds: [f64; WATCHES]| -> (f64, f64) {
        let plain = run_length(&probe, &stream, thresholds, [0.0; SCORES]);
        (plain, margin_shifts.iter().map(|shift| run_length(&probe, &stream, thresholds, *shift)).fold(plain, f64::min))
    };
    // `share` from the target to MAX_SHARE times it (bisected in log space):
    // the smallest at which the seven together reach the target under each shift.
    let mut best = thresholds_for(target);
    if every(best).1 < target {
        let (mut low, mut high) = (1.0, MAX_SHARE);
        best = thresholds_for(high * target);
        for _ in 0..SHARE_STEPS {
            let mid = (low * high).sqrt();
            let thresholds = thresholds_for(mid * target);
            if every(thresholds).1 >= target {
                (high, best) = (mid, thresholds);
            } else {
                low = mid;
            }
        }
    }
    let (thresholds, (simulated_every, shifted_every)) = (best, every(best));
    let clear_after = thresholds.iter().zip(ks).map(|(h, k)| (2.0 * h / k).ceil() as u32).max().expect("seven CUSUMs");
    CalibratedDetector {
        alignment,
        size,
        off_span,
        extent,
        correlations,
        params: CusumParams { thresholds, clear_after, ..probe.params() },
        false_alarm_every: settings.false_alarm_every,
        size_margin: settings.size_margin,
        simulated_every,
        shifted_every,
        simulated_pairs: stream.len(),
        source_effects,
    }
}

/// The shift of the normal scores that moves the change size's residual,
/// or the pixel extent's, by `margin` toward `watch`'s alarm and leaves the
/// other residuals as they are. None for the alignment's and the off
/// span's residual CUSUMs: their scores are scale-free (a cosine, a share
/// of a norm), while the size and the extent of a faithful change move
/// with the normal images' contrast. The off span's own score is not a
/// residual: a size shift that keeps the others' residuals moves it (by
/// the off span's regression on the size), so its CUSUM gets the size's
/// shift that moves it toward its alarm.
fn margin_shift_toward(residuals: &[[f64; SCORES]; SCORES], watch: Watch, margin: f64) -> [f64; SCORES] {
    let toward = match watch {
        Watch::SmallChange => [0.0, -margin, 0.0, 0.0],
        Watch::LargeChange => [0.0, margin, 0.0, 0.0],
        Watch::WideChange => [0.0, 0.0, 0.0, margin],
        Watch::NarrowChange => [0.0, 0.0, 0.0, -margin],
        Watch::OutsideSpanAlone => {
            let (small, large) =
                (margin_shift_toward(residuals, Watch::SmallChange, margin), margin_shift_toward(residuals, Watch::LargeChange, margin));
            return if small[2] >= large[2] { small } else { large };
        }
        Watch::LowAlignment | Watch::OutsideSpan => return [0.0; SCORES],
    };
    // The rows are block triangular with a positive diagonal (residual_rows): invertible.
    let rows = nalgebra::SMatrix::<f64, SCORES, SCORES>::from_fn(|i, j| residuals[i][j]);
    let inverse = rows.try_inverse().expect("residual rows with a positive diagonal, block triangular");
    let shift = inverse * nalgebra::SVector::<f64, SCORES>::from(toward);
    std::array::from_fn(|j| shift[j])
}

/// The smallest threshold of a CUSUM with reference value `k`, from
/// [`SCORE_CAP`] - k (below it one pair alone could cross) to [`MAX_H`],
/// at which `holds` (monotone: false below, true above).
fn smallest_threshold(k: f64, holds: impl Fn(f64) -> bool) -> f64 {
    let floor = SCORE_CAP - k.min(SCORE_CAP / 2.0);
    if holds(floor) {
        return floor;
    }
    let (mut low, mut high) = (floor, MAX_H);
    for _ in 0..THRESHOLD_STEPS {
        let mid = 0.5 * (low + high);
        if holds(mid) {
            high = mid;
        } else {
            low = mid;
        }
    }
    high
}

/// Crossings of one CUSUM with reference value `k` and threshold `h`
/// (restarted after each) over its `evidence`, stopping once there are
/// more than `limit`.
fn crossings_alone(evidence: &[f32], k: f64, h: f64, limit: usize) -> usize {
    let (mut sum, mut count) = (0.0, 0);
    for &e in evidence {
        sum = cusum_step(sum, f64::from(e), k);
        if sum > h {
            (sum, count) = (0.0, count + 1);
            if count > limit {
                break;
            }
        }
    }
    count
}

/// The normal scores of the calibration pairs, grouped by source.
fn blocks_of(pairs: &CalibrationStatistics<'_>, detector: &DriftDetector) -> Vec<Vec<[f64; SCORES]>> {
    let mut by_source: std::collections::BTreeMap<usize, Vec<[f64; SCORES]>> = Default::default();
    for (statistics, source) in pairs.statistics.iter().zip(pairs.sources) {
        by_source.entry(*source).or_default().push(detector.scores(*statistics));
    }
    by_source.into_values().collect()
}

/// For each score, the between-source share of its variance that the
/// calibration's `blocks` could hide: the upper one-sided 95% confidence
/// bound of its intraclass correlation (one-way random effects, the F
/// bound with the unbalanced design's mean block size n0) less the share
/// the blocks already carry (their estimate, when positive). 0 when no
/// source has two pairs: then nothing is known of pairs within a source.
pub fn source_effects<const N: usize>(blocks: &[Vec<[f64; N]>]) -> [f64; N] {
    let k = blocks.len();
    let n: usize = blocks.iter().map(Vec::len).sum();
    if k < 2 || n <= k {
        return [0.0; N];
    }
    let (between_df, within_df) = ((k - 1) as f64, (n - k) as f64);
    let n0 = (n as f64 - blocks.iter().map(|b| (b.len() * b.len()) as f64).sum::<f64>() / n as f64) / between_df;
    let lower = statrs::distribution::FisherSnedecor::new(between_df, within_df).expect("positive degrees of freedom").inverse_cdf(0.05);
    std::array::from_fn(|j| {
        let mean = blocks.iter().flatten().map(|z| z[j]).sum::<f64>() / n as f64;
        let (mut between, mut within) = (0.0, 0.0);
        for block in blocks {
            let block_mean = block.iter().map(|z| z[j]).sum::<f64>() / block.len() as f64;
            between += block.len() as f64 * (block_mean - mean).powi(2);
            within += block.iter().map(|z| (z[j] - block_mean).powi(2)).sum::<f64>();
        }
        if within <= 0.0 {
            return 0.0;
        }
        let f = (between / between_df) / (within / within_df);
        let icc = |theta: f64| ((theta - 1.0) / (theta - 1.0 + n0)).clamp(0.0, 1.0);
        (icc(f / lower) - icc(f)).max(0.0)
    })
}

/// A good stream of `length` pairs' normal scores resampled from `blocks`,
/// jittered with the scores' `correlations`, each block shifted by a shared
/// draw of variance `source_effects` (see the module's documentation).
fn good_stream(
    blocks: &[Vec<[f64; SCORES]>],
    length: usize,
    settings: &DetectorSettings,
    correlations: &[[f64; SCORES]; SCORES],
    source_effects: [f64; SCORES],
) -> Vec<[f32; SCORES]> {
    let mut rng = StdRng::seed_from_u64(settings.seed);
    let bandwidth = if settings.smoothed { 1.06 * (blocks.len() as f64).powf(-0.2) } else { 0.0 };
    // Jitter L z for unit normals z, L L' the correlation matrix (the
    // identity when it is not positive definite, as for a constant score).
    type Square = nalgebra::SMatrix<f64, SCORES, SCORES>;
    type Column = nalgebra::SVector<f64, SCORES>;
    let c = Square::from_fn(|i, j| correlations[i][j]);
    let correlated = c.cholesky().map_or(Square::identity(), |factor| factor.l());
    let shape = correlated * bandwidth;
    let shared_shape = Square::from_diagonal(&Column::from_fn(|j, _| source_effects[j].sqrt())) * correlated;
    let unit = |rng: &mut StdRng| Column::from_fn(|_, _| <StandardNormal as Distribution<f64>>::sample(&StandardNormal, rng));
    // No draw for blocks when there is no shift to give them (the stream
    // of a calibration with one pair per source stays as it was).
    let shifted = source_effects.iter().any(|&share| share > 0.0);
    let mut stream = Vec::with_capacity(length);
    let mut order: Vec<usize> = Vec::new();
    while stream.len() < length {
        let block = &blocks[rng.random_range(0..blocks.len())];
        let shared = if shifted { shared_shape * unit(&mut rng) } else { Column::zeros() };
        order.clear();
        order.extend(0..block.len());
        order.shuffle(&mut rng);
        for &i in order.iter().take(length - stream.len()) {
            let jitter = shape * unit(&mut rng);
            stream.push(std::array::from_fn(|j| (block[i][j] + shared[j] + jitter[j]) as f32));
        }
    }
    stream
}

/// Average run length of `detector` at `thresholds` (restarted after
/// every crossing) over `stream` with every pair's scores moved by `shift`:
/// pairs per crossing (the stream's length when none crosses).
fn run_length(detector: &DriftDetector, stream: &[[f32; SCORES]], thresholds: [f64; WATCHES], shift: [f64; SCORES]) -> f64 {
    let mut detector = detector.with_params(CusumParams { thresholds, ..detector.params() }).expect("positive thresholds");
    let crossings =
        stream.iter().filter(|z| detector.update_scores(std::array::from_fn(|j| f64::from(z[j]) + shift[j])).crossed.is_some()).count();
    stream.len() as f64 / crossings.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use spanwatch_core::detector::NamedThresholds;

    fn gaussian_pairs(n: usize, seed: u64) -> Vec<PairStatistics> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let [a, s, o, e]: [f64; 4] = std::array::from_fn(|_| StandardNormal.sample(&mut rng));
                // The off span is correlated with the size (0.6), as a larger change may leave more outside.
                let off_span = 0.3 + 0.05 * (0.6 * s + 0.8 * o);
                PairStatistics { alignment: 0.1 + 0.05 * a, log_size: 2.0 + 0.3 * s, off_span, log_extent: -4.0 + 0.5 * e }
            })
            .collect()
    }

    /// The table's knots are order statistics with the normal scores of
    /// their plotting positions; its tail is the robust spread.
    #[test]
    fn tables_hold_order_statistics_at_their_normal_scores() {
        let values: Vec<f64> = (0..5).map(|i| i as f64).collect();
        let table = ScoreTableData::of(&[4.0, 0.0, 3.0, 1.0, 2.0]);
        assert_eq!(table.values, values.iter().map(|&v| v as f32).collect::<Vec<_>>());
        // Phi^-1(0.1), Phi^-1(0.5), Phi^-1(0.9) (scipy.stats.norm.ppf).
        assert!((table.scores[0] as f64 + 1.2815515655446004).abs() < 1e-6, "{:?}", table.scores);
        assert_eq!(table.scores[2], 0.0);
        assert!((table.scores[4] as f64 - 1.2815515655446004).abs() < 1e-6);
        assert!((table.tail - 2.0 / 1.349).abs() < 1e-12);
        let many: Vec<f64> = (0..1000).map(|i| i as f64).collect();
        let table = ScoreTableData::of(&many);
        assert_eq!((table.values.len(), table.values[0], table.values[63]), (MAX_KNOTS, 0.0, 999.0));
    }

    /// The residual rows turn correlated scores into residuals that are
    /// uncorrelated with the scores they are given and have unit variance.
    #[test]
    fn residuals_are_uncorrelated_with_what_they_are_given() {
        let statistics = gaussian_pairs(20_000, 5);
        let sources: Vec<usize> = (0..statistics.len()).collect();
        let settings = DetectorSettings { false_alarm_every: 100, ..DetectorSettings::default() };
        let calibrated = calibrate(&CalibrationStatistics { statistics: &statistics, sources: &sources }, &settings);
        assert!((calibrated.correlations[1][2] - 0.6).abs() < 0.03, "{:?}", calibrated.correlations);
        let detector = calibrated.detector();
        let rows: Vec<[f64; 6]> = statistics
            .iter()
            .map(|&p| {
                let z = detector.scores(p);
                let r = detector.residuals(z);
                [z[0], z[1], z[2], r[0], r[1], r[2]]
            })
            .collect();
        let n = rows.len() as f64;
        let moment = |i: usize, j: usize| rows.iter().map(|x| x[i] * x[j]).sum::<f64>() / n;
        // The off span's residual: unit variance, uncorrelated with the alignment and size scores.
        assert!((moment(5, 5) - 1.0).abs() < 0.05, "{}", moment(5, 5));
        assert!(moment(5, 0).abs() < 0.03 && moment(5, 1).abs() < 0.03, "{} {}", moment(5, 0), moment(5, 1));
        // The size's residual given the alignment alone (independent here): the size score itself.
        assert!(moment(4, 0).abs() < 0.03 && (moment(4, 4) - 1.0).abs() < 0.05);
    }

    /// The margin's shifts: a size shift moves the size's residual by the
    /// margin and leaves the other residuals, so it moves the off span's own
    /// score along its regression on the size; the seventh CUSUM's threshold
    /// is set on whichever size shift moves that score up (the smaller
    /// changes when the two are anticorrelated, as on ELPV, the larger when
    /// they correlate), and the residual CUSUMs of the alignment and the off
    /// span get none.
    #[test]
    fn the_off_span_alone_gets_the_size_shift_that_moves_it_up() {
        for (rho, toward) in [(-0.67, Watch::SmallChange), (0.6, Watch::LargeChange)] {
            let mut c = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, rho, 0.0], [0.0, rho, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]];
            c[0][1] = 0.1;
            c[1][0] = 0.1;
            let rows = residual_rows(&c);
            let alone = margin_shift_toward(&rows, Watch::OutsideSpanAlone, 0.4);
            assert_eq!(alone, margin_shift_toward(&rows, toward, 0.4), "rho {rho}");
            assert!(alone[2] > 0.2, "the off span's score moves up by about |rho| 0.4: {alone:?}");
            let residuals: [f64; SCORES] = std::array::from_fn(|i| rows[i].iter().zip(alone).map(|(r, z)| r * z).sum());
            assert!(residuals[0].abs() < 1e-12 && residuals[2].abs() < 1e-12, "other residuals kept: {residuals:?}");
            assert!((residuals[1].abs() - 0.4).abs() < 1e-12, "{residuals:?}");
            for watch in [Watch::LowAlignment, Watch::OutsideSpan] {
                assert_eq!(margin_shift_toward(&rows, watch, 0.4), [0.0; SCORES]);
            }
        }
    }

    /// A regression that would explain the off span almost entirely is
    /// shrunk: its residual keeps at least 1 - 0.9^2 of the variance.
    #[test]
    fn a_near_collinear_off_span_is_not_divided_by_zero() {
        let c = [[1.0, 0.0, 0.99, 0.0], [0.0, 1.0, 0.1, 0.0], [0.99, 0.1, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]];
        let rows = residual_rows(&c);
        assert!(rows.iter().flatten().all(|x| x.is_finite()));
        assert!(rows[2][2] <= 1.0 / (1.0 - MAX_CORRELATION * MAX_CORRELATION).sqrt() + 1e-12, "{rows:?}");
        assert_eq!(residual_rows(&INDEPENDENT), INDEPENDENT);
    }

    /// The thresholds the simulation sets give the ARL0 it measured on a
    /// long good stream it never saw: fresh pairs from the distribution the
    /// calibration pairs came from, through the core's detector. With 3,000
    /// calibration pairs per seed; with 600 the fresh ARL0 spread from 0.8
    /// to 3.3 times the target over three calibration seeds (the quantile
    /// tables know only the pairs they saw). One pair per source, so the
    /// simulation adds no between-source shift (the next test adds one).
    /// At a target of 1,000 the thresholds sit at their floor (no single
    /// pair crosses alone), so the seven together run longer than the
    /// target: the simulation must say by how much. Seven CUSUMs at their
    /// floor rest on the tails of four tables of 3,000 pairs: the fresh
    /// ARL0 came within 0.92 to 1.50 of the simulated one over the seeds
    /// (six CUSUMs: within 0.92 to 1.49; four: within 0.7 to 1.45).
    #[test]
    fn the_simulated_threshold_holds_on_a_fresh_good_stream() {
        let n = 3000;
        let sources: Vec<usize> = (0..n).collect();
        let settings = DetectorSettings { false_alarm_every: 1000, smoothed: false, size_margin: 0.0, ..DetectorSettings::default() };
        let mut log_ratios = Vec::new();
        for seed in [1, 7, 11] {
            let statistics = gaussian_pairs(n, seed);
            let calibrated = calibrate(&CalibrationStatistics { statistics: &statistics, sources: &sources }, &settings);
            let simulated = calibrated.simulated_every;
            assert!((1000.0..2000.0).contains(&simulated), "simulated ARL0 {simulated:.0} for a target of 1000");
            let mut detector = calibrated.detector();
            let fresh = gaussian_pairs(1_000_000, seed + 100);
            let crossings = fresh.iter().filter(|&&pair| detector.update(pair).crossed.is_some()).count();
            let arl0 = fresh.len() as f64 / crossings as f64;
            let thresholds = NamedThresholds(&calibrated.params.thresholds);
            println!(
                "seed {seed}: simulated thresholds {thresholds}: ARL0 {arl0:.0} on 1,000,000 fresh good pairs (simulated {simulated:.0})"
            );
            // About 1000 crossings: +-6% from counting alone; the rest is
            // the calibration pairs' quantiles against the true ones.
            assert!(
                (0.7..1.6).contains(&(arl0 / simulated)),
                "ARL0 {arl0:.0} on fresh pairs, simulated {simulated:.0}, thresholds {thresholds}"
            );
            log_ratios.push((arl0 / simulated).ln());
        }
        let geometric_mean = (log_ratios.iter().sum::<f64>() / 3.0).exp();
        assert!((0.8..1.25).contains(&geometric_mean), "fresh ARL0 over the seeds: {geometric_mean:.2} of the simulated");
        // Smoothing widens the scores: a higher h for the same target.
        let statistics = gaussian_pairs(n, 1);
        let calibration = CalibrationStatistics { statistics: &statistics, sources: &sources };
        let (plain, smoothed) =
            (calibrate(&calibration, &settings), calibrate(&calibration, &DetectorSettings { smoothed: true, ..settings }));
        let higher =
            |a: &CalibratedDetector, b: &CalibratedDetector| a.params.thresholds.iter().zip(b.params.thresholds).all(|(x, y)| *x >= y);
        assert!(higher(&smoothed, &plain), "{:?} against {:?}", smoothed.params.thresholds, plain.params.thresholds);
    }

    /// Two pairs per source with nothing shared: the blocks could hide a
    /// between-source share, so the simulation adds one (positive, below
    /// 0.1 with 1,500 sources) and the threshold errs on the quiet side: a
    /// fresh independent good stream runs longer than the target between
    /// false alarms, but not by more than 3 times.
    #[test]
    fn pairs_sharing_sources_raise_the_threshold_a_little() {
        let n = 3000;
        let statistics = gaussian_pairs(n, 1);
        let settings = DetectorSettings { false_alarm_every: 1000, smoothed: false, size_margin: 0.0, ..DetectorSettings::default() };
        let alone: Vec<usize> = (0..n).collect();
        let paired: Vec<usize> = (0..n).map(|i| i / 2).collect();
        let plain = calibrate(&CalibrationStatistics { statistics: &statistics, sources: &alone }, &settings);
        let blocked = calibrate(&CalibrationStatistics { statistics: &statistics, sources: &paired }, &settings);
        assert_eq!(plain.source_effects, [0.0; SCORES]);
        assert!(blocked.source_effects.iter().all(|&share| share > 0.0 && share < 0.1), "{:?}", blocked.source_effects);
        let sum = |c: &CalibratedDetector| c.params.thresholds.iter().sum::<f64>();
        assert!(sum(&blocked) > sum(&plain));
        let mut detector = blocked.detector();
        let fresh = gaussian_pairs(1_000_000, 101);
        let crossings = fresh.iter().filter(|&&pair| detector.update(pair).crossed.is_some()).count();
        let arl0 = fresh.len() as f64 / crossings as f64;
        println!(
            "shares {:?}: thresholds {} against {}; fresh ARL0 {arl0:.0} (target 1000)",
            blocked.source_effects,
            NamedThresholds(&blocked.params.thresholds),
            NamedThresholds(&plain.params.thresholds)
        );
        assert!((1.0..3.0).contains(&(arl0 / 1000.0)), "ARL0 {arl0:.0}");
    }

    /// The line's good pairs change a quarter of a standard deviation less
    /// than the calibration's (held-out grass tiles changed 0.22 less), the
    /// other scores' residuals as they were: with the margin the size
    /// CUSUMs' thresholds still give about the target ARL0 on such a
    /// stream; without it the small-change CUSUM crosses far more often.
    /// (A size k of 0.5 and a target of 10,000 put the thresholds above
    /// their floor, where no one pair crosses alone. With seven CUSUMs
    /// sharing the target the shifted stream ran 8,264 pairs between
    /// crossings, with six 6,579, with four 8,621: the tables' sampling
    /// error on 3,000 pairs, as in the test above.)
    #[test]
    fn a_shift_of_the_line_within_the_margin_keeps_the_target() {
        let n = 3000;
        let statistics = gaussian_pairs(n, 2);
        let sources: Vec<usize> = (0..n).collect();
        let calibration = CalibrationStatistics { statistics: &statistics, sources: &sources };
        let settings =
            DetectorSettings { false_alarm_every: 10_000, size_k: 0.5, size_margin: 0.25, smoothed: false, ..DetectorSettings::default() };
        let (with, without) =
            (calibrate(&calibration, &settings), calibrate(&calibration, &DetectorSettings { size_margin: 0.0, ..settings }));
        assert!(
            with.shifted_every >= 10_000.0 && with.simulated_every > with.shifted_every,
            "{} {}",
            with.simulated_every,
            with.shifted_every
        );
        let [_, small, large, ..] = with.params.thresholds;
        let [_, small_without, large_without, ..] = without.params.thresholds;
        assert!(small > small_without + 1.0 && large > large_without + 1.0, "the margin raises both size thresholds");
        // gaussian_pairs: log size sd 0.3, the off span 0.05 * 0.6 per size sd.
        let shifted =
            |p: PairStatistics| PairStatistics { log_size: p.log_size - 0.25 * 0.3, off_span: p.off_span - 0.25 * 0.05 * 0.6, ..p };
        let fresh: Vec<PairStatistics> = gaussian_pairs(2_000_000, 102).into_iter().map(shifted).collect();
        let arl0 = |c: &CalibratedDetector| {
            let mut detector = c.detector();
            fresh.len() as f64 / fresh.iter().filter(|&&pair| detector.update(pair).crossed.is_some()).count().max(1) as f64
        };
        let (shifted_with, shifted_without) = (arl0(&with), arl0(&without));
        println!(
            "thresholds {} with the margin, {} without; ARL0 on good pairs whose size is 0.25 sd smaller: {shifted_with:.0} against {shifted_without:.0} (target 10000)",
            NamedThresholds(&with.params.thresholds),
            NamedThresholds(&without.params.thresholds)
        );
        assert!(shifted_with >= 6_000.0, "{shifted_with:.0}");
        assert!(shifted_without < 0.3 * shifted_with, "{shifted_without:.0} against {shifted_with:.0}");
    }

    /// An unchanged copy and pixel noise are caught in a few pairs; a small
    /// shift of the alignment takes longer, but is caught.
    #[test]
    fn degradations_are_caught() {
        let statistics = gaussian_pairs(400, 3);
        let sources: Vec<usize> = (0..400).collect();
        let calibrated = calibrate(&CalibrationStatistics { statistics: &statistics, sources: &sources }, &DetectorSettings::default());
        let delay = |pair: &dyn Fn(usize) -> PairStatistics| {
            let mut detector = calibrated.detector();
            (0..1000).position(|t| detector.update(pair(t)).change.is_some()).map(|t| t + 1)
        };
        let copy = PairStatistics::from_dots(0.0, 1.0, 0.0, 0.0, 0.0);
        assert!(delay(&|_| copy).unwrap() <= 3);
        let noise = PairStatistics { alignment: 0.0, log_size: 5.0, off_span: 0.9, log_extent: 0.0 };
        assert!(delay(&|_| noise).unwrap() <= 3);
        // Of good alignment and size, but far outside the calibration's span.
        let outside = |t: usize| PairStatistics { off_span: 0.6, ..statistics[t % 400] };
        assert!(delay(&outside).unwrap() <= 5, "{:?}", delay(&outside));
        // Of good embedding statistics, but over the whole image (noise the
        // embedding takes for texture).
        let wide = |t: usize| PairStatistics { log_extent: 0.0, ..statistics[t % 400] };
        assert!(delay(&wide).unwrap() <= 3, "{:?}", delay(&wide));
        let shifted = gaussian_pairs(1000, 4);
        let one_sigma = |t: usize| PairStatistics { alignment: shifted[t].alignment - 0.05, ..shifted[t] };
        let slow = delay(&one_sigma).unwrap();
        println!("delays: copy {:?}, noise {:?}, one-sigma alignment shift {slow}", delay(&|_| copy), delay(&|_| noise));
        assert!((5..60).contains(&slow), "{slow} pairs for a one-sigma shift");
    }
}
