//! One measurement per function, each against its own baseline.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deconflict_broker::secrets::pepper::Pepper;
use deconflict_broker::store::{Flusher, SledStore, Store, WriteBatch};
use deconflict_broker::tokens::TokenKey;
use deconfliction_proto::v1;
use deconfliction_proto::v1::broker_client::BrokerClient;
use deconfliction_proto::v1::token_service_client::TokenServiceClient;
use deconfliction_tests::{Federation, SelectorKind, entry, free_port, now, token};
use rand::RngCore;
use tokio::sync::Mutex;
use tonic::transport::Channel;

use crate::harness::*;

pub(crate) async fn bench_baseline_and_check(
    ch: &Channel,
    c: usize,
    secs: f64,
    rows: &mut Vec<Row>,
) {
    let health = tonic_health::pb::health_client::HealthClient::new(ch.clone());
    let (base, blat) = drive(c, secs, move |_| {
        let mut h = health.clone();
        async move {
            h.check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap();
        }
    })
    .await;
    let client = BrokerClient::new(ch.clone());
    let (rate, lat) = drive(c, secs, move |_| {
        let mut b = client.clone();
        async move {
            let tokens = (0..8)
                .map(|i| entry(&token(), SelectorKind::Phone, i))
                .collect();
            b.check(v1::CheckRequest {
                window: Some(v1::Window {
                    start_unix: now(),
                    end_unix: now() + 3600,
                }),
                tokens,
            })
            .await
            .unwrap();
        }
    })
    .await;
    rows.push(Row::measured("empty RPC (health)", c, base, base, &blat));
    rows.push(Row::measured("check, 8 tokens", c, rate, base, &lat));
}

/// Raw sled: 8 inserts applied as one batch, then a group flush, per call.
pub(crate) async fn raw_sled_rate(c: usize, secs: f64) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
    let flusher = Flusher::start(store.clone(), None);
    let (rate, _) = drive(c, secs, move |i| {
        let store = store.clone();
        let flusher = flusher.clone();
        async move {
            let mut batch = WriteBatch::default();
            for k in 0..8u8 {
                let mut key = vec![0u8; 51];
                rand::thread_rng().fill_bytes(&mut key);
                key[0] = k;
                key[1..9].copy_from_slice(&(i as u64).to_be_bytes());
                batch.put(key, vec![0u8; 40]);
            }
            store.apply(batch).unwrap();
            flusher.flush().await.unwrap();
        }
    })
    .await;
    rate
}

/// The ledger in the bench's own process: a registration of 8 fresh tokens, then a group
/// flush. Beside the raw-sled baseline it shows what the ledger adds, and beside the gRPC row
/// what the RPC adds.
pub(crate) async fn ledger_register_rate(c: usize, secs: f64) -> (f64, Vec<Duration>) {
    use deconflict_broker::ledger::records::TokenRec;
    use deconflict_broker::ledger::{Ledger, Policy};
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
    let flusher = Flusher::start(store.clone(), None);
    let ledger = Arc::new(Ledger::open(store, Policy::default()).unwrap());
    let agency = deconflict_broker::identity::AgencyId::parse("bench-a").unwrap();
    drive(c, secs, move |_| {
        let ledger = ledger.clone();
        let flusher = flusher.clone();
        let agency = agency.clone();
        async move {
            let t0 = now();
            let tokens = (0..8)
                .map(|k| {
                    let mut stored = [0u8; 32];
                    rand::thread_rng().fill_bytes(&mut stored);
                    TokenRec {
                        stored,
                        kind: SelectorKind::Email as i32,
                        local_ref: k,
                    }
                })
                .collect();
            let op = new_operation(tokens, t0, t0 + 86_400);
            let _ = ledger.register(&agency, op, t0).unwrap();
            flusher.flush().await.unwrap();
        }
    })
    .await
}

