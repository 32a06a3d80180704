//! List calls page: an agency with 50,000 operations lists them all (one unpaged answer would
//! pass the 1 MiB message limit at about 14,000), and the watch centre's and the admin's lists
//! page the same way.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use deconfliction_proto::v1;
use deconfliction_proto::v1::admin_client::AdminClient;
use deconfliction_proto::v1::oversight_client::OversightClient;
use deconfliction_tests::*;

const OPERATIONS: usize = 50_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_thousand_operations_list_in_pages() {
    let fed = Federation::start_with(&["yn-psb"], |c| {
        c.policy.registration_rate_per_second = 1e9;
        c.policy.registration_burst = 1e9;
    })
    .await;
    let client = fed.client("yn-psb").await;
    let mut workers = Vec::new();
    let per_worker = OPERATIONS / 16;
    for _ in 0..16 {
        let mut c = client.clone();
        workers.push(tokio::spawn(async move {
            let mut ids = Vec::with_capacity(per_worker);
            for _ in 0..per_worker {
                let op = registration(vec![entry(&token(), SelectorKind::Phone, 1)]);
                c.register_operation(op.clone()).await.unwrap();
                ids.push(op.operation_id);
            }
            ids
        }));
    }
    let mut registered = BTreeSet::new();
    for w in workers {
        registered.extend(w.await.unwrap());
    }
    assert_eq!(registered.len(), OPERATIONS);

    let mut yn = client.clone();
    let mut listed = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = yn
            .list_operations(v1::ListOperationsRequest {
                include_ended: false,
                page_size: 0,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        assert!(page.operations.len() <= 1_000);
        listed.extend(page.operations.into_iter().map(|o| o.operation_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert!(pages >= OPERATIONS / 1_000, "{pages} pages");
    let unique: BTreeSet<String> = listed.iter().cloned().collect();
    assert_eq!(unique.len(), listed.len(), "an operation listed twice");
    assert_eq!(unique, registered, "every operation, once");
    // A page size beyond the maximum is refused, and so is a token this call never gave.
    let e = yn
        .list_operations(v1::ListOperationsRequest {
            page_size: 100_000,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e}");
    let e = yn
        .list_operations(v1::ListOperationsRequest {
            page_token: "not-a-token".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_centre_and_the_admin_page_too() {
    let fed = Federation::start_with(&["yn-psb", "gd-psb", "watch", "national-bureau"], |c| {
        enrol_roles(
            c,
            &[("watch", "watch-centre"), ("national-bureau", "admin")],
        );
    })
    .await;
    let mut yn = fed.client("yn-psb").await;
    let mut gd = fed.client("gd-psb").await;
    for _ in 0..3 {
        let t = token();
        yn.register_operation(registration(vec![entry(&t, SelectorKind::Vin, 1)]))
            .await
            .unwrap();
        gd.register_operation(registration(vec![entry(&t, SelectorKind::Vin, 1)]))
            .await
            .unwrap();
    }
    let mut watch = OversightClient::new(fed.channel("watch").await.unwrap());
    let mut seen = BTreeSet::new();
    let mut token = String::new();
    for _ in 0..10 {
        let page = watch
            .list_matches(v1::ListMatchesRequest {
                page_size: 1,
                page_token: token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.matches.len() <= 1);
        seen.extend(page.matches.into_iter().map(|m| m.match_id));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(seen.len(), 3, "{seen:?}");

    let mut admin = AdminClient::new(fed.channel("national-bureau").await.unwrap());
    let mut agencies = BTreeSet::new();
    let mut token = String::new();
    for _ in 0..10 {
        let page = admin
            .list_agencies(v1::ListAgenciesRequest {
                page_size: 1,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        agencies.extend(page.agencies.into_iter().map(|a| a.agency_id));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    // The two configured, and the two agencies entered on first contact.
    assert_eq!(agencies.len(), 4, "{agencies:?}");
}
