//! The watch centre's console over HTTP, against a real broker and a real console process
//! (in-process, on loopback): sign-in and its refusals, CSRF on every form, the queue with
//! display names, claims that a second officer sees and cannot take over, notes and
//! escalation recorded at the broker with the officer's name, the pages in both languages,
//! live updates by server-sent events. The same flows in a real browser: console_browser.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use deconfliction_proto::v1;
use deconfliction_proto::v1::oversight_client::OversightClient;
use deconfliction_tests::console::{OFFICERS, WATCH, federation, start_console};
use deconfliction_tests::web::{Browser, csrf_of};
use deconfliction_tests::{SelectorKind, register_shared};
use http_body_util::BodyExt;

/// A page's first match id (rows carry `data-match`).
fn match_id_in(body: &str) -> Option<String> {
    let at = body.find("data-match=\"")?;
    let rest = &body[at + "data-match=\"".len()..];
    Some(rest[..rest.find('"')?].to_owned())
}

fn no_missing_words(body: &str) {
    for section in [
        "[common.",
        "[console.",
        "[kind.",
        "[state.",
        "[progress.",
        "[time.",
        "[role.",
        "[outcome.",
    ] {
        assert!(
            !body.contains(section),
            "a catalogue entry is missing: {section}… in\n{body}"
        );
    }
}

