//! The whole scenario in a real browser (headless Chromium over WebDriver): two
//! bureaus at their duty desks and two watch officers at the watch centre's console. A form
//! with a bad phone number shows the error beside the field and registers nothing; both desks
//! register the same phone through their forms; the alert appears on both desks and the
//! conflict on the console without a reload; one officer claims it and the other console sees
//! the claim; the desks write and read, disclose (with the review step) and see each other's
//! cards; one resolves and the other desk shows it. Prints how long the alert took to reach
//! the page; saves screenshots to `target/screenshots/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use deconfliction_tests::chrome::{
    Chrome, click, fill, screenshot, select, sign_in, wait_for_text,
};
use deconfliction_tests::console::{OFFICERS, federation, start_console};
use deconfliction_tests::desk::{officer_of, start_desk};

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test]
async fn two_desks_and_the_console_work_one_conflict_through() {
    let Some(mut chrome) = Chrome::start() else {
        return;
    };
    let fed = federation().await;
    let root = tempfile::tempdir().unwrap();
    let console = start_console(&fed, &root.path().join("console")).await;
    let (gd_daemon, gd_base) = start_desk(&fed, "gd-psb", &root.path().join("gd")).await;
    let (gx_daemon, gx_base) = start_desk(&fed, "gx-psb", &root.path().join("gx")).await;
    let console_base = format!("http://{}", console.addr);

    // Guangdong's desk in Chinese; a wrong password first.
    let gd = chrome.session(true).await;
    gd.goto(&format!("{gd_base}/lang/zh-CN?next=/login"))
        .await
        .unwrap();
    let (gd_name, gd_password) = officer_of("gd-psb");
    sign_in(&gd, &gd_base, gd_name, "not the password").await;
    wait_for_text(&gd, ".notice.error", "用户名或密码错误", WAIT).await;
    sign_in(&gd, &gd_base, gd_name, gd_password).await;
    wait_for_text(&gd, "#alerts", "没有新提醒", WAIT).await;

    // A bad phone number: the error beside the field, nothing registered.
    gd.goto(&format!("{gd_base}/operations/new")).await.unwrap();
    fill(&gd, "#case_reference", "粤公刑 2026-114").await;
    fill(&gd, "#value_0", "12").await;
    click(&gd, "#register-button").await;
    wait_for_text(&gd, "#error_0", "", WAIT).await;
    screenshot(&gd, "desk-register-error-zh").await;
    gd.goto(&format!("{gd_base}/operations")).await.unwrap();
    wait_for_text(&gd, "main", "没有符合条件的行动", WAIT).await;

    // The right number this time; then back to the alerts page, which updates by itself.
    gd.goto(&format!("{gd_base}/operations/new")).await.unwrap();
    fill(&gd, "#case_reference", "粤公刑 2026-114").await;
    fill(&gd, "#value_0", "138 0013 8000").await;
    fill(&gd, "#label_0", "主要嫌疑人手机").await;
    select(&gd, "#kind_1", "geo").await;
    fill(&gd, "#value_1", "25.0406, 102.7129").await;
    fill(&gd, "#label_1", "昆明仓库").await;
    click(&gd, "#register-button").await;
    wait_for_text(&gd, "#sync-state", "协调服务器已确认", WAIT).await;
    gd.goto(&gd_base).await.unwrap();
    wait_for_text(&gd, "#alerts", "没有新提醒", WAIT).await;

    // The watch centre watches its queue.
    let li = chrome.session(true).await;
    sign_in(&li, &console_base, "liwei", OFFICERS[0].2).await;
    wait_for_text(&li, "#queue", "No unresolved conflicts", WAIT).await;

    // Guangxi's desk, in English, registers the same phone.
    let gx = chrome.session(true).await;
    let (gx_name, gx_password) = officer_of("gx-psb");
    sign_in(&gx, &gx_base, gx_name, gx_password).await;
    gx.goto(&format!("{gx_base}/operations/new")).await.unwrap();
    fill(&gx, "#case_reference", "GX-77").await;
    fill(&gx, "#value_0", "+86 138 0013 8000").await;
    select(&gx, "#kind_1", "geo").await;
    fill(&gx, "#value_1", "25.0406, 102.7129").await;
    let started = Instant::now();
    click(&gx, "#register-button").await;
    let on_gd = wait_for_text(&gd, "#new-alerts", "粤公刑 2026-114", WAIT).await;
    let after = started.elapsed();
    println!(
        "the alert was on the other desk {} ms after the registering click (polled every 20 ms; {} ms after polling began)",
        after.as_millis(),
        on_gd.as_millis()
    );
    wait_for_text(&gd, "#new-alerts", "主要嫌疑人手机", WAIT).await;
    assert_eq!(gd.current_url().await.unwrap().path(), "/", "no reload");
    screenshot(&gd, "desk-alerts-zh").await;
    wait_for_text(&li, "#queue-table", "广西壮族自治区公安厅", WAIT).await;

    // Li Wei claims it; Wang Fang's console shows the claim by itself.
    let wang = chrome.session(true).await;
    sign_in(&wang, &console_base, "wangfang", OFFICERS[1].2).await;
    click(&wang, "#queue-table a").await;
    wait_for_text(&wang, "#claim", "Nobody in the watch centre", WAIT).await;
    click(&li, "#queue-table a").await;
    click(&li, "#claim-button").await;
    wait_for_text(&wang, "#claim", "Owned by 李伟 (liwei)", WAIT).await;

    // Guangxi writes; Guangdong reads it on the match page without a reload and answers.
    gx.goto(&gx_base).await.unwrap();
    wait_for_text(&gx, "#new-alerts", "GX-77", WAIT).await;
    click(&gx, "#new-alerts a.button").await;
    fill(&gx, "#text", "We plan a search on the 9th. Yours?").await;
    click(&gx, "#message-form button").await;
    click(&gd, "#new-alerts a.button").await;
    wait_for_text(&gd, "#conversation", "We plan a search on the 9th", WAIT).await;
    // Our place in the match, over Yunnan's outline, with the cells its tokens come from.
    wait_for_text(&gd, "#map", "", WAIT).await;
    let cells = gd
        .find_all(fantoccini::Locator::Css("#map path.cell"))
        .await
        .unwrap();
    assert_eq!(cells.len(), 7, "the default disk is seven cells");
    gd.execute("document.getElementById('map').scrollIntoView()", vec![])
        .await
        .unwrap();
    screenshot(&gd, "desk-match-map-zh").await;
    fill(&gd, "#text", "我方10日行动，请与我联系").await;
    click(&gd, "#message-form button").await;
    wait_for_text(&gx, "#conversation", "我方10日行动", WAIT).await;

    // Both disclose, each after reviewing what the other side will see.
    for (desk, officer, phone) in [
        (&gd, "张三", "+86 20 8000 0000"),
        (&gx, "Li Si", "+86 771 000 0000"),
    ] {
        click(desk, "#disclose-link").await;
        fill(desk, "#officer", officer).await;
        fill(desk, "#phone", phone).await;
        click(desk, "#review-disclose").await;
        wait_for_text(desk, "#disclose-review", phone, WAIT).await;
        if officer == "张三" {
            screenshot(desk, "desk-disclose-review-zh").await;
        }
        click(desk, "#confirm-disclose").await;
    }
    wait_for_text(&gd, "#match", "+86 771 000 0000", WAIT).await;
    wait_for_text(&gx, "#match", "+86 20 8000 0000", WAIT).await;
    screenshot(&gx, "desk-match-en").await;

    // Guangxi resolves; Guangdong's page shows it.
    click(&gx, "#resolve-button").await;
    wait_for_text(&gx, "#match-state", "Resolved", WAIT).await;
    wait_for_text(&gd, "#match-state", "已解决", WAIT).await;

    // A batch file from the desk: the progress bar moves to the end by itself.
    let batch = root.path().join("行动批量.csv");
    let mut text = String::from("operation,case_reference,days,kind,text,region\n");
    for i in 0..40 {
        text.push_str(&format!(
            "{i},粤公刑 2026-2{i:02},5,phone,139 0000 {i:04},CN\n"
        ));
    }
    std::fs::write(&batch, text).unwrap();
    gd.goto(&format!("{gd_base}/import")).await.unwrap();
    fill(&gd, "#file", batch.to_str().unwrap()).await;
    click(&gd, "#import-button").await;
    wait_for_text(&gd, "#import-finished", "40", WAIT).await;
    screenshot(&gd, "desk-import-zh").await;

    // With JavaScript off the desk still reads: the alerts, whole as served.
    let reader = chrome.session(false).await;
    sign_in(&reader, &gd_base, gd_name, gd_password).await;
    wait_for_text(&reader, "#alerts", "粤公刑 2026-114", WAIT).await;

    for b in [gd, gx, li, wang, reader] {
        b.close().await.unwrap();
    }
    console.shutdown().await;
    gd_daemon.shutdown().await;
    gx_daemon.shutdown().await;
}
