//! Headless Chromium driven through WebDriver (Debian's `chromium` and `chromium-driver`,
//! which `.ci/run` installs), for the consoles' browser tests. Each [`Chrome::session`] is a
//! browser of its own (its own profile, so its own cookies).
//!
//! Without Chromium a test skips with a printed reason, except in CI (`CI=true`), where it
//! fails: the browser tests must run there.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

const CHROMIUM: &str = "/usr/bin/chromium";
const DRIVER: &str = "/usr/bin/chromedriver";

/// A running chromedriver.
pub struct Chrome {
    driver: Child,
    url: String,
    profiles: tempfile::TempDir,
    sessions: u32,
}

impl Drop for Chrome {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Chrome {
    /// Starts chromedriver, or says why the test is skipped (None); in CI a missing browser
    /// fails the test.
    pub fn start() -> Option<Chrome> {
        for path in [CHROMIUM, DRIVER] {
            if !Path::new(path).exists() {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "{path} is missing in CI: .ci/run installs chromium and chromium-driver"
                );
                println!(
                    "SKIPPED: {path} is missing (apt-get install chromium chromium-driver); \
                     CI runs this test"
                );
                return None;
            }
        }
        let port = crate::free_port();
        let driver = Command::new(DRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Chrome {
            driver,
            url: format!("http://127.0.0.1:{port}"),
            profiles: tempfile::tempdir().unwrap(),
            sessions: 0,
        })
    }

    /// A new browser; `javascript: false` reads pages as a browser with scripts off does.
    pub async fn session(&mut self, javascript: bool) -> Client {
        self.sessions += 1;
        let profile = self.profiles.path().join(format!("p{}", self.sessions));
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            // This machine's network is closed: no background calls to Google's hosts.
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--window-size=1366,900".to_owned(),
            "--lang=en-US".to_owned(),
            format!("--user-data-dir={}", profile.display()),
        ];
        if !javascript {
            args.push("--blink-settings=scriptEnabled=false".to_owned());
        }
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "binary": CHROMIUM, "args": args }),
        );
        ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .unwrap()
    }
}

/// Where the browser tests save their screenshots: `target/screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe.ancestors().nth(3).unwrap().to_path_buf();
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Saves a PNG of what `browser` shows as `target/screenshots/<name>.png`.
pub async fn screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.unwrap();
    std::fs::write(screenshot_dir().join(format!("{name}.png")), png).unwrap();
}

/// Fills the sign-in form, submits it and waits for the answer: the page behind the form
/// (signed in) or the form again with its error.
pub async fn sign_in(browser: &Client, base: &str, name: &str, password: &str) {
    browser.goto(&format!("{base}/login")).await.unwrap();
    browser
        .find(Locator::Id("name"))
        .await
        .unwrap()
        .send_keys(name)
        .await
        .unwrap();
    browser
        .find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(password)
        .await
        .unwrap();
    browser
        .find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        let signed_in = browser
            .find(Locator::Css("form[action='/logout']"))
            .await
            .is_ok();
        let refused = browser.find(Locator::Css(".notice.error")).await.is_ok();
        if signed_in || refused {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the sign-in form never answered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (polling every 20 ms) until `css` matches an element whose text holds `text`.
pub async fn wait_for_text(browser: &Client, css: &str, text: &str, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if let Ok(el) = browser.find(Locator::Css(css)).await
            && el.text().await.is_ok_and(|t| t.contains(text))
        {
            return started.elapsed();
        }
        if started.elapsed() > within {
            let source = browser.source().await.unwrap_or_default();
            panic!("no {css} holding {text:?} within {within:?}; the page:\n{source}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Clicks the element `css` matches, finding it again if a live update replaced it between
/// finding and clicking (a stale element).
pub async fn click(browser: &Client, css: &str) {
    let started = Instant::now();
    loop {
        if let Ok(el) = browser.find(Locator::Css(css)).await
            && el.click().await.is_ok()
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "nothing to click at {css}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Types `text` into the field `css` matches (after clearing it; a file input takes a path).
pub async fn fill(browser: &Client, css: &str, text: &str) {
    let el = browser.find(Locator::Css(css)).await.unwrap();
    if el.attr("type").await.unwrap().as_deref() != Some("file") {
        el.clear().await.unwrap();
    }
    el.send_keys(text).await.unwrap();
}

/// Chooses the option `value` of the select `css` matches.
pub async fn select(browser: &Client, css: &str, value: &str) {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap()
        .select_by_value(value)
        .await
        .unwrap();
}
