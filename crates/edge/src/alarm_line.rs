//! The alarm output line: a real GPIO line through Linux's character device
//! (linux-embedded-hal), or, without one, a line that only logs. Both are
//! `embedded_hal::digital::OutputPin`s for the core's `Alarm` driver.

use crate::config::GpioLine;
use anyhow::{Context, Result};
use embedded_hal::digital::{ErrorKind, ErrorType, OutputPin};
use linux_embedded_hal::gpio_cdev::{Chip, LineRequestFlags};
use linux_embedded_hal::CdevPin;

/// Where the alarm goes.
pub enum AlarmLine {
    /// A GPIO line, driven high while the alert is raised.
    Gpio(CdevPin),
    /// No hardware: the state is logged.
    Logged,
}

/// A failed write to the GPIO line.
#[derive(Debug)]
pub struct AlarmLineError(String);

impl embedded_hal::digital::Error for AlarmLineError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

impl std::fmt::Display for AlarmLineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "alarm GPIO line: {}", self.0)
    }
}

impl AlarmLine {
    /// Requests `line` as an output (low), or the logging line for `None`.
    pub fn open(line: Option<&GpioLine>) -> Result<AlarmLine> {
        let Some(GpioLine { chip, line }) = line else {
            tracing::info!("no --alarm-gpio: the alarm state is logged only");
            return Ok(AlarmLine::Logged);
        };
        let name = || format!("{}:{line}", chip.display());
        let mut chip_handle = Chip::new(chip).with_context(|| format!("cannot open the GPIO chip {}", chip.display()))?;
        let handle = chip_handle
            .get_line(*line)
            .and_then(|l| l.request(LineRequestFlags::OUTPUT, 0, "spanwatch-alarm"))
            .with_context(|| format!("cannot request GPIO line {} as an output", name()))?;
        let pin = CdevPin::new(handle).with_context(|| format!("cannot use GPIO line {}", name()))?;
        Ok(AlarmLine::Gpio(pin))
    }
}

impl ErrorType for AlarmLine {
    type Error = AlarmLineError;
}

impl OutputPin for AlarmLine {
    fn set_low(&mut self) -> Result<(), AlarmLineError> {
        match self {
            AlarmLine::Gpio(pin) => pin.set_low().map_err(|e| AlarmLineError(e.to_string())),
            AlarmLine::Logged => {
                tracing::info!("alarm output: off");
                Ok(())
            }
        }
    }

    fn set_high(&mut self) -> Result<(), AlarmLineError> {
        match self {
            AlarmLine::Gpio(pin) => pin.set_high().map_err(|e| AlarmLineError(e.to_string())),
            AlarmLine::Logged => {
                tracing::warn!("alarm output: ON");
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spanwatch_core::alarm::Alarm;
    use spanwatch_core::alert::AlertState;

    #[test]
    fn a_missing_gpio_chip_is_named() {
        let line = GpioLine { chip: "/dev/gpiochip-spanwatch-absent".into(), line: 17 };
        let error = format!("{:#}", AlarmLine::open(Some(&line)).err().expect("no such chip"));
        assert!(error.contains("/dev/gpiochip-spanwatch-absent"), "{error}");
    }

    #[test]
    fn the_logged_line_follows_the_alert() {
        let mut alarm = Alarm::new(AlarmLine::open(None).unwrap()).unwrap();
        alarm.show(AlertState::Raised).unwrap();
        assert!(alarm.is_raised());
        alarm.show(AlertState::Clear).unwrap();
        assert!(!alarm.is_raised());
    }
}
