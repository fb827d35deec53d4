//! The `tunnelkit` command line: ssh-compatible flags, the demo, the agent and its clients.
//! `main.rs` only parses, sets up logging and signals, and calls [`run`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod background;
pub mod candidates;
pub mod commands;
pub mod exit;
pub mod opts;
pub mod platform;
pub mod prompt;
pub mod remote_desktop;
pub mod resolve;
pub mod screen;
pub mod signals;

use tokio_util::sync::CancellationToken;

pub use exit::Exit;
pub use opts::{Command, Opts};

/// Runs what the command line asks for. `cancel` fires on Ctrl-C/SIGTERM (and SIGHUP for a
/// tunnel).
pub async fn run(opts: Opts, cancel: CancellationToken) -> Exit {
    match opts.command {
        Some(Command::Demo(args)) => commands::demo::run(&args, cancel).await,
        Some(Command::Agent(args)) => match &args.autostart {
            Some(autostart) => commands::autostart::run(autostart),
            None => commands::agent::agent(&args, cancel).await,
        },
        Some(Command::Status(args)) => commands::status::run(&args, &cancel).await,
        Some(Command::Up(args)) => commands::agent::up(&args, &cancel).await,
        Some(Command::Down(args)) => commands::agent::down(&args, &cancel).await,
        Some(Command::Open(args)) => commands::open::run(&args, &cancel).await,
        Some(Command::Reload(args)) => commands::agent::reload(&args, &cancel).await,
        Some(Command::Logs(args)) => commands::agent::logs(&args, &cancel).await,
        Some(Command::Drill(args)) => commands::drill::run(&args, &cancel).await,
        Some(Command::Secret(args)) => commands::secret::run(&args),
        Some(Command::Completions(args)) => commands::completions::run(&args),
        Some(Command::Man) => commands::man::run(),
        None if opts.ssh.print_config => match opts
            .ssh
            .check_values()
            .map_err(resolve::UsageError::from)
            .and_then(|()| resolve::print_config(&opts.ssh))
        {
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

/// The log filter for `-q` and the number of `-v`: tunnel events at info by default. In a
/// tunnel run (`tunnel`), the keyring's choice of store is shown from `-v` on. Commands that
/// answer with a sentence or a document use [`Command::is_quiet`] instead.
pub fn log_filter(verbose: u8, quiet: bool, tunnel: bool) -> &'static str {
    match (quiet, verbose, tunnel) {
        (true, _, _) => "error",
        (false, 0, true) => "warn,tunnelkit_core=info,tunnelkit_cli=info",
        (false, 0, false) => {
            "warn,tunnelkit_core=info,tunnelkit_agent=info,tunnelkit_desktop=info,tunnelkit_cli=info"
        }
        (false, 1, _) => {
            "info,tunnelkit_core=debug,tunnelkit_agent=debug,tunnelkit_desktop=debug,\
             tunnelkit_cli=debug"
        }
        (false, 2, _) => "debug",
        _ => "trace",
    }
}
