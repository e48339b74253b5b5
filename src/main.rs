//! The `linkgate` command: a thin shell over the library.

use std::process::ExitCode;

use clap::Parser;

use linkgate::cli::args::Cli;

/// mimalloc: less time in malloc on the request path, and freed stream buffers go back to the
/// system instead of fragmenting per-thread arenas (flat memory under many slow downloads).
/// `--features system-alloc` builds with the system allocator instead, for heap profilers
/// (heaptrack sees only malloc).
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    linkgate::cli::run(Cli::parse())
}
