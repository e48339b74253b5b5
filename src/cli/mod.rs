//! The `linkgate` command line (binary-only concerns): [`args`] says what it accepts,
//! [`commands`] what each command does, [`demo`] the try-out, [`client`] the admin API client
//! that `link`, `share`, `webhooks` and `audit` use, [`links`], [`shares`] and [`webhooks`] the
//! request bodies and output of those commands, [`table`] the human-readable output (tables and
//! records).

pub mod args;
pub mod client;
pub mod commands;
pub mod demo;
pub mod links;
pub mod shares;
pub mod table;
pub mod webhooks;

use std::process::ExitCode;

/// Runs one command line; the process exits with what it returns.
pub fn run(cli: args::Cli) -> ExitCode {
    match cli.command {
        args::Command::Demo { config } => demo::run(&config),
        // Before anything else starts: no runtime, no threads, no files.
        args::Command::RenderWorker { spec } => crate::render::worker::main(&spec),
        command => commands::run(command),
    }
}
