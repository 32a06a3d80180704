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
//! - drill: the check ratio again while a drill of 34 provinces × 50 injects is played in the
//!   same broker process, beside the figure without one;
//! - PostgreSQL (a private cluster, when installed): registration against a bare transaction
//!   writing the same rows, check against the empty RPC, one replica against two, and alert
//!   latency across replicas;
//! - pepper re-key: records re-keyed per second, ratio to a plain copy of the same store;
//! - growth: check p50/p99, broker RSS and bytes on disk per stored token at several sizes.
//!
//! ```text
//! cargo run --release -p deconfliction-tests --bin deconflict-bench                 # quick, < 1 min
//! cargo run --release -p deconfliction-tests --bin deconflict-bench -- --full       # 100k, 1M, 10M
//! cargo run --release -p deconfliction-tests --bin deconflict-bench -- --json out.json
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod drill;
mod harness;
mod parts;
mod postgres;
mod rekey;

use std::path::PathBuf;

use deconflict_broker::secrets::pepper::Pepper;
use deconfliction_tests::free_port;

use harness::*;
use parts::*;

struct Args {
    full: bool,
    seconds: f64,
    concurrency: Vec<usize>,
    sizes: Vec<u64>,
    json: Option<PathBuf>,
    /// The growth part's broker page cache (`[store] cache_mib`); None: the default.
    cache_mib: Option<u64>,
    /// Stored tokens in the broker the check/register/alerts/tokens parts run against.
    preload: u64,
    /// Run only these parts (check, register, alerts, tokens, drill, postgres, rekey,
    /// growth); empty:
    /// all.
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
        preload: 100_000,
        cache_mib: None,
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
            "--cache-mib" => a.cache_mib = it.next().and_then(|v| v.parse().ok()),
            "--preload" => a.preload = it.next().and_then(|v| v.parse().ok()).unwrap_or(a.preload),
            "--concurrency" => {
                a.concurrency = it
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
                    "deconflict-bench [--full] [--seconds S] [--sizes 100000,1000000] [--concurrency 1,8,64] [--preload 100000] [--cache-mib 256] [--json FILE] \
                     [--only check,register,alerts,tokens,drill,postgres,rekey,growth]"
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
    let _ = preload(fed.data_dir(), &pepper, args.preload);
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
    if args.wants("drill") {
        eprintln!("  check with and without a drill running beside it");
        drill::issue_party_certs(&fed);
        drill::bench_drill(&fed, &ch, args.seconds, &mut rows).await;
    }
    drop(broker);

    if args.wants("postgres") {
        eprintln!("  the broker on PostgreSQL");
        postgres::bench_postgres(args.seconds, &args.concurrency, &mut rows).await;
    }

    if args.wants("rekey") {
        let size = if args.full { 1_000_000 } else { 100_000 };
        eprintln!("  pepper re-key vs store copy, {size} stored tokens");
        rekey::bench_rekey(size, &mut rows);
    }

    let mut growth = Vec::new();
    for &size in args.sizes.iter().filter(|_| args.wants("growth")) {
        eprintln!("  growth: {size} stored tokens");
        growth.push(bench_growth(size, args.seconds, args.cache_mib).await);
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
    println!(
        "| stored tokens | check p50 µs | check p99 µs | held check p50 µs | held check p99 µs \
         | broker RSS MiB | disk bytes/token | start s | compacted bytes/token | compact s |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for g in &growth {
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} | {:.0} | {:.1} |",
            g.stored_tokens,
            g.check_p50_us,
            g.check_p99_us,
            g.held_check_p50_us,
            g.held_check_p99_us,
            g.rss_bytes as f64 / (1024.0 * 1024.0),
            g.disk_bytes_per_token,
            g.start_seconds,
            g.compacted_bytes_per_token,
            g.compact_seconds
        );
    }
    if let Some(path) = args.json {
        let json = serde_json::json!({ "rows": rows, "growth": growth });
        std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
        eprintln!("JSON written to {}", path.display());
    }
}
