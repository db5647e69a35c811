//! The input side: the SysTick interrupt hands the stored pairs to the main
//! loop through a heapless single-producer single-consumer queue, one pair
//! per tick, as a camera link's DMA or a UART interrupt would. When the queue
//! is full the pair waits for a later tick (backpressure from the tracker),
//! so nothing is dropped.

use crate::calibration::StoredStream;
use crate::D;
use core::cell::RefCell;
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, Ordering};
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::exception;
use critical_section::Mutex;
use heapless::spsc::{Consumer, Producer, Queue};
use heapless::String;

/// Slots of the queue (a heapless SPSC queue holds one fewer).
pub const QUEUE_SLOTS: usize = 4;
/// SysTick reload: one pair per millisecond at the MPS2's 25 MHz clock.
const TICK_RELOAD: u32 = 25_000 - 1;

/// One pair as the input side delivers it: its id, both embeddings and its pixel extent.
pub struct PairInput {
    /// The pair's id, e.g. `pair-0045`.
    pub id: String<16>,
    /// Embedding of the normal image.
    pub source: [f32; D],
    /// Embedding of its synthetic defect.
    pub synthetic: [f32; D],
    /// The share of pixels the two images differ in.
    pub extent: f32,
}

/// The queue between the interrupt and the main loop.
pub type PairQueue = Queue<PairInput, QUEUE_SLOTS>;

/// The interrupt's state: where it is in the stored stream.
struct Feeder {
    producer: Producer<'static, PairInput>,
    next: usize,
    total: usize,
    waits: u32,
}

static FEEDER: Mutex<RefCell<Option<Feeder>>> = Mutex::new(RefCell::new(None));
static FINISHED: AtomicBool = AtomicBool::new(false);

/// Starts feeding the `total` stored pairs into `queue` from the SysTick
/// interrupt; the main loop reads them from the returned consumer.
pub fn start(queue: &'static mut PairQueue, mut syst: SYST, total: usize) -> Consumer<'static, PairInput> {
    let (producer, consumer) = queue.split();
    critical_section::with(|cs| FEEDER.borrow_ref_mut(cs).replace(Feeder { producer, next: 0, total, waits: 0 }));
    FINISHED.store(total == 0, Ordering::Release);
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(TICK_RELOAD);
    syst.clear_current();
    syst.enable_counter();
    syst.enable_interrupt();
    consumer
}

/// Whether every stored pair has been put in the queue.
pub fn finished() -> bool {
    FINISHED.load(Ordering::Acquire)
}

/// Ticks on which a pair found the queue full and waited.
pub fn waits() -> u32 {
    critical_section::with(|cs| FEEDER.borrow_ref(cs).as_ref().map_or(0, |f| f.waits))
}

#[exception]
fn SysTick() {
    critical_section::with(|cs| {
        let mut feeder = FEEDER.borrow_ref_mut(cs);
        let Some(feeder) = feeder.as_mut() else { return };
        if feeder.next >= feeder.total {
            return;
        }
        if !feeder.producer.ready() {
            feeder.waits += 1;
            return;
        }
        let mut pair = PairInput { id: String::new(), source: [0.0; D], synthetic: [0.0; D], extent: 0.0 };
        // "pair-" and four digits always fit the 16 bytes.
        let _ = write!(pair.id, "pair-{:04}", feeder.next);
        pair.extent = StoredStream::<D>.read(feeder.next, &mut pair.source, &mut pair.synthetic);
        if feeder.producer.enqueue(pair).is_ok() {
            feeder.next += 1;
        }
        if feeder.next == feeder.total {
            FINISHED.store(true, Ordering::Release);
        }
    });
}
