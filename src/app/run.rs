//! `linkgate serve` from start to exit, as an operator meets it:
//!
//! - **Listeners first**: every address the config listens on is bound once before anything is
//!   built; one that is taken ends the process with a line naming the key and the address, exit
//!   status 1, and no "serving" line. (Pingora would retry, then panic in each service's
//!   runtime and leave the process running.)
//! - **Stop**: SIGTERM (and SIGQUIT after the hand-over) stops accepting at once; the process
//!   exits as soon as no recipient request is left and the write-behind queues are flushed
//!   ([`Stop`]), at the latest when `grace_period_seconds` is over (Pingora's own path).
//! - **SIGINT** (Ctrl-C) stops at once: running requests are cut, but the write-behind queues
//!   (audit events, refunds, usage) are written and every block of downloads given back first
//!   ([`Signals`]); a second SIGINT does not wait for that.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::{Condvar, Mutex};
use pingora::server::{RunArgs, ShutdownSignal, ShutdownSignalWatch};

use crate::app::logwriter::LogGuard;
use crate::config::Config;

/// Why the gateway could not start listening.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("{key} = \"{addr}\": the address is already in use (another process listens on it)")]
    InUse { key: &'static str, addr: SocketAddr },
    #[error("{key} = \"{addr}\": cannot listen: {source}")]
    Other {
        key: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The addresses `config` listens on, by their key.
pub fn listen_addresses(config: &Config) -> Vec<(&'static str, SocketAddr)> {
    let mut out = vec![
        ("server.listen", config.server.listen),
        ("admin.listen", config.admin.listen),
    ];
    if let Some(redirect) = config.server.tls.as_ref().and_then(|t| t.redirect_listen) {
        out.push(("server.tls.redirect_listen", redirect));
    }
    out
}

/// Binds each address once and lets it go again: a taken one is reported by its key before the
/// server is built. (Pingora binds with `SO_REUSEADDR` and without `SO_REUSEPORT`, as this
/// does, so what binds here binds there.)
pub fn check_listeners(addrs: &[(&'static str, SocketAddr)]) -> Result<(), ListenError> {
    for &(key, addr) in addrs {
        match std::net::TcpListener::bind(addr) {
            Ok(listener) => drop(listener),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                return Err(ListenError::InUse { key, addr })
            }
            Err(source) => return Err(ListenError::Other { key, addr, source }),
        }
    }
    Ok(())
}

/// A stopping gateway's progress: set once the housekeeper has seen no request left (or was
/// interrupted) and written the queues one last time.
pub struct Stop {
    drained: Mutex<Option<&'static str>>,
    cond: Condvar,
}

static STOP: Stop = Stop {
    drained: Mutex::new(None),
    cond: Condvar::new(),
};

/// SIGINT's request to the housekeeper: write the queues and give every block back now.
static INTERRUPT: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Resolves once SIGINT has asked for the queues to be written (see [`Signals`]).
pub async fn interrupted() {
    INTERRUPT.notified().await
}

/// Pingora's shutdown signals (SIGQUIT: upgrade, SIGTERM: graceful stop, SIGINT: fast stop),
/// except that a fast stop first has the housekeeper write the queues: Pingora's own SIGINT
/// exited at once, losing the last quarter second's audit events and leaving the downloads that
/// held blocks had not handed out counted for nobody. The housekeeper ends the process when it
/// is done ([`Stop`]); a second SIGINT stops without waiting for it.
struct Signals;

#[async_trait]
impl ShutdownSignalWatch for Signals {
    async fn recv(&self) -> ShutdownSignal {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut quit), Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::quit()),
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::warn!("cannot listen for signals; using Pingora's (SIGINT writes no queue)");
            return pingora::server::UnixShutdownSignalWatch.recv().await;
        };
        tokio::select! {
            _ = quit.recv() => ShutdownSignal::GracefulUpgrade,
            _ = term.recv() => ShutdownSignal::GracefulTerminate,
            _ = int.recv() => {
                tracing::info!("SIGINT: writing the queued events, refunds and blocks, then exiting");
                INTERRUPT.notify_one();
                int.recv().await;
                tracing::warn!("second SIGINT: exiting without waiting for the queues");
                ShutdownSignal::FastShutdown
            }
        }
    }
}

impl Stop {
    /// The process's stop state.
    pub fn get() -> &'static Stop {
        &STOP
    }

    /// Nothing is left to wait for: the process may exit, saying `why` in its last line.
    pub fn drained(&self, why: &'static str) {
        *self.drained.lock() = Some(why);
        self.cond.notify_all();
    }

    /// Blocks until [`Stop::drained`]; returns its reason.
    fn wait(&self) -> &'static str {
        let mut drained = self.drained.lock();
        loop {
            if let Some(why) = *drained {
                return why;
            }
            self.cond.wait(&mut drained);
        }
    }
}

