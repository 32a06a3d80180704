//! `deconflict-bench`: the broker under load, as ratios against baselines measured in the same
//! run (our machines are shared and noisy, so absolute figures mean little).
//!
//! Against a real `deconflict-broker` process over real mTLS on loopback, with a preloaded
//! store:
//! - baseline: grpc.health.v1 Check through the same server, TLS and connection;
//! - check: hit/no-hit of 8 tokens, ratio to the baseline;
//! - register: durable registration of 8 tokens, ratio to raw sled insert + group flush of the
//!   same number of keys in this process;
//! - alert latency: registration acknowledged → counterpart's Subscribe stream, at a paced rate;
//! - token service: batch evaluation through gRPC, ratio to the bare in-process evaluation;
//! - growth: check p50/p99, broker RSS and bytes on disk per stored token at several sizes.
//!
//! ```text
//! cargo run --release -p deconfliction-tests --bin deconflict-bench                 # quick, < 1 min
//! cargo run --release -p deconfliction-tests --bin deconflict-bench -- --full       # 100k, 1M, 10M
//! cargo run --release -p deconfliction-tests --bin deconflict-bench -- --json out.json
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use deconflict_broker::ledger::records::{TokenRec, Window};
use deconflict_broker::ledger::{Ledger, NewOperation, Policy};
use deconflict_broker::pepper::Pepper;
use deconflict_broker::store::{Flusher, SledStore, Store, WriteBatch};
use deconflict_broker::token_service::TokenKey;
use deconfliction_proto::v1;
use deconfliction_proto::v1::broker_client::BrokerClient;
use deconfliction_proto::v1::token_service_client::TokenServiceClient;
use deconfliction_tests::{Federation, SelectorKind, entry, free_port, now, token};
use rand::{RngCore, SeedableRng};
use tokio::sync::Mutex;
use tonic::transport::Channel;

struct Args {
    full: bool,
    seconds: f64,
    concurrency: Vec<usize>,
    sizes: Vec<u64>,
    json: Option<PathBuf>,
    /// Run only these parts (check, register, alerts, tokens, growth); empty: all.
    only: Vec<String>,
}

impl Args {
    fn wants(&self, part: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|p| p == part)
    }
}

fn parse_args() -> Args {
    let mut a = Args {
        full: false,
        seconds: 2.0,
        concurrency: vec![1, 8, 64],
        sizes: vec![100_000],
        json: None,
        only: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--full" => {
                a.full = true;
                a.seconds = 5.0;
                a.sizes = vec![100_000, 1_000_000, 10_000_000];
            }
            "--seconds" => a.seconds = it.next().and_then(|v| v.parse().ok()).unwrap_or(a.seconds),
            "--sizes" => {
                a.sizes = it
                    .next()
                    .map(|v| v.split(',').filter_map(|s| s.parse().ok()).collect())
                    .unwrap_or_default();
            }
            "--json" => a.json = it.next().map(PathBuf::from),
            "--only" => {
                a.only = it
                    .next()
                    .map(|v| v.split(',').map(str::to_owned).collect())
                    .unwrap_or_default();
            }
            "--help" | "-h" => {
                println!(
                    "deconflict-bench [--full] [--seconds S] [--sizes 100000,1000000] [--json FILE] \
                     [--only check,register,alerts,tokens,growth]"
                );
                std::process::exit(0);
            }
            other => {
                eprintln!("unknown argument {other:?} (try --help)");
                std::process::exit(2);
            }
        }
    }
    a
}

/// The broker binary next to this one (target/<profile>/).
fn broker_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap();
    let bin = dir.join(format!("deconflict-broker{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        eprintln!(
            "{} is missing: build it with the same profile (cargo build --release -p \
             deconflict-broker)",
            bin.display()
        );
        std::process::exit(2);
    }
    bin
}

