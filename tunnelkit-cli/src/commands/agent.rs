//! `tunnelkit agent` (run the agent) and its clients: `status`, `up`, `down`, `reload`, `logs`.

use std::sync::Arc;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tunnelkit_agent::client::{request, ClientError};
use tunnelkit_agent::paths::{profiles_dir, socket_path};
use tunnelkit_agent::protocol::{Request, Response};
use tunnelkit_agent::secrets::Keyring;
use tunnelkit_agent::server::{run as run_agent, AgentConfig};

use crate::exit::Exit;
use crate::opts::{AgentArgs, NameArgs, SocketArgs, StatusArgs};
use crate::prompt::{has_tty, TtyPrompter};

/// Runs the agent until SIGTERM/SIGINT (`cancel`); SIGHUP re-reads the profiles.
pub async fn agent(args: &AgentArgs, cancel: CancellationToken) -> Exit {
    let secrets = match Keyring::from_env() {
        Ok(k) => Arc::new(k),
        Err(e) => {
            eprintln!("tunnelkit agent: keyring: {e}");
            return Exit::Failure;
        }
    };
    let config = AgentConfig {
        socket: socket_path(args.socket.socket.clone()),
        profiles: profiles_dir(args.profiles.clone()),
    };
    let reload = Arc::new(Notify::new());
    let hup = reload.clone();
    tokio::spawn(async move {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            while s.recv().await.is_some() {
                tracing::info!("SIGHUP: re-reading the profiles");
                hup.notify_one();
            }
        }
    });
    match run_agent(config, secrets, reload, cancel).await {
        Ok(()) => Exit::Success,
        Err(e) => {
            eprintln!("tunnelkit agent: {e}");
            Exit::Failure
        }
    }
}

async fn call(
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

fn finish(r: Result<Response, String>, show: impl FnOnce(Response)) -> Exit {
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

/// `tunnelkit status [--json]`.
pub async fn status(args: &StatusArgs, cancel: &CancellationToken) -> Exit {
    let json = args.json;
    finish(
        call(&args.socket, Request::Status, false, cancel).await,
        |r| {
            let Response::Status { profiles } = r else {
                return;
            };
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&profiles).unwrap_or_default()
                );
                return;
            }
            println!(
                "{:<20} {:<11} {:<14} {:<8} {:<44} {:>9} {:>10} {:>10}",
                "PROFILE", "STATE", "ROUTE", "KIND", "FORWARDS", "CONN", "IN", "OUT"
            );
            for p in profiles {
                let route = p.route.clone().unwrap_or_else(|| "-".into());
                let state = p.state.as_str();
                if p.forwards.is_empty() {
                    println!("{:<20} {:<11} {:<14}", p.name, state, route);
                }
                for (i, f) in p.forwards.iter().enumerate() {
                    let (name, state, route) = if i == 0 {
                        (p.name.as_str(), state, route.as_str())
                    } else {
                        ("", "", "")
                    };
                    println!(
                        "{:<20} {:<11} {:<14} {:<8} {:<44} {:>9} {:>10} {:>10}",
                        name,
                        state,
                        route,
                        f.kind.as_str(),
                        format!("{} -> {}", f.local, f.remote),
                        format!("{}/{}", f.active, f.total),
                        f.bytes_in,
                        f.bytes_out
                    );
                }
                if let Some(e) = &p.last_error {
                    println!("{:<20} last error: {e}", "");
                }
            }
        },
    )
}

/// `tunnelkit up NAME`: waits until the profile is up, printing what the agent is doing; on
/// Ctrl-C or SIGTERM it stops waiting at once and says what it was waiting for (the agent keeps
/// trying on its own).
pub async fn up(args: &NameArgs, cancel: &CancellationToken) -> Exit {
    let interactive = has_tty();
    let name = args.name.clone();
    let req = Request::Up {
        name: name.clone(),
        interactive,
    };
    let path = socket_path(args.socket.socket.clone());
    let tty = TtyPrompter;
    let prompter: Option<&dyn tunnelkit_core::Prompter> =
        if interactive { Some(&tty) } else { None };
    let mut last: Option<String> = None;
    let mut progress = |text: &str| {
        eprintln!("tunnelkit: {name}: {text}");
        last = Some(text.to_string());
    };
    let r = request(&path, &req, prompter, &mut progress, cancel).await;
    match r {
        Ok(Response::Up { name, route }) => {
            match route {
                Some(route) => println!("{name} is up via {route}"),
                None => println!("{name} is up"),
            }
            Exit::Success
        }
        Ok(_) => Exit::Failure,
        Err(ClientError::Interrupted) => {
            let doing = last.map(|l| format!(" (last: {l})")).unwrap_or_default();
            eprintln!(
                "tunnelkit: interrupted while waiting for {} to come up{doing}; the agent keeps \
                 trying: see `tunnelkit status`, or `tunnelkit down {}` to stop it",
                args.name, args.name
            );
            Exit::Failure
        }
        Err(e) => {
            eprintln!("tunnelkit: {e}");
            Exit::Failure
        }
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
