//! Token-service key rotation as agencies live through it, with real agencyd instances: the
//! broker starts serving epoch 2 beside epoch 1; an agency that pins the new key (keeping the
//! old one as previous) re-derives its open operations by itself and derives new ones under
//! both, an agency not yet moved keeps matching everyone, re-derived matches do not alert
//! again, and when the overlap ends every agencyd drops its epoch-1 tokens. An agency that
//! never moved is told what to do.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use agency_client::control::{self, pb};
use agency_client::daemon::{self, DaemonConfig};
use deconfliction_proto::v1;
use deconfliction_tests::agencyd::{
    ControlClient, control_client, match_alert_views, register_synced,
};
use deconfliction_tests::{
    Federation, agencyd_config, eventually, pinned_key, window_hours, write_secret,
};
use token_spec::normalize::Selector;
use token_spec::token::PinnedKey;

const WAIT: Duration = Duration::from_secs(30);

type Client = ControlClient;

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn config(
    fed: &Federation,
    agency: &str,
    root: &std::path::Path,
    pins: &[PinnedKey],
) -> DaemonConfig {
    let mut c = agencyd_config(fed, agency, root);
    c.daemon.key_poll_seconds = 1;
    c.token_service.public_key = hex::encode(pins[0].public_key());
    c.token_service.key_epoch = pins[0].epoch();
    if let Some(previous) = pins.get(1) {
        c.token_service.previous_public_key = Some(hex::encode(previous.public_key()));
        c.token_service.previous_key_epoch = previous.epoch();
    }
    c
}

fn sel(s: Selector) -> pb::Selector {
    control::selector_to_proto(&s, 0, "")
}

fn phone() -> pb::Selector {
    sel(Selector::Phone {
        text: "+86 138 0013 8000".into(),
        region: None,
    })
}

fn email(text: &str) -> pb::Selector {
    sel(Selector::Email { text: text.into() })
}

/// Registers through agencyd and waits for the broker's confirmation; the operation id.
async fn register(c: &mut Client, selectors: Vec<pb::Selector>) -> String {
    register_synced(c, "CASE", selectors, 48).await
}

async fn match_alerts(c: &mut Client) -> usize {
    match_alert_views(c).await.len()
}

async fn wait_alerts(c: &mut Client, n: usize, what: &str) {
    eventually(WAIT, what, || {
        let mut c = c.clone();
        async move { (match_alerts(&mut c).await == n).then_some(()) }
    })
    .await;
}

/// Waits until the broker holds `n` tokens for `agency`'s operation `id`.
async fn wait_tokens(fed: &Federation, agency: &str, id: &str, n: u32) {
    let broker = fed.client(agency).await;
    eventually(WAIT, &format!("{n} tokens on {agency}'s operation"), || {
        let mut b = broker.clone();
        let id = id.to_owned();
        async move {
            let op = b
                .get_operation(v1::GetOperationRequest { operation_id: id })
                .await
                .ok()?
                .into_inner();
            (op.token_count == n).then_some(())
        }
    })
    .await;
}

