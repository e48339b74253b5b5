//! Moving a body from the origin's socket (or a folder store's file) to the recipient's socket
//! inside the kernel.
//!
//! A large document relayed from an HTTP origin would otherwise cross user space twice per chunk
//! (read into the relay's buffer, written out of it), and a slow download would hold that buffer
//! for its whole life. When both connections are plain TCP (no TLS on either side) and the body
//! is framed by `Content-Length`, the relay instead moves it with `splice(2)`: origin socket → a
//! pipe → recipient socket, chunk by chunk, the bytes never copied into the gateway's memory. A
//! folder store does the same from the file (file → pipe on the blocking pool, since a read
//! from disk blocks; pipe → socket on the runtime). TLS and chunked bodies keep the copying
//! path, which is the same for every other response. A body that may be spliced starts on the
//! copying path too and moves to the pipe once [`super::pace::prefer_kernel`] says so (a slow
//! recipient, or many streams at once): a few fast downloads go faster copied, and it is the
//! slow and the many that would otherwise hold the gateway's memory.
//!
//! Pingora does not know about bytes moved this way, so a response that may be spliced is
//! answered with `Connection: close` (its session would otherwise count the body as cut short
//! and drop the connection without saying so), and what Pingora still buffers for the recipient
//! is flushed before the first splice. The origin connection stays consistent: exactly the body's bytes are
//! taken off it, so it can go back to the pool as before.
//!
//! The sockets are reached through duplicates of their descriptors registered with the runtime
//! on their own, waits are bounded by the same read and write timeouts as the copying path, and
//! each chunk is asked of the download's allowance before it goes out.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::pace::{chunk_for, prefer_kernel, CHUNK, MIN_CHUNK};
use super::{within, Allowance};

use pingora::protocols::http::HttpTask;
use pingora::protocols::Stream;
use pingora::proxy::Session;
use pingora::{Error, ErrorType, Result};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// A body shorter than this is copied: for it the pipe, the descriptors and a connection
/// without keep-alive cost more than the copies.
pub const MIN_BODY: u64 = 1 << 20;

/// The most bodies spliced at once; more are copied. Each holds up to four more descriptors (a
/// pipe and a duplicate of each socket), so this bounds what many slow downloads add to the
/// process's descriptor count; a lower limit on open files lowers it (see [`max_splices`]).
pub const MAX_SPLICES: usize = 1024;

/// [`MAX_SPLICES`], or fewer under a low limit on open files: splices may take at most a third
/// of the process's descriptors (four each), so the rest stay for the connections themselves (a
/// gateway under `ulimit -n 4096` splices at most 341 bodies at once).
pub fn max_splices() -> usize {
    static MAX: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one `rlimit`.
        let known = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
        let files = if known { limit.rlim_cur } else { 1024 };
        splices_for(usize::try_from(files).unwrap_or(usize::MAX))
    })
}

/// How many splices a limit of `files` open descriptors leaves room for.
fn splices_for(files: usize) -> usize {
    (files / 12).min(MAX_SPLICES)
}

/// Bodies being spliced now.
static SPLICES: AtomicUsize = AtomicUsize::new(0);

/// The marker error that makes Pingora flush its session (see [`flush_recipient`]).
const FLUSHED: ErrorType = ErrorType::Custom("recipient flushed");

/// The descriptor of a plain TCP (or Unix) connection; `None` for TLS and anything else.
pub fn plain_fd(stream: &Stream) -> Option<RawFd> {
    let io: &dyn pingora::protocols::IO = &**stream;
    io.as_any()
        .downcast_ref::<pingora::protocols::l4::stream::Stream>()
        .map(|s| s.as_raw_fd())
}

/// The recipient's descriptor when its connection is HTTP/1 over plain TCP.
pub fn recipient_fd(session: &Session) -> Option<RawFd> {
    plain_fd(session.as_downstream().as_http1()?.stream())
}

/// How many bytes written to socket `fd` its peer has not acknowledged yet (`SIOCOUTQ`); 0 when
/// the kernel cannot say. Bytes the recipient took are `sent` less these: while the socket's
/// buffers fill (megabytes at first), what was written says nothing about the recipient's pace.
pub fn unsent(fd: RawFd) -> u64 {
    let mut queued: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ for a socket) writes one int.
    let done = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut queued as *mut libc::c_int) };
    if done < 0 {
        return 0;
    }
    u64::try_from(queued).unwrap_or(0)
}

