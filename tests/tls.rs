//! TLS and HTTP/2 on the recipients' listener (issue 16), with real clients: curl over HTTP/2
//! and HTTP/1.1, h2load, openssl s_client, headless Chromium, and a raw TLS/HTTP/2 client
//! (`tests/common/h2raw.py`) for what those cannot do (stay idle, stall a body, hand-shake late);
//! nginx as an https origin. Certificates are made at test time with the openssl CLI, signed by
//! a test CA that the clients are given.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// A throw-away CA and the certificates it signs (EC P-256, for 127.0.0.1 and localhost).
struct Pki {
    dir: tempfile::TempDir,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the openssl CLI must be installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().expect("tempdir");
        openssl(
            dir.path(),
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=linkgate test CA",
            ],
        );
        std::fs::write(
            dir.path().join("san.cnf"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        .expect("san.cnf");
        Pki { dir }
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Issues `{name}.pem` and `{name}.key` with common name `cn`.
    fn issue(&self, name: &str, cn: &str) -> (PathBuf, PathBuf) {
        let (cert, key, csr) = (
            format!("{name}.pem"),
            format!("{name}.key"),
            format!("{name}.csr"),
        );
        let subject = format!("/CN={cn}");
        openssl(
            self.dir.path(),
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                &subject,
            ],
        );
        openssl(
            self.dir.path(),
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &cert,
                "-days",
                "2",
                "-extfile",
                "san.cnf",
            ],
        );
        (self.dir.path().join(cert), self.dir.path().join(key))
    }
}

/// A gateway with `[server.tls]` on `cert`/`key` (checked every second), in front of `store_url`.
fn tls_gateway(store_url: &str, cert: &Path, key: &Path, tls_extra: &str, extra: &str) -> Gateway {
    tls_gateway_with(
        store_url,
        cert,
        key,
        "client_head_timeout_seconds = 2\n",
        tls_extra,
        extra,
    )
}

/// [`tls_gateway`] with the given lines for `[server]` (timeouts).
fn tls_gateway_with(
    store_url: &str,
    cert: &Path,
    key: &Path,
    server_extra: &str,
    tls_extra: &str,
    extra: &str,
) -> Gateway {
    Gateway::start_with(GatewayOptions {
        public_url: Some("https://127.0.0.1:{port}".into()),
        server_extra: format!(
            "{server_extra}[server.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\nreload_check_seconds = 1\n{tls_extra}",
            cert.display(),
            key.display()
        ),
        extra: extra.to_string(),
        ..GatewayOptions::for_url(store_url)
    })
}

fn https(gw: &Gateway, path: &str) -> String {
    format!("https://127.0.0.1:{}{path}", gw.port)
}

/// What curl got: status, HTTP version, headers (lower-case names), body, and the server's
/// certificate chain as curl describes it.
struct Fetched {
    status: u16,
    version: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    certs: String,
}

impl Fetched {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Runs curl trusting only the test CA; `args` choose the protocol and add anything else.
fn curl(ca: &Path, args: &[&str]) -> Fetched {
    let dir = tempfile::tempdir().expect("tempdir");
    let (head, body) = (dir.path().join("head"), dir.path().join("body"));
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "60", "--cacert"])
        .arg(ca)
        .arg("-D")
        .arg(&head)
        .arg("-o")
        .arg(&body)
        .args(["-w", "%{http_code} %{http_version}\n%{certs}"])
        .args(args)
        .output()
        .expect("curl must be installed");
    let written = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (first, certs) = written.split_once('\n').unwrap_or((&written, ""));
    let mut words = first.split(' ');
    let status = words.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let version = words.next().unwrap_or("").to_string();
    let head = std::fs::read_to_string(&head).unwrap_or_default();
    // Only the last response's head (curl writes every one, e.g. after a 100 Continue).
    let last = head
        .split("\r\n\r\n")
        .filter(|h| !h.trim().is_empty())
        .last()
        .unwrap_or("");
    let headers = last
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Fetched {
        status,
        version,
        headers,
        body: std::fs::read(&body).unwrap_or_default(),
        certs: certs.to_string(),
    }
}

