//! The calibration bundle: everything the edge monitor needs from the host,
//! in one compact, checksummed binary file.
//!
//! Layout (all integers little-endian):
//!
//! | bytes        | content                                        |
//! |--------------|------------------------------------------------|
//! | 0..8         | magic `SPANWTCH`                               |
//! | 8..10        | format version (u16), currently [`FORMAT_VERSION`] |
//! | 10..14       | payload length n (u32)                         |
//! | 14..14+n     | payload: a [`Bundle`] encoded with postcard    |
//! | 14+n..18+n   | CRC-32 (ISO-HDLC) of bytes 0..14+n             |
//!
//! Vectors are stored as little-endian f32 bytes ([`F32Le`]) and borrowed from
//! the file buffer when decoding, so a device can read a bundle straight from
//! flash without an allocator.

use crate::detector::{CusumParams, DetectorError, DetectorState, DriftDetector, NormalScores, ScoreTables, SCORES, WATCHES};
use crate::span::{Solver, SpanScore};
use core::fmt;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The first eight bytes of every bundle file.
pub const MAGIC: [u8; 8] = *b"SPANWTCH";
/// The bundle format version this build reads and writes.
pub const FORMAT_VERSION: u16 = 9;
/// Longest generator name a bundle should carry, in bytes: it goes into
/// every alert message, which must fit a broker's packet limit.
pub const MAX_GENERATOR_NAME: usize = 128;
const HEADER_LEN: usize = 14;
const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// A read-only view of little-endian f32 values stored as bytes.
#[derive(Clone, Copy, PartialEq)]
pub struct F32Le<'a>(&'a [u8]);

impl<'a> F32Le<'a> {
    /// Wraps bytes that hold little-endian f32 values (length a multiple of 4).
    pub fn from_bytes(bytes: &'a [u8]) -> Option<Self> {
        bytes.len().is_multiple_of(4).then_some(F32Le(bytes))
    }
    /// Number of values.
    pub fn len(&self) -> usize {
        self.0.len() / 4
    }
    /// True when there are no values.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The values in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = f32> + 'a {
        self.0.as_chunks::<4>().0.iter().map(|c| f32::from_le_bytes(*c))
    }
    /// Copies the values into `out`, which must have exactly [`Self::len`] slots.
    pub fn copy_into(&self, out: &mut [f32]) {
        assert_eq!(out.len(), self.len(), "F32Le::copy_into: length mismatch");
        out.iter_mut().zip(self.iter()).for_each(|(o, v)| *o = v);
    }
    /// The values as an owned vector.
    #[cfg(feature = "std")]
    pub fn to_vec(&self) -> std::vec::Vec<f32> {
        self.iter().collect()
    }
    /// Encodes values as little-endian bytes, for building a bundle to write.
    #[cfg(feature = "std")]
    pub fn encode(values: &[f32]) -> std::vec::Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }
}

impl fmt::Debug for F32Le<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "F32Le[{} values]", self.len())
    }
}

impl Serialize for F32Le<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for F32Le<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bytes = <&'de [u8]>::deserialize(deserializer)?;
        F32Le::from_bytes(bytes).ok_or_else(|| serde::de::Error::custom("f32 array length is not a multiple of 4"))
    }
}

/// Which embedding model a bundle was calibrated with.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelIdentity<'a> {
    /// sha256 of the ONNX file.
    pub sha256: [u8; 32],
    /// The model's manifest name.
    pub name: &'a str,
    /// Embedding dimension d.
    pub dim: u32,
}

/// A normal-score table as the bundle stores it: the calibration
/// quantiles of one per-pair statistic and their normal scores (see
/// [`NormalScores`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoreTable<'a> {
    /// The statistic's values at the knots, non-decreasing.
    #[serde(borrow)]
    pub values: F32Le<'a>,
    /// Their normal scores, increasing.
    #[serde(borrow)]
    pub scores: F32Le<'a>,
    /// The tail scale: past the outer knots a score moves by 1 per this much of the statistic.
    pub tail: f64,
}

