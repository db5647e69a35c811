//! The drift alert's state (raised and cleared by [`crate::detector`]) and
//! the per-pair verdict.

/// Whether the drift alert is up; `clear` or `raised` in messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AlertState {
    /// No CUSUM has crossed its threshold, or the stream has been quiet
    /// long enough since the last crossing.
    Clear,
    /// A CUSUM crossed its threshold, and the stream has not been quiet since.
    Raised,
}

impl AlertState {
    /// Its name in messages and logs: "clear" or "raised".
    pub fn name(&self) -> &'static str {
        match self {
            AlertState::Clear => "clear",
            AlertState::Raised => "raised",
        }
    }
}

impl core::fmt::Display for AlertState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// The verdict on one synthetic "defect".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PairVerdict {
    /// Its change points toward the defect side of the probe.
    Useful,
    /// Its change points away from the defect side, or there is no change
    /// (alignment <= 0): useless or harmful on its own.
    Opposed,
}

/// The verdict for a pair with this alignment (`None`: no change at all).
pub fn pair_verdict(alignment: Option<f64>) -> PairVerdict {
    match alignment {
        Some(a) if a > 0.0 => PairVerdict::Useful,
        _ => PairVerdict::Opposed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        assert_eq!(pair_verdict(Some(0.01)), PairVerdict::Useful);
        assert_eq!(pair_verdict(Some(0.0)), PairVerdict::Opposed);
        assert_eq!(pair_verdict(Some(-0.4)), PairVerdict::Opposed);
        assert_eq!(pair_verdict(None), PairVerdict::Opposed);
    }
}
