//! Log output: lines collected in memory and written to stderr in batches by one thread.
//!
//! The request path only appends its formatted line to a buffer under a short lock; a writer
//! thread wakes when the first line of a batch arrives, lets more gather for a moment and writes
//! the batch with one system call. (tracing-appender's worker, used before, wrote each line with
//! its own `write` and was woken once per line: under load that was about one `write`, three
//! `sched_yield` and a futex wake per request, and ~8% of the process's CPU samples.)
//!
//! A slow stderr never blocks a request: past [`MAX_PENDING`] bytes, lines are dropped and the
//! number dropped is reported in the log once it drains.

use std::io::{self, Write};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use tracing_subscriber::fmt::MakeWriter;

/// How long the writer lets lines gather after the first line of a batch.
const GATHER: Duration = Duration::from_millis(20);
/// Most bytes held while the output is slow.
pub const MAX_PENDING: usize = 16 << 20;

#[derive(Default)]
struct Pending {
    buf: Vec<u8>,
    dropped: u64,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
}

/// Hands each log line to the writer thread (a `MakeWriter` for tracing-subscriber).
#[derive(Clone)]
pub struct BatchWriter {
    shared: Arc<Shared>,
}

/// One line on its way to the batch.
pub struct Line<'a> {
    shared: &'a Shared,
}

impl Write for Line<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut pending = self.shared.pending.lock();
        if pending.buf.len() + bytes.len() > MAX_PENDING {
            pending.dropped += 1;
        } else {
            let first = pending.buf.is_empty();
            pending.buf.extend_from_slice(bytes);
            if first {
                self.shared.wake.notify_one();
            }
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchWriter {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line {
            shared: &self.shared,
        }
    }
}

/// Keep it alive while logging: dropping it writes what is queued and stops the thread.
pub struct LogGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.shared.pending.lock().closed = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl BatchWriter {
    /// Starts the writer thread over `out`.
    pub fn spawn<W: Write + Send + 'static>(out: W) -> io::Result<(BatchWriter, LogGuard)> {
        let shared = Arc::new(Shared::default());
        let for_thread = shared.clone();
        let thread = std::thread::Builder::new()
            .name("log writer".into())
            .spawn(move || write_batches(&for_thread, out))?;
        Ok((
            BatchWriter {
                shared: shared.clone(),
            },
            LogGuard {
                shared,
                thread: Some(thread),
            },
        ))
    }
}

fn write_batches<W: Write>(shared: &Shared, mut out: W) {
    let mut batch = Vec::new();
    loop {
        let (dropped, closed) = {
            let mut pending = shared.pending.lock();
            while pending.buf.is_empty() && !pending.closed {
                shared.wake.wait(&mut pending);
            }
            if !pending.closed {
                // Only a close wakes this early: lines arriving now do not notify.
                let _ = shared.wake.wait_for(&mut pending, GATHER);
            }
            std::mem::swap(&mut pending.buf, &mut batch);
            (std::mem::take(&mut pending.dropped), pending.closed)
        };
        if dropped > 0 {
            let _ = writeln!(
                out,
                "linkgate: {dropped} log lines dropped: the log output could not keep up"
            );
        }
        // Nothing sensible is left to do with an error writing the log itself.
        let _ = out.write_all(&batch);
        let _ = out.flush();
        batch.clear();
        if batch.capacity() > 1 << 20 {
            batch = Vec::new();
        }
        if closed {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output whose bytes the test can read back.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_is_written_in_order_by_the_time_the_guard_drops() {
        let sink = Sink::default();
        let (writer, guard) = BatchWriter::spawn(sink.clone()).unwrap();
        for i in 0..1000 {
            writer
                .make_writer()
                .write_all(format!("line {i}\n").as_bytes())
                .unwrap();
        }
        drop(guard);
        let text = String::from_utf8(sink.0.lock().clone()).unwrap();
        let expected: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        assert_eq!(text, expected);
    }

    #[test]
    fn past_the_limit_lines_are_dropped_and_counted_not_queued() {
        let shared = Shared::default();
        shared.pending.lock().buf.resize(MAX_PENDING - 2, b'.');
        Line { shared: &shared }.write_all(b"too long\n").unwrap();
        Line { shared: &shared }.write_all(b"x\n").unwrap();
        {
            let pending = shared.pending.lock();
            assert_eq!((pending.buf.len(), pending.dropped), (MAX_PENDING, 1));
        }
        shared.pending.lock().closed = true;
        let sink = Sink::default();
        write_batches(&shared, sink.clone());
        let out = sink.0.lock();
        assert!(
            String::from_utf8_lossy(&out).starts_with("linkgate: 1 log lines dropped"),
            "the drop is reported"
        );
        assert_eq!(
            out.len(),
            "linkgate: 1 log lines dropped: the log output could not keep up\n".len() + MAX_PENDING
        );
    }
}
