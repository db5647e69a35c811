//! The parts of a calibration bundle the monitoring uses, decoded once and
//! owned: the standardization, the probe, the reference basis and its seeds,
//! the window and the drift detector in its start state.

use anyhow::{bail, Context, Result};
use sha2::Digest;
use spanwatch_core::bundle::Bundle;
use spanwatch_core::detector::{DetectorState, DriftDetector};
use spanwatch_core::span::Solver;
use std::path::Path;

/// The parts of a calibration bundle the edge uses, owned.
#[derive(Clone, Debug)]
pub struct Calibration {
    /// sha256 of the bundle file, hex: the saved window belongs to it.
    pub digest: String,
    /// The model's manifest name.
    pub model_name: String,
    /// sha256 of the model file.
    pub model_sha256: [u8; 32],
    /// Embedding dimension.
    pub dim: usize,
    /// The calibrated generator.
    pub generator: String,
    /// The span score the edge computes over its window.
    pub solver: Solver,
    /// Per-dimension standard deviation of the real embeddings (the mean
    /// cancels in a difference).
    pub sigma: Vec<f32>,
    /// The probe in standardized space.
    pub w: Vec<f32>,
    /// Seeds s_j v_j / sqrt(n) of the reference basis (a typical pair's size).
    pub seeds: Vec<Vec<f32>>,
    /// The reference basis, k x d row-major: each pair's off-span share is
    /// measured against it.
    pub basis: Vec<f32>,
    /// Pairs in the window.
    pub window: usize,
    /// The drift detector, in its start state.
    pub detector: DriftDetector,
    /// Good pairs between false alarms the detector was calibrated for (ARL0).
    pub false_alarm_every: u32,
}

impl Calibration {
    /// Reads and checks a bundle file.
    pub fn load(path: &Path) -> Result<Calibration> {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read the calibration bundle {}", path.display()))?;
        Calibration::from_bytes(&bytes).with_context(|| format!("calibration bundle {}", path.display()))
    }

    /// Decodes and checks a bundle's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Calibration> {
        let bundle = Bundle::decode(bytes)?;
        if bundle.generator.len() > spanwatch_core::bundle::MAX_GENERATOR_NAME {
            bail!(
                "its generator name is {} bytes, more than the {} an alert message can carry; calibrate again",
                bundle.generator.len(),
                spanwatch_core::bundle::MAX_GENERATOR_NAME
            );
        }
        let d = bundle.model.dim as usize;
        let detector = bundle.detector.detector(DetectorState::default())?;
        let seeds = (0..bundle.rank())
            .map(|j| {
                let mut seed = vec![0.0; d];
                bundle.seed_into(j, &mut seed);
                seed
            })
            .collect();
        Ok(Calibration {
            digest: hex::encode(sha2::Sha256::digest(bytes)),
            model_name: bundle.model.name.to_string(),
            model_sha256: bundle.model.sha256,
            dim: d,
            generator: bundle.generator.to_string(),
            solver: bundle.solver,
            sigma: bundle.sigma.to_vec(),
            w: bundle.w.to_vec(),
            seeds,
            basis: bundle.basis.to_vec(),
            window: bundle.window as usize,
            detector,
            false_alarm_every: bundle.detector.false_alarm_every,
        })
    }
}
