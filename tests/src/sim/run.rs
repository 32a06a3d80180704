//! Runs a simulation against a real broker: one mTLS client and token deriver per bureau,
//! tokens from the token service, registrations from several workers at once, and every
//! alert each bureau's subscription delivers. Token entries carry the kinds agencyd gives
//! them: a person's Pinyin-form token is `PERSON_PINYIN` with its written form's `local_ref`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deconflict_broker::config::AgencySection;
use deconfliction_proto::v1;
use deconfliction_proto::v1::broker_client::BrokerClient;
use deconfliction_proto::v1::oversight_client::OversightClient;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use token_spec::token::{JointDeriver, TokenDeriver, TokenError};
use tonic::transport::Channel;

use super::generate::Simulation;
use super::provinces::WATCH_CENTRE;
use super::truth::Truth;
use crate::{Federation, entry, now};

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Registrations in flight at once.
    pub workers: usize,
    /// Progress lines on stderr.
    pub progress: bool,
    /// How long the alert streams must stay quiet before delivery counts as finished.
    pub quiet: Duration,
    /// Upper bound on waiting for alerts after the last registration.
    pub deadline: Duration,
    /// Keep a copy of every file of the broker's data folder after it stopped (leak scan).
    pub collect_broker_files: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            workers: 8,
            progress: false,
            quiet: Duration::from_millis(300),
            deadline: Duration::from_secs(20),
            collect_broker_files: false,
        }
    }
}

/// One alert and the bureau (index into `Simulation::agencies`) whose stream carried it.
#[derive(Debug, Clone)]
pub struct Received {
    pub agency: usize,
    pub alert: v1::Alert,
}

#[derive(Debug, Clone, Default)]
pub struct Timings {
    pub setup: Duration,
    pub derive: Duration,
    pub register: Duration,
    /// From the last registration's answer to the last alert received.
    pub delivery: Duration,
    pub total: Duration,
}

#[derive(Debug)]
pub struct Outcome {
    pub alerts: Vec<Received>,
    pub register_errors: Vec<String>,
    /// Per operation, the raw tokens it registered (for the leak scan).
    pub tokens: Vec<Vec<[u8; 32]>>,
    pub timings: Timings,
    /// `open_matches` as the watch centre's statistics give it.
    pub watch_open_matches: Option<u64>,
    /// Every file of the broker's data folder and secrets, when asked for (path, bytes).
    pub broker_files: Vec<(String, Vec<u8>)>,
}

struct Progress {
    label: Mutex<&'static str>,
    done: AtomicUsize,
    total: AtomicUsize,
}

