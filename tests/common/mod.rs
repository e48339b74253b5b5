//! Test harness: real processes on free loopback ports.
//!
//! - [`Origin`]: Debian's nginx serving a temporary folder (Range, conditionals, ETags for real),
//!   plus two locations used to observe what the gateway forwards and a WebDAV `PUT` folder
//!   (`/inbox/`) that uploads through links are written to.
//! - [`Gateway`]: the `linkgate` binary under test, started with `serve --config` on its own
//!   embedded store; killed when dropped.
//! - [`Admin`]: a small client for the admin API.
//! - [`LegacyNginx`]: nginx with its own `secure_link` module, for migration tests.
//! - [`RecordingOrigin`]: a raw-TCP HTTP/1.1 origin that records every byte it receives.
#![allow(dead_code)]

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const ADMIN_TOKEN: &str = "test-admin-token";
pub const SECRET_K1: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
pub const SECRET_K2: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} did not open port {port}");
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Deterministic pseudo-random bytes (xorshift), so large files are not trivially compressible.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// nginx serving `root` on a free port.
pub struct Origin {
    pub port: u16,
    pub root: PathBuf,
    dir: tempfile::TempDir,
    child: Child,
}

impl Origin {
    pub fn start() -> Origin {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("www");
        std::fs::create_dir_all(&root).expect("www");
        // nginx workers may run as `nobody`: let them read the tree.
        for p in [dir.path(), root.as_path()] {
            let _ = Command::new("chmod").arg("755").arg(p).status();
        }
        let port = free_port();
        let body = format!(
            r#"    sendfile on;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        add_header Set-Cookie "origin_session=secret; Path=/";
        location = /echo-headers {{
            default_type text/plain;
            return 200 "cookie=[$http_cookie] authorization=[$http_authorization] x-origin-auth=[$http_x_origin_auth] host=[$host] uri=[$request_uri]";
        }}
        location = /teapot {{ return 500 "nginx internals"; }}
        # Uploads through links land here: nginx's DAV module writes a PUT body to a temporary
        # file and renames it into place only when the body is complete.
        location /inbox/ {{
            dav_methods PUT DELETE;
            create_full_put_path on;
            dav_access user:rw group:r all:r;
            client_max_body_size 0;
        }}
    }}"#,
            root = root.display()
        );
        let child = start_nginx(dir.path(), &body, port);
        Origin {
            port,
            root,
            dir,
            child,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Writes a file under the origin's root (folders created), readable by nginx.
    pub fn put(&self, key: &str, bytes: &[u8]) {
        let path = self.root.join(key);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
            let _ = Command::new("chmod")
                .arg("-R")
                .arg("a+rX")
                .arg(&self.root)
                .status();
        }
        std::fs::write(&path, bytes).expect("write");
        let _ = Command::new("chmod").arg("a+r").arg(&path).status();
    }
}

/// Starts Debian's nginx with `http_body` inside `http { }`; returns the child (killed by the caller).
pub fn start_nginx(dir: &Path, http_body: &str, port: u16) -> Child {
    let user = if unsafe_is_root() {
        "user root root;"
    } else {
        ""
    };
    let conf = format!(
        r#"{user}
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
    uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
    default_type application/octet-stream;
{http_body}
}}
"#,
        d = dir.display()
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).expect("nginx.conf");
    let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("nginx");
    let child = Command::new(nginx)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx must be installed (apt-get install nginx-light)");
    wait_for_port(port, "nginx");
    child
}

/// nginx's own `secure_link` module in front of a folder, configured as an operator migrating to
/// linkgate would have it: `/dl/` with `secure_link` + `secure_link_md5` (403 for a bad hash, 410
/// for an expired link) and `/p/` with `secure_link_secret`.
pub struct LegacyNginx {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl LegacyNginx {
    /// `md5` is the `secure_link_md5` expression, `secret` the `secure_link_secret` word.
    pub fn start(root: &Path, md5: &str, secret: &str) -> LegacyNginx {
        let dir = tempfile::tempdir().expect("tempdir");
        let _ = Command::new("chmod").arg("755").arg(dir.path()).status();
        let port = free_port();
        let body = format!(
            r#"    server {{
        listen 127.0.0.1:{port};
        location /dl/ {{
            secure_link $arg_md5,$arg_expires;
            secure_link_md5 "{md5}";
            if ($secure_link = "") {{ return 403; }}
            if ($secure_link = "0") {{ return 410; }}
            alias {root}/;
        }}
        location /p/ {{
            secure_link_secret {secret};
            if ($secure_link = "") {{ return 403; }}
            rewrite ^ /files/$secure_link;
        }}
        location /files/ {{
            internal;
            alias {root}/;
        }}
    }}"#,
            root = root.display()
        );
        let child = start_nginx(dir.path(), &body, port);
        LegacyNginx { port, dir, child }
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://127.0.0.1:{}{path_and_query}", self.port)
    }
}

