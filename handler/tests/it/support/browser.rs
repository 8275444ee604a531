//! Headless Chromium driven through WebDriver (chromedriver, with the `fantoccini` client), for the portal's
//! tests. Installed by `scripts/chromium.sh` when missing; where that cannot be done the tests say so and are
//! skipped, unless `CI` is set, when they fail.

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A chromedriver process and a browser session on it, on a fresh profile; all three end when dropped.
pub struct Browser {
    pub client: Client,
    driver: Child,
    profile: std::path::PathBuf,
}

impl Browser {
    /// Starts Chromium, or `None` (said on stderr) when it cannot be installed and `CI` is not set.
    pub async fn start(name: &str) -> Option<Browser> {
        let root = env!("CARGO_MANIFEST_DIR").trim_end_matches("/handler");
        let installed = Command::new("bash").arg(format!("{root}/scripts/chromium.sh")).status();
        if !installed.is_ok_and(|status| status.success()) {
            assert!(std::env::var_os("CI").is_none(), "Chromium is needed in CI (scripts/chromium.sh failed)");
            eprintln!("SKIPPED: Chromium and chromedriver cannot be installed here (scripts/chromium.sh)");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = super::temp_dir(&format!("chromium-{name}"));
        // Without the background-networking flags Chromium calls Google's hosts, which this sandbox refuses.
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,900",
            "--lang=en-US",
            &format!("--user-data-dir={}", profile.display()),
        ];
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
        });
        let Value::Object(capabilities) = capabilities else { unreachable!() };
        let start = Instant::now();
        let client = loop {
            let mut builder = ClientBuilder::new(HttpConnector::new());
            match builder.capabilities(capabilities.clone()).connect(&format!("http://127.0.0.1:{port}")).await {
                Ok(client) => break client,
                Err(_) if start.elapsed() < Duration::from_secs(30) => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Err(error) => panic!("no WebDriver session with Chromium: {error}"),
            }
        };
        Some(Browser { client, driver, profile })
    }

    /// The first element matching `css` whose text contains `text`, waiting up to `seconds`.
    pub async fn wait_text(&self, css: &str, text: &str, seconds: u64) -> fantoccini::elements::Element {
        self.wait_for(css, text, seconds, |shown| shown.contains(text)).await
    }

    async fn wait_for(
        &self,
        css: &str,
        text: &str,
        seconds: u64,
        matches: impl Fn(&str) -> bool,
    ) -> fantoccini::elements::Element {
        let start = Instant::now();
        loop {
            for element in self.client.find_all(Locator::Css(css)).await.unwrap_or_default() {
                if element.text().await.is_ok_and(|t| matches(&t)) {
                    return element;
                }
            }
            if start.elapsed() > Duration::from_secs(seconds) {
                let page = self.client.find(Locator::Css("body")).await.unwrap().text().await.unwrap_or_default();
                panic!("no {css} with {text:?} after {seconds} s; the page says:\n{page}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The element matching `css`, once it is there (up to 15 s).
    pub async fn element(&self, css: &str) -> fantoccini::elements::Element {
        let wait = self.client.wait().at_most(Duration::from_secs(15));
        wait.for_element(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no {css}: {e}"))
    }

    /// Clicks the button or link whose text is `label` (all of it), once it is there.
    pub async fn click(&self, label: &str) {
        self.click_on("button, a", label, |shown| shown.trim() == label).await;
    }

    /// Clicks the first `css` element whose text contains `text`. The page redraws lists as they change, so an
    /// element found may be gone when clicked: found again, up to 15 s.
    pub async fn click_text(&self, css: &str, text: &str) {
        self.click_on(css, text, |shown| shown.contains(text)).await;
    }

    async fn click_on(&self, css: &str, text: &str, matches: impl Fn(&str) -> bool) {
        let start = Instant::now();
        loop {
            let element = self.wait_for(css, text, 15, &matches).await;
            match element.click().await {
                Ok(()) => return,
                Err(error) if start.elapsed() > Duration::from_secs(15) => panic!("clicking {text:?}: {error}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Types `text` into the control labelled `label` (its text, as a person reads it), replacing what it held.
    pub async fn fill(&self, label: &str, text: &str) {
        let label = self.wait_text("label", label, 15).await;
        let id = label.attr("for").await.unwrap().expect("the label names its control");
        let control = self.client.find(Locator::Id(&id)).await.unwrap();
        control.clear().await.unwrap();
        control.send_keys(text).await.unwrap();
    }

    /// Runs `script` (its `return` is the answer).
    pub async fn run(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// Fails with every WCAG 2.1 A/AA rule the page breaks (contrast, labels, names, landmarks...), as axe-core,
    /// the engine of browser accessibility checkers, finds them (`__integrations__/axe`, npm).
    pub async fn assert_accessible(&self, screen: &str) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../__integrations__/axe");
        testkit::npm::install(&dir).unwrap();
        let axe = std::fs::read_to_string(dir.join("node_modules/axe-core/axe.min.js")).unwrap();
        // Scripts run by the driver are not the page's, so its content security policy does not refuse them.
        self.run(&format!("{axe}\nwindow.axe = axe; return true;")).await;
        let script = "const done = arguments[arguments.length - 1];
            const tags = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
            axe.run(document, { runOnly: { type: 'tag', values: tags } }).then(
              (r) => done(r.violations.map((v) => `${v.id}: ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)),
              (e) => done([`axe failed: ${e}`]));";
        let found = self.client.execute_async(script, vec![]).await.unwrap_or_else(|e| panic!("axe: {e}"));
        let violations: Vec<String> = serde_json::from_value(found).unwrap();
        assert!(violations.is_empty(), "the {screen} screen breaks accessibility rules:\n{}", violations.join("\n"));
    }

    /// Saves a PNG of the page as `name`.png under the test's output folder (and, with
    /// `UPDATE_PORTAL_SCREENSHOTS` set, under docs/portal/ for the README).
    pub async fn screenshot(&self, name: &str) {
        // The whole page (up to 2,000 pixels high): the window grows to it for the picture.
        let (width, height) = self.client.get_window_size().await.unwrap();
        let page = self
            .run("window.scrollTo(0, 0); return document.documentElement.scrollHeight")
            .await
            .as_u64()
            .unwrap_or(height);
        self.client.set_window_size(width as u32, page.clamp(height, 2000) as u32).await.unwrap();
        let png = self.client.screenshot().await.unwrap();
        self.client.set_window_size(width as u32, height as u32).await.unwrap();
        let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("portal");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join(format!("{name}.png")), &png).unwrap();
        if std::env::var_os("UPDATE_PORTAL_SCREENSHOTS").is_some() {
            let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/portal");
            std::fs::create_dir_all(&docs).unwrap();
            std::fs::write(docs.join(format!("{name}.png")), &png).unwrap();
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // Chromium outlives its driver when the session was not closed (a failed test): found by its profile.
        let _ = Command::new("pkill").arg("-f").arg(self.profile.as_os_str()).status();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