/// The common name of the certificate a new connection to the gateway is given.
fn served_cn(gw: &Gateway, ca: &Path) -> String {
    let got = curl(ca, &["--http1.1", &https(gw, "/healthz-nothing")]);
    got.certs
        .lines()
        .find_map(|l| l.trim().strip_prefix("Subject:CN = "))
        .unwrap_or("")
        .to_string()
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_limited_link_counts_the_same_over_http2_and_http1() {
    let origin = Origin::start();
    let doc = pseudo_random(300_000, 11);
    origin.put("report.bin", &doc);
    let pki = Pki::new();
    let (cert, key) = pki.issue("gw", "gateway-one");
    let gw = tls_gateway(&origin.url(), &cert, &key, "", "");
    let ca = pki.ca();
    let unknown = curl(&ca, &["--http2", &https(&gw, "/s/AAAAnotalink")]);
    assert_eq!(unknown.status, 404);
    for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let (id, url) = gw.admin().share("report.bin", Some(2));
        assert!(url.starts_with("https://"), "{url}");
        for n in 1..=2 {
            let got = curl(&ca, &[flag, &url]);
            assert_eq!(got.status, 200, "{flag} download {n}");
            assert_eq!(got.version, version);
            assert_eq!(sha256(&got.body), sha256(&doc), "{flag} download {n}");
            assert_eq!(
                got.header("strict-transport-security"),
                Some("max-age=31536000")
            );
            // HTTP/2 has no connection headers (curl refuses a response that has them).
            assert!(got.header("connection").is_none() || version == "1.1");
        }
        let refused = curl(&ca, &[flag, &url]);
        assert_eq!(refused.status, 404, "{flag}: the third download");
        assert_eq!(
            refused.body, unknown.body,
            "{flag}: the uniform 404, whatever the protocol"
        );
        assert_eq!(
            refused.header("strict-transport-security"),
            Some("max-age=31536000"),
            "HSTS on refusals too"
        );
        assert_eq!(gw.admin().link(&id)["downloads_used"], 2, "{flag}");
    }

    // h2load: 12 requests over HTTP/2 on one link allowing 3, one after the other.
    let (id, url) = gw.admin().share("report.bin", Some(3));
    let out = Command::new("h2load")
        .args(["-n", "12", "-c", "1", "-m", "1", &url])
        .output()
        .expect("h2load must be installed (apt-get install nghttp2-client)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Application protocol: h2"),
        "h2load did not speak h2: {text}"
    );
    assert!(
        text.contains("status codes: 3 2xx, 0 3xx, 9 4xx, 0 5xx"),
        "{text}"
    );
    assert_eq!(gw.admin().link(&id)["downloads_used"], 3);
}

#[test]
fn the_password_page_and_its_refusals_work_over_http2() {
    let origin = Origin::start();
    let doc = pseudo_random(50_000, 5);
    origin.put("contract.pdf", &doc);
    let pki = Pki::new();
    let (cert, key) = pki.issue("gw", "gateway-one");
    let gw = tls_gateway(&origin.url(), &cert, &key, "", "");
    let ca = pki.ca();
    let link = gw.admin().create(
        json!({"store": "docs", "object": "contract.pdf", "password": "correct horse", "max_downloads": 1}),
    );
    let url = link["url"].as_str().unwrap().to_string();
    let jar = tempfile::tempdir().unwrap();
    let jar = jar.path().join("cookies");
    let jar = jar.to_str().unwrap();
    let browser = |extra: &[&str]| {
        let mut args = vec!["--http2", "-c", jar, "-b", jar, "-H", "accept: text/html"];
        args.extend_from_slice(extra);
        curl(&ca, &args)
    };
    let page = browser(&[&url]);
    assert_eq!(page.version, "2");
    let text = String::from_utf8_lossy(&page.body).into_owned();
    assert!(text.contains("protected by a password"), "{text}");
    let form =
        |csrf: &str, password: &str| format!("action=password&csrf={csrf}&password={password}");
    let wrong = browser(&["--data", &form(&csrf_of(&text), "wrong+guess"), &url]);
    let wrong_text = String::from_utf8_lossy(&wrong.body).into_owned();
    assert!(
        wrong_text.contains("That password is not right"),
        "{}: {wrong_text}",
        wrong.status
    );
    // The refusal offers the form again, with a fresh form token.
    let right = browser(&[
        "--data",
        &form(&csrf_of(&wrong_text), "correct+horse"),
        &url,
    ]);
    assert!(
        (300..400).contains(&right.status),
        "the right password redirects: {}",
        right.status
    );
    let cookies = right.all("set-cookie");
    assert!(!cookies.is_empty(), "a cookie remembers the password");
    for c in &cookies {
        assert!(c.contains("; Secure"), "TLS makes cookies Secure: {c}");
    }
    // The cookie alone now lets a download through (a non-HTML Accept gets the document).
    let got = curl(&ca, &["--http2", "-b", jar, &url]);
    assert_eq!(got.status, 200);
    assert_eq!(sha256(&got.body), sha256(&doc));
    // Scripts: the password in a header, refused and then used up, over HTTP/2 too.
    let other = gw.admin().create(
        json!({"store": "docs", "object": "contract.pdf", "password": "s3cret-pass", "max_downloads": 1}),
    );
    let other = other["url"].as_str().unwrap();
    let bare = curl(&ca, &["--http2", other]);
    assert_eq!(bare.status, 401);
    let nope = curl(&ca, &["--http2", "-H", "x-link-password: nope", other]);
    assert_eq!(nope.status, 401);
    let ok = curl(
        &ca,
        &["--http2", "-H", "x-link-password: s3cret-pass", other],
    );
    assert_eq!(ok.status, 200);
    assert_eq!(sha256(&ok.body), sha256(&doc));
    let spent = curl(
        &ca,
        &["--http2", "-H", "x-link-password: s3cret-pass", other],
    );
    assert_eq!(spent.status, 404);
}

