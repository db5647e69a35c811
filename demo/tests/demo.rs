//! `spanwatch-demo`, the README's main job, end to end: the demo data, the
//! ranking with the default model (the real ViT-S/14), the calibration, and
//! the edge monitor through the in-process broker raising its alert after
//! the live stream's generator degrades.

use std::process::Command;

#[test]
fn the_demo_ranks_calibrates_and_raises_the_alert_after_the_degradation() {
    let dir = tempfile::tempdir().unwrap();
    let (out, cache) = (dir.path().join("demo"), dir.path().join("cache"));
    let output = Command::new(env!("CARGO_BIN_EXE_spanwatch-demo"))
        .args(["--out", out.to_str().unwrap(), "--cache", cache.to_str().unwrap(), "--bootstrap", "20"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("DRAWN"), "the demo must say its defects are drawn:\n{stdout}");
    assert!(stdout.contains("Model vit-s14"), "the default model:\n{stdout}");
    // The ranking: faithful first, the unchanged copy last.
    let ranking: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("rank  generator"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(ranking.len(), 5, "five generators ranked:\n{stdout}");
    assert_eq!(ranking.first(), Some(&"faithful"), "{stdout}");
    assert_eq!(ranking.last(), Some(&"copy"), "{stdout}");
    // The live part: online, then the alert, raised only after the degradation at pair-0040.
    assert!(stdout.contains("spanwatch/demo/line1/status online") && stdout.contains("\"state\":\"raised\""), "{stdout}");
    let raised_at = stdout.split("The alert was raised at pair-").nth(1).and_then(|rest| rest.get(..4)?.parse::<usize>().ok());
    assert!(raised_at.is_some_and(|pair| pair >= 40), "the alert must come after the degradation:\n{stdout}");
    assert!(stdout.contains("80 pairs scored, 0 failed"), "{stdout}");
    assert!(out.join("faithful.bundle").is_file());
}
