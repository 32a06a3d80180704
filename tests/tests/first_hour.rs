//! The first hour and the 3 a.m. hour: what a person meets when something is wrong, tried with
//! the real binaries. Each error says what to fix, prints once, exits with the documented
//! code, and changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use agency_client::daemon;
use deconfliction_tests::*;

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

async fn output(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn broker(args: &[&str]) -> Command {
    let mut cmd = Command::new(broker_binary());
    cmd.args(args)
        .env("RUST_BACKTRACE", "1")
        .env_remove("DECONFLICT_LOG");
    cmd
}

fn deconflict(socket: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(deconflict_binary());
    cmd.arg("--socket")
        .arg(socket)
        .args(args)
        .env_remove("DECONFLICT_SOCKET")
        .env("NO_COLOR", "1");
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_broker_on_a_served_folder_says_so_at_once_and_a_failed_start_leaves_nothing() {
    if deconfliction_tests::pg::suite_on_postgres() {
        // On PostgreSQL a second broker on the same store is a replica, which is the point
        // (tests/tests/postgres.rs); the folder lock is sled's.
        eprintln!("skipped on PostgreSQL: the single-writer lock is the embedded store's");
        return;
    }
    let mut fed = Federation::start(&["yn-psb"]).await;
    let serving = fed.addr();
    fed.config.server.listen = "127.0.0.1:0".parse().unwrap();
    let config = fed.write_config();
    let started = Instant::now();
    let out = output(broker(&["serve", "--config", config.to_str().unwrap()])).await;
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("locked by another process"), "{said}");
    // At once, not after the in-process retry meant for a restart.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // One line: the message and its causes, no backtrace whatever RUST_BACKTRACE says.
    assert_eq!(said.trim().lines().count(), 1, "{said}");
    assert!(
        !said.contains("stack backtrace") && !said.contains("Caused by"),
        "{said}"
    );
    assert!(!said.contains('\x1b'), "colours in a pipe: {said:?}");

    // A start that fails (the port is taken) leaves no empty data folder behind.
    let fresh = fed.dir.path().join("fresh-data");
    fed.config.server.data_dir = fresh.clone();
    fed.config.server.listen = serving;
    let config = fed.write_config();
    let out = output(broker(&["serve", "--config", config.to_str().unwrap()])).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("cannot listen"), "{}", text(&out));
    assert!(!fresh.exists(), "a failed start left {}", fresh.display());

    // A configuration that cannot be read is exit 2, as bad arguments are.
    let out = output(broker(&["serve", "--config", "/nonexistent/broker.toml"])).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[tokio::test]
async fn pki_refuses_to_overwrite_an_issued_certificate_and_says_to_make_a_ca_first() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let out_prefix = dir.path().join("gd-psb");
    let issue = |force: bool| {
        let mut args = vec![
            "pki",
            "issue-agency",
            "--dir",
            pki.to_str().unwrap(),
            "--agency",
            "gd-psb",
            "--out",
            out_prefix.to_str().unwrap(),
        ];
        if force {
            args.push("--force");
        }
        broker(&args).output().unwrap()
    };
    let out = issue(false);
    assert_ne!(out.status.code(), Some(0));
    assert!(text(&out).contains("pki init-ca"), "{}", text(&out));

    let out = broker(&["pki", "init-ca", "--dir", pki.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(issue(false).status.code(), Some(0));
    let first = std::fs::read(out_prefix.with_extension("key")).unwrap();
    let out = issue(false);
    assert_ne!(out.status.code(), Some(0));
    assert!(text(&out).contains("--force"), "{}", text(&out));
    assert_eq!(
        std::fs::read(out_prefix.with_extension("key")).unwrap(),
        first
    );
    assert_eq!(issue(true).status.code(), Some(0));
    assert_ne!(
        std::fs::read(out_prefix.with_extension("key")).unwrap(),
        first
    );
    // The broker's own name in the audit log cannot be certified as an agency.
    let out = broker(&[
        "pki",
        "issue-agency",
        "--dir",
        pki.to_str().unwrap(),
        "--agency",
        "broker",
        "--out",
        dir.path().join("impostor").to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(text(&out).contains("reserved"), "{}", text(&out));
    assert!(!dir.path().join("impostor.pem").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_name_that_the_certificate_does_not_hold_is_named_with_its_fix() {
    let fed = Federation::start(&["watch"]).await;
    let dir = fed.agency_dir("watch");
    let ca = fed.dir.path().join("pki/ca.pem");
    let args = |server_name: Option<&str>| {
        let mut v = vec![
            "watch".to_string(),
            "--broker".into(),
            format!("https://{}", fed.addr()),
            "--ca".into(),
            ca.display().to_string(),
            "--cert".into(),
            dir.join("cert.pem").display().to_string(),
            "--key".into(),
            dir.join("key.pem").display().to_string(),
        ];
        if let Some(name) = server_name {
            v.extend(["--server-name".into(), name.into()]);
        }
        v.push("stats".into());
        v
    };
    // By IP: the certificate holds 127.0.0.1, so the address as typed is the name checked.
    let out = output({
        let mut c = broker(&[]);
        c.args(args(None));
        c
    })
    .await;
    // (The watch role is not enrolled here: a refusal, but past TLS.)
    assert!(!text(&out).contains("not valid for"), "{}", text(&out));
    let out = output({
        let mut c = broker(&[]);
        c.args(args(Some("broker.example")));
        c
    })
    .await;
    let said = text(&out);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        said.contains("not valid for broker.example (--server-name)"),
        "{said}"
    );
    assert!(said.contains("give --server-name"), "{said}");

    // agencyd names the key that sets the name.
    let root = tempfile::tempdir().unwrap();
    let mut config = agencyd_config(&fed, "watch", root.path());
    config.broker.tls_domain = Some("broker.example".into());
    let file = root.path().join("agencyd.toml");
    std::fs::write(&file, toml::to_string(&config).unwrap()).unwrap();
    let out = output({
        let mut c = Command::new(workspace_binary("agencyd"));
        c.args(["--config", file.to_str().unwrap(), "--show-published-key"]);
        c
    })
    .await;
    let said = text(&out);
    assert!(
        said.contains("not valid for broker.example (from broker.tls_domain)"),
        "{said}"
    );
}

#[tokio::test]
async fn agencyd_configuration_errors_name_the_key_and_the_file_once_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agencyd.toml");
    std::fs::write(&file, "[broker]\naddress = \"127.0.0.1:7443\"\n").unwrap();
    let out = output({
        let mut c = Command::new(workspace_binary("agencyd"));
        c.args(["--config", file.to_str().unwrap()]);
        c
    })
    .await;
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("agencyd.toml: [tls] cert is missing"),
        "{said}"
    );
    assert!(said.contains("AGENCYD__TLS__CERT"), "{said}");
    assert_eq!(said.trim().lines().count(), 1, "{said}");

    std::fs::write(
        &file,
        "[tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\nca = \"ca.pem\"\n\
         [broker]\naddress = \"127.0.0.1:7443\"\n\
         [token_service]\npublic_key = \"78606ab822970c9e3bb9499099fbe2b548e676147dbe9b1a3985e851b592385a\"\nkey_epoch = 1\n",
    )
    .unwrap();
    let out = output({
        let mut c = Command::new(workspace_binary("agencyd"));
        c.args(["--config", file.to_str().unwrap()]);
        c
    })
    .await;
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("[tls] "), "{said}");
    assert!(said.contains("No such file"), "{said}");
    assert_eq!(said.trim().lines().count(), 1, "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_the_broker_would_refuse_are_refused_before_anything_is_stored() {
    let fed = Federation::start_with(&["yn-psb"], |c| c.policy.max_window_days = 30).await;
    let root = tempfile::tempdir().unwrap();
    let config = agencyd_config(&fed, "yn-psb", root.path());
    let a = daemon::start(config.clone()).await.unwrap();
    let socket = config.socket_path();
    // Once agencyd knows the federation's limits (it asks at start), it applies them.
    eventually(
        Duration::from_secs(30),
        "agencyd to reach the broker",
        || {
            let socket = socket.clone();
            async move {
                let out = output(deconflict(&socket, &["status"])).await;
                (out.status.code() == Some(0)).then_some(())
            }
        },
    )
    .await;
    let past = output(deconflict(
        &socket,
        &[
            "register",
            "-s",
            "email=a@example.com",
            "--start",
            "2020-01-01",
            "--end",
            "2020-02-01",
        ],
    ))
    .await;
    assert_eq!(past.status.code(), Some(2), "{}", text(&past));
    assert!(
        text(&past).contains("2020-02-01 00:00 UTC, which is in the past"),
        "{}",
        text(&past)
    );
    let long = output(deconflict(
        &socket,
        &["register", "-s", "email=a@example.com", "--days", "60"],
    ))
    .await;
    assert_eq!(long.status.code(), Some(2), "{}", text(&long));
    assert!(text(&long).contains("at most 30 days"), "{}", text(&long));
    // Nothing was stored: no operation, nothing waiting.
    let ops = output(deconflict(&socket, &["ops", "--all", "--json"])).await;
    assert_eq!(ops.status.code(), Some(0), "{}", text(&ops));
    assert!(!text(&ops).contains("operation_id"), "{}", text(&ops));
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_and_selector_errors_match_the_guide() {
    let fed = Federation::start(&["yn-psb"]).await;
    let root = tempfile::tempdir().unwrap();
    let config = agencyd_config(&fed, "yn-psb", root.path());
    let a = daemon::start(config.clone()).await.unwrap();
    let socket = config.socket_path();

    // `normalize --vectors` on a file that is not there: bad input.
    let out = output(deconflict(
        &socket,
        &["normalize", "--vectors", "/nonexistent.json"],
    ))
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    // `import --skip-invalid` that registered something succeeded: exit 0, the bad line named.
    let batch = root.path().join("batch.csv");
    std::fs::write(
        &batch,
        "operation,days,kind,text,region\na,5,email,a@example.com,\nb,5,phone,12,CN\n",
    )
    .unwrap();
    let out = output(deconflict(
        &socket,
        &["import", batch.to_str().unwrap(), "--skip-invalid"],
    ))
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("line 3"), "{}", text(&out));
    assert!(
        text(&out).contains("1 bad line(s) skipped"),
        "{}",
        text(&out)
    );

    // Selector errors say what to do.
    for (flag, says) in [
        ("car=x", "the kinds are person, phone"),
        ("phone=138 0013 8000", "--region CN"),
        ("phone=12", "too short"),
    ] {
        let out = output(deconflict(&socket, &["check", "-s", flag])).await;
        assert_eq!(out.status.code(), Some(2), "{flag}: {}", text(&out));
        assert!(text(&out).contains(says), "{flag}: {}", text(&out));
    }
    a.shutdown().await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_others_can_read_stops_the_broker_with_the_command_that_fixes_it() {
    use std::os::unix::fs::PermissionsExt;
    let mut fed = Federation::start(&["yn-psb"]).await;
    fed.stop_broker().await;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    // Created by the broker: owner only, and so is its data folder.
    assert_eq!(mode(&fed.config.secrets.pepper), 0o600);
    assert_eq!(mode(&fed.config.server.data_dir), 0o700);
    let pepper = fed.config.secrets.pepper.clone();
    std::fs::set_permissions(&pepper, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = deconflict_broker::server::start(&fed.config, deconflict_broker::server::Mode::Broker)
        .await
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("chmod 600 {}", pepper.display())),
        "{e}"
    );
}