impl Progress {
    fn phase(&self, label: &'static str, total: usize) {
        *self.label.lock().unwrap_or_else(|e| e.into_inner()) = label;
        self.done.store(0, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
    }
}

/// How a bureau derives its tokens: at home, or in a joint federation (two key shares).
pub enum Deriver {
    Home(TokenDeriver),
    Joint(JointDeriver),
}

impl Deriver {
    async fn tokens(&mut self, forms: &[Vec<u8>]) -> Result<Vec<[u8; 32]>, TokenError> {
        match self {
            Self::Home(d) => d.tokens(forms).await,
            Self::Joint(d) => d.tokens(forms).await,
        }
    }
}

/// One bureau's way in (index as in `Simulation::agencies`): its client at the broker the
/// run registers at, and its token deriver.
pub struct Endpoint {
    pub client: BrokerClient<Channel>,
    pub deriver: Deriver,
}

/// What [`drive`] collected, the broker still running: its alert collectors end when the
/// broker stops.
pub struct Driven {
    received: Arc<Mutex<Vec<(Received, Instant)>>>,
    collectors: Vec<tokio::task::JoinHandle<()>>,
    ticker: Option<tokio::task::JoinHandle<()>>,
    registered: Instant,
    pub register_errors: Vec<String>,
    pub tokens: Vec<Vec<[u8; 32]>>,
    pub timings: Timings,
}

impl Driven {
    /// After the broker stopped: the alerts and timings, as an [`Outcome`].
    pub async fn finish(
        self,
        started: Instant,
        watch_open_matches: Option<u64>,
        broker_files: Vec<(String, Vec<u8>)>,
    ) -> Outcome {
        for c in self.collectors {
            let _ = tokio::time::timeout(Duration::from_secs(5), c).await;
        }
        if let Some(t) = self.ticker {
            t.abort();
        }
        let received =
            std::mem::take(&mut *self.received.lock().unwrap_or_else(|e| e.into_inner()));
        let mut timings = self.timings;
        timings.delivery = received
            .iter()
            .map(|(_, at)| at.saturating_duration_since(self.registered))
            .max()
            .unwrap_or_default();
        timings.total = started.elapsed();
        Outcome {
            alerts: received.into_iter().map(|(r, _)| r).collect(),
            register_errors: self.register_errors,
            tokens: self.tokens,
            timings,
            watch_open_matches,
            broker_files,
        }
    }
}

/// Starts a federation for `sim`, derives and registers everything, collects the alerts.
pub async fn run(sim: &Simulation, truth: &Truth, opts: &RunOptions) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let mut ids: Vec<&str> = sim.agencies.iter().map(|a| a.id.as_str()).collect();
    ids.push(WATCH_CENTRE);
    let same_agency = sim.config.match_same_agency;
    let mut fed = Federation::start_with(&ids, |c| {
        c.policy.match_same_agency = same_agency;
        c.token_service.quota_per_minute = 1_000_000_000;
        c.token_service.quota_per_day = 1_000_000_000;
        c.agencies = vec![AgencySection {
            id: WATCH_CENTRE.into(),
            role: "watch-centre".into(),
            display_name: "Watch centre".into(),
        }];
    })
    .await;
    let mut endpoints = Vec::new();
    for a in &sim.agencies {
        endpoints.push(Endpoint {
            client: fed.client(&a.id).await,
            deriver: Deriver::Home(fed.deriver(&a.id).await),
        });
    }
    let driven = drive(sim, truth, opts, endpoints, started).await?;
    let watch_open_matches = match fed.channel(WATCH_CENTRE).await {
        Ok(ch) => OversightClient::new(ch)
            .get_statistics(v1::GetStatisticsRequest {})
            .await
            .ok()
            .map(|s| s.into_inner().open_matches),
        Err(_) => None,
    };
    fed.stop_broker().await;
    let mut broker_files = Vec::new();
    if opts.collect_broker_files {
        collect_files(fed.dir.path(), &mut broker_files);
        if fed.config.store.backend == deconflict_broker::config::StoreBackend::Postgres {
            // The ledger is in the database cluster: its tables and write-ahead log.
            let mut db = Vec::new();
            collect_files(&crate::pg::shared().data(), &mut db);
            broker_files.extend(
                db.into_iter()
                    .map(|(n, b)| (format!("postgres store {n}"), b)),
            );
        }
    }
    Ok(driven
        .finish(started, watch_open_matches, broker_files)
        .await)
}

