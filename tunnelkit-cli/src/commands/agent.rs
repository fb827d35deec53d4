//! `tunnelkit agent` (run the agent) and its clients: `up`, `down`, `reload`, `logs` (`status`
//! is in [`super::status`], `open` in [`super::open`]).

use std::sync::Arc;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tunnelkit_agent::client::{request, ClientError};
use tunnelkit_agent::paths::{profiles_dir, socket_path};
use tunnelkit_agent::protocol::{Request, Response, RouteJson};
use tunnelkit_agent::server::{run_with, AgentConfig};
use tunnelkit_desktop::secrets::Keyring;

use crate::exit::Exit;
use crate::opts::{AgentArgs, NameArgs, SocketArgs};
use crate::prompt::{has_tty, TtyPrompter};

/// Runs the agent until SIGTERM/SIGINT (`cancel`); SIGHUP re-reads the profiles.
pub async fn agent(args: &AgentArgs, cancel: CancellationToken) -> Exit {
    let secrets = match Keyring::from_env() {
        Ok(k) => Arc::new(k),
        Err(e) => {
            eprintln!(
                "tunnelkit agent: keyring: {}",
                tunnelkit_core::error::Chain(&e)
            );
            return Exit::Failure;
        }
    };
    let metrics = match bind_metrics(args).await {
        Ok(m) => m,
        Err(e) => {
            eprintln!("tunnelkit agent: {e}");
            return Exit::Failure;
        }
    };
    let config = AgentConfig {
        socket: socket_path(args.socket.socket.clone()),
        profiles: profiles_dir(args.profiles.clone()),
    };
    let reload = Arc::new(Notify::new());
    let hup = reload.clone();
    tokio::spawn(crate::platform::reload_requests(move |which| {
        tracing::info!("{which}: re-reading the profiles");
        hup.notify_one();
    }));
    let desktop = if args.no_notify {
        tracing::info!("desktop notifications off (--no-notify)");
        None
    } else {
        tunnelkit_agent::notify::Desktop::from_env()
    };
    let services = cancel.child_token();
    let on_registry = |registry: &tunnelkit_agent::registry::RegistryHandle| {
        if let Some(listener) = metrics {
            tunnelkit_agent::metrics::spawn(listener, registry, services.clone());
        }
        if let Some(desktop) = desktop {
            tunnelkit_agent::notify::spawn(desktop, registry, services.clone());
        }
    };
    let result = run_with(config, secrets, reload, cancel, on_registry).await;
    services.cancel();
    match result {
        Ok(()) => Exit::Success,
        Err(e) => {
            eprintln!("tunnelkit agent: {e}");
            Exit::Failure
        }
    }
}

/// Binds `--metrics` (loopback only unless `--metrics-allow-remote`) before the agent starts,
/// so that a taken port or a refused address stops it at once.
async fn bind_metrics(args: &AgentArgs) -> Result<Option<tokio::net::TcpListener>, String> {
    let Some(addr) = args.metrics else {
        return Ok(None);
    };
    tunnelkit_agent::metrics::check_address(addr, args.metrics_allow_remote)
        .map_err(|e| e.to_string())?;
    tunnelkit_core::serve::bind_tcp_addr(addr)
        .map(Some)
        .map_err(|e| format!("metrics: cannot listen on {addr}: {e}"))
}

/// Sends one request to the agent (prompts relayed to the terminal when `interactive`).
pub(crate) async fn call(
    socket: &SocketArgs,
    req: Request,
    interactive: bool,
    cancel: &CancellationToken,
) -> Result<Response, String> {
    let path = socket_path(socket.socket.clone());
    let tty = TtyPrompter;
    let prompter: Option<&dyn tunnelkit_core::Prompter> =
        if interactive { Some(&tty) } else { None };
    let mut quiet = |_: &str| {};
    request(&path, &req, prompter, &mut quiet, cancel)
        .await
        .map_err(|e| e.to_string())
}

/// Prints the agent's answer with `show`, or the error.
pub(crate) fn finish(r: Result<Response, String>, show: impl FnOnce(Response)) -> Exit {
    match r {
        Ok(v) => {
            show(v);
            Exit::Success
        }
        Err(e) => {
            eprintln!("tunnelkit: {e}");
            Exit::Failure
        }
    }
}

/// Seconds since the Unix epoch now.
pub(crate) fn now_secs() -> u64 {
    tunnelkit_agent::protocol::unix_ms(std::time::SystemTime::now()) / 1000
}

