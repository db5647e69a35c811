//! The drift detector: Page's one-sided CUSUM on each pair's own
//! statistics, normalized against the calibration pairs.
//!
//! A windowed mean forgets everything older than its window, so small
//! shifts take long or are missed; for a shift in the mean of a per-pair
//! score, the CUSUM is the optimal detector (Lorden 1971; Moustakides 1986).
//! Each pair gives four statistics: its alignment with the probe (a defect
//! of the wrong kind points elsewhere), the log size of its change in the
//! embedding (an unchanged copy changes nothing, pixel noise or a
//! photometric change far too much), the share of its change outside the
//! bundle's reference basis (a change of another kind than the calibration
//! pairs' lies outside their span) and the log pixel extent of its change
//! ([`crate::extent`]: noise and photometric changes touch every pixel, a
//! copy none, where the embedding can take noise on a texture for more
//! texture). Each is mapped to a normal score through the calibration
//! pairs' quantiles (rank to normal scores, so non-Gaussian statistics are
//! fine), and seven CUSUMs watch them: low alignment, small changes, large
//! changes, changes outside the span, wide changes, narrow changes, and
//! changes outside the span by the off span's own score. The scores are
//! correlated on the calibration pairs, so the first six CUSUMs watch their
//! score's residual given others, a linear combination of the four scores
//! the host chooses ([`CusumParams::residuals`]; bundle format 8 on: the
//! alignment and the size each given the other, the off span given both,
//! the extent alone): the statistic of the likelihood ratio of a shift of
//! that score alone, with the part of its noise the others explain taken
//! out. A residual hides a shift that moves along the correlation it takes
//! out: a change that leaves the span as it shrinks, as the calibration's
//! smaller changes do, keeps little of its off-span shift given the size
//! (a transplant of a real defect's region on ELPV mono kept 1.37 of 2.24
//! sd), so the seventh CUSUM (bundle format 9) watches the off span's score
//! itself. Each CUSUM has its own threshold; the first to pass it raises
//! the alert; all seven restart from 0 after every crossing, and a raised
//! alert clears after `clear_after` pairs without one (the hysteresis).
//!
//! The thresholds are set by the host by simulation for a target average
//! run length to a false alarm (ARL0), the false-alarm budget shared by the
//! seven; the change-size and extent CUSUMs' with a margin for a shift of
//! the line's changes (the alignment and the off span are scale-free).

use crate::alert::AlertState;

/// Most quantile knots a normal-score table holds.
pub const MAX_KNOTS: usize = 64;
/// Normal scores are clamped to +-this, so one pair can add at most this
/// (less k) to a CUSUM: a single outlier cannot raise the alert alone.
pub const SCORE_CAP: f64 = 6.0;
/// The smallest change size counted: an unchanged copy's log size is ln of this.
pub const MIN_CHANGE_SIZE: f64 = 1e-12;
/// The smallest pixel extent counted: an unchanged copy's log extent is ln of this.
pub const MIN_EXTENT: f64 = 1e-6;
/// Normal scores a pair gives, in the order of [`DetectorStep::scores`]:
/// alignment, log size, off span, log extent.
pub const SCORES: usize = 4;
/// CUSUMs, in the order of [`Watch::ALL`].
pub const WATCHES: usize = 7;

/// The statistics of one pair the detector watches.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PairStatistics {
    /// Cosine of the probe w and the pair's difference (0 without change).
    pub alignment: f64,
    /// ln of the difference's norm in standardized space (at least ln [`MIN_CHANGE_SIZE`]).
    pub log_size: f64,
    /// The share of the difference's norm outside the bundle's reference
    /// basis, sqrt(1 - ||B d||^2 / ||d||^2) (0 without change).
    pub off_span: f64,
    /// ln of the share of the image's pixels the change moved
    /// ([`crate::extent::changed_share`]; at least ln [`MIN_EXTENT`]).
    pub log_extent: f64,
}

impl PairStatistics {
    /// The statistics of a difference with dot product `h` with w, squared
    /// norm `energy` and squared norm `inside` of its projection on the
    /// reference basis, for a probe of squared norm `w_norm2`, whose images
    /// differ in the share `extent` of their pixels.
    pub fn from_dots(h: f64, w_norm2: f64, energy: f64, inside: f64, extent: f64) -> PairStatistics {
        let alignment = alignment_of_dots(h, w_norm2, energy);
        let log_size = libm::log(libm::sqrt(energy.max(0.0)).max(MIN_CHANGE_SIZE));
        PairStatistics { alignment, log_size, off_span: off_span_of_energies(energy, inside), log_extent: log_extent(extent) }
    }

