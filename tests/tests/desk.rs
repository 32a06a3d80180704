//! The duty desk over HTTP, against real agencyd daemons (in-process, on loopback) and a real
//! broker: a form with a bad selector registers nothing and names the field; two bureaus
//! register the same phone from their desks and both see the alert in their own terms; they
//! write, disclose (with the review step) and resolve; forged forms change nothing; the desk's
//! journal names the officers. The same flows in a real browser: desk_browser.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use agency_client::control::pb;
use deconfliction_tests::Federation;
use deconfliction_tests::agencyd::control_client;
use deconfliction_tests::desk::{desk_config, officer_of, start_desk};
use deconfliction_tests::web::{Browser, Page, csrf_of};

async fn signed_in(base: &str, agency: &str, language: &str) -> Browser {
    let mut b = Browser::new(base, language);
    let (name, password) = officer_of(agency);
    let page = b.sign_in(name, password).await;
    assert_eq!(page.status, 303, "{}", page.body);
    b
}

/// Registers through the desk's form; the response to the post.
async fn register(b: &mut Browser, case: &str, rows: &[(&str, &str, &str)]) -> Page {
    let form = b.get("/operations/new").await;
    let csrf = csrf_of(&form.body);
    let start = "2026-12-01T08:00".to_owned();
    let end = "2027-01-31T20:00".to_owned();
    let mut fields: Vec<(String, String)> = vec![
        ("csrf".into(), csrf),
        ("case_reference".into(), case.into()),
        ("start".into(), start),
        ("end".into(), end),
    ];
    for (i, (kind, value, extra)) in rows.iter().enumerate() {
        fields.push((format!("kind_{i}"), (*kind).into()));
        fields.push((format!("value_{i}"), (*value).into()));
        fields.push((format!("extra_{i}"), (*extra).into()));
        fields.push((format!("label_{i}"), String::new()));
    }
    let refs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    b.post("/operations/new", &refs).await
}

