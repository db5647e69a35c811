//! The alarm output: any `embedded_hal::digital::OutputPin` (a GPIO line on
//! the camera box, a relay, an LED), driven high while the alert is raised.
//! The driver keeps the line's state itself, because some pins (Linux's
//! character-device GPIO) cannot be read back, and writes only on change.

use crate::alert::AlertState;
use embedded_hal::digital::OutputPin;

/// An alarm line.
pub struct Alarm<P: OutputPin> {
    pin: P,
    raised: bool,
}

impl<P: OutputPin> Alarm<P> {
    /// Takes the pin and drives it low (alarm off).
    pub fn new(mut pin: P) -> Result<Alarm<P>, P::Error> {
        pin.set_low()?;
        Ok(Alarm { pin, raised: false })
    }

    /// Drives the line for `state`; writes to the pin only when it changes.
    pub fn show(&mut self, state: AlertState) -> Result<(), P::Error> {
        let raised = state == AlertState::Raised;
        if raised != self.raised {
            if raised {
                self.pin.set_high()?;
            } else {
                self.pin.set_low()?;
            }
            self.raised = raised;
        }
        Ok(())
    }

    /// Whether the line is driven high.
    pub fn is_raised(&self) -> bool {
        self.raised
    }

    /// Gives the pin back.
    pub fn release(self) -> P {
        self.pin
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal_mock::eh1::digital::{Mock, State, Transaction};

    #[test]
    fn drives_the_line_on_changes_only() {
        // Mocked GPIO line: the hardware is the only thing mocked.
        let expectations = [Transaction::set(State::Low), Transaction::set(State::High), Transaction::set(State::Low)];
        let mut alarm = Alarm::new(Mock::new(&expectations)).unwrap();
        alarm.show(AlertState::Clear).unwrap();
        alarm.show(AlertState::Raised).unwrap();
        assert!(alarm.is_raised());
        alarm.show(AlertState::Raised).unwrap();
        alarm.show(AlertState::Clear).unwrap();
        alarm.release().done();
    }
}
