//! What a party can read of a match says nothing the other side did unannounced: every field
//! of its view moves only with its own actions or with an alert it receives.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use deconfliction_proto::v1;
use deconfliction_proto::v1::broker_client::BrokerClient;
use deconfliction_tests::*;
use tonic::transport::Channel;

const WAIT: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(300);
/// Views carry whole seconds: wait past one so that a moved timestamp would show.
const TICK: Duration = Duration::from_millis(1_100);

async fn view(client: &mut BrokerClient<Channel>, id: &str) -> v1::MatchView {
    client
        .get_match(v1::GetMatchRequest {
            match_id: id.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_other_sides_disclose_withdraw_and_message_leave_a_partys_view_unchanged() {
    let fed = Federation::start(&["yn-psb", "gd-psb"]).await;
    let (mut yn, mut gd) = (fed.client("yn-psb").await, fed.client("gd-psb").await);
    let mut gd_s = subscribe(&mut gd).await;
    register_shared(&mut yn, &mut gd, SelectorKind::Phone).await;
    let m = match_of(&next_alerts(&mut gd_s, 1, WAIT).await[0])
        .match_id
        .clone();
    let before = view(&mut gd, &m).await;

    // Yunnan discloses its card and withdraws it again: Guangdong is told nothing, and its
    // view must not move either (a moved `updated_unix` once said "the other side disclosed").
    tokio::time::sleep(TICK).await;
    let own = yn
        .disclose(v1::DiscloseRequest {
            match_id: m.clone(),
            card: Some(contact_card("Li")),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(own.you_disclosed);
    no_alert(&mut gd_s, QUIET).await;
    assert_eq!(
        view(&mut gd, &m).await,
        before,
        "after the other side disclosed"
    );
    tokio::time::sleep(TICK).await;
    yn.withdraw_disclosure(v1::WithdrawDisclosureRequest {
        match_id: m.clone(),
    })
    .await
    .unwrap();
    no_alert(&mut gd_s, QUIET).await;
    assert_eq!(
        view(&mut gd, &m).await,
        before,
        "after the other side withdrew"
    );

    // A message arrives as an alert; the view itself stays as it was.
    tokio::time::sleep(TICK).await;
    yn.send_message(v1::SendMessageRequest {
        match_id: m.clone(),
        text: "Same phone, different case?".into(),
    })
    .await
    .unwrap();
    next_alerts(&mut gd_s, 1, WAIT).await;
    assert_eq!(view(&mut gd, &m).await, before, "after a message");

    // The exchange of cards is announced to both, and then the view says so.
    tokio::time::sleep(TICK).await;
    yn.disclose(v1::DiscloseRequest {
        match_id: m.clone(),
        card: Some(contact_card("Li")),
    })
    .await
    .unwrap();
    gd.disclose(v1::DiscloseRequest {
        match_id: m.clone(),
        card: Some(contact_card("Chen")),
    })
    .await
    .unwrap();
    next_alerts(&mut gd_s, 1, WAIT).await;
    let after = view(&mut gd, &m).await;
    assert!(after.cards_exchanged && after.you_disclosed);
    assert!(after.updated_unix > before.updated_unix);
}