async fn page_until(b: &mut Browser, path: &str, needle: &str) -> Page {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let page = b.get(path).await;
        if page.body.contains(needle) {
            return page;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{path} never showed {needle:?}:\n{}",
            page.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn match_link(body: &str) -> String {
    let at = body.find("href=\"/matches/").expect("no match link");
    let rest = &body[at + "href=\"/matches/".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn two_desks_register_talk_disclose_and_resolve() {
    let fed = Federation::start(&["gd-psb", "gx-psb"]).await;
    let root = tempfile::tempdir().unwrap();
    let (gd_daemon, gd_base) = start_desk(&fed, "gd-psb", &root.path().join("gd")).await;
    let (gx_daemon, gx_base) = start_desk(&fed, "gx-psb", &root.path().join("gx")).await;
    let mut gd = signed_in(&gd_base, "gd-psb", "zh-CN").await;
    let mut gx = signed_in(&gx_base, "gx-psb", "en").await;

    // A bad phone number: the error sits beside its row and nothing is registered.
    let refused = register(
        &mut gd,
        "2026-114",
        &[("plate", "粤B12345", ""), ("phone", "12", "")],
    )
    .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("id=\"error_1\""), "{}", refused.body);
    assert!(!refused.body.contains("id=\"error_0\""));
    assert!(
        refused.body.contains("value=\"粤B12345\""),
        "the form keeps what was typed"
    );
    let mut gd_control =
        control_client(&desk_config(&fed, "gd-psb", &root.path().join("gd"))).await;
    let ops = gd_control
        .list_operations(pb::ListOperationsRequest {
            include_closed: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        ops.operations.is_empty(),
        "a refused form registered {ops:?}"
    );

    // Both register the same phone; each desk says which of its own selectors matched.
    let done = register(&mut gd, "2026-114", &[("phone", "138 0013 8000", "CN")]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let done = register(&mut gx, "GX-77", &[("phone", "+86 138 0013 8000", "")]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let gd_alerts = page_until(&mut gd, "/", "data-alert=").await;
    assert!(gd_alerts.body.contains("2026-114"), "{}", gd_alerts.body);
    assert!(
        gd_alerts.body.contains("电话 138 0013 8000 (CN)"),
        "{}",
        gd_alerts.body
    );
    let gx_alerts = page_until(&mut gx, "/", "data-alert=").await;
    assert!(
        gx_alerts.body.contains("Your Phone +86 138 0013 8000"),
        "{}",
        gx_alerts.body
    );
    let id = match_link(&gx_alerts.body);

    // Forged posts change nothing.
    assert_eq!(
        gx.post(&format!("/matches/{id}/message"), &[("text", "forged")])
            .await
            .status,
        403
    );
    assert_eq!(
        gx.post("/operations/new", &[("case_reference", "x")])
            .await
            .status,
        403
    );

    // A conversation: gx writes, gd reads and answers.
    let page = gx.get(&format!("/matches/{id}")).await;
    let csrf_gx = csrf_of(&page.body);
    let sent = gx
        .post(
            &format!("/matches/{id}/message"),
            &[
                ("csrf", &csrf_gx),
                ("text", "We plan a search on the 9th; yours?"),
            ],
        )
        .await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    let read = page_until(
        &mut gd,
        &format!("/matches/{id}"),
        "We plan a search on the 9th",
    )
    .await;
    let csrf_gd = csrf_of(&read.body);
    gd.post(
        &format!("/matches/{id}/message"),
        &[("csrf", &csrf_gd), ("text", "我方10日行动，请联系")],
    )
    .await;
    page_until(&mut gx, &format!("/matches/{id}"), "我方10日行动").await;

    // Disclosure: the review step shows exactly the card, and only the confirmation sends it.
    let card = [
        ("csrf", csrf_gd.as_str()),
        ("unit_name", "广东省公安厅刑侦总队"),
        ("officer", "张三"),
        ("phone", "+86 20 8000 0000"),
        ("secure_email", ""),
        ("note", ""),
    ];
    let no_way = gd
        .post(
            &format!("/matches/{id}/disclose"),
            &[("csrf", &csrf_gd), ("unit_name", "x"), ("step", "review")],
        )
        .await;
    assert_eq!(no_way.status, 400);
    let mut review: Vec<(&str, &str)> = card.to_vec();
    review.push(("step", "review"));
    let shown = gd.post(&format!("/matches/{id}/disclose"), &review).await;
    assert!(
        shown.body.contains("disclose-review") && shown.body.contains("+86 20 8000 0000"),
        "{}",
        shown.body
    );
    let still = gd.get(&format!("/matches/{id}")).await;
    assert!(
        still.body.contains("尚未披露"),
        "the review step disclosed nothing"
    );
    let mut confirm: Vec<(&str, &str)> = card.to_vec();
    confirm.push(("step", "confirm"));
    assert_eq!(
        gd.post(&format!("/matches/{id}/disclose"), &confirm)
            .await
            .status,
        303
    );
    gx.post(
        &format!("/matches/{id}/disclose"),
        &[
            ("csrf", &csrf_gx),
            ("officer", "Li Si"),
            ("phone", "+86 771 000 0000"),
            ("step", "confirm"),
        ],
    )
    .await;
    page_until(&mut gx, &format!("/matches/{id}"), "广东省公安厅刑侦总队").await;
    page_until(&mut gd, &format!("/matches/{id}"), "+86 771 000 0000").await;

    // gx resolves; gd's desk shows the outcome.
    let resolved = gx
        .post(
            &format!("/matches/{id}/resolve"),
            &[
                ("csrf", &csrf_gx),
                ("outcome", "2"),
                ("note", "joint search on the 10th"),
            ],
        )
        .await;
    assert_eq!(resolved.status, 303, "{}", resolved.body);
    page_until(&mut gd, &format!("/matches/{id}"), "已解决：联合行动").await;

    // The other pages read in both languages, with every word in the catalogue.
    for (b, paths) in [
        (&mut gd, ["/operations", "/status"]),
        (&mut gx, ["/operations", "/status"]),
    ] {
        for path in paths {
            let page = b.get(path).await;
            assert_eq!(page.status, 200, "{path}");
            for section in ["[desk.", "[common.", "[kind.", "[state.", "[outcome."] {
                assert!(
                    !page.body.contains(section),
                    "{path}: missing {section}…\n{}",
                    page.body
                );
            }
        }
    }
    let search = gd.get("/operations?q=2026-114").await;
    assert!(search.body.contains("id=\"operations\"") && search.body.contains("2026-114"));
    let search = gd.get("/operations?q=nothing-like-this").await;
    assert!(
        !search.body.contains("id=\"operations\""),
        "{}",
        search.body
    );

    // The journal names the officers who acted (read from the stopped daemon's store).
    gd_daemon.shutdown().await;
    gx_daemon.shutdown().await;
    let store = agency_client::daemon::store::Store::open(&root.path().join("gd/data")).unwrap();
    let journal: Vec<serde_json::Value> = store.values(b"d/").unwrap();
    let actions: Vec<(String, String)> = journal
        .iter()
        .map(|e| {
            (
                e["label"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for needed in ["register", "message", "disclose"] {
        assert!(
            actions.contains(&("张三 (zhangsan)".to_owned(), needed.to_owned())),
            "no {needed} by 张三 in {actions:?}"
        );
    }
}

#[tokio::test]
async fn a_batch_file_is_checked_whole_then_imported_with_progress() {
    let fed = Federation::start(&["gd-psb"]).await;
    let root = tempfile::tempdir().unwrap();
    let (daemon, base) = start_desk(&fed, "gd-psb", root.path()).await;
    let mut gd = signed_in(&base, "gd-psb", "en").await;
    let csrf = csrf_of(&gd.get("/import").await.body);

    // One bad line refuses the whole file, and names the line.
    let bad = "operation,case_reference,days,kind,text,region\n1,B-1,5,email,one@example.com,\n\
               2,B-2,5,phone,12,CN\n";
    let refused = gd
        .post_file("/import", &[("csrf", &csrf)], "batch.csv", bad)
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("line 3"), "{}", refused.body);
    let ops = gd.get("/operations").await;
    assert!(
        !ops.body.contains("id=\"operations\""),
        "a refused file registered something"
    );

    // Without the CSRF token: refused before anything is read into agencyd.
    let forged = gd.post_file("/import", &[], "batch.csv", bad).await;
    assert_eq!(forged.status, 403);

    // A good file: the progress page reaches the end by itself.
    let mut good = String::from("operation,case_reference,days,kind,text,region\n");
    for i in 0..25 {
        good.push_str(&format!("{i},IMP-{i},5,email,person{i}@example.com,\n"));
    }
    let started = gd
        .post_file("/import", &[("csrf", &csrf)], "batch.csv", &good)
        .await;
    assert_eq!(started.status, 303, "{}", started.body);
    let progress = started.location.unwrap();
    assert!(progress.starts_with("/import/"));
    let done = page_until(&mut gd, &progress, "import-finished").await;
    assert!(
        done.body.contains("25 operations accepted"),
        "{}",
        done.body
    );
    assert!(
        done.body.contains("value=\"25\" max=\"25\""),
        "{}",
        done.body
    );
    let ops = gd.get("/operations?q=IMP-24").await;
    assert!(ops.body.contains("IMP-24"));
    daemon.shutdown().await;
}
