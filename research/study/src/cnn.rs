//! Downstream truth from pixels: a small CNN trained on real negatives plus a
//! generator's synthetic positives, tested on held-out real images.
//!
//! Tiles are downscaled to 40 x 40 grey levels (64 x 64 for the 300 px
//! solar cells, whose cracks are 1 to 3 px wide). The network is three 3x3
//! convolutions (8, 16, 16 channels; ReLU; 2x2 max pooling after the first
//! two), global max pooling (a defect is a small structure anywhere in the
//! tile) and one linear output, trained for a fixed number of epochs with
//! AdamW on a class-balanced logistic loss. Weights are initialized from a
//! seeded generator (He normal) and batches shuffled with it, so every run is
//! reproducible; the truth is the mean over seeds.

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use image::imageops::FilterType;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use spanwatch_calibrate::stats::{auroc, f1};
use std::path::Path;

/// Input side in pixels of the drawn study's tiles.
pub const SIDE: u32 = 40;
const EPOCHS: usize = 8;
const BATCH: usize = 32;
const CHANNELS: [usize; 3] = [8, 16, 16];

/// Reads an image as a `side` x `side` grey tile, scaled to about zero mean and unit spread.
pub fn load_pixels(path: &Path, side: u32) -> Result<Vec<f32>> {
    let image = image::open(path).with_context(|| format!("cannot read {}", path.display()))?.to_luma8();
    let small = image::imageops::resize(&image, side, side, FilterType::Triangle);
    Ok(small.pixels().map(|p| (p[0] as f32 / 255.0 - 0.5) / 0.25).collect())
}

struct Network {
    convs: Vec<(Var, Var)>,
    out_w: Var,
    out_b: Var,
}

fn he_normal(rng: &mut StdRng, shape: &[usize], fan_in: usize) -> Result<Var> {
    let std = (2.0 / fan_in as f32).sqrt();
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n)
        .map(|_| {
            let (u1, u2): (f32, f32) = (rng.random_range(f32::EPSILON..1.0), rng.random_range(0.0..1.0));
            std * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
        })
        .collect();
    Ok(Var::from_tensor(&Tensor::from_vec(values, shape, &Device::Cpu)?)?)
}

impl Network {
    fn new(rng: &mut StdRng) -> Result<Network> {
        let mut convs = Vec::new();
        let mut inputs = 1;
        for &c in &CHANNELS {
            convs.push((he_normal(rng, &[c, inputs, 3, 3], inputs * 9)?, Var::zeros(c, DType::F32, &Device::Cpu)?));
            inputs = c;
        }
        Ok(Network { convs, out_w: he_normal(rng, &[inputs, 1], inputs)?, out_b: Var::zeros(1, DType::F32, &Device::Cpu)? })
    }

    fn vars(&self) -> Vec<Var> {
        self.convs.iter().flat_map(|(w, b)| [w.clone(), b.clone()]).chain([self.out_w.clone(), self.out_b.clone()]).collect()
    }

    /// Logits for a batch (B, 1, side, side) -> (B,).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for (i, (w, b)) in self.convs.iter().enumerate() {
            h = h.conv2d(w.as_tensor(), 1, 1, 1, 1)?.broadcast_add(&b.as_tensor().reshape((1, (), 1, 1))?)?.relu()?;
            if i + 1 < self.convs.len() {
                h = h.max_pool2d(2)?;
            }
        }
        let pooled = h.max(D::Minus1)?.max(D::Minus1)?;
        Ok(pooled.matmul(self.out_w.as_tensor())?.broadcast_add(self.out_b.as_tensor())?.squeeze(1)?)
    }
}

fn batch(images: &[&[f32]], indices: &[usize], side: usize) -> Result<Tensor> {
    let data: Vec<f32> = indices.iter().flat_map(|&i| images[i].iter().copied()).collect();
    Ok(Tensor::from_vec(data, (indices.len(), 1, side, side), &Device::Cpu)?)
}

/// Held-out images with their labels (true = defective).
pub type TestSet<'a> = (&'a [&'a [f32]], &'a [bool]);

/// Trains on `negatives` (0) and `positives` (1), `side` x `side` tiles,
/// with `seed`, and returns (F1 at logit 0, AUROC) on each of `tests`.
pub fn train_and_test(negatives: &[&[f32]], positives: &[&[f32]], tests: &[TestSet], side: u32, seed: u64) -> Result<Vec<(f64, f64)>> {
    let side = side as usize;
    let mut rng = StdRng::seed_from_u64(seed);
    let network = Network::new(&mut rng)?;
    let mut optimizer = AdamW::new(network.vars(), ParamsAdamW { lr: 5e-3, weight_decay: 1e-4, ..Default::default() })?;
    let images: Vec<&[f32]> = negatives.iter().chain(positives).copied().collect();
    let n = images.len();
    let target: Vec<f32> = (0..n).map(|i| if i >= negatives.len() { 1.0 } else { 0.0 }).collect();
    // Class-balanced weights, as the probe's: n / (2 n_class).
    let weight: Vec<f32> =
        target.iter().map(|&t| n as f32 / (2.0 * if t > 0.5 { positives.len() } else { negatives.len() } as f32)).collect();
    let mut order: Vec<usize> = (0..n).collect();
    for _ in 0..EPOCHS {
        order.shuffle(&mut rng);
        for chunk in order.chunks(BATCH) {
            let logits = network.forward(&batch(&images, chunk, side)?)?;
            let y = Tensor::from_vec(chunk.iter().map(|&i| target[i]).collect::<Vec<_>>(), chunk.len(), &Device::Cpu)?;
            let w = Tensor::from_vec(chunk.iter().map(|&i| weight[i]).collect::<Vec<_>>(), chunk.len(), &Device::Cpu)?;
            // Stable logistic loss: relu(f) - y f + ln(1 + exp(-|f|)).
            let loss = (logits.relu()? - (&logits * &y)? + logits.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?)?;
            let loss = ((loss * &w)?.sum_all()? / w.sum_all()?.to_scalar::<f32>()? as f64)?;
            optimizer.backward_step(&loss)?;
        }
    }
    tests
        .iter()
        .map(|&(test, labels)| {
            let all: Vec<usize> = (0..test.len()).collect();
            let mut scores = Vec::with_capacity(test.len());
            for chunk in all.chunks(64) {
                scores.extend(network.forward(&batch(test, chunk, side)?)?.to_vec1::<f32>()?.into_iter().map(|s| s as f64));
            }
            let predicted: Vec<bool> = scores.iter().map(|&s| s > 0.0).collect();
            Ok((f1(&predicted, labels), auroc(&scores, labels)))
        })
        .collect()
}
