//! The drift detector against an independent numpy / scipy implementation
//! (tests/reference/make_detector_fixtures.py) on seeded random inputs: the
//! host's normal-score tables of the calibration statistics and residual
//! coefficients, and the core's scores, CUSUMs, crossings and alert over a
//! stream with wrong-family defects, unchanged copies, noisy pairs, changes
//! outside the reference basis and changes over most of the image's pixels.

use serde_json::Value;
use spanwatch_calibrate::metric::drift::{residual_rows, score_correlations, source_effects, ScoreTableData};
use spanwatch_core::alert::AlertState;
use spanwatch_core::detector::{CusumParams, DetectorState, DriftDetector, NormalScores, PairStatistics, ScoreTables, SCORES};
use std::path::Path;

fn reference() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/detector/reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn table(v: &Value) -> NormalScores {
    let (values, scores) = (floats(&v["values"]), floats(&v["scores"]));
    NormalScores::new(values.iter().map(|&x| x as f32), scores.iter().map(|&x| x as f32), v["tail"].as_f64().unwrap()).unwrap()
}

fn tables(r: &Value) -> ScoreTables {
    let t = &r["tables"];
    ScoreTables {
        alignment: table(&t["alignment"]),
        size: table(&t["log_size"]),
        off_span: table(&t["off_span"]),
        extent: table(&t["log_extent"]),
    }
}

const STATISTICS: [&str; SCORES] = ["alignment", "log_size", "off_span", "log_extent"];

#[test]
fn score_tables_match_the_reference() {
    let r = reference();
    for statistic in STATISTICS {
        let ours = ScoreTableData::of(&floats(&r["calibration"][statistic]));
        let theirs = &r["tables"][statistic];
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
    // The residual rows over the calibration pairs' scores, as the host
    // computes them for the bundle, against numpy's least squares.
    let t = tables(&r);
    let columns: Vec<Vec<f64>> = STATISTICS.iter().map(|s| floats(&r["calibration"][*s])).collect();
    let scores: Vec<[f64; SCORES]> = (0..columns[0].len())
        .map(|i| {
            [t.alignment.score(columns[0][i]), t.size.score(columns[1][i]), t.off_span.score(columns[2][i]), t.extent.score(columns[3][i])]
        })
        .collect();
    let correlations = score_correlations(&scores);
    let theirs = r["params"]["correlation"].as_f64().unwrap();
    assert!((correlations[0][1] - theirs).abs() < 1e-12, "correlation {} vs numpy's {theirs}", correlations[0][1]);
    assert!(correlations[0][1] < -0.3 && correlations[1][2] > 0.5, "the reference's scores are correlated: {correlations:?}");
    let rows = residual_rows(&correlations);
    for (ours, theirs) in rows.iter().zip(r["params"]["residuals"].as_array().unwrap()) {
        for (a, b) in ours.iter().zip(floats(theirs)) {
            assert!((a - b).abs() < 1e-9, "residual coefficient {a} vs numpy's {b}: {rows:?}");
        }
    }
}

#[test]
fn the_detector_matches_the_reference_pair_by_pair() {
    let r = reference();
    let p = &r["params"];
    let residuals: Vec<Vec<f64>> = p["residuals"].as_array().unwrap().iter().map(floats).collect();
    let params = CusumParams {
        alignment_k: p["alignment_k"].as_f64().unwrap(),
        size_k: p["size_k"].as_f64().unwrap(),
        off_span_k: p["off_span_k"].as_f64().unwrap(),
        extent_k: p["extent_k"].as_f64().unwrap(),
        residuals: std::array::from_fn(|i| std::array::from_fn(|j| residuals[i][j])),
        thresholds: floats(&p["thresholds"]).try_into().unwrap(),
        clear_after: p["clear_after"].as_u64().unwrap() as u32,
    };
    let mut detector = DriftDetector::new(tables(&r), params, DetectorState::default()).unwrap();
    let (stream, expected) = (r["stream"].as_array().unwrap(), r["expected"].as_array().unwrap());
    let (mut changes, mut outside, mut wide, mut alone) = (0, 0, 0, 0);
    for (t, (pair, want)) in stream.iter().zip(expected).enumerate() {
        let [h, w_norm2, energy, inside, extent] = floats(pair).try_into().unwrap();
        let step = detector.update(PairStatistics::from_dots(h, w_norm2, energy, inside, extent));
        for (a, b) in step.scores.iter().zip(floats(&want["scores"])) {
            assert!((a - b).abs() < 1e-9, "pair {t}: score {a} vs {b}");
        }
        for (a, b) in step.sums.iter().zip(floats(&want["sums"])) {
            assert!((a - b).abs() < 1e-9, "pair {t}: CUSUM {a} vs {b}");
        }
        assert_eq!(step.crossed.map(|r| r.watch.name()), want["crossed"].as_str(), "pair {t}");
        outside += usize::from(want["crossed"] == "outside_span");
        wide += usize::from(want["crossed"] == "wide_change");
        alone += usize::from(want["crossed"] == "outside_span_alone");
        let change = step.change.map(|c| match c.state {
            AlertState::Raised => "raised",
            AlertState::Clear => "clear",
        });
        assert_eq!(change, want["change"].as_str(), "pair {t}");
        assert_eq!(detector.state().raised, want["raised"].as_bool().unwrap(), "pair {t}");
        changes += usize::from(change.is_some());
    }
    assert_eq!(changes, 10, "five raises and five clears in the reference stream");
    assert!(outside > 0, "the pairs outside the span cross on their own CUSUM");
    assert!(wide > 0, "the pairs over most of the image cross the wide-change CUSUM");
    assert!(alone > 0, "the larger pairs further outside the span cross the off span's own CUSUM");
}

/// The between-source shares the threshold simulation adds to its blocks,
/// against tests/reference/make_source_effect_fixtures.py (numpy and
/// scipy's F quantile): with no effect, with one, with few sources and
/// with one pair per source (nothing added).
#[test]
fn source_effects_match_the_reference() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/detector/source_effects.json");
    let document: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for name in ["no_effect", "alignment_effect", "few_sources", "one_pair_each"] {
        let case = &document[name];
        let blocks: Vec<Vec<[f64; 3]>> = case["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|block| block.as_array().unwrap().iter().map(|pair| floats(pair).try_into().unwrap()).collect())
            .collect();
        let expected = floats(&case["effects"]);
        let effects = source_effects(&blocks);
        for j in 0..3 {
            assert!((effects[j] - expected[j]).abs() < 1e-9, "{name}, score {j}: {} against {}", effects[j], expected[j]);
        }
        if name == "one_pair_each" {
            assert_eq!(effects, [0.0; 3]);
        } else {
            assert!(effects.iter().all(|&e| e > 0.01), "{name}: {effects:?}");
        }
    }
}
