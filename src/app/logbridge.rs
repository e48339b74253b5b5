//! Pingora (and other dependencies) log through the `log` crate. Their records become tracing
//! events of target `pingora` with the record's own target in a `module` field, and nothing
//! else: tracing-log's bridge added `log.file` (a path into the build machine's cargo registry),
//! `log.line` and `log.module_path` to every JSON line. Filter them with `RUST_LOG=pingora=debug`.
//!
//! Two of Pingora's error lines are the client's doing, not the gateway's: a request head the
//! client did not finish (it closed or reset the connection while sending it), on the recipients'
//! listener or the admin listener. Anyone can cause
//! it at will and fill the error log, so it is written as a debug line (see `level_of`).

use tracing::level_filters::LevelFilter;

struct Bridge;

impl log::Log for Bridge {
    fn enabled(&self, _metadata: &log::Metadata<'_>) -> bool {
        // `log::max_level` (set from the filter) is checked by the macros before this.
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let module = record.target();
        let message = record.args();
        // Only error records can be demoted; only they pay for formatting the message twice.
        let level = if record.level() == log::Level::Error {
            level_of(record.level(), module, &message.to_string())
        } else {
            record.level()
        };
        match level {
            log::Level::Error => tracing::error!(target: "pingora", module, "{message}"),
            log::Level::Warn => tracing::warn!(target: "pingora", module, "{message}"),
            log::Level::Info => tracing::info!(target: "pingora", module, "{message}"),
            log::Level::Debug => tracing::debug!(target: "pingora", module, "{message}"),
            log::Level::Trace => tracing::trace!(target: "pingora", module, "{message}"),
        }
    }

    fn flush(&self) {}
}

/// The level a `log` record is written at: its own, except that Pingora's error for a request
/// head the client did not finish (`Fail to proxy: Downstream …` while reading request headers:
/// the client closed or reset the connection part-way) is a debug line, and so is the same
/// failure on the admin listener (`HTTP server fails to read from downstream: …`, Pingora's
/// plain HTTP service: a client that connected and left, a port probe). Pingora marks every such
/// failure as the downstream's; the gateway's own failures never start that way.
fn level_of(level: log::Level, target: &str, message: &str) -> log::Level {
    let client_left = (target == "pingora_proxy"
        && message.starts_with("Fail to proxy: Downstream ")
        && message.contains("while reading request headers"))
        || (target.starts_with("pingora_core::apps")
            && message.starts_with("HTTP server fails to read from downstream: "));
    if level == log::Level::Error && client_left {
        log::Level::Debug
    } else {
        level
    }
}

/// Routes `log` records into tracing; `max` is the most verbose level the filter lets through
/// anywhere (records above it are not even formatted).
pub fn install(max: Option<LevelFilter>) {
    let level = match max.unwrap_or(LevelFilter::TRACE) {
        LevelFilter::OFF => log::LevelFilter::Off,
        LevelFilter::ERROR => log::LevelFilter::Error,
        LevelFilter::WARN => log::LevelFilter::Warn,
        LevelFilter::INFO => log::LevelFilter::Info,
        LevelFilter::DEBUG => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    if log::set_boxed_logger(Box::new(Bridge)).is_ok() {
        log::set_max_level(level);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use log::Level;

    #[test]
    fn a_client_leaving_mid_head_is_not_an_error() {
        for message in [
            "Fail to proxy: Downstream ConnectionClosed context: while reading request headers, bytes already read: 23, downstream session type: h1",
            "Fail to proxy: Downstream ReadError context: while reading request headers cause: Connection reset by peer (os error 104), downstream session type: h1",
        ] {
            assert_eq!(level_of(Level::Error, "pingora_proxy", message), Level::Debug);
        }
        let probe = "HTTP server fails to read from downstream:  ConnectionClosed context: while reading request headers, bytes already read: 1";
        assert_eq!(
            level_of(Level::Error, "pingora_core::apps::http_app", probe),
            Level::Debug,
            "a port probe on the admin listener"
        );
    }

    #[test]
    fn the_gateways_own_failures_stay_errors() {
        let cases = [
            (
                "pingora_proxy",
                "Fail to proxy: Upstream ConnectRefused context: while reading request headers",
            ),
            (
                "pingora_proxy",
                "Fail to filter request:  WriteError context: while writing body, status: 500",
            ),
            (
                "pingora_proxy",
                "Fail to proxy: Downstream WriteError context: while writing body",
            ),
            (
                "pingora_core",
                "Fail to proxy: Downstream ConnectionClosed context: while reading request headers",
            ),
        ];
        for (target, message) in cases {
            assert_eq!(
                level_of(Level::Error, target, message),
                Level::Error,
                "{message}"
            );
        }
        let warn =
            "Fail to proxy: Downstream ConnectionClosed context: while reading request headers";
        assert_eq!(level_of(Level::Warn, "pingora_proxy", warn), Level::Warn);
    }
}
