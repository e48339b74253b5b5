//! Uploads through a link, against real stores: nginx with its WebDAV module (`PUT` into
//! `/inbox/`), a folder store and an S3-compatible server. Files of 0 bytes, 1 byte and many
//! megabytes arrive whole; hostile names are sanitised and stay in the link's folder; over-size
//! files and refused types get 413/415 with a reason; an upload that breaks off leaves nothing
//! under its name; two uploads of one name at once store exactly one; the expected count is
//! claimed atomically; the form works in a real browser and without JavaScript.

mod common;
#[path = "common/s3.rs"]
mod s3;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const FOLDER: &str = "inbox/job-42";

/// A link that only accepts files into `FOLDER` (plus the given `upload` settings): (id, url).
fn upload_link(gw: &Gateway, settings: Value) -> (String, String) {
    upload_link_in(gw, "docs", settings, json!({}))
}

fn upload_link_in(gw: &Gateway, store: &str, settings: Value, extra: Value) -> (String, String) {
    let mut upload = json!({ "folder": FOLDER });
    if let (Some(u), Value::Object(s)) = (upload.as_object_mut(), settings) {
        u.extend(s);
    }
    let mut body = json!({ "store": store, "rights": ["upload"], "upload": upload });
    if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
        b.extend(e);
    }
    let v = gw.admin().create(body);
    (
        v["id"].as_str().unwrap().to_string(),
        v["url"].as_str().unwrap().to_string(),
    )
}

fn put(url: &str, name: &str, body: &[u8]) -> Reply {
    request(
        "PUT",
        &format!("{url}/{name}"),
        &[("content-type", "application/octet-stream")],
        Some(body),
    )
}

/// The path and query part of a gateway URL.
fn path_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/').map_or("/", |i| &rest[i..])
}

/// Every file under `root`, relative, sorted.
fn files_under(root: &Path) -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, root, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn uploads_received(gw: &Gateway, id: &str) -> u64 {
    gw.admin().link(id)["uploads_received"].as_u64().unwrap()
}

fn count(events: &[Value], kind: &str) -> usize {
    events.iter().filter(|e| e["kind"] == kind).count()
}

/// An upload written by hand over TCP, so that a test can pause it, break it off or race it.
struct RawUpload {
    stream: TcpStream,
    chunked: bool,
}