impl ScoreTable<'_> {
    /// The table the detector evaluates.
    pub fn normal_scores(&self) -> Result<NormalScores, DetectorError> {
        NormalScores::new(self.values.iter(), self.scores.iter(), self.tail)
    }
}

/// The drift detector's calibration (see [`crate::detector`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetectorSpec<'a> {
    /// Normal scores of the pairs' alignments with w (cross-fitted: each
    /// calibration pair scored with a probe that did not see its source).
    #[serde(borrow)]
    pub alignment: ScoreTable<'a>,
    /// Normal scores of the pairs' log change sizes.
    #[serde(borrow)]
    pub size: ScoreTable<'a>,
    /// Normal scores of the pairs' shares outside the reference basis
    /// (cross-fitted: each against a basis fitted without its fold's pairs).
    #[serde(borrow)]
    pub off_span: ScoreTable<'a>,
    /// Normal scores of the pairs' log pixel extents ([`crate::extent`]).
    #[serde(borrow)]
    pub extent: ScoreTable<'a>,
    /// The alignment CUSUM's reference value k (normal-score units).
    pub alignment_k: f64,
    /// The change-size CUSUMs' reference value k.
    pub size_k: f64,
    /// The off-span CUSUM's reference value k.
    pub off_span_k: f64,
    /// The pixel-extent CUSUMs' reference value k.
    pub extent_k: f64,
    /// Row i: score i's residual given the others, as coefficients of the
    /// four normal scores (see [`CusumParams::residuals`]).
    pub residuals: [[f64; SCORES]; SCORES],
    /// Each CUSUM's threshold, in the order of [`crate::detector::Watch::ALL`].
    pub thresholds: [f64; WATCHES],
    /// The shift of the line's good pairs' change size and pixel extent, in
    /// standard deviations of their residuals, that the size and extent
    /// CUSUMs' thresholds were set to tolerate.
    pub size_margin: f64,
    /// Quiet pairs in a row that clear a raised alert.
    pub clear_after: u32,
    /// The target it was calibrated for: good pairs between false alarms (ARL0).
    pub false_alarm_every: u32,
    /// The ARL0 the threshold simulation measured at the thresholds, in good pairs.
    pub simulated_every: f64,
}

impl DetectorSpec<'_> {
    /// The CUSUM tuning.
    pub fn params(&self) -> CusumParams {
        CusumParams {
            alignment_k: self.alignment_k,
            size_k: self.size_k,
            off_span_k: self.off_span_k,
            extent_k: self.extent_k,
            residuals: self.residuals,
            thresholds: self.thresholds,
            clear_after: self.clear_after,
        }
    }

    /// The detector, in `state`.
    pub fn detector(&self, state: DetectorState) -> Result<DriftDetector, DetectorError> {
        let tables = ScoreTables {
            alignment: self.alignment.normal_scores()?,
            size: self.size.normal_scores()?,
            off_span: self.off_span.normal_scores()?,
            extent: self.extent.normal_scores()?,
        };
        DriftDetector::new(tables, self.params(), state)
    }
}

/// The calibration bundle's content.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bundle<'a> {
    /// The embedding model the bundle belongs to.
    #[serde(borrow)]
    pub model: ModelIdentity<'a>,
    /// Name of the synthetic generator calibrated against.
    pub generator: &'a str,
    /// Solver the edge uses to score its span.
    pub solver: Solver,
    /// Number of calibration pairs.
    pub n_pairs: u32,
    /// Per-dimension mean of the real embeddings (d values).
    #[serde(borrow)]
    pub mu: F32Le<'a>,
    /// Per-dimension standard deviation of the real embeddings, constant
    /// dimensions already set to 1 (d values).
    #[serde(borrow)]
    pub sigma: F32Le<'a>,
    /// Reference probe weights in standardized space (d values).
    #[serde(borrow)]
    pub w: F32Le<'a>,
    /// Reference difference basis: top-k right singular vectors, row-major
    /// k x d, each signed so that the calibration differences project on it
    /// positively on average (the edge seeds its cone with s_j v_j).
    #[serde(borrow)]
    pub basis: F32Le<'a>,
    /// The k singular values belonging to `basis`.
    #[serde(borrow)]
    pub singular_values: F32Le<'a>,
    /// The calibration set's own score with `solver`.
    pub reference: SpanScore,
    /// Recent pairs the edge scores together (its window's DS, k and mean
    /// alignment, reported with every pair).
    pub window: u32,
    /// The drift detector.
    #[serde(borrow)]
    pub detector: DetectorSpec<'a>,
}

