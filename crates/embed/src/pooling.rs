//! Pooling a spatial model output (a feature map or a sequence of patch
//! tokens) into one embedding vector. Pairs of images are pixel-aligned, so a
//! pooling that keeps a small local change strong (max, GeM) can see a thin
//! defect that global averaging dilutes.

use serde::Deserialize;

/// How the spatial positions of an output are pooled.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// The arithmetic mean over positions (global average pooling).
    Mean,
    /// The maximum over positions.
    Max,
    /// Generalized mean with p = 3 over positions, of values clamped at 1e-6
    /// (Radenovic et al. 2018); for non-negative feature maps only.
    Gem,
    /// The first token of a token sequence (a ViT's class token), as an
    /// intermediate block leaves it; tokens only.
    Cls,
    /// The mean of the tokens after the first (a ViT's patch tokens); tokens
    /// only, at least two.
    PatchMean,
}

/// The exponent of [`Pooling::Gem`].
const GEM_P: f64 = 3.0;
/// The clamp of [`Pooling::Gem`]: GeM is defined on positive values.
const GEM_EPS: f64 = 1e-6;

impl Pooling {
    /// Lower-case name, as in a manifest.
    pub fn name(&self) -> &'static str {
        match self {
            Pooling::Mean => "mean",
            Pooling::Max => "max",
            Pooling::Gem => "gem",
            Pooling::Cls => "cls",
            Pooling::PatchMean => "patch_mean",
        }
    }

    /// Pools `values` laid out as `shape`: [1, C, H, W] (a feature map, pooled
    /// over H and W) or [1, T, C] (tokens, pooled over T), where C = `dim`.
    /// Returns None when the shape is neither, or is a feature map for a
    /// token pooling, or has no patch token for [`Pooling::PatchMean`].
    pub fn apply(&self, values: &[f32], shape: &[usize], dim: usize) -> Option<Vec<f32>> {
        let tokens_only = matches!(self, Pooling::Cls | Pooling::PatchMean);
        let (positions, channel_of): (usize, Box<dyn Fn(usize, usize) -> usize>) = match *shape {
            [1, c, h, w] if c == dim && h * w > 0 && !tokens_only => (h * w, Box::new(move |channel, p| channel * h * w + p)),
            [1, t, c] if c == dim && t > 0 => (t, Box::new(move |channel, p| p * dim + channel)),
            _ => return None,
        };
        if values.len() != positions * dim || (*self == Pooling::PatchMean && positions < 2) {
            return None;
        }
        let pooled = (0..dim)
            .map(|channel| {
                let at = |p: usize| values[channel_of(channel, p)] as f64;
                let n = positions as f64;
                let value = match self {
                    Pooling::Mean => (0..positions).map(at).sum::<f64>() / n,
                    Pooling::Max => (0..positions).map(at).fold(f64::NEG_INFINITY, f64::max),
                    Pooling::Gem => ((0..positions).map(|p| at(p).max(GEM_EPS).powf(GEM_P)).sum::<f64>() / n).powf(1.0 / GEM_P),
                    Pooling::Cls => at(0),
                    Pooling::PatchMean => (1..positions).map(at).sum::<f64>() / (n - 1.0),
                };
                value as f32
            })
            .collect();
        Some(pooled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_maps_and_tokens_pool_per_channel() {
        // Two channels of a 1 x 2 map: [1, 3] and [0, 8].
        let map = [1.0, 3.0, 0.0, 8.0];
        assert_eq!(Pooling::Mean.apply(&map, &[1, 2, 1, 2], 2), Some(vec![2.0, 4.0]));
        assert_eq!(Pooling::Max.apply(&map, &[1, 2, 1, 2], 2), Some(vec![3.0, 8.0]));
        let gem = Pooling::Gem.apply(&map, &[1, 2, 1, 2], 2).unwrap();
        assert!((gem[0] - 14f32.cbrt()).abs() < 1e-5 && (gem[1] - 256f32.cbrt()).abs() < 1e-4, "{gem:?}");
        // The same values as two tokens of two channels: token 0 = [1, 3], token 1 = [0, 8].
        assert_eq!(Pooling::Max.apply(&map, &[1, 2, 2], 2), Some(vec![1.0, 8.0]));
        assert_eq!(Pooling::Mean.apply(&map, &[1, 2, 2], 2), Some(vec![0.5, 5.5]));
        // The class token is token 0; the patch mean averages the tokens after it.
        let tokens = [1.0, 3.0, 0.0, 8.0, 4.0, -2.0];
        assert_eq!(Pooling::Cls.apply(&tokens, &[1, 3, 2], 2), Some(vec![1.0, 3.0]));
        assert_eq!(Pooling::PatchMean.apply(&tokens, &[1, 3, 2], 2), Some(vec![2.0, 3.0]));
        // Token poolings refuse a feature map, and the patch mean a lone token.
        assert_eq!(Pooling::Cls.apply(&map, &[1, 2, 1, 2], 2), None);
        assert_eq!(Pooling::PatchMean.apply(&map[..2], &[1, 1, 2], 2), None);
        // A shape that does not carry `dim` channels is refused.
        assert_eq!(Pooling::Mean.apply(&map, &[1, 4], 2), None);
        assert_eq!(Pooling::Mean.apply(&map, &[1, 3, 1, 2], 2), None);
    }
}
