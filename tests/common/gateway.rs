//! The `linkgate` binary under test: [`GatewayOptions`], [`Gateway`], its [`Admin`] API client
//! and [`events_when`] for a link's audit events.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::http::{get, request, Reply};
use super::origin::Origin;
use super::redis::RedisServer;
use super::util::{free_port, wait_for_port, ADMIN_TOKEN, SECRET_K1, SECRET_K2};

/// Options for a gateway's config.
pub struct GatewayOptions {
    /// The `[state]` table's body; `None` for an embedded store in the gateway's folder.
    pub state: Option<String>,
    pub store_url: String,
    pub read_timeout_ms: u64,
    pub extra: String,
    pub db: Option<PathBuf>,
    pub signing: &'static str,
    /// `server.grace_period_seconds` (how long a stopping gateway lets downloads finish).
    pub grace_period_seconds: u64,
    /// Further lines for the `[server]` table.
    pub server_extra: String,
    /// `server.public_url`; default `http://127.0.0.1:{port}` (`{port}` is replaced).
    pub public_url: Option<String>,
    /// `RUST_LOG` of the process; default `info`.
    pub rust_log: Option<String>,
}

impl GatewayOptions {
    pub fn for_origin(origin: &Origin) -> GatewayOptions {
        GatewayOptions {
            state: None,
            store_url: origin.url(),
            read_timeout_ms: 5_000,
            extra: String::new(),
            db: None,
            signing: "k1",
            grace_period_seconds: 1,
            server_extra: String::new(),
            public_url: None,
            rust_log: None,
        }
    }

    /// A gateway in front of any origin URL, on its own embedded store.
    pub fn for_url(url: &str) -> GatewayOptions {
        GatewayOptions {
            state: None,
            store_url: url.to_string(),
            read_timeout_ms: 5_000,
            extra: String::new(),
            db: None,
            signing: "k1",
            grace_period_seconds: 1,
            server_extra: String::new(),
            public_url: None,
            rust_log: None,
        }
    }

    /// A gateway on the given Redis `[state]` (see [`RedisServer::state`]).
    pub fn on_redis(origin: &Origin, state: String) -> GatewayOptions {
        GatewayOptions {
            state: Some(state),
            ..GatewayOptions::for_origin(origin)
        }
    }
}

/// The linkgate binary, serving on free ports with its own embedded store.
pub struct Gateway {
    pub port: u16,
    pub admin_port: u16,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    child: Child,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_linkgate")
}

impl Gateway {
    /// Two instances sharing one Redis in front of `origin`, with a 5 s Redis timeout (a busy
    /// machine's slow answer is not an outage).
    pub fn pair_on_redis(origin: &Origin, redis: &RedisServer) -> (Gateway, Gateway) {
        let start = || {
            Gateway::start_with(GatewayOptions::on_redis(
                origin,
                redis.state_with_timeout(5_000),
            ))
        };
        (start(), start())
    }

    pub fn start(origin: &Origin) -> Gateway {
        Gateway::start_with(GatewayOptions::for_origin(origin))
    }