/// Why a bundle could not be read or used.
#[derive(Clone, Debug, PartialEq)]
pub enum BundleError {
    /// Shorter than a header and checksum.
    TooShort(usize),
    /// Does not start with [`MAGIC`]: not a spanwatch bundle.
    BadMagic,
    /// Written in a format version this build does not read.
    UnsupportedVersion(u16),
    /// The header's payload length does not match the file's length.
    LengthMismatch {
        /// Payload length in the header.
        declared: usize,
        /// Payload bytes actually present.
        present: usize,
    },
    /// The stored checksum does not match the content: corrupt or truncated.
    ChecksumMismatch {
        /// The checksum in the file.
        stored: u32,
        /// The checksum of the content.
        computed: u32,
    },
    /// The payload does not decode.
    Malformed,
    /// Decoded, but its parts disagree (e.g. mu has fewer values than d).
    Inconsistent(&'static str),
    /// The bundle belongs to another model or dimension than the one in use.
    ModelMismatch {
        /// The bundle's model name.
        bundle_model: [u8; 32],
        /// The bundle's dimension.
        bundle_dim: u32,
        /// The model in use.
        actual_model: [u8; 32],
        /// The dimension in use.
        actual_dim: u32,
    },
}

impl core::error::Error for BundleError {}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BundleError::TooShort(n) => write!(f, "only {n} bytes: too short to be a spanwatch bundle"),
            BundleError::BadMagic => write!(f, "not a spanwatch calibration bundle (bad magic bytes)"),
            BundleError::UnsupportedVersion(v) => {
                write!(f, "bundle format version {v} is not supported (this build reads version {FORMAT_VERSION}): calibrate again with this release's spanwatch calibrate")
            }
            BundleError::LengthMismatch { declared, present } => {
                write!(f, "bundle is truncated or padded: header declares {declared} payload bytes, {present} present")
            }
            BundleError::ChecksumMismatch { stored, computed } => {
                write!(f, "bundle is corrupt: checksum {stored:08x} stored, {computed:08x} computed")
            }
            BundleError::Malformed => write!(f, "bundle payload does not decode"),
            BundleError::Inconsistent(what) => write!(f, "bundle is inconsistent: {what}"),
            BundleError::ModelMismatch { bundle_model, bundle_dim, actual_model, actual_dim } => write!(
                f,
                "bundle was calibrated for model sha256 {}.. (d = {bundle_dim}), but the model in use is {}.. (d = {actual_dim})",
                Hex8(bundle_model),
                Hex8(actual_model)
            ),
        }
    }
}

/// Prints the first 8 bytes of a digest as hex.
struct Hex8<'a>(&'a [u8; 32]);

