//! The token service end to end: agency normalization → blind → `Evaluate` over mTLS → verify
//! against the pinned key → finalize → register at the broker. Cross-checked with the shared
//! vectors; wrong pins, quotas and the stand-alone `token-service` role.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::time::Duration;

use deconflict_broker::server::{Mode, start};
use deconfliction_proto::v1;
use deconfliction_proto::v1::broker_client::BrokerClient;
use deconfliction_tests::scan::files_under;
use deconfliction_tests::*;
use serde_json::Value;
use token_spec::normalize::{FederationParams, Selector, canonical_forms_on};
use token_spec::token::{
    PinnedKey, TOKEN_SERVICE_INFO, TokenDeriver, TokenError, derive_keypair_from_seed,
};

const WAIT: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(300);
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

fn person(names: &[&str], dob: &str) -> Selector {
    Selector::Person {
        names: names.iter().map(|s| s.to_string()).collect(),
        dob: dob.into(),
    }
}

fn phone(text: &str, region: Option<&str>) -> Selector {
    Selector::Phone {
        text: text.into(),
        region: region.map(str::to_owned),
    }
}

fn plate(country: &str, text: &str) -> Selector {
    Selector::Plate {
        country: country.into(),
        text: text.into(),
    }
}

fn email(text: &str) -> Selector {
    Selector::Email { text: text.into() }
}

fn geo(lat: f64, lng: f64) -> Selector {
    Selector::Geo { lat, lng }
}

/// Great-circle distance in metres (for asserting the test geometry itself).
fn metres(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, lo1, la2, lo2) = (
        a.0.to_radians(),
        a.1.to_radians(),
        b.0.to_radians(),
        b.1.to_radians(),
    );
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * 6_371_000.0 * h.sqrt().asin()
}

