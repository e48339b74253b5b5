//! Configuration reload on `SIGHUP` (`linkgate reload` sends it).
//!
//! The file is read and validated again. If it does not load, or changes something that only a
//! restart can change ([`restart_only`]: the listeners, the link state, the server's timeouts,
//! threads and TLS settings, the log format, the admin body limit, the upload pace and
//! `[webhooks]`), nothing
//! is applied and the previous configuration stays in force, with one `ERROR` line saying why.
//! Otherwise a new [`Gate`](crate::share::gate::Gate) is built (same link store, same
//! write-behind queues) and put in place: requests that start from then on use the new keys,
//! stores, policy, mail settings and admin tokens; running downloads keep the store connection
//! they have and finish.
//!
//! The `SIGHUP` handler is installed before the listeners open, so a reload can never end the
//! process (the signal's default). TLS certificates are reloaded by their own watcher on the
//! same signal (see [`crate::share::tls`]).

use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::config::{Config, ConfigError};
use crate::share::gate::Live;
use crate::state::StoreError;

/// Why a reload was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{} changed: that needs a restart (or `serve --upgrade`), nothing was applied", .0.join(", "))]
    RestartOnly(Vec<&'static str>),
    #[error("{0}")]
    Build(#[from] StoreError),
}

/// The keys (or tables) that differ between `old` and `new` and cannot change without a
/// restart.
pub fn restart_only(old: &Config, new: &Config) -> Vec<&'static str> {
    fn differs<T: std::fmt::Debug>(a: &T, b: &T) -> bool {
        format!("{a:?}") != format!("{b:?}")
    }
    let (o, n) = (&old.server, &new.server);
    let checks: [(&'static str, bool); 19] = [
        ("server.listen", o.listen != n.listen),
        ("admin.listen", old.admin.listen != new.admin.listen),
        ("[state]", differs(&old.state, &new.state)),
        ("server.threads", o.threads != n.threads),
        (
            "server.grace_period_seconds",
            o.grace_period_seconds != n.grace_period_seconds,
        ),
        ("server.upgrade_sock", o.upgrade_sock != n.upgrade_sock),
        ("server.pid_file", o.pid_file != n.pid_file),
        (
            "server.client_read_timeout_seconds",
            o.client_read_timeout != n.client_read_timeout,
        ),
        (
            "server.client_write_timeout_seconds",
            o.client_write_timeout != n.client_write_timeout,
        ),
        (
            "server.client_head_timeout_seconds",
            o.client_head_timeout != n.client_head_timeout,
        ),
        (
            "server.keepalive_timeout_seconds",
            o.keepalive_timeout_seconds != n.keepalive_timeout_seconds,
        ),
        ("[server.tls]", differs(&o.tls, &n.tls)),
        ("log.format", old.log_json != new.log_json),
        (
            "limits.admin_body_bytes",
            old.admin_body_limit != new.admin_body_limit,
        ),
        ("limits.upload_*", old.upload_pace != new.upload_pace),
        // The outbox's bound and the delivery worker are set up at start.
        ("[webhooks]", differs(&old.webhooks, &new.webhooks)),
        // The expiry sweeper's interval is set at start.
        (
            "audit.expiry_sweep_seconds",
            old.expiry_sweep != new.expiry_sweep,
        ),
        // The exporter and its thread are set up at start.
        ("[tracing]", old.tracing != new.tracing),
        ("[render] or [renditions]", old.render != new.render),
    ];
    checks
        .into_iter()
        .filter_map(|(key, changed)| changed.then_some(key))
        .collect()
}

/// What a reload needs: the file, the configuration in force and the gate to replace.
pub struct Reloader {
    path: PathBuf,
    current: Mutex<Config>,
    gate: Live,
}

impl Reloader {
    pub fn new(path: &Path, config: Config, gate: Live) -> Reloader {
        Reloader {
            path: path.to_path_buf(),
            current: Mutex::new(config),
            gate,
        }
    }

    /// Reads, checks and applies the file; on any error the configuration in force stays.
    pub fn reload(&self) -> Result<Config, ReloadError> {
        let new = Config::load(&self.path)?;
        let mut current = self.current.lock();
        let refused = restart_only(&current, &new);
        if !refused.is_empty() {
            return Err(ReloadError::RestartOnly(refused));
        }
        let gate = crate::app::build_gate(&new, Some(self.gate.current()))?;
        self.gate.replace(gate);
        *current = new.clone();
        Ok(new)
    }

    /// Reloads and says how it went, once.
    pub fn reload_and_log(&self) {
        match self.reload() {
            Ok(config) => tracing::info!(
                config = %self.path.display(),
                stores = %config.stores.keys().cloned().collect::<Vec<_>>().join(","),
                signing_key = %config.keys.signing_key_id(),
                "configuration reloaded; new requests use it"
            ),
            Err(e) => tracing::error!(
                config = %self.path.display(),
                error = %e,
                "configuration not reloaded; the previous one stays in force"
            ),
        }
    }
}

/// `linkgate reload --config FILE`: checks the file as the gateway will, then sends `SIGHUP` to
/// the process whose id is in `pid` (or the config's `server.pid_file`). The outcome is in the
/// gateway's log.
pub fn send(config_path: &Path, pid: Option<i32>) -> Result<i32, String> {
    let config = Config::load(config_path)
        .map_err(|e| format!("{e} (nothing sent: the running gateway would refuse it too)"))?;
    let pid = match pid {
        Some(pid) => pid,
        None => {
            let Some(file) = config.server.pid_file.as_ref() else {
                return Err("server.pid_file is not set: pass --pid, or send SIGHUP yourself (kill -HUP, systemctl reload)".into());
            };
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("server.pid_file {}: {e}", file.display()))?;
            text.trim()
                .parse::<i32>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("server.pid_file {}: no process id in it", file.display()))?
        }
    };
    // A stale pid file could name another program now, which SIGHUP would end.
    if let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm")) {
        if !comm.trim().starts_with("linkgate") {
            return Err(format!(
                "process {pid} is `{}`, not linkgate (a stale pid file?); nothing sent",
                comm.trim()
            ));
        }
    }
    // SAFETY: kill(2) with a positive pid and a valid signal number touches no memory.
    let sent = unsafe { libc::kill(pid, libc::SIGHUP) };
    if sent != 0 {
        return Err(format!(
            "cannot signal process {pid}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(pid)
}

/// Writes this process's id to `server.pid_file`, if set.
pub fn write_pid_file(config: &Config) -> std::io::Result<()> {
    match &config.server.pid_file {
        Some(file) => std::fs::write(file, format!("{}\n", std::process::id())),
        None => Ok(()),
    }
}

/// Installs the `SIGHUP` handler now (before the listeners open) and reloads on each signal, on
/// a thread of its own.
pub fn on_sighup(reloader: Reloader) -> std::io::Result<()> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
    std::thread::Builder::new()
        .name("linkgate-reload".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            runtime.block_on(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let mut hangup = match signal(SignalKind::hangup()) {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                while hangup.recv().await.is_some() {
                    tracing::info!("SIGHUP: reloading the configuration");
                    reloader.reload_and_log();
                }
            });
        })?;
    ready_rx
        .recv()
        .unwrap_or_else(|_| Err(std::io::Error::other("the reload thread ended")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[server]
listen = "127.0.0.1:8080"
public_url = "http://127.0.0.1:8080"
[admin]
listen = "127.0.0.1:9090"
token = "admin-token"
[keys]
signing = "k1"
[keys.secrets]
k1 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
k2 = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="
[state]
backend = "embedded"
path = "/tmp/linkgate-reload-test.db"
[stores.docs]
kind = "dir"
root = "/tmp"
"#;

    fn parse(text: &str) -> Config {
        Config::parse(text, Path::new("/tmp/linkgate.toml")).unwrap()
    }

    #[test]
    fn what_a_reload_may_change_and_what_needs_a_restart() {
        let old = parse(BASE);
        assert!(restart_only(&old, &parse(BASE)).is_empty());
        let reloadable = BASE
            .replace("signing = \"k1\"", "signing = \"k2\"")
            .replace("token = \"admin-token\"", "token = \"another-token\"")
            .replace(
                "public_url = \"http://127.0.0.1:8080\"",
                "public_url = \"https://files.example.com\"",
            )
            + "[policy]\nrequire_expiry = true\n[limits]\npage_requests_per_minute = 10\n";
        assert_eq!(restart_only(&old, &parse(&reloadable)), Vec::<&str>::new());
        let moved = BASE
            .replace("127.0.0.1:9090", "127.0.0.1:9091")
            .replace("linkgate-reload-test.db", "other.db")
            + "[log]\nformat = \"json\"\n";
        assert_eq!(
            restart_only(&old, &parse(&moved)),
            ["admin.listen", "[state]", "log.format"]
        );
        // The exporter and its thread are set up at start.
        let traced =
            BASE.to_string() + "[tracing]\nendpoint = \"http://127.0.0.1:4318/v1/traces\"\n";
        assert_eq!(restart_only(&old, &parse(&traced)), ["[tracing]"]);
        let off = BASE.to_string() + "[tracing]\nenabled = false\n";
        assert!(restart_only(&old, &parse(&off)).is_empty());
        let rendered = BASE.to_string() + "[renditions.lowres]\nkind = \"pdf\"\n";
        assert_eq!(
            restart_only(&old, &parse(&rendered)),
            ["[render] or [renditions]"]
        );
    }
}