pub(crate) async fn bench_register(ch: &Channel, c: usize, secs: f64, rows: &mut Vec<Row>) {
    let base = raw_sled_rate(c, secs).await;
    let (ledger_rate, ledger_lat) = ledger_register_rate(c, secs).await;
    rows.push(Row::measured(
        "register via the ledger in-process (no RPC)",
        c,
        ledger_rate,
        base,
        &ledger_lat,
    ));
    let client = BrokerClient::new(ch.clone());
    let (rate, lat) = drive(c, secs, move |_| {
        let mut b = client.clone();
        async move {
            let tokens = (0..8)
                .map(|i| entry(&token(), SelectorKind::Email, i))
                .collect();
            b.register_operation(deconfliction_tests::registration(tokens))
                .await
                .unwrap();
        }
    })
    .await;
    rows.push(Row::measured(
        "register, 8 tokens (durable)",
        c,
        rate,
        base,
        &lat,
    ));
}

/// Alert latency: B's registration acknowledged → A's stream, at `per_second`.
pub(crate) async fn bench_alert_latency(fed: &Federation, per_second: u64, count: u64) -> Row {
    let a = fed.channel("bench-a").await.unwrap();
    let b = fed.channel("bench-b").await.unwrap();
    alert_latency_between(a, b, per_second, count, "alert latency").await
}

/// Alert latency with `bench-a` subscribed on channel `a` and `bench-b` registering on `b`
/// (two replicas: the alert crosses them).
pub(crate) async fn alert_latency_between(
    a: Channel,
    b: Channel,
    per_second: u64,
    count: u64,
    label: &str,
) -> Row {
    let mut a = BrokerClient::new(a);
    let b = BrokerClient::new(b);
    // A holds `count` operations, each with its own token; B's i-th registration shares the
    // i-th token: one new match and one alert to A each, and no token is hot. Alerts are told
    // apart by match id, so an older backlog does not matter.
    let shared: Vec<Vec<u8>> = (0..count).map(|_| token()).collect();
    for t in &shared {
        let first = vec![entry(t, SelectorKind::Person, 0)];
        a.register_operation(deconfliction_tests::registration(first))
            .await
            .unwrap();
    }
    let mut stream = a
        .subscribe(v1::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();
    let received: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let acked: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let r = received.clone();
    let reader = tokio::spawn(async move {
        while let Ok(Some(alert)) = stream.message().await {
            if let Some(v1::alert::Event::Match(m)) = alert.event {
                r.lock()
                    .await
                    .entry(m.match_id)
                    .or_insert_with(Instant::now);
            }
        }
    });
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second as f64));
    let mut sends = Vec::new();
    for i in 0..count as usize {
        ticker.tick().await;
        let mut b = b.clone();
        let acked = acked.clone();
        let shared = shared[i].clone();
        sends.push(tokio::spawn(async move {
            let mut tokens = vec![entry(&shared, SelectorKind::Person, 0)];
            tokens.extend((1..8).map(|i| entry(&token(), SelectorKind::Phone, i)));
            let resp = b
                .register_operation(deconfliction_tests::registration(tokens))
                .await
                .unwrap()
                .into_inner();
            let at = Instant::now();
            if let Some(op) = resp.operation {
                for m in op.match_ids {
                    acked.lock().await.insert(m, at);
                }
            }
        }));
    }
    for s in sends {
        s.await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    reader.abort();
    let received = received.lock().await;
    let acked = acked.lock().await;
    // An alert can reach A before B's answer reaches B: that counts as zero latency.
    let mut lat: Vec<Duration> = acked
        .iter()
        .filter_map(|(m, at)| received.get(m).map(|r| r.saturating_duration_since(*at)))
        .collect();
    lat.sort();
    Row {
        what: format!("{label} at {per_second}/s ({} of {count} seen)", lat.len()),
        concurrency: 1,
        per_second: per_second as f64,
        p50_us: pct(&lat, 0.5),
        p99_us: pct(&lat, 0.99),
        p999_us: pct(&lat, 0.999),
        ..Row::default()
    }
}

