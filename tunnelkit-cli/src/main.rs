//! The `tunnelkit` binary: parse, log, signals, dispatch. Everything else is in the library.

use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;
use tunnelkit_cli::signals::{hangup_ignored_at_start, stop_on_signal};
use tunnelkit_cli::{background, log_filter, opts, run, Exit, Opts};

fn main() -> std::process::ExitCode {
    // A shell asking what TAB should offer: answered and exited here, before any output.
    tunnelkit_cli::commands::completions::complete_from_env();
    let opts = match Opts::try_parse() {
        Ok(o) => o,
        Err(e) => {
            let usage = e.use_stderr();
            if usage {
                eprint!("{}", opts::parse_error_text(&e));
            } else {
                let _ = e.print();
            }
            // Like ssh, a usage error exits 255; --help and --version exit 0.
            return if usage { Exit::Failure } else { Exit::Success }.into();
        }
    };
    let tunnel = opts.command.is_none() && !opts.ssh.print_config;
    let level = match &opts.command {
        Some(c) if c.is_quiet() && opts.verbosity() == 0 && !opts.ssh.quiet => "warn",
        _ => log_filter(opts.verbosity(), opts.ssh.quiet, tunnel),
    };
    let mut filter =
        EnvFilter::try_from_env("TUNNELKIT_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    if tunnel {
        // The tunnel's events are reported by the command itself (one line per failure).
        if let Ok(d) = "tunnelkit_core::status=off".parse() {
            filter = filter.add_directive(d);
        }
    }
    let log_file = match &opts.command {
        Some(opts::Command::Agent(a)) if a.autostart.is_none() => a.log_file.as_deref(),
        _ => None,
    };
    if let Some(path) = log_file {
        let file = match open_log_file(path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("tunnelkit agent: --log-file {}: {e}", path.display());
                return Exit::Failure.into();
            }
        };
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::sync::Arc::new(file))
            .with_target(false)
            .with_ansi(false)
            .init();
        return finish(opts, tunnel);
    }
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Held while a prompt waits on the terminal, so no line is printed over it.
        .with_writer(tunnelkit_cli::screen::LogWriter)
        .with_target(false);
    // Under systemd (stderr is the journal): priorities as `<N>` prefixes, no timestamps.
    let journal = std::env::var("JOURNAL_STREAM").ok();
    if tunnelkit_desktop::journal::stderr_is_journal(journal.as_deref()) {
        logs.with_ansi(false)
            .event_format(tunnelkit_desktop::journal::JournalFormat)
            .init();
    } else {
        logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    finish(opts, tunnel)
}

/// Everything after logging is set up: `-f`, the descriptor limit, signals, the command.
fn finish(opts: Opts, tunnel: bool) -> std::process::ExitCode {
    if tunnel && opts.ssh.background && !background::is_child() {
        // Before any runtime or thread exists: the child does the work (see background.rs).
        return if tunnelkit_cli::commands::connect::check(&opts.ssh) {
            background::run_parent()
        } else {
            Exit::Failure
        }
        .into();
    }
    // Many forwarded connections need many descriptors: raise the soft limit to the hard one.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!("open file limit: {n}"),
        Err(e) => tracing::warn!("could not raise the open file limit: {e}"),
    }
    // SIGHUP stops a tunnel (the terminal went away, as for ssh) unless it was ignored at start
    // (nohup); the agent handles SIGHUP itself (re-read profiles), the other commands are short.
    let hangup = tunnel && !hangup_ignored_at_start();
    // A tunnel runs on one thread, as ssh does: its data path is a few tasks that hand every
    // burst to each other, and on one thread that costs no wake-up of another (docs/performance.md,
    // "CPU per byte"). Blocking work (terminal prompts, file reads, key decryption) runs on the
    // blocking pool. The agent and the other commands keep a thread per core.
    let mut runtime = if tunnel {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match runtime.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tunnelkit: cannot start the runtime: {e}");
            return Exit::Failure.into();
        }
    };
    let exit = runtime.block_on(async {
        let cancel = CancellationToken::new();
        tokio::spawn(stop_on_signal(cancel.clone(), hangup));
        run(opts, cancel).await
    });
    // A prompt may still be blocked reading the terminal (Ctrl-C during `tunnelkit up`): do not
    // wait for it.
    runtime.shutdown_timeout(EXIT_GRACE);
    exit.into()
}

/// The agent's `--log-file`, opened for appending (its directory created).
fn open_log_file(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

/// How long the runtime waits for blocking work (a terminal read) at exit.
const EXIT_GRACE: std::time::Duration = std::time::Duration::from_millis(200);
