//! No plaintext at the broker: after a scenario, nothing the broker stored or logged holds a
//! raw token (bytes, hex or base64), and nothing an agency received names the other side.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use deconfliction_proto::v1;
use deconfliction_tests::scan::{LogCapture, base64, contains};
use deconfliction_tests::*;
use prost::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_stores_logs_and_sends_no_token_of_anyone() {
    let capture = LogCapture::install("trace,h2=info,hyper=info,rustls=info,tower=info,sled=info");

    let mut fed = Federation::start(&["yn-psb", "gd-psb", "gx-psb"]).await;
    let mut yn = fed.client("yn-psb").await;
    let mut gd = fed.client("gd-psb").await;
    let mut gx = fed.client("gx-psb").await;
    let mut tokens = Vec::new();
    let case_ref = "CASE-YN-2026-0042 Operation Mekong";
    for i in 0..20u64 {
        let shared = token();
        let a = registration(vec![entry(&shared, SelectorKind::Phone, i), {
            let t = token();
            tokens.push(t.clone());
            entry(&t, SelectorKind::Iban, 100 + i)
        }]);
        // A case reference is refused (it stays in agencyd), without being echoed.
        let mut with_case = a.clone();
        with_case.case_reference = case_ref.into();
        let e = yn.register_operation(with_case).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(!e.message().contains(case_ref), "{e}");
        yn.register_operation(a.clone()).await.unwrap();
        gd.register_operation(registration(vec![entry(
            &shared,
            SelectorKind::Phone,
            200 + i,
        )]))
        .await
        .unwrap();
        gx.check(v1::CheckRequest {
            window: Some(window_hours(1)),
            tokens: vec![entry(&shared, SelectorKind::Phone, 0)],
        })
        .await
        .unwrap();
        yn.amend_operation(v1::AmendOperationRequest {
            operation_id: a.operation_id.clone(),
            remove_tokens: vec![tokens[tokens.len() - 1].clone()],
            ..Default::default()
        })
        .await
        .unwrap();
        tokens.push(shared);
    }
    // Relay traffic: message bodies and contact cards are the broker's data (stored, purged
    // by retention) but must never reach its logs.
    let message = "meet at the Ruili checkpoint 0300";
    let officer = "Inspector Zhou Wenqiang";
    let m = first_match_id(&mut yn).await;
    yn.send_message(v1::SendMessageRequest {
        match_id: m.clone(),
        text: message.into(),
    })
    .await
    .unwrap();
    for c in [&mut yn, &mut gd] {
        c.disclose(v1::DiscloseRequest {
            match_id: m.clone(),
            card: Some(v1::ContactCard {
                officer: officer.into(),
                phone: "+86 692 000 0000".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    }
    // What each agency received.
    let mut received = Vec::new();
    for (name, c) in [
        ("yn-psb", &mut yn),
        ("gd-psb", &mut gd),
        ("gx-psb", &mut gx),
    ] {
        let mut s = subscribe(c).await;
        for alert in drain(&mut s, Duration::from_millis(300)).await {
            let bytes = alert.encode_to_vec();
            for other in ["yn-psb", "gd-psb", "gx-psb"] {
                assert!(
                    !contains(&bytes, other.as_bytes()),
                    "{name} got an alert naming {other}"
                );
            }
            assert!(
                !contains(&bytes, case_ref.as_bytes()),
                "{name} got a case reference"
            );
            received.extend(bytes);
        }
    }
    fed.stop_broker().await;

    let files = fed.stored_files();
    assert!(!files.is_empty());
    let logs = capture.bytes();
    assert!(
        logs.len() > 1000,
        "the scenario logged nothing: the scan would prove nothing"
    );
    for text in [message, officer, case_ref] {
        assert!(
            !contains(&logs, text.as_bytes()),
            "{text:?} appears in the broker's logs"
        );
    }
    // Read once; on PostgreSQL the server's scratch files may come and go meanwhile.
    let stored: Vec<(PathBuf, Vec<u8>)> = files
        .iter()
        .filter_map(|f| match std::fs::read(f) {
            Ok(data) => Some((f.clone(), data)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => panic!("{}: {e}", f.display()),
        })
        .collect();
    assert!(!stored.is_empty());
    for t in &tokens {
        let forms = [
            t.clone(),
            hex::encode(t).into_bytes(),
            hex::encode_upper(t).into_bytes(),
            base64(t, false).into_bytes(),
        ];
        for form in &forms {
            assert!(
                !contains(&logs, form),
                "a token appears in the broker's logs"
            );
            assert!(!contains(&received, form), "a token was sent to an agency");
            for (f, data) in &stored {
                assert!(
                    !contains(data, form),
                    "a token is stored in {}",
                    f.display()
                );
            }
        }
    }
}
