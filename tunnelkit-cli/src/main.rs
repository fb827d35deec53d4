//! The `tunnelkit` binary: parse, log, signals, dispatch. Everything else is in the library.

use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;
use tunnelkit_cli::{log_filter, run, Exit, Opts};

fn main() -> std::process::ExitCode {
    let opts = match Opts::try_parse() {
        Ok(o) => o,
        Err(e) => {
            let usage = e.use_stderr();
            let _ = e.print();
            // Like ssh, a usage error exits 255; --help and --version exit 0.
            return if usage { Exit::Failure } else { Exit::Success }.into();
        }
    };
    let filter = EnvFilter::try_from_env("TUNNELKIT_LOG")
        .unwrap_or_else(|_| EnvFilter::new(log_filter(opts.verbosity(), opts.ssh.quiet)));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
    // Many forwarded connections need many descriptors: raise the soft limit to the hard one.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!("open file limit: {n}"),
        Err(e) => tracing::warn!("could not raise the open file limit: {e}"),
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tunnelkit: cannot start the runtime: {e}");
            return Exit::Failure.into();
        }
    };
    let exit = runtime.block_on(async {
        let cancel = CancellationToken::new();
        tokio::spawn(stop_on_signal(cancel.clone()));
        run(opts, cancel).await
    });
    // A prompt may still be blocked reading the terminal (Ctrl-C during `tunnelkit up`): do not
    // wait for it.
    runtime.shutdown_timeout(EXIT_GRACE);
    exit.into()
}

/// How long the runtime waits for blocking work (a terminal read) at exit.
const EXIT_GRACE: std::time::Duration = std::time::Duration::from_millis(200);

/// Cancels on SIGINT or SIGTERM.
async fn stop_on_signal(cancel: CancellationToken) {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
    tracing::info!("stopping");
    cancel.cancel();
}
