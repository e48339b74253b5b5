//! An operator's day with the real binary: stopping (SIGTERM exits as soon as nothing runs, and
//! waits for running downloads; SIGINT cuts them but writes the queues), a port already taken by
//! another process, Redis down at start and coming back (said once each, not every attempt).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// The path part of a link URL on `gw`.
fn path_of(gw: &Gateway, url: &str) -> String {
    url.trim_start_matches(&format!("http://127.0.0.1:{}", gw.port))
        .to_string()
}

/// Polls `cond` every 50 ms until it holds; panics with `what` after `limit`.
fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigterm_on_an_idle_gateway_exits_without_waiting_its_grace_period() {
    let origin = Origin::start();
    origin.put("idle.txt", b"idle");
    let mut gw = Gateway::start_with(GatewayOptions {
        grace_period_seconds: 300,
        ..GatewayOptions::for_origin(&origin)
    });
    let (_, url) = gw.admin().share("idle.txt", None);
    assert_eq!(get(&url).body, b"idle");
    // Connections without a request (a browser's spare one) do not hold the stop.
    let _idle = std::net::TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    wait_until(Duration::from_secs(30), "the request never ended", || {
        gw.metric("linkgate_requests_in_flight") == 0.0
    });
    gw.signal("TERM");
    let status = gw
        .wait_exit_status(Duration::from_secs(120))
        .expect("an idle gateway exits long before its 300 s grace period");
    assert!(status.success(), "{status}");
    assert!(
        gw.log().contains("stopped: no request is running; exiting"),
        "{}",
        gw.log()
    );
}

#[test]
fn sigterm_lets_a_running_download_finish_then_exits() {
    let origin = Origin::start();
    let body = pseudo_random(12 * 1024 * 1024, 20);
    origin.put("slow.bin", &body);
    let mut gw = Gateway::start_with(GatewayOptions {
        grace_period_seconds: 300,
        ..GatewayOptions::for_origin(&origin)
    });
    let (id, url) = gw.admin().share("slow.bin", Some(3));
    let (port, path) = (gw.port, path_of(&gw, &url));
    // About 4 s at 3 MiB/s.
    let download = std::thread::spawn(move || slow_download(port, &path, 3 * 1024 * 1024));
    wait_until(
        Duration::from_secs(30),
        "the download never started",
        || gw.metric("linkgate_active_streams") == 1.0,
    );
    gw.signal("TERM");
    let (status, digest) = download
        .join()
        .unwrap()
        .expect("the running download is not cut by SIGTERM");
    assert!(status.contains("200"), "{status}");
    assert_eq!(digest, sha256(&body), "the whole file arrived");
    let exit = gw
        .wait_exit_status(Duration::from_secs(120))
        .expect("the gateway exits once its last download ended, not after 300 s");
    assert!(exit.success(), "{exit}");
    // Its access line was written before the exit.
    let log = gw.log();
    assert!(
        log.lines()
            .any(|l| l.contains(&format!("link={id}")) && l.contains("served")),
        "{log}"
    );
}

/// A real second process (python3) listening on a free port until dropped.
struct PortHolder {
    child: Child,
    port: u16,
}

