//! `tunnelkit [options] destination`: the `ssh -N -L` face. Binds the forwards, runs the tunnel,
//! prints each local address once the first route is up, and runs until Ctrl-C/SIGTERM/SIGHUP
//! (exit 0) or until it gives up (exit 255). With `-f` it goes to the background at that point
//! (see [`crate::background`]).
//!
//! Messages: the tunnel's events are reported here, not by the core's own log lines, so that a
//! failure is told once: a route failure that ends the run is the final `tunnelkit: ...` line
//! only; one that is followed by another attempt is a warning of its own.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tunnelkit_core::prompt::SecretString;
use tunnelkit_core::{
    bind_forward, Event, Forward, ForwardKind, NoPrompt, NoSecrets, Prompter, SecretKey,
    SecretStore, SecretStoreError, Services, Tunnel,
};
use tunnelkit_desktop::secrets::Keyring;

use crate::background;
use crate::exit::Exit;
use crate::opts::{similar_subcommand, SshArgs};
use crate::prompt::{has_tty, TtyPrompter};
use crate::resolve::{resolve, Resolved, UsageError};

/// Checks and resolves the flags, printing what is wrong (once) on failure.
fn resolved(args: &SshArgs, interactive: bool) -> Result<Resolved, ()> {
    if let Err(e) = args.check_values() {
        eprintln!("tunnelkit: {e}");
        return Err(());
    }
    match resolve(args, interactive) {
        Ok(r) => Ok(r),
        Err(e) => {
            let typo = args
                .destination
                .as_deref()
                .filter(|_| {
                    args.local.is_empty() && args.dynamic.is_empty() && args.remote.is_empty()
                })
                .and_then(|d| similar_subcommand(d).map(|s| (d, s)));
            match typo {
                Some((word, cmd)) => eprintln!(
                    "tunnelkit: `{word}` is not a command; did you mean `tunnelkit {cmd}`? \
                     (As a destination: {e}.)"
                ),
                None if args.background && matches!(e, UsageError::NoForwards) => eprintln!(
                    "tunnelkit: Cannot fork into background without a forward to keep open: \
                     give -L or -R [bind_address:]port:host:hostport or -D [bind_address:]port \
                     (or LocalForward/RemoteForward/DynamicForward in ssh_config)."
                ),
                None => eprintln!("tunnelkit: {e}"),
            }
            Err(())
        }
    }
}

/// The checks `-f` makes before going to the background (usage errors exit 255 at once): true
/// when the command line resolves; otherwise the error has been printed.
pub fn check(args: &SshArgs) -> bool {
    resolved(args, has_tty()).is_ok()
}

/// The OS keyring (the store `tunnelkit secret` and the agent use), or none when it cannot be
/// used here; then passwords and passphrases are asked for as usual.
fn secret_store() -> Arc<dyn SecretStore> {
    let probe = SecretKey::Password {
        user: "probe".into(),
        host: "tunnelkit.invalid".into(),
        port: 22,
    };
    let keyring = Keyring::from_env().and_then(|k| Ok(k.get(&probe).map(|_| k)?));
    match keyring {
        Ok(k) => {
            tracing::debug!("secrets: looking in {k:?} before asking anyone");
            Arc::new(Logged(k))
        }
        Err(e) => {
            tracing::debug!(
                "secrets: no keyring ({}); passwords and passphrases are asked for",
                tunnelkit_core::error::Chain(&e)
            );
            Arc::new(NoSecrets)
        }
    }
}

/// A keyring that says which store supplied a secret (its name, never its value).
struct Logged(Keyring);

impl SecretStore for Logged {
    fn get(&self, key: &SecretKey) -> Result<Option<SecretString>, SecretStoreError> {
        let r = self.0.get(key);
        if let Ok(Some(_)) = &r {
            tracing::info!("secrets: {} taken from {:?}", key.entry_name(), self.0);
        }
        r
    }
}

