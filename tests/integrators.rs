//! What integrators meet: the admin API's answers to good and bad input, the CLI, config
//! validation, persistence across restarts and signing-key rotation.

mod common;

use std::process::Command;

use common::*;
use serde_json::{json, Value};

#[test]
fn create_answers_the_full_url_and_read_shows_the_link() {
    let origin = Origin::start();
    origin.put("a.txt", b"hello");
    let gw = Gateway::start(&origin);
    let admin = gw.admin();
    let created = admin.create(json!({
        "store": "docs", "object": "a.txt", "filename": "Hello.txt", "max_downloads": 3,
        "expires_at": "2099-01-01T10:00:00+02:00", "rights": ["download", "view"], "created_by": "alice"
    }));
    let id = created["id"].as_str().unwrap();
    let url = created["url"].as_str().unwrap();
    let token = created["token"].as_str().unwrap();
    assert_eq!(url, format!("http://127.0.0.1:{}/s/{token}", gw.port));
    assert!(token.len() < 100);
    assert_eq!(
        created["expires_at"], "2099-01-01T08:00:00Z",
        "expiry is stored in UTC"
    );
    let shown = admin.link(id);
    for field in [
        "state",
        "max_downloads",
        "expires_at",
        "created_by",
        "filename",
        "url",
        "rights",
    ] {
        assert_eq!(shown[field], created[field], "{field}");
    }
    assert_eq!(shown["state"], "active");
    assert_eq!(shown["downloads_used"], 0);
    assert!(shown.get("password").is_none() && shown.get("password_hash").is_none());
    assert_eq!(get(url).status, 200);
    assert_eq!(admin.link(id)["downloads_used"], 1);
}

#[test]
fn unlimited_links_report_their_usage_too() {
    let origin = Origin::start();
    origin.put("a.txt", b"hello");
    let gw = Gateway::start(&origin);
    let (id, url) = gw.admin().share("a.txt", None);
    for _ in 0..3 {
        assert_eq!(get(&url).status, 200);
    }
    // Usage of unlimited links is batched (no store write per request) and flushed every second.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while gw.admin().link(&id)["downloads_used"] != 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "usage never reached 3"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn the_admin_api_requires_the_bearer_token() {
    let origin = Origin::start();
    let gw = Gateway::start(&origin);
    let base = gw.admin().base;
    let body = br#"{"store":"docs","object":"a.txt"}"#;
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("test-admin-token"),
        Some("Basic dGVzdA=="),
    ] {
        let headers: Vec<(&str, &str)> =
            auth.map(|a| vec![("authorization", a)]).unwrap_or_default();
        let reply = request("POST", &format!("{base}/v1/links"), &headers, Some(body));
        assert_eq!(reply.status, 401, "{auth:?}");
        assert!(reply.json()["detail"].is_string());
    }
    assert_eq!(get(&format!("{base}/healthz")).status, 200);
}

