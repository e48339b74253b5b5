//! A real headless Chromium over WebDriver ([`Browser`], [`BrowserOptions`]) and
//! [`spki_sha256_base64`] for trusting a test certificate.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::http::{request, try_request};
use super::util::{free_port, wait_for_port};

/// A real headless Chromium (Debian's), driven over WebDriver by chromedriver. Each instance has
/// its own profile, so it is a different browser (device) to the gateway.
pub struct Browser {
    base: String,
    session: String,
    pub downloads: tempfile::TempDir,
    _profile: tempfile::TempDir,
    driver: Child,
}

/// How a [`Browser`] is launched beyond its defaults.
#[derive(Default)]
pub struct BrowserOptions {
    /// Further Chromium command-line switches.
    pub args: Vec<String>,
    /// Record the network events (DevTools' `Network.*`), read with [`Browser::responses`].
    pub network_log: bool,
}

impl BrowserOptions {
    /// A browser that accepts the certificate in `cert` (PEM) for https, as if a CA it trusts
    /// had signed it (Chromium's `--ignore-certificate-errors-spki-list`, which takes the
    /// base64 SHA-256 of the certificate's public key; other certificate errors still count),
    /// recording its network events.
    pub fn trusting(cert: &Path) -> BrowserOptions {
        BrowserOptions {
            args: vec![format!(
                "--ignore-certificate-errors-spki-list={}",
                spki_sha256_base64(cert)
            )],
            network_log: true,
        }
    }
}

/// The base64 SHA-256 of a PEM certificate's SubjectPublicKeyInfo (DER), with the openssl CLI:
/// `openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | sha256 | base64`.
pub fn spki_sha256_base64(cert: &Path) -> String {
    use base64::Engine;
    use std::io::Write;
    let pem = Command::new("openssl")
        .args(["x509", "-pubkey", "-noout", "-in"])
        .arg(cert)
        .output()
        .expect("the openssl CLI must be installed");
    assert!(
        pem.status.success(),
        "openssl x509 -pubkey {}",
        cert.display()
    );
    let mut pkey = Command::new("openssl")
        .args(["pkey", "-pubin", "-outform", "der"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl pkey");
    pkey.stdin
        .take()
        .expect("stdin")
        .write_all(&pem.stdout)
        .expect("openssl pkey reads the key");
    let der = pkey.wait_with_output().expect("openssl pkey");
    assert!(
        der.status.success() && !der.stdout.is_empty(),
        "openssl pkey -pubin"
    );
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&der.stdout))
}

impl Browser {
    pub fn start() -> Browser {
        Browser::start_with(BrowserOptions::default())
    }