fn token_set(entries: &[v1::TokenEntry]) -> HashSet<Vec<u8>> {
    entries.iter().map(|e| e.token.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn different_spellings_give_one_match_through_the_token_service() {
    let fed = Federation::start(&["yn-psb", "gd-psb"]).await;
    let (mut yn, mut gd) = (fed.client("yn-psb").await, fed.client("gd-psb").await);
    let mut yn_tokens = fed.deriver("yn-psb").await.with_call_timeout(CALL_TIMEOUT);
    let mut gd_tokens = fed.deriver("gd-psb").await.with_call_timeout(CALL_TIMEOUT);
    yn_tokens.check_published_key().await.unwrap();
    gd_tokens.check_published_key().await.unwrap();

    let here = (25.0389, 102.7183);
    let near = (25.0391, 102.7185);
    let far = (25.0839, 102.7183);
    assert!((20.0..60.0).contains(&metres(here, near)));
    assert!((4_500.0..5_500.0).contains(&metres(here, far)));

    // Yunnan writes family name first, with diacritics, international phone, dotted plate.
    let yn_selectors = vec![
        person(&["Nguyễn Thị", "Minh Khai"], "1990-07-15"),
        phone("+86 138-0013-8000", None),
        plate("CN", "京A·12345"),
        email("Zhang.Wei@Example.CN"),
        geo(here.0, here.1),
        phone("+84 90 123 4567", None),
    ];
    // Guangdong: given name first in capitals without diacritics, national phone, spaced
    // plate, padded e-mail, a point ~30 m away, and a phone Yunnan does not have.
    let gd_selectors = vec![
        person(&["MINH KHAI", "NGUYEN THI"], "1990-07-15"),
        phone("138 0013 8000", Some("CN")),
        plate("CN", "京A 12345"),
        email("  zhang.wei@example.cn "),
        geo(near.0, near.1),
        phone("+1 202-555-0143", None),
    ];
    let yn_entries = selector_entries(&mut yn_tokens, &yn_selectors)
        .await
        .unwrap();
    let gd_entries = selector_entries(&mut gd_tokens, &gd_selectors)
        .await
        .unwrap();
    // The first four selectors give one token each, equal across agencies; geo gives 7.
    assert_eq!(yn_entries.len(), 4 + 7 + 1);
    assert_eq!(gd_entries.len(), 4 + 7 + 1);
    for i in 0..4 {
        assert_eq!(yn_entries[i].token, gd_entries[i].token, "selector {i}");
    }
    let shared_geo = token_set(&yn_entries[4..11])
        .intersection(&token_set(&gd_entries[4..11]))
        .count();
    assert!(shared_geo >= 1, "points 30 m apart share no cell");
    assert_ne!(yn_entries[11].token, gd_entries[11].token);

    let mut yn_alerts = subscribe(&mut yn).await;
    let mut gd_alerts = subscribe(&mut gd).await;
    let yn_op = registration(yn_entries);
    let r = yn
        .register_operation(yn_op.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.matches_touched, 0);
    let gd_op = registration(gd_entries);
    let r = gd
        .register_operation(gd_op.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.matches_touched, 1, "exactly one match");

    let ya = next_alerts(&mut yn_alerts, 1, WAIT).await;
    let ga = next_alerts(&mut gd_alerts, 1, WAIT).await;
    let (ym, gm) = (match_of(&ya[0]), match_of(&ga[0]));
    assert_eq!(ym.match_id, gm.match_id);
    assert!(ym.created && gm.created);
    assert_eq!(ym.operation_id, yn_op.operation_id);
    assert_eq!(gm.operation_id, gd_op.operation_id);
    for m in [ym, gm] {
        let refs: HashSet<u64> = m.tokens.iter().map(|t| t.local_ref).collect();
        assert_eq!(
            refs,
            HashSet::from([0, 1, 2, 3, 4]),
            "person, phone, plate, e-mail and geo matched; the other phones did not"
        );
        assert_eq!(m.tokens.len(), 4 + shared_geo);
    }
    no_alert(&mut yn_alerts, QUIET).await;
    no_alert(&mut gd_alerts, QUIET).await;

    // A point ~5 km away shares no cell and matches nothing.
    let far_entries = selector_entries(&mut gd_tokens, &[geo(far.0, far.1)])
        .await
        .unwrap();
    assert_eq!(far_entries.len(), 7);
    assert!(
        token_set(&far_entries)
            .intersection(&token_set(&yn_op.tokens))
            .next()
            .is_none()
    );
    let r = gd
        .register_operation(registration(far_entries))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.matches_touched, 0);
    no_alert(&mut yn_alerts, QUIET).await;
    no_alert(&mut gd_alerts, QUIET).await;
}

/// "Today" for the date-of-birth rule, as in agency-client/token-spec/tests/vectors.rs.
fn vectors_today() -> time::Date {
    time::Date::from_calendar_date(2025, time::Month::June, 30).unwrap()
}

/// The project's copy of the public vectors (token-spec's tests check it against the
/// federation's shared file when that is there).
fn vectors() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../agency-client/token-spec/data/token-vectors.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn hex_list(v: &Value) -> Vec<Vec<u8>> {
    match v {
        Value::String(s) => vec![hex::decode(s).unwrap()],
        Value::Array(items) => items
            .iter()
            .map(|i| hex::decode(i.as_str().unwrap()).unwrap())
            .collect(),
        other => panic!("expected hex, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_through_grpc_equal_the_public_vectors() {
    let file = vectors();
    let seed: [u8; 32] = hex::decode(file["oprf_seed_hex"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(seed, [7u8; 32]);
    let fed = Federation::start_with(&["yn-psb"], |c| write_token_seed(c, &seed)).await;
    // The agency pins the key published with the vectors, not one read from the service.
    let pin = PinnedKey::from_hex(
        file["oprf_public_key_hex"].as_str().unwrap(),
        fed.config.token_service.key_epoch,
    )
    .unwrap();
    assert_eq!(pin, pinned_key(&fed.config));
    let info = fed
        .client("yn-psb")
        .await
        .get_federation_info(v1::GetFederationInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    pin.check_published(&info.token_service_public_key, info.token_service_key_epoch)
        .unwrap();
    let mut deriver = TokenDeriver::from_channel(fed.channel("yn-psb").await.unwrap(), pin)
        .with_batch_size(16)
        .with_call_timeout(CALL_TIMEOUT);
    deriver.check_published_key().await.unwrap();

    let direct = derive_keypair_from_seed(&seed, TOKEN_SERVICE_INFO).unwrap();
    let params = FederationParams::default();
    let (mut forms, mut expected) = (Vec::new(), Vec::new());
    for case in file["cases"].as_array().unwrap() {
        if case["error"].as_bool() == Some(true) {
            continue;
        }
        let id = case["id"].as_str().unwrap();
        let selector = Selector::from_json(case["kind"].as_str().unwrap(), &case["input"]).unwrap();
        let canonical = canonical_forms_on(&selector, &params, vectors_today()).unwrap();
        assert_eq!(canonical, hex_list(&case["canonical_hex"]), "{id}");
        let tokens = hex_list(&case["token_hex"]);
        assert_eq!(tokens.len(), canonical.len(), "{id}");
        forms.extend(canonical);
        expected.extend(tokens);
    }
    assert!(forms.len() > 100, "{} forms", forms.len());
    let distinct: HashSet<&Vec<u8>> = forms.iter().collect();
    let distinct = distinct.len() as u64;
    assert!(distinct < forms.len() as u64, "the vectors repeat forms");

    let got = deriver.tokens(&forms).await.unwrap();
    assert_eq!(got.len(), forms.len());
    for ((form, token), want) in forms.iter().zip(&got).zip(&expected) {
        assert_eq!(token.as_slice(), want.as_slice());
        assert_eq!(*token, direct.direct_token(form).unwrap());
    }
    // Deduplicated, in batches of 16, and cached: asking again costs no call.
    let stats = deriver.stats();
    assert_eq!(stats.evaluated, distinct);
    assert_eq!(stats.calls, distinct.div_ceil(16));
    assert_eq!(deriver.cached() as u64, distinct);
    let again = deriver.tokens(&forms).await.unwrap();
    assert_eq!(again, got);
    assert_eq!(deriver.stats().calls, stats.calls);
    assert_eq!(deriver.stats().cache_hits, forms.len() as u64);
    assert!(deriver.tokens(&[]).await.unwrap().is_empty());

    // One form alone through a fresh deriver (batch of one, default batch size).
    let mut single = fed.deriver("yn-psb").await;
    assert_eq!(single.token(&forms[0]).await.unwrap(), got[0]);
    assert_eq!(single.stats().calls, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_pinned_key_is_refused_and_nothing_is_registered() {
    let fed = Federation::start(&["yn-psb", "gd-psb"]).await;
    let right = pinned_key(&fed.config);
    let other = derive_keypair_from_seed(&[8u8; 32], TOKEN_SERVICE_INFO).unwrap();
    let wrong = PinnedKey::new(other.public_key(), right.epoch()).unwrap();
    let mut deriver = TokenDeriver::from_channel(fed.channel("yn-psb").await.unwrap(), wrong)
        .with_call_timeout(CALL_TIMEOUT);

    // The published key disagrees, and the error says what to do.
    let err = deriver.check_published_key().await.unwrap_err();
    assert!(matches!(err, TokenError::KeyMismatch { .. }), "{err:?}");
    let text = err.to_string();
    for part in [
        hex::encode(right.public_key()),
        hex::encode(wrong.public_key()),
        "update the pinned key from the federation administrator".into(),
        "do not register until they agree".into(),
    ] {
        assert!(text.contains(&part), "{text}");
    }

    // Deriving anyway: the proof does not verify, loudly, and no token comes out.
    let selectors = [
        phone("+86 138 0013 8000", None),
        plate("CN", "京A12345"),
        geo(25.0389, 102.7183),
    ];
    let mut broker = fed.client("yn-psb").await;
    let outcome = selector_entries(&mut deriver, &selectors).await;
    let err = match outcome {
        Ok(entries) => {
            broker
                .register_operation(registration(entries))
                .await
                .unwrap();
            panic!("tokens were derived under a key that is not the pinned one");
        }
        Err(e) => e,
    };
    assert_eq!(err, TokenError::ProofVerification);
    assert!(err.to_string().contains("DOES NOT VERIFY"), "{err}");
    assert_eq!(deriver.cached(), 0);
    assert_eq!(deriver.stats().evaluated, 0);
    assert_eq!(deriver.stats().calls, 1);
    let ops = broker
        .list_operations(v1::ListOperationsRequest {
            include_ended: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(ops.operations.is_empty(), "{:?}", ops.operations);

    // The right key, the wrong epoch: the service refuses the epoch, nothing is derived.
    let stale = PinnedKey::new(*right.public_key(), right.epoch() + 1).unwrap();
    let mut deriver = TokenDeriver::from_channel(fed.channel("gd-psb").await.unwrap(), stale)
        .with_call_timeout(CALL_TIMEOUT);
    assert!(matches!(
        deriver.check_published_key().await,
        Err(TokenError::KeyMismatch { .. })
    ));
    let err = deriver.token(b"dcf1\0email\0a@b").await.unwrap_err();
    assert_eq!(
        err.grpc_code(),
        Some(tonic::Code::FailedPrecondition),
        "{err}"
    );
    assert!(err.to_string().contains("not served"), "{err}");
    assert_eq!(deriver.cached(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluations_past_the_quota_are_resource_exhausted() {
    const QUOTA: u64 = 6;
    let fed = Federation::start_with(&["yn-psb", "gd-psb"], |c| {
        c.token_service.quota_per_minute = QUOTA;
    })
    .await;
    let forms: Vec<Vec<u8>> = (0..QUOTA)
        .map(|i| format!("dcf1\0email\0user{i}@example.cn").into_bytes())
        .collect();
    let extra = b"dcf1\0email\0one.more@example.cn".to_vec();
    // The quota counts per calendar minute: keep the whole exchange inside one.
    let second = now().rem_euclid(60);
    if second >= 45 {
        tokio::time::sleep(Duration::from_secs((61 - second) as u64)).await;
    }
    let mut yn = fed.deriver("yn-psb").await.with_call_timeout(CALL_TIMEOUT);
    let first = yn.tokens(&forms).await.unwrap();

    let err = yn.token(&extra).await.unwrap_err();
    assert!(err.is_resource_exhausted(), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("RESOURCE_EXHAUSTED"), "{text}");
    assert!(
        text.contains("quota exceeded") && text.contains("per minute"),
        "{text}"
    );
    assert_eq!(yn.cached(), forms.len());

    // Cached tokens still come back (no call, no quota), and the quota is per agency.
    assert_eq!(yn.tokens(&forms).await.unwrap(), first);
    assert_eq!(yn.stats().calls, 2);
    let mut gd = fed.deriver("gd-psb").await.with_call_timeout(CALL_TIMEOUT);
    assert_eq!(gd.tokens(&forms).await.unwrap(), first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stand_alone_token_service_derives_tokens_and_serves_nothing_else() {
    let fed = Federation::start(&["yn-psb"]).await;
    let root = fed.dir.path().join("token-service");
    let mut config = fed.service_config(&root, "token-service");
    config.secrets.pepper = root.join("pepper");
    let seed = [9u8; 32];
    write_token_seed(&config, &seed);
    let service = start(&config, Mode::TokenServiceOnly).await.unwrap();
    assert_ne!(service.addr, fed.addr());

    let (agency_cert, agency_key) = fed.agency_pem("yn-psb");
    let channel = connect(
        service.addr,
        &fed.ca_pem(),
        Some((&agency_cert, &agency_key)),
    )
    .await
    .unwrap();
    let own = derive_keypair_from_seed(&seed, TOKEN_SERVICE_INFO).unwrap();
    let pin = PinnedKey::new(own.public_key(), config.token_service.key_epoch).unwrap();
    let mut deriver =
        TokenDeriver::from_channel(channel.clone(), pin).with_call_timeout(CALL_TIMEOUT);
    deriver.check_published_key().await.unwrap();
    let forms = vec![
        b"dcf1\0phone\0+8613800138000".to_vec(),
        b"dcf1\0plate\0CN\0\xe4\xba\xacA12345".to_vec(),
    ];
    let tokens = deriver.tokens(&forms).await.unwrap();
    for (form, token) in forms.iter().zip(&tokens) {
        assert_eq!(*token, own.direct_token(form).unwrap());
    }
    // Its key is its own: the broker's embedded service gives other tokens.
    let embedded = fed.deriver("yn-psb").await.tokens(&forms).await.unwrap();
    assert_ne!(embedded, tokens);

    // It does not serve the broker, and keeps no store or pepper.
    let status = BrokerClient::new(channel)
        .get_federation_info(v1::GetFederationInfoRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented, "{status}");
    // Without the agency certificate there is no token either.
    let anonymous = connect(service.addr, &fed.ca_pem(), None).await;
    if let Ok(channel) = anonymous {
        let mut d = TokenDeriver::from_channel(channel, pin).with_call_timeout(CALL_TIMEOUT);
        let err = d.token(&forms[0]).await.unwrap_err();
        assert!(err.grpc_code().is_some(), "{err:?}");
    }
    service.shutdown().await;
    // No broker pepper; and whatever it keeps on disk (an audit trail, at most) holds no
    // canonical form and no token.
    assert!(!config.secrets.pepper.exists());
    let mut secrets: Vec<Vec<u8>> = forms.clone();
    secrets.extend(tokens.iter().map(|t| t.to_vec()));
    secrets.extend(tokens.iter().map(|t| hex::encode(t).into_bytes()));
    for path in files_under(&config.server.data_dir) {
        let bytes = std::fs::read(&path).unwrap();
        for s in &secrets {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_slice()),
                "{} holds a canonical form or token",
                path.display()
            );
        }
    }
}
