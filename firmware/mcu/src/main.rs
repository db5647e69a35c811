//! spanwatch's drift monitor as microcontroller firmware (Cortex-M4F, QEMU's
//! MPS2 AN386 board): the no_std core's span tracker, drift detector and alarm
//! on a compiled-in calibration bundle, fed a stored stream of real pairs'
//! embeddings through an SPSC queue from the SysTick interrupt. It logs every
//! pair's scores with defmt over semihosting (decoded on the host), drives
//! the board's LED 0 as the alarm line, reports its memory use and exits.

#![no_std]
#![no_main]

mod calibration;
mod footprint;
mod input;
mod led;

use calibration::{StoredStream, BUNDLE};
use cortex_m_rt::entry;
use defmt::Display2Format;
use defmt_semihosting as _;
use spanwatch_core::alarm::Alarm;
use spanwatch_core::alert::AlertState;
use spanwatch_core::detector::DetectorState;
use spanwatch_core::bundle::Bundle;
use spanwatch_core::standardize::difference_into;
use spanwatch_core::tracker::SpanTracker;
use static_cell::ConstStaticCell;

/// Embedding dimension compiled in: the default ViT-S/14's 384.
pub const D: usize = 384;
/// Window capacity compiled in (SPANWATCH_MCU_WINDOW at build time, default
/// 32; the demo bundle asks for 30); the bundle's window must not exceed it.
pub const W: usize = parse_window(env!("SPANWATCH_MCU_WINDOW"));

/// The decimal window capacity build.rs checked.
const fn parse_window(digits: &str) -> usize {
    let (bytes, mut value, mut i) = (digits.as_bytes(), 0, 0);
    while i < bytes.len() {
        value = value * 10 + (bytes[i] - b'0') as usize;
        i += 1;
    }
    value
}

/// The tracker, built at compile time (all zero, in .bss) and started on
/// the bundle in place: its size is its whole footprint, never on the stack.
static TRACKER: ConstStaticCell<SpanTracker<D, W>> = ConstStaticCell::new(SpanTracker::idle());
/// The queue between the input interrupt and the main loop.
static QUEUE: ConstStaticCell<input::PairQueue> = ConstStaticCell::new(input::PairQueue::new());

/// Why the firmware stops without monitoring.
enum Refusal {
    /// The compiled-in bundle does not decode or does not fit this build.
    Calibration,
    /// The stored stream is not whole pairs of D-dimensional embeddings.
    Stream,
}

#[entry]
fn main() -> ! {
    let code = match run() {
        Ok(()) => 0,
        Err(Refusal::Calibration) => 2,
        Err(Refusal::Stream) => 3,
    };
    semihosting::process::exit(code)
}

