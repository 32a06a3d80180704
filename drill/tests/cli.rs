//! `deconflict-drill` as a coordination centre runs it, without a broker: scenarios checked
//! before a drill, mistakes named, a missing configuration said plainly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

fn drill() -> Command {
    Command::new(env!("CARGO_BIN_EXE_deconflict-drill"))
}

fn shipped() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/drills")
}

#[test]
fn the_shipped_scenarios_check_clean() {
    for name in [
        "mekong-route.toml",
        "telecom-fraud.toml",
        "cross-border-trafficking.toml",
    ] {
        let out = drill()
            .args(["check", "--scenario"])
            .arg(shipped().join(name))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{name}: {out:?}");
        assert!(text.contains("injects over"), "{text}");
    }
}

#[test]
fn a_bad_scenario_is_refused_naming_the_inject_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(shipped().join("mekong-route.toml")).unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        text.replace("11010519491231002X", "110105194912310021"),
    )
    .unwrap();
    let out = drill()
        .args(["check", "--scenario"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("inject 1") && err.contains("cnid") && err.contains("call for X"),
        "{err}"
    );
}

#[test]
fn a_missing_controller_configuration_is_named() {
    let out = drill()
        .args(["run", "--scenario"])
        .arg(shipped().join("telecom-fraud.toml"))
        .args(["--controller", "/nonexistent/controller.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/controller.toml"), "{err}");
}