/// Subscribes every bureau, derives every operation's tokens, registers them all from
/// several workers at once, and waits for the alerts to arrive and go quiet.
pub async fn drive(
    sim: &Simulation,
    truth: &Truth,
    opts: &RunOptions,
    endpoints: Vec<Endpoint>,
    started: Instant,
) -> anyhow::Result<Driven> {
    let progress = Arc::new(Progress {
        label: Mutex::new("setup"),
        done: AtomicUsize::new(0),
        total: AtomicUsize::new(0),
    });
    let ticker = opts.progress.then(|| {
        let p = progress.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                let label = *p.label.lock().unwrap_or_else(|e| e.into_inner());
                let (d, t) = (
                    p.done.load(Ordering::Relaxed),
                    p.total.load(Ordering::Relaxed),
                );
                eprintln!("  {label}: {}/{t}", d.min(t));
            }
        })
    });

    let (clients, derivers): (Vec<_>, Vec<_>) =
        endpoints.into_iter().map(|e| (e.client, e.deriver)).unzip();
    let received: Arc<Mutex<Vec<(Received, Instant)>>> = Arc::default();
    let mut collectors = Vec::new();
    for (agency, client) in clients.iter().enumerate() {
        let mut stream = client
            .clone()
            .subscribe(v1::SubscribeRequest::default())
            .await?
            .into_inner();
        let received = received.clone();
        collectors.push(tokio::spawn(async move {
            while let Ok(Some(alert)) = stream.message().await {
                let r = Received { agency, alert };
                received
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((r, Instant::now()));
            }
        }));
    }
    let mut timings = Timings {
        setup: started.elapsed(),
        ..Timings::default()
    };

    // Derive: each bureau asks the token service(s) for the tokens of its own forms.
    let t = Instant::now();
    progress.phase("derive tokens", truth.token_count());
    let mut tasks = Vec::new();
    for (agency, mut deriver) in derivers.into_iter().enumerate() {
        let ops: Vec<usize> = (0..sim.operations.len())
            .filter(|&i| sim.operations[i].agency == agency)
            .collect();
        let forms: Vec<Vec<u8>> = ops
            .iter()
            .flat_map(|&i| truth.forms[i].iter().map(|f| f.bytes.clone()))
            .collect();
        let progress = progress.clone();
        tasks.push(tokio::spawn(async move {
            let mut tokens = Vec::with_capacity(forms.len());
            for chunk in forms.chunks(2000) {
                tokens.extend(deriver.tokens(chunk).await?);
                progress.done.fetch_add(chunk.len(), Ordering::Relaxed);
            }
            Ok::<_, anyhow::Error>((ops, tokens))
        }));
    }
    let mut tokens: Vec<Vec<[u8; 32]>> = vec![Vec::new(); sim.operations.len()];
    for task in tasks {
        let (ops, flat) = task.await??;
        let mut it = flat.into_iter();
        for i in ops {
            tokens[i] = it.by_ref().take(truth.forms[i].len()).collect();
        }
    }
    timings.derive = t.elapsed();

    // Register, in a shuffled order, from several workers at once.
    let t = Instant::now();
    let t0 = now();
    let mut order: Vec<usize> = (0..sim.operations.len()).collect();
    order.shuffle(&mut StdRng::seed_from_u64(sim.config.seed ^ 0x5eed));
    let requests: Arc<Vec<(usize, v1::RegisterOperationRequest)>> = Arc::new(
        order
            .into_iter()
            .map(|i| {
                let op = &sim.operations[i];
                let entries = truth.forms[i]
                    .iter()
                    .zip(&tokens[i])
                    .map(|(f, tok)| entry(tok, f.wire, f.local_ref))
                    .collect();
                let req = v1::RegisterOperationRequest {
                    operation_id: op.operation_id.clone(),
                    window: Some(v1::Window {
                        start_unix: t0 + op.window.0,
                        end_unix: t0 + op.window.1,
                    }),
                    tokens: entries,
                    // Case references stay with the agency: the broker takes none.
                    case_reference: String::new(),
                };
                (op.agency, req)
            })
            .collect(),
    );
    progress.phase("register operations", requests.len());
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut workers = Vec::new();
    for _ in 0..opts.workers.max(1) {
        let (requests, errors, progress) = (requests.clone(), errors.clone(), progress.clone());
        let mut clients = clients.clone();
        workers.push(tokio::spawn(async move {
            loop {
                let n = progress.done.fetch_add(1, Ordering::Relaxed);
                let Some((agency, req)) = requests.get(n) else {
                    break;
                };
                if let Err(s) = clients[*agency].register_operation(req.clone()).await {
                    let e = format!("operation {}: {s}", req.operation_id);
                    errors.lock().unwrap_or_else(|e| e.into_inner()).push(e);
                }
            }
        }));
    }
    for w in workers {
        w.await?;
    }
    timings.register = t.elapsed();
    let registered = Instant::now();

    // Delivery: wait for every expected alert, then for quiet (to catch extra ones).
    progress.phase("alerts", 2 * truth.pairs.len());
    let deadline = registered + opts.deadline;
    let mut last_count = usize::MAX;
    let mut last_change = Instant::now();
    loop {
        let count = received.lock().unwrap_or_else(|e| e.into_inner()).len();
        progress.done.store(count, Ordering::Relaxed);
        if count != last_count {
            (last_count, last_change) = (count, Instant::now());
        }
        let quiet = if count >= 2 * truth.pairs.len() {
            opts.quiet
        } else {
            opts.quiet * 10
        };
        if last_change.elapsed() >= quiet || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let register_errors = std::mem::take(&mut *errors.lock().unwrap_or_else(|e| e.into_inner()));
    Ok(Driven {
        received,
        collectors,
        ticker,
        registered,
        register_errors,
        tokens,
        timings,
    })
}

/// Every file under the federation folder except the agencies' own certificates and keys.
fn collect_files(dir: &std::path::Path, out: &mut Vec<(String, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            if !p.ends_with("agencies") {
                collect_files(&p, out);
            }
        } else if let Ok(bytes) = std::fs::read(&p) {
            out.push((p.display().to_string(), bytes));
        }
    }
}
