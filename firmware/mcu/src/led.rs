//! The alarm line on QEMU's MPS2 board: LED 0 of the FPGA I/O block, as an
//! embedded-hal `OutputPin`, so the core's `Alarm` drives it exactly as it
//! drives a GPIO line on the Linux edge. This is the emulated board's real
//! register (QEMU models it), not a mock.

use core::convert::Infallible;
use embedded_hal::digital::{ErrorType, OutputPin};

/// The FPGAIO LED register of the MPS2 AN385/AN386 images (bit 0 = LED 0).
const FPGAIO_LED: *mut u32 = 0x4002_8000 as *mut u32;

/// LED 0 of the MPS2 FPGA I/O block.
pub struct FpgaLed {
    _private: (),
}

impl FpgaLed {
    /// Takes LED 0. Only one exists: `main` makes it once.
    pub fn take() -> FpgaLed {
        FpgaLed { _private: () }
    }

    fn write(&mut self, lit: bool) {
        // SAFETY: an aligned, always-mapped MMIO register; only this driver writes it.
        unsafe {
            let value = core::ptr::read_volatile(FPGAIO_LED);
            core::ptr::write_volatile(FPGAIO_LED, if lit { value | 1 } else { value & !1 });
        }
    }
}

/// LED 0 as the board reads it back (not the driver's own record).
pub fn led0_is_lit() -> bool {
    // SAFETY: an aligned, always-mapped MMIO register of this board.
    unsafe { core::ptr::read_volatile(FPGAIO_LED) & 1 == 1 }
}

impl ErrorType for FpgaLed {
    type Error = Infallible;
}

impl OutputPin for FpgaLed {
    fn set_low(&mut self) -> Result<(), Infallible> {
        self.write(false);
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), Infallible> {
        self.write(true);
        Ok(())
    }
}
