//! A webhook receiver for tests: a real HTTP server on a loopback port (a thread per
//! connection) that checks every signature with its own HMAC-SHA256, can answer 500 for a
//! while, and can be closed and opened again on the same port. Included with `#[path]` by the
//! test files that need it.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::common::free_port;

pub const SECRET: &str = "a-webhook-secret-of-some-length";

/// One delivery as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub kind: String,
    pub body: Value,
    pub signed: bool,
    pub status: u16,
}

/// What the receiver's threads share.
#[derive(Default)]
pub struct Seen {
    pub deliveries: Mutex<Vec<Delivery>>,
    /// Answer 500 to this many more requests.
    pub fail_next: AtomicU64,
    /// Answer 500 to every request while set.
    pub failing: AtomicBool,
    /// While set, requests are read, recorded with status 0, and never answered (the connection
    /// is dropped once it is cleared).
    pub hanging: AtomicBool,
    /// When set, every request is answered `302 Found` to this URL.
    pub redirect: Mutex<Option<String>>,
}

/// A webhook receiver on a fixed loopback port; `close` closes the port, `open` opens it again.
pub struct Receiver {
    pub port: u16,
    pub seen: Arc<Seen>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn hmac_hex(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn handle(mut stream: TcpStream, seen: &Seen) {
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let header = |name: &str| {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    };
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = &buf[head_end..head_end + length];
    let timestamp = header("linkgate-webhook-timestamp").unwrap_or_default();
    let signature = header("linkgate-webhook-signature").unwrap_or_default();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let fresh = timestamp
        .parse::<i64>()
        .is_ok_and(|t| (now - t).abs() <= 300);
    let signed = fresh && signature == format!("v1={}", hmac_hex(SECRET, &timestamp, body));
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if seen.hanging.load(Ordering::SeqCst) {
        seen.deliveries.lock().unwrap().push(Delivery {
            id: header("linkgate-webhook-id").unwrap_or_default(),
            kind: parsed["type"].as_str().unwrap_or_default().to_string(),
            body: parsed,
            signed,
            status: 0,
        });
        while seen.hanging.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
        return;
    }
    let fail = seen.failing.load(Ordering::SeqCst)
        || seen
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
    let location = seen.redirect.lock().unwrap().clone();
    let (status, extra) = if !signed {
        (401, String::new())
    } else if fail {
        (500, String::new())
    } else if let Some(to) = location {
        (302, format!("location: {to}\r\n"))
    } else {
        (204, String::new())
    };
    seen.deliveries.lock().unwrap().push(Delivery {
        id: header("linkgate-webhook-id").unwrap_or_default(),
        kind: parsed["type"].as_str().unwrap_or_default().to_string(),
        body: parsed,
        signed,
        status,
    });
    let _ = stream.write_all(
        format!("HTTP/1.1 {status} X\r\n{extra}content-length: 0\r\nconnection: close\r\n\r\n")
            .as_bytes(),
    );
}

impl Receiver {
    pub fn start() -> Receiver {
        let mut r = Receiver {
            port: free_port(),
            seen: Arc::new(Seen::default()),
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
        };
        r.open();
        r
    }

    pub fn open(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).expect("bind receiver");
        self.stop = Arc::new(AtomicBool::new(false));
        let (seen, stop) = (self.seen.clone(), self.stop.clone());
        self.thread = Some(std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(stream) = stream {
                    let seen = seen.clone();
                    std::thread::spawn(move || handle(stream, &seen));
                }
            }
        }));
    }

    /// Closes the port (connections are refused until `open`).
    pub fn close(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/linkgate?src=test", self.port)
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.seen.deliveries.lock().unwrap().clone()
    }

    /// Ids answered 2xx.
    pub fn delivered(&self) -> BTreeSet<String> {
        self.deliveries()
            .into_iter()
            .filter(|d| d.status == 204)
            .map(|d| d.id)
            .collect()
    }

    /// Waits until every id in `ids` was answered 2xx.
    pub fn wait_for(&self, ids: &BTreeSet<String>) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = self.delivered();
            if ids.is_subset(&got) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not delivered: {:?}",
                ids.difference(&got).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until at least `n` requests arrived.
    pub fn wait_requests(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.deliveries().len() < n {
            assert!(Instant::now() < deadline, "fewer than {n} requests arrived");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.close();
    }
}
