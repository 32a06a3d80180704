//! The broker on PostgreSQL, against baselines measured in the same run on the same private
//! cluster (fsync on, synchronous commit):
//! - bare transaction: BEGIN, the rows a registration of 8 tokens writes (11 rows of the same
//!   sizes) in one INSERT, COMMIT, from as many client threads as the concurrency;
//! - register through one broker replica, ratio to that;
//! - check of 8 tokens against the empty RPC of the same replica;
//! - registrations with two replicas (clients split over them) beside one;
//! - alert latency across replicas: subscribed on one, registered through the other.

use std::time::{Duration, Instant};

use deconfliction_proto::v1;
use deconfliction_proto::v1::broker_client::BrokerClient;
use deconfliction_tests::{Federation, SelectorKind, entry, free_port, pg, token};
use rand::RngCore;

use crate::harness::*;
use crate::parts::bench_baseline_and_check;

/// Bare transactions per second of `rows` rows each, `c` connections at once, for `secs`.
fn bare_transactions(url: &str, c: usize, secs: f64) -> (f64, Vec<Duration>) {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let threads: Vec<_> = (0..c)
        .map(|_| {
            let url = url.to_string();
            std::thread::spawn(move || {
                let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                client
                    .batch_execute(
                        "SET synchronous_commit = on; CREATE TABLE IF NOT EXISTS bare \
                         (k bytea PRIMARY KEY, v bytea NOT NULL)",
                    )
                    .unwrap();
                let insert = client
                    .prepare(
                        "INSERT INTO bare (k, v) SELECT * FROM UNNEST($1::bytea[], $2::bytea[])",
                    )
                    .unwrap();
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    // What a registration of 8 tokens writes: the operation record, 8 token
                    // postings, the index and audit records.
                    let mut keys = Vec::new();
                    let mut values = Vec::new();
                    for size in [300usize, 60, 60, 60, 60, 60, 60, 60, 60, 140, 0] {
                        let mut k = vec![0u8; 35];
                        rand::thread_rng().fill_bytes(&mut k);
                        keys.push(k);
                        values.push(vec![7u8; size]);
                    }
                    let mut tx = client.transaction().unwrap();
                    tx.execute(&insert, &[&keys, &values]).unwrap();
                    tx.commit().unwrap();
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut lat: Vec<Duration> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let rate = lat.len() as f64 / started.elapsed().as_secs_f64();
    lat.sort();
    (rate, lat)
}

async fn register_load(
    channels: &[tonic::transport::Channel],
    c: usize,
    secs: f64,
) -> (f64, Vec<Duration>) {
    let clients: Vec<_> = channels
        .iter()
        .map(|ch| BrokerClient::new(ch.clone()))
        .collect();
    drive(c, secs, move |i| {
        // Worker w's calls go to replica w mod n.
        let mut b = clients[(i / 1_000_000_000) % clients.len()].clone();
        async move {
            let tokens = (0..8)
                .map(|k| entry(&token(), SelectorKind::Email, k))
                .collect();
            b.register_operation(deconfliction_tests::registration(tokens))
                .await
                .unwrap();
        }
    })
    .await
}

/// A second broker process on the same database (its own port and data folder).
async fn replica(fed: &Federation) -> (BrokerProcess, std::net::SocketAddr) {
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut config = fed.config.clone();
    config.server.listen = addr;
    config.server.data_dir = fed.dir.path().join("replica-b");
    let path = fed.dir.path().join("replica-b.toml");
    std::fs::write(&path, deconflict_broker::config::to_toml(&config).unwrap()).unwrap();
    let child = std::process::Command::new(broker_binary())
        .args(["serve", "--config", path.to_str().unwrap()])
        .env("DECONFLICT_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let spawned = Instant::now();
    loop {
        if let Ok(ch) = fed.channel_at(addr, "bench-a").await
            && BrokerClient::new(ch)
                .get_federation_info(v1::GetFederationInfoRequest {})
                .await
                .is_ok()
        {
            break;
        }
        assert!(
            spawned.elapsed() < Duration::from_secs(60),
            "replica did not come up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (
        BrokerProcess {
            child,
            ready_after: spawned.elapsed(),
        },
        addr,
    )
}

pub(crate) async fn bench_postgres(secs: f64, concurrency: &[usize], rows: &mut Vec<Row>) {
    if pg::bin_dir().is_none() {
        eprintln!("  postgres: skipped (PostgreSQL is not installed)");
        return;
    }
    let cluster = pg::Cluster::create("");
    let mut fed = setup().await;
    let url = cluster.database();
    let dir = fed.dir.path().to_path_buf();
    pg::point_at(&mut fed.config, &dir, &url);
    fed.config.server.listen = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let one = start_broker(&fed).await;
    let ch = fed.channel("bench-a").await.unwrap();
    let bare_url = cluster.database();
    for &c in concurrency {
        eprintln!("  postgres: register vs bare transaction, concurrency {c}");
        let u = bare_url.clone();
        let (base, blat) = tokio::task::spawn_blocking(move || bare_transactions(&u, c, secs))
            .await
            .unwrap();
        rows.push(Row::measured(
            "PostgreSQL: bare transaction, 11 rows, synchronous commit",
            c,
            base,
            base,
            &blat,
        ));
        let (rate, lat) = register_load(std::slice::from_ref(&ch), c, secs).await;
        rows.push(Row::measured(
            "PostgreSQL: register 8 tokens, one replica",
            c,
            rate,
            base,
            &lat,
        ));
    }
    eprintln!("  postgres: check vs empty RPC, concurrency 8");
    let mut check_rows = Vec::new();
    bench_baseline_and_check(&ch, 8, secs, &mut check_rows).await;
    for mut r in check_rows {
        r.what = format!("PostgreSQL: {}", r.what);
        rows.push(r);
    }

    eprintln!("  postgres: two replicas");
    let (two, addr_b) = replica(&fed).await;
    let ch_b = fed.channel_at(addr_b, "bench-a").await.unwrap();
    for &c in concurrency.iter().filter(|c| **c > 1) {
        let (one_rate, _) = register_load(std::slice::from_ref(&ch), c, secs).await;
        let (rate, lat) = register_load(&[ch.clone(), ch_b.clone()], c, secs).await;
        rows.push(Row::measured(
            "PostgreSQL: register, two replicas (vs one)",
            c,
            rate,
            one_rate,
            &lat,
        ));
    }
    eprintln!("  postgres: alert latency across replicas");
    let a_on_b = fed.channel_at(addr_b, "bench-a").await.unwrap();
    let b_on_a = fed.channel("bench-b").await.unwrap();
    rows.push(
        crate::parts::alert_latency_between(
            a_on_b,
            b_on_a,
            200,
            1000,
            "PostgreSQL: alert across replicas",
        )
        .await,
    );
    drop(two);
    drop(one);
}
