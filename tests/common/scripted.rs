//! [`ScriptedOrigin`]: an origin that answers byte for byte as a test's script says.
#![allow(dead_code)]

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

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
