//! How much RAM the firmware really uses: cortex-m-rt paints the free RAM
//! between the end of .bss and the top of the stack with a fixed word at
//! reset (feature `paint-stack`); the deepest word no longer painted is the
//! stack's high-water mark.

use cortex_m_rt::STACK_PAINT_VALUE;

extern "C" {
    /// Top of the stack (end of RAM), from cortex-m-rt's linker script.
    static _stack_start: u32;
    /// Lowest address the stack may grow to (end of .bss).
    static _stack_end: u32;
}

/// RAM used by statics (.data and .bss), in bytes: from the start of RAM to
/// the bottom of the stack region.
pub fn static_bytes() -> usize {
    stack_bottom() - 0x2000_0000
}

/// The most stack used so far, in bytes.
pub fn stack_peak() -> usize {
    let (bottom, top) = (stack_bottom(), stack_top());
    let mut address = bottom;
    while address < top {
        // SAFETY: an aligned word inside RAM, between the end of .bss and the top of the stack.
        let word = unsafe { core::ptr::read_volatile(address as *const u32) };
        if word != STACK_PAINT_VALUE {
            break;
        }
        address += 4;
    }
    top - address
}

/// Bytes from the end of .bss to the top of RAM.
pub fn stack_room() -> usize {
    stack_top() - stack_bottom()
}

fn stack_bottom() -> usize {
    core::ptr::addr_of!(_stack_end) as usize
}

fn stack_top() -> usize {
    core::ptr::addr_of!(_stack_start) as usize
}