pub(crate) async fn bench_token_service(
    ch: &Channel,
    seed: &[u8; 32],
    secs: f64,
    rows: &mut Vec<Row>,
) {
    let batch = 100;
    let forms: Vec<Vec<u8>> = (0..batch)
        .map(|i| format!("dcf1\0phone\0+86138{i:08}").into_bytes())
        .collect();
    let blinded = token_spec::token::BlindedBatch::blind(forms).unwrap();
    let elements: Vec<Vec<u8>> = blinded
        .blinded_elements()
        .iter()
        .map(|e| e.to_vec())
        .collect();
    let key = Arc::new(TokenKey::from_seed(seed, 1).unwrap());
    let bare_elements = elements.clone();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < secs || n < 3 {
        let _ = key.evaluate(&bare_elements).unwrap();
        n += 1;
    }
    let bare = n as f64 / start.elapsed().as_secs_f64();
    let client = TokenServiceClient::new(ch.clone());
    for c in [1usize, 2] {
        let elements = elements.clone();
        let client = client.clone();
        let (rate, lat) = drive(c, secs, move |_| {
            let mut t = client.clone();
            let elements = elements.clone();
            async move {
                t.evaluate(v1::EvaluateRequest {
                    blinded_elements: elements,
                    key_epoch: 0,
                })
                .await
                .unwrap();
            }
        })
        .await;
        rows.push(Row::measured(
            format!("token service, batch of {batch}"),
            c,
            rate,
            bare,
            &lat,
        ));
    }
}

#[derive(serde::Serialize)]
pub(crate) struct Growth {
    pub(crate) stored_tokens: u64,
    pub(crate) check_p50_us: f64,
    pub(crate) check_p99_us: f64,
    pub(crate) rss_bytes: u64,
    pub(crate) disk_bytes_per_token: f64,
    /// Checks of 8 tokens the broker holds (reads that the token filter cannot spare).
    pub(crate) held_check_p50_us: f64,
    pub(crate) held_check_p99_us: f64,
    pub(crate) start_seconds: f64,
    /// After `deconflict-broker store compact` (offline), and how long that took.
    pub(crate) compacted_bytes_per_token: f64,
    pub(crate) compact_seconds: f64,
}

pub(crate) async fn bench_growth(size: u64, secs: f64, cache_mib: Option<u64>) -> Growth {
    let mut fed = setup().await;
    if let Some(mib) = cache_mib {
        fed.config.store.cache_mib = mib;
    }
    let pepper = Pepper::load_or_create(&fed.config.secrets.pepper).unwrap();
    let held = Arc::new(preload(fed.data_dir(), &pepper, size));
    fed.config.server.listen = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let broker = start_broker(&fed).await;
    let ch = fed.channel("bench-a").await.unwrap();
    let client = BrokerClient::new(ch);
    // Most checks find nothing: tokens nobody holds.
    let (_, lat) = drive(8, secs, check_with(client.clone(), |_| token())).await;
    // The worst case for the cache: every token held (by the checking agency itself, so that
    // the figure is the index read alone, with no notice written), each a read of a cold page.
    let (_, held_lat) = drive(
        8,
        secs,
        check_with(client, move |i| {
            held[(i.wrapping_mul(2_654_435_761)) % held.len()].to_vec()
        }),
    )
    .await;
    let rss = rss_bytes(broker.child.id());
    let start_seconds = broker.ready_after.as_secs_f64();
    drop(broker);
    let disk = deconflict_broker::store::bytes_under(&fed.data_dir().join("store"));
    let started = Instant::now();
    let compacted = deconflict_broker::ledger::compact::compact(fed.data_dir(), false, now())
        .unwrap()
        .bytes_after;
    Growth {
        stored_tokens: size,
        check_p50_us: pct(&lat, 0.5),
        check_p99_us: pct(&lat, 0.99),
        rss_bytes: rss,
        disk_bytes_per_token: disk as f64 / size as f64,
        compacted_bytes_per_token: compacted as f64 / size as f64,
        compact_seconds: started.elapsed().as_secs_f64(),
        held_check_p50_us: pct(&held_lat, 0.5),
        held_check_p99_us: pct(&held_lat, 0.99),
        start_seconds,
    }
}

/// A check of 8 tokens, the i-th call's k-th token made by `pick(i * 8 + k)`.
fn check_with(
    client: BrokerClient<Channel>,
    pick: impl Fn(usize) -> Vec<u8> + Send + Sync + Clone + 'static,
) -> impl Fn(usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
+ Send
+ Sync
+ Clone
+ 'static {
    move |i| {
        let mut b = client.clone();
        let tokens = (0..8)
            .map(|k| entry(&pick(i * 8 + k), SelectorKind::Phone, k as u64))
            .collect();
        Box::pin(async move {
            b.check(v1::CheckRequest {
                window: Some(v1::Window {
                    start_unix: now(),
                    end_unix: now() + 3600,
                }),
                tokens,
            })
            .await
            .unwrap();
        })
    }
}
