//! A headless Chromium driven over the W3C WebDriver protocol: raw JSON
//! through reqwest, no WebDriver crate. [`Browser::start`] runs
//! `chromedriver` as a child process on a free port and opens a session;
//! dropping the [`Browser`] deletes the session (which quits Chromium),
//! kills `chromedriver` by PID and kills any Chromium process left on the
//! browser's own profile directory. Every call is bounded by a timeout.
//!
//! Chromium and ChromeDriver come from the Debian packages `.ci/deps`
//! installs.

#![allow(dead_code, reason = "each test binary uses a different part")]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Where the Debian packages put the browser and its driver.
pub(crate) const CHROMIUM: &str = "/usr/bin/chromium";
pub(crate) const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A headless Chromium session; see the module docs.
pub(crate) struct Browser {
    driver: Option<Child>,
    port: u16,
    session: Option<String>,
    http: reqwest::Client,
    /// Chromium's profile directory: unique to this browser, so leftover
    /// processes are found by it and nothing else.
    profile: tempfile::TempDir,
    /// ChromeDriver's log, for failure messages.
    log: PathBuf,
}

/// Panics with the way to install them when the browser or driver is
/// missing.
pub(crate) fn require_chromium() {
    for path in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(path).exists(),
            "{path} is missing: the dashboard test drives a real headless Chromium; \
             run `.ci/deps` (installs the chromium and chromium-driver packages)"
        );
    }
}

/// A port that was free a moment ago (bound on 127.0.0.1:0, then released).
pub(crate) fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binds a free port");
    listener.local_addr().expect("local address").port()
}

impl Browser {
    /// Starts ChromeDriver and a headless Chromium whose viewport is
    /// `width`×`height` CSS pixels.
    pub(crate) async fn start(width: u32, height: u32) -> Self {
        require_chromium();
        let port = free_port();
        let profile = tempfile::tempdir().expect("profile dir");
        let log = profile.path().with_extension("chromedriver.log");
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawns chromedriver");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .no_proxy()
            .build()
            .expect("client");
        let mut browser = Self {
            driver: Some(driver),
            port,
            session: None,
            http,
            profile,
            log,
        };
        browser.wait_ready().await;
        browser.open_session().await;
        browser.set_viewport(width, height).await;
        browser
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = async {
                let r = self
                    .http
                    .get(format!("{}/status", self.base()))
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await
                    .ok()?;
                let v: Value = serde_json::from_slice(&r.bytes().await.ok()?).ok()?;
                v["value"]["ready"].as_bool()
            }
            .await;
            if ready == Some(true) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not get ready in 20 s; its log: {}",
                self.driver_log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn open_session(&mut self) {
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--no-default-browser-check".to_owned(),
            // The machine's network is closed: without these Chromium
            // stalls on its own background requests.
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-extensions".to_owned(),
            "--window-size=1400,900".to_owned(),
            format!("--user-data-dir={}", self.profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "timeouts": {"script": 10_000, "pageLoad": 30_000, "implicit": 0},
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let value = self.call("POST", "/session", Some(caps)).await;
        let id = value["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {value}"))
            .to_owned();
        self.session = Some(id);
    }

    /// One WebDriver command; answers its `value`, panics on a WebDriver
    /// error.
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base());
        let request = match method {
            "GET" => self.http.get(&url),
            "DELETE" => self.http.delete(&url),
            _ => self
                .http
                .post(&url)
                .header("content-type", "application/json")
                .body(body.unwrap_or_else(|| json!({})).to_string()),
        };
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("webdriver {method} {path}: {e}"));
        let status = response.status();
        let bytes = response.bytes().await.expect("webdriver body");
        let v: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "webdriver {method} {path}: {status} {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        if let Some(error) = v["value"]["error"].as_str() {
            panic!(
                "webdriver {method} {path}: {error}: {}\nchromedriver log: {}",
                v["value"]["message"],
                self.driver_log()
            );
        }
        v["value"].clone()
    }

    fn session_path(&self, rest: &str) -> String {
        let id = self.session.as_deref().expect("open session");
        format!("/session/{id}{rest}")
    }

    /// Resizes the window so that the page's viewport is exactly
    /// `width`×`height` (the window frame differs between versions).
    pub(crate) async fn set_viewport(&self, width: u32, height: u32) {
        let rect = self.session_path("/window/rect");
        self.call(
            "POST",
            &rect,
            Some(json!({"width": width, "height": height})),
        )
        .await;
        let inner = self
            .script("return [window.innerWidth, window.innerHeight];")
            .await;
        let dw = i64::from(width) - inner[0].as_i64().unwrap_or(i64::from(width));
        let dh = i64::from(height) - inner[1].as_i64().unwrap_or(i64::from(height));
        if dw != 0 || dh != 0 {
            self.call(
                "POST",
                &rect,
                Some(json!({"width": i64::from(width) + dw, "height": i64::from(height) + dh})),
            )
            .await;
        }
    }

    /// Navigates to `url` (waits for the page load).
    pub(crate) async fn goto(&self, url: &str) {
        self.call(
            "POST",
            &self.session_path("/url"),
            Some(json!({"url": url})),
        )
        .await;
    }

    /// Runs `script` (a function body; `return` gives the answer) in the
    /// page.
    pub(crate) async fn script(&self, script: &str) -> Value {
        self.call(
            "POST",
            &self.session_path("/execute/sync"),
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// A PNG of the viewport.
    pub(crate) async fn screenshot(&self) -> Vec<u8> {
        let v = self
            .call("GET", &self.session_path("/screenshot"), None)
            .await;
        let b64 = v.as_str().expect("base64 screenshot");
        base64_decode(b64)
    }

    /// Deletes the session (Chromium quits) and stops ChromeDriver.
    pub(crate) async fn close(mut self) {
        if let Some(id) = self.session.take() {
            let _ = self
                .http
                .delete(format!("{}/session/{id}", self.base()))
                .timeout(Duration::from_secs(15))
                .send()
                .await;
        }
        // Drop does the rest.
    }

    fn driver_log(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// Kills Chromium processes started on this browser's profile
    /// directory (by PID, found through /proc).
    fn kill_leftover_chromium(&self) {
        let marker = format!("--user-data-dir={}", self.profile.path().display());
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return;
        };
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let mine = cmdline
                .split(|b| *b == 0)
                .any(|arg| arg == marker.as_bytes());
            if mine {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(id) = self.session.take() {
            // No runtime to lean on in a destructor: a plain blocking
            // HTTP/1.1 request, bounded.
            delete_session_blocking(self.port, &id);
        }
        if let Some(mut driver) = self.driver.take() {
            let _ = driver.kill();
            let _ = driver.wait();
        }
        self.kill_leftover_chromium();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn delete_session_blocking(port: u16, id: &str) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(15)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let request = format!(
        "DELETE /session/{id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_ok() {
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink);
    }
}

/// Standard base64 (with padding), as WebDriver sends screenshots.
fn base64_decode(text: &str) -> Vec<u8> {
    fn value(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0u32;
    for c in text.bytes() {
        let Some(v) = value(c) else { continue };
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).expect("one byte"));
        }
    }
    out
}

#[test]
fn base64_round_trips_known_values() {
    assert_eq!(base64_decode("aGVsbG8="), b"hello");
    assert_eq!(base64_decode("iVBORw0KGgo="), b"\x89PNG\r\n\x1a\n");
}