impl PortHolder {
    fn start() -> PortHolder {
        let mut child = Command::new("python3")
            .args([
                "-c",
                "import socket, time\n\
                 s = socket.socket()\n\
                 s.bind(('127.0.0.1', 0))\n\
                 s.listen()\n\
                 print(s.getsockname()[1], flush=True)\n\
                 time.sleep(600)\n",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the holder's port");
        PortHolder { child, port }
    }
}

impl Drop for PortHolder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `linkgate serve` on a config whose recipients' and admin listeners are `listen` and
/// `admin`; returns its exit status and stderr (panics if it is still running after 60 s).
fn serve_once(listen: u16, admin: u16) -> (std::process::ExitStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("linkgate.toml");
    std::fs::write(
        &config,
        format!(
            r#"[server]
listen = "127.0.0.1:{listen}"
public_url = "http://127.0.0.1:{listen}"
threads = 1
[admin]
listen = "127.0.0.1:{admin}"
token = "{ADMIN_TOKEN}"
[keys]
signing = "k1"
[keys.secrets]
k1 = "{SECRET_K1}"
[state]
backend = "embedded"
path = "{db}"
[stores.docs]
kind = "http"
url = "http://127.0.0.1:9"
"#,
            db = dir.path().join("linkgate.db").display()
        ),
    )
    .unwrap();
    let err = dir.path().join("stderr.log");
    let mut child = Command::new(bin())
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "still running with its port taken:\n{}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status, std::fs::read_to_string(&err).unwrap_or_default())
}

#[test]
fn a_port_held_by_another_process_is_named_and_the_gateway_exits() {
    for key in ["server.listen", "admin.listen"] {
        let holder = PortHolder::start();
        let free = free_port();
        let (listen, admin) = if key == "server.listen" {
            (holder.port, free)
        } else {
            (free, holder.port)
        };
        let (status, stderr) = serve_once(listen, admin);
        assert_eq!(status.code(), Some(1), "{key}: {stderr}");
        assert!(
            stderr.contains(&format!("{key} = \"127.0.0.1:{}\"", holder.port))
                && stderr.contains("already in use"),
            "{key}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{key}: {stderr}");
        assert!(!stderr.contains("linkgate serving"), "{key}: {stderr}");
    }
}

/// Lines of the gateway's log that contain `text`.
fn count(gw: &Gateway, text: &str) -> usize {
    gw.log().lines().filter(|l| l.contains(text)).count()
}

#[test]
fn redis_down_at_start_is_said_once_and_its_return_once() {
    const ATTEMPT: &str = "redis: following link changes failed";
    let origin = Origin::start();
    let mut redis = RedisServer::start();
    redis.kill();
    let gw = Gateway::start_with(GatewayOptions {
        rust_log: Some("info,linkgate::state::redis=debug".into()),
        ..GatewayOptions::on_redis(&origin, redis.state())
    });
    // Twenty failed attempts (about 5 s): before, each was a WARN line.
    wait_until(
        Duration::from_secs(120),
        "the follower never retried 20 times",
        || count(&gw, ATTEMPT) >= 20,
    );
    let warns: Vec<String> = gw
        .log()
        .lines()
        .filter(|l| l.contains(" WARN "))
        .map(str::to_string)
        .collect();
    assert_eq!(warns.len(), 1, "{warns:#?}");
    assert!(warns[0].contains("redis unreachable"), "{warns:#?}");

    redis.restart();
    wait_until(
        Duration::from_secs(60),
        "the return of redis was never said",
        || count(&gw, "redis reachable again") == 1,
    );
    assert_eq!(
        get(&format!("{}/readyz", gw.admin().base)).status,
        200,
        "ready again"
    );

    // A second outage is news again, said once however many attempts fail.
    redis.kill();
    let before = count(&gw, ATTEMPT);
    wait_until(
        Duration::from_secs(120),
        "the follower never retried 20 more times",
        || count(&gw, ATTEMPT) >= before + 20,
    );
    assert_eq!(count(&gw, "redis unreachable"), 2, "{}", gw.log());
    assert_eq!(count(&gw, "redis reachable again"), 1);
}

#[test]
fn the_demo_serves_text_as_text_gives_a_browser_a_page_and_logs_no_exits() {
    let dir = tempfile::tempdir().unwrap();
    let (listen, admin, origin) = (free_port(), free_port(), free_port());
    std::fs::write(
        dir.path().join("demo.toml"),
        format!(
            r#"[server]
listen = "127.0.0.1:{listen}"
public_url = "http://127.0.0.1:{listen}"
threads = 1
grace_period_seconds = 300
[admin]
listen = "127.0.0.1:{admin}"
token = "{ADMIN_TOKEN}"
[keys]
signing = "k1"
[keys.secrets]
k1 = "{SECRET_K1}"
[state]
backend = "embedded"
path = "data/linkgate.db"
[stores.docs]
kind = "http"
url = "http://127.0.0.1:{origin}/"
"#
        ),
    )
    .unwrap();
    let err = dir.path().join("demo.log");
    let mut child = Command::new(bin())
        .args(["demo", "--config", "demo.toml"])
        .current_dir(dir.path())
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let url = loop {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "no link printed");
        if let Some(url) = line.trim().strip_prefix("http://") {
            break format!("http://{url}");
        }
    };
    wait_for_port(listen, "demo gateway");

    // curl gets the file, as text.
    let file = get(&url);
    assert_eq!(file.status, 200);
    assert_eq!(file.body, b"Hello from behind linkgate.\n");
    assert_eq!(
        file.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    // A browser gets the landing page with its download button.
    let page = request(
        "GET",
        &url,
        &[
            ("accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
            ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0"),
        ],
        None,
    );
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/html")));
    assert!(page.text().contains("id=\"download\""), "{}", page.text());

    let log = std::fs::read_to_string(&err).unwrap();
    assert!(
        !log.contains("exited"),
        "no service ends while running:\n{log}"
    );
    // The demo stops like `serve`: at once when nothing runs.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the demo did not stop before its 300 s grace period");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
}

#[test]
fn json_access_lines_name_link_path_agent_and_caller_and_no_line_has_a_secret_or_a_source_path() {
    let origin = Origin::start();
    origin.put("logs/report.txt", b"report");
    let gw = Gateway::start_with(GatewayOptions {
        extra: "[log]\nformat = \"json\"\n[admin.callers.dms]\ntoken = \"dms-caller-token\"\ncreated_by = [\"alice\", \"bob\"]\n".into(),
        ..GatewayOptions::for_origin(&origin)
    });
    let created = gw.admin().create(serde_json::json!({
        "store": "docs", "object": "logs/report.txt", "max_downloads": 3, "created_by": "carol"
    }));
    let (id, url, token) = (
        created["id"].as_str().unwrap().to_string(),
        created["url"].as_str().unwrap().to_string(),
        created["token"].as_str().unwrap().to_string(),
    );
    let by_dms = request(
        "POST",
        &format!("{}/v1/links", gw.admin().base),
        &[
            ("authorization", "Bearer dms-caller-token"),
            ("content-type", "application/json"),
        ],
        Some(br#"{"store":"docs","object":"logs/report.txt","created_by":"alice"}"#),
    );
    assert_eq!(by_dms.status, 201, "{}", by_dms.text());

    let browser = "Mozilla/5.0 (X11; Linux x86_64) OperatorsDay/1";
    let page = request(
        "GET",
        &url,
        &[("accept", "text/html"), ("user-agent", browser)],
        None,
    );
    assert_eq!(page.status, 200);
    assert!(page.text().contains("id=\"download\""), "the landing page");
    let file = request(
        "GET",
        &format!("{url}?download"),
        &[("user-agent", "curl/8.5.0")],
        None,
    );
    assert_eq!(file.body, b"report");
    assert_eq!(get(&gw.url("/s/forged-token-value")).status, 404);

    let lines = |target: &str| -> Vec<serde_json::Value> {
        gw.log()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON line"))
            .filter(|v| v["target"] == target)
            .collect()
    };
    wait_until(
        Duration::from_secs(30),
        "access lines never written",
        || lines("linkgate::access").len() >= 3 && lines("linkgate::admin_access").len() >= 2,
    );
    let access = lines("linkgate::access");
    for line in &access {
        let f = &line["fields"];
        assert!(
            f["path"].as_str().is_some_and(|p| p.starts_with("/s/…")),
            "{line}"
        );
        assert_eq!(f["client"], "127.0.0.1", "{line}");
    }
    let page_line = access
        .iter()
        .map(|l| &l["fields"])
        .find(|f| f["outcome"] == "page")
        .unwrap_or_else(|| panic!("no page line: {access:#?}"));
    assert_eq!(page_line["link"], id.as_str(), "{page_line}");
    assert_eq!(page_line["user_agent"], browser);
    let served = access
        .iter()
        .map(|l| &l["fields"])
        .find(|f| f["outcome"] == "served")
        .unwrap_or_else(|| panic!("no served line: {access:#?}"));
    assert_eq!(served["path"], "/s/…?download");
    assert_eq!(served["user_agent"], "curl/8.5.0");

    let admin = lines("linkgate::admin_access");
    let by = |caller: &str| {
        admin
            .iter()
            .map(|l| &l["fields"])
            .find(|f| f["caller"] == caller)
            .unwrap_or_else(|| panic!("no line of {caller}: {admin:#?}"))
            .clone()
    };
    let operator = by("admin");
    assert_eq!(
        (
            operator["method"].as_str(),
            operator["path"].as_str(),
            operator["status"].as_u64()
        ),
        (Some("POST"), Some("/v1/links"), Some(201))
    );
    assert_eq!(
        (operator["id"].as_str(), operator["created_by"].as_str()),
        (Some(id.as_str()), Some("carol")),
        "the operator's line names the link it made and for whom"
    );
    let dms = by("dms");
    assert_eq!(dms["creators"], "alice,bob");
    assert_eq!(dms["created_by"], "alice");
    assert_eq!(dms["id"].as_str(), by_dms.json()["id"].as_str());

    let log = gw.log();
    for secret in [
        token.as_str(),
        "dms-caller-token",
        ADMIN_TOKEN,
        "forged-token-value",
    ] {
        assert!(!log.contains(secret), "a secret in the log: {secret}");
    }
    let pingora = lines("pingora");
    assert!(!pingora.is_empty(), "Pingora's own lines are there");
    assert!(
        !log.contains("log.file") && !log.contains(".cargo/registry") && !log.contains(".rs\""),
        "no source paths:\n{log}"
    );
}

/// Appends `more` to the gateway's config file and sends SIGHUP; waits for the `n`th reload
/// line (applied or refused) and returns the log.
fn reload_with(gw: &Gateway, more: &str, n: usize) -> String {
    let mut config = std::fs::read_to_string(&gw.config_path).unwrap();
    config.push_str(more);
    std::fs::write(&gw.config_path, config).unwrap();
    gw.signal("HUP");
    let said = |log: &str| {
        log.lines()
            .filter(|l| {
                l.contains("configuration reloaded") || l.contains("configuration not reloaded")
            })
            .count()
    };
    wait_until(Duration::from_secs(60), "no reload line", || {
        said(&gw.log()) >= n
    });
    gw.log()
}

fn sighup_adds_a_store_and_keeps_a_running_download(state: Option<String>) {
    let origin = Origin::start();
    let body = pseudo_random(12 * 1024 * 1024, 22);
    origin.put("slow.bin", &body);
    let files = tempfile::tempdir().unwrap();
    std::fs::write(files.path().join("new.txt"), b"from the new store").unwrap();
    let mut gw = Gateway::start_with(GatewayOptions {
        state,
        ..GatewayOptions::for_origin(&origin)
    });
    let admin = gw.admin();
    let new_link = serde_json::json!({ "store": "added", "object": "new.txt" });
    assert_eq!(
        admin
            .call("POST", "/v1/links", Some(new_link.clone()))
            .status,
        422,
        "no store `added` yet"
    );
    let (_, url) = admin.share("slow.bin", Some(2));
    let (port, path) = (gw.port, path_of(&gw, &url));
    let download = std::thread::spawn(move || slow_download(port, &path, 3 * 1024 * 1024));
    wait_until(
        Duration::from_secs(30),
        "the download never started",
        || gw.metric("linkgate_active_streams") == 1.0,
    );

    let log = reload_with(
        &gw,
        &format!(
            "\n[stores.added]\nkind = \"dir\"\nroot = \"{}\"\n",
            files.path().display()
        ),
        1,
    );
    assert!(log.contains("configuration reloaded"), "{log}");
    let created = admin.create(new_link);
    assert_eq!(
        get(created["url"].as_str().unwrap()).body,
        b"from the new store",
        "the new store serves"
    );
    let (status, digest) = download
        .join()
        .unwrap()
        .expect("the running download survives the reload");
    assert!(status.contains("200"), "{status}");
    assert_eq!(digest, sha256(&body));
    assert!(gw.running(), "SIGHUP does not end the process");
}

#[test]
fn sighup_on_the_embedded_store_adds_a_store_without_cutting_a_download() {
    sighup_adds_a_store_and_keeps_a_running_download(None);
}

#[test]
fn sighup_on_redis_adds_a_store_without_cutting_a_download() {
    let redis = RedisServer::start();
    sighup_adds_a_store_and_keeps_a_running_download(Some(redis.state()));
}

#[test]
fn a_bad_or_restart_only_config_keeps_the_one_in_force() {
    let origin = Origin::start();
    origin.put("kept.txt", b"kept");
    let mut gw = Gateway::start(&origin);
    let (_, url) = gw.admin().share("kept.txt", None);
    let original = std::fs::read_to_string(&gw.config_path).unwrap();

    // Not TOML the config accepts: named, and nothing changes.
    let log = reload_with(&gw, "\n[stores.broken]\nkind = \"ftp\"\n", 1);
    let refused: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("configuration not reloaded"))
        .collect();
    assert_eq!(refused.len(), 1, "{log}");
    assert!(refused[0].contains("stores.broken"), "{}", refused[0]);
    assert_eq!(get(&url).body, b"kept");
    assert_eq!(get(&format!("{}/healthz", gw.admin().base)).status, 200);

    // A listener cannot move without a restart: refused by name, nothing applied (not even the
    // new admin token written with it).
    let admin_port = gw.admin_port;
    let moved = original
        .replace(
            &format!("listen = \"127.0.0.1:{admin_port}\""),
            &format!("listen = \"127.0.0.1:{}\"", free_port()),
        )
        .replace(ADMIN_TOKEN, "a-new-admin-token");
    std::fs::write(&gw.config_path, &moved).unwrap();
    let log = reload_with(&gw, "", 2);
    let refused: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("configuration not reloaded"))
        .collect();
    assert_eq!(refused.len(), 2, "{log}");
    assert!(
        refused[1].contains("admin.listen changed: that needs a restart"),
        "{}",
        refused[1]
    );
    assert_eq!(
        gw.admin().call("GET", "/v1/links", None).status,
        200,
        "the old admin token still works"
    );
    assert_eq!(get(&url).body, b"kept");
    assert!(gw.running());
}

#[test]
fn linkgate_reload_checks_the_file_then_signals_the_gateway_of_the_pid_file() {
    let origin = Origin::start();
    let mut gw = Gateway::start_with(GatewayOptions {
        server_extra: "pid_file = \"linkgate.pid\"\n".into(),
        ..GatewayOptions::for_origin(&origin)
    });
    let pid_file = gw.dir.path().join("linkgate.pid");
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap().trim(),
        gw.pid().to_string()
    );
    let reload = |gw: &Gateway| {
        Command::new(bin())
            .args(["reload", "--config"])
            .arg(&gw.config_path)
            .output()
            .unwrap()
    };

    // A file that does not load is refused by the command itself, naming the key.
    let good = std::fs::read_to_string(&gw.config_path).unwrap();
    std::fs::write(
        &gw.config_path,
        format!("{good}\n[stores.bad]\nkind = \"ftp\"\n"),
    )
    .unwrap();
    let out = reload(&gw);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stores.bad"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let files = tempfile::tempdir().unwrap();
    std::fs::write(files.path().join("a.txt"), b"a").unwrap();
    std::fs::write(
        &gw.config_path,
        format!(
            "{good}\n[stores.second]\nkind = \"dir\"\nroot = \"{}\"\n",
            files.path().display()
        ),
    )
    .unwrap();
    let out = reload(&gw);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("process {}", gw.pid())));
    wait_until(Duration::from_secs(60), "never reloaded", || {
        gw.log().contains("configuration reloaded")
    });
    let link = gw
        .admin()
        .create(serde_json::json!({ "store": "second", "object": "a.txt" }));
    assert_eq!(get(link["url"].as_str().unwrap()).body, b"a");

    gw.signal("TERM");
    assert!(gw.wait_exit(Duration::from_secs(120)));
    assert!(!pid_file.exists(), "the pid file goes with the process");
}

