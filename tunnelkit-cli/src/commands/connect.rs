//! `tunnelkit [options] destination`: the `ssh -N -L` face. Binds the forwards, prints each
//! local address once, runs the tunnel until Ctrl-C/SIGTERM (exit 0) or until it gives up
//! (exit 255).

use std::io::Write;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tunnelkit_core::{bind_forward, NoPrompt, Prompter, Services, Tunnel};

use crate::exit::Exit;
use crate::opts::SshArgs;
use crate::prompt::{has_tty, TtyPrompter};
use crate::resolve::resolve;

/// Runs the tunnel described by the flags; `cancel` is fired by the caller's signal handler.
pub async fn run(args: &SshArgs, cancel: CancellationToken) -> Exit {
    let interactive = has_tty();
    let resolved = match resolve(args, interactive) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tunnelkit: {e}");
            return Exit::Failure;
        }
    };
    for k in &resolved.ignored_options {
        tracing::debug!("option {k} is accepted but not used by tunnelkit");
    }
    let config = resolved.config;
    let mut listeners = Vec::new();
    for (i, f) in config.forwards.iter().enumerate() {
        match bind_forward(i, f).await {
            Ok(l) => listeners.push(l),
            Err(e) if resolved.exit_on_forward_failure => {
                eprintln!("tunnelkit: {e}");
                eprintln!(
                    "tunnelkit: Could not request local forwarding (ExitOnForwardFailure=yes)."
                );
                return Exit::Failure;
            }
            Err(e) => eprintln!("tunnelkit: {e}; the other forwards stay up"),
        }
    }
    if listeners.is_empty() {
        eprintln!("tunnelkit: no forward could be bound");
        return Exit::Failure;
    }
    let batch = config
        .routes
        .iter()
        .flat_map(|r| &r.hops)
        .any(|h| h.options.auth.batch_mode);
    let prompter: Arc<dyn Prompter> = if interactive && !batch {
        Arc::new(TtyPrompter)
    } else {
        Arc::new(NoPrompt)
    };
    let services = Services {
        prompter,
        ..Default::default()
    };
    let forwards = config.forwards.clone();
    let handle = match Tunnel::start(config, listeners, services, cancel) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("tunnelkit: {e}");
            return Exit::Failure;
        }
    };
    {
        let mut out = std::io::stdout().lock();
        for (f, addr) in forwards.iter().zip(handle.local_addrs()) {
            if let Some(a) = addr {
                let _ = writeln!(out, "Forwarding {a} -> {}", f.target);
            }
        }
        let _ = out.flush();
    }
    match handle.wait().await {
        Ok(()) => Exit::Success,
        Err(e) => {
            eprintln!("tunnelkit: {e}");
            Exit::Failure
        }
    }
}
