//! Every bad input gets a precise status and message, and changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use deconfliction_proto::v1;
use deconfliction_proto::v1::broker_client::BrokerClient;
use deconfliction_tests::*;
use tonic::Code;
use tonic::transport::Channel;

/// What an agency can observe of the store: its operations and its alert backlog.
async fn observable(c: &mut BrokerClient<Channel>) -> (Vec<v1::Operation>, u64) {
    let ops = c
        .list_operations(v1::ListOperationsRequest {
            include_ended: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .operations;
    let mut s = subscribe(c).await;
    let alerts = drain(&mut s, std::time::Duration::from_millis(200)).await;
    (ops, alerts.len() as u64)
}

fn expect(result: Result<impl std::fmt::Debug, tonic::Status>, code: Code, words: &str) {
    let status = result.expect_err("bad input was accepted");
    assert_eq!(status.code(), code, "{}", status.message());
    assert!(
        status.message().contains(words),
        "message {:?} does not say {words:?}",
        status.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_precisely_and_changes_nothing() {
    let fed = Federation::start_with(&["yn-psb", "gd-psb"], |c| {
        c.policy.max_tokens_per_operation = 50;
        c.policy.max_message_bytes = 64 * 1024;
    })
    .await;
    let mut yn = fed.client("yn-psb").await;
    let mut gd = fed.client("gd-psb").await;
    let shared = token();
    let good = registration(vec![entry(&shared, SelectorKind::Phone, 1)]);
    yn.register_operation(good.clone()).await.unwrap();
    let closed = registration(vec![entry(&token(), SelectorKind::Phone, 1)]);
    yn.register_operation(closed.clone()).await.unwrap();
    yn.close_operation(v1::CloseOperationRequest {
        operation_id: closed.operation_id.clone(),
    })
    .await
    .unwrap();
    let before_yn = observable(&mut yn).await;
    let before_gd = observable(&mut gd).await;

    let with = |f: &dyn Fn(&mut v1::RegisterOperationRequest)| {
        let mut r = registration(vec![entry(&shared, SelectorKind::Phone, 7)]);
        f(&mut r);
        r
    };
    // Token of the wrong length.
    let r = with(&|r| r.tokens[0].token = vec![1; 31]);
    expect(
        gd.register_operation(r).await,
        Code::InvalidArgument,
        "exactly 32 bytes",
    );
    // No tokens.
    let r = with(&|r| r.tokens.clear());
    expect(
        gd.register_operation(r).await,
        Code::InvalidArgument,
        "at least one token",
    );
    // Too many tokens.
    let r = with(&|r| {
        r.tokens = (0..51)
            .map(|i| entry(&token(), SelectorKind::Phone, i))
            .collect();
    });
    expect(
        gd.register_operation(r).await,
        Code::InvalidArgument,
        "at most 50",
    );
    // Duplicate token.
    let r = with(&|r| r.tokens.push(r.tokens[0].clone()));
    expect(
        gd.register_operation(r).await,
        Code::InvalidArgument,
        "repeats",
    );
    // Unknown selector kind.
    let r = with(&|r| r.tokens[0].kind = 99);
    expect(
        gd.register_operation(r).await,
        Code::InvalidArgument,
        "not a selector kind",
    );
    // Window ending before it starts.
    let r = with(&|r| {
        r.window = Some(v1::Window {
            start_unix: now() + 100,
            end_unix: now() + 50,
        })
    });
    expect(
        gd.register_operation(r).await,
        Code::InvalidArgument,
        "before it starts",
    );
    // Window longer than policy.
    let r = with(&|r| {
        r.window = Some(v1::Window {
            start_unix: now(),
            end_unix: now() + 400 * 86400,
        })
    });
    expect(
        gd.register_operation(r).await,
        Code::InvalidArgument,
        "at most 366 days",
    );
    // Window already over.
    let r = with(&|r| {
        r.window = Some(v1::Window {
            start_unix: now() - 100,
            end_unix: now() - 50,
        })
    });
    expect(
        gd.register_operation(r).await,
        Code::InvalidArgument,
        "already ended",
    );
    // Missing window.
    let r = with(&|r| r.window = None);
    expect(
        gd.register_operation(r).await,
        Code::InvalidArgument,
        "window is missing",
    );
    // Malformed id.
    let r = with(&|r| r.operation_id = "op-42".into());
    expect(
        gd.register_operation(r).await,
        Code::InvalidArgument,
        "not a UUID",
    );
    // Oversized message.
    let r = with(&|r| r.operation_id = "x".repeat(100 * 1024));
    expect(
        gd.register_operation(r).await,
        Code::ResourceExhausted,
        "too large",
    );
    // The broker takes no case reference at all: it stays in agencyd.
    let r = with(&|r| r.case_reference = "YN-2026-0042".into());
    expect(
        gd.register_operation(r).await,
        Code::InvalidArgument,
        "case_reference",
    );
    // Unknown operation.
    let unknown = uuid::Uuid::new_v4().to_string();
    expect(
        gd.get_operation(v1::GetOperationRequest {
            operation_id: unknown.clone(),
        })
        .await,
        Code::NotFound,
        "no operation",
    );
    expect(
        gd.close_operation(v1::CloseOperationRequest {
            operation_id: unknown.clone(),
        })
        .await,
        Code::NotFound,
        "no operation",
    );
    expect(
        gd.amend_operation(v1::AmendOperationRequest {
            operation_id: unknown,
            add_tokens: vec![entry(&shared, SelectorKind::Phone, 1)],
            ..Default::default()
        })
        .await,
        Code::NotFound,
        "no operation",
    );
    // Amending a closed operation.
    expect(
        yn.amend_operation(v1::AmendOperationRequest {
            operation_id: closed.operation_id.clone(),
            add_tokens: vec![entry(&shared, SelectorKind::Phone, 1)],
            ..Default::default()
        })
        .await,
        Code::FailedPrecondition,
        "closed",
    );
    // An amendment that removes every token, or changes nothing.
    expect(
        yn.amend_operation(v1::AmendOperationRequest {
            operation_id: good.operation_id.clone(),
            remove_tokens: vec![shared.clone()],
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        "at least one token",
    );
    expect(
        yn.amend_operation(v1::AmendOperationRequest {
            operation_id: good.operation_id.clone(),
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        "changes nothing",
    );
    // Acknowledging alerts that do not exist.
    expect(
        gd.ack(v1::AckRequest {
            upto: 1000,
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        "last alert",
    );
    // A bad check.
    expect(
        gd.check(v1::CheckRequest {
            window: Some(window_hours(1)),
            tokens: vec![],
        })
        .await,
        Code::InvalidArgument,
        "at least one token",
    );

    assert_eq!(
        observable(&mut yn).await,
        before_yn,
        "Yunnan's view changed"
    );
    assert_eq!(
        observable(&mut gd).await,
        before_gd,
        "Guangdong's view changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_floods_are_rate_limited() {
    let fed = Federation::start_with(&["yn-psb", "gd-psb"], |c| {
        c.policy.check_rate_per_second = 1.0;
        c.policy.check_burst = 5.0;
    })
    .await;
    let mut gd = fed.client("gd-psb").await;
    let req = v1::CheckRequest {
        window: Some(window_hours(1)),
        tokens: vec![entry(&token(), SelectorKind::Phone, 0)],
    };
    let mut refused = None;
    for _ in 0..20 {
        if let Err(e) = gd.check(req.clone()).await {
            refused = Some(e);
            break;
        }
    }
    let e = refused.expect("no check was refused");
    assert_eq!(e.code(), Code::ResourceExhausted);
    assert!(e.message().contains("rate limit"), "{}", e.message());
    // Another agency is unaffected.
    let mut yn = fed.client("yn-psb").await;
    yn.check(req).await.unwrap();
}

/// Checks and registrations are charged in tokens, before any token is looked at, and the
/// refusal says when to retry (or to split a request no bucket could ever let through).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_count_tokens_not_calls() {
    let fed = Federation::start_with(&["yn-psb"], |c| {
        c.policy.check_rate_per_second = 1.0;
        c.policy.check_burst = 5.0;
        c.policy.registration_rate_per_second = 1.0;
        c.policy.registration_burst = 5.0;
    })
    .await;
    let mut yn = fed.client("yn-psb").await;
    let tokens = |n: usize| -> Vec<v1::TokenEntry> {
        (0..n)
            .map(|i| entry(&token(), SelectorKind::Phone, i as u64))
            .collect()
    };
    let check = |n: usize| v1::CheckRequest {
        window: Some(window_hours(1)),
        tokens: tokens(n),
    };
    yn.check(check(3)).await.unwrap();
    let e = yn.check(check(3)).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
    assert!(
        e.message().contains("checks rate limit") && e.message().contains("retry in"),
        "{e}"
    );
    let e = yn.check(check(6)).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
    assert!(e.message().contains("split it"), "{e}");
    // Registrations have their own bucket.
    yn.register_operation(registration(tokens(3)))
        .await
        .unwrap();
    let e = yn
        .register_operation(registration(tokens(3)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
    assert!(e.message().contains("registrations rate limit"), "{e}");
    // Bad tokens are refused only after the charge: garbage costs the caller too.
    let fed = Federation::start_with(&["yn-psb"], |c| {
        c.policy.check_rate_per_second = 0.001;
        c.policy.check_burst = 1.0;
    })
    .await;
    let mut yn = fed.client("yn-psb").await;
    let garbage = v1::CheckRequest {
        window: Some(window_hours(1)),
        tokens: vec![v1::TokenEntry {
            token: vec![1, 2, 3],
            kind: SelectorKind::Phone as i32,
            local_ref: 0,
        }],
    };
    let e = yn.check(garbage).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    let e = yn.check(check(1)).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
}
