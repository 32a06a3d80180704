//! The identifiers of the token spec's 2026-12-01 revision, end to end: two agencyd daemons
//! against a real broker, one holding a name in Han ideographs and an 18-digit resident ID,
//! the other the passport's Latin spelling and the 15-digit first-generation number; and
//! every rejection of the revision as the duty officer's CLI reports it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use agency_client::control::{self, pb};
use agency_client::daemon;
use deconfliction_tests::agencyd::{
    ControlClient, control_client, deconflict, match_alert_views, register_synced,
};
use deconfliction_tests::{Federation, agencyd_config, eventually};
use token_spec::normalize::Selector;

const WAIT: Duration = Duration::from_secs(30);

fn person(names: &[&str]) -> pb::Selector {
    control::selector_to_proto(
        &Selector::Person {
            names: names.iter().map(|n| n.to_string()).collect(),
            dob: "1949-12-31".into(),
        },
        0,
        "suspect",
    )
}

fn cnid(text: &str) -> pb::Selector {
    control::selector_to_proto(&Selector::Cnid { text: text.into() }, 0, "")
}

async fn register(c: &mut ControlClient, case: &str, selectors: Vec<pb::Selector>) -> String {
    register_synced(c, case, selectors, 72).await
}

async fn one_match_alert(c: &mut ControlClient) -> pb::AlertView {
    let alerts = eventually(WAIT, "a match alert", || {
        let mut c = c.clone();
        async move {
            let got = match_alert_views(&mut c).await;
            (!got.is_empty()).then_some(got)
        }
    })
    .await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    alerts.into_iter().next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_han_name_and_resident_id_meet_the_latin_spelling_and_the_legacy_number() {
    let fed = Federation::start(&["yn-psb", "mekong-liaison"]).await;
    let root = tempfile::tempdir().unwrap();
    let (ca, cb) = (
        agencyd_config(&fed, "yn-psb", &root.path().join("yn")),
        agencyd_config(&fed, "mekong-liaison", &root.path().join("ml")),
    );
    let a = daemon::start(ca.clone()).await.unwrap();
    let b = daemon::start(cb.clone()).await.unwrap();
    let (mut ka, mut kb) = (control_client(&ca).await, control_client(&cb).await);

    // Yunnan writes the name in ideographs and the 18-digit number; the liaison office has
    // the passport's Latin spelling and the number as an older system stored it.
    let op_a = register(
        &mut ka,
        "YN-2026-114",
        vec![person(&["张小明"]), cnid("11010519491231002X")],
    )
    .await;
    let op_b = register(
        &mut kb,
        "ML-7",
        vec![person(&["ZHANG", "Xiaoming"]), cnid("110105491231002")],
    )
    .await;

    let (alert_a, alert_b) = (
        one_match_alert(&mut ka).await,
        one_match_alert(&mut kb).await,
    );
    assert_eq!(alert_a.match_id, alert_b.match_id);
    assert_eq!(alert_a.operation_id, op_a);
    assert_eq!(alert_b.operation_id, op_b);
    assert_eq!(alert_a.case_reference, "YN-2026-114");
    // Both selectors of each side are in the one alert, each as that side wrote it.
    assert_eq!(alert_a.selectors.len(), 2, "{alert_a:#?}");
    assert_eq!(alert_b.selectors.len(), 2, "{alert_b:#?}");
    let written = |a: &pb::AlertView| -> Vec<Selector> {
        a.selectors
            .iter()
            .map(|s| control::selector_from_proto(s).unwrap().0)
            .collect()
    };
    assert!(written(&alert_a).contains(&Selector::Cnid {
        text: "11010519491231002X".into()
    }));
    assert!(written(&alert_b).contains(&Selector::Cnid {
        text: "110105491231002".into()
    }));
    // Yunnan is told its Han name matched only in Pinyin (a homophone is possible); the
    // liaison office's Latin name matched as written, so it is told nothing of the kind.
    let yn_person = alert_a
        .selectors
        .iter()
        .find(|s| matches!(s.kind, Some(pb::selector::Kind::Person(_))))
        .unwrap();
    assert_eq!(alert_a.pinyin_only, vec![yn_person.id]);
    assert!(alert_b.pinyin_only.is_empty(), "{alert_b:#?}");

    // One selector, one alert: nothing more arrives for the second token of the Han name.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(match_alert_views(&mut ka).await.len(), 1);
    assert_eq!(match_alert_views(&mut kb).await.len(), 1);

    // The officer's CLI says it in words.
    let out = deconflict(&ca.socket_path(), &["alerts"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("resident ID 11010519491231002X"), "{text}");
    assert!(text.contains("matched only in Pinyin"), "{text}");

    a.shutdown().await;
    b.shutdown().await;
}

/// Every rejection of the revision, as `deconflict normalize` (offline) reports it: exit 2 and
/// a message a duty officer can act on.
#[tokio::test]
async fn every_rejection_of_the_revision_is_a_cli_error_that_says_what_to_fix() {
    let nowhere = Path::new("/nonexistent/agencyd.sock");
    let cases: &[(&[&str], &str)] = &[
        // A wrong check character: the one the digits call for is named.
        (&["cnid", "--text", "110105194912310021"], "X"),
        // Not a real date.
        (&["cnid", "--text", "110105194902310024"], "not a real date"),
        (&["cnid", "--text", "1101051949123100"], "18"),
        (&["passport", "--country", "CN", "--text", "E12"], "5 to 20"),
        (
            &["permit", "--type", "hkmo", "--text", "X12345678"],
            "H or M",
        ),
        (&["permit", "--type", "tw", "--text", "1234"], "8 digits"),
        (&["permit", "--type", "cnhkmo", "--text", "CI1234567"], "C"),
        (&["permit", "--type", "visa", "--text", "H12345678"], "hkmo"),
        (&["card", "--text", "1234 5678"], "12 to 19"),
        (&["org", "--text", "91350100M000100Y44"], "check"),
        (&["org", "--text", "91350100M000100Y4"], "18"),
    ];
    for (args, says) in cases {
        let mut all = vec!["normalize"];
        all.extend_from_slice(args);
        let out = deconflict(nowhere, &all).await;
        let err = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: expected {says:?} in {err:?}");
    }
    // And the good forms print their canonical text.
    let out = deconflict(nowhere, &["normalize", "cnid", "--text", "110105491231002"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("dcf1|cnid|11010519491231002X"), "{text}");
    let out = deconflict(
        nowhere,
        &[
            "normalize",
            "person",
            "--name",
            "张小明",
            "--dob",
            "1949-12-31",
        ],
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("dcf1|person|xiaoming zhang|1949-12-31"),
        "{text}"
    );
    assert!(text.contains("dcf1|person|小 张 明|1949-12-31"), "{text}");
}