async fn restart(d: daemon::Daemon, c: &DaemonConfig) -> daemon::Daemon {
    d.shutdown().await;
    daemon::start(c.clone()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agencies_rederive_across_a_rotation_without_missing_or_repeating_a_match() {
    let mut fed = Federation::start(&["yn-psb", "gd-psb", "gx-psb", "xz-psb"]).await;
    let root = tempfile::tempdir().unwrap();
    let old = pinned_key(&fed.config);
    let (ya, ga) = (root.path().join("yn"), root.path().join("gd"));
    let yc = config(&fed, "yn-psb", &ya, &[old]);
    let gc = config(&fed, "gd-psb", &ga, &[old]);
    let mut yd = daemon::start(yc.clone()).await.unwrap();
    let mut gdd = daemon::start(gc.clone()).await.unwrap();
    let (mut y, mut g) = (control_client(&yc).await, control_client(&gc).await);

    // Epoch 1: Yunnan and Guangdong share a phone.
    let y1 = register(&mut y, vec![phone(), email("courier@mail.example")]).await;
    let g1 = register(&mut g, vec![phone()]).await;
    wait_alerts(&mut y, 1, "the first match at Yunnan").await;
    wait_alerts(&mut g, 1, "the first match at Guangdong").await;

    // The administrator rotates: epoch 2, epoch 1 served for another hour.
    fed.stop_broker().await;
    let old_seed = fed.config.token_service.seed.clone();
    let new_seed = fed.dir.path().join("secrets/token-service-epoch2.seed");
    write_secret(&new_seed, &[42u8; 32]);
    let ts = &mut fed.config.token_service;
    ts.previous_seed = Some(old_seed);
    ts.previous_key_epoch = 1;
    ts.previous_valid_until = Some(rfc3339(
        time::OffsetDateTime::now_utc() + time::Duration::hours(1),
    ));
    ts.seed = new_seed;
    ts.key_epoch = 2;
    fed.start_broker().await;
    let new = pinned_key(&fed.config);

    // Nobody has moved yet: everything works, and status says what to do.
    let status = y.status(pb::StatusRequest {}).await.unwrap().into_inner();
    assert!(status.key_matches, "{status:?}");
    assert_eq!(status.served_key_epochs, [2, 1]);
    assert!(status.key_advice.contains("new key epoch 2"), "{status:?}");
    // What an operator runs to see both keys before pinning them.
    let file = ya.join("agencyd.toml");
    std::fs::write(&file, toml::to_string(&yc).unwrap()).unwrap();
    let out = std::process::Command::new(deconfliction_tests::workspace_binary("agencyd"))
        .args(["--config", file.to_str().unwrap(), "--show-published-key"])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    for line in [
        format!("public_key = \"{}\"", hex::encode(new.public_key())),
        "key_epoch = 2".into(),
        format!(
            "previous_public_key = \"{}\"",
            hex::encode(old.public_key())
        ),
        "previous_key_epoch = 1".into(),
    ] {
        assert!(shown.contains(&line), "{line} missing from:\n{shown}");
    }

    // Yunnan pins epoch 2 and keeps epoch 1 as previous: its open operation is re-derived by
    // itself (two selectors, a token of each under each epoch).
    let yc = config(&fed, "yn-psb", &ya, &[new, old]);
    yd = restart(yd, &yc).await;
    let mut y = control_client(&yc).await;
    wait_tokens(&fed, "yn-psb", &y1, 4).await;
    // A new operation now gets both epochs, so Guangdong (still on epoch 1) matches it.
    let y2 = register(&mut y, vec![email("launder@bank.example")]).await;
    wait_tokens(&fed, "yn-psb", &y2, 2).await;
    let g2 = register(&mut g, vec![email("launder@bank.example")]).await;
    wait_alerts(
        &mut y,
        2,
        "a match between epoch-1 and dual-epoch registrations",
    )
    .await;
    wait_alerts(&mut g, 2, "the same match at Guangdong").await;
    let status = y.status(pb::StatusRequest {}).await.unwrap().into_inner();
    assert_eq!(status.deriving_key_epochs, [2, 1]);
    assert!(status.key_advice.is_empty(), "{status:?}");

    // Guangdong moves too: its matches gain epoch-2 tokens of the same selectors, silently.
    let gc = config(&fed, "gd-psb", &ga, &[new, old]);
    gdd = restart(gdd, &gc).await;
    let mut g = control_client(&gc).await;
    wait_tokens(&fed, "gd-psb", &g1, 2).await;
    wait_tokens(&fed, "gd-psb", &g2, 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        match_alerts(&mut y).await,
        2,
        "a re-derivation alerted Yunnan"
    );
    assert_eq!(
        match_alerts(&mut g).await,
        2,
        "a re-derivation alerted Guangdong"
    );

    // The overlap ends: every agencyd drops its epoch-1 tokens.
    fed.stop_broker().await;
    fed.config.token_service.previous_valid_until = Some(rfc3339(
        time::OffsetDateTime::now_utc() - time::Duration::minutes(1),
    ));
    fed.start_broker().await;
    wait_tokens(&fed, "yn-psb", &y1, 2).await;
    wait_tokens(&fed, "yn-psb", &y2, 1).await;
    wait_tokens(&fed, "gd-psb", &g1, 1).await;
    let status = g.status(pb::StatusRequest {}).await.unwrap().into_inner();
    assert_eq!(status.served_key_epochs, [2]);
    assert!(status.key_advice.contains("retired"), "{status:?}");

    // A bureau that joins on epoch 2 alone matches both re-derived operations.
    let xc = config(&fed, "gx-psb", &root.path().join("gx"), &[new]);
    let xd = daemon::start(xc.clone()).await.unwrap();
    let mut x = control_client(&xc).await;
    register(&mut x, vec![phone()]).await;
    wait_alerts(&mut x, 2, "epoch-2 matches with both re-derived operations").await;

    // A bureau still pinned to epoch 1 only is refused, and told why.
    let zc = config(&fed, "xz-psb", &root.path().join("xz"), &[old]);
    let zd = daemon::start(zc.clone()).await.unwrap();
    let mut z = control_client(&zc).await;
    let status = z.status(pb::StatusRequest {}).await.unwrap().into_inner();
    assert!(!status.key_matches);
    assert!(status.key_error.contains("no longer served"), "{status:?}");
    let reply = z
        .register(pb::RegisterRequest {
            selectors: vec![phone()],
            window: Some(window_hours(24)),
            wait_ms: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.operation.unwrap().sync, pb::SyncState::Queued as i32);
    let status = z.status(pb::StatusRequest {}).await.unwrap().into_inner();
    assert!(
        status
            .outbox_error
            .contains("ask the federation administrator"),
        "{status:?}"
    );

    for d in [yd, gdd, xd, zd] {
        d.shutdown().await;
    }
}
