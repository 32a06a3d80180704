//! Driving load and running the broker process: shared by every part of the bench.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use deconflict_broker::ledger::records::{TokenRec, Window};
use deconflict_broker::ledger::{Ledger, NewOperation, Policy};
use deconflict_broker::secrets::pepper::Pepper;
use deconflict_broker::store::{SledStore, Store};
use deconfliction_proto::v1;
use deconfliction_proto::v1::broker_client::BrokerClient;
use deconfliction_tests::{Federation, SelectorKind, now};
use rand::{RngCore, SeedableRng};
use tokio::sync::Mutex;

pub(crate) fn broker_binary() -> PathBuf {
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
pub(crate) struct Row {
    pub(crate) what: String,
    pub(crate) concurrency: usize,
    pub(crate) per_second: f64,
    pub(crate) baseline_per_second: f64,
    pub(crate) ratio: f64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) p999_us: f64,
}

impl Row {
    /// A measured figure against its baseline, with the percentiles of `sorted` latencies.
    pub(crate) fn measured(
        what: impl Into<String>,
        concurrency: usize,
        per_second: f64,
        baseline_per_second: f64,
        sorted: &[Duration],
    ) -> Self {
        Self {
            what: what.into(),
            concurrency,
            per_second,
            baseline_per_second,
            ratio: per_second / baseline_per_second,
            p50_us: pct(sorted, 0.5),
            p99_us: pct(sorted, 0.99),
            p999_us: pct(sorted, 0.999),
        }
    }
}

/// A new operation of `tokens` with the window `[start, end)`, as the ledger takes it.
pub(crate) fn new_operation(tokens: Vec<TokenRec>, start: i64, end: i64) -> NewOperation {
    NewOperation {
        id: uuid::Uuid::new_v4(),
        window: Window { start, end },
        tokens,
        case_reference: String::new(),
        earlier_digests: Vec::new(),
    }
}

pub(crate) fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

/// Runs `calls` concurrently for `secs`: (calls per second, sorted latencies).
pub(crate) async fn drive<F, Fut>(concurrency: usize, secs: f64, make: F) -> (f64, Vec<Duration>)
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

/// Raw tokens kept from a preload, to check tokens the broker holds.
const HELD_SAMPLE: u64 = 100_000;

/// Preloads `tokens` stored tokens (8 per operation, of agency `bench-a`: the federation does
/// not match an agency with itself, so its checks of them read the index and tell nobody)
/// straight into the
/// store, before the broker starts: a bulk path, not millions of RPCs. Returns up to
/// 100,000 of the raw tokens, spread evenly over the preload.
pub(crate) fn preload(data: &Path, pepper: &Pepper, tokens: u64) -> Vec<[u8; 32]> {
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&data.join("store")).unwrap());
    let ledger = Ledger::open(store.clone(), Policy::default()).unwrap();
    let agency = deconflict_broker::identity::AgencyId::parse("bench-a").unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let started = Instant::now();
    let ops = tokens.div_ceil(8);
    let every = (ops * 8 / HELD_SAMPLE).max(1);
    let mut held = Vec::new();
    let t0 = now();
    for i in 0..ops {
        let toks = (0..8)
            .map(|k| {
                let mut raw = [0u8; 32];
                rng.fill_bytes(&mut raw);
                if (i * 8 + k) % every == 0 {
                    held.push(raw);
                }
                TokenRec {
                    stored: pepper.stored(&raw),
                    kind: SelectorKind::Phone as i32,
                    local_ref: k,
                }
            })
            .collect();
        let op = new_operation(toks, t0 - 3600, t0 + 300 * 86_400);
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
    held
}

pub(crate) fn rss_bytes(pid: u32) -> u64 {
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

pub(crate) struct BrokerProcess {
    pub(crate) child: Child,
    /// From the process's start to its first answer (the indexes rebuilt, the store opened).
    pub(crate) ready_after: Duration,
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) async fn start_broker(fed: &Federation) -> BrokerProcess {
    let config = fed.write_config();
    let child = Command::new(broker_binary())
        .args(["serve", "--config", config.to_str().unwrap()])
        .env("DECONFLICT_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let spawned = Instant::now();
    let deadline = spawned + Duration::from_secs(300);
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
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    BrokerProcess {
        child,
        ready_after: spawned.elapsed(),
    }
}

pub(crate) async fn setup() -> Federation {
    let mut fed = Federation::start_with(&["bench-a", "bench-b", crate::drill::ADMIN], |c| {
        deconfliction_tests::enrol_roles(c, &[(crate::drill::ADMIN, "admin")]);
        c.policy.check_rate_per_second = 1e9;
        c.policy.check_burst = 1e9;
        c.policy.registration_rate_per_second = 1e9;
        c.policy.registration_burst = 1e9;
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
