//! The `tunnelkit` command line: ssh-compatible flags, the demo, the agent and its clients.
//! `main.rs` only parses, sets up logging and signals, and calls [`run`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod commands;
pub mod exit;
pub mod opts;
pub mod prompt;
pub mod resolve;

use tokio_util::sync::CancellationToken;

pub use exit::Exit;
pub use opts::{Command, Opts};

/// Runs what the command line asks for. `cancel` fires on Ctrl-C/SIGTERM.
pub async fn run(opts: Opts, cancel: CancellationToken) -> Exit {
    match opts.command {
        Some(Command::Demo(args)) => commands::demo::run(&args, cancel).await,
        Some(Command::Agent(args)) => commands::agent::agent(&args, cancel).await,
        Some(Command::Status(args)) => commands::agent::status(&args, &cancel).await,
        Some(Command::Up(args)) => commands::agent::up(&args, &cancel).await,
        Some(Command::Down(args)) => commands::agent::down(&args, &cancel).await,
        Some(Command::Reload(args)) => commands::agent::reload(&args, &cancel).await,
        Some(Command::Logs(args)) => commands::agent::logs(&args, &cancel).await,
        Some(Command::Secret(args)) => commands::secret::run(&args),
        None if opts.ssh.print_config => match resolve::print_config(&opts.ssh) {
            Ok(text) => {
                print!("{text}");
                Exit::Success
            }
            Err(e) => {
                eprintln!("tunnelkit: {e}");
                Exit::Failure
            }
        },
        None => commands::connect::run(&opts.ssh, cancel).await,
    }
}

/// The log filter for `-q` and the number of `-v`: tunnel events at info by default.
pub fn log_filter(verbose: u8, quiet: bool) -> &'static str {
    match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn,tunnelkit_core=info,tunnelkit_agent=info,tunnelkit_cli=info",
        (false, 1) => "info,tunnelkit_core=debug,tunnelkit_agent=debug,tunnelkit_cli=debug",
        (false, 2) => "debug",
        _ => "trace",
    }
}
