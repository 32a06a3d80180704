//! Broker calls that many tests make the same way: a subscription from the start, the match
//! alert inside an alert, an agency's first match, a contact card.

use deconfliction_proto::v1;
use deconfliction_proto::v1::broker_client::BrokerClient;
use tonic::transport::Channel;

/// The agency's alert stream from its first unacknowledged alert.
pub async fn subscribe(client: &mut BrokerClient<Channel>) -> tonic::Streaming<v1::Alert> {
    client
        .subscribe(v1::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner()
}

/// The match alert an alert carries; fails the test for any other kind.
pub fn match_of(alert: &v1::Alert) -> &v1::MatchAlert {
    match &alert.event {
        Some(v1::alert::Event::Match(m)) => m,
        other => panic!("expected a match alert, got {other:?}"),
    }
}

/// `a` and `b` each register an operation on one fresh token of `kind` (local refs 1 and 2):
/// one match between them. The token.
pub async fn register_shared(
    a: &mut BrokerClient<Channel>,
    b: &mut BrokerClient<Channel>,
    kind: crate::SelectorKind,
) -> Vec<u8> {
    let t = crate::token();
    for (client, local_ref) in [(a, 1), (b, 2)] {
        client
            .register_operation(crate::registration(vec![crate::entry(&t, kind, local_ref)]))
            .await
            .unwrap();
    }
    t
}

/// The id of the first match of the agency's first operation.
pub async fn first_match_id(client: &mut BrokerClient<Channel>) -> String {
    client
        .list_operations(v1::ListOperationsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .operations[0]
        .match_ids[0]
        .clone()
}

/// A complete contact card for `officer`.
pub fn contact_card(officer: &str) -> v1::ContactCard {
    v1::ContactCard {
        unit_name: format!("{officer}'s unit"),
        officer: officer.into(),
        phone: "+86 871 0000 0000".into(),
        secure_email: format!("{officer}@secure.example"),
        note: "call after 20:00".into(),
    }
}
