//! Token-service key rotation, server side: during the overlap the broker serves the new
//! epoch and the previous one, so agencies still pinned to the old key keep their tokens (and
//! their matches) while they re-derive under the new one; once the overlap ends, the old epoch
//! is refused with a message that says what to do.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use deconfliction_proto::v1;
use deconfliction_tests::*;
use token_spec::token::{TokenDeriver, TokenError};

const FORMS: [&[u8]; 2] = [
    b"dcf1\0email\0courier@mail.example",
    b"dcf1\0vin\0LSVAA4182E2184841",
];

async fn tokens(
    fed: &Federation,
    pin: token_spec::token::PinnedKey,
) -> Result<Vec<Vec<u8>>, TokenError> {
    let mut d = TokenDeriver::from_channel(fed.channel("yn-psb").await.unwrap(), pin);
    let forms: Vec<Vec<u8>> = FORMS.iter().map(|f| f.to_vec()).collect();
    Ok(d.tokens(&forms).await?.iter().map(|t| t.to_vec()).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previous_epoch_is_served_during_the_overlap_and_refused_after() {
    // Epoch 1.
    let mut fed = Federation::start(&["yn-psb"]).await;
    let old_pin = pinned_key(&fed.config);
    let before = tokens(&fed, old_pin).await.unwrap();

    // Rotate: a new seed for epoch 2, the old seed served until an hour from now.
    fed.stop_broker().await;
    let old_seed = fed.config.token_service.seed.clone();
    let new_seed = fed.dir.path().join("secrets/token-service-epoch2.seed");
    write_secret(&new_seed, &[42u8; 32]);
    fed.config.token_service.previous_seed = Some(old_seed);
    fed.config.token_service.previous_key_epoch = 1;
    fed.config.token_service.previous_valid_until = Some(
        (time::OffsetDateTime::now_utc() + time::Duration::hours(1))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap(),
    );
    fed.config.token_service.seed = new_seed;
    fed.config.token_service.key_epoch = 2;
    fed.start_broker().await;
    let new_pin = pinned_key(&fed.config);

    // The old pin still gets the very same tokens; the new pin gets different ones.
    assert_eq!(tokens(&fed, old_pin).await.unwrap(), before);
    let after = tokens(&fed, new_pin).await.unwrap();
    assert!(
        after.iter().zip(&before).all(|(a, b)| a != b),
        "epoch 2 tokens equal epoch 1's"
    );
    // Both keys are published.
    let info = fed
        .client("yn-psb")
        .await
        .get_federation_info(v1::GetFederationInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.token_service_key_epoch, 2);
    assert_eq!(info.token_service_public_key, new_pin.public_key().to_vec());
    assert_eq!(info.previous_token_service_key_epoch, 1);
    assert_eq!(
        info.previous_token_service_public_key,
        old_pin.public_key().to_vec()
    );
    assert!(info.previous_key_valid_until_unix > now());

    // The overlap ends: epoch 1 is refused, and the message says what to do.
    fed.stop_broker().await;
    fed.config.token_service.previous_valid_until = Some(
        (time::OffsetDateTime::now_utc() - time::Duration::minutes(1))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap(),
    );
    fed.start_broker().await;
    let err = tokens(&fed, old_pin).await.unwrap_err();
    assert!(
        err.to_string().contains("retired") && err.to_string().contains("epoch 2"),
        "{err}"
    );
    assert_eq!(tokens(&fed, new_pin).await.unwrap(), after);

    // A rotation configured wrongly does not start.
    fed.stop_broker().await;
    fed.config.token_service.previous_valid_until = Some("next tuesday".into());
    let e = deconflict_broker::server::start(&fed.config, deconflict_broker::server::Mode::Broker)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("RFC 3339"), "{e}");
}