    /// The statistics of difference `d` for probe `w` and the reference
    /// basis `basis` (orthonormal rows of d.len() values, row-major, as the
    /// bundle stores them: read straight from its bytes, no copy), whose
    /// images differ in the share `extent` of their pixels.
    pub fn of(w: &[f32], basis: impl IntoIterator<Item = f32>, d: &[f32], extent: f64) -> PairStatistics {
        PairStatistics::from_dots(crate::dot(w, d), crate::dot(w, w), crate::dot(d, d), energy_in_basis(basis, d), extent)
    }
}

/// ln of a pixel extent (a share of the pixels), at least ln [`MIN_EXTENT`]
/// (NaN stays NaN: a score of 0, no evidence).
pub fn log_extent(extent: f64) -> f64 {
    if extent.is_nan() {
        return f64::NAN;
    }
    libm::log(extent.max(MIN_EXTENT))
}

/// The cosine of w and a difference d from their dot products (h = w . d,
/// ||w||^2, ||d||^2), 0 for a pair without change: the alignment the
/// detector watches, and the host's simulations compute from a Gram matrix.
pub fn alignment_of_dots(h: f64, w_norm2: f64, energy: f64) -> f64 {
    let norm = libm::sqrt(w_norm2 * energy);
    if norm > 0.0 {
        h / norm
    } else {
        0.0
    }
}

/// ||B d||^2: the squared norm of `d`'s projection on the orthonormal rows
/// of `basis` (row-major, d.len() values a row; a last incomplete row is
/// ignored).
pub fn energy_in_basis(basis: impl IntoIterator<Item = f32>, d: &[f32]) -> f64 {
    if d.is_empty() {
        return 0.0;
    }
    let n = d.len();
    let (mut inside, mut row_dot) = (0.0, 0.0);
    for (i, v) in basis.into_iter().enumerate() {
        row_dot += v as f64 * d[i % n] as f64;
        if i % n == n - 1 {
            inside += row_dot * row_dot;
            row_dot = 0.0;
        }
    }
    inside
}

/// The share of a change's norm outside the reference basis from its
/// squared norm `energy` and that of its projection `inside`:
/// sqrt(1 - inside / energy), 0 for no change.
pub fn off_span_of_energies(energy: f64, inside: f64) -> f64 {
    if energy > 0.0 {
        libm::sqrt((1.0 - inside / energy).max(0.0))
    } else {
        0.0
    }
}

/// Why a detector cannot be built from its parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DetectorError {
    /// A normal-score table has fewer than 2 or more than [`MAX_KNOTS`] knots,
    /// or its values and scores differ in number.
    KnotCount,
    /// A table's values are not finite and non-decreasing, or its scores
    /// not finite and increasing.
    KnotOrder,
    /// The tail scale, a k or a threshold is not a positive finite number, or a
    /// residual's coefficients not finite with a positive own coefficient.
    Parameter,
}

impl core::fmt::Display for DetectorError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            DetectorError::KnotCount => "a normal-score table needs 2 to 64 knots, as many values as scores",
            DetectorError::KnotOrder => "a normal-score table needs finite non-decreasing values and finite increasing scores",
            DetectorError::Parameter => {
                "the tail scale, k and the thresholds must be positive finite numbers, the residual coefficients finite with positive diagonal"
            }
        })
    }
}

impl core::error::Error for DetectorError {}

/// The map from a statistic to its normal score: piecewise linear through
/// the calibration quantiles (value, normal score), continued past the
/// outermost knots with slope 1 / `tail` (a normal tail of the statistic's
/// robust spread), clamped to +-[`SCORE_CAP`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NormalScores {
    values: [f32; MAX_KNOTS],
    scores: [f32; MAX_KNOTS],
    len: usize,
    tail: f64,
}