    pub fn start_with(options: BrowserOptions) -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver must be installed (apt-get install chromium chromium-driver)");
        wait_for_port(port, "chromedriver");
        let profile = tempfile::tempdir().expect("profile");
        let downloads = tempfile::tempdir().expect("downloads");
        let base = format!("http://127.0.0.1:{port}");
        let mut args: Vec<String> = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable",
        ]
        .map(String::from)
        .into();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.extend(options.args);
        let mut caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": args,
                "prefs": {"download.default_directory": downloads.path().display().to_string(),
                          "download.prompt_for_download": false, "safebrowsing.enabled": false}
            }
        }}});
        if options.network_log {
            caps["capabilities"]["alwaysMatch"]["goog:loggingPrefs"] =
                json!({ "performance": "ALL" });
        }
        let reply = request(
            "POST",
            &format!("{base}/session"),
            &[("content-type", "application/json")],
            Some(caps.to_string().as_bytes()),
        );
        let value = reply.json();
        let session = value["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {}", reply.text()))
            .to_string();
        Browser {
            base,
            session,
            downloads,
            _profile: profile,
            driver,
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{}", self.base, self.session, path);
        let bytes = body.map(|b| b.to_string().into_bytes());
        let r = request(
            method,
            &url,
            &[("content-type", "application/json")],
            bytes.as_deref(),
        );
        let v = r.json();
        assert!(r.status < 300, "WebDriver {method} {path}: {}", r.text());
        v["value"].clone()
    }

    pub fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    pub fn source(&self) -> String {
        self.call("GET", "/source", None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    pub fn url(&self) -> String {
        self.call("GET", "/url", None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// The cookies the browser holds for the current page, as WebDriver describes them (`name`,
    /// `secure`, `httpOnly`, …).
    pub fn cookies(&self) -> Vec<Value> {
        self.call("GET", "/cookie", None)
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The responses received since the last call (DevTools' `Network.responseReceived`: `url`,
    /// `status`, `protocol`, `headers`, …); needs [`BrowserOptions::network_log`].
    pub fn responses(&self) -> Vec<Value> {
        let entries = self.call("POST", "/se/log", Some(json!({ "type": "performance" })));
        entries
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["message"].as_str())
            .filter_map(|m| serde_json::from_str::<Value>(m).ok())
            .filter(|m| m["message"]["method"] == "Network.responseReceived")
            .map(|m| m["message"]["params"]["response"].clone())
            .collect()
    }

    fn element(&self, css: &str) -> String {
        let v = self.call(
            "POST",
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        );
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}"))
            .to_string()
    }

    pub fn click(&self, css: &str) {
        let id = self.element(css);
        self.call("POST", &format!("/element/{id}/click"), Some(json!({})));
    }

    /// Clicks and waits until the browser has left the current page (the clicked element is gone).
    pub fn click_and_load(&self, css: &str) {
        let id = self.element(css);
        self.call("POST", &format!("/element/{id}/click"), Some(json!({})));
        let url = format!("{}/session/{}/element/{id}/name", self.base, self.session);
        let deadline = Instant::now() + Duration::from_secs(20);
        while try_request("GET", &url, &[], None).is_ok_and(|r| r.status < 300) {
            assert!(
                Instant::now() < deadline,
                "the page did not change after clicking {css}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css);
        self.call("POST", &format!("/element/{id}/clear"), Some(json!({})));
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Runs a script in the page (WebDriver's own channel, which the page's CSP does not govern;
    /// the page's own scripts still run under it).
    pub fn execute(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
    }

    /// Chooses a local file in an `<input type="file">`, as a user picking it would.
    pub fn choose_file(&self, css: &str, path: &Path) {
        let id = self.element(css);
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": path.display().to_string() })),
        );
    }

    /// A PNG screenshot of the window (WebDriver `Take Screenshot`).
    pub fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let v = self.call("GET", "/screenshot", None);
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("a base64 screenshot"))
            .expect("base64")
    }

    /// Waits until the page source contains `text`.
    pub fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let source = self.source();
            if source.contains(text) {
                return source;
            }
            assert!(
                Instant::now() < deadline,
                "page never showed {text:?}; it shows: {source}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for a finished download named `name` and returns its bytes.
    pub fn downloaded(&self, name: &str) -> Vec<u8> {
        let path = self.downloads.path().join(name);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(bytes) = std::fs::read(&path) {
                let partial = std::fs::read_dir(self.downloads.path())
                    .map(|d| {
                        d.filter_map(|e| e.ok())
                            .any(|e| e.file_name().to_string_lossy().ends_with(".crdownload"))
                    })
                    .unwrap_or(false);
                // Chromium reserves the final name with an empty file before it creates the
                // `.crdownload` one: an empty file with no partial beside it may be that moment.
                if !partial && (!bytes.is_empty() || Instant::now() >= deadline) {
                    return bytes;
                }
            }
            let present: Vec<String> = std::fs::read_dir(self.downloads.path())
                .map(|d| {
                    d.filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            assert!(
                Instant::now() < deadline + Duration::from_secs(1),
                "download {name} never finished; folder holds {present:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = try_request(
            "DELETE",
            &format!("{}/session/{}", self.base, self.session),
            &[],
            None,
        );
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
