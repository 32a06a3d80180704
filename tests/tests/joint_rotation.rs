//! A key share rotates as a home key does: China's token service serves its share's epoch 2
//! beside epoch 1 for an overlap; a bureau that pins both re-derives its released operation
//! under both pairs of epochs by itself, so that a Lao unit not yet moved still matches it;
//! when the overlap ends, the bureau's daemon removes the old pair's tokens from the joint
//! broker, and a unit that moved matches under the new pair.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use agency_client::control::{self, pb};
use agency_client::daemon::{self, DaemonConfig};
use deconfliction_tests::agencyd::{ControlClient, alert_views, control_client};
use deconfliction_tests::joint::{
    Joint, SEED_CN, ShareKey, ShareKeys, public_hex, release, share_service,
};
use deconfliction_tests::*;
use token_spec::normalize::Selector;

const WAIT: Duration = Duration::from_secs(30);
/// China's share, epoch 2.
const SEED_CN2: [u8; 32] = [0x0c; 32];

fn phone() -> pb::Selector {
    control::selector_to_proto(
        &Selector::Phone {
            text: "+86 138 0013 8000".into(),
            region: None,
        },
        0,
        "",
    )
}

/// Waits until the joint broker holds `n` tokens for Yunnan's operation `id`.
async fn wait_tokens(joint: &Joint, id: &str, n: u32) {
    let what = format!("{n} joint tokens on Yunnan's operation");
    joint
        .wait_operation("yn-psb", id, &what, |op| op.token_count == n)
        .await;
}

async fn wait_joint_match(c: &ControlClient, who: &str) {
    eventually(WAIT, &format!("a joint match at {who}"), || {
        let mut c = c.clone();
        async move {
            alert_views(&mut c)
                .await
                .iter()
                .any(|a| a.federation == "mekong" && a.kind == pb::AlertKind::Match as i32)
                .then_some(())
        }
    })
    .await;
}

/// China's token service restarted on its address with `keys`: one step of a rotation.
async fn serve_china_share(mut joint: Joint, keys: ShareKeys) -> Joint {
    let addr = joint.share_a.addr;
    joint.share_a.shutdown().await;
    joint.share_a = share_service(&joint.cn, &joint.la, "la", keys, Some(addr)).await;
    joint
}

async fn start(mut c: DaemonConfig) -> (daemon::Daemon, ControlClient) {
    c.daemon.key_poll_seconds = 1;
    let d = daemon::start(c.clone()).await.unwrap();
    let client = control_client(&c).await;
    (d, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_rotates_without_a_released_operation_missing_a_match() {
    let mut joint = Joint::start(&["yn-psb"], &["vte-police", "lpq-police"]).await;
    let root = tempfile::tempdir().unwrap();
    let yn_dir = root.path().join("yn");
    let (yd, mut y) = start(joint.agencyd(&joint.cn, "yn-psb", &yn_dir, Joint::first_pin())).await;
    let released = release(&mut y, "YN-1", vec![phone()]).await;
    wait_tokens(&joint, &released, 1).await;

    // China rotates its share: epoch 2, epoch 1 still served for an hour.
    let old = (
        ShareKey {
            seed: SEED_CN,
            epoch: 1,
        },
        time::OffsetDateTime::now_utc().unix_timestamp() + 3600,
    );
    let new = ShareKey {
        seed: SEED_CN2,
        epoch: 2,
    };
    joint = serve_china_share(
        joint,
        ShareKeys {
            current: new,
            previous: Some(old),
        },
    )
    .await;

    // Yunnan moves: it pins epoch 2 and keeps epoch 1 as previous; its released operation
    // gets the new pair's tokens by itself.
    yd.shutdown().await;
    let moved = (public_hex(&SEED_CN2), 2, Some((public_hex(&SEED_CN), 1)));
    let (yd, y) = start(joint.agencyd(&joint.cn, "yn-psb", &yn_dir, moved)).await;
    wait_tokens(&joint, &released, 2).await;

    // A Lao unit not yet moved (epoch 1 only) releases the same phone: it still matches.
    let (vd, mut v) = start(joint.agencyd(
        &joint.la,
        "vte-police",
        &root.path().join("vte"),
        Joint::first_pin(),
    ))
    .await;
    release(&mut v, "LA-1", vec![phone()]).await;
    wait_joint_match(&v, "the unmoved Lao unit").await;
    wait_joint_match(&y, "Yunnan").await;

    // The overlap ends: China serves epoch 2 alone, Yunnan pins it alone; the old pair's
    // token leaves the joint broker.
    joint = serve_china_share(
        joint,
        ShareKeys {
            current: new,
            previous: None,
        },
    )
    .await;
    yd.shutdown().await;
    let only_new = (public_hex(&SEED_CN2), 2, None);
    let (yd, _y) = start(joint.agencyd(&joint.cn, "yn-psb", &yn_dir, only_new.clone())).await;
    wait_tokens(&joint, &released, 1).await;

    // A Lao unit that moved matches under the new pair.
    let (ld, mut l) =
        start(joint.agencyd(&joint.la, "lpq-police", &root.path().join("lpq"), only_new)).await;
    release(&mut l, "LA-2", vec![phone()]).await;
    wait_joint_match(&l, "the moved Lao unit").await;

    for d in [yd, vd, ld] {
        d.shutdown().await;
    }
    joint.shutdown().await;
}