#[derive(Default, serde::Serialize)]
struct Row {
    what: String,
    concurrency: usize,
    per_second: f64,
    baseline_per_second: f64,
    ratio: f64,
    p50_us: f64,
    p99_us: f64,
    p999_us: f64,
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

/// Runs `calls` concurrently for `secs`: (calls per second, sorted latencies).
async fn drive<F, Fut>(concurrency: usize, secs: f64, make: F) -> (f64, Vec<Duration>)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static + Clone,
    Fut: std::future::Future<Output = ()> + Send,
{
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let lat = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let make = make.clone();
        let lat = lat.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            let mut i = 0usize;
            while Instant::now() < deadline {
                let t = Instant::now();
                make(w * 1_000_000_000 + i).await;
                mine.push(t.elapsed());
                i += 1;
            }
            lat.lock().await.extend(mine);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut lat = std::mem::take(&mut *lat.lock().await);
    lat.sort();
    (lat.len() as f64 / elapsed, lat)
}

/// Preloads `tokens` stored tokens (8 per operation, agency `preload`) straight into the
/// store, before the broker starts: a bulk path, not millions of RPCs.
fn preload(data: &Path, pepper: &Pepper, tokens: u64) {
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&data.join("store")).unwrap());
    let ledger = Ledger::open(store.clone(), Policy::default()).unwrap();
    let agency = deconflict_broker::identity::AgencyId::parse("preload").unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let started = Instant::now();
    let ops = tokens.div_ceil(8);
    let t0 = now();
    for i in 0..ops {
        let toks = (0..8)
            .map(|k| {
                let mut raw = [0u8; 32];
                rng.fill_bytes(&mut raw);
                TokenRec {
                    stored: pepper.stored(&raw),
                    kind: SelectorKind::Phone as i32,
                    local_ref: k,
                }
            })
            .collect();
        let op = NewOperation {
            id: uuid::Uuid::new_v4(),
            window: Window {
                start: t0 - 3600,
                end: t0 + 300 * 86_400,
            },
            tokens: toks,
            case_reference: String::new(),
        };
        let _ = ledger.register(&agency, op, t0).unwrap();
        if i % 50_000 == 0 && i > 0 {
            eprint!(
                "\r  preloading: {:>5.1}% ({} tokens, {:.0} s)",
                100.0 * i as f64 / ops as f64,
                i * 8,
                started.elapsed().as_secs_f64()
            );
        }
    }
    store.flush_blocking().unwrap();
    eprintln!(
        "\r  preloaded {tokens} tokens in {:.1} s            ",
        started.elapsed().as_secs_f64()
    );
}

fn dir_bytes(dir: &Path) -> u64 {
    let mut n = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            n += if p.is_dir() {
                dir_bytes(&p)
            } else {
                e.metadata().map(|m| m.len()).unwrap_or(0)
            };
        }
    }
    n
}

fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