    pub fn start_with(opts: GatewayOptions) -> Gateway {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let admin_port = free_port();
        let db = opts
            .db
            .clone()
            .unwrap_or_else(|| dir.path().join("linkgate.db"));
        let config = format!(
            r#"[server]
listen = "127.0.0.1:{port}"
public_url = "{public_url}"
threads = 2
grace_period_seconds = {grace}
upgrade_sock = "{sock}"
{server_extra}
[admin]
listen = "127.0.0.1:{admin_port}"
token = "{ADMIN_TOKEN}"
[keys]
signing = "{signing}"
[keys.secrets]
k1 = "{SECRET_K1}"
k2 = "{SECRET_K2}"
[state]
{state}
[stores.docs]
kind = "http"
url = "{url}"
read_timeout_ms = {rt}
connect_timeout_ms = 1000
auth_header = {{ name = "X-Origin-Auth", value = "store-credential" }}
{extra}
"#,
            signing = opts.signing,
            public_url = opts
                .public_url
                .as_deref()
                .unwrap_or("http://127.0.0.1:{port}")
                .replace("{port}", &port.to_string()),
            grace = opts.grace_period_seconds,
            sock = dir.path().join("upgrade.sock").display(),
            server_extra = opts.server_extra,
            state = opts
                .state
                .clone()
                .unwrap_or_else(|| format!("backend = \"embedded\"\npath = \"{}\"", db.display())),
            url = opts.store_url,
            rt = opts.read_timeout_ms,
            extra = opts.extra,
        );
        let config_path = dir.path().join("linkgate.toml");
        std::fs::write(&config_path, config).expect("config");
        let log = std::fs::File::create(dir.path().join("gateway.log")).expect("log");
        let child = Command::new(bin())
            .args(["serve", "--config"])
            .arg(&config_path)
            .env("RUST_LOG", opts.rust_log.as_deref().unwrap_or("info"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn linkgate");
        wait_for_port(port, "gateway");
        wait_for_port(admin_port, "gateway admin");
        Gateway {
            port,
            admin_port,
            dir,
            config_path,
            child,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (`QUIT`, `TERM`, …) to the gateway process.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits up to `limit` for the process to exit by itself; `true` when it did.
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        self.wait_exit_status(limit).is_some()
    }

    /// Waits up to `limit` for the process to exit by itself; its exit status when it did.
    pub fn wait_exit_status(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Starts a second process on the same config with `--upgrade`, waits until it listens on
    /// the upgrade socket, and returns it (its log is `gateway-upgraded.log`). The old process
    /// hands its sockets over when it gets `SIGQUIT`.
    pub fn start_upgrade(&self) -> Gateway {
        let sock = self.dir.path().join("upgrade.sock");
        let _ = std::fs::remove_file(&sock);
        let log = std::fs::File::create(self.dir.path().join("gateway-upgraded.log")).expect("log");
        let child = Command::new(bin())
            .args(["serve", "--upgrade", "--config"])
            .arg(&self.config_path)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn linkgate --upgrade");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !sock.exists() {
            assert!(
                Instant::now() < deadline,
                "the new process never listened on {}",
                sock.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let dir = tempfile::tempdir().expect("tempdir");
        Gateway {
            port: self.port,
            admin_port: self.admin_port,
            dir,
            config_path: self.config_path.clone(),
            child,
        }
    }

    pub fn admin(&self) -> Admin {
        Admin {
            base: format!("http://127.0.0.1:{}", self.admin_port),
        }
    }

    /// A share URL (from any instance) as this instance serves it: same token, this port.
    pub fn same_link(&self, url: &str) -> String {
        self.url(&url[url.find("/s/").expect("a share URL")..])
    }

    /// The link's `downloads_used` as this instance's admin API shows it.
    pub fn used(&self, id: &str) -> u64 {
        self.admin().link(id)["downloads_used"]
            .as_u64()
            .expect("downloads_used")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// Resident memory of the gateway process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// One series' value in the gateway's `/metrics`.
    pub fn metric(&self, series: &str) -> f64 {
        let text = get(&format!("{}/metrics", self.admin().base)).text();
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
    }

    /// Polls the series every 50 ms until `ready` holds for its value (metrics are bumped as a
    /// request's access line is written, just after its events); panics after 30 s.
    pub fn wait_for_metric(&self, series: &str, ready: impl Fn(f64) -> bool) -> f64 {
        poll(
            Duration::from_secs(30),
            || self.metric(series),
            |v| ready(*v),
            |v| format!("{series} stayed at {v}"),
        )
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    /// The log once `ready` holds for it (lines are written by a background thread), waiting
    /// up to a minute; `what` names the wait in the failure.
    pub fn wait_for_log(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        poll(
            Duration::from_secs(60),
            || self.log(),
            |log| ready(log),
            |log| format!("{what}: {log}"),
        )
    }

    /// Stops the process (the store file stays) and returns the folder holding it.
    pub fn stop(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"))
    }
}

/// Reads `read()` every 50 ms until `ready` holds for it and returns it; panics with
/// `failure(last read)` after `limit`.
fn poll<T>(
    limit: Duration,
    read: impl Fn() -> T,
    ready: impl Fn(&T) -> bool,
    failure: impl Fn(&T) -> String,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        let value = read();
        if ready(&value) {
            return value;
        }
        assert!(Instant::now() < deadline, "{}", failure(&value));
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.log();
            let tail: String = log
                .lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            eprintln!("--- gateway log (tail) ---\n{tail}");
        }
    }
}

pub struct Admin {
    pub base: String,
}

impl Admin {
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let auth = format!("Bearer {ADMIN_TOKEN}");
        let bytes = body.map(|b| serde_json::to_vec(&b).unwrap());
        request(
            method,
            &format!("{}{}", self.base, path),
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            bytes.as_deref(),
        )
    }

    /// Creates a link and returns its JSON (panics unless 201).
    pub fn create(&self, body: Value) -> Value {
        let reply = self.call("POST", "/v1/links", Some(body));
        assert_eq!(reply.status, 201, "create failed: {}", reply.text());
        reply.json()
    }

    pub fn link(&self, id: &str) -> Value {
        let reply = self.call("GET", &format!("/v1/links/{id}"), None);
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()
    }

    /// A download link to `object` with optional limit.
    pub fn share(&self, object: &str, max: Option<u64>) -> (String, String) {
        let v = self.create(json!({ "store": "docs", "object": object, "max_downloads": max }));
        (
            v["id"].as_str().unwrap().to_string(),
            v["url"].as_str().unwrap().to_string(),
        )
    }
}

/// A link's events (up to 1,000) once `ready` holds for them (the audit writer flushes a moment
/// after the request); panics after 30 s.
pub fn events_when(gw: &Gateway, id: &str, ready: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = gw
            .admin()
            .call("GET", &format!("/v1/links/{id}/events?limit=1000"), None)
            .json();
        let events = v["events"].as_array().cloned().unwrap_or_default();
        if ready(&events) {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "events never became ready: {events:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