#[test]
fn sighup_rotates_keys_for_new_requests() {
    let origin = Origin::start();
    origin.put("k.txt", b"key");
    let gw = Gateway::start(&origin);
    let (_, old_url) = gw.admin().share("k.txt", None);
    assert_eq!(get(&old_url).status, 200);
    // Sign with k2 from now on, and retire k1 (a date in the past: at once).
    let config = std::fs::read_to_string(&gw.config_path)
        .unwrap()
        .replace("signing = \"k1\"", "signing = \"k2\"");
    std::fs::write(&gw.config_path, config).unwrap();
    let log = reload_with(&gw, "\n[keys.retire]\nk1 = \"2020-01-01T00:00:00Z\"\n", 1);
    assert!(log.contains("signing_key=k2"), "{log}");
    assert_eq!(get(&old_url).status, 404, "k1's links end with the reload");
    let (_, new_url) = gw.admin().share("k.txt", None);
    assert_eq!(get(&new_url).body, b"key", "links signed with k2 work");
}

/// The repository's root (deployment files are read from there).
fn repo(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn the_systemd_unit_is_hardened_and_verifies() {
    let unit = std::fs::read_to_string(repo("deploy/systemd/linkgate.service")).unwrap();
    let set: Vec<&str> = unit
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && l.contains('='))
        .collect();
    for wanted in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=",
        "StateDirectory=linkgate",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "KillSignal=SIGTERM",
        "RestartPreventExitStatus=1",
    ] {
        assert!(set.contains(&wanted), "{wanted} is not set");
    }
    assert!(
        !set.iter().any(|l| l.starts_with("AmbientCapabilities=")),
        "no capability for the default ports 8080/9090"
    );
    // Longer than the default grace period (30 s): running downloads finish before SIGKILL.
    let stop: u64 = set
        .iter()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .and_then(|v| v.parse().ok())
        .expect("TimeoutStopSec");
    assert!(stop > 30, "TimeoutStopSec={stop}");

    let Ok(version) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("SKIPPED systemd-analyze verify: systemd-analyze is not installed here");
        return;
    };
    assert!(version.status.success());
    // Verified as installed, with ExecStart naming the binary under test (verify checks that
    // it exists and is executable).
    let dir = tempfile::tempdir().unwrap();
    let installed = dir.path().join("linkgate.service");
    std::fs::write(&installed, unit.replace("/usr/local/bin/linkgate", bin())).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&installed)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        !said.contains("linkgate.service"),
        "systemd-analyze has something to say about the unit:\n{said}"
    );
}