fn run() -> Result<(), Refusal> {
    let bundle = Bundle::decode(BUNDLE).map_err(|e| {
        defmt::error!("calibration bundle: {}", Display2Format(&e));
        Refusal::Calibration
    })?;
    let solver = bundle.solver;
    if bundle.model.dim as usize != D {
        defmt::error!("calibration bundle is for d = {=u32}; this firmware is built for d = {=usize}", bundle.model.dim, D);
        return Err(Refusal::Calibration);
    }
    let stream = StoredStream::<D>;
    if !stream.is_whole() {
        defmt::error!("stored stream is not whole pairs of {=usize}-dimensional embeddings", D);
        return Err(Refusal::Stream);
    }
    let (mut w, mut sigma) = ([0.0f32; D], [0.0f32; D]);
    bundle.w.copy_into(&mut w);
    bundle.sigma.copy_into(&mut sigma);

    let window = bundle.window as usize;
    let tracker = TRACKER.take();
    tracker.restart(&w, solver, window).map_err(|e| {
        defmt::error!("calibration bundle: {}", e);
        Refusal::Calibration
    })?;
    let mut seed = [0.0f32; D];
    for j in 0..bundle.rank().min(window) {
        bundle.seed_into(j, &mut seed);
        tracker.seed(&seed);
    }
    let mut detector = bundle.detector.detector(DetectorState::default()).map_err(|e| {
        defmt::error!("calibration bundle: {}", e);
        Refusal::Calibration
    })?;
    let params = detector.params();
    let Ok(mut alarm) = Alarm::new(led::FpgaLed::take());
    defmt::info!(
        "calibration: model {=str}, d = {=usize}, generator {=str}, solver {=str}, window of {=usize} pairs, CUSUM alert above thresholds {=f64} / {=f64} / {=f64} / {=f64} / {=f64} / {=f64} / {=f64} (low alignment / small / large change / outside span / wide / narrow change / outside span alone; k = {=f64} for the alignment, {=f64} for the change size, {=f64} for the two off-span CUSUMs, {=f64} for the pixel extent, one false alarm per {=u32} good pairs), {=usize} seeds; {=usize} stored pairs",
        bundle.model.name,
        D,
        bundle.generator,
        solver.name(),
        window,
        params.thresholds[0],
        params.thresholds[1],
        params.thresholds[2],
        params.thresholds[3],
        params.thresholds[4],
        params.thresholds[5],
        params.thresholds[6],
        params.alignment_k,
        params.size_k,
        params.off_span_k,
        params.extent_k,
        bundle.detector.false_alarm_every,
        bundle.rank().min(window),
        stream.len()
    );

    let Some(peripherals) = cortex_m::Peripherals::take() else { defmt::panic!("the core peripherals were taken before main") };
    let mut pairs = input::start(QUEUE.take(), peripherals.SYST, stream.len());
    let (mut difference, mut raised, mut failed) = ([0.0f32; D], 0u32, 0u32);
    loop {
        let finished = input::finished();
        let Some(pair) = pairs.dequeue() else {
            if finished {
                break;
            }
            core::hint::spin_loop();
            continue;
        };
        difference_into(&pair.synthetic, &pair.source, &sigma, &mut difference);
        if let Some(i) = difference.iter().position(|v| !v.is_finite()) {
            defmt::error!("pair {=str}: the difference is not finite in dimension {=usize}; skipped", pair.id.as_str(), i);
            failed += 1;
            continue;
        }
        let report = tracker.push(&difference, bundle.basis.iter(), f64::from(pair.extent));
        let step = detector.update(report.statistics);
        let state = detector.state().alert();
        let Ok(()) = alarm.show(state);
        let s = report.scores;
        defmt::info!(
            "pair {=str} n={=u32} ridge={=f64} cone={=f64} k={=usize} window={=usize} seeds={=usize} mean_alignment={=f64} novelty={=f64} low_alignment={=f64} small_change={=f64} large_change={=f64} outside_span={=f64} wide_change={=f64} narrow_change={=f64} outside_span_alone={=f64} state={=str}",
            pair.id.as_str(),
            report.pairs,
            s.ridge.ds,
            s.cone.ds,
            s.k,
            s.window,
            s.seeds,
            s.mean_alignment,
            report.novelty,
            step.sums[0],
            step.sums[1],
            step.sums[2],
            step.sums[3],
            step.sums[4],
            step.sums[5],
            step.sums[6],
            state.name()
        );
        if let Some(change) = step.change {
            raised += u32::from(change.state == AlertState::Raised);
            defmt::warn!(
                "alert {=str} at {=str}: {=str} {=f64} crossed {=f64}; alarm LED {=bool}",
                change.state.name(),
                pair.id.as_str(),
                change.watch.name(),
                change.value,
                change.threshold,
                led::led0_is_lit()
            );
        }
    }
    defmt::info!(
        "done: {=u32} pairs, {=u32} failed, {=u32} alert(s) raised, alert {=str}, {=u32} input waits",
        tracker.pairs(),
        failed,
        raised,
        detector.state().alert().name(),
        input::waits()
    );
    defmt::info!(
        "footprint: tracker {=usize} B, queue {=usize} B, statics {=usize} B, stack peak {=usize} B of {=usize} B; flash: bundle {=usize} B, stream {=usize} B",
        core::mem::size_of::<SpanTracker<D, W>>(),
        core::mem::size_of::<input::PairQueue>(),
        footprint::static_bytes(),
        footprint::stack_peak(),
        footprint::stack_room(),
        BUNDLE.len(),
        stream.len() * StoredStream::<D>::PAIR_BYTES
    );
    Ok(())
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    defmt::error!("panic: {}", Display2Format(info));
    semihosting::process::exit(101)
}
