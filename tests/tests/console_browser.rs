//! The watch centre's console in a real browser (headless Chromium over WebDriver): two
//! officers at two consoles, a conflict appearing on the queue without a reload, a claim made
//! on one console showing on the other, the Chinese and English pages, and reading with
//! JavaScript off. Saves screenshots of the main pages to `target/screenshots/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use deconfliction_tests::chrome::{Chrome, click, screenshot, sign_in, wait_for_text};
use deconfliction_tests::console::{OFFICERS, federation, start_console};
use deconfliction_tests::{SelectorKind, register_shared};
use fantoccini::Locator;

#[tokio::test]
async fn two_officers_watch_a_conflict_appear_and_one_claims_it() {
    let Some(mut chrome) = Chrome::start() else {
        return;
    };
    let fed = federation().await;
    let root = tempfile::tempdir().unwrap();
    let console = start_console(&fed, root.path()).await;
    let base = format!("http://{}", console.addr);

    // Li Wei (English) watches the empty queue.
    let li = chrome.session(true).await;
    sign_in(&li, &base, "liwei", OFFICERS[0].2).await;
    wait_for_text(
        &li,
        "#queue",
        "No unresolved conflicts",
        Duration::from_secs(10),
    )
    .await;

    // Two bureaus register the same phone: the conflict appears without a reload.
    let (mut gd, mut gx) = (fed.client("gd-psb").await, fed.client("gx-psb").await);
    let started = Instant::now();
    register_shared(&mut gd, &mut gx, SelectorKind::Phone).await;
    wait_for_text(&li, "#queue-table", "广东省公安厅", Duration::from_secs(10)).await;
    println!(
        "a new conflict showed in the browser {} ms after the second registration was sent",
        started.elapsed().as_millis()
    );
    let url_before = li.current_url().await.unwrap();
    assert_eq!(
        url_before.path(),
        "/",
        "the page was updated in place, not reloaded"
    );
    screenshot(&li, "console-queue-en").await;

    // Wang Fang (Chinese) opens the conflict on her own console.
    let wang = chrome.session(true).await;
    wang.goto(&format!("{base}/lang/zh-CN?next=/login"))
        .await
        .unwrap();
    sign_in(&wang, &base, "wangfang", OFFICERS[1].2).await;
    wait_for_text(&wang, "#queue-table", "电话", Duration::from_secs(10)).await;
    click(&wang, "#queue-table a").await;
    wait_for_text(&wang, "#claim", "尚无人负责", Duration::from_secs(10)).await;

    // Li Wei claims it on his console; Wang Fang's page shows the claim by itself.
    click(&li, "#queue-table a").await;
    click(&li, "#claim-button").await;
    wait_for_text(
        &li,
        "#claim",
        "Owned by 李伟 (liwei)",
        Duration::from_secs(10),
    )
    .await;
    let shown = wait_for_text(
        &wang,
        "#claim",
        "由 李伟 (liwei) 负责",
        Duration::from_secs(10),
    )
    .await;
    println!(
        "the claim reached the second console in {} ms",
        shown.as_millis()
    );
    screenshot(&wang, "console-conflict-zh").await;

    // A note from Wang Fang, then the other pages for the pictures.
    wang.find(Locator::Id("note"))
        .await
        .unwrap()
        .send_keys("已通知两地指挥中心，等待回复")
        .await
        .unwrap();
    click(&wang, "#note-form button").await;
    wait_for_text(
        &wang,
        "#notes",
        "已通知两地指挥中心",
        Duration::from_secs(10),
    )
    .await;
    wait_for_text(&li, "#notes", "王芳 (wangfang)", Duration::from_secs(10)).await;
    wang.goto(&format!("{base}/agencies")).await.unwrap();
    wait_for_text(
        &wang,
        "#agency-board",
        "广西壮族自治区公安厅",
        Duration::from_secs(10),
    )
    .await;
    screenshot(&wang, "console-agencies-zh").await;
    li.goto(&format!("{base}/stats")).await.unwrap();
    wait_for_text(
        &li,
        "main",
        "New conflicts per day",
        Duration::from_secs(10),
    )
    .await;
    screenshot(&li, "console-stats-en").await;

    // With JavaScript off the pages still read (sign-in is a plain form).
    let reader = chrome.session(false).await;
    sign_in(&reader, &base, "liwei", OFFICERS[0].2).await;
    wait_for_text(
        &reader,
        "#queue-table",
        "李伟 (liwei)",
        Duration::from_secs(10),
    )
    .await;
    wait_for_text(&reader, "noscript", "", Duration::from_secs(1)).await;

    for b in [li, wang, reader] {
        b.close().await.unwrap();
    }
    console.shutdown().await;
}