/// Every document of a YAML file, as JSON (python3-yaml reads it).
fn yaml_documents(path: &std::path::Path) -> Vec<serde_json::Value> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml\n\
             print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))",
        ])
        .arg(path)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{} does not parse (python3-yaml needed: bash .ci/deps): {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_kubernetes_manifests_probe_the_configured_ports_and_their_config_checks() {
    let docs = yaml_documents(&repo("deploy/kubernetes/linkgate.yaml"));
    let of_kind = |kind: &str| -> Vec<&serde_json::Value> {
        docs.iter().filter(|d| d["kind"] == kind).collect()
    };
    for d in &docs {
        assert!(
            d["apiVersion"].is_string() && d["metadata"]["name"].is_string(),
            "{d}"
        );
    }
    // The config, from its Secret: it passes check-config (the documents' volume replaced by a
    // folder that exists here).
    let secret = of_kind("Secret");
    let toml_text = secret[0]["stringData"]["linkgate.toml"]
        .as_str()
        .expect("linkgate.toml in the Secret");
    let config: toml::Value = toml::from_str(toml_text).unwrap();
    let files = tempfile::tempdir().unwrap();
    let checked = files.path().join("linkgate.toml");
    std::fs::write(
        &checked,
        toml_text.replace("/srv/documents", &files.path().display().to_string()),
    )
    .unwrap();
    let out = Command::new(bin())
        .arg("check-config")
        .arg(&checked)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port_of = |key: &str| -> u64 {
        let listen = config[key]["listen"].as_str().unwrap();
        listen.rsplit(':').next().unwrap().parse().unwrap()
    };
    let (http, admin) = (port_of("server"), port_of("admin"));

    let deployment = of_kind("Deployment")[0];
    assert_eq!(deployment["apiVersion"], "apps/v1");
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    let selected = |selector: &serde_json::Value| {
        selector
            .as_object()
            .unwrap()
            .iter()
            .all(|(k, v)| &labels[k] == v)
    };
    assert!(selected(&deployment["spec"]["selector"]["matchLabels"]));
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let port_named = |name: &str| -> u64 {
        container["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["containerPort"].as_u64())
            .unwrap_or_else(|| panic!("no container port {name}"))
    };
    let probe = |which: &str| -> (String, u64) {
        let get = &container[which]["httpGet"];
        let port = match &get["port"] {
            serde_json::Value::String(name) => port_named(name),
            n => n.as_u64().unwrap(),
        };
        (get["path"].as_str().unwrap().to_string(), port)
    };
    assert_eq!(probe("readinessProbe"), ("/readyz".to_string(), admin));
    assert_eq!(probe("livenessProbe"), ("/healthz".to_string(), admin));
    assert_eq!(port_named("http"), http);
    // The config file the container reads is the Secret's.
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    assert_eq!(args, ["serve", "--config", "/etc/linkgate/linkgate.toml"]);
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == "/etc/linkgate")
        .expect("the config mount");
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    assert_eq!(
        volume["secret"]["secretName"],
        secret[0]["metadata"]["name"]
    );
    // Running downloads get their grace period before the kill.
    let grace = config["server"]["grace_period_seconds"]
        .as_integer()
        .unwrap() as u64;
    assert!(pod["terminationGracePeriodSeconds"].as_u64().unwrap() > grace);
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);

    // Services select the pods and reach the named ports; Redis is an external name that the
    // config uses.
    let services = of_kind("Service");
    let redis = services
        .iter()
        .find(|s| s["spec"]["type"] == "ExternalName")
        .expect("Redis as an ExternalName Service");
    assert_eq!(config["state"]["backend"].as_str(), Some("redis"));
    assert!(config["state"]["redis_url"]
        .as_str()
        .unwrap()
        .starts_with(&format!(
            "redis://{}:",
            redis["metadata"]["name"].as_str().unwrap()
        )));
    for s in services
        .iter()
        .filter(|s| s["spec"]["type"] != "ExternalName")
    {
        assert!(selected(&s["spec"]["selector"]), "{s}");
        for p in s["spec"]["ports"].as_array().unwrap() {
            port_named(p["targetPort"].as_str().unwrap());
        }
    }
    let pdb = of_kind("PodDisruptionBudget");
    assert_eq!(pdb[0]["apiVersion"], "policy/v1");
    assert!(selected(&pdb[0]["spec"]["selector"]["matchLabels"]));
    assert!(
        pdb[0]["spec"]["minAvailable"].as_u64().unwrap()
            < deployment["spec"]["replicas"].as_u64().unwrap(),
        "a node can still be drained"
    );
}