impl RawUpload {
    /// Sends the request head; `length` `None` sends the body chunked.
    fn start(
        gw: &Gateway,
        method: &str,
        path: &str,
        length: Option<u64>,
        headers: &[(&str, &str)],
    ) -> RawUpload {
        let mut stream = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n",
            gw.port
        );
        match length {
            Some(n) => head.push_str(&format!("Content-Length: {n}\r\n")),
            None => head.push_str("Transfer-Encoding: chunked\r\n"),
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        RawUpload {
            stream,
            chunked: length.is_none(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        if self.chunked {
            if bytes.is_empty() {
                return;
            }
            self.stream
                .write_all(format!("{:x}\r\n", bytes.len()).as_bytes())
                .unwrap();
            self.stream.write_all(bytes).unwrap();
            self.stream.write_all(b"\r\n").unwrap();
        } else {
            self.stream.write_all(bytes).unwrap();
        }
    }

    /// Sends one chunk whose size line arrives in two pieces, as a slow network may deliver it.
    fn send_split_chunk(&mut self, bytes: &[u8]) {
        assert!(self.chunked);
        self.stream
            .write_all(format!("{:x}", bytes.len()).as_bytes())
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        self.stream.write_all(b"\r\n").unwrap();
        self.stream.write_all(bytes).unwrap();
        self.stream.write_all(b"\r\n").unwrap();
    }

    /// Ends the body and reads the answer: (status, body).
    fn finish(mut self) -> (u16, String) {
        if self.chunked {
            self.stream.write_all(b"0\r\n\r\n").unwrap();
        }
        self.answer()
    }

    /// Reads the answer without sending more (for requests refused before their body).
    fn answer(&mut self) -> (u16, String) {
        let mut out = Vec::new();
        let _ = self.stream.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no answer: {text:?}"));
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    /// The client goes away mid-body.
    fn break_off(self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

/// One megabyte of the `n`th block of a deterministic large file.
fn block(n: u64) -> Vec<u8> {
    let mut b = pseudo_random(1 << 20, 7);
    b[..8].copy_from_slice(&n.to_le_bytes());
    b
}

#[test]
fn files_of_zero_one_and_many_bytes_arrive_whole() {
    let origin = Origin::start();
    let gw = Gateway::start(&origin);
    let (id, url) = upload_link(&gw, json!({}));
    let inbox = origin.root.join(FOLDER);

    let empty = put(&url, "empty.txt", b"");
    assert_eq!(empty.status, 201, "{}", empty.text());
    assert_eq!(
        empty.json(),
        json!({"name": "empty.txt", "bytes": 0, "type": "text/plain"})
    );
    assert_eq!(std::fs::read(inbox.join("empty.txt")).unwrap(), b"");

    let one = put(&url, "one.bin", b"x");
    assert_eq!(one.status, 201, "{}", one.text());
    assert_eq!(std::fs::read(inbox.join("one.bin")).unwrap(), b"x");

    // 256 MiB, with a length, streamed: the gateway's memory does not grow with the file.
    const MIB: u64 = 256;
    let before = gw.rss_kib();
    let mut peak = before;
    let mut digest = Sha256::new();
    let mut big = RawUpload::start(
        &gw,
        "PUT",
        &format!("{}/big.bin", path_of(&url)),
        Some(MIB << 20),
        &[],
    );
    for n in 0..MIB {
        let b = block(n);
        digest.update(&b);
        big.send(&b);
        if n % 16 == 0 {
            peak = peak.max(gw.rss_kib());
        }
    }
    let (status, body) = big.finish();
    assert_eq!(status, 201, "{body}");
    let grew_mib = peak.saturating_sub(before) / 1024;
    assert!(
        grew_mib < 64,
        "the gateway held {grew_mib} MiB more while a {MIB} MiB file went through"
    );
    let stored = std::fs::read(inbox.join("big.bin")).unwrap();
    assert_eq!(stored.len() as u64, MIB << 20);
    assert_eq!(
        format!("{:x}", Sha256::digest(&stored)),
        format!("{:x}", digest.finalize())
    );
    drop(stored);

    // Without a length (chunked), e.g. `curl -T - …` from a pipe.
    let mut piped = RawUpload::start(
        &gw,
        "PUT",
        &format!("{}/piped.bin", path_of(&url)),
        None,
        &[],
    );
    let mut expected = Vec::new();
    for n in 0..3 {
        let b = block(100 + n);
        // A chunk head split between reads once made the gateway end the origin's body early.
        if n == 1 {
            piped.send_split_chunk(&b[..700_000]);
        } else {
            piped.send(&b[..700_000]);
        }
        expected.extend_from_slice(&b[..700_000]);
    }
    let (status, body) = piped.finish();
    assert_eq!(status, 201, "{body}");
    let got = std::fs::read(inbox.join("piped.bin")).unwrap();
    assert_eq!(
        (got.len(), sha256(&got)),
        (expected.len(), sha256(&expected)),
        "piped.bin arrives whole"
    );

    assert_eq!(uploads_received(&gw, &id), 4);
    let events = events_when(&gw, &id, |e| count(e, "upload.completed") == 4);
    let sizes: Vec<u64> = events
        .iter()
        .filter(|e| e["kind"] == "upload.completed")
        .map(|e| e["bytes"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, [0, 1, MIB << 20, 2_100_000]);
    assert!(events
        .iter()
        .any(|e| e["document"] == format!("{FOLDER}/big.bin") && e["detail"]["name"] == "big.bin"));
}

#[test]
fn hostile_names_are_sanitised_and_never_leave_the_folder() {
    let origin = Origin::start();
    let gw = Gateway::start(&origin);
    let (_, url) = upload_link(&gw, json!({}));
    for (sent, stored) in [
        ("..%2F..%2Fescape.txt", "escape.txt"),
        ("..%5C..%5Cwindows.txt", "windows.txt"),
        ("a%0d%0aSet-Cookie%3A%20x%3Dy.txt", "a__Set-Cookie_ x=y.txt"),
        ("%3Cscript%3Ealert(1)%3C%2Fscript%3E.html", "script_.html"),
        ("100%25%20sure%20%23%201%3F.txt", "100% sure # 1_.txt"),
        ("%C3%9Cberweisung%20%E2%82%AC.pdf", "Überweisung €.pdf"),
        ("%20%20.hidden.txt.%20", "hidden.txt"),
        ("..%2F", "_"),
    ] {
        let r = put(&url, sent, b"payload");
        assert_eq!(r.status, 201, "{sent}: {}", r.text());
        assert_eq!(r.json()["name"], stored, "{sent}");
        assert!(r.header("set-cookie").is_none());
        assert_eq!(
            std::fs::read(origin.root.join(FOLDER).join(stored)).unwrap(),
            b"payload",
            "{sent} is stored as {stored}"
        );
    }
    // Sent as raw bytes: HTTP clients would resolve the dot segments themselves.
    for refused in ["..", "%2e%2e", ".", "%20", "a/b.txt", "%ff.txt", ""] {
        let head = format!("PUT {}/{refused} HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\nConnection: close\r\n\r\npayload", path_of(&url));
        let answer = raw(gw.port, head.as_bytes());
        assert!(answer.starts_with("HTTP/1.1 400"), "{refused:?}: {answer}");
        assert!(
            answer.contains("{\"error\":\""),
            "{refused:?} gets a reason: {answer}"
        );
    }
    let everything = files_under(&origin.root);
    assert!(
        everything
            .iter()
            .all(|f| f.starts_with(&format!("{FOLDER}/"))),
        "a file landed outside the folder: {everything:?}"
    );
}

#[test]
fn over_size_and_refused_types_get_a_reason_and_write_nothing() {
    let origin = Origin::start();
    let gw = Gateway::start(&origin);
    let (id, url) = upload_link(
        &gw,
        json!({"max_bytes": 1000, "allowed_types": ["application/pdf", "image/*"]}),
    );

    let big = put(&url, "big.pdf", &[b'x'; 1001]);
    assert_eq!(big.status, 413);
    assert!(
        big.json()["error"]
            .as_str()
            .unwrap()
            .contains("at most 1000 bytes"),
        "{}",
        big.text()
    );

    // Without a length, the cap is enforced while the bytes arrive.
    let mut chunked = RawUpload::start(
        &gw,
        "PUT",
        &format!("{}/chunked.pdf", path_of(&url)),
        None,
        &[],
    );
    for _ in 0..5 {
        chunked.send(&[b'x'; 400]);
    }
    let (status, body) = chunked.finish();
    assert_eq!(status, 413, "{body}");

    // A client that asks first is told before it sends anything.
    let mut asks = RawUpload::start(
        &gw,
        "PUT",
        &format!("{}/asks.pdf", path_of(&url)),
        Some(50 << 20),
        &[("Expect", "100-continue")],
    );
    let (status, body) = asks.answer();
    assert_eq!(status, 413, "{body}");

    let exe = put(&url, "setup.exe", b"MZ");
    assert_eq!(exe.status, 415);
    assert!(
        exe.json()["error"]
            .as_str()
            .unwrap()
            .contains("not accepted"),
        "{}",
        exe.text()
    );
    assert_eq!(put(&url, "page.html", b"<p>").status, 415);
    assert_eq!(put(&url, "no-extension", b"?").status, 415);

    assert_eq!(
        put(&url, "scan.png", &[1u8; 1000]).status,
        201,
        "exactly the cap, of an accepted type"
    );
    assert_eq!(put(&url, "form.PDF", b"%PDF").status, 201);
    assert_eq!(
        files_under(&origin.root),
        [format!("{FOLDER}/form.PDF"), format!("{FOLDER}/scan.png")]
    );
    assert_eq!(
        uploads_received(&gw, &id),
        2,
        "refusals use up no expected file"
    );
    let events = events_when(&gw, &id, |e| count(e, "upload.refused") == 6);
    let reasons: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "upload.refused")
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        [
            "too large",
            "too large",
            "too large",
            "type not accepted",
            "type not accepted",
            "type not accepted"
        ]
    );
}

#[test]
fn an_upload_that_breaks_off_is_never_visible_and_gives_its_slot_back() {
    let origin = Origin::start();
    let gw = Gateway::start(&origin);
    let (id, url) = upload_link(&gw, json!({"max_files": 1}));
    let path = format!("{}/report.bin", path_of(&url));

    for length in [Some(8u64 << 20), None] {
        let mut upload = RawUpload::start(&gw, "PUT", &path, length, &[]);
        upload.send(&block(1));
        upload.send(&block(2));
        std::thread::sleep(Duration::from_millis(300));
        upload.break_off();
        let failed = if length.is_some() { 1 } else { 2 };
        events_when(&gw, &id, |e| count(e, "upload.failed") == failed);
        assert_eq!(
            files_under(&origin.root),
            Vec::<String>::new(),
            "nothing is visible after a broken upload ({length:?})"
        );
        assert_eq!(
            uploads_received(&gw, &id),
            0,
            "the expected file is still expected"
        );
    }

    // The same name and the one expected slot are free for the retry.
    let retry = put(&url, "report.bin", &block(3));
    assert_eq!(retry.status, 201, "{}", retry.text());
    assert_eq!(
        std::fs::read(origin.root.join(FOLDER).join("report.bin")).unwrap(),
        block(3)
    );
    assert_eq!(uploads_received(&gw, &id), 1);
    let full = put(&url, "another.bin", b"x");
    assert_eq!(full.status, 403);
    assert!(full.json()["error"]
        .as_str()
        .unwrap()
        .contains("all the files it expects"));
    let events = events_when(&gw, &id, |e| count(e, "upload.completed") == 1);
    assert!(events
        .iter()
        .filter(|e| e["kind"] == "upload.failed")
        .all(|e| e["reason"] == "client broke off"));
}

#[test]
fn a_form_upload_that_breaks_off_keeps_the_files_before_it_only() {
    let origin = Origin::start();
    let gw = Gateway::start(&origin);
    let (_, url) = upload_link(&gw, json!({}));
    let boundary = "----linkgate-test-boundary";
    let mut form = RawUpload::start(
        &gw,
        "POST",
        &format!("{}?upload", path_of(&url)),
        None,
        &[(
            "Content-Type",
            &format!("multipart/form-data; boundary={boundary}"),
        )],
    );
    form.send(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"first.txt\"\r\nContent-Type: text/plain\r\n\r\nfirst file\r\n").as_bytes());
    form.send(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"second.bin\"\r\n\r\n").as_bytes());
    form.send(&block(9));
    std::thread::sleep(Duration::from_millis(300));
    form.break_off();
    let deadline = Instant::now() + Duration::from_secs(5);
    while files_under(&origin.root).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        files_under(&origin.root),
        [format!("{FOLDER}/first.txt")],
        "the whole first file, nothing of the second"
    );
}

#[test]
fn two_uploads_of_one_name_at_once_store_exactly_one() {
    let origin = Origin::start();
    let gw = Gateway::start(&origin);
    let (_, url) = upload_link(&gw, json!({}));
    let path = format!("{}/same.bin", path_of(&url));

    // The first is half-way through when the second arrives.
    let mut first = RawUpload::start(&gw, "PUT", &path, Some(2 << 20), &[]);
    first.send(&block(1));
    std::thread::sleep(Duration::from_millis(300));
    let second = put(&url, "same.bin", &block(2));
    assert_eq!(second.status, 409);
    assert!(
        second.json()["error"]
            .as_str()
            .unwrap()
            .contains("being uploaded right now"),
        "{}",
        second.text()
    );
    first.send(&block(11));
    let (status, body) = first.finish();
    assert_eq!(status, 201, "{body}");
    let stored = std::fs::read(origin.root.join(FOLDER).join("same.bin")).unwrap();
    assert_eq!(
        stored,
        [block(1), block(11)].concat(),
        "the first upload's bytes, whole"
    );

    // Later uploads of the name find it taken.
    let later = put(&url, "same.bin", b"x");
    assert_eq!(later.status, 409);
    assert!(later.json()["error"]
        .as_str()
        .unwrap()
        .contains("already exists"));

    // Many at once: exactly one wins and its bytes are what is stored.
    let racers: Vec<_> = (0..8u64)
        .map(|n| {
            let url = url.clone();
            std::thread::spawn(move || (n, put(&url, "race.bin", &block(50 + n)).status))
        })
        .collect();
    let results: Vec<(u64, u16)> = racers.into_iter().map(|t| t.join().unwrap()).collect();
    let winners: Vec<u64> = results
        .iter()
        .filter(|(_, s)| *s == 201)
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert!(
        results.iter().all(|(_, s)| *s == 201 || *s == 409),
        "{results:?}"
    );
    assert_eq!(
        std::fs::read(origin.root.join(FOLDER).join("race.bin")).unwrap(),
        block(50 + winners[0])
    );
}

#[test]
fn a_link_that_allows_overwriting_replaces_the_file() {
    let origin = Origin::start();
    let gw = Gateway::start(&origin);
    let (_, url) = upload_link(&gw, json!({"overwrite": true}));
    assert_eq!(put(&url, "draft.txt", b"first").status, 201);
    assert_eq!(put(&url, "draft.txt", b"second version").status, 201);
    assert_eq!(
        std::fs::read(origin.root.join(FOLDER).join("draft.txt")).unwrap(),
        b"second version"
    );
}

#[test]
fn the_expected_count_is_claimed_atomically() {
    let origin = Origin::start();
    let gw = Gateway::start(&origin);
    let (id, url) = upload_link(&gw, json!({"max_files": 3}));
    let senders: Vec<_> = (0..10)
        .map(|n| {
            let url = url.clone();
            std::thread::spawn(move || put(&url, &format!("file-{n}.txt"), b"content").status)
        })
        .collect();
    let mut statuses: Vec<u16> = senders.into_iter().map(|t| t.join().unwrap()).collect();
    statuses.sort();
    assert_eq!(statuses, [201, 201, 201, 403, 403, 403, 403, 403, 403, 403]);
    assert_eq!(files_under(&origin.root.join(FOLDER)).len(), 3);
    assert_eq!(uploads_received(&gw, &id), 3);
}

/// A multipart body with the given (field, file name, bytes) parts.
fn multipart(boundary: &str, parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (field, filename, bytes) in parts {
        let disposition = match filename {
            Some(f) => format!("form-data; name=\"{field}\"; filename=\"{f}\""),
            None => format!("form-data; name=\"{field}\""),
        };
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

fn post_form(jar: &mut Jar, url: &str, body: &[u8], boundary: &str) -> Reply {
    let cookie = jar.header();
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let r = request(
        "POST",
        &format!("{url}?upload"),
        &[
            ("accept", "text/html"),
            ("cookie", &cookie),
            ("content-type", &content_type),
        ],
        Some(body),
    );
    jar.keep(&r);
    r
}

#[test]
fn the_form_works_without_javascript_behind_a_password() {
    let origin = Origin::start();
    origin.put("brief.pdf", b"%PDF brief");
    let gw = Gateway::start(&origin);
    let v = gw.admin().create(
        json!({"store": "docs", "object": "brief.pdf", "password": "drop it here",
        "rights": ["download", "upload"], "upload": {"folder": FOLDER}}),
    );
    let url = v["url"].as_str().unwrap().to_string();
    let boundary = "xYzBoundary";

    // Nobody uploads past the password: not with the form, not with PUT.
    let mut stranger = Jar::default();
    let blocked = post_form(
        &mut stranger,
        &url,
        &multipart(boundary, &[("file", Some("x.txt"), b"x")]),
        boundary,
    );
    assert!(
        blocked.text().contains("protected by a password"),
        "{} {}",
        blocked.status,
        blocked.text()
    );
    assert_ne!(put(&url, "x.txt", b"x").status, 201);
    assert!(files_under(&origin.root.join("inbox")).is_empty());

    let mut jar = Jar::default();
    let form = jar.page(&url);
    let entered = jar.post(
        &url,
        &[
            ("action", "password"),
            ("csrf", &csrf_of(&form.text())),
            ("password", "drop it here"),
        ],
    );
    assert_eq!(entered.status, 303);
    let landing = jar.page(&url).text();
    assert!(
        landing.contains("enctype=\"multipart/form-data\"") && landing.contains("id=\"download\""),
        "{landing}"
    );
    let csrf = csrf_of(&landing);

    // Without the form's token the files are refused; with it, every file is stored.
    let forged = post_form(
        &mut jar,
        &url,
        &multipart(boundary, &[("file", Some("a.txt"), b"a")]),
        boundary,
    );
    assert_eq!(forged.status, 403);
    let body = multipart(
        boundary,
        &[
            ("csrf", None, csrf.as_bytes()),
            ("file", Some("C:\\Users\\jane\\notes.txt"), b"my notes"),
            ("file", Some("photo.jpg"), &block(4)),
        ],
    );
    let done = post_form(&mut jar, &url, &body, boundary);
    assert_eq!(done.status, 200, "{}", done.text());
    assert!(
        done.text().contains("Upload complete")
            && done.text().contains("notes.txt")
            && done.text().contains("photo.jpg")
    );
    assert_eq!(
        std::fs::read(origin.root.join(FOLDER).join("notes.txt")).unwrap(),
        b"my notes"
    );
    assert_eq!(
        std::fs::read(origin.root.join(FOLDER).join("photo.jpg")).unwrap(),
        block(4)
    );
    // The form's token is spent.
    let replay = post_form(
        &mut jar,
        &url,
        &multipart(
            boundary,
            &[
                ("csrf", None, csrf.as_bytes()),
                ("file", Some("b.txt"), b"b"),
            ],
        ),
        boundary,
    );
    assert_eq!(replay.status, 403);
    // Uploading does not use up the link's downloads.
    assert_eq!(
        gw.admin().link(v["id"].as_str().unwrap())["downloads_used"],
        0
    );
}

#[test]
fn a_browser_uploads_with_the_form() {
    let origin = Origin::start();
    let gw = Gateway::start(&origin);
    let (id, url) = upload_link(&gw, json!({"allowed_types": ["text/*"]}));
    let local = tempfile::tempdir().unwrap();
    let file: PathBuf = local.path().join("Quarterly notes.txt");
    std::fs::write(&file, b"notes from the browser\n").unwrap();

    let browser = Browser::start();
    browser.goto(&url);
    let page = browser.wait_for("Send files");
    assert!(
        page.contains("Accepted types: text/*"),
        "the form states its limits: {page}"
    );
    browser.choose_file("#files", &file);
    browser.click("#upload");
    let result = browser.wait_for("Upload complete");
    assert!(result.contains("Quarterly notes.txt"), "{result}");
    assert_eq!(
        std::fs::read(origin.root.join(FOLDER).join("Quarterly notes.txt")).unwrap(),
        b"notes from the browser\n"
    );
    assert_eq!(uploads_received(&gw, &id), 1);
    let _ = &id;

    // Drag-and-drop: a file dropped on the form lands in its file input (the page's one script,
    // allowed by its hash in the CSP) and is sent with the same form.
    browser.goto(&url);
    browser.wait_for("Send files");
    let chosen = browser.execute(
        "const dt = new DataTransfer();\
         dt.items.add(new File(['dropped onto the page'], 'dropped.txt', {type: 'text/plain'}));\
         document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));\
         return document.getElementById('files').files.length;",
    );
    assert_eq!(chosen, json!(1), "the drop script filled the file input");
    browser.click("#upload");
    browser.wait_for("Upload complete");
    assert_eq!(
        std::fs::read(origin.root.join(FOLDER).join("dropped.txt")).unwrap(),
        b"dropped onto the page"
    );

    // A refused type is explained on the page.
    let exe = local.path().join("tool.exe");
    std::fs::write(&exe, b"MZ").unwrap();
    browser.goto(&url);
    browser.wait_for("Send files");
    browser.choose_file("#files", &exe);
    browser.click("#upload");
    browser.wait_for("are not accepted by this link");
}

#[test]
fn uploads_reach_a_folder_store_whole_or_not_at_all() {
    let origin = Origin::start();
    let root = tempfile::tempdir().unwrap();
    let extra = format!(
        "[stores.files]\nkind = \"dir\"\nroot = \"{}\"\n",
        root.path().display()
    );
    let gw = Gateway::start_with(GatewayOptions {
        extra,
        ..GatewayOptions::for_origin(&origin)
    });
    let (id, url) = upload_link_in(&gw, "files", json!({}), json!({}));

    assert_eq!(put(&url, "empty.txt", b"").status, 201);
    assert_eq!(put(&url, "one.bin", b"1").status, 201);
    let mut broken = RawUpload::start(
        &gw,
        "PUT",
        &format!("{}/broken.bin", path_of(&url)),
        Some(4 << 20),
        &[],
    );
    broken.send(&block(1));
    std::thread::sleep(Duration::from_millis(300));
    broken.break_off();
    events_when(&gw, &id, |e| count(e, "upload.failed") == 1);
    assert_eq!(
        files_under(root.path()),
        [format!("{FOLDER}/empty.txt"), format!("{FOLDER}/one.bin")],
        "no partial or temporary file is left"
    );
    assert_eq!(put(&url, "one.bin", b"2").status, 409);
    assert_eq!(
        std::fs::read(root.path().join(FOLDER).join("one.bin")).unwrap(),
        b"1"
    );
}

#[test]
fn uploads_reach_an_s3_store_in_one_put_or_in_parts() {
    let origin = Origin::start();
    let s3 = s3::S3Server::start();
    let gw = Gateway::start_with(GatewayOptions {
        extra: s3.store("bucket", s3::S3_SECRET),
        ..GatewayOptions::for_origin(&origin)
    });
    let (id, url) = upload_link_in(&gw, "bucket", json!({}), json!({}));
    let bucket = s3.root.path().join("docs");

    assert_eq!(put(&url, "empty.txt", b"").status, 201);
    let one = put(&url, "one.bin", b"1");
    assert_eq!(one.status, 201, "{}", one.text());
    assert_eq!(
        std::fs::read(bucket.join(FOLDER).join("one.bin")).unwrap(),
        b"1"
    );

    // Without a length: a multipart upload of 8 MiB parts (here three parts).
    let mut piped = RawUpload::start(
        &gw,
        "PUT",
        &format!("{}/piped.bin", path_of(&url)),
        None,
        &[],
    );
    let mut expected = Vec::new();
    for n in 0..18 {
        let b = block(n);
        piped.send(&b);
        expected.extend_from_slice(&b);
    }
    let (status, body) = piped.finish();
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        std::fs::read(bucket.join(FOLDER).join("piped.bin")).unwrap(),
        expected
    );

    // Broken off half-way through a multipart upload: no object appears.
    let mut broken = RawUpload::start(
        &gw,
        "PUT",
        &format!("{}/broken.bin", path_of(&url)),
        None,
        &[],
    );
    for n in 0..10 {
        broken.send(&block(n));
    }
    std::thread::sleep(Duration::from_millis(500));
    broken.break_off();
    events_when(&gw, &id, |e| count(e, "upload.failed") == 1);
    assert!(!bucket.join(FOLDER).join("broken.bin").exists());
    assert_eq!(
        put(&url, "one.bin", b"2").status,
        409,
        "S3 objects are not overwritten either"
    );
    assert_eq!(uploads_received(&gw, &id), 3);
}

#[test]
fn the_operators_policy_bounds_every_links_uploads() {
    let origin = Origin::start();
    let policy = "[policy]\nupload_max_bytes = 100\nupload_allowed_types = [\"text/*\", \"application/pdf\"]\nallowed_rights = [\"download:*\", \"upload\"]\n";
    let gw = Gateway::start_with(GatewayOptions {
        extra: policy.to_string(),
        ..GatewayOptions::for_origin(&origin)
    });
    // A link cannot ask for more than the policy allows...
    let greedy = gw.admin().call("POST", "/v1/links", Some(json!({"store": "docs", "rights": ["upload"], "upload": {"folder": FOLDER, "max_bytes": 1_000_000}})));
    assert_eq!(greedy.status, 422);
    assert!(
        greedy.text().contains("policy.upload_max_bytes"),
        "{}",
        greedy.text()
    );
    // ...and one that names no cap gets the policy's.
    let (_, url) = upload_link(&gw, json!({}));
    assert_eq!(put(&url, "small.txt", &[b'a'; 100]).status, 201);
    let big = put(&url, "big.txt", &[b'a'; 101]);
    assert_eq!(big.status, 413, "{}", big.text());
    assert_eq!(
        put(&url, "photo.png", b"png").status,
        415,
        "the policy's types apply to links that name none"
    );
    // Rights outside the policy are refused when the link is made, naming the rule.
    let refused = gw.admin().call(
        "POST",
        "/v1/links",
        Some(json!({"store": "docs", "object": "a.pdf", "rights": ["view"]})),
    );
    assert_eq!(refused.status, 422);
    assert!(
        refused.text().contains("policy.allowed_rights"),
        "{}",
        refused.text()
    );
    let lowres = gw.admin().call(
        "POST",
        "/v1/links",
        Some(json!({"store": "docs", "object": "a.pdf", "renditions": {"lowres": "a-low.pdf"}, "rights": ["download:lowres"]})),
    );
    assert_eq!(
        lowres.status,
        201,
        "download:* allows every rendition: {}",
        lowres.text()
    );
}

#[test]
fn two_instances_on_one_redis_share_name_claims_and_the_expected_count() {
    let origin = Origin::start();
    let redis = RedisServer::start();
    let (a, b) = Gateway::pair_on_redis(&origin, &redis);
    let (id, url) = upload_link(&a, json!({"max_files": 4}));
    let path = path_of(&url).to_string();
    let on_b = b.url(&path);

    // An upload in progress on A holds its name against B.
    let mut first = RawUpload::start(&a, "PUT", &format!("{path}/shared.bin"), Some(2 << 20), &[]);
    first.send(&block(1));
    std::thread::sleep(Duration::from_millis(300));
    let clash = put(&on_b, "shared.bin", b"other");
    assert_eq!(clash.status, 409, "{}", clash.text());
    first.send(&block(2));
    assert_eq!(first.finish().0, 201);

    // Ten senders split over both instances: exactly the three files still expected arrive.
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(10));
    let senders: Vec<_> = (0..10)
        .map(|n| {
            let target = if n % 2 == 0 {
                url.clone()
            } else {
                on_b.clone()
            };
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                put(&target, &format!("file-{n}.txt"), b"content").status
            })
        })
        .collect();
    let mut statuses: Vec<u16> = senders.into_iter().map(|t| t.join().unwrap()).collect();
    statuses.sort();
    assert_eq!(statuses, [201, 201, 201, 403, 403, 403, 403, 403, 403, 403]);
    assert_eq!(files_under(&origin.root.join(FOLDER)).len(), 4);
    assert_eq!(uploads_received(&a, &id), 4);
    assert_eq!(uploads_received(&b, &id), 4);
}