impl NormalScores {
    /// A table from its knots (values non-decreasing, scores increasing) and tail scale.
    pub fn new(
        values: impl ExactSizeIterator<Item = f32>,
        scores: impl ExactSizeIterator<Item = f32>,
        tail: f64,
    ) -> Result<NormalScores, DetectorError> {
        let len = values.len();
        if !(2..=MAX_KNOTS).contains(&len) || scores.len() != len {
            return Err(DetectorError::KnotCount);
        }
        if !(tail > 0.0 && tail.is_finite()) {
            return Err(DetectorError::Parameter);
        }
        let mut table = NormalScores { values: [0.0; MAX_KNOTS], scores: [0.0; MAX_KNOTS], len, tail };
        table.values.iter_mut().zip(values).for_each(|(o, v)| *o = v);
        table.scores.iter_mut().zip(scores).for_each(|(o, z)| *o = z);
        let (v, z) = (&table.values[..len], &table.scores[..len]);
        let ordered = v.iter().chain(z).all(|x| x.is_finite()) && v.windows(2).all(|p| p[0] <= p[1]) && z.windows(2).all(|p| p[0] < p[1]);
        if !ordered {
            return Err(DetectorError::KnotOrder);
        }
        Ok(table)
    }

    /// The normal score of `x` (0, no evidence either way, for NaN).
    pub fn score(&self, x: f64) -> f64 {
        if x.is_nan() {
            return 0.0;
        }
        let (v, z) = (&self.values[..self.len], &self.scores[..self.len]);
        let last = self.len - 1;
        let (first_value, last_value) = (v[0] as f64, v[last] as f64);
        let score = if x <= first_value {
            z[0] as f64 - (first_value - x) / self.tail
        } else if x >= last_value {
            z[last] as f64 + (x - last_value) / self.tail
        } else {
            // v[i - 1] <= x < v[i], so v[i] > v[i - 1].
            let i = v.partition_point(|&value| value as f64 <= x);
            let (x0, x1, z0, z1) = (v[i - 1] as f64, v[i] as f64, z[i - 1] as f64, z[i] as f64);
            z0 + (x - x0) / (x1 - x0) * (z1 - z0)
        };
        score.clamp(-SCORE_CAP, SCORE_CAP)
    }
}

/// One of the detector's seven CUSUMs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Watch {
    /// Alignments below the calibration's: changes that point away from the defect side.
    LowAlignment,
    /// Changes smaller than the calibration's: faint or no change at all.
    SmallChange,
    /// Changes larger than the calibration's: noise, photometric changes.
    LargeChange,
    /// Changes further outside the reference basis than the calibration's:
    /// changes of another kind.
    OutsideSpan,
    /// Changes that move more of the image's pixels than the calibration's:
    /// noise, photometric changes.
    WideChange,
    /// Changes that move fewer pixels than the calibration's: copies,
    /// faint or smaller defects.
    NarrowChange,
    /// Changes further outside the reference basis than the calibration's
    /// by the off span's own score, not its residual: changes of another
    /// kind that also shrink, which the residual given the size explains
    /// away.
    OutsideSpanAlone,
}

impl Watch {
    /// The seven, in the order of [`DetectorState::sums`].
    pub const ALL: [Watch; WATCHES] = [
        Watch::LowAlignment,
        Watch::SmallChange,
        Watch::LargeChange,
        Watch::OutsideSpan,
        Watch::WideChange,
        Watch::NarrowChange,
        Watch::OutsideSpanAlone,
    ];

    /// Its name in messages: "low_alignment", "small_change", "large_change",
    /// "outside_span", "wide_change", "narrow_change" or "outside_span_alone".
    pub fn name(&self) -> &'static str {
        match self {
            Watch::LowAlignment => "low_alignment",
            Watch::SmallChange => "small_change",
            Watch::LargeChange => "large_change",
            Watch::OutsideSpan => "outside_span",
            Watch::WideChange => "wide_change",
            Watch::NarrowChange => "narrow_change",
            Watch::OutsideSpanAlone => "outside_span_alone",
        }
    }
}

/// One step of Page's one-sided CUSUM: the sum after adding `evidence`
/// less the reference value `k`, held at 0 or above.
pub fn cusum_step(sum: f64, evidence: f64, k: f64) -> f64 {
    (sum + evidence - k).max(0.0)
}

/// The scores' residuals when each stands alone: the identity.
pub const INDEPENDENT: [[f64; SCORES]; SCORES] = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]];

/// The detector's tuning, from the bundle.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CusumParams {
    /// Reference value k of the alignment's CUSUM, in normal-score units:
    /// half the shift it is tuned for.
    pub alignment_k: f64,
    /// Reference value k of the two change-size CUSUMs.
    pub size_k: f64,
    /// Reference value k of the two off-span CUSUMs.
    pub off_span_k: f64,
    /// Reference value k of the two pixel-extent CUSUMs.
    pub extent_k: f64,
    /// Row i: the coefficients of score i's residual given the others, a
    /// linear combination of the four normal scores (alignment, log size,
    /// off span, log extent) with unit variance on the calibration pairs;
    /// what the first six CUSUMs add up (the seventh adds up the off span's
    /// score itself). [`INDEPENDENT`] watches each score alone.
    pub residuals: [[f64; SCORES]; SCORES],
    /// Each CUSUM's threshold, in the order of [`Watch::ALL`]: a CUSUM
    /// above its own raises the alert.
    pub thresholds: [f64; WATCHES],
    /// Pairs in a row without a crossing that clear a raised alert.
    pub clear_after: u32,
}