/// Whether a body that may be spliced to socket `to` should move to the pipe now, `sent` bytes
/// written in `elapsed` (see [`prefer_kernel`]; the recipient's pace is what it took, not what
/// still waits in its socket's buffer).
pub fn time_to_splice(to: RawFd, sent: u64, elapsed: Duration) -> bool {
    prefer_kernel(sent.saturating_sub(unsent(to)), elapsed)
}

/// Sends whatever Pingora's session still holds in its write buffer for the recipient.
///
/// Pingora 0.9's session offers no flush of its own; a batch of tasks ending in `Failed` is
/// written out and flushed before the failure is returned, so the marker failure coming back
/// means the buffer reached the socket.
pub async fn flush_recipient(session: &mut Session) -> Result<()> {
    let tasks = vec![
        HttpTask::Body(None, false),
        HttpTask::Failed(Error::new(FLUSHED)),
    ];
    match session.as_downstream_mut().response_duplex_vec(tasks).await {
        Err(e) if e.etype() == &FLUSHED => Ok(()),
        Err(e) => Err(super::from_recipient(e)),
        Ok(_) => Ok(()),
    }
}

/// Where a spliced body comes from.
enum Source {
    /// An origin's socket (a duplicate of its descriptor, registered with the reactor).
    Socket(AsyncFd<OwnedFd>),
    /// A file, read from `offset` on the blocking pool.
    File { file: Arc<File>, offset: u64 },
}

/// A pipe between an origin's socket (or a file) and a recipient's socket.
pub struct Splice {
    from: Source,
    to: AsyncFd<OwnedFd>,
    /// Shared with a blocking-pool fill, so that it stays open until that fill returns even when
    /// the download is dropped meanwhile.
    pipe_in: Arc<OwnedFd>,
    pipe_out: OwnedFd,
    /// Bytes in the pipe, not yet at the recipient.
    held: usize,
    /// What the pipe holds at most (grown with the chunks asked for).
    capacity: usize,
}

impl Drop for Splice {
    fn drop(&mut self) {
        SPLICES.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Sets a pipe's size; what the kernel made of it (it rounds up to pages and a power of two),
/// or `None` when refused (an unprivileged user past `/proc/sys/fs/pipe-user-pages-soft`).
fn set_pipe_size(pipe: &OwnedFd, size: usize) -> Option<usize> {
    // SAFETY: F_SETPIPE_SZ on an open pipe descriptor.
    let got = unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, size as libc::c_int) };
    usize::try_from(got).ok().filter(|n| *n > 0)
}