fn expect_error(reply: &Reply, status: u16, field: Option<&str>) {
    assert_eq!(reply.status, status, "{}", reply.text());
    let err = &reply.json();
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json"),
        "{}",
        reply.text()
    );
    assert_eq!(err["status"], status, "{}", reply.text());
    assert!(
        err["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("https://linkgate.dev/problems/")),
        "{}",
        reply.text()
    );
    assert!(
        err["detail"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        reply.text()
    );
    if let Some(f) = field {
        assert_eq!(err["field"], f, "{}", reply.text());
    }
}

#[test]
fn bad_input_gets_a_clear_error_naming_the_field() {
    let origin = Origin::start();
    let gw = Gateway::start(&origin);
    let admin = gw.admin();
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let post = |body: &[u8]| {
        request(
            "POST",
            &format!("{}/v1/links", admin.base),
            &[("authorization", &auth)],
            Some(body),
        )
    };
    expect_error(&post(b""), 400, None);
    expect_error(&post(b"{not json"), 400, None);
    expect_error(&post(b"[1,2]"), 400, None);
    expect_error(&post(b"\xff\xfe"), 400, None);
    expect_error(&post(&vec![b' '; 200_000]), 413, None);
    let cases: Vec<(Value, &str)> = vec![
        (json!({"object": "a"}), "store"),
        (json!({"store": "nope", "object": "a"}), "store"),
        (json!({"store": 5, "object": "a"}), "store"),
        (json!({"store": "docs"}), "object"),
        (json!({"store": "docs", "object": ""}), "object"),
        (
            json!({"store": "docs", "object": "a", "expires_at": "tomorrow"}),
            "expires_at",
        ),
        (
            json!({"store": "docs", "object": "a", "expires_at": "2001-01-01T00:00:00Z"}),
            "expires_at",
        ),
        (
            json!({"store": "docs", "object": "a", "max_downloads": 0}),
            "max_downloads",
        ),
        (
            json!({"store": "docs", "object": "a", "max_downloads": -1}),
            "max_downloads",
        ),
        (
            json!({"store": "docs", "object": "a", "max_downloads": "3"}),
            "max_downloads",
        ),
        (
            json!({"store": "docs", "object": "a", "rights": ["fly"]}),
            "rights",
        ),
        (
            json!({"store": "docs", "object": "a", "rights": []}),
            "rights",
        ),
        (
            json!({"store": "docs", "object": "a", "rights": "download"}),
            "rights",
        ),
        (
            json!({"store": "docs", "object": "a", "colour": "red"}),
            "colour",
        ),
        (
            json!({"store": "docs", "object": "a", "password": 5}),
            "password",
        ),
        (
            json!({"store": "docs", "object": "a", "password": ""}),
            "password",
        ),
        (
            json!({"store": "docs", "object": "a", "recipient": "a@example.org"}),
            "recipient",
        ),
        (
            json!({"store": "docs", "object": "a", "recipient": {"email": "not an address"}}),
            "recipient.email",
        ),
        (
            json!({"store": "docs", "object": "a", "recipient": {"email": "a@example.org", "colour": 1}}),
            "recipient.colour",
        ),
        (
            json!({"store": "docs", "object": "a", "recipient": {"require_code": true}}),
            "recipient.require_code",
        ),
        (
            json!({"store": "docs", "object": "a", "created_by": "x\ny"}),
            "created_by",
        ),
    ];
    for (body, field) in cases {
        expect_error(
            &admin.call("POST", "/v1/links", Some(body.clone())),
            422,
            Some(field),
        );
    }
    expect_error(&admin.call("GET", "/v1/links/not-an-id", None), 404, None);
    expect_error(
        &admin.call("GET", "/v1/links/00000000000000000000000000000000", None),
        404,
        None,
    );
    expect_error(
        &admin.call("DELETE", "/v1/links/00000000000000000000000000000000", None),
        404,
        None,
    );
    expect_error(&admin.call("PUT", "/v1/links", None), 405, None);
    expect_error(&admin.call("GET", "/v2/anything", None), 404, None);
    // Nothing half-written: the store still answers and holds no link from the refused requests.
    let ok = admin.create(json!({"store": "docs", "object": "a"}));
    assert_eq!(ok["state"], "active");
}

#[test]
fn links_and_counters_survive_a_restart() {
    let origin = Origin::start();
    origin.put("a.txt", b"hello");
    let db_dir = tempfile::tempdir().unwrap();
    let db = db_dir.path().join("state.db");
    let opts = || GatewayOptions {
        db: Some(db.clone()),
        ..GatewayOptions::for_origin(&origin)
    };
    let gw = Gateway::start_with(opts());
    let (id, url) = gw.admin().share("a.txt", Some(2));
    assert_eq!(get(&url).status, 200);
    drop(gw.stop());
    let gw = Gateway::start_with(opts());
    let url = url.replace(
        &url[..url.find("/s/").unwrap()],
        &format!("http://127.0.0.1:{}", gw.port),
    );
    assert_eq!(gw.admin().link(&id)["downloads_used"], 1);
    assert_eq!(get(&url).status, 200);
    assert_eq!(get(&url).status, 404);
}

#[test]
fn rotating_the_signing_key_keeps_old_links_working() {
    let origin = Origin::start();
    origin.put("a.txt", b"hello");
    let db_dir = tempfile::tempdir().unwrap();
    let db = db_dir.path().join("state.db");
    let gw = Gateway::start_with(GatewayOptions {
        db: Some(db.clone()),
        ..GatewayOptions::for_origin(&origin)
    });
    let (old_id, old_url) = gw.admin().share("a.txt", None);
    drop(gw.stop());
    let gw = Gateway::start_with(GatewayOptions {
        db: Some(db.clone()),
        signing: "k2",
        ..GatewayOptions::for_origin(&origin)
    });
    let rebase = |u: &str| {
        format!(
            "http://127.0.0.1:{}{}",
            gw.port,
            &u[u.find("/s/").unwrap()..]
        )
    };
    let (_, new_url) = gw.admin().share("a.txt", None);
    let key_of =
        |u: &str| linkgate::model::token::Keyring::key_id_of(u.rsplit('/').next().unwrap());
    assert_eq!(key_of(&old_url).as_deref(), Some("k1"));
    assert_eq!(
        key_of(&new_url).as_deref(),
        Some("k2"),
        "new links are signed with the new key"
    );
    assert_eq!(
        get(&rebase(&old_url)).status,
        200,
        "a link signed with k1 still verifies"
    );
    assert_eq!(get(&new_url).status, 200);
    assert_eq!(
        gw.admin().link(&old_id)["url"],
        rebase(&old_url),
        "the link keeps the URL it was sent with"
    );
}

#[test]
fn the_cli_mints_and_cancels_links() {
    let origin = Origin::start();
    origin.put("docs/a.txt", b"from the cli");
    let gw = Gateway::start(&origin);
    let out = Command::new(bin())
        .args(["link", "--json", "--config"])
        .arg(&gw.config_path)
        .args([
            "create",
            "--store",
            "docs",
            "--object",
            "docs/a.txt",
            "--max-downloads",
            "1",
            "--filename",
            "A.txt",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let url = created["url"].as_str().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(url),
        "the URL is printed for the operator"
    );
    assert_eq!(get(url).body, b"from the cli");
    let id = created["id"].as_str().unwrap();
    let show = Command::new(bin())
        .args([
            "link",
            "--admin-url",
            &gw.admin().base,
            "--token",
            ADMIN_TOKEN,
            "show",
            "--json",
            id,
        ])
        .output()
        .unwrap();
    assert!(show.status.success());
    assert_eq!(
        serde_json::from_slice::<Value>(&show.stdout).unwrap()["downloads_used"],
        1
    );
    let cancel = Command::new(bin())
        .args(["link", "--config"])
        .arg(&gw.config_path)
        .args(["cancel", id])
        .output()
        .unwrap();
    assert!(cancel.status.success());
    let bad = Command::new(bin())
        .args(["link", "--config"])
        .arg(&gw.config_path)
        .args(["create", "--store", "nope", "--object", "x"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let msg = String::from_utf8_lossy(&bad.stderr);
    assert!(msg.contains("422") && msg.contains("store"), "{msg}");
    let wrong_token = Command::new(bin())
        .args([
            "link",
            "--admin-url",
            &gw.admin().base,
            "--token",
            "nope-nope",
            "show",
            id,
        ])
        .output()
        .unwrap();
    assert!(!wrong_token.status.success());
    assert!(String::from_utf8_lossy(&wrong_token.stderr).contains("401"));
}

#[test]
fn a_bad_config_fails_at_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string("config/linkgate.toml").unwrap();
    let check = |text: &str| {
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).unwrap();
        Command::new(bin())
            .arg("check-config")
            .arg(&path)
            .output()
            .unwrap()
    };
    let ok = check(&good);
    assert!(
        ok.status.success(),
        "the example config is valid: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let cases = [
        (
            good.replace("listen = \"127.0.0.1:8080\"", "listen = \"nowhere\""),
            "server.listen",
        ),
        (
            good.replace("signing = \"k1\"", "signing = \"k9\""),
            "keys.signing",
        ),
        (
            good.replace("kind = \"http\"", "kind = \"gopher\""),
            "stores.docs.kind",
        ),
        (
            good.replace("backend = \"embedded\"", "backend = \"etcd\""),
            "state.backend",
        ),
        (good.replace("[admin]", "[admin]\ncolour = 1"), "colour"),
        (good.replace("token = \"change-me\"", "token = 5"), "token"),
        ("[server\n".to_string(), "c.toml"),
    ];
    for (text, key) in cases {
        let out = check(&text);
        assert!(!out.status.success(), "{key}");
        let msg = String::from_utf8_lossy(&out.stderr);
        assert!(msg.contains(key), "message should name {key}: {msg}");
    }
    // `serve` refuses the same way, before listening on anything.
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, good.replace("kind = \"http\"", "kind = \"gopher\"")).unwrap();
    let out = Command::new(bin())
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("stores.docs.kind"));
    let missing = Command::new(bin())
        .args(["serve", "--config", "/nonexistent.toml"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent.toml"));
}

/// Runs `linkgate ARGS` against `gw` (`--config` after the first word); stdout and stderr.
fn linkgate(gw: &Gateway, args: &[&str]) -> (String, String) {
    let out = Command::new(bin())
        .arg(args[0])
        .arg("--config")
        .arg(&gw.config_path)
        .args(&args[1..])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{args:?}: {stderr}");
    (stdout, stderr)
}

/// A link's webhook and `notify_sender` from the command line (the secret read from a file and
/// never printed), the review rights, and `linkgate webhooks failed` listing what its webhook
/// gave up on.
#[test]
fn the_cli_sets_a_webhook_and_notify_sender_and_lists_failed_webhooks() {
    const HOOK_SECRET: &str = "cli-webhook-secret-never-printed";
    let origin = Origin::start();
    origin.put("docs/hooked.pdf", b"hooked document");
    // Nothing listens on this port: every delivery fails, and one attempt is all it gets.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_url = format!(
        "http://127.0.0.1:{}/hooks",
        closed.local_addr().unwrap().port()
    );
    drop(closed);
    let mut opts = GatewayOptions::for_origin(&origin);
    opts.extra = "[webhooks]\ntimeout_seconds = 1\nbackoff_base_seconds = 1\nbackoff_max_seconds = 2\nmax_attempts = 1\nallowed_hosts = [\"127.0.0.1\"]\n".into();
    let gw = Gateway::start_with(opts);
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("hook-secret");
    std::fs::write(&secret_file, format!("{HOOK_SECRET}\n")).unwrap();

    let (quiet, _) = linkgate(&gw, &["webhooks", "failed"]);
    assert_eq!(quiet, "no failed webhooks\npending: 0\n");

    let (record, stderr) = linkgate(
        &gw,
        &[
            "link",
            "create",
            "--store",
            "docs",
            "--object",
            "docs/hooked.pdf",
            "--rights",
            "download,review",
            "--webhook-url",
            &hook_url,
            "--webhook-secret-file",
            secret_file.to_str().unwrap(),
            "--webhook-events",
            "download.completed",
            "--notify-sender",
            "alice@example.org",
        ],
    );
    assert!(!record.contains(HOOK_SECRET) && !stderr.contains(HOOK_SECRET));
    assert!(
        record.contains(&format!("webhook     {hook_url} (download.completed)\n")),
        "{record}"
    );
    assert!(
        record.contains("notify      alice@example.org on the first download\n"),
        "{record}"
    );
    let id = record
        .lines()
        .find_map(|l| l.strip_prefix("id"))
        .map(|v| v.trim().to_string())
        .unwrap();
    let (shown, _) = linkgate(&gw, &["link", "--json", "show", &id]);
    assert!(!shown.contains(HOOK_SECRET));
    let link: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(
        link["webhook"],
        json!({"url": hook_url, "events": ["download.completed"]})
    );
    assert_eq!(link["notify_sender"], "alice@example.org");
    assert_eq!(link["rights"], json!(["download", "review"]));

    // A webhook flag without a secret is refused before anything is sent, naming the flag.
    let refused = Command::new(bin())
        .args(["link", "--config"])
        .arg(&gw.config_path)
        .args([
            "create",
            "--store",
            "docs",
            "--object",
            "docs/hooked.pdf",
            "--webhook-url",
            &hook_url,
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--webhook-url"));

    // One download: its `download.completed` webhook fails once and is given up.
    assert_eq!(get(link["url"].as_str().unwrap()).body, b"hooked document");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let failed = loop {
        let answer = gw.admin().call("GET", "/v1/webhooks/failed", None).json();
        if answer["failed"].as_array().is_some_and(|f| !f.is_empty()) {
            break answer;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no webhook was given up: {answer}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let entry_id = failed["failed"][0]["id"].as_str().unwrap().to_string();
    assert!(entry_id.starts_with(&format!("{id}.")), "{failed}");

    let (table, _) = linkgate(&gw, &["webhooks", "failed"]);
    let mut lines = table.lines();
    assert!(
        lines.next().unwrap().starts_with("ID") && table.contains("LAST ERROR"),
        "{table}"
    );
    let row = lines.next().unwrap();
    assert!(
        row.starts_with(&entry_id) && row.contains("download.completed") && row.contains(&id),
        "{table}"
    );
    assert!(table.lines().any(|l| l.starts_with("pending: ")), "{table}");
    let (json_out, _) = linkgate(&gw, &["webhooks", "failed", "--json"]);
    let listed: Value = serde_json::from_str(&json_out).unwrap();
    assert_eq!(listed["enabled"], true);
    assert_eq!(listed["failed"][0]["id"], entry_id.as_str());
    assert_eq!(listed["failed"][0]["attempts"], 1);
}