/// What the detector carries from pair to pair: all a restarted monitor
/// needs to go on with the same statistic.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DetectorState {
    /// The seven CUSUMs, in the order of [`Watch::ALL`].
    pub sums: [f64; WATCHES],
    /// Pairs since the last crossing (or since the start).
    pub quiet: u32,
    /// Whether the alert is raised.
    pub raised: bool,
}

impl DetectorState {
    /// The alert state.
    pub fn alert(&self) -> AlertState {
        if self.raised {
            AlertState::Raised
        } else {
            AlertState::Clear
        }
    }
}

/// The seven thresholds (in the order of [`Watch::ALL`]) for messages and
/// logs: "14.210 (low_alignment), 6.802 (small_change), ...".
#[derive(Clone, Copy, Debug)]
pub struct NamedThresholds<'a>(pub &'a [f64; WATCHES]);

impl core::fmt::Display for NamedThresholds<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, (watch, h)) in Watch::ALL.iter().zip(self.0).enumerate() {
            let separator = if i == 0 { "" } else { ", " };
            write!(f, "{separator}{h:.3} ({})", watch.name())?;
        }
        Ok(())
    }
}

/// One CUSUM's value beside its threshold.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Reading {
    /// Which CUSUM.
    pub watch: Watch,
    /// Its value.
    pub value: f64,
    /// Its threshold.
    pub threshold: f64,
}

impl Reading {
    /// The value as a share of the threshold: the alert rises above 1.
    pub fn level(&self) -> f64 {
        self.value / self.threshold
    }
}

/// The CUSUM nearest its threshold (the largest value / threshold; the
/// first in [`Watch::ALL`] order on a tie): the detector's statistic.
pub fn nearest(sums: &[f64; WATCHES], thresholds: &[f64; WATCHES]) -> Reading {
    let reading = |i: usize| Reading { watch: Watch::ALL[i], value: sums[i], threshold: thresholds[i] };
    (1..WATCHES).map(reading).fold(reading(0), |best, r| if r.level() > best.level() { r } else { best })
}

/// A change of the alert state and what caused it.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AlertChange {
    /// The new state.
    pub state: AlertState,
    /// The CUSUM that crossed its threshold (raised), or the one nearest
    /// its threshold (cleared).
    pub watch: Watch,
    /// That CUSUM's value when it crossed (raised), or now (cleared).
    pub value: f64,
    /// Its threshold.
    pub threshold: f64,
}

/// What one pair did to the detector.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DetectorStep {
    /// The pair's normal scores: alignment, log size, off span, log extent
    /// (before the residuals).
    pub scores: [f64; SCORES],
    /// The seven CUSUMs after this pair, before a crossing restarts them
    /// (in the order of [`Watch::ALL`]).
    pub sums: [f64; WATCHES],
    /// The CUSUM that crossed its threshold on this pair (the one furthest
    /// past it when several did; all then restart from 0).
    pub crossed: Option<Reading>,
    /// The alert's change, if this pair caused one.
    pub change: Option<AlertChange>,
}

/// The normal-score tables of the four statistics, in the order of
/// [`DetectorStep::scores`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ScoreTables {
    /// Of the alignment.
    pub alignment: NormalScores,
    /// Of the log change size.
    pub size: NormalScores,
    /// Of the share outside the reference basis.
    pub off_span: NormalScores,
    /// Of the log pixel extent.
    pub extent: NormalScores,
}

/// The calibrated detector with its state.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DriftDetector {
    tables: ScoreTables,
    params: CusumParams,
    state: DetectorState,
}

impl DriftDetector {
    /// A detector in `state` (the default for a first start).
    pub fn new(tables: ScoreTables, params: CusumParams, state: DetectorState) -> Result<Self, DetectorError> {
        let positive = |x: f64| x > 0.0 && x.is_finite();
        let ks = [params.alignment_k, params.size_k, params.off_span_k, params.extent_k];
        let rows_valid = params.residuals.iter().enumerate().all(|(i, row)| row.iter().all(|c| c.is_finite()) && row[i] > 0.0);
        if !ks.into_iter().chain(params.thresholds).all(positive) || !rows_valid {
            return Err(DetectorError::Parameter);
        }
        Ok(DriftDetector { tables, params, state })
    }

