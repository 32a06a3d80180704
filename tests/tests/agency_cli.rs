//! The `deconflict` binary run as a process against a running agencyd (in-process, real
//! broker, real mTLS): output, `--json`, exit codes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use agency_client::daemon;
use deconfliction_tests::{Federation, agencyd_config, eventually};

async fn run(socket: &Path, args: &[&str]) -> Output {
    deconfliction_tests::agencyd::deconflict(socket, args).await
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {:?} stderr {:?}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_commands_against_a_running_daemon() {
    let fed = Federation::start(&["yn-psb", "gd-psb"]).await;
    let root = tempfile::tempdir().unwrap();
    let ca = agencyd_config(&fed, "yn-psb", &root.path().join("a"));
    let cb = agencyd_config(&fed, "gd-psb", &root.path().join("b"));
    let a = daemon::start(ca.clone()).await.unwrap();
    let b = daemon::start(cb.clone()).await.unwrap();
    let (sa, sb) = (ca.socket_path(), cb.socket_path());

    // Register from flags, as JSON.
    let out = run(
        &sa,
        &[
            "register",
            "-s",
            "phone=138 0013 8000",
            "--region",
            "CN",
            "-s",
            "plate=CN/粤B12345",
            "--days",
            "30",
            "--case",
            "YN-7",
            "--json",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let reply = json(&out);
    assert_eq!(reply["operation"]["sync"], "synced");
    let op_id = reply["operation"]["operation_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Register from a file on the other side.
    let file = root.path().join("op.toml");
    std::fs::write(
        &file,
        "case_reference = \"GD-1\"\n[window]\ndays = 10\n[[selectors]]\nkind = \"phone\"\n\
         text = \"+86 13800138000\"\n",
    )
    .unwrap();
    let out = run(&sb, &["register", "--file", file.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("registered with the broker"));

    // Alerts in the agency's own terms, human and JSON.
    let alerts = eventually(Duration::from_secs(30), "an alert", || {
        let sa = sa.clone();
        async move {
            let out = run(&sa, &["alerts", "--json"]).await;
            let v = json(&out);
            (!v.as_array().unwrap().is_empty()).then_some(v)
        }
    })
    .await;
    assert_eq!(alerts[0]["kind"], "match");
    assert_eq!(alerts[0]["selectors"][0]["text"], "138 0013 8000");
    assert_eq!(alerts[0]["case_reference"], "YN-7");
    let seq = alerts[0]["seq"].as_u64().unwrap().to_string();
    let out = run(&sa, &["alerts"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("NEW match"), "{text}");
    assert!(text.contains("phone 138 0013 8000 (CN)"), "{text}");
    assert!(!text.contains('\x1b'), "colour when not a terminal: {text}");

    // ops, status, ack.
    let out = run(&sa, &["ops"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&op_id) && text.contains("YN-7"), "{text}");
    let out = run(&sa, &["ops", &op_id]).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("plate CN 粤B12345"));
    let out = run(&sa, &["status", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)["agency_id"], "yn-psb");
    let out = run(&sa, &["ack", &seq]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run(&sa, &["alerts", "--json"]).await;
    assert!(json(&out).as_array().unwrap().is_empty());

    // Relay through the CLI.
    let match_id = alerts[0]["match_id"].as_str().unwrap().to_owned();
    let out = run(&sa, &["message", &match_id, "we are on it", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run(
        &sa,
        &[
            "resolve",
            &match_id,
            "--outcome",
            "joint-operation",
            "--note",
            "ok",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    // The outcome as the flag spells it; selectors counted, not tokens.
    assert!(text.contains("resolved as joint-operation"), "{text}");
    assert!(text.contains("1 shared selector(s)"), "{text}");

    // Cards with only what was filled in.
    for (socket, unit, officer) in [(&sa, "YN unit", "Li"), (&sb, "GD unit", "Wang")] {
        let out = run(
            socket,
            &["disclose", &match_id, "--unit", unit, "--officer", officer],
        )
        .await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let card = eventually(Duration::from_secs(30), "the other party's card", || {
        let sa = sa.clone();
        async move {
            let out = run(&sa, &["alerts", "--all"]).await;
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.contains("officer Wang").then_some(text)
        }
    })
    .await;
    assert!(card.contains("unit GD unit | officer Wang"), "{card}");
    assert!(!card.contains("e-mail") && !card.contains("| |"), "{card}");

    // Exit codes.
    let out = run(&sa, &["register", "-s", "vin=SHORT", "--days", "1"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("vin: text: "), "{}", stderr(&out));
    let out = run(&sa, &["close", "6f9619ff-8b86-d011-b42d-00c04fc964ff"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
    let out = run(&sa, &["close", &op_id, "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)["operation"]["closed"], true);
    let gone: PathBuf = root.path().join("no-such.sock");
    let out = run(&gone, &["status"]).await;
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("Is agencyd running?"),
        "{}",
        stderr(&out)
    );

    // Batch import.
    let csv = root.path().join("batch.csv");
    std::fs::write(
        &csv,
        "operation,case_reference,days,kind,text,region\n1,B-1,5,email,one@example.com,\n\
         1,B-1,5,phone,13900000000,CN\n2,B-2,5,email,two@example.com,\n",
    )
    .unwrap();
    let out = run(&sa, &["import", csv.to_str().unwrap(), "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)["accepted"], 2);
    let bad = root.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"window\": {\"days\": 1}, \"selectors\": []}\n").unwrap();
    let out = run(&sa, &["import", bad.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("line 1: selectors: empty"),
        "{}",
        stderr(&out)
    );

    // Completions.
    let out = run(&sa, &["completions", "bash"]).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("deconflict"));

    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_is_exit_4_for_calls_that_need_it() {
    let mut fed = Federation::start(&["yn-psb"]).await;
    let root = tempfile::tempdir().unwrap();
    let ca = agencyd_config(&fed, "yn-psb", &root.path().join("a"));
    let a = daemon::start(ca.clone()).await.unwrap();
    fed.stop_broker().await;
    let sa = ca.socket_path();
    let out = run(&sa, &["check", "-s", "email=x@example.com"]).await;
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot reach the broker"),
        "{}",
        stderr(&out)
    );
    let out = run(
        &sa,
        &[
            "register",
            "-s",
            "email=x@example.com",
            "--days",
            "2",
            "--wait",
            "0",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("queued"));
    let out = run(&sa, &["status"]).await;
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 waiting"));
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_after_the_broker_went_away_is_exit_4_not_a_refusal() {
    let mut fed = Federation::start(&["yn-psb"]).await;
    let root = tempfile::tempdir().unwrap();
    let ca = agencyd_config(&fed, "yn-psb", &root.path().join("a"));
    let a = daemon::start(ca.clone()).await.unwrap();
    let sa = ca.socket_path();
    // agencyd has talked to the broker and the token service: what it learnt is cached.
    let out = run(&sa, &["check", "-s", "email=x@example.com"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    fed.stop_broker().await;
    for selector in ["email=x@example.com", "email=someone-new@example.com"] {
        let out = run(&sa, &["check", "-s", selector]).await;
        assert_eq!(out.status.code(), Some(4), "{selector}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("cannot reach the"),
            "{}",
            stderr(&out)
        );
    }
    a.shutdown().await;
}