/// The log writer, shared by the exit paths: whichever ends the process writes what is queued.
type Logs = Arc<Mutex<Option<LogGuard>>>;

/// `server.pid_file`, once written: removed when the process ends.
static PID_FILE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// Before the process ends: remove the pid file, send the queued trace spans, write what is
/// queued of the log.
fn flush_logs(logs: &Logs) {
    crate::telemetry::shutdown();
    if let Some(file) = PID_FILE.get() {
        let _ = std::fs::remove_file(file);
    }
    drop(logs.lock().take());
}

/// Ends the process once [`Stop::drained`]: a graceful stop does not wait out the whole grace
/// period when nothing is running.
fn exit_when_drained(logs: Logs) {
    let spawned = std::thread::Builder::new()
        .name("linkgate-stop".into())
        .spawn(move || {
            let why = Stop::get().wait();
            tracing::info!("stopped: {why}; exiting");
            flush_logs(&logs);
            std::process::exit(0);
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no stop thread; a stop waits the whole grace period");
    }
}

/// A listener that fails to bind after the check (another process took the address in between)
/// panics inside Pingora: end the process with one line instead of a stack trace per runtime
/// and a process that stays up without that listener.
fn exit_on_listener_panic(logs: Logs) {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.contains("Failed to build listeners") {
            tracing::error!(error = %message, "cannot listen; stopping");
            flush_logs(&logs);
            std::process::exit(1);
        }
        default(info);
    }));
}

/// `linkgate serve`: check the listeners, build, install the reload on `SIGHUP`, serve until
/// stopped.
pub fn serve(
    config_path: &std::path::Path,
    config: &Config,
    upgrade: bool,
    logs: Option<LogGuard>,
) -> ExitCode {
    let logs: Logs = Arc::new(Mutex::new(logs));
    // Taking the sockets over from a running instance: they are in use by design.
    if !upgrade {
        if let Err(e) = check_listeners(&listen_addresses(config)) {
            tracing::error!(error = %e, "cannot start");
            flush_logs(&logs);
            return ExitCode::FAILURE;
        }
    }
    let (server, gate) = match crate::app::build_with(config, None, upgrade) {
        Ok(built) => built,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            flush_logs(&logs);
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = crate::app::reload::write_pid_file(config) {
        tracing::error!(error = %e, pid_file = ?config.server.pid_file, "cannot write server.pid_file");
        flush_logs(&logs);
        return ExitCode::FAILURE;
    }
    if let Some(file) = &config.server.pid_file {
        let _ = PID_FILE.set(file.clone());
    }
    let reloader = crate::app::reload::Reloader::new(config_path, config.clone(), gate);
    if let Err(e) = crate::app::reload::on_sighup(reloader) {
        tracing::error!(error = %e, "cannot listen for SIGHUP");
        flush_logs(&logs);
        return ExitCode::FAILURE;
    }
    if let Some(traces) = &config.tracing {
        if let Err(e) = crate::telemetry::init(traces) {
            tracing::error!(error = %e, "cannot set up [tracing]");
            flush_logs(&logs);
            return ExitCode::FAILURE;
        }
        tracing::info!(endpoint = %traces.endpoint, sampling_ratio = traces.sampling_ratio, "traces exported over OTLP/HTTP");
    }
    tracing::info!(listen = %config.server.listen, admin = %config.admin.listen, upgrade, "linkgate serving");
    run_until_stopped(server, logs)
}

/// Runs a built server until it is stopped: at once when a graceful stop finds nothing running,
/// else when the grace period is over (see the module doc).
pub fn run(server: pingora::server::Server, logs: Option<LogGuard>) -> ExitCode {
    run_until_stopped(server, Arc::new(Mutex::new(logs)))
}

fn run_until_stopped(server: pingora::server::Server, logs: Logs) -> ExitCode {
    exit_on_listener_panic(logs.clone());
    exit_when_drained(logs.clone());
    server.run(RunArgs {
        shutdown_signal: Box::new(Signals),
    });
    // The grace period ran out with requests still running (or SIGINT): Pingora has cut them.
    tracing::info!("stopped");
    flush_logs(&logs);
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_address_is_named_by_its_key() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let taken = held.local_addr().unwrap();
        let free = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        assert!(check_listeners(&[("server.listen", free)]).is_ok());
        let err = check_listeners(&[("server.listen", free), ("admin.listen", taken)])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("admin.listen = \"{taken}\"")),
            "{err}"
        );
        assert!(err.contains("already in use"), "{err}");
    }
}