/// One route under its profile in the status table: `route dr  standby  READY  42 ms, 12s ago`.
pub fn route_line(r: &RouteJson, now: u64) -> String {
    let role = if r.in_use { "in use" } else { "standby" };
    let ready = match r.ready {
        _ if r.needs_input => "NEEDS INPUT",
        Some(true) if r.hot && !r.in_use => "READY (authenticated)",
        Some(true) => "READY",
        Some(false) => "NOT READY",
        None => "unknown",
    };
    let mut detail = Vec::new();
    if let Some(ms) = r.probe_ms {
        detail.push(format!("{ms} ms"));
    }
    if let Some(t) = r.last_probe {
        detail.push(format!("{}s ago", now.saturating_sub(t)));
    }
    let mut line = format!("route {:<14} {:<8} {:<9}", r.name, role, ready);
    if !detail.is_empty() {
        line.push_str(&format!(" {}", detail.join(", ")));
    }
    if r.needs_input {
        line.push_str(": its login waits for someone to answer (tunnelkit up)");
    } else if let (Some(false), Some(e)) = (r.ready, &r.last_error) {
        line.push_str(&format!(": {e}"));
    }
    line.trim_end().to_string()
}

/// `tunnelkit up NAME`: waits until the profile is up, printing what the agent is doing; on
/// Ctrl-C or SIGTERM it stops waiting at once and says what it was waiting for (the agent keeps
/// trying on its own).
pub async fn up(args: &NameArgs, cancel: &CancellationToken) -> Exit {
    match bring_up(&args.name, &args.socket, cancel).await {
        Ok(line) => {
            println!("{line}");
            Exit::Success
        }
        Err(e) => {
            eprintln!("tunnelkit: {e}");
            Exit::Failure
        }
    }
}

/// Asks the agent to start profile `name` and waits until it is up, relaying its prompts to
/// the terminal (when there is one) and its progress to stderr. Returns `NAME is up via ROUTE`,
/// or why not.
pub(crate) async fn bring_up(
    name: &str,
    socket: &SocketArgs,
    cancel: &CancellationToken,
) -> Result<String, String> {
    let interactive = has_tty();
    let req = Request::Up {
        name: name.to_string(),
        interactive,
    };
    let path = socket_path(socket.socket.clone());
    let tty = TtyPrompter;
    let prompter: Option<&dyn tunnelkit_core::Prompter> =
        if interactive { Some(&tty) } else { None };
    let mut last: Option<String> = None;
    let mut progress = |text: &str| {
        crate::screen::say(&format!("tunnelkit: {name}: {text}"));
        last = Some(text.to_string());
    };
    let r = request(&path, &req, prompter, &mut progress, cancel).await;
    match r {
        Ok(Response::Up { name, route }) => Ok(match route {
            Some(route) => format!("{name} is up via {route}"),
            None => format!("{name} is up"),
        }),
        Ok(_) => Err(format!("the agent did not answer `up {name}`")),
        Err(ClientError::Interrupted) => {
            let doing = last.map(|l| format!(" (last: {l})")).unwrap_or_default();
            Err(format!(
                "interrupted while waiting for {name} to come up{doing}; the agent keeps \
                 trying: see `tunnelkit status`, or `tunnelkit down {name}` to stop it"
            ))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// `tunnelkit down NAME`.
pub async fn down(args: &NameArgs, cancel: &CancellationToken) -> Exit {
    let req = Request::Down {
        name: args.name.clone(),
    };
    finish(call(&args.socket, req, false, cancel).await, |r| {
        if let Response::Down { name, was_running } = r {
            if was_running {
                println!("{name} stopped");
            } else {
                println!("{name} was not running");
            }
        }
    })
}

/// `tunnelkit reload`: prints what changed as one sentence.
pub async fn reload(args: &SocketArgs, cancel: &CancellationToken) -> Exit {
    finish(call(args, Request::Reload, false, cancel).await, |r| {
        if let Response::Reload(summary) = r {
            println!("{summary}");
        }
    })
}

/// `tunnelkit logs NAME`: one event per line, with its local time (RFC 3339).
pub async fn logs(args: &NameArgs, cancel: &CancellationToken) -> Exit {
    let req = Request::Logs {
        name: args.name.clone(),
    };
    finish(call(&args.socket, req, false, cancel).await, |r| {
        if let Response::Logs { lines, .. } = r {
            for l in lines {
                println!("{} {}", local_time(l.unix_ms), l.text);
            }
        }
    })
}

/// Unix milliseconds as local time, RFC 3339 to the second (`2026-11-25T14:38:17+01:00`).
pub fn local_time(unix_ms: u64) -> String {
    let Ok(ms) = i64::try_from(unix_ms) else {
        return unix_ms.to_string();
    };
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t
            .with_timezone(&chrono::Local)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        None => unix_ms.to_string(),
    }
}
