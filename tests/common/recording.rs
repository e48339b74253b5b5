//! [`RecordingOrigin`]: a raw-TCP HTTP/1.1 origin that records every byte the gateway sends it.
#![allow(dead_code)]

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

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