#[test]
fn every_metric_of_the_grafana_dashboard_is_served_by_a_gateway() {
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo("deploy/grafana/linkgate.json")).unwrap(),
    )
    .expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            exprs.push(target["expr"].as_str().unwrap().to_string());
        }
    }
    exprs.push(
        dashboard["templating"]["list"][1]["definition"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    let origin = Origin::start();
    let gw = Gateway::start(&origin);
    let metrics = get(&format!("{}/metrics", gw.admin().base)).text();
    let served = |name: &str| {
        metrics.lines().any(|l| {
            !l.starts_with('#')
                && (l.starts_with(&format!("{name} ")) || l.starts_with(&format!("{name}{{")))
        })
    };
    let mut names = Vec::new();
    for expr in &exprs {
        let mut rest = expr.as_str();
        while let Some(at) = rest.find("linkgate_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            names.push(name);
        }
        // Outcomes a panel names exist as labels.
        if let Some(at) = expr.find("outcome!~\"") {
            let list = &expr[at + 10..];
            for outcome in list[..list.find('"').unwrap()].split('|') {
                assert!(
                    metrics.contains(&format!("outcome=\"{outcome}\"")),
                    "no outcome {outcome}"
                );
            }
        }
    }
    assert!(names.len() >= 8, "{names:?}");
    for name in &names {
        assert!(served(name), "{name} is not in /metrics:\n{metrics}");
    }
    for wanted in [
        "linkgate_requests_total",
        "linkgate_bytes_sent_total",
        "linkgate_active_streams",
        "linkgate_upstream_response_seconds_bucket",
        "linkgate_store_errors_total",
    ] {
        assert!(
            names.iter().any(|n| n == wanted),
            "the dashboard shows {wanted}"
        );
    }
}

/// Ctrl-C (SIGINT) stops at once, but first writes what is queued: the last quarter second's
/// audit events, and the downloads a held block did not hand out go back to the link. (Pingora's
/// own SIGINT exited without either: a restart found up to two blocks' downloads used up for
/// nobody and the last events missing.)
#[test]
fn sigint_stops_at_once_but_loses_no_event_and_no_download() {
    let origin = Origin::start();
    origin.put("doc.txt", b"counted");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let opts = || GatewayOptions {
        db: Some(db.clone()),
        grace_period_seconds: 300,
        ..GatewayOptions::for_origin(&origin)
    };
    let mut gw = Gateway::start_with(opts());
    let (id, url) = gw.admin().share("doc.txt", Some(100_000));
    for _ in 0..40 {
        assert_eq!(get(&url).body, b"counted");
    }
    // At once after the last download: its block is held and its events are still queued.
    gw.signal("INT");
    let status = gw
        .wait_exit_status(Duration::from_secs(120))
        .expect("SIGINT ends the gateway without its 300 s grace period");
    assert!(status.success(), "{status}");
    let gw = Gateway::start_with(opts());
    assert_eq!(gw.used(&id), 40, "a held block's downloads came back");
    let events = events_when(&gw, &id, |_| true);
    let kinds = |kind: &str| events.iter().filter(|e| e["kind"] == kind).count();
    assert_eq!(kinds("download.completed"), 40, "{events:?}");
    assert_eq!(kinds("download.started"), 40, "{events:?}");
}
