//! `tunnelkit agent` (run the agent) and its clients: `status`, `up`, `down`, `reload`, `logs`.

use std::sync::Arc;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tunnelkit_agent::client::request;
use tunnelkit_agent::paths::{profiles_dir, socket_path};
use tunnelkit_agent::protocol::{ProfileJson, Request};
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
) -> Result<serde_json::Value, String> {
    let path = socket_path(socket.socket.clone());
    let tty = TtyPrompter;
    let prompter: Option<&dyn tunnelkit_core::Prompter> =
        if interactive { Some(&tty) } else { None };
    request(&path, &req, prompter).await
}

fn finish(r: Result<serde_json::Value, String>, show: impl FnOnce(serde_json::Value)) -> Exit {
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

fn print_text(v: serde_json::Value) {
    match v {
        serde_json::Value::String(s) => println!("{s}"),
        other => println!("{other}"),
    }
}

/// `tunnelkit status [--json]`.
pub async fn status(args: &StatusArgs) -> Exit {
    let json = args.json;
    finish(call(&args.socket, Request::Status, false).await, |v| {
        if json {
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            return;
        }
        let list: Vec<ProfileJson> = serde_json::from_value(v).unwrap_or_default();
        println!(
            "{:<20} {:<11} {:<14} {:<44} {:>9} {:>10} {:>10}",
            "PROFILE", "STATE", "ROUTE", "FORWARDS", "CONN", "IN", "OUT"
        );
        for p in list {
            let route = p.route.clone().unwrap_or_else(|| "-".into());
            if p.forwards.is_empty() {
                println!("{:<20} {:<11} {:<14}", p.name, p.state, route);
            }
            for (i, f) in p.forwards.iter().enumerate() {
                let (name, state, route) = if i == 0 {
                    (p.name.as_str(), p.state.as_str(), route.as_str())
                } else {
                    ("", "", "")
                };
                println!(
                    "{:<20} {:<11} {:<14} {:<44} {:>9} {:>10} {:>10}",
                    name,
                    state,
                    route,
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
    })
}

/// `tunnelkit up NAME`.
pub async fn up(args: &NameArgs) -> Exit {
    let interactive = has_tty();
    let req = Request::Up {
        name: args.name.clone(),
        interactive,
    };
    finish(call(&args.socket, req, interactive).await, print_text)
}

/// `tunnelkit down NAME`.
pub async fn down(args: &NameArgs) -> Exit {
    finish(
        call(
            &args.socket,
            Request::Down {
                name: args.name.clone(),
            },
            false,
        )
        .await,
        print_text,
    )
}

/// `tunnelkit reload`.
pub async fn reload(args: &SocketArgs) -> Exit {
    finish(call(args, Request::Reload, false).await, print_text)
}

/// `tunnelkit logs NAME`.
pub async fn logs(args: &NameArgs) -> Exit {
    finish(
        call(
            &args.socket,
            Request::Logs {
                name: args.name.clone(),
            },
            false,
        )
        .await,
        |v| {
            for line in v.as_array().cloned().unwrap_or_default() {
                println!("{}", line.as_str().unwrap_or_default());
            }
        },
    )
}
