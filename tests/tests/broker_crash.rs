//! Acknowledged means durable: the broker binary, killed with SIGKILL at random moments under
//! write load and restarted, keeps every acknowledged registration, every match and every
//! alert queue position. `CRASH_CYCLES=25 cargo test --workspace --test broker_crash` runs a
//! longer campaign; CI runs a few cycles.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deconfliction_proto::v1;
use deconfliction_tests::*;
use rand::{Rng, SeedableRng};

fn spawn_broker(config: &std::path::Path, log: &std::path::Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(broker_binary())
        .args(["serve", "--config", config.to_str().unwrap()])
        .env("DECONFLICT_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Waits for the restarted broker (sled replays its log after a SIGKILL, which on a loaded
/// 2-core machine can take a while); on timeout the broker's own log explains why.
async fn wait_ready(fed: &Federation, child: &mut Child, log: &std::path::Path) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(ch) = fed.channel("yn-psb").await {
            let mut c = v1::broker_client::BrokerClient::new(ch);
            if c.get_federation_info(v1::GetFederationInfoRequest {})
                .await
                .is_ok()
            {
                return;
            }
        }
        let exited = child.try_wait().ok().flatten();
        if exited.is_some() || tokio::time::Instant::now() >= deadline {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            panic!(
                "broker did not come up (exit: {exited:?}); its log ends:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let cycles: usize = std::env::var("CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut fed = Federation::start(&["yn-psb", "gd-psb"]).await;
    fed.stop_broker().await;
    fed.config.server.listen = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = fed.write_config();
    let log = fed.dir.path().join("broker.log");

    // Acknowledged registrations: operation id -> (agency, token count).
    let acked: Arc<Mutex<BTreeMap<String, (&'static str, u32)>>> = Arc::default();
    // Alerts Yunnan saw before each crash: seq -> match id.
    let mut seen: BTreeMap<u64, String> = BTreeMap::new();
    for cycle in 0..cycles {
        let mut child = spawn_broker(&config, &log);
        wait_ready(&fed, &mut child, &log).await;

        // Everything acknowledged in earlier cycles is still there.
        let mut yn = fed.client("yn-psb").await;
        let mut gd = fed.client("gd-psb").await;
        let snapshot = acked.lock().unwrap().clone();
        for (id, (agency, count)) in snapshot {
            let c = if agency == "yn-psb" { &mut yn } else { &mut gd };
            let op = c
                .get_operation(v1::GetOperationRequest {
                    operation_id: id.clone(),
                })
                .await
                .unwrap_or_else(|e| panic!("cycle {cycle}: acknowledged {id} lost: {e}"))
                .into_inner();
            assert_eq!(op.token_count, count);
        }
        // Every alert seen before is still queued at the same position.
        let mut s = subscribe(&mut yn).await;
        let backlog = drain(&mut s, Duration::from_millis(300)).await;
        let now_seen: BTreeMap<u64, String> = backlog
            .iter()
            .filter_map(|a| match &a.event {
                Some(v1::alert::Event::Match(m)) => Some((a.seq, m.match_id.clone())),
                _ => None,
            })
            .collect();
        for (seq, id) in &seen {
            assert_eq!(
                now_seen.get(seq),
                Some(id),
                "cycle {cycle}: alert {seq} moved or vanished"
            );
        }
        seen = now_seen;

        // Write load from both agencies, then SIGKILL at a random moment.
        let mut writers = Vec::new();
        for agency in ["yn-psb", "gd-psb"] {
            let mut c = fed.client(agency).await;
            let acked = acked.clone();
            let mut wrng =
                rand::rngs::StdRng::seed_from_u64(seed ^ cycle as u64 ^ agency.len() as u64);
            writers.push(tokio::spawn(async move {
                for i in 0u64.. {
                    // Half the tokens are shared between the agencies, so matches are made.
                    let shared = {
                        let mut t = vec![0u8; 32];
                        t[..8].copy_from_slice(&(i / 2).to_be_bytes());
                        t[8] = cycle as u8;
                        t
                    };
                    let n = wrng.gen_range(1..6);
                    let mut tokens = vec![entry(&shared, SelectorKind::Phone, i)];
                    for k in 1..n {
                        tokens.push(entry(&token(), SelectorKind::Email, k));
                    }
                    let req = registration(tokens);
                    match c.register_operation(req.clone()).await {
                        Ok(_) => {
                            acked
                                .lock()
                                .unwrap()
                                .insert(req.operation_id, (agency, n as u32));
                        }
                        Err(_) => return,
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(200..900))).await;
        child.kill().unwrap();
        child.wait().unwrap();
        for w in writers {
            let _ = tokio::time::timeout(Duration::from_secs(30), w).await;
        }
    }
    // A final clean start, and every acknowledged write is there.
    let mut child = spawn_broker(&config, &log);
    wait_ready(&fed, &mut child, &log).await;
    let mut yn = fed.client("yn-psb").await;
    let mut gd = fed.client("gd-psb").await;
    let total = acked.lock().unwrap().len();
    assert!(total > 0, "no write was acknowledged at all");
    let snapshot = acked.lock().unwrap().clone();
    for (id, (agency, count)) in snapshot {
        let c = if agency == "yn-psb" { &mut yn } else { &mut gd };
        let op = c
            .get_operation(v1::GetOperationRequest {
                operation_id: id.clone(),
            })
            .await
            .unwrap_or_else(|e| panic!("acknowledged {id} lost: {e}"))
            .into_inner();
        assert_eq!(op.token_count, count);
    }
    child.kill().unwrap();
    let _ = child.wait();
    eprintln!("{cycles} SIGKILL cycles, {total} acknowledged registrations, none lost");
}
