//! The broker on PostgreSQL through faults: the database going away and coming back, a
//! replica killed under agencyd's load, the primary killed with a synchronous standby to
//! promote, and a database restored with its own tools. Real processes and real clusters.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::time::Duration;

use deconfliction_proto::v1;
use deconfliction_tests::{
    Federation, SelectorKind, entry, next_alerts, pg, registration, subscribe, token,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_goes_away_and_comes_back() {
    if pg::skip_test("the_database_goes_away_and_comes_back") {
        return;
    }
    let cluster = pg::Cluster::create("");
    let url = cluster.database();
    let keep = tempfile::tempdir().unwrap();
    let dir = keep.path().to_path_buf();
    let fed = Federation::start_with(&["yn", "gx"], move |c| pg::point_at(c, &dir, &url)).await;
    let mut yn = fed.client("yn").await;
    let t = token();
    yn.register_operation(registration(vec![entry(&t, SelectorKind::Phone, 1)]))
        .await
        .unwrap();

    cluster.kill();
    let mut gx = fed.client("gx").await;
    let during = gx
        .register_operation(registration(vec![entry(&t, SelectorKind::Phone, 2)]))
        .await
        .unwrap_err();
    assert_eq!(during.code(), tonic::Code::Unavailable, "{during:?}");
    assert!(
        during.message().contains("nothing was acknowledged"),
        "{during:?}"
    );
    let listed = gx
        .list_operations(v1::ListOperationsRequest::default())
        .await;
    assert_eq!(listed.unwrap_err().code(), tonic::Code::Unavailable);

    cluster.start();
    // No restart of the broker: its connections come back by themselves.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let registered = loop {
        match gx
            .register_operation(registration(vec![entry(&t, SelectorKind::Phone, 2)]))
            .await
        {
            Ok(r) => break r.into_inner(),
            Err(s) if tokio::time::Instant::now() < deadline => {
                assert_eq!(s.code(), tonic::Code::Unavailable, "{s:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(s) => panic!("not back after the database returned: {s:?}"),
        }
    };
    assert_eq!(
        registered.matches_touched, 1,
        "the token registered before the outage"
    );
    let mut yn_alerts = subscribe(&mut yn).await;
    assert_eq!(
        next_alerts(&mut yn_alerts, 1, Duration::from_secs(10))
            .await
            .len(),
        1
    );
}

/// A replica run as its own process, on the federation's database.
fn spawn_replica(fed: &Federation, port: u16, log: &std::path::Path) -> std::process::Child {
    let mut config = fed.config.clone();
    config.server.listen = format!("127.0.0.1:{port}").parse().unwrap();
    config.server.data_dir = fed.dir.path().join(format!("replica-{port}"));
    let path = fed.dir.path().join(format!("replica-{port}.toml"));
    std::fs::write(&path, deconflict_broker::config::to_toml(&config).unwrap()).unwrap();
    let log = std::fs::File::create(log).unwrap();
    std::process::Command::new(deconfliction_tests::broker_binary())
        .args(["serve", "--config", path.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

fn email(i: usize) -> token_spec::normalize::Selector {
    token_spec::normalize::Selector::Email {
        text: format!("courier{i}@mail.example"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn agencyd_fails_over_when_its_replica_is_killed_under_load() {
    if pg::skip_test("agencyd_fails_over_when_its_replica_is_killed_under_load") {
        return;
    }
    use agency_client::control::{self, pb};
    const N: usize = 40;
    let keep = tempfile::tempdir().unwrap();
    let fed = pg::federation(&["yn-psb", "gd-psb"], keep.path()).await;
    let port = deconfliction_tests::free_port();
    let log = fed.dir.path().join("replica-b.log");
    let mut b = Some(spawn_replica(&fed, port, &log));
    let b_addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    deconfliction_tests::eventually(Duration::from_secs(60), "replica B up", || async {
        let ch = fed.channel_at(b_addr, "yn-psb").await.ok()?;
        v1::broker_client::BrokerClient::new(ch)
            .get_federation_info(v1::GetFederationInfoRequest {})
            .await
            .ok()
    })
    .await;

    // Yunnan's daemon uses replica B first, replica A (the federation's broker) after it.
    let root = fed.dir.path().join("yn-agencyd");
    let mut config = deconfliction_tests::agencyd_config(&fed, "yn-psb", &root);
    config.broker.address = b_addr.to_string();
    config.broker.replicas = vec![fed.addr().to_string()];
    config.broker.failover_probe_seconds = 1;
    let sink = config.sinks.jsonl.clone().unwrap();
    let daemon = agency_client::daemon::start(config.clone()).await.unwrap();
    let mut yn = control::connect(&config.socket_path()).await.unwrap();

    // Registrations go into the outbox while B is killed part-way.
    let mut submitted = Vec::new();
    for i in 0..N {
        let reply = yn
            .register(pb::RegisterRequest {
                window: Some(deconfliction_tests::window_hours(24)),
                selectors: vec![control::selector_to_proto(&email(i), 0, "")],
                wait_ms: 0,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        submitted.push(reply.operation.unwrap().operation_id);
        if i == N / 3
            && let Some(mut replica) = b.take()
        {
            replica.kill().unwrap();
            replica.wait().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let synced = deconfliction_tests::eventually(
        Duration::from_secs(90),
        "every operation synced through replica A",
        || {
            let mut yn = yn.clone();
            async move {
                let ops = yn
                    .list_operations(pb::ListOperationsRequest::default())
                    .await
                    .ok()?
                    .into_inner()
                    .operations;
                let all =
                    ops.len() == N && ops.iter().all(|o| o.sync == pb::SyncState::Synced as i32);
                all.then_some(ops)
            }
        },
    )
    .await;
    assert_eq!(synced.len(), N);

    // The broker holds each exactly once: nothing acknowledged by B was lost, nothing retried
    // through A was doubled.
    let mut direct = fed.client("yn-psb").await;
    let held = direct
        .list_operations(v1::ListOperationsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .operations;
    let held_ids: HashSet<String> = held.iter().map(|o| o.operation_id.clone()).collect();
    assert_eq!(held.len(), N, "the broker holds {} operations", held.len());
    assert_eq!(held_ids, submitted.iter().cloned().collect::<HashSet<_>>());

    // Guangdong registers the same e-mails through A: each alert reaches Yunnan's sink once.
    let mut deriver = fed.deriver("gd-psb").await;
    let mut gd = fed.client("gd-psb").await;
    for i in 0..N {
        let tokens = deconfliction_tests::selector_entries(&mut deriver, &[email(i)])
            .await
            .unwrap();
        gd.register_operation(v1::RegisterOperationRequest {
            operation_id: uuid::Uuid::new_v4().to_string(),
            window: Some(deconfliction_tests::window_hours(24)),
            tokens,
            case_reference: String::new(),
        })
        .await
        .unwrap();
    }
    let seqs = deconfliction_tests::eventually(Duration::from_secs(60), "every alert", || {
        let sink = sink.clone();
        async move {
            let s = deconfliction_tests::agencyd::sink_seqs(&sink);
            (s.len() >= N).then_some(s)
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seqs_after = deconfliction_tests::agencyd::sink_seqs(&sink);
    assert_eq!(seqs_after, seqs, "alerts kept arriving");
    assert_eq!(
        seqs,
        (1..=N as u64).collect::<Vec<_>>(),
        "lost or doubled alerts"
    );
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_synchronous_standby_promoted_after_the_primary_dies_has_every_acknowledged_write() {
    if pg::skip_test(
        "a_synchronous_standby_promoted_after_the_primary_dies_has_every_acknowledged_write",
    ) {
        return;
    }
    let primary = pg::Cluster::create(
        "wal_level = replica\nmax_wal_senders = 4\nsynchronous_standby_names = '*'",
    );
    // The standby first: with synchronous_standby_names set, the primary's commits (even
    // CREATE DATABASE) wait for one.
    let standby = pg::Cluster::standby_of(&primary);
    let url = primary.database();
    let db = url
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string();
    let keep = tempfile::tempdir().unwrap();
    let dir = keep.path().to_path_buf();
    let mut fed = Federation::start_with(&["yn", "gx"], {
        let (dir, url) = (dir.clone(), url.clone());
        move |c| pg::point_at(c, &dir, &url)
    })
    .await;
    // The standby refuses to serve as a primary (once it has replayed the database's creation:
    // synchronous commit waits for the standby to flush, not to replay).
    let replayed = std::time::Instant::now();
    while standby
        .psql(
            "postgres",
            &format!("SELECT 1 FROM pg_database WHERE datname = '{db}'"),
        )
        .as_deref()
        != Ok("1")
    {
        assert!(
            replayed.elapsed() < Duration::from_secs(30),
            "standby not replaying"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut on_standby = fed.config.clone();
    pg::point_at(&mut on_standby, &dir, &standby.url(&db));
    on_standby.server.listen = "127.0.0.1:0".parse().unwrap();
    let e = pg::start_error(&on_standby).await;
    assert!(e.contains("standby"), "{e}");

    // Writers register until the primary is killed under them; what was acknowledged is kept.
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut writers = Vec::new();
    for agency in ["yn", "gx"] {
        let mut c = fed.client(agency).await;
        let acked = acknowledged.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..10_000u64 {
                let req = registration(vec![entry(&token(), SelectorKind::Phone, i)]);
                let id = req.operation_id.clone();
                match c.register_operation(req).await {
                    Ok(_) => acked.lock().unwrap().push(id),
                    Err(_) => return,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    primary.kill();
    for w in writers {
        w.await.unwrap();
    }
    let acked = acknowledged.lock().unwrap().clone();
    assert!(
        acked.len() > 20,
        "only {} registrations before the kill",
        acked.len()
    );

    standby.promote();
    // As the DBAs would: the new primary has no standby of its own yet, so it must not wait
    // for one (its configuration was copied from the old primary).
    standby
        .psql(
            "postgres",
            "ALTER SYSTEM SET synchronous_standby_names = ''",
        )
        .unwrap();
    standby.psql("postgres", "SELECT pg_reload_conf()").unwrap();
    fed.stop_broker().await;
    pg::point_at(&mut fed.config, &dir, &standby.url(&db));
    fed.start_broker().await;
    let mut held = HashSet::new();
    for agency in ["yn", "gx"] {
        let mut c = fed.client(agency).await;
        let mut page_token = String::new();
        loop {
            let page = c
                .list_operations(v1::ListOperationsRequest {
                    page_token: page_token.clone(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            held.extend(page.operations.into_iter().map(|o| o.operation_id));
            page_token = page.next_page_token;
            if page_token.is_empty() {
                break;
            }
        }
    }
    let lost: Vec<&String> = acked.iter().filter(|id| !held.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged registrations lost: {lost:?}",
        lost.len()
    );
    // And the promoted database takes writes.
    let mut yn = fed.client("yn").await;
    yn.register_operation(registration(vec![entry(&token(), SelectorKind::Phone, 1)]))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_database_restore_the_queues_start_a_new_incarnation() {
    if pg::skip_test("after_a_database_restore_the_queues_start_a_new_incarnation") {
        return;
    }
    let keep = tempfile::tempdir().unwrap();
    let mut fed = pg::federation(&["yn", "gx"], keep.path()).await;
    let mut yn = fed.client("yn").await;
    let mut gx = fed.client("gx").await;
    deconfliction_tests::register_shared(&mut yn, &mut gx, SelectorKind::Phone).await;
    let before = next_alerts(&mut subscribe(&mut yn).await, 1, Duration::from_secs(10)).await;
    fed.stop_broker().await;
    let config = fed.write_config();
    let out = std::process::Command::new(deconfliction_tests::broker_binary())
        .args(["store", "restored", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("new incarnation") && said.contains("intact"),
        "{said}"
    );
    fed.start_broker().await;
    let mut yn = fed.client("yn").await;
    // Resuming at the old place, in the old incarnation, is refused: start over.
    let refused = yn
        .subscribe(v1::SubscribeRequest {
            after: before[0].seq,
            incarnation: before[0].incarnation,
        })
        .await;
    let refused = match refused {
        Err(s) => s,
        Ok(stream) => stream.into_inner().message().await.unwrap_err(),
    };
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    let again = next_alerts(&mut subscribe(&mut yn).await, 1, Duration::from_secs(10)).await;
    assert_ne!(again[0].incarnation, before[0].incarnation);
}
