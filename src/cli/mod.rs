//! The `linkgate` command line (binary-only concerns): [`args`] says what it accepts,
//! [`commands`] what each command does, [`demo`] the try-out, [`client`] the admin API client
//! that `link` and `audit` use.

pub mod args;
pub mod client;
pub mod commands;
pub mod demo;
pub mod shares;

use std::process::ExitCode;

/// Runs one command line; the process exits with what it returns.
pub fn run(cli: args::Cli) -> ExitCode {
    match cli.command {
        args::Command::Demo { config } => demo::run(&config),
        command => commands::run(command),
    }
}
