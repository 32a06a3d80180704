//! The operator's commands as a person runs them: `deconflict-broker dev` (the README's first
//! command), and the watch-centre and admin views against a running broker.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::Duration;

use deconfliction_proto::v1;
use deconfliction_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_mode_creates_a_federation_serves_it_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let fed_dir = dir.path().join("dev-federation");
    let port = free_port();
    let mut child = Command::new(broker_binary())
        .args([
            "dev",
            "--dir",
            fed_dir.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env("DECONFLICT_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("dev.log")).unwrap())
        .spawn()
        .unwrap();
    let agency = fed_dir.join("agencies/gd-psb");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let info = loop {
        if agency.join("key.pem").exists() {
            let ca = std::fs::read_to_string(agency.join("ca.pem")).unwrap();
            let cert = std::fs::read_to_string(agency.join("cert.pem")).unwrap();
            let key = std::fs::read_to_string(agency.join("key.pem")).unwrap();
            if let Ok(ch) = connect(
                format!("127.0.0.1:{port}").parse().unwrap(),
                &ca,
                Some((&cert, &key)),
            )
            .await
                && let Ok(info) = v1::broker_client::BrokerClient::new(ch)
                    .get_federation_info(v1::GetFederationInfoRequest {})
                    .await
            {
                break info.into_inner();
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "dev broker did not come up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(info.agency_id, "gd-psb");
    for f in [
        "broker.toml",
        "pki/ca.pem",
        "pki/crl.pem",
        "secrets/pepper",
        "secrets/token-service.seed",
    ] {
        assert!(fed_dir.join(f).exists(), "{f} missing");
    }
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no clean exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit after SIGTERM: {status}");
    // It said where the agencies' material is and what to run next; its log, written to a
    // file, has no terminal colours.
    let said = std::fs::read_to_string(dir.path().join("dev.log")).unwrap();
    assert!(
        said.contains("agency certificates:") && said.contains("next:"),
        "{said}"
    );
    assert!(said.contains("serving"), "{said}");
    assert!(!said.contains('\x1b'), "colours in a log file: {said:?}");
    // It says the token service runs inside it, for development only.
    assert!(
        said.contains("development only: the token service runs inside"),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_and_admin_commands_against_a_running_broker() {
    let fed = Federation::start_with(&["yn-psb", "gd-psb", "watch", "national-bureau"], |c| {
        enrol_roles(
            c,
            &[("watch", "watch-centre"), ("national-bureau", "admin")],
        );
        c.drills.end_grace_seconds = 0;
    })
    .await;
    let t = token();
    let mut yn = fed.client("yn-psb").await;
    let mut gd = fed.client("gd-psb").await;
    yn.register_operation(registration(vec![entry(&t, SelectorKind::Plate, 1)]))
        .await
        .unwrap();
    gd.register_operation(registration(vec![entry(&t, SelectorKind::Plate, 2)]))
        .await
        .unwrap();
    let ca = fed.dir.path().join("pki/ca.pem");
    let run = |who: &str, args: &[&str]| {
        let dir = fed.agency_dir(who);
        let mut cmd = Command::new(broker_binary());
        cmd.args(&args[..1]).args([
            "--broker",
            &format!("https://{}", fed.addr()),
            "--ca",
            ca.to_str().unwrap(),
            "--cert",
            dir.join("cert.pem").to_str().unwrap(),
            "--key",
            dir.join("key.pem").to_str().unwrap(),
        ]);
        let out = cmd.args(&args[1..]).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, text) = run("watch", &["watch", "matches"]);
    assert!(ok, "{text}");
    assert!(
        text.contains("plate") && text.contains("gd-psb") && text.contains("1 matches"),
        "{text}"
    );
    // What each side has done about it: nothing yet.
    assert!(text.contains("yn-psb -----"), "{text}");
    let (ok, text) = run("watch", &["watch", "stats"]);
    assert!(ok && text.contains("open matches 1"), "{text}");
    // The watch centre is no admin.
    let (ok, text) = run(
        "watch",
        &["admin", "suspend", "--agency", "gd-psb", "--reason", "x"],
    );
    assert!(!ok && text.contains("admin role"), "{text}");
    let (ok, text) = run(
        "national-bureau",
        &[
            "admin",
            "enrol",
            "--agency",
            "gd-psb",
            "--name",
            "Guangdong PSB",
        ],
    );
    assert!(ok, "{text}");
    let (ok, text) = run(
        "national-bureau",
        &[
            "admin", "suspend", "--agency", "gd-psb", "--reason", "audit",
        ],
    );
    assert!(ok && text.contains("SUSPENDED"), "{text}");
    // The registry as people read it: a header, and roles as `--role` spells them.
    let (ok, text) = run("national-bureau", &["admin", "list"]);
    assert!(ok, "{text}");
    assert!(text.lines().next().unwrap().starts_with("agency"), "{text}");
    assert!(
        text.contains("watch-centre") && !text.contains("ROLE_"),
        "{text}"
    );
    let e = gd
        .list_operations(v1::ListOperationsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    let (ok, text) = run("yn-psb", &["watch", "matches"]);
    assert!(!ok && text.contains("watch centre role"), "{text}");

    // Drills from the command line: start (printing what trainees add), halt, end, list.
    let admin = "national-bureau";
    let (ok, text) = run(
        admin,
        &[
            "drill",
            "start",
            "--id",
            "cli-1",
            "--hours",
            "1",
            "--simulated",
            "sim-x=Sim",
        ],
    );
    assert!(
        ok && text.contains("id = \"cli-1\"") && text.contains("public_key = \""),
        "{text}"
    );
    let (ok, text) = run(
        admin,
        &[
            "drill",
            "halt",
            "--id",
            "cli-1",
            "--reason",
            "real incident",
        ],
    );
    assert!(ok && text.contains("HALTED (real incident)"), "{text}");
    let (ok, text) = run(admin, &["drill", "end", "--id", "cli-1"]);
    assert!(ok && text.contains("records purged"), "{text}");
    let (ok, text) = run(admin, &["drill", "list"]);
    assert!(
        ok && text.contains("cli-1") && text.contains("ended, purged"),
        "{text}"
    );
    let (ok, text) = run("watch", &["drill", "list"]);
    assert!(!ok && text.contains("admin role"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_health_port_and_metrics_endpoint_serve_orchestrators() {
    let fed = Federation::start_with(&["yn-psb"], |c| {
        c.server.health_listen = Some("127.0.0.1:0".parse().unwrap());
        c.server.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let broker = fed.broker.as_ref().unwrap();
    // The kubelet's probe: plain gRPC health, no client certificate.
    let ch =
        tonic::transport::Endpoint::from_shared(format!("http://{}", broker.health_addr.unwrap()))
            .unwrap()
            .connect()
            .await
            .unwrap();
    let status = tonic_health::pb::health_client::HealthClient::new(ch)
        .check(tonic_health::pb::HealthCheckRequest {
            service: "deconfliction.v1.Broker".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    // The plain port serves nothing else.
    let ch =
        tonic::transport::Endpoint::from_shared(format!("http://{}", broker.health_addr.unwrap()))
            .unwrap()
            .connect()
            .await
            .unwrap();
    let e = v1::broker_client::BrokerClient::new(ch)
        .get_federation_info(v1::GetFederationInfoRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unimplemented);

    let mut yn = fed.client("yn-psb").await;
    yn.register_operation(registration(vec![entry(&token(), SelectorKind::Vin, 1)]))
        .await
        .unwrap();
    let mut deriver = fed.deriver("yn-psb").await;
    deriver
        .tokens(&[b"dcf1\0vin\0LSVAA4182E2184841".to_vec()])
        .await
        .unwrap();
    let body = http_get(broker.metrics_addr.unwrap()).await;
    for metric in [
        "deconfliction_registrations_total 1",
        "deconfliction_registered_tokens_total{kind=\"vin\"} 1",
        // Per epoch, so that a rotation's laggards show.
        "deconfliction_token_evaluations_total{agency=\"yn-psb\",key_epoch=\"1\"} 1",
        "deconfliction_flush_seconds",
        "deconfliction_matches_created_total 0",
        "deconfliction_store_bytes",
        // The first stage of the token filter (8 MiB; off on PostgreSQL, where replicas
        // share the store), and the start's index rebuild.
        if deconfliction_tests::pg::suite_on_postgres() {
            "deconfliction_token_filter_bytes 0"
        } else {
            "deconfliction_token_filter_bytes 8388608"
        },
        "deconfliction_index_rebuild_seconds",
        "deconfliction_drills_running 0",
    ] {
        assert!(body.contains(metric), "metrics lack {metric}:\n{body}");
    }
}

async fn http_get(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_while_serving_and_restore_into_a_new_folder() {
    let mut fed = Federation::start_with(&["yn-psb", "gd-psb", "national-bureau"], |c| {
        enrol_roles(c, &[("national-bureau", "admin")]);
        let root = c.server.data_dir.parent().unwrap().join("backups");
        std::fs::create_dir_all(&root).unwrap();
        c.server.backup_root = Some(root);
    })
    .await;
    let mut yn = fed.client("yn-psb").await;
    let mut gd = fed.client("gd-psb").await;
    let t = token();
    let a = registration(vec![entry(&t, SelectorKind::Person, 1)]);
    yn.register_operation(a.clone()).await.unwrap();
    gd.register_operation(registration(vec![entry(&t, SelectorKind::Person, 2)]))
        .await
        .unwrap();

    let backup = fed.dir.path().join("backups/backup-1");
    let admin = fed.agency_dir("national-bureau");
    let ca = fed.dir.path().join("pki/ca.pem");
    let conn = |args: &[&str]| {
        let mut cmd = Command::new(broker_binary());
        cmd.args(&args[..1]).args([
            "--broker",
            &format!("https://{}", fed.addr()),
            "--ca",
            ca.to_str().unwrap(),
            "--cert",
            admin.join("cert.pem").to_str().unwrap(),
            "--key",
            admin.join("key.pem").to_str().unwrap(),
        ]);
        let out = cmd.args(&args[1..]).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, text) = conn(&["admin", "backup", "--to", backup.to_str().unwrap()]);
    assert!(ok && text.contains("backup of"), "{text}");
    let (ok, text) = conn(&["admin", "backup", "--to", backup.to_str().unwrap()]);
    assert!(!ok && text.contains("already exists"), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "a backup holds what the store holds");
    }
    // Only below the backup root: not elsewhere, not through `..`, not through a link.
    let outside = fed.dir.path().join("elsewhere");
    let (ok, text) = conn(&["admin", "backup", "--to", outside.to_str().unwrap()]);
    assert!(!ok && text.contains("below the backup root"), "{text}");
    let (ok, text) = conn(&["admin", "backup", "--to", "../escaped"]);
    assert!(!ok && text.contains(".."), "{text}");
    #[cfg(unix)]
    {
        let link = fed.dir.path().join("backups/link");
        std::os::unix::fs::symlink(fed.dir.path(), &link).unwrap();
        let (ok, text) = conn(&["admin", "backup", "--to", "link/copy"]);
        assert!(!ok && text.contains("symbolic link"), "{text}");
        assert!(!fed.dir.path().join("copy").exists());
    }
    assert!(!outside.exists());
    // A relative name lands below the root.
    let (ok, text) = conn(&["admin", "backup", "--to", "backup-2"]);
    assert!(ok, "{text}");
    assert!(fed.dir.path().join("backups/backup-2").exists());
    // Written after the backup: not in it.
    let later = registration(vec![entry(&token(), SelectorKind::Vin, 3)]);
    yn.register_operation(later.clone()).await.unwrap();
    fed.stop_broker().await;

    // Restore into a new data folder and serve from it. (A backup is a copy in the embedded
    // store's format whatever the broker ran on: on PostgreSQL this restores it as sled.)
    fed.config.store.backend = deconflict_broker::config::StoreBackend::Sled;
    fed.config.server.data_dir = fed.dir.path().join("restored");
    let config = fed.write_config();
    let restore = |from: &std::path::Path| {
        let out = Command::new(broker_binary())
            .args([
                "restore",
                "--config",
                config.to_str().unwrap(),
                "--from",
                from.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, text) = restore(&backup);
    assert!(ok && text.contains("audit chain intact"), "{text}");
    let (ok, text) = restore(&backup);
    assert!(!ok && text.contains("already exists"), "{text}");
    fed.start_broker().await;
    let mut yn = fed.client("yn-psb").await;
    let op = yn
        .get_operation(v1::GetOperationRequest {
            operation_id: a.operation_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        op.match_ids.len(),
        1,
        "the match came back with the operation"
    );
    let e = yn
        .get_operation(v1::GetOperationRequest {
            operation_id: later.operation_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    let mut s = subscribe(&mut yn).await;
    let alerts = drain(&mut s, Duration::from_millis(300)).await;
    assert_eq!(alerts.len(), 1, "the alert queue came back too");
}
