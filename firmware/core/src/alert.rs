//! When the edge raises and clears its drift alert, and the per-pair verdict.

use crate::bundle::AlertBand;
#[cfg(test)]
use crate::bundle::AlertStatistic;

/// Whether the drift alert is up; `clear` or `raised` in messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AlertState {
    /// The windowed score is inside the calibrated band.
    Clear,
    /// The windowed score fell below the band and has not recovered.
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

/// A change of the alert state, with the score and threshold that caused it.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AlertChange {
    /// The new state.
    pub state: AlertState,
    /// The windowed statistic that crossed the threshold.
    pub value: f64,
    /// The threshold crossed (`raise_below` or `clear_above`).
    pub threshold: f64,
}

/// The band with hysteresis: raised when the score falls below
/// `raise_below`, cleared only when it rises above `clear_above`, and never
/// raised before `min_pairs` real pairs (so the first noisy pairs cannot
/// fire it, and one noisy window cannot flap it).
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AlertPolicy {
    band: AlertBand,
    state: AlertState,
}

impl AlertPolicy {
    /// A clear alert with the bundle's band.
    pub fn new(band: AlertBand) -> AlertPolicy {
        AlertPolicy { band, state: AlertState::Clear }
    }

    /// The band in `state`: a monitor that restarts resumes the state it
    /// had, so a raised alert is cleared by the data, not by a reboot.
    pub fn resume(band: AlertBand, state: AlertState) -> AlertPolicy {
        AlertPolicy { band, state }
    }

    /// The current state.
    pub fn state(&self) -> AlertState {
        self.state
    }

    /// Feeds the windowed statistic after `pairs` real pairs; returns the change, if any.
    pub fn update(&mut self, pairs: u32, value: f64) -> Option<AlertChange> {
        let change = match self.state {
            AlertState::Clear if pairs >= self.band.min_pairs && value < self.band.raise_below => {
                AlertChange { state: AlertState::Raised, value, threshold: self.band.raise_below }
            }
            AlertState::Raised if value > self.band.clear_above => {
                AlertChange { state: AlertState::Clear, value, threshold: self.band.clear_above }
            }
            _ => return None,
        };
        self.state = change.state;
        Some(change)
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

    fn band() -> AlertBand {
        AlertBand {
            statistic: AlertStatistic::Span,
            window: 8,
            min_pairs: 4,
            raise_below: 0.2,
            clear_above: 0.3,
            horizon: 500,
            false_alarm: 0.05,
        }
    }

    #[test]
    fn hysteresis_and_minimum_pairs() {
        let mut policy = AlertPolicy::new(band());
        assert_eq!(policy.update(3, 0.0), None, "too few pairs to fire");
        let raised = policy.update(4, 0.1).unwrap();
        assert_eq!((raised.state, raised.threshold), (AlertState::Raised, 0.2));
        assert_eq!(policy.update(5, 0.25), None, "inside the hysteresis gap: stays raised");
        assert_eq!(policy.update(6, 0.05), None, "already raised");
        let cleared = policy.update(7, 0.31).unwrap();
        assert_eq!((cleared.state, cleared.value), (AlertState::Clear, 0.31));
        assert_eq!(policy.update(8, 0.25), None, "inside the gap: stays clear");
        assert_eq!(policy.state(), AlertState::Clear);
    }

    #[test]
    fn resumed_alert_clears_only_above_the_band() {
        let mut policy = AlertPolicy::resume(band(), AlertState::Raised);
        assert_eq!(policy.update(1, 0.25), None);
        assert_eq!(policy.update(2, 0.35).map(|c| c.state), Some(AlertState::Clear));
    }

    #[test]
    fn verdicts() {
        assert_eq!(pair_verdict(Some(0.01)), PairVerdict::Useful);
        assert_eq!(pair_verdict(Some(0.0)), PairVerdict::Opposed);
        assert_eq!(pair_verdict(Some(-0.4)), PairVerdict::Opposed);
        assert_eq!(pair_verdict(None), PairVerdict::Opposed);
    }
}
