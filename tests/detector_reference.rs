//! The drift detector against an independent numpy / scipy implementation
//! (tests/reference/make_detector_fixtures.py) on seeded random inputs: the
//! host's normal-score tables of the calibration statistics, and the core's
//! scores, CUSUMs, crossings and alert over a stream with wrong-family
//! defects, unchanged copies and noisy pairs.

use serde_json::Value;
use spanwatch::metric::drift::{score_correlation, ScoreTableData};
use spanwatch_core::alert::AlertState;
use spanwatch_core::detector::{CusumParams, DetectorState, DriftDetector, NormalScores, PairStatistics};
use std::path::Path;

fn reference() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/detector/reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn table(v: &Value) -> NormalScores {
    let (values, scores) = (floats(&v["values"]), floats(&v["scores"]));
    NormalScores::new(values.iter().map(|&x| x as f32), scores.iter().map(|&x| x as f32), v["tail"].as_f64().unwrap()).unwrap()
}

#[test]
fn score_tables_match_the_reference() {
    let r = reference();
    for (statistic, key) in [("alignment", "alignment"), ("log_size", "log_size")] {
        let ours = ScoreTableData::of(&floats(&r["calibration"][statistic]));
        let theirs = &r["tables"][key];
        let (values, scores) = (floats(&theirs["values"]), floats(&theirs["scores"]));
        assert_eq!(ours.values.len(), values.len(), "{statistic}");
        for (a, b) in ours.values.iter().zip(&values) {
            assert_eq!(*a, *b as f32, "{statistic} knot values are the same order statistics");
        }
        for (a, b) in ours.scores.iter().zip(&scores) {
            assert!((*a as f64 - b).abs() < 1e-6, "{statistic} normal score {a} vs scipy's {b}");
        }
        assert!((ours.tail - theirs["tail"].as_f64().unwrap()).abs() < 1e-12, "{statistic} tail");
    }
    // The scores' correlation over the calibration pairs, as the host computes it for the bundle.
    let (a, s) = (table(&r["tables"]["alignment"]), table(&r["tables"]["log_size"]));
    let scores: Vec<[f64; 2]> = floats(&r["calibration"]["alignment"])
        .iter()
        .zip(floats(&r["calibration"]["log_size"]))
        .map(|(&x, y)| [a.score(x), s.score(y)])
        .collect();
    let rho = score_correlation(&scores);
    let theirs = r["params"]["correlation"].as_f64().unwrap();
    assert!((rho - theirs).abs() < 1e-12, "correlation {rho} vs numpy's {theirs}");
    assert!(rho < -0.3, "the reference's scores are correlated: {rho}");
}

#[test]
fn the_detector_matches_the_reference_pair_by_pair() {
    let r = reference();
    let p = &r["params"];
    let params = CusumParams {
        alignment_k: p["alignment_k"].as_f64().unwrap(),
        size_k: p["size_k"].as_f64().unwrap(),
        h: p["h"].as_f64().unwrap(),
        clear_after: p["clear_after"].as_u64().unwrap() as u32,
        correlation: p["correlation"].as_f64().unwrap(),
    };
    let mut detector =
        DriftDetector::new(table(&r["tables"]["alignment"]), table(&r["tables"]["log_size"]), params, DetectorState::default()).unwrap();
    let (stream, expected) = (r["stream"].as_array().unwrap(), r["expected"].as_array().unwrap());
    let mut changes = 0;
    for (t, (pair, want)) in stream.iter().zip(expected).enumerate() {
        let [h, w_norm2, energy] = floats(pair).try_into().unwrap();
        let step = detector.update(PairStatistics::from_dots(h, w_norm2, energy));
        for (a, b) in step.scores.iter().zip(floats(&want["scores"])) {
            assert!((a - b).abs() < 1e-9, "pair {t}: score {a} vs {b}");
        }
        for (a, b) in step.sums.iter().zip(floats(&want["sums"])) {
            assert!((a - b).abs() < 1e-9, "pair {t}: CUSUM {a} vs {b}");
        }
        let change = step.change.map(|c| match c.state {
            AlertState::Raised => "raised",
            AlertState::Clear => "clear",
        });
        assert_eq!(change, want["change"].as_str(), "pair {t}");
        assert_eq!(detector.state().raised, want["raised"].as_bool().unwrap(), "pair {t}");
        changes += usize::from(change.is_some());
    }
    assert_eq!(changes, 4, "two raises and two clears in the reference stream");
}
