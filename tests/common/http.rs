//! An HTTP client for tests: [`request`] and friends return a whole [`Reply`] for any status;
//! [`raw`] sends bytes over TCP; [`Jar`] keeps cookies and [`csrf_of`] reads a form's token.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

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

/// The path (and query) of a share URL, to send to any instance.
pub fn path_of(url: &str) -> String {
    url[url.find("/s/").expect("a share URL")..].to_string()
}

/// Sends one GET with `headers` and reads at most `keep` body bytes (then drops the connection,
/// as a client that resets after the part it wants does).
/// Returns the status and the document bytes received: the body, or for a multi-range answer
/// the data of its parts (not their framing).
pub fn take(port: u16, path: &str, headers: &[(&str, &str)], keep: usize) -> (u16, usize) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).ok();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("write");
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut body_at = None;
    loop {
        if let Some(at) = body_at {
            if got.len() - at >= keep {
                break;
            }
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        if body_at.is_none() {
            body_at = got.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
        }
    }
    let Some(at) = body_at else { return (0, 0) };
    let head = String::from_utf8_lossy(&got[..at]).to_ascii_lowercase();
    let status: u16 = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = &got[at..at.saturating_add(keep).min(got.len())];
    if !head.contains("multipart/byteranges") {
        return (status, body.len());
    }
    (status, multipart_data(body))
}

/// The data bytes in the parts of a (possibly cut-off) multipart/byteranges body.
fn multipart_data(body: &[u8]) -> usize {
    let mut data = 0;
    let mut rest = body;
    while let Some(at) = find(rest, b"content-range: bytes ") {
        let line = &rest[at + 21..];
        let end = find(line, b"/").expect("a content-range line");
        let range = String::from_utf8_lossy(&line[..end]).to_string();
        let (first, last) = range.split_once('-').expect("first-last");
        let len = last.parse::<usize>().unwrap() - first.parse::<usize>().unwrap() + 1;
        let Some(start) = find(line, b"\r\n\r\n") else {
            break;
        };
        let part = &line[start + 4..];
        data += len.min(part.len());
        rest = &part[len.min(part.len())..];
    }
    data
}

/// Where `needle` first occurs in `hay`, ignoring ASCII case.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

/// Limits a socket's receive buffer to about `bytes` (the kernel doubles it), so that a reader
/// holds up its sender at its own pace instead of after megabytes of kernel buffers.
pub fn receive_buffer(s: &TcpStream, bytes: usize) {
    let size = libc::c_int::try_from(bytes).expect("a buffer size");
    socket_option(s, libc::SO_RCVBUF, &size);
}

/// Sets a `SOL_SOCKET` option of `s` to `value` (an `int`, a `linger`, …); panics if refused.
pub fn socket_option<T>(s: &TcpStream, name: libc::c_int, value: &T) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid socket and an option value of the size given.
    let set = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            name,
            std::ptr::from_ref(value).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    assert_eq!(set, 0, "setsockopt {name}");
}

/// A GET with `headers` read slowly, at about `rate` bytes a second, over its own connection
/// with a 64 KiB receive buffer (so the gateway sees the reader's pace, not the kernel's
/// buffers): the response head and the body as received.
pub fn read_slowly(
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    rate: usize,
) -> Result<(String, Vec<u8>), String> {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    receive_buffer(&conn, 64 * 1024);
    conn.set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    conn.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut data = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match conn.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                data.extend_from_slice(&chunk[..n]);
                std::thread::sleep(Duration::from_secs_f64(n as f64 / rate as f64));
            }
            // A signal for this thread (the test harness's children exit): read again, as
            // `read_to_end` would.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("after {} bytes: {e}", data.len())),
        }
    }
    let split = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no header")?;
    let head = String::from_utf8_lossy(&data[..split]).into_owned();
    Ok((head, data.split_off(split + 4)))
}

/// A GET read slowly (about `rate` bytes a second, see [`read_slowly`]): the status line and
/// the body's SHA-256.
pub fn slow_download(port: u16, path: &str, rate: usize) -> Result<(String, String), String> {
    let (head, body) = read_slowly(port, path, &[], rate)?;
    Ok((
        head.lines().next().unwrap_or("").to_string(),
        super::util::sha256(&body),
    ))
}
