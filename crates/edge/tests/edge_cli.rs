//! The `spanwatch-edge` binary's refusals, before it touches a model or a
//! broker: every bad option or file is named with the problem, and the
//! exit status is 1. (Its MQTT behaviour is tested in edge_mqtt.rs, which
//! also runs this binary.)

use std::process::Command;

fn edge(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_spanwatch-edge")).args(args).output().unwrap();
    (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn help_lists_every_option() {
    let output = Command::new(env!("CARGO_BIN_EXE_spanwatch-edge")).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--config",
        "--bundle",
        "--model",
        "--input",
        "--broker",
        "--client-id",
        "--site",
        "--device",
        "--username",
        "--password-file",
        "--tls-ca",
        "--tls-cert",
        "--tls-key",
        "--alarm-gpio",
        "--ha-discovery",
        "--state-dir",
        "--buffer",
        "--max-packet",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[test]
fn bad_options_and_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.bundle");
    let (ok, err) = edge(&["--bundle", missing.to_str().unwrap(), "--input", dir.path().to_str().unwrap()]);
    assert!(!ok && err.contains("missing.bundle") && err.contains("cannot read the calibration bundle"), "{err}");

    let not_a_bundle = dir.path().join("notes.bundle");
    std::fs::write(&not_a_bundle, b"these are not the bytes you are looking for").unwrap();
    let (ok, err) = edge(&["--bundle", not_a_bundle.to_str().unwrap(), "--input", dir.path().to_str().unwrap()]);
    assert!(!ok && err.contains("notes.bundle") && err.contains("not a spanwatch calibration bundle"), "{err}");

    let config = dir.path().join("edge.toml");
    std::fs::write(&config, "bundle = 'x.bundle'\nbrokr = 'mqtt://h'\n").unwrap();
    let (ok, err) = edge(&["--config", config.to_str().unwrap()]);
    assert!(!ok && err.contains("edge.toml") && err.contains("brokr"), "{err}");

    let (ok, err) = edge(&["--input", dir.path().to_str().unwrap()]);
    assert!(!ok && err.contains("no calibration bundle"), "{err}");

    let (ok, err) = edge(&["--bundle", "b", "--input", "i", "--broker", "http://h:80"]);
    assert!(!ok && err.contains("http://h:80") && err.contains("mqtt://"), "{err}");
}
