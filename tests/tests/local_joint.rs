//! `deploy/local/joint.sh` end to end, with real processes: two home federations (China with
//! Yunnan and Guangxi bureaus, Laos with a Vientiane unit), each country's token service
//! holding one key share, and a joint broker. The three commands it prints give a
//! cross-border match; `stop` ends every process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use deconfliction_tests::local::{StopOnDrop, deconflict, free_base};

fn script(args: &[&str], base: u16) -> (bool, String) {
    deconfliction_tests::local::script("joint.sh", args, base)
}

fn joint_match(dir: &Path, agency: &str) -> Option<String> {
    let (ok, text) = deconflict(dir, agency, &["alerts", "--json"]);
    (ok && text.contains("\"kind\":\"match\"") && text.contains("\"federation\":\"mekong\""))
        .then_some(text)
}

#[test]
fn the_joint_script_shows_a_cross_border_match_in_three_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("joint");
    let d = dir.to_str().unwrap();
    let base = free_base(5);
    let (ok, text) = script(&["start", d], base);
    let _stop = StopOnDrop {
        script: "joint.sh",
        dir: d,
        base,
    };
    assert!(ok, "start failed:\n{text}");
    assert!(text.contains("--release-to mekong"), "{text}");

    // Status shows the joint federation's broker and both shares' token services.
    let (ok, text) = deconflict(&dir, "vte-police", &["status"]);
    assert!(ok, "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("joint mekong"))
        .unwrap_or_else(|| panic!("no joint line: {text}"));
    assert_eq!(line.matches("reachable (").count(), 3, "{line}");

    // The three commands start prints.
    for (agency, case) in [("yn-psb", "YN-2026-114"), ("vte-police", "LA-2026-007")] {
        let (ok, text) = deconflict(
            &dir,
            agency,
            &[
                "register",
                "--case",
                case,
                "--days",
                "7",
                "-s",
                "passport=CN/E12345678",
                "--release-to",
                "mekong",
            ],
        );
        assert!(ok, "{agency}: {text}");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let lao = loop {
        if let Some(text) = joint_match(&dir, "vte-police") {
            break text;
        }
        assert!(Instant::now() < deadline, "no joint alert at the Lao unit");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(lao.contains("E12345678"), "its own passport: {lao}");
    let (_, text) = deconflict(&dir, "vte-police", &["alerts"]);
    assert!(text.contains("(joint federation mekong)"), "{text}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while joint_match(&dir, "yn-psb").is_none() {
        assert!(Instant::now() < deadline, "no joint alert at Yunnan");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Guangxi released nothing and is told nothing.
    let (_, gx) = deconflict(&dir, "gx-psb", &["alerts", "--json"]);
    assert!(!gx.contains("\"kind\":\"match\""), "{gx}");

    let (_, status) = script(&["status", d], base);
    assert_eq!(status.matches(": running").count(), 8, "{status}");
    let (ok, text) = script(&["stop", d], base);
    assert!(ok && text.contains("stopped"), "{text}");
    let (_, status) = script(&["status", d], base);
    assert_eq!(status.matches(": not running").count(), 8, "{status}");
}
