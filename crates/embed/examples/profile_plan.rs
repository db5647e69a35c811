//! Where an embedding model's time goes in tract's optimized plan (the very
//! plan `Embedder` runs): every node timed over many runs on one thread,
//! summed by op, beside the uninstrumented time of the same runs.
//!
//! Run: `cargo run --release -p spanwatch-embed --example profile_plan --
//! [--model vit-s14] [--runs 20] [--nodes 15]`. The model is made by its
//! recipe if it is missing, as the CLI does. Compare with onnxruntime's own
//! profile of the same file: `python3 benchmarks/ort_profile.py`.

use spanwatch_embed::{preprocess, provision, Embedder, Manifest};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};
use tract_onnx::prelude::*;

/// Time spent in one op kind (or one node), and how many nodes it covers.
#[derive(Default)]
struct Spent {
    nodes: usize,
    time: Duration,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut model = "vit-s14".to_string();
    let (mut runs, mut shown) = (20usize, 15usize);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--model" => model = value,
            "--runs" => runs = value.parse()?,
            "--nodes" => shown = value.parse()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    let manifest = Manifest::resolve(&model)?;
    provision::ensure_model(&manifest, true)?;
    let embedder = Embedder::load(&manifest)?;
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/images/textures_rgb.png");
    let bytes = std::fs::read(&image)?;
    let chw = preprocess::to_tensor(&preprocess::load_rgb(&image, &bytes)?, &manifest.preprocess);
    let side = manifest.preprocess.crop as usize;
    let input: TValue = Tensor::from_shape(&[1, 3, side, side], &chw)?.into();
    let plan = embedder.plan();

    for _ in 0..2 {
        plan.run(tvec!(input.clone()))?;
    }
    let start = Instant::now();
    for _ in 0..runs {
        plan.run(tvec!(input.clone()))?;
    }
    let plain = start.elapsed() / runs as u32;

    let mut by_node: HashMap<usize, Duration> = HashMap::new();
    let mut state = tract_onnx::tract_core::plan::SimpleState::new(plan)?;
    let start = Instant::now();
    for _ in 0..runs {
        state.run_plan_with_eval(tvec!(input.clone()), |context, op_state, node, inputs| {
            let began = Instant::now();
            let outputs = tract_onnx::tract_core::plan::eval(context, op_state, node, inputs);
            *by_node.entry(node.id).or_default() += began.elapsed();
            outputs
        })?;
    }
    let instrumented = start.elapsed() / runs as u32;

    let model = plan.model();
    let mut by_op: HashMap<String, Spent> = HashMap::new();
    for (&id, &time) in &by_node {
        let spent = by_op.entry(model.node(id).op().name().to_string()).or_default();
        spent.nodes += 1;
        spent.time += time / runs as u32;
    }
    let total: Duration = by_op.values().map(|s| s.time).sum();
    println!("model {} ({}), one thread, {runs} runs of one image", manifest.name, provision::onnx_path(&manifest).display());
    println!(
        "per image: {:.1} ms uninstrumented, {:.1} ms instrumented, {:.1} ms inside the nodes",
        ms(plain),
        ms(instrumented),
        ms(total)
    );
    println!("\n| op | nodes | ms per image | share |\n|---|---|---|---|");
    let mut ops: Vec<_> = by_op.into_iter().collect();
    ops.sort_by_key(|op| std::cmp::Reverse(op.1.time));
    for (op, spent) in &ops {
        println!("| {op} | {} | {:.2} | {:.1}% |", spent.nodes, ms(spent.time), 100.0 * spent.time.as_secs_f64() / total.as_secs_f64());
    }
    println!("\nthe {shown} slowest nodes:\n| node | op | ms per image |\n|---|---|---|");
    let mut nodes: Vec<_> = by_node.into_iter().collect();
    nodes.sort_by_key(|node| std::cmp::Reverse(node.1));
    for (id, time) in nodes.into_iter().take(shown) {
        let node = model.node(id);
        println!("| {} | {} | {:.2} |", node.name, node.op().name(), ms(time / runs as u32));
    }
    Ok(())
}

fn ms(time: Duration) -> f64 {
    time.as_secs_f64() * 1e3
}