    /// The state to persist.
    pub fn state(&self) -> DetectorState {
        self.state
    }

    /// Puts the detector back to `state` (to forget a pair that could not be recorded).
    pub fn resume(&mut self, state: DetectorState) {
        self.state = state;
    }

    /// The tuning.
    pub fn params(&self) -> CusumParams {
        self.params
    }

    /// The same tables with other tuning, in the start state.
    pub fn with_params(&self, params: CusumParams) -> Result<Self, DetectorError> {
        DriftDetector::new(self.tables, params, DetectorState::default())
    }

    /// Each score's residual given the others ([`CusumParams::residuals`]),
    /// clamped to +-[`SCORE_CAP`]: what the CUSUMs add up.
    pub fn residuals(&self, scores: [f64; SCORES]) -> [f64; SCORES] {
        self.params.residuals.map(|row| row.iter().zip(scores).map(|(c, z)| c * z).sum::<f64>().clamp(-SCORE_CAP, SCORE_CAP))
    }

    /// The pair's normal scores (alignment, log size, off span, log
    /// extent), as [`Self::update`] computes them.
    pub fn scores(&self, pair: PairStatistics) -> [f64; SCORES] {
        let t = &self.tables;
        [t.alignment.score(pair.alignment), t.size.score(pair.log_size), t.off_span.score(pair.off_span), t.extent.score(pair.log_extent)]
    }

    /// Feeds one pair.
    pub fn update(&mut self, pair: PairStatistics) -> DetectorStep {
        self.update_scores(self.scores(pair))
    }

    /// What each CUSUM adds up for a pair of normal `scores` before its k,
    /// in the order of [`Watch::ALL`]: the residuals toward each alarm
    /// (-alignment, -size, +size, +off span, +extent, -extent), then the
    /// off span's score itself, clamped to +-[`SCORE_CAP`].
    pub fn evidence(&self, scores: [f64; SCORES]) -> [f64; WATCHES] {
        let [a, s, o, e] = self.residuals(scores);
        [-a, -s, s, o, e, -e, scores[2].clamp(-SCORE_CAP, SCORE_CAP)]
    }

    /// Each CUSUM's reference value k, in the order of [`Watch::ALL`].
    pub fn reference_values(&self) -> [f64; WATCHES] {
        let CusumParams { alignment_k, size_k, off_span_k, extent_k, .. } = self.params;
        [alignment_k, size_k, size_k, off_span_k, extent_k, extent_k, off_span_k]
    }

