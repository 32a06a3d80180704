//! The broker on PostgreSQL: replicas sharing one database keep every promise one broker
//! keeps (one match per pair, alerts once, whichever replica), bad databases are refused at
//! start, and a ledger moves between sled and PostgreSQL both ways. Real servers: a private
//! cluster started by the test (`tests/src/pg.rs`). What survives faults (a replica, the
//! database or the primary killed) is in `postgres_faults.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::time::Duration;

use deconfliction_proto::v1;
use deconfliction_tests::{
    Federation, SelectorKind, drain, entry, match_of, next_alerts, pg, registration, subscribe,
    token,
};

fn ids_of(alerts: &[v1::Alert]) -> Vec<String> {
    alerts
        .iter()
        .map(|a| {
            let m = match_of(a);
            assert!(m.created, "a new match, not a grown one");
            m.match_id.clone()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_race_one_fresh_token_a_thousand_times() {
    if pg::skip_test("two_replicas_race_one_fresh_token_a_thousand_times") {
        return;
    }
    const ROUNDS: usize = 1000;
    let keep = tempfile::tempdir().unwrap();
    let fed = pg::federation(&["yn", "gx"], keep.path()).await;
    let b = fed.start_replica(2).await;
    let mut yn = fed.client("yn").await;
    let mut gx = fed.client_at(b.addr, "gx").await;
    // Each agency listens on the replica the *other* one registers through: every alert
    // crosses replicas.
    let mut yn_alerts = subscribe(&mut fed.client_at(b.addr, "yn").await).await;
    let mut gx_alerts = subscribe(&mut fed.client("gx").await).await;
    for round in 0..ROUNDS {
        let t = token();
        let ra = registration(vec![entry(&t, SelectorKind::Phone, round as u64)]);
        let rb = registration(vec![entry(&t, SelectorKind::Phone, round as u64)]);
        let (a, b) = tokio::join!(yn.register_operation(ra), gx.register_operation(rb));
        a.unwrap();
        b.unwrap();
    }
    let yn_ids = ids_of(&next_alerts(&mut yn_alerts, ROUNDS, Duration::from_secs(120)).await);
    let gx_ids = ids_of(&next_alerts(&mut gx_alerts, ROUNDS, Duration::from_secs(120)).await);
    assert!(
        drain(&mut yn_alerts, Duration::from_millis(1500))
            .await
            .is_empty(),
        "yn: an alert twice"
    );
    assert!(
        drain(&mut gx_alerts, Duration::from_millis(200))
            .await
            .is_empty(),
        "gx: an alert twice"
    );
    let yn_set: HashSet<String> = yn_ids.iter().cloned().collect();
    let gx_set: HashSet<String> = gx_ids.iter().cloned().collect();
    assert_eq!(
        yn_set.len(),
        ROUNDS,
        "one match per round, each alerted once"
    );
    assert_eq!(yn_set, gx_set, "both sides were told of the same matches");
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_three_agencies_one_match_per_pair() {
    if pg::skip_test("three_replicas_three_agencies_one_match_per_pair") {
        return;
    }
    const ROUNDS: u64 = 100;
    let keep = tempfile::tempdir().unwrap();
    let agencies = ["yn", "gx", "gd"];
    let fed = pg::federation(&agencies, keep.path()).await;
    let replicas = [fed.start_replica(2).await, fed.start_replica(3).await];
    let addrs = [fed.addr(), replicas[0].addr, replicas[1].addr];
    let mut clients = Vec::new();
    for (i, a) in agencies.iter().enumerate() {
        clients.push(fed.client_at(addrs[i], a).await);
    }
    for round in 0..ROUNDS {
        let t = token();
        let mut tasks = Vec::new();
        for c in &clients {
            let mut c = c.clone();
            let req = registration(vec![entry(&t, SelectorKind::Plate, round)]);
            tasks.push(tokio::spawn(async move { c.register_operation(req).await }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
    }
    let mut all: std::collections::BTreeMap<String, usize> = Default::default();
    for (i, a) in agencies.iter().enumerate() {
        // Read through yet another replica than the one registered through.
        let mut c = fed.client_at(addrs[(i + 1) % 3], a).await;
        let mut s = subscribe(&mut c).await;
        let ids =
            ids_of(&next_alerts(&mut s, (ROUNDS * 2) as usize, Duration::from_secs(60)).await);
        assert!(
            drain(&mut s, Duration::from_millis(500)).await.is_empty(),
            "{a}: an alert twice"
        );
        assert_eq!(
            ids.iter().collect::<HashSet<_>>().len(),
            ids.len(),
            "{a}: duplicate"
        );
        for id in ids {
            *all.entry(id).or_default() += 1;
        }
    }
    assert_eq!(all.len() as u64, ROUNDS * 3, "one match per pair per round");
    assert!(
        all.values().all(|sides| *sides == 2),
        "both sides of each match told"
    );
    for r in replicas {
        r.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspension_on_one_replica_holds_on_the_other() {
    if pg::skip_test("suspension_on_one_replica_holds_on_the_other") {
        return;
    }
    let keep = tempfile::tempdir().unwrap();
    let fed = pg::federation(&["yn", "gx"], keep.path()).await;
    let b = fed.start_replica(2).await;
    let mut gx_b = fed.client_at(b.addr, "gx").await;
    gx_b.register_operation(registration(vec![entry(&token(), SelectorKind::Phone, 1)]))
        .await
        .unwrap();
    // Suspended through replica A (the ledger call an admin's SuspendAgency makes) ...
    let ledger = &fed.broker.as_ref().unwrap().core.ledger;
    let id = |a: &str| deconflict_broker::identity::AgencyId::parse(a).unwrap();
    let (_, _, notes) = ledger
        .set_suspended(
            &id("admin"),
            &id("gx"),
            true,
            "test",
            false,
            deconfliction_tests::now(),
        )
        .unwrap();
    drop(notes);
    // ... and refused by replica B at once.
    let refused = gx_b
        .register_operation(registration(vec![entry(&token(), SelectorKind::Phone, 2)]))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn databases_it_must_not_serve_are_refused_at_start() {
    if pg::skip_test("databases_it_must_not_serve_are_refused_at_start") {
        return;
    }
    let keep = tempfile::tempdir().unwrap();
    let mut fed = pg::federation(&["yn"], keep.path()).await;
    fed.stop_broker().await;
    let good = fed.config.clone();
    let url = std::fs::read_to_string(good.store.postgres.url_file.as_ref().unwrap()).unwrap();

    // Nothing listening there.
    let mut c = good.clone();
    let port = deconfliction_tests::free_port();
    pg::point_at(
        &mut c,
        keep.path(),
        &format!("postgresql://postgres@127.0.0.1:{port}/x"),
    );
    let e = pg::start_error(&c).await;
    assert!(e.contains("cannot use the database"), "{e}");

    // Not a connection string.
    pg::point_at(&mut c, keep.path(), "this is not a connection string");
    let e = pg::start_error(&c).await;
    assert!(e.contains("not valid") && !e.contains("this is not"), "{e}");

    // Neither file nor variable.
    c.store.postgres.url_file = None;
    let e = pg::start_error(&c).await;
    assert!(e.contains("url_file") && e.contains("url_env"), "{e}");

    // Another broker's pepper.
    let mut c = good.clone();
    c.secrets.pepper = keep.path().join("other-pepper");
    let e = pg::start_error(&c).await;
    assert!(e.to_lowercase().contains("pepper"), "{e}");

    // A read-only database (what a standby given as the primary looks like).
    let cluster = pg::shared();
    let db = url
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string();
    cluster
        .psql(
            "postgres",
            &format!("ALTER DATABASE {db} SET default_transaction_read_only = on"),
        )
        .unwrap();
    let e = pg::start_error(&good).await;
    assert!(e.contains("read-only"), "{e}");
    cluster
        .psql(
            "postgres",
            &format!("ALTER DATABASE {db} SET default_transaction_read_only = off"),
        )
        .unwrap();

    // A store of a newer format.
    cluster
        .psql(
            &db,
            "UPDATE deconfliction_kv SET v = '\\x00000063' WHERE k = 'meta/format'::bytea",
        )
        .unwrap();
    let e = pg::start_error(&good).await;
    assert!(e.contains("newer"), "{e}");
}

fn migrate(args: &[&str]) -> std::process::Output {
    std::process::Command::new(deconfliction_tests::broker_binary())
        .args(["store", "migrate"])
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_moves_from_sled_to_postgres_and_back() {
    if pg::skip_test("a_ledger_moves_from_sled_to_postgres_and_back") {
        return;
    }
    let mut fed = Federation::start(&["yn", "gx"]).await;
    let mut yn = fed.client("yn").await;
    let mut gx = fed.client("gx").await;
    deconfliction_tests::register_shared(&mut yn, &mut gx, SelectorKind::Phone).await;
    let later = token();
    yn.register_operation(registration(vec![entry(&later, SelectorKind::Plate, 7)]))
        .await
        .unwrap();
    fed.stop_broker().await;

    let url = pg::shared().database();
    let url_file = fed.dir.path().join("database-url");
    std::fs::write(&url_file, &url).unwrap();
    let sled_store = fed.config.server.data_dir.join("store");
    let out = migrate(&[
        "--from",
        sled_store.to_str().unwrap(),
        "--to",
        "postgres",
        "--url-file",
        url_file.to_str().unwrap(),
    ]);
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("audit chain") && said.contains("intact"),
        "{said}"
    );
    // Into a target that holds a ledger already: refused, nothing changed.
    let again = migrate(&[
        "--from",
        sled_store.to_str().unwrap(),
        "--to",
        "postgres",
        "--url-file",
        url_file.to_str().unwrap(),
    ]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("empty"),
        "{again:?}"
    );

    // On PostgreSQL: the operations, the match, and the token index all came along.
    let dir = fed.dir.path().to_path_buf();
    pg::point_at(&mut fed.config, &dir, &url);
    fed.start_broker().await;
    let mut yn = fed.client("yn").await;
    let mut gx = fed.client("gx").await;
    let ops = yn
        .list_operations(v1::ListOperationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ops.operations.len(), 2);
    let grown = gx
        .register_operation(registration(vec![entry(&later, SelectorKind::Plate, 8)]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        grown.matches_touched, 1,
        "a token registered on sled matches on PostgreSQL"
    );
    fed.stop_broker().await;

    // And back, into a new sled folder.
    let back = fed.dir.path().join("data-back");
    let out = migrate(&[
        "--from",
        "postgres",
        "--url-file",
        url_file.to_str().unwrap(),
        "--to",
        back.join("store").to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fed.config.store = Default::default();
    fed.config.server.data_dir = back;
    fed.start_broker().await;
    let mut yn = fed.client("yn").await;
    let ops = yn
        .list_operations(v1::ListOperationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ops.operations.len(), 2);
    let matched: usize = ops.operations.iter().map(|o| o.match_ids.len()).sum();
    assert_eq!(matched, 2, "both matches came back");
}
