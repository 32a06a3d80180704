//! The de-anonymisation the security review found, tried from outside against the real
//! `deconflict-broker serve` process (not the in-process library): the watch centre and the
//! admin plant a token a bureau holds and read the match list to learn which bureau works on
//! it. Every step is refused, so the match list names nobody.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use deconfliction_proto::v1;
use deconfliction_proto::v1::oversight_client::OversightClient;
use deconfliction_tests::*;
use tonic::Code;

/// Kills the broker process when the test ends, however it ends.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planting_a_guessed_token_through_the_binary_reveals_no_agency() {
    let mut fed = Federation::start_with(&["yn-psb", "watch", "national-bureau"], |c| {
        enrol_roles(
            c,
            &[("watch", "watch-centre"), ("national-bureau", "admin")],
        )
    })
    .await;
    fed.stop_broker().await;
    fed.config.server.listen = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = fed.write_config();
    let mut process = Process(
        Command::new(broker_binary())
            .args(["serve", "--config", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let serving = &fed;
    let mut yn = eventually(
        Duration::from_secs(60),
        "the broker process serves",
        move || async move {
            let mut c = v1::broker_client::BrokerClient::new(serving.channel("yn-psb").await.ok()?);
            c.get_federation_info(v1::GetFederationInfoRequest {})
                .await
                .ok()?;
            Some(c)
        },
    )
    .await;
    assert!(process.0.try_wait().unwrap().is_none(), "the broker exited");

    // The bureau's operation on a phone the attacker guesses.
    let t = token();
    yn.register_operation(registration(vec![entry(&t, SelectorKind::Phone, 1)]))
        .await
        .unwrap();
    for (who, role) in [("watch", "watch centre"), ("national-bureau", "admin")] {
        let mut c = fed.client(who).await;
        let planted = c
            .register_operation(registration(vec![entry(&t, SelectorKind::Phone, 1)]))
            .await
            .unwrap_err();
        assert_eq!(planted.code(), Code::PermissionDenied, "{who}: {planted}");
        assert!(
            planted.message().contains(&format!("has the {role} role")),
            "{planted}"
        );
        let checked = c
            .check(v1::CheckRequest {
                window: Some(window_hours(1)),
                tokens: vec![entry(&t, SelectorKind::Phone, 0)],
            })
            .await
            .unwrap_err();
        assert_eq!(checked.code(), Code::PermissionDenied, "{who}: {checked}");
    }
    let matches = OversightClient::new(fed.channel("watch").await.unwrap())
        .list_matches(v1::ListMatchesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .matches;
    assert!(
        matches.is_empty(),
        "the match list names an agency: {matches:?}"
    );
    assert!(process.0.try_wait().unwrap().is_none(), "the broker exited");
}