/// Runs the tunnel described by the flags; `cancel` is fired by the caller's signal handler.
pub async fn run(args: &SshArgs, cancel: CancellationToken) -> Exit {
    let interactive = has_tty();
    let Ok(resolved) = resolved(args, interactive) else {
        return Exit::Failure;
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
                eprintln!(
                    "tunnelkit: {e}: Could not request local forwarding (ExitOnForwardFailure=yes)."
                );
                return Exit::Failure;
            }
            Err(e) => tracing::warn!("{e}; the other forwards stay up"),
        }
    }
    if listeners.is_empty() && config.remote_forwards.is_empty() {
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
    // One tunnel per process: nothing to share a session with (ssh's ControlMaster sockets
    // are a different protocol; `-v` says so when ssh_config sets them).
    let services = Services {
        prompter,
        secrets: secret_store(),
        pool: None,
    };
    let forwards = config.forwards.clone();
    let remote_pending = vec![true; config.remote_forwards.len()];
    let (mut handle, mut events) =
        match Tunnel::start_subscribed(config, listeners, services, cancel) {
            Ok(h) => h,
            Err(e) => {
                eprintln!("tunnelkit: {e}");
                return Exit::Failure;
            }
        };
    let mut report = Report {
        forwards,
        addrs: handle.local_addrs().to_vec(),
        announced: false,
        held: None,
        background: background::is_child(),
        keep_stderr: args.verbose > 0,
        route_up: false,
        remote_pending,
        exit_on_forward_failure: resolved.exit_on_forward_failure,
        forward_failed: None,
    };
    let stop = handle.cancel_token().clone();
    let wait = handle.wait();
    tokio::pin!(wait);
    let result = loop {
        tokio::select! {
            r = &mut wait => break r,
            ev = events.recv() => match ev {
                Ok(ev) => {
                    report.event(ev);
                    if let Some(e) = report.forward_failed.take() {
                        // ExitOnForwardFailure: the first request of a remote forward was refused.
                        eprintln!("tunnelkit: {e}");
                        stop.cancel();
                        let _ = (&mut wait).await;
                        return Exit::Failure;
                    }
                }
                Err(RecvError::Lagged(n)) => tracing::debug!("{n} events not shown"),
                Err(RecvError::Closed) => break (&mut wait).await,
            },
        }
    };
    // The events sent before the end (the last failure among them).
    while let Ok(ev) = events.try_recv() {
        report.event(ev);
    }
    match result {
        Ok(()) => {
            report.flush();
            Exit::Success
        }
        Err(e) => {
            // The failure that ended the run is told by this line alone.
            report.held = None;
            eprintln!("tunnelkit: {e}");
            Exit::Failure
        }
    }
}

/// What the command prints about a running tunnel.
struct Report {
    forwards: Vec<Forward>,
    addrs: Vec<Option<SocketAddr>>,
    /// The `Forwarding` lines were printed (once, when the first route came up).
    announced: bool,
    /// A route failure not printed yet: if the run ends on it, the final line tells it.
    held: Option<Event>,
    /// This is the child of a `-f` run: detach once announced.
    background: bool,
    keep_stderr: bool,
    /// A route came up (the `Forwarding` lines may be printed).
    route_up: bool,
    /// Remote forwards never active yet, by index.
    remote_pending: Vec<bool>,
    /// `ExitOnForwardFailure`: a refused first request of a remote forward ends the run, and
    /// `-f` waits until every remote forward is active.
    exit_on_forward_failure: bool,
    /// Set when the run must end on a forward failure (the message).
    forward_failed: Option<String>,
}

impl Report {
    fn flush(&mut self) {
        if let Some(ev) = self.held.take() {
            tracing::warn!("{ev}");
        }
    }

    fn event(&mut self, ev: Event) {
        // ExitOnForwardFailure: a refused first request ends the run, told by the final line.
        if let Event::RemoteForwardRefused {
            remote,
            bind,
            cause,
            ..
        } = &ev
        {
            if self.exit_on_forward_failure
                && self.remote_pending.get(*remote).copied().unwrap_or(false)
            {
                self.forward_failed = Some(format!(
                    "remote port forwarding failed for listen {bind}: {cause} \
                     (ExitOnForwardFailure=yes)"
                ));
                return;
            }
        }
        match &ev {
            Event::Stopped { error: Some(_) } => return, // the final line tells it
            Event::RouteFailed { .. } => {
                self.flush();
                self.held = Some(ev);
                return;
            }
            _ => self.flush(),
        }
        match &ev {
            Event::ConnectionFailed { .. }
            | Event::Failover { .. }
            | Event::RemoteForwardRefused { .. }
            | Event::RemoteConnectionFailed { .. }
            | Event::StandbyBroken { .. } => tracing::warn!("{ev}"),
            Event::Connecting { .. }
            | Event::Listening { .. }
            | Event::RemoteForwardRequested { .. } => tracing::debug!("{ev}"),
            // As ssh, on stderr whatever the log level.
            Event::RemoteForwardActive {
                port,
                allocated: true,
                target,
                ..
            } => eprintln!("Allocated port {port} for remote forward to {target}"),
            _ => tracing::info!("{ev}"),
        }
        match &ev {
            Event::RouteUp { .. } => self.route_up = true,
            Event::RemoteForwardActive { remote, .. } => {
                if let Some(p) = self.remote_pending.get_mut(*remote) {
                    *p = false;
                }
            }
            _ => {}
        }
        // With ExitOnForwardFailure, as ssh -f: only once every remote forward is set up.
        let remote_ready = !self.exit_on_forward_failure || !self.remote_pending.contains(&true);
        if self.route_up && remote_ready {
            self.announce();
        }
    }

    /// Prints each forward's local address, once, and goes to the background with `-f`.
    fn announce(&mut self) {
        if self.announced {
            return;
        }
        self.announced = true;
        {
            let mut out = std::io::stdout().lock();
            for (f, addr) in self.forwards.iter().zip(&self.addrs) {
                if let Some(a) = addr {
                    let _ = match f.kind {
                        ForwardKind::Dynamic => writeln!(out, "Forwarding {a} -> SOCKS proxy"),
                        _ => writeln!(out, "Forwarding {a} -> {}", f.remote_label()),
                    };
                }
            }
            let _ = out.flush();
        }
        if self.background {
            if let Err(e) = background::detach(self.keep_stderr) {
                tracing::error!(
                    "-f: could not go to the background: {}",
                    tunnelkit_core::error::Chain(&e)
                );
            }
        }
    }
}