struct BrokerProcess {
    child: Child,
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_broker(fed: &Federation) -> BrokerProcess {
    let config = fed.write_config();
    let child = Command::new(broker_binary())
        .args(["serve", "--config", config.to_str().unwrap()])
        .env("DECONFLICT_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(ch) = fed.channel("bench-a").await
            && BrokerClient::new(ch)
                .get_federation_info(v1::GetFederationInfoRequest {})
                .await
                .is_ok()
        {
            break;
        }
        assert!(Instant::now() < deadline, "broker did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    BrokerProcess { child }
}

async fn bench_baseline_and_check(ch: &Channel, c: usize, secs: f64, rows: &mut Vec<Row>) {
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
    rows.push(Row {
        what: "empty RPC (health)".into(),
        concurrency: c,
        per_second: base,
        baseline_per_second: base,
        ratio: 1.0,
        p50_us: pct(&blat, 0.5),
        p99_us: pct(&blat, 0.99),
        p999_us: pct(&blat, 0.999),
    });
    rows.push(Row {
        what: "check, 8 tokens".into(),
        concurrency: c,
        per_second: rate,
        baseline_per_second: base,
        ratio: rate / base,
        p50_us: pct(&lat, 0.5),
        p99_us: pct(&lat, 0.99),
        p999_us: pct(&lat, 0.999),
    });
}

/// Raw sled: 8 inserts applied as one batch, then a group flush, per call.
async fn raw_sled_rate(c: usize, secs: f64) -> f64 {
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

async fn bench_register(ch: &Channel, c: usize, secs: f64, rows: &mut Vec<Row>) {
    let base = raw_sled_rate(c, secs).await;
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
    rows.push(Row {
        what: "register, 8 tokens (durable)".into(),
        concurrency: c,
        per_second: rate,
        baseline_per_second: base,
        ratio: rate / base,
        p50_us: pct(&lat, 0.5),
        p99_us: pct(&lat, 0.99),
        p999_us: pct(&lat, 0.999),
    });
}

/// Alert latency: B's registration acknowledged → A's stream, at `per_second`.
async fn bench_alert_latency(fed: &Federation, per_second: u64, count: u64) -> Row {
    let mut a = BrokerClient::new(fed.channel("bench-a").await.unwrap());
    let b = BrokerClient::new(fed.channel("bench-b").await.unwrap());
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
        .subscribe(v1::SubscribeRequest { after: 0 })
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
        what: format!(
            "alert latency at {per_second}/s ({} of {count} seen)",
            lat.len()
        ),
        concurrency: 1,
        per_second: per_second as f64,
        p50_us: pct(&lat, 0.5),
        p99_us: pct(&lat, 0.99),
        p999_us: pct(&lat, 0.999),
        ..Row::default()
    }
}

async fn bench_token_service(ch: &Channel, seed: &[u8; 32], secs: f64, rows: &mut Vec<Row>) {
    let batch = 100;
    let forms: Vec<Vec<u8>> = (0..batch)
        .map(|i| format!("dcf1\0phone\0+86138{i:08}").into_bytes())
        .collect();
    let blinded = agency_client::token::BlindedBatch::blind(forms).unwrap();
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
        rows.push(Row {
            what: format!("token service, batch of {batch}"),
            concurrency: c,
            per_second: rate,
            baseline_per_second: bare,
            ratio: rate / bare,
            p50_us: pct(&lat, 0.5),
            p99_us: pct(&lat, 0.99),
            p999_us: pct(&lat, 0.999),
        });
    }
}

#[derive(serde::Serialize)]
struct Growth {
    stored_tokens: u64,
    check_p50_us: f64,
    check_p99_us: f64,
    rss_bytes: u64,
    disk_bytes_per_token: f64,
}

async fn bench_growth(size: u64, secs: f64) -> Growth {
    let mut fed = setup().await;
    let pepper = Pepper::load_or_create(&fed.config.secrets.pepper).unwrap();
    preload(fed.data_dir(), &pepper, size);
    fed.config.server.listen = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let broker = start_broker(&fed).await;
    let ch = fed.channel("bench-a").await.unwrap();
    let client = BrokerClient::new(ch);
    let (_, lat) = drive(8, secs, move |_| {
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
    let rss = rss_bytes(broker.child.id());
    drop(broker);
    Growth {
        stored_tokens: size,
        check_p50_us: pct(&lat, 0.5),
        check_p99_us: pct(&lat, 0.99),
        rss_bytes: rss,
        disk_bytes_per_token: dir_bytes(&fed.data_dir().join("store")) as f64 / size as f64,
    }
}

async fn setup() -> Federation {
    let mut fed = Federation::start_with(&["bench-a", "bench-b"], |c| {
        c.policy.check_rate_per_second = 1e9;
        c.policy.check_burst = 1e9;
        c.token_service.quota_per_minute = u64::MAX / 4;
        c.token_service.quota_per_day = u64::MAX / 4;
        c.server.expiry_sweep_seconds = 3600;
        // The alert-latency run registers many operations of one agency sharing a token;
        // with same-agency matching they would all match each other (n² matches).
        c.policy.match_same_agency = false;
    })
    .await;
    fed.stop_broker().await;
    fed
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let seed = [9u8; 32];
    let mut rows = Vec::new();
    eprintln!(
        "deconflict-bench: {} mode, {} s per figure",
        if args.full { "full" } else { "quick" },
        args.seconds
    );

    let mut fed = setup().await;
    std::fs::create_dir_all(fed.config.token_service.seed.parent().unwrap()).unwrap();
    std::fs::write(&fed.config.token_service.seed, seed).unwrap();
    let pepper = Pepper::load_or_create(&fed.config.secrets.pepper).unwrap();
    preload(fed.data_dir(), &pepper, 100_000);
    fed.config.server.listen = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let broker = start_broker(&fed).await;
    let ch = fed.channel("bench-a").await.unwrap();
    for &c in &args.concurrency {
        if args.wants("check") {
            eprintln!("  check vs empty RPC, concurrency {c}");
            bench_baseline_and_check(&ch, c, args.seconds, &mut rows).await;
        }
    }
    for &c in &args.concurrency {
        if args.wants("register") {
            eprintln!("  register vs raw sled + group flush, concurrency {c}");
            bench_register(&ch, c, args.seconds, &mut rows).await;
        }
    }
    if args.wants("alerts") {
        eprintln!("  alert latency");
        let count = if args.full { 5000 } else { 1000 };
        rows.push(bench_alert_latency(&fed, 1000, count).await);
    }
    if args.wants("tokens") {
        eprintln!("  token service");
        bench_token_service(&ch, &seed, args.seconds, &mut rows).await;
    }
    drop(broker);

    let mut growth = Vec::new();
    for &size in args.sizes.iter().filter(|_| args.wants("growth")) {
        eprintln!("  growth: {size} stored tokens");
        growth.push(bench_growth(size, args.seconds).await);
    }

    println!();
    println!("| what | conc. | per second | baseline/s | ratio | p50 µs | p99 µs | p99.9 µs |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.2} | {:.0} | {:.0} | {:.0} |",
            r.what,
            r.concurrency,
            r.per_second,
            r.baseline_per_second,
            r.ratio,
            r.p50_us,
            r.p99_us,
            r.p999_us
        );
    }
    println!();
    println!("| stored tokens | check p50 µs | check p99 µs | broker RSS MiB | disk bytes/token |");
    println!("|---:|---:|---:|---:|---:|");
    for g in &growth {
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.0} |",
            g.stored_tokens,
            g.check_p50_us,
            g.check_p99_us,
            g.rss_bytes as f64 / (1024.0 * 1024.0),
            g.disk_bytes_per_token
        );
    }
    if let Some(path) = args.json {
        let json = serde_json::json!({ "rows": rows, "growth": growth });
        std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
        eprintln!("JSON written to {}", path.display());
    }
}