impl Drop for LegacyNginx {
    fn drop(&mut self) {
        stop_nginx(&mut self.child);
    }
}

/// Stops an nginx master with SIGTERM and waits for it: a killed master leaves its worker
/// serving (and holding its port) after the test has ended.
pub fn stop_nginx(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn unsafe_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false)
}

impl Origin {
    /// Stops nginx with its workers.
    pub fn stop(&mut self) {
        stop_nginx(&mut self.child);
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.stop();
    }
}

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
            .env("RUST_LOG", "info")
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
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
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

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    /// Stops the process (the store file stays) and returns the folder holding it.
    pub fn stop(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"))
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

/// A response read whole.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(60))
        .redirects(0)
        .build()
}

/// Sends a request; any status is a reply (never an error); panics if nothing answers.
pub fn request(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Reply {
    try_request(method, url, headers, body).unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

/// Sends a request; `Err` only when nothing answered.
pub fn try_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Reply, String> {
    let mut req = agent().request(method, url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let result = match body {
        Some(b) => req.send_bytes(b),
        None => req.call(),
    };
    let resp = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(e.to_string()),
    };
    let status = resp.status();
    let headers = resp
        .headers_names()
        .into_iter()
        .flat_map(|n| {
            resp.all(&n)
                .into_iter()
                .map(|v| (n.clone(), v.to_string()))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut body = Vec::new();
    if method != "HEAD" {
        resp.into_reader()
            .take(2 << 30)
            .read_to_end(&mut body)
            .map_err(|e| e.to_string())?;
    }
    Ok(Reply {
        status,
        headers,
        body,
    })
}

pub fn get(url: &str) -> Reply {
    request("GET", url, &[], None)
}

/// Sends raw bytes over TCP and returns everything the server answered until it closed (or 5 s).
pub fn raw(port: u16, bytes: &[u8]) -> String {
    use std::io::Write;
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    s.write_all(bytes).expect("write");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
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

pub fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A real `redis-server` on a free loopback port, with an append-only file so a restart keeps
/// its data. Tests can kill, restart and pause it.
pub struct RedisServer {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    extra: Vec<String>,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> RedisServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut server = RedisServer {
            port: free_port(),
            dir,
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        server.restart();
        server
    }

    /// Starts (again) on the same port and data folder.
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--save",
                "",
                "--appendonly",
                "yes",
            ])
            .args([
                "--appendfsync",
                "always",
                "--enable-debug-command",
                "yes",
                "--protected-mode",
                "no",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        self.child = Some(child);
        wait_for_port(self.port, "redis-server");
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.cli(&["PING"]).trim() != "PONG" {
            assert!(Instant::now() < deadline, "redis did not answer PING");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The `[state]` table body for a gateway on this server (a short store timeout, so fault
    /// tests see 503s quickly).
    pub fn state(&self) -> String {
        self.state_with_timeout(400)
    }

    /// The same with another store timeout (heavy-load tests on a small debug build).
    pub fn state_with_timeout(&self, ms: u64) -> String {
        format!(
            "backend = \"redis\"\nredis_url = \"{}\"\nredis_timeout_ms = {ms}",
            self.url()
        )
    }

    /// Runs `redis-cli` against this server and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A real 3-master Redis Cluster on free loopback ports.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-node-timeout",
                    "2000",
                ])
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            out.status.success(),
            "cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while !nodes
            .iter()
            .all(|n| n.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"))
        {
            assert!(Instant::now() < deadline, "cluster did not become ok");
            std::thread::sleep(Duration::from_millis(100));
        }
        RedisCluster { nodes }
    }

    pub fn url(&self) -> String {
        let addrs: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}", addrs.join(","))
    }

    pub fn state(&self) -> String {
        format!(
            "backend = \"redis\"\nredis_url = \"{}\"\nredis_timeout_ms = 1000",
            self.url()
        )
    }
}

/// A real SMTP listener (Debian's python3-aiosmtpd) that stores what it receives in a Maildir.
pub struct SmtpSink {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let maildir = dir.path().join("maildir");
        // Debian's python3 (not a pyenv one) has the aiosmtpd package.
        let python = if Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3"
        } else {
            "python3"
        };
        let child = Command::new(python)
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3-aiosmtpd must be installed (apt-get install python3-aiosmtpd)");
        wait_for_port(port, "aiosmtpd");
        SmtpSink { port, dir, child }
    }

    /// The `[mail]` table for a gateway delivering here.
    pub fn config(&self) -> String {
        format!("[mail]\ndelivery = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nfrom = \"Shares <shares@example.org>\"\n", self.port)
    }

    /// Every message received so far, as raw text.
    pub fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(self.dir.path().join("maildir").join(sub)) {
                let mut paths: Vec<PathBuf> =
                    entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
                paths.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
                out.extend(paths.iter().filter_map(|p| std::fs::read_to_string(p).ok()));
            }
        }
        out
    }

    /// Waits for the `n`th message (1-based) to arrive and returns the code it carries.
    pub fn code(&self, n: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let messages = self.messages();
            if messages.len() >= n {
                let msg = &messages[n - 1];
                if let Some(code) = msg
                    .lines()
                    .map(str::trim)
                    .find(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit()))
                {
                    return code.to_string();
                }
                panic!("no code in message: {msg}");
            }
            assert!(Instant::now() < deadline, "no mail arrived");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
                if !partial {
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
                Instant::now() < deadline,
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

/// A scripted browser without a browser: keeps cookies, reads forms' CSRF tokens.
#[derive(Default)]
pub struct Jar {
    pub cookies: Vec<(String, String)>,
}

impl Jar {
    pub fn header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn keep(&mut self, reply: &Reply) {
        for set in reply.all("set-cookie") {
            let pair = set.split(';').next().unwrap_or("");
            if let Some((k, v)) = pair.split_once('=') {
                self.cookies.retain(|(n, _)| n != k);
                self.cookies.push((k.to_string(), v.to_string()));
            }
        }
    }

    /// A GET as a browser (HTML Accept).
    pub fn page(&mut self, url: &str) -> Reply {
        let cookie = self.header();
        let r = request(
            "GET",
            url,
            &[("accept", "text/html,*/*"), ("cookie", &cookie)],
            None,
        );
        self.keep(&r);
        r
    }

    /// A form POST as a browser.
    pub fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Reply {
        let body: Vec<String> = form
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
                )
            })
            .collect();
        self.post_raw(url, body.join("&").as_bytes())
    }

    pub fn post_raw(&mut self, url: &str, body: &[u8]) -> Reply {
        let cookie = self.header();
        let r = request(
            "POST",
            url,
            &[
                ("accept", "text/html"),
                ("cookie", &cookie),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            Some(body),
        );
        self.keep(&r);
        r
    }
}