impl fmt::Display for Hex8<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0[..8].iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl<'a> Bundle<'a> {
    /// Reads and validates a bundle from the bytes of a bundle file.
    pub fn decode(file: &'a [u8]) -> Result<Bundle<'a>, BundleError> {
        if file.len() < HEADER_LEN + 4 {
            return Err(BundleError::TooShort(file.len()));
        }
        if file[..8] != MAGIC {
            return Err(BundleError::BadMagic);
        }
        let version = u16::from_le_bytes([file[8], file[9]]);
        if version != FORMAT_VERSION {
            return Err(BundleError::UnsupportedVersion(version));
        }
        let declared = u32::from_le_bytes([file[10], file[11], file[12], file[13]]) as usize;
        let present = file.len() - HEADER_LEN - 4;
        if declared != present {
            return Err(BundleError::LengthMismatch { declared, present });
        }
        let (content, checksum) = file.split_at(HEADER_LEN + declared);
        let stored = u32::from_le_bytes([checksum[0], checksum[1], checksum[2], checksum[3]]);
        let computed = CRC32.checksum(content);
        if stored != computed {
            return Err(BundleError::ChecksumMismatch { stored, computed });
        }
        let bundle: Bundle<'a> = postcard::from_bytes(&content[HEADER_LEN..]).map_err(|_| BundleError::Malformed)?;
        bundle.validate()?;
        Ok(bundle)
    }

    /// Writes seed j (< [`Self::rank`]), s_j v_j / sqrt(n_pairs) (basis
    /// vector j at the size of a typical calibration pair), into `out` (d
    /// values): the vectors an edge tracker starts its window with, so its
    /// first pairs are judged against calibration. Returns false, writing
    /// nothing, for a j or `out` that does not fit the bundle.
    pub fn seed_into(&self, j: usize, out: &mut [f32]) -> bool {
        let d = self.model.dim as usize;
        let (Some(s), Some(row)) = (self.singular_values.iter().nth(j), self.basis.0.get(j * d * 4..(j + 1) * d * 4)) else {
            return false;
        };
        if out.len() != d {
            return false;
        }
        let scale = 1.0 / libm::sqrtf(self.n_pairs.max(1) as f32);
        out.iter_mut().zip(F32Le(row).iter()).for_each(|(o, v)| *o = v * s * scale);
        true
    }

    /// Checks that the parts of the bundle agree with each other.
    pub fn validate(&self) -> Result<(), BundleError> {
        let d = self.model.dim as usize;
        let k = self.singular_values.len();
        let fail = |what| Err(BundleError::Inconsistent(what));
        if d == 0 {
            return fail("embedding dimension is 0");
        }
        if self.mu.len() != d || self.sigma.len() != d || self.w.len() != d {
            return fail("mu, sigma and w must each hold d values");
        }
        if k == 0 || self.basis.len() != k * d {
            return fail("basis must hold k x d values for k >= 1 singular values");
        }
        let all_finite = [self.mu, self.sigma, self.w, self.basis, self.singular_values].iter().all(|v| v.iter().all(f32::is_finite));
        if !all_finite {
            return fail("a vector holds NaN or infinite values");
        }
        if self.sigma.iter().any(|s| s <= 0.0) {
            return fail("sigma holds a value <= 0");
        }
        if self.window == 0 {
            return fail("the window must hold at least 1 pair");
        }
        if self.detector.detector(DetectorState::default()).is_err() || !(self.detector.simulated_every >= 0.0) {
            return fail("the drift detector's tables or parameters are invalid");
        }
        Ok(())
    }

    /// Refuses a bundle calibrated for another model or embedding dimension.
    pub fn check_model(&self, sha256: &[u8; 32], dim: usize) -> Result<(), BundleError> {
        if &self.model.sha256 == sha256 && self.model.dim as usize == dim {
            Ok(())
        } else {
            Err(BundleError::ModelMismatch {
                bundle_model: self.model.sha256,
                bundle_dim: self.model.dim,
                actual_model: *sha256,
                actual_dim: dim as u32,
            })
        }
    }

    /// Number of basis vectors k.
    pub fn rank(&self) -> usize {
        self.singular_values.len()
    }

    /// Encodes the bundle as a complete bundle file.
    #[cfg(feature = "std")]
    pub fn encode(&self) -> Result<std::vec::Vec<u8>, BundleError> {
        self.validate()?;
        let payload = postcard::to_stdvec(self).map_err(|_| BundleError::Malformed)?;
        Ok(frame(&payload))
    }
}

/// Wraps a postcard payload as a bundle file: magic, version, length,
/// payload, CRC-32. Fuzzing and property tests use it to reach the payload
/// decoder past the checksum.
#[cfg(feature = "std")]
pub fn frame(payload: &[u8]) -> std::vec::Vec<u8> {
    let mut file = std::vec::Vec::with_capacity(HEADER_LEN + payload.len() + 4);
    file.extend_from_slice(&MAGIC);
    file.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    file.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    file.extend_from_slice(payload);
    let checksum = CRC32.checksum(&file);
    file.extend_from_slice(&checksum.to_le_bytes());
    file
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use std::vec::Vec;

    struct Parts {
        mu: Vec<u8>,
        sigma: Vec<u8>,
        w: Vec<u8>,
        basis: Vec<u8>,
        s: Vec<u8>,
        values: Vec<u8>,
        scores: Vec<u8>,
    }

    fn parts() -> Parts {
        Parts {
            mu: F32Le::encode(&[0.5, -1.0, 2.0]),
            sigma: F32Le::encode(&[1.0, 2.0, 0.5]),
            w: F32Le::encode(&[0.3, 0.4, -0.1]),
            basis: F32Le::encode(&[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]),
            s: F32Le::encode(&[4.0, 2.0]),
            values: F32Le::encode(&[-0.5, 0.1, 0.2]),
            scores: F32Le::encode(&[-1.0, 0.0, 1.0]),
        }
    }

    fn bundle(p: &Parts) -> Bundle<'_> {
        fn f(b: &[u8]) -> F32Le<'_> {
            F32Le::from_bytes(b).unwrap()
        }
        Bundle {
            model: ModelIdentity { sha256: [7; 32], name: "test-model", dim: 3 },
            generator: "faithful",
            solver: Solver::Ridge { lambda: 0.01 },
            n_pairs: 12,
            mu: f(&p.mu),
            sigma: f(&p.sigma),
            w: f(&p.w),
            basis: f(&p.basis),
            singular_values: f(&p.s),
            reference: SpanScore { rpe: 0.2, ds: 0.8, capture: 0.9, chance_ds: 0.1, corrected: 0.8 },
            window: 8,
            detector: DetectorSpec {
                alignment: ScoreTable { values: f(&p.values), scores: f(&p.scores), tail: 0.3 },
                size: ScoreTable { values: f(&p.values), scores: f(&p.scores), tail: 0.5 },
                off_span: ScoreTable { values: f(&p.values), scores: f(&p.scores), tail: 0.1 },
                extent: ScoreTable { values: f(&p.values), scores: f(&p.scores), tail: 0.7 },
                alignment_k: 0.5,
                size_k: 1.0,
                off_span_k: 1.0,
                extent_k: 1.0,
                residuals: [[1.0, 0.25, 0.0, 0.0], [0.25, 1.0, 0.0, 0.0], [-0.1, 0.2, 1.1, 0.0], [0.0, 0.0, 0.0, 1.0]],
                thresholds: [9.0, 6.5, 7.0, 11.0, 8.0, 8.5, 12.0],
                size_margin: 0.25,
                clear_after: 40,
                false_alarm_every: 30_000,
                simulated_every: 31_000.0,
            },
        }
    }

    #[test]
    fn round_trip_preserves_every_field() {
        let p = parts();
        let original = bundle(&p);
        let bytes = original.encode().unwrap();
        let decoded = Bundle::decode(&bytes).unwrap();
        assert_eq!(decoded, original);
        assert_eq!(decoded.w.to_vec(), [0.3, 0.4, -0.1]);
        assert_eq!(decoded.rank(), 2);
    }

    #[test]
    fn seeds_are_basis_vectors_at_a_typical_pair_size() {
        let p = parts();
        let b = bundle(&p);
        let mut seed = [0.0f32; 3];
        assert!(b.seed_into(1, &mut seed));
        // s_1 v_1 / sqrt(n_pairs) = 2 * (0, 1, 0) / sqrt(12).
        assert_eq!((seed[0], seed[2]), (0.0, 0.0));
        assert!((seed[1] - 2.0 / 12f32.sqrt()).abs() < 1e-6, "{seed:?}");
        assert!(!b.seed_into(2, &mut seed), "only k = 2 seeds");
        assert!(!b.seed_into(0, &mut [0.0; 2]), "wrong length");
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let p = parts();
        let bytes = bundle(&p).encode().unwrap();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x20;
            assert!(Bundle::decode(&bad).is_err(), "flipping byte {i} went unnoticed");
        }
    }

    #[test]
    fn truncation_and_foreign_files_are_named() {
        let p = parts();
        let bytes = bundle(&p).encode().unwrap();
        assert!(matches!(Bundle::decode(&bytes[..bytes.len() - 1]), Err(BundleError::LengthMismatch { .. })));
        assert_eq!(Bundle::decode(b"\x89PNG\r\n\x1a\n0000000000000"), Err(BundleError::BadMagic));
        assert_eq!(Bundle::decode(b"SPAN"), Err(BundleError::TooShort(4)));
        let mut older = bytes.clone();
        older[8] = 2;
        assert_eq!(Bundle::decode(&older), Err(BundleError::UnsupportedVersion(2)));
        assert!(std::format!("{}", BundleError::UnsupportedVersion(2)).contains("calibrate again"));
    }

    #[test]
    fn model_mismatch_is_refused() {
        let p = parts();
        let b = bundle(&p);
        assert!(b.check_model(&[7; 32], 3).is_ok());
        let err = b.check_model(&[8; 32], 3).unwrap_err();
        assert!(std::format!("{err}").contains("0707070707070707"));
        assert!(b.check_model(&[7; 32], 384).is_err());
    }

    #[test]
    fn inconsistent_parts_are_refused_on_encode() {
        let mut p = parts();
        p.mu = F32Le::encode(&[0.0, 1.0]);
        assert!(matches!(bundle(&p).encode(), Err(BundleError::Inconsistent(_))));
        let mut p = parts();
        p.w = F32Le::encode(&[f32::NAN, 0.0, 0.0]);
        assert!(matches!(bundle(&p).encode(), Err(BundleError::Inconsistent(_))));
        let mut p = parts();
        p.scores = F32Le::encode(&[1.0, 0.0, -1.0]);
        assert!(matches!(bundle(&p).encode(), Err(BundleError::Inconsistent(_))), "scores must increase");
    }

    // The properties of the fuzz target fuzz/fuzz_targets/bundle_decode.rs.
    proptest::proptest! {
        #[test]
        fn any_bytes_decode_to_a_valid_bundle_or_an_error(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            for file in [bytes.clone(), frame(&bytes)] {
                if let Ok(bundle) = Bundle::decode(&file) {
                    proptest::prop_assert!(bundle.validate().is_ok());
                }
            }
        }

        #[test]
        fn an_edited_payload_past_the_checksum_decodes_to_a_valid_bundle_or_an_error(
            edits in proptest::collection::vec((proptest::prelude::any::<proptest::sample::Index>(), proptest::prelude::any::<u8>()), 1..6),
            cut in proptest::prelude::any::<proptest::sample::Index>(),
        ) {
            let p = parts();
            let file = bundle(&p).encode().unwrap();
            let mut payload = file[HEADER_LEN..file.len() - 4].to_vec();
            for (at, value) in &edits {
                let i = at.index(payload.len());
                payload[i] = *value;
            }
            for candidate in [payload.clone(), payload[..cut.index(payload.len())].to_vec()] {
                if let Ok(decoded) = Bundle::decode(&frame(&candidate)) {
                    proptest::prop_assert!(decoded.validate().is_ok());
                    let mut seed = std::vec![0.0f32; decoded.model.dim as usize];
                    for j in 0..decoded.rank() {
                        proptest::prop_assert!(decoded.seed_into(j, &mut seed));
                    }
                }
            }
        }
    }
}
