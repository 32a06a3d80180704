//! agencyd killed with SIGKILL while alerts arrive, and restarted: the alert sink ends up
//! holding every alert exactly once, in order (the daemon stores an alert before it acks the
//! broker, and the sink skips what it already holds). Its debug log holds no selector text.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use agency_client::control::{self, pb};
use deconfliction_proto::v1;
use deconfliction_tests::agencyd::sink_seqs;
use deconfliction_tests::*;
use rand::{Rng, SeedableRng};
use token_spec::normalize::Selector;

/// Starts agencyd at debug level, its log appended to `log` (scanned for plaintext below).
fn spawn(config: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(workspace_binary("agencyd"))
        .args(["--config", config.to_str().unwrap()])
        .env(
            "AGENCYD_LOG",
            "debug,h2=info,hyper=info,rustls=info,sled=info,tower=info",
        )
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

fn email(i: usize) -> Selector {
    Selector::Email {
        text: format!("courier{i}@mail.example"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_agencyd_loses_and_duplicates_no_alert() {
    let fed = Federation::start(&["yn-psb", "gd-psb"]).await;
    let root = fed.dir.path().join("yn-agencyd");
    let config = agencyd_config(&fed, "yn-psb", &root);
    let config_path = root.join("agencyd.toml");
    std::fs::write(&config_path, toml::to_string(&config).unwrap()).unwrap();
    let sink = config.sinks.jsonl.clone().unwrap();
    let socket = config.socket_path();

    let log = root.join("agencyd.log");
    let mut child = spawn(&config_path, &log);
    let connect = || async {
        eventually(Duration::from_secs(30), "agencyd socket", || async {
            control::connect(&socket).await.ok()
        })
        .await
    };
    let mut yn = connect().await;
    let n = 24;
    for i in 0..n {
        let req = pb::RegisterRequest {
            window: Some(window_hours(24)),
            selectors: vec![control::selector_to_proto(&email(i), 0, "")],
            wait_ms: 10_000,
            ..Default::default()
        };
        yn.register(req).await.unwrap();
    }

    // Guangdong registers the same e-mails, one match (one alert to Yunnan) each, while
    // Yunnan's daemon is killed at seeded-random moments and restarted.
    let mut deriver = fed.deriver("gd-psb").await;
    let mut gd = fed.client("gd-psb").await;
    let writer = tokio::spawn(async move {
        for i in 0..n {
            let entries = selector_entries(&mut deriver, &[email(i)]).await.unwrap();
            gd.register_operation(v1::RegisterOperationRequest {
                operation_id: uuid::Uuid::new_v4().to_string(),
                window: Some(window_hours(24)),
                tokens: entries,
                case_reference: String::new(),
            })
            .await
            .unwrap();
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    });
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(100..400))).await;
        child.kill().unwrap();
        child.wait().unwrap();
        child = spawn(&config_path, &log);
    }
    writer.await.unwrap();
    let seqs = eventually(Duration::from_secs(60), "every alert in the sink", || {
        let sink = sink.clone();
        async move {
            let s = sink_seqs(&sink);
            (s.len() >= n).then_some(s)
        }
    })
    .await;
    let expected: Vec<u64> = (1..=n as u64).collect();
    assert_eq!(
        seqs, expected,
        "alerts lost, duplicated or out of order in the sink"
    );
    child.kill().unwrap();
    let _ = child.wait();
    // The agency's own plaintext stays out of its daemon's logs too.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.len() > 200,
        "agencyd logged nothing: the scan would prove nothing"
    );
    assert!(
        !text.contains("courier") && !text.contains("mail.example"),
        "selector text in agencyd's log"
    );
}
