//! `deploy/local/federation.sh` end to end: it starts a broker, a stand-alone token service
//! and three agencyd instances on loopback; a registration on one agency alerts another (each
//! in its own spelling); `stop` ends every process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use deconfliction_tests::local::{StopOnDrop, deconflict, free_base};

fn script(args: &[&str], base: u16) -> (bool, String) {
    deconfliction_tests::local::script("federation.sh", args, base)
}
#[test]
fn local_federation_script_starts_matches_and_stops() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fed");
    let d = dir.to_str().unwrap();
    let base = free_base(3);
    let (ok, text) = script(&["start", d], base);
    // Whatever happens next, stop everything.
    let _stop = StopOnDrop {
        script: "federation.sh",
        dir: d,
        base,
    };
    assert!(ok, "start failed:\n{text}");
    assert!(
        text.contains("DECONFLICT_SOCKET"),
        "start does not say how to use deconflict:\n{text}"
    );

    let (ok, text) = deconflict(
        &dir,
        "yn-psb",
        &["register", "-s", "plate=CN/京A·12345", "--days", "10"],
    );
    assert!(ok, "{text}");
    let (ok, text) = deconflict(
        &dir,
        "gx-psb",
        &["register", "-s", "plate=CN/京A 12345", "--days", "10"],
    );
    assert!(ok, "{text}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (ok, text) = deconflict(&dir, "gx-psb", &["alerts", "--json"]);
        if ok && text.contains("\"kind\":\"match\"") {
            assert!(
                text.contains("京A 12345"),
                "gx-psb sees its own spelling: {text}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no alert on gx-psb: {text}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (_, gd) = deconflict(&dir, "gd-psb", &["alerts", "--json"]);
    assert!(
        !gd.contains("\"kind\":\"match\""),
        "gd-psb was not part of it: {gd}"
    );

    let (_, status) = script(&["status", d], base);
    assert_eq!(status.matches(": running").count(), 5, "{status}");
    let (ok, text) = script(&["stop", d], base);
    assert!(ok && text.contains("stopped"), "{text}");
    // Either way, a line per process; a second stop says there is nothing to stop.
    let (_, status) = script(&["status", d], base);
    assert!(!status.contains(": running"), "{status}");
    assert_eq!(status.matches(": not running").count(), 5, "{status}");
    let (ok, text) = script(&["stop", d], base);
    assert!(ok && text.contains("nothing running"), "{text}");
}