/// The value of the first hidden `csrf` field in a page.
pub fn csrf_of(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = page
        .find(marker)
        .unwrap_or_else(|| panic!("no csrf field in {page}"))
        + marker.len();
    page[start..].split('"').next().unwrap_or("").to_string()
}

/// A raw-TCP HTTP/1.1 origin that records every byte it receives and answers every request it can
/// frame with the same file (`200`, keep-alive). Requests are framed the simple, strict way: head
/// up to the blank line; a `Content-Length` body is skipped; anything else ends the connection.
pub struct RecordingOrigin {
    pub port: u16,
    pub body: Vec<u8>,
    received: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RecordingOrigin {
    pub fn start(body: &[u8]) -> RecordingOrigin {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let received: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (rec, halt, file) = (received.clone(), stop.clone(), body.to_vec());
        let thread = std::thread::spawn(move || {
            while !halt.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let slot = {
                            let mut all = rec.lock().unwrap();
                            all.push(Vec::new());
                            all.len() - 1
                        };
                        let (rec, file, halt) = (rec.clone(), file.clone(), halt.clone());
                        std::thread::spawn(move || serve_recorded(conn, slot, &rec, &file, &halt));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        RecordingOrigin {
            port,
            body: body.to_vec(),
            received,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Every byte received so far, one entry per connection.
    pub fn connections(&self) -> Vec<Vec<u8>> {
        self.received.lock().unwrap().clone()
    }

    /// Forgets what was received so far (e.g. the admin API's size probe).
    pub fn clear(&self) {
        for c in self.received.lock().unwrap().iter_mut() {
            c.clear();
        }
    }

    /// Every request head received so far (bytes up to and including the blank line), plus
    /// whatever bytes followed that were not a request head (`leftover`, per connection).
    pub fn requests(&self) -> (Vec<String>, Vec<Vec<u8>>) {
        let mut heads = Vec::new();
        let mut leftover = Vec::new();
        for conn in self.connections() {
            let mut rest: &[u8] = &conn;
            while let Some(end) = rest.windows(4).position(|w| w == b"\r\n\r\n") {
                heads.push(String::from_utf8_lossy(&rest[..end + 4]).into_owned());
                rest = &rest[end + 4..];
            }
            if !rest.is_empty() {
                leftover.push(rest.to_vec());
            }
        }
        (heads, leftover)
    }
}

fn serve_recorded(
    mut conn: TcpStream,
    slot: usize,
    rec: &std::sync::Mutex<Vec<Vec<u8>>>,
    file: &[u8],
    halt: &std::sync::atomic::AtomicBool,
) {
    use std::io::Write;
    conn.set_read_timeout(Some(Duration::from_millis(100))).ok();
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    while !halt.load(std::sync::atomic::Ordering::Relaxed) {
        match conn.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                rec.lock().unwrap()[slot].extend_from_slice(&buf[..n]);
                pending.extend_from_slice(&buf[..n]);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => return,
        }
        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if head.lines().any(|l| l.starts_with("transfer-encoding:"))
                || pending.len() < end + 4 + length
            {
                return; // framing this origin does not do: the test sees the bytes and fails
            }
            let is_head = head.starts_with("head ");
            pending.drain(..end + 4 + length);
            let mut answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nETag: \"fixed\"\r\n\r\n",
                file.len()
            )
            .into_bytes();
            if !is_head {
                answer.extend_from_slice(file);
            }
            if conn.write_all(&answer).is_err() {
                return;
            }
        }
    }
}

impl Drop for RecordingOrigin {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An origin that answers as a script says, byte for byte, so tests can send what nginx never
/// would: chunked or close-delimited bodies, bodies cut short, conflicting framing, a kept-alive
/// connection closed on its next request.
///
/// `answer(request_head, nth)` gets each request head and its number on its connection (from 0)
/// and returns the bytes to send and whether to close the connection afterwards, or `None` to
/// close without answering. Bytes go out in small writes, so that the gateway sees chunk heads
/// and response heads split across reads.
pub struct ScriptedOrigin {
    pub port: u16,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

pub type Script = dyn Fn(&str, usize) -> Option<(Vec<u8>, bool)> + Send + Sync;

impl ScriptedOrigin {
    pub fn start(
        answer: impl Fn(&str, usize) -> Option<(Vec<u8>, bool)> + Send + Sync + 'static,
    ) -> ScriptedOrigin {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::Arc;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let answer: Arc<Script> = Arc::new(answer);
        let (count, halt) = (connections.clone(), stop.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            while !halt.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((conn, _)) => {
                        count.fetch_add(1, Ordering::SeqCst);
                        let (answer, halt) = (answer.clone(), halt.clone());
                        std::thread::spawn(move || serve_scripted(conn, &*answer, &halt));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        ScriptedOrigin {
            port,
            connections,
            stop,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for ScriptedOrigin {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn serve_scripted(mut conn: TcpStream, answer: &Script, halt: &std::sync::atomic::AtomicBool) {
    use std::io::Write;
    conn.set_read_timeout(Some(Duration::from_millis(100))).ok();
    conn.set_nodelay(true).ok();
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    let mut nth = 0;
    while !halt.load(std::sync::atomic::Ordering::Relaxed) {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end + 4]).into_owned();
            pending.drain(..end + 4);
            let Some((bytes, close)) = answer(&head, nth) else {
                return;
            };
            nth += 1;
            for piece in bytes.chunks(7) {
                if conn.write_all(piece).is_err() {
                    return;
                }
            }
            if close {
                return;
            }
            continue;
        }
        match conn.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => return,
        }
    }
}

/// Downloads `url` into `dir/name` with aria2c (a real download manager) over `connections`
/// parallel ranges of at least 1 MiB, trying each part once; panics if aria2c fails.
pub fn aria2c(url: &str, dir: &Path, name: &str, connections: u32) {
    let n = connections.to_string();
    let out = Command::new("aria2c")
        .args([
            "-x",
            &n,
            "-s",
            &n,
            "-k1M",
            "--max-tries=1",
            "--console-log-level=warn",
            "--summary-interval=0",
            "-d",
        ])
        .arg(dir)
        .args(["-o", name, url])
        .output()
        .expect("aria2c must be installed (apt-get install aria2)");
    assert!(
        out.status.success(),
        "aria2c failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}