/// The queue page once it lists a match (the console polls the broker).
async fn queue_with_a_match(browser: &mut Browser) -> deconfliction_tests::web::Page {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let page = browser.get("/").await;
        if page.body.contains("data-match=") {
            return page;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no match in the queue:\n{}",
            page.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn coordination_of(
    oversight: &mut OversightClient<tonic::transport::Channel>,
    id: &str,
) -> v1::Coordination {
    let list = oversight
        .list_matches(v1::ListMatchesRequest::default())
        .await
        .unwrap()
        .into_inner();
    let m = list.matches.into_iter().find(|m| m.match_id == id).unwrap();
    m.coordination.unwrap_or_default()
}

#[tokio::test]
async fn officers_sign_in_claim_annotate_and_escalate_and_forged_forms_change_nothing() {
    let mut fed = federation().await;
    let root = tempfile::tempdir().unwrap();
    let console = start_console(&fed, root.path()).await;
    let base = format!("http://{}", console.addr);
    let mut oversight = OversightClient::new(fed.channel(WATCH).await.unwrap());
    let (mut gd, mut gx) = (fed.client("gd-psb").await, fed.client("gx-psb").await);
    register_shared(&mut gd, &mut gx, SelectorKind::Phone).await;

    // Nothing without signing in; the sign-in form refuses wrong passwords and forged posts.
    let mut li = Browser::new(&base, "en-GB,en;q=0.9");
    let page = li.get("/").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/login?next=/"));
    let page = li.sign_in("liwei", "not the password").await;
    assert_eq!(page.status, 401);
    assert!(
        page.body.contains("Wrong name or password"),
        "{}",
        page.body
    );
    let page = li
        .post("/login", &[("name", "liwei"), ("password", OFFICERS[0].2)])
        .await;
    assert_eq!(page.status, 403, "a sign-in post without its CSRF token");
    let page = li.sign_in("liwei", OFFICERS[0].2).await;
    assert_eq!(page.status, 303, "{}", page.body);

    // The queue: the bureaus by their display names, what matched, both sides' progress.
    let page = queue_with_a_match(&mut li).await;
    assert!(page.body.contains("广东省公安厅") && page.body.contains("广西壮族自治区公安厅"));
    assert!(page.body.contains("Phone"), "{}", page.body);
    assert!(page.body.contains("Signed in as 李伟 (liwei)"));
    // One round trip renders it (the stylesheet is inline), and it is never cached or framed.
    assert!(page.body.contains("<style>") && !page.body.contains("rel=\"stylesheet\""));
    assert_eq!(page.headers["cache-control"], "no-store");
    assert_eq!(page.headers["x-frame-options"], "DENY");
    assert!(
        page.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    no_missing_words(&page.body);
    let id = match_id_in(&page.body).unwrap();

    // A forged claim (no CSRF token, or another session's) changes nothing.
    let forged = li.post(&format!("/matches/{id}/claim"), &[]).await;
    assert_eq!(forged.status, 403);
    let forged = li
        .post(
            &format!("/matches/{id}/claim"),
            &[("csrf", "0".repeat(64).as_str())],
        )
        .await;
    assert_eq!(forged.status, 403);
    assert!(
        coordination_of(&mut oversight, &id)
            .await
            .claimed_by
            .is_empty()
    );

    // The real claim, recorded at the broker with the officer's name.
    let detail = li.get(&format!("/matches/{id}")).await;
    assert_eq!(detail.status, 200);
    no_missing_words(&detail.body);
    let csrf = csrf_of(&detail.body);
    let done = li
        .post(&format!("/matches/{id}/claim"), &[("csrf", &csrf)])
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        coordination_of(&mut oversight, &id).await.claimed_by,
        "李伟 (liwei)"
    );

    // A second officer, in Chinese, sees the claim and cannot take it over.
    let mut wang = Browser::new(&base, "zh-CN,zh;q=0.9");
    assert_eq!(wang.sign_in("wangfang", OFFICERS[1].2).await.status, 303);
    let seen = wang.get(&format!("/matches/{id}")).await;
    assert!(seen.body.contains("由 李伟 (liwei) 负责"), "{}", seen.body);
    assert!(seen.body.contains("lang=\"zh-CN\""));
    no_missing_words(&seen.body);
    let csrf_wang = csrf_of(&seen.body);
    let refused = wang
        .post(&format!("/matches/{id}/claim"), &[("csrf", &csrf_wang)])
        .await;
    assert_eq!(refused.status, 409);
    assert!(
        refused.body.contains("claimed by 李伟 (liwei)"),
        "{}",
        refused.body
    );
    assert_eq!(
        coordination_of(&mut oversight, &id).await.claimed_by,
        "李伟 (liwei)"
    );

    // Notes and escalation: stored at the broker, shown on every console.
    let note = wang
        .post(
            &format!("/matches/{id}/note"),
            &[("csrf", &csrf_wang), ("text", "已电话通知两地指挥中心")],
        )
        .await;
    assert_eq!(note.status, 303, "{}", note.body);
    let empty = wang
        .post(
            &format!("/matches/{id}/note"),
            &[("csrf", &csrf_wang), ("text", "  ")],
        )
        .await;
    assert_eq!(
        empty.status, 400,
        "an empty note is refused: {}",
        empty.body
    );
    let up = li
        .post(
            &format!("/matches/{id}/escalate"),
            &[("csrf", &csrf), ("escalated", "true")],
        )
        .await;
    assert_eq!(up.status, 303);
    let c = coordination_of(&mut oversight, &id).await;
    assert!(c.escalated);
    assert_eq!(c.escalated_by, "李伟 (liwei)");
    assert_eq!(c.notes.len(), 1);
    assert_eq!(c.notes[0].officer, "王芳 (wangfang)");
    let detail = li.get(&format!("/matches/{id}")).await;
    assert!(detail.body.contains("已电话通知两地指挥中心"));
    assert!(
        detail.body.contains("Escalated by 李伟 (liwei)"),
        "{}",
        detail.body
    );

    // The other pages, in both languages.
    for browser in [&mut li, &mut wang] {
        let board = browser.get("/agencies").await;
        assert_eq!(board.status, 200);
        assert!(board.body.contains("广东省公安厅") && board.body.contains("gx-psb"));
        no_missing_words(&board.body);
        let stats = browser.get("/stats").await;
        assert_eq!(stats.status, 200);
        assert!(stats.body.contains("<svg"), "{}", stats.body);
        no_missing_words(&stats.body);
    }

    // Agencies cannot coordinate: the calls are the watch centre's.
    let mut agency_view = OversightClient::new(fed.channel("gd-psb").await.unwrap());
    let refused = agency_view
        .claim_match(v1::ClaimMatchRequest {
            match_id: id.clone(),
            officer: "someone".into(),
            release: false,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);

    // Signing out ends the session: the cookie no longer opens a page.
    let csrf = csrf_of(&li.get("/").await.body);
    let out = li.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303);
    assert_eq!(li.get("/").await.status, 303);

    // The broker's audit log names the officers.
    console.shutdown().await;
    fed.stop_broker().await;
    use deconflict_broker::ledger::audit;
    use deconflict_broker::store::for_each_prefixed;
    let store = fed.open_store();
    let mut records = Vec::new();
    for_each_prefixed(store.as_ref(), audit::PREFIX, |k, v| {
        records.push(audit::decode(k, v)?);
        Ok::<_, deconflict_broker::store::StoreError>(())
    })
    .unwrap();
    let claim = records.iter().find(|r| r.action == "claim_match").unwrap();
    assert_eq!(claim.actor, WATCH);
    assert!(
        claim.ids.contains(&"officer:李伟 (liwei)".to_owned()),
        "{claim:?}"
    );
    let note = records
        .iter()
        .find(|r| r.action == "annotate_match")
        .unwrap();
    assert!(note.ids.contains(&"officer:王芳 (wangfang)".to_owned()));
    assert!(records.iter().any(|r| r.action == "escalate_match"));
    let export: String = records.iter().map(|r| format!("{r:?}")).collect();
    assert!(
        !export.contains("已电话通知"),
        "note text is not audited, only its length"
    );
}

#[tokio::test]
async fn sessions_end_with_the_console_and_repeated_failures_lock_the_name() {
    let fed = federation().await;
    let root = tempfile::tempdir().unwrap();
    let console = start_console(&fed, root.path()).await;
    let base = format!("http://{}", console.addr);
    let mut li = Browser::new(&base, "en");
    assert_eq!(li.sign_in("liwei", OFFICERS[0].2).await.status, 303);
    assert_eq!(li.get("/").await.status, 200);

    // A session from before a restart is not valid any more (sessions live in memory).
    console.shutdown().await;
    let console = start_console(&fed, root.path()).await;
    let mut li_again = Browser::new(&format!("http://{}", console.addr), "en");
    li_again.cookies = li.cookies.clone();
    let page = li_again.get("/").await;
    assert_eq!(page.status, 303, "an expired session is sent to sign in");

    // Five wrong passwords lock the name, even for the right one.
    let mut guesser = Browser::new(&format!("http://{}", console.addr), "en");
    for _ in 0..5 {
        assert_eq!(guesser.sign_in("wangfang", "guess").await.status, 401);
    }
    let locked = guesser.sign_in("wangfang", OFFICERS[1].2).await;
    assert_eq!(locked.status, 429);
    assert!(locked.body.contains("locked"), "{}", locked.body);
    // Another officer is not affected.
    assert_eq!(li_again.sign_in("liwei", OFFICERS[0].2).await.status, 303);
    console.shutdown().await;
}

#[tokio::test]
async fn the_queue_updates_itself_over_server_sent_events() {
    let fed = federation().await;
    let root = tempfile::tempdir().unwrap();
    let console = start_console(&fed, root.path()).await;
    let base = format!("http://{}", console.addr);
    let mut li = Browser::new(&base, "zh-CN");
    assert_eq!(li.sign_in("liwei", OFFICERS[0].2).await.status, 303);
    assert!(li.get("/").await.body.contains("没有未解决的冲突"));

    // Open the page's event stream, then create a conflict.
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<hyper::body::Bytes>>();
    let cookie: Vec<String> = li.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let req = hyper::Request::get(format!("{base}/events?view=queue"))
        .header("cookie", cookie.join("; "))
        .header("accept-language", "zh-CN")
        .body(http_body_util::Empty::new())
        .unwrap();
    let response = client.request(req).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let (mut gd, mut gx) = (fed.client("gd-psb").await, fed.client("gx-psb").await);
    let started = std::time::Instant::now();
    register_shared(&mut gd, &mut gx, SelectorKind::Plate).await;
    let mut seen = String::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.unwrap().into_data() {
                seen.push_str(&String::from_utf8_lossy(&data));
                if seen.contains("queue-table") && seen.contains("车牌") {
                    return;
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no live queue update; the stream said:\n{seen}"));
    println!(
        "a new conflict reached the console's event stream {} ms after its registration",
        started.elapsed().as_millis()
    );
    assert!(seen.contains("event: region"), "{seen}");
    console.shutdown().await;
}

/// On a network the console speaks TLS with its own certificate, marks its cookies Secure, and
/// refuses to start without a certificate.
#[tokio::test]
async fn beyond_loopback_the_console_serves_tls_only() {
    use deconfliction_tests::console::console_config;
    let fed = federation().await;
    let root = tempfile::tempdir().unwrap();

    // A network address without a certificate: refused at start, saying what to set.
    let mut plain = console_config(&fed, root.path());
    plain.console.listen = "0.0.0.0:0".parse().unwrap();
    let err = deconflict_broker::console::start(plain)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("tls_cert"), "{err}");

    // With its own certificate (from the federation's CA, for localhost and 127.0.0.1).
    let (cert, key) = fed.server_cert(root.path(), "console");
    let mut config = console_config(&fed, root.path());
    config.console.tls_cert = Some(cert);
    config.console.tls_key = Some(key);
    let console = deconflict_broker::console::start(config).await.unwrap();
    assert!(console.url.starts_with("https://"));

    let mut roots = rustls::RootCertStore::empty();
    use rustls_pki_types::pem::PemObject;
    for c in rustls_pki_types::CertificateDer::pem_slice_iter(fed.ca_pem().as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, http_body_util::Empty<hyper::body::Bytes>>(https);
    let uri = format!("https://localhost:{}/login", console.addr.port());
    let response = client.get(uri.parse().unwrap()).await.unwrap();
    assert_eq!(response.status(), 200);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.contains("; Secure"), "{cookie}");

    // Plain HTTP to the TLS port gets no page.
    let plain_client =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http::<http_body_util::Empty<hyper::body::Bytes>>();
    let uri = format!("http://{}/login", console.addr);
    let answer = tokio::time::timeout(
        Duration::from_secs(5),
        plain_client.get(uri.parse().unwrap()),
    )
    .await
    .unwrap();
    assert!(
        answer.is_err(),
        "plain HTTP got an answer from the TLS port"
    );
    console.shutdown().await;
}
