//! Pingora (and other dependencies) log through the `log` crate. Their records become tracing
//! events of target `pingora` with the record's own target in a `module` field, and nothing
//! else: tracing-log's bridge added `log.file` (a path into the build machine's cargo registry),
//! `log.line` and `log.module_path` to every JSON line. Filter them with `RUST_LOG=pingora=debug`.

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
        match record.level() {
            log::Level::Error => tracing::error!(target: "pingora", module, "{message}"),
            log::Level::Warn => tracing::warn!(target: "pingora", module, "{message}"),
            log::Level::Info => tracing::info!(target: "pingora", module, "{message}"),
            log::Level::Debug => tracing::debug!(target: "pingora", module, "{message}"),
            log::Level::Trace => tracing::trace!(target: "pingora", module, "{message}"),
        }
    }

    fn flush(&self) {}
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