    /// Feeds one pair by its normal scores (alignment, log size, off span,
    /// log extent): what [`Self::update`] does after [`Self::scores`], for
    /// simulations that draw scores directly.
    pub fn update_scores(&mut self, scores: [f64; SCORES]) -> DetectorStep {
        let (evidence, ks) = (self.evidence(scores), self.reference_values());
        let CusumParams { thresholds, clear_after, .. } = self.params;
        for ((sum, e), k) in self.state.sums.iter_mut().zip(evidence).zip(ks) {
            *sum = cusum_step(*sum, e, k);
        }
        let sums = self.state.sums;
        let nearest = nearest(&sums, &thresholds);
        let crossed = (nearest.level() > 1.0).then_some(nearest);
        let Reading { watch, value, threshold } = nearest;
        let mut change = None;
        if crossed.is_some() {
            self.state.sums = [0.0; WATCHES];
            self.state.quiet = 0;
            if !self.state.raised {
                self.state.raised = true;
                change = Some(AlertChange { state: AlertState::Raised, watch, value, threshold });
            }
        } else {
            self.state.quiet = self.state.quiet.saturating_add(1);
            if self.state.raised && self.state.quiet >= clear_after {
                self.state.raised = false;
                change = Some(AlertChange { state: AlertState::Clear, watch, value, threshold });
            }
        }
        DetectorStep { scores, sums, crossed, change }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> NormalScores {
        NormalScores::new([0.0f32, 1.0, 1.0, 3.0].into_iter(), [-1.5f32, -0.5, 0.5, 1.5].into_iter(), 2.0).unwrap()
    }

    #[test]
    fn scores_interpolate_between_knots_and_continue_past_them() {
        let t = table();
        assert_eq!(t.score(0.5), -1.0);
        assert_eq!(t.score(2.0), 1.0, "past the tie at 1, between 1 (0.5) and 3 (1.5)");
        assert_eq!(t.score(-1.0), -2.0, "below the first knot: slope 1 / tail");
        assert_eq!(t.score(5.0), 2.5);
        assert_eq!(t.score(-100.0), -SCORE_CAP);
        assert_eq!(t.score(f64::INFINITY), SCORE_CAP);
        assert_eq!(t.score(f64::NAN), 0.0);
    }

    fn tables() -> ScoreTables {
        ScoreTables { alignment: table(), size: table(), off_span: table(), extent: table() }
    }

    fn params(h: f64, residuals: [[f64; SCORES]; SCORES]) -> CusumParams {
        CusumParams { alignment_k: 0.5, size_k: 1.0, off_span_k: 1.0, extent_k: 1.0, residuals, thresholds: [h; WATCHES], clear_after: 3 }
    }

    #[test]
    fn bad_tables_and_parameters_are_refused() {
        let z = [-1.0f32, 1.0];
        assert_eq!(NormalScores::new([1.0f32].into_iter(), [0.0f32].into_iter(), 1.0), Err(DetectorError::KnotCount));
        assert_eq!(NormalScores::new([2.0f32, 1.0].into_iter(), z.into_iter(), 1.0), Err(DetectorError::KnotOrder));
        assert_eq!(NormalScores::new([1.0f32, f32::NAN].into_iter(), z.into_iter(), 1.0), Err(DetectorError::KnotOrder));
        assert_eq!(NormalScores::new([1.0f32, 2.0].into_iter(), [1.0f32, 1.0].into_iter(), 1.0), Err(DetectorError::KnotOrder));
        assert_eq!(NormalScores::new([1.0f32, 2.0].into_iter(), z.into_iter(), 0.0), Err(DetectorError::Parameter));
        assert_eq!(DriftDetector::new(tables(), params(f64::NAN, INDEPENDENT), DetectorState::default()), Err(DetectorError::Parameter));
        let no_off_span_k = CusumParams { off_span_k: 0.0, ..params(10.0, INDEPENDENT) };
        assert_eq!(DriftDetector::new(tables(), no_off_span_k, DetectorState::default()), Err(DetectorError::Parameter));
        let mut rows = INDEPENDENT;
        rows[3][3] = 0.0;
        assert_eq!(
            DriftDetector::new(tables(), params(10.0, rows), DetectorState::default()),
            Err(DetectorError::Parameter),
            "no own coefficient"
        );
        rows = INDEPENDENT;
        rows[1][0] = f64::NAN;
        assert_eq!(DriftDetector::new(tables(), params(10.0, rows), DetectorState::default()), Err(DetectorError::Parameter));
    }

    /// A zero change pushes the small-change and the narrow-change CUSUMs
    /// by SCORE_CAP - k per pair (and the alignment's by its own k less);
    /// the alert rises on the first crossing (the size's, first in
    /// [`Watch::ALL`] on a tie), every crossing restarts the sums, and
    /// `clear_after` quiet pairs clear it.
    #[test]
    fn copies_raise_the_alert_and_good_pairs_clear_it() {
        let mut detector = DriftDetector::new(tables(), params(9.0, INDEPENDENT), DetectorState::default()).unwrap();
        let copy = PairStatistics::from_dots(0.0, 1.0, 0.0, 0.0, 0.0);
        assert_eq!((copy.off_span, copy.log_extent), (0.0, MIN_EXTENT.ln()));
        assert_eq!(detector.scores(copy), [-1.5, -SCORE_CAP, -1.5, -SCORE_CAP]);
        assert!(detector.update(copy).change.is_none());
        assert_eq!(detector.state().sums, [1.0, 5.0, 0.0, 0.0, 0.0, 5.0, 0.0]);
        let step = detector.update(copy);
        let crossed = Reading { watch: Watch::SmallChange, value: 10.0, threshold: 9.0 };
        assert_eq!((step.crossed, step.sums), (Some(crossed), [2.0, 10.0, 0.0, 0.0, 0.0, 10.0, 0.0]));
        let change = step.change.unwrap();
        assert_eq!((change.state, change.watch, change.value, change.threshold), (AlertState::Raised, Watch::SmallChange, 10.0, 9.0));
        assert_eq!(detector.state(), DetectorState { sums: [0.0; WATCHES], quiet: 0, raised: true });
        // A good pair (scores 1, 1, -1, 1) stays under h and counts as quiet.
        let good = PairStatistics { alignment: 2.0, log_size: 2.0, off_span: 0.5, log_extent: 2.0 };
        assert_eq!(detector.scores(good), [1.0, 1.0, -1.0, 1.0]);
        assert!(detector.update(good).change.is_none());
        assert!(detector.update(good).change.is_none());
        assert_eq!(detector.update(good).change.map(|c| c.state), Some(AlertState::Clear));
        // Resumed from a saved state, the detector goes on from it.
        let saved = DetectorState { sums: [0.0, 9.0, 0.0, 0.0, 0.0, 0.0, 0.0], quiet: 7, raised: false };
        detector.resume(saved);
        assert_eq!(detector.update(copy).crossed.map(|r| (r.watch, r.value)), Some((Watch::SmallChange, 14.0)));
    }

    /// Each CUSUM is compared with its own threshold: the alignment's,
    /// further below its lower threshold than the size's, crosses first,
    /// and a reading names the CUSUM nearest its threshold.
    #[test]
    fn each_cusum_crosses_its_own_threshold() {
        let params = CusumParams { thresholds: [2.0, 9.0, 9.0, 9.0, 9.0, 11.0, 9.0], ..params(1.0, INDEPENDENT) };
        let mut detector = DriftDetector::new(tables(), params, DetectorState::default()).unwrap();
        let copy = PairStatistics::from_dots(0.0, 1.0, 0.0, 0.0, 0.0);
        let step = detector.update(copy);
        assert_eq!(step.sums, [1.0, 5.0, 0.0, 0.0, 0.0, 5.0, 0.0]);
        assert_eq!(nearest(&step.sums, &params.thresholds), Reading { watch: Watch::SmallChange, value: 5.0, threshold: 9.0 });
        let step = detector.update(copy);
        assert_eq!(step.crossed, Some(Reading { watch: Watch::SmallChange, value: 10.0, threshold: 9.0 }), "10 / 9 beats 2 / 2");
        let slower = CusumParams { thresholds: [1.5, 9.0, 9.0, 9.0, 9.0, 11.0, 9.0], ..params };
        let mut detector = detector.with_params(slower).unwrap();
        detector.update(copy);
        let change = detector.update(copy).change.unwrap();
        assert_eq!((change.watch, change.value, change.threshold), (Watch::LowAlignment, 2.0, 1.5), "2 / 1.5 beats 10 / 9");
        let bad = CusumParams { thresholds: [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0], ..params };
        assert_eq!(DriftDetector::new(tables(), bad, DetectorState::default()), Err(DetectorError::Parameter));
    }

    /// A change outside the reference basis raises the two off-span CUSUMs
    /// alone when its alignment and size are those of a good pair (with
    /// independent scores they add the same; the residual's, first in
    /// [`Watch::ALL`], is named on the tie).
    #[test]
    fn changes_outside_the_span_are_watched() {
        let mut detector = DriftDetector::new(tables(), params(6.0, INDEPENDENT), DetectorState::default()).unwrap();
        // The basis spans the first axis; a change along the second is all outside it.
        let (w, basis) = ([1.0f32, 1.0], [1.0f32, 0.0]);
        let outside = PairStatistics::of(&w, basis, &[0.0, 3.0], 0.5);
        assert!((outside.off_span - 1.0).abs() < 1e-12 && (outside.alignment - core::f64::consts::FRAC_1_SQRT_2).abs() < 1e-7);
        assert_eq!(outside.log_extent, 0.5f64.ln());
        let pair = PairStatistics { alignment: 2.0, log_size: 2.0, off_span: 5.0, log_extent: 2.0 };
        assert_eq!(detector.scores(pair), [1.0, 1.0, 2.5, 1.0]);
        for _ in 0..4 {
            assert_eq!(detector.update(pair).crossed, None);
        }
        assert_eq!(detector.state().sums, [0.0, 0.0, 0.0, 6.0, 0.0, 0.0, 6.0], "1.5 a pair, on both off-span CUSUMs");
        assert_eq!(detector.update(pair).crossed.map(|r| (r.watch, r.value)), Some((Watch::OutsideSpan, 7.5)));
    }

    /// A change over most of the image raises the wide-change CUSUM alone
    /// when its embedding statistics are those of a good pair; a NaN
    /// extent is no evidence either way.
    #[test]
    fn wide_changes_are_watched_by_their_pixel_extent() {
        let mut detector = DriftDetector::new(tables(), params(6.0, INDEPENDENT), DetectorState::default()).unwrap();
        let wide = PairStatistics { alignment: 2.0, log_size: 2.0, off_span: 0.5, log_extent: 5.0 };
        assert_eq!(detector.scores(wide), [1.0, 1.0, -1.0, 2.5]);
        for _ in 0..4 {
            assert_eq!(detector.update(wide).crossed, None);
        }
        assert_eq!(detector.state().sums, [0.0, 0.0, 0.0, 0.0, 6.0, 0.0, 0.0]);
        assert_eq!(detector.update(wide).crossed.map(|r| (r.watch, r.value)), Some((Watch::WideChange, 7.5)));
        let unknown = PairStatistics::from_dots(1.0, 1.0, 1.0, 1.0, f64::NAN);
        assert!(unknown.log_extent.is_nan());
        assert_eq!(detector.scores(unknown)[3], 0.0);
        assert_eq!(log_extent(0.25), 0.25f64.ln());
        assert_eq!(log_extent(-1.0), MIN_EXTENT.ln());
    }

    #[test]
    fn energy_in_basis_sums_the_squared_projections_on_each_row() {
        let d = [1.0f32, 2.0, 3.0];
        assert_eq!(energy_in_basis([1.0f32, 0.0, 0.0, 0.0, 0.0, 1.0], &d), 1.0 + 9.0);
        assert_eq!(energy_in_basis([0.0f32, 1.0, 0.0, 1.0], &d), 4.0, "an incomplete last row is ignored");
        assert_eq!(energy_in_basis([1.0f32; 3], &[]), 0.0);
        assert!((off_span_of_energies(14.0, 10.0) - (4.0f64 / 14.0).sqrt()).abs() < 1e-12);
        assert_eq!(off_span_of_energies(0.0, 0.0), 0.0, "no change: nothing outside");
        assert_eq!(off_span_of_energies(1.0, 1.0 + 1e-9), 0.0, "rounding cannot make it NaN");
    }

    /// With correlated scores each CUSUM adds up its score's residual given
    /// the others: a pair whose size is low and whose alignment is as low as
    /// that size predicts is no evidence of low alignment.
    #[test]
    fn correlated_scores_are_watched_by_their_residuals() {
        let (rho, scale) = (0.6, 0.8);
        let rows =
            [[1.0 / scale, -rho / scale, 0.0, 0.0], [-rho / scale, 1.0 / scale, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]];
        let detector = DriftDetector::new(tables(), params(100.0, rows), DetectorState::default()).unwrap();
        let [a, s, o, e] = detector.residuals([-1.2, -2.0, 0.3, -0.4]);
        assert!(a.abs() < 1e-12, "-1.2 is what a size score of -2 predicts: {a}");
        assert!((s - (-2.0 + 0.6 * 1.2) / 0.8).abs() < 1e-12);
        assert_eq!((o, e), (0.3, -0.4));
        assert_eq!(detector.residuals([-6.0, 6.0, 9.0, -7.0]), [-SCORE_CAP, SCORE_CAP, SCORE_CAP, -SCORE_CAP], "clamped");
        let mut detector = detector;
        let step = detector.update_scores([-1.2, -2.0, 0.0, 0.0]);
        assert_eq!(step.sums[0], 0.0);
        assert!((step.sums[1] - (1.6 - 1.0)).abs() < 1e-12, "{:?}", step.sums);
    }

    /// A change that leaves the span as far as its smaller size predicts
    /// is no evidence to the off span's residual, but its own score still
    /// adds up in the seventh CUSUM (a shrunk transplant).
    #[test]
    fn the_off_span_alone_sees_what_the_size_explains_away() {
        let (beta, scale) = (-0.6, 0.8);
        let rows = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, -beta / scale, 1.0 / scale, 0.0], [0.0, 0.0, 0.0, 1.0]];
        let mut detector = DriftDetector::new(tables(), params(100.0, rows), DetectorState::default()).unwrap();
        let shrunk_outside = [0.0, -2.5, 1.5, 0.0];
        let evidence = detector.evidence(shrunk_outside);
        assert!(evidence[3].abs() < 1e-12, "1.5 is what a size score of -2.5 predicts: {}", evidence[3]);
        assert_eq!(evidence[6], 1.5);
        assert_eq!(detector.evidence([0.0, 0.0, 9.0, 0.0])[6], SCORE_CAP, "clamped");
        let step = detector.update_scores(shrunk_outside);
        assert_eq!((step.sums[3], step.sums[6]), (0.0, 0.5), "k 1 off each");
    }
}
