//! The token service sees only blinded points, and nothing it logs or stores could identify an
//! input: after evaluations at trace level, neither the captured logs nor the broker's data
//! folder hold a canonical form, a blinded or evaluated element, or a token, in any encoding.
//! (Its own file: a test binary can install the global subscriber only once.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use deconfliction_proto::v1;
use deconfliction_proto::v1::token_service_client::TokenServiceClient;
use deconfliction_tests::scan::{LogCapture, base64, contains, files_under};
use deconfliction_tests::*;
use token_spec::normalize::{FederationParams, Selector, canonical_forms};
use token_spec::token::BlindedBatch;

/// The encodings a log line could carry a secret in: raw, hex both cases, base64, and the
/// comma-separated byte list of a `Debug`-printed `Vec<u8>`.
fn encodings(secret: &[u8]) -> Vec<Vec<u8>> {
    let debug = format!("{secret:?}");
    vec![
        secret.to_vec(),
        hex::encode(secret).into_bytes(),
        hex::encode_upper(secret).into_bytes(),
        base64(secret, false).into_bytes(),
        debug
            .trim_matches(|c| c == '[' || c == ']')
            .as_bytes()
            .to_vec(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_service_logs_and_stores_nothing_that_identifies_an_input() {
    let capture = LogCapture::install("trace,sled=info");

    let mut fed = Federation::start(&["yn-psb", "gd-psb"]).await;
    let pin = pinned_key(&fed.config);
    let selectors = [
        Selector::Person {
            names: vec!["Nguyễn Thị".into(), "Minh Khai".into()],
            dob: "1990-07-15".into(),
        },
        Selector::Phone {
            text: "+86 138 0013 8000".into(),
            region: None,
        },
        Selector::Plate {
            country: "CN".into(),
            text: "京A·12345".into(),
        },
        Selector::Email {
            text: "zhang.wei@example.cn".into(),
        },
        Selector::Handle {
            platform: "telegram".into(),
            handle: "@zhangwei_88".into(),
        },
        Selector::Geo {
            lat: 25.0389,
            lng: 102.7183,
        },
    ];
    let mut forms = Vec::new();
    for s in &selectors {
        forms.extend(canonical_forms(s, &FederationParams::default()).unwrap());
    }
    // Field values as a person would recognise them, besides the whole canonical forms.
    let fields: Vec<Vec<u8>> = forms
        .iter()
        .flat_map(|f| f.split(|b| *b == 0).skip(2).map(<[u8]>::to_vec))
        .filter(|f| f.len() >= 6)
        .collect();

    // By hand, to see every element on the wire.
    let mut client = TokenServiceClient::new(fed.channel("yn-psb").await.unwrap());
    let batch = BlindedBatch::blind(forms.clone()).unwrap();
    let blinded: Vec<Vec<u8>> = batch
        .blinded_elements()
        .iter()
        .map(|e| e.to_vec())
        .collect();
    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        client.evaluate(v1::EvaluateRequest {
            blinded_elements: blinded.clone(),
            key_epoch: pin.epoch(),
        }),
    )
    .await
    .unwrap()
    .unwrap()
    .into_inner();
    let evaluated: Vec<[u8; 32]> = answer
        .evaluated_elements
        .iter()
        .map(|e| e.as_slice().try_into().unwrap())
        .collect();
    let tokens = batch
        .finalize(&evaluated, &answer.proof, pin.public_key())
        .unwrap();

    // And through the deriver, from two agencies, in small batches.
    for agency in ["yn-psb", "gd-psb"] {
        let mut deriver = fed
            .deriver(agency)
            .await
            .with_batch_size(3)
            .with_call_timeout(Duration::from_secs(10));
        assert_eq!(deriver.tokens(&forms).await.unwrap(), tokens);
    }
    fed.stop_broker().await;

    let logs = capture.bytes();
    let text = String::from_utf8_lossy(&logs);
    assert!(
        text.contains("token evaluation"),
        "the token service logged no evaluation: the scan would prove nothing"
    );
    assert!(logs.len() > 1000, "almost nothing was logged");
    let mut files = files_under(fed.data_dir());
    files.extend(files_under(&fed.dir.path().join("secrets")));
    let stored: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|p| (p.display().to_string(), std::fs::read(p).unwrap()))
        .collect();

    let mut secrets: Vec<(&str, Vec<u8>)> = Vec::new();
    secrets.extend(forms.iter().map(|f| ("canonical form", f.clone())));
    secrets.extend(fields.iter().map(|f| ("canonical field", f.clone())));
    secrets.extend(blinded.iter().map(|e| ("blinded element", e.clone())));
    secrets.extend(evaluated.iter().map(|e| ("evaluated element", e.to_vec())));
    secrets.extend(tokens.iter().map(|t| ("token", t.to_vec())));
    for (what, secret) in &secrets {
        let shown = String::from_utf8_lossy(secret);
        let mut forms = encodings(secret);
        if *what == "canonical field" || *what == "canonical form" {
            // Text is only ever text: raw bytes are the form to look for.
            forms.truncate(1);
        }
        for form in &forms {
            assert!(
                !contains(&logs, form),
                "the logs hold a {what} ({shown:?}) as {:?}",
                String::from_utf8_lossy(form)
            );
            for (path, bytes) in &stored {
                assert!(
                    !contains(bytes, form),
                    "{path} holds a {what} ({shown:?}) as {:?}",
                    String::from_utf8_lossy(form)
                );
            }
        }
    }
}