fn duplicate(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC only reads `fd`; a new descriptor is owned by the result alone.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` was just created and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Registers an owned descriptor with the runtime's reactor.
fn register(fd: OwnedFd, interest: Interest) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: an `OwnedFd` stays open and the same descriptor until the `AsyncFd` drops it.
    unsafe { AsyncFd::register_with_interest(fd, interest) }.map_err(io::Error::from)
}

/// `splice(2)`, reading `from` at `offset` (a file) or at its current position (`None`: a
/// socket or pipe); `Ok(0)` is the end of the input.
fn splice(from: RawFd, offset: Option<u64>, to: RawFd, len: usize) -> io::Result<usize> {
    let flags = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;
    let mut at = offset.and_then(|o| libc::loff_t::try_from(o).ok());
    let at_ptr = at
        .as_mut()
        .map_or(std::ptr::null_mut(), |o| o as *mut libc::loff_t);
    // SAFETY: both descriptors are open for the call; the offset, when given, is a valid
    // `loff_t` the call may update.
    let n = unsafe { libc::splice(from, at_ptr, to, std::ptr::null_mut(), len, flags) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

impl Splice {
    /// A pipe between two sockets (non-blocking descriptors, as the runtime's are); an error
    /// when [`max_splices`] are running or no descriptors are left.
    pub fn new(from: RawFd, to: RawFd) -> io::Result<Splice> {
        Splice::counted(|| {
            let from = register(duplicate(from)?, Interest::READABLE)?;
            Splice::open(Source::Socket(from), to)
        })
    }

    /// A pipe from `file` (read from `offset`) to a socket.
    pub fn from_file(file: Arc<File>, offset: u64, to: RawFd) -> io::Result<Splice> {
        Splice::counted(|| Splice::open(Source::File { file, offset }, to))
    }

    /// Makes a splice if fewer than [`max_splices`] are running.
    fn counted(make: impl FnOnce() -> io::Result<Splice>) -> io::Result<Splice> {
        if SPLICES.fetch_add(1, Ordering::Relaxed) >= max_splices() {
            SPLICES.fetch_sub(1, Ordering::Relaxed);
            return Err(io::Error::other(
                "as many bodies as allowed are being spliced",
            ));
        }
        // A `Splice` that was made gives its place back when dropped.
        make().inspect_err(|_| {
            SPLICES.fetch_sub(1, Ordering::Relaxed);
        })
    }

    /// The pipe starts at the smallest chunk (a slow download holds little in the kernel, and
    /// many of them stay within the user's pipe allowance) and grows with the chunks asked of
    /// [`Splice::fill`].
    fn open(from: Source, to: RawFd) -> io::Result<Splice> {
        let mut ends = [0; 2];
        // SAFETY: `ends` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both were just created and are owned here alone.
        let (pipe_out, pipe_in) =
            unsafe { (OwnedFd::from_raw_fd(ends[0]), OwnedFd::from_raw_fd(ends[1])) };
        let capacity = set_pipe_size(&pipe_in, MIN_CHUNK).unwrap_or(MIN_CHUNK);
        Ok(Splice {
            from,
            to: register(duplicate(to)?, Interest::WRITABLE)?,
            pipe_in: Arc::new(pipe_in),
            pipe_out,
            held: 0,
            capacity,
        })
    }

    /// Moves up to `len` bytes of the body into the (empty) pipe; `Ok(0)` means the origin
    /// closed its connection (or the file ended).
    pub async fn fill(&mut self, len: usize, timeout: Option<Duration>) -> Result<usize> {
        debug_assert_eq!(self.held, 0);
        if len > self.capacity && self.capacity < CHUNK {
            let want = len.next_power_of_two().min(CHUNK);
            if let Some(got) = set_pipe_size(&self.pipe_in, want) {
                self.capacity = got;
            }
        }
        let len = len.min(self.capacity);
        let n = match &mut self.from {
            Source::Socket(from) => {
                let pipe = self.pipe_in.as_raw_fd();
                let read = async {
                    loop {
                        let mut ready = from.readable().await?;
                        let fd = |fd: &AsyncFd<OwnedFd>| fd.get_ref().as_fd().as_raw_fd();
                        match ready.try_io(|from| splice(fd(from), None, pipe, len)) {
                            Ok(done) => return done,
                            Err(_would_block) => continue,
                        }
                    }
                };
                within(
                    timeout,
                    read,
                    ErrorType::ReadTimedout,
                    "reading from the origin",
                )
                .await
                .map_err(|e| e.into_up())?
            }
            Source::File { file, offset } => {
                let (file, pipe, at) = (file.clone(), self.pipe_in.clone(), *offset);
                let read = tokio::task::spawn_blocking(move || loop {
                    match splice(file.as_raw_fd(), Some(at), pipe.as_raw_fd(), len) {
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        done => return done,
                    }
                });
                let n = match read.await {
                    Ok(done) => done,
                    Err(e) => Err(io::Error::other(e)),
                }
                .map_err(|e| Error::because(ErrorType::ReadError, "reading a file", e))?;
                *offset += n as u64;
                n
            }
        };
        self.held = n;
        Ok(n)
    }

    /// Sends `*left` more bytes of a body: flushes what Pingora's session still holds for the
    /// recipient, then fills and drains the pipe chunk by chunk (each sized by the recipient's
    /// pace, `sent` bytes since `started`, and asked of `allowance` before it goes out), adding
    /// what reached the recipient's socket to `spliced`. A body that ends early is an error.
    pub async fn send_body<A: Allowance>(
        &mut self,
        session: &mut Session,
        allowance: &mut A,
        (left, mut sent, started): (&mut u64, u64, Instant),
        read_timeout: Option<Duration>,
        spliced: &mut u64,
    ) -> Result<()> {
        flush_recipient(session).await?;
        let write_timeout = session.as_downstream().get_write_timeout();
        while *left > 0 {
            let size = chunk_for(sent, started.elapsed()).min(*left as usize);
            let n = self.fill(size, read_timeout).await?;
            if n == 0 {
                let context = format!("the body ended {left} bytes early");
                let e = Error::explain(ErrorType::ConnectionClosed, context);
                return Err(match self.from {
                    Source::Socket(_) => e.into_up(),
                    Source::File { .. } => e,
                });
            }
            *left -= n as u64;
            sent += n as u64;
            let allowed = allowance.allow(n).await?;
            allowance.wrote(allowed);
            self.drain(allowed, write_timeout, spliced).await?;
            if allowed < n {
                return Err(super::limit_reached());
            }
        }
        Ok(())
    }

    /// Moves `len` of the bytes in the pipe to the recipient (all of them once this returns
    /// `Ok`), adding each part to `moved` as the recipient's socket takes it.
    pub async fn drain(
        &mut self,
        len: usize,
        timeout: Option<Duration>,
        moved: &mut u64,
    ) -> Result<()> {
        let pipe = self.pipe_out.as_raw_fd();
        let to = &self.to;
        let held = &mut self.held;
        let mut left = len.min(*held);
        let write = async {
            while left > 0 {
                let mut ready = to.writable().await?;
                match ready.try_io(|fd| splice(pipe, None, fd.get_ref().as_fd().as_raw_fd(), left))
                {
                    Ok(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(Ok(n)) => {
                        left -= n;
                        *held -= n;
                        *moved += n as u64;
                    }
                    Ok(Err(e)) => return Err(e),
                    Err(_would_block) => {}
                }
            }
            Ok(())
        };
        within(timeout, write, ErrorType::WriteTimedout, "writing the body")
            .await
            .map_err(super::from_recipient)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (client.unwrap(), accepted.unwrap().0)
    }

    #[tokio::test]
    async fn bytes_cross_from_one_socket_to_the_other_unchanged() {
        let (mut origin, from) = pair().await;
        let (to, mut recipient) = pair().await;
        let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let sent = body.clone();
        let writer = tokio::spawn(async move {
            origin.write_all(&sent).await.unwrap();
            origin
        });
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            recipient.read_to_end(&mut got).await.unwrap();
            got
        });
        let mut splice = Splice::new(from.as_raw_fd(), to.as_raw_fd()).unwrap();
        let mut left = body.len();
        while left > 0 {
            let n = splice.fill(left.min(100_000), None).await.unwrap();
            assert!(n > 0, "the origin's bytes keep coming");
            let mut moved = 0;
            splice.drain(n, None, &mut moved).await.unwrap();
            assert_eq!(moved, n as u64);
            left -= n;
        }
        drop(splice);
        drop(to);
        let _origin = writer.await.unwrap();
        assert_eq!(reader.await.unwrap(), body);
    }

    #[tokio::test]
    async fn a_closed_origin_reads_as_the_end_and_a_gone_recipient_as_its_error() {
        let (origin, from) = pair().await;
        let (to, recipient) = pair().await;
        drop(origin);
        let mut splice = Splice::new(from.as_raw_fd(), to.as_raw_fd()).unwrap();
        assert_eq!(splice.fill(1000, None).await.unwrap(), 0);

        let (mut origin, from) = pair().await;
        origin.write_all(&[7u8; 200_000]).await.unwrap();
        drop(recipient);
        let mut splice = Splice::new(from.as_raw_fd(), to.as_raw_fd()).unwrap();
        let mut failed = None;
        for _ in 0..64 {
            let n = splice.fill(65536, None).await.unwrap();
            if let Err(e) = splice.drain(n, None, &mut 0).await {
                failed = Some(e);
                break;
            }
        }
        let e = failed.expect("writing to a closed peer fails");
        assert!(matches!(e.esource(), pingora::ErrorSource::Downstream));
    }

    #[test]
    fn splices_leave_two_thirds_of_the_descriptors_to_connections() {
        assert_eq!(splices_for(4096), 341);
        assert_eq!(splices_for(1024), 85);
        assert_eq!(splices_for(65536), MAX_SPLICES);
        assert_eq!(splices_for(11), 0, "too few: everything is copied");
    }

    #[tokio::test]
    async fn what_the_peer_has_not_taken_is_known() {
        let (mut sender, receiver) = pair().await;
        assert_eq!(unsent(sender.as_raw_fd()), 0);
        sender.write_all(&[5u8; 4096]).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let mut receiver = receiver;
        receiver.read_exact(&mut buf).await.unwrap();
        // Read by the peer means acknowledged by its kernel before that.
        assert_eq!(unsent(sender.as_raw_fd()), 0);
        assert_eq!(unsent(-1), 0, "no socket: nothing known");
    }

    #[tokio::test]
    async fn a_recipient_that_reads_nothing_times_out() {
        let (mut origin, from) = pair().await;
        let (to, _recipient) = pair().await;
        let writer = tokio::spawn(async move {
            let _ = origin.write_all(&vec![1u8; 16 << 20]).await;
        });
        let mut splice = Splice::new(from.as_raw_fd(), to.as_raw_fd()).unwrap();
        let mut result = Ok(());
        for _ in 0..1024 {
            let n = splice.fill(1 << 20, None).await.unwrap();
            result = splice
                .drain(n, Some(Duration::from_millis(200)), &mut 0)
                .await;
            if result.is_err() {
                break;
            }
        }
        let e = result.expect_err("a full socket buffer ends in the write timeout");
        assert_eq!(e.etype(), &ErrorType::WriteTimedout);
        writer.abort();
    }
}