/// Replaces a file the way an operator's tooling does: write aside, then rename over.
fn replace(path: &Path, bytes: &[u8]) {
    let aside = path.with_extension("new");
    std::fs::write(&aside, bytes).expect("write");
    std::fs::rename(&aside, path).expect("rename");
}

fn error_lines(gw: &Gateway) -> usize {
    gw.log().matches("TLS certificate not reloaded").count()
}

#[test]
fn a_new_certificate_applies_to_new_connections_while_a_download_runs() {
    let origin = Origin::start();
    let doc = pseudo_random(24 << 20, 9);
    origin.put("big.bin", &doc);
    let pki = Pki::new();
    let (cert, key) = pki.issue("gw", "gateway-one");
    let gw = tls_gateway(&origin.url(), &cert, &key, "", "");
    let ca = pki.ca();
    assert_eq!(served_cn(&gw, &ca), "gateway-one");
    let (id, url) = gw.admin().share("big.bin", Some(1));

    // A download over HTTP/2 whose reader stops after the first 64 KiB: it stays in flight.
    let mut download: Child = Command::new("curl")
        .args(["-sS", "--http2", "--max-time", "120", "--cacert"])
        .arg(&ca)
        .args(["-w", "%{stderr}%{http_code}\n%{certs}", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("curl");
    let mut body = download.stdout.take().expect("stdout");
    let mut received = vec![0u8; 64 * 1024];
    body.read_exact(&mut received)
        .expect("the download started");

    // The operator replaces the pair (key first: for a moment they do not match).
    let (cert2, key2) = pki.issue("next", "gateway-two");
    replace(&key, &std::fs::read(&key2).unwrap());
    replace(&cert, &std::fs::read(&cert2).unwrap());
    wait_until(
        "new connections get the new certificate",
        Duration::from_secs(30),
        || served_cn(&gw, &ca) == "gateway-two",
    );
    assert!(
        !gw.log()
            .contains(&format!("link={id} method=GET status=200")),
        "the download must still be running when the certificate changes"
    );

    // The running download finishes on its connection, under the old certificate.
    body.read_to_end(&mut received)
        .expect("the rest of the body");
    let status = download.wait().expect("curl");
    let mut said = String::new();
    download
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut said)
        .unwrap();
    assert!(status.success(), "curl: {said}");
    assert!(said.starts_with("200"), "{said}");
    assert!(
        said.contains("Subject:CN = gateway-one"),
        "the download's connection kept the old certificate: {said}"
    );
    assert_eq!(received.len(), doc.len());
    assert_eq!(sha256(&received), sha256(&doc));

    // A broken certificate file, then SIGHUP: refused, logged, the last good one stays.
    let before = error_lines(&gw);
    replace(
        &cert,
        b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
    );
    gw.signal("HUP");
    wait_until(
        "the broken certificate is refused",
        Duration::from_secs(30),
        || error_lines(&gw) > before,
    );
    assert_eq!(served_cn(&gw, &ca), "gateway-two");
    let (_, small) = gw.admin().share("big.bin", Some(1));
    let got = curl(&ca, &["--http2", "-r", "0-9", &small]);
    assert_eq!(got.status, 206);
    assert_eq!(got.body, doc[..10].to_vec());
    assert!(gw.log().contains("SIGHUP: reloading the TLS certificate"));

    // Fixed again (SIGHUP alone, in case the file check has not run yet): back in business.
    replace(&cert, &std::fs::read(&cert2).unwrap());
    let (cert3, key3) = pki.issue("third", "gateway-three");
    replace(&key, &std::fs::read(&key3).unwrap());
    replace(&cert, &std::fs::read(&cert3).unwrap());
    gw.signal("HUP");
    wait_until(
        "the third certificate is served",
        Duration::from_secs(30),
        || served_cn(&gw, &ca) == "gateway-three",
    );
}

#[test]
fn the_plain_listener_only_redirects_to_the_configured_host() {
    let origin = Origin::start();
    let pki = Pki::new();
    let (cert, key) = pki.issue("gw", "gateway-one");
    let plain = free_port();
    let gw = tls_gateway(
        &origin.url(),
        &cert,
        &key,
        &format!("redirect_listen = \"127.0.0.1:{plain}\"\n"),
        "",
    );
    wait_for_port(plain, "redirect listener");
    let target = format!("https://127.0.0.1:{}", gw.port);
    let get = raw(
        plain,
        b"GET /s/abc?x=1 HTTP/1.1\r\nHost: evil.example\r\n\r\n",
    );
    assert!(get.starts_with("HTTP/1.1 301"), "{get}");
    assert!(
        get.to_ascii_lowercase()
            .contains(&format!("location: {target}/s/abc?x=1\r\n")),
        "{get}"
    );
    assert!(!get.contains("evil.example"), "{get}");
    let post = raw(
        plain,
        b"POST /s/abc HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    );
    assert!(post.starts_with("HTTP/1.1 308"), "{post}");
    let absolute = raw(
        plain,
        b"GET http://evil.example/x HTTP/1.1\r\nHost: evil.example\r\n\r\n",
    );
    assert!(!absolute.contains("evil.example"), "{absolute}");
    // curl follows it to the TLS listener.
    let pki_ca = pki.ca();
    let followed = curl(
        &pki_ca,
        &["-L", &format!("http://127.0.0.1:{plain}/s/AAAAnotalink")],
    );
    assert_eq!(followed.status, 404);
    assert_eq!(
        followed.header("strict-transport-security"),
        Some("max-age=31536000")
    );
    // The plain listener itself never sets HSTS (RFC 6797 §7.2).
    assert!(!get
        .to_ascii_lowercase()
        .contains("strict-transport-security"));
}

/// nginx serving a folder over https with a certificate from the test CA.
struct TlsOrigin {
    port: u16,
    root: PathBuf,
    _dir: tempfile::TempDir,
    child: Child,
}

impl TlsOrigin {
    fn start(cert: &Path, key: &Path) -> TlsOrigin {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("www");
        std::fs::create_dir_all(&root).expect("www");
        for p in [dir.path(), root.as_path()] {
            let _ = Command::new("chmod").arg("755").arg(p).status();
        }
        let port = free_port();
        let body = format!(
            "    server {{\n        listen 127.0.0.1:{port} ssl;\n        ssl_certificate {};\n        ssl_certificate_key {};\n        root {};\n    }}",
            cert.display(),
            key.display(),
            root.display()
        );
        let child = start_nginx(dir.path(), &body, port);
        TlsOrigin {
            port,
            root,
            _dir: dir,
            child,
        }
    }
}

impl Drop for TlsOrigin {
    fn drop(&mut self) {
        stop_nginx(&mut self.child);
    }
}

#[test]
fn an_https_store_is_trusted_through_its_ca_file_only() {
    let pki = Pki::new();
    let (origin_cert, origin_key) = pki.issue("origin", "origin");
    let origin = TlsOrigin::start(&origin_cert, &origin_key);
    let doc = pseudo_random(123_457, 3);
    std::fs::write(origin.root.join("deed.bin"), &doc).unwrap();
    let _ = Command::new("chmod")
        .arg("644")
        .arg(origin.root.join("deed.bin"))
        .status();
    let store_url = format!("https://127.0.0.1:{}/", origin.port);
    let (cert, key) = pki.issue("gw", "gateway-one");
    let ca = pki.ca();

    let gw = tls_gateway(
        &store_url,
        &cert,
        &key,
        "",
        &format!("ca_file = \"{}\"\n", ca.display()),
    );
    let created = gw
        .admin()
        .create(json!({"store": "docs", "object": "deed.bin", "max_downloads": 1}));
    assert_eq!(
        created["documents"][0]["size"], 123_457,
        "the size lookup at creation goes over https: {created}"
    );
    let url = created["url"].as_str().unwrap();
    let got = curl(&ca, &["--http2", url]);
    assert_eq!(got.status, 200);
    assert_eq!(sha256(&got.body), sha256(&doc));
    drop(gw);

    // Without ca_file the origin's certificate is not trusted: no size, no document.
    let untrusted = tls_gateway(&store_url, &cert, &key, "", "");
    let created = untrusted
        .admin()
        .create(json!({"store": "docs", "object": "deed.bin", "max_downloads": 1}));
    assert!(created["documents"][0]["size"].is_null(), "{created}");
    let got = curl(&ca, &["--http2", created["url"].as_str().unwrap()]);
    assert_eq!(got.status, 502);
}

#[test]
fn slow_tls_and_http2_clients_are_cut_at_the_head_deadline() {
    let origin = Origin::start();
    let pki = Pki::new();
    let (cert, key) = pki.issue("gw", "gateway-one");
    let gw = tls_gateway(&origin.url(), &cert, &key, "", "");
    // No TLS handshake at all: closed after client_head_timeout (2 s), not Pingora's 60 s.
    let tcp = std::net::TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let started = Instant::now();
    let n = (&tcp).read(&mut [0u8; 16]).expect("closed, not timed out");
    assert_eq!(n, 0);
    assert!(started.elapsed() < Duration::from_secs(30));

    // A TLS handshake choosing h2, then no preface and no request: closed too.
    let mut client = Command::new("openssl")
        .args(["s_client", "-quiet", "-alpn", "h2", "-connect"])
        .arg(format!("127.0.0.1:{}", gw.port))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl");
    let deadline = Instant::now() + Duration::from_secs(30);
    let closed = loop {
        if let Ok(Some(_)) = client.try_wait() {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = client.kill();
    let _ = client.wait();
    assert!(
        closed,
        "an HTTP/2 connection without a request must be closed"
    );
    // The listener still serves.
    let ok = curl(&pki.ca(), &["--http2", &https(&gw, "/s/AAAAnotalink")]);
    assert_eq!(ok.status, 404);
}

/// Runs the raw TLS/HTTP/2 client (`tests/common/h2raw.py`) and returns its event lines:
/// `(what, seconds since its TCP connect)`.
fn h2raw(args: &[&str]) -> Vec<(String, f64)> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/h2raw.py");
    let python = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let out = Command::new(python)
        .arg(script)
        .args(args)
        .output()
        .expect("python3 must be installed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "h2raw {args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(what, at)| (what.to_string(), at.parse().unwrap_or(f64::NAN)))
        .collect()
}

fn events(got: &[(String, f64)]) -> Vec<&str> {
    got.iter().map(|(what, _)| what.as_str()).collect()
}

#[test]
fn an_idle_http2_connection_is_closed_after_the_keepalive_timeout() {
    let origin = Origin::start();
    origin.put("doc.bin", b"a small document\n");
    let pki = Pki::new();
    let (cert, key) = pki.issue("gw", "gateway-one");
    let gw = tls_gateway_with(
        &origin.url(),
        &cert,
        &key,
        "client_head_timeout_seconds = 2\nkeepalive_timeout_seconds = 3\n",
        "",
        "",
    );
    let (_, url) = gw.admin().share("doc.bin", None);
    let path = &url[https(&gw, "").len()..];
    // One request answered, then nothing: the gateway ends the connection (keepalive_timeout
    // is 3 s), well before the client would give up (30 s).
    let got = h2raw(&["idle", &gw.port.to_string(), path, "30"]);
    let what = events(&got);
    assert_eq!(what.first(), Some(&"answered-200"), "{got:?}");
    assert!(
        matches!(what.get(1), Some(&"eof") | Some(&"goaway")),
        "an idle HTTP/2 connection must be closed: {got:?}"
    );
}

#[test]
fn a_stalled_http2_upload_is_cut_at_the_read_timeout() {
    let origin = Origin::start();
    let pki = Pki::new();
    let (cert, key) = pki.issue("gw", "gateway-one");
    // The upload pace would cut it only after 300 s: the read timeout (5 s) must do it.
    let gw = tls_gateway_with(
        &origin.url(),
        &cert,
        &key,
        "client_head_timeout_seconds = 2\nclient_read_timeout_seconds = 5\n",
        "",
        "[limits]\nupload_min_bytes_per_second = 1\nupload_grace_seconds = 300\n",
    );
    let created = gw.admin().create(json!({ "store": "docs", "rights": ["upload"], "upload": { "folder": "inbox", "max_files": 1 } }));
    let url = created["url"].as_str().unwrap();
    let path = format!("{}/a.txt", &url[https(&gw, "").len()..]);
    // A PUT over HTTP/2 declaring 1000 bytes that sends 10 and then stalls: its stream is ended
    // (an answer, a reset, or the connection closed) well before the client gives up (30 s).
    let got = h2raw(&["stall", &gw.port.to_string(), &path, "1000", "10", "30"]);
    let what = events(&got);
    assert_eq!(what.first(), Some(&"stalled"), "{got:?}");
    assert!(
        matches!(what.get(1), Some(w) if *w != "open"),
        "a stalled HTTP/2 upload must be cut: {got:?}"
    );
    // Once: the refused body is not waited for a second time (that would end it at 10 s).
    let cut = got[1].1 - got[0].1;
    assert!(
        cut < 7.5,
        "cut after {cut:.1} s, not at the read timeout (5 s): {got:?}"
    );
    // Its slot and name were given back: the rightful uploader gets in.
    let body = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(body.path(), b"whole").unwrap();
    let rightful = curl(
        &pki.ca(),
        &[
            "--http2",
            "-T",
            body.path().to_str().unwrap(),
            &format!("{url}/a.txt"),
        ],
    );
    assert_eq!(
        rightful.status,
        201,
        "{}",
        String::from_utf8_lossy(&rightful.body)
    );
    assert_eq!(
        std::fs::read(origin.root.join("inbox/a.txt")).unwrap(),
        b"whole"
    );
}

#[test]
fn an_http2_upload_without_a_length_arrives_whole() {
    let origin = Origin::start();
    let pki = Pki::new();
    let (cert, key) = pki.issue("gw", "gateway-one");
    let gw = tls_gateway(&origin.url(), &cert, &key, "", "");
    let created = gw
        .admin()
        .create(json!({ "store": "docs", "rights": ["upload"], "upload": { "folder": "inbox" } }));
    let url = created["url"].as_str().unwrap();
    // `curl --http2 -T -` reads stdin: over HTTP/2 it sends no content-length (and HTTP/2 has no
    // chunked coding); the body ends with the stream.
    let doc = pseudo_random(700_000, 17);
    let mut curl = Command::new("curl")
        .args(["-sS", "--http2", "--max-time", "60", "--cacert"])
        .arg(pki.ca())
        .args(["-T", "-", "-w", "\n%{http_code} %{http_version}"])
        .arg(format!("{url}/piped.bin"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("curl");
    let mut stdin = curl.stdin.take().expect("stdin");
    let feed = {
        let doc = doc.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            for piece in doc.chunks(100_000) {
                stdin.write_all(piece).expect("curl reads its stdin");
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    feed.join().expect("fed");
    let out = curl.wait_with_output().expect("curl");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && said.ends_with("201 2"),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("\"bytes\":700000"), "{said}");
    let stored = std::fs::read(origin.root.join("inbox/piped.bin")).expect("stored");
    assert_eq!(
        (stored.len(), sha256(&stored)),
        (doc.len(), sha256(&doc)),
        "the whole body is stored"
    );
}

#[test]
fn one_head_deadline_covers_the_handshake_and_the_first_request() {
    let origin = Origin::start();
    let pki = Pki::new();
    let (cert, key) = pki.issue("gw", "gateway-one");
    let gw = tls_gateway_with(
        &origin.url(),
        &cert,
        &key,
        "client_head_timeout_seconds = 6\n",
        "",
        "",
    );
    let port = gw.port.to_string();
    // Each client connects, waits 4 s, then completes the handshake (within the deadline) and
    // trickles a head a byte a second (HTTP/1.1) or sends nothing (h2). The deadline counts from
    // the connect: closed at about 6 s. Counted again after the handshake, it would close at
    // about 10 s; 8 s leaves 2 s either way on a busy machine.
    let clients: Vec<_> = ["http/1.1", "h2"]
        .into_iter()
        .map(|alpn| {
            let port = port.clone();
            std::thread::spawn(move || (alpn, h2raw(&["late", &port, "4", alpn, "30"])))
        })
        .collect();
    for client in clients {
        let (alpn, got) = client.join().expect("client");
        let what = events(&got);
        assert_eq!(
            what.first().copied(),
            Some(format!("handshake-{alpn}").as_str()),
            "{alpn}: the handshake, within the deadline: {got:?}"
        );
        assert_eq!(what.get(1), Some(&"closed"), "{alpn}: {got:?}");
        let at = got[1].1;
        assert!(
            at < 8.0,
            "{alpn}: closed {at:.1} s after the connect: the deadline (6 s) must count from it, \
             not from the handshake: {got:?}"
        );
    }
}

#[test]
fn a_browser_enters_the_password_and_downloads_over_http2() {
    let origin = Origin::start();
    let doc = pseudo_random(300_000, 21);
    origin.put("contract.pdf", &doc);
    let pki = Pki::new();
    let (cert, key) = pki.issue("gw", "gateway-one");
    let gw = tls_gateway(&origin.url(), &cert, &key, "", "");
    let link = gw.admin().create(json!({"store": "docs", "object": "contract.pdf", "filename": "Contract 2026.pdf", "password": "correct horse", "max_downloads": 3}));
    let (id, url) = (link["id"].as_str().unwrap(), link["url"].as_str().unwrap());
    assert!(url.starts_with("https://"), "{url}");

    // Real Chromium, accepting the gateway's test certificate (and no other certificate error).
    let browser = Browser::start_with(BrowserOptions::trusting(&cert));
    browser.goto(url);
    browser.wait_for("protected by a password");
    assert!(browser.url().starts_with("https://"), "{}", browser.url());
    browser.type_into("#password", "correct horse");
    browser.click("button[type=submit]");
    browser.wait_for("id=\"download\"");

    // The cookies that remember the password are Secure and HttpOnly.
    let cookies = browser.cookies();
    assert!(
        !cookies.is_empty(),
        "the password is remembered in a cookie"
    );
    for c in &cookies {
        assert_eq!(c["secure"], true, "TLS makes cookies Secure: {c}");
        assert_eq!(c["httpOnly"], true, "cookies are HttpOnly: {c}");
    }

    browser.click("#download");
    let file = browser.downloaded("Contract 2026.pdf");
    assert_eq!(sha256(&file), sha256(&doc));
    assert_eq!(gw.admin().link(id)["downloads_used"], 1);

    // Every response came over HTTP/2 with HSTS: the pages, and the document.
    let ours = https(&gw, "/");
    let responses: Vec<_> = browser
        .responses()
        .into_iter()
        .filter(|r| r["url"].as_str().is_some_and(|u| u.starts_with(&ours)))
        .collect();
    assert!(!responses.is_empty(), "no responses were recorded");
    for r in &responses {
        assert_eq!(r["protocol"], "h2", "{}: {}", r["url"], r["protocol"]);
        let hsts = r["headers"]
            .as_object()
            .into_iter()
            .flatten()
            .find(|(k, _)| k.eq_ignore_ascii_case("strict-transport-security"))
            .map(|(_, v)| v.clone());
        assert_eq!(
            hsts,
            Some(json!("max-age=31536000")),
            "{} {}",
            r["status"],
            r["url"]
        );
    }
    let pages = responses
        .iter()
        .filter(|r| r["mimeType"] == "text/html")
        .count();
    assert!(
        pages >= 2,
        "the password page and the landing page: {responses:#?}"
    );
    assert!(
        responses
            .iter()
            .any(|r| r["status"] == 200 && r["mimeType"] != "text/html"),
        "the document itself: {responses:#?}"
    );
}
