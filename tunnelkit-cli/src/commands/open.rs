//! `tunnelkit open PROFILE [FORWARD] [--client CMD]`: brings the profile up if it is not (with
//! `up`'s prompts on the terminal), then runs the RDP or VNC client on the forward's local end
//! and waits for it. Which forward and which client: [`crate::remote_desktop`].

use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tunnelkit_agent::protocol::{ProfileJson, ProfileState, Request, Response};

use super::agent::{bring_up, call};
use crate::exit::Exit;
use crate::opts::OpenArgs;
use crate::remote_desktop::{
    choose, endpoint, fill, parse_client, pick_forward, port_of, OpenError, Protocol,
};

/// After Ctrl-C or SIGTERM the client gets this long to exit after our SIGTERM, then SIGKILL.
const CLIENT_STOP_GRACE: Duration = Duration::from_secs(5);

/// Runs `tunnelkit open`.
pub async fn run(args: &OpenArgs, cancel: &CancellationToken) -> Exit {
    match open(args, cancel).await {
        Ok(exit) => exit,
        Err(e) => {
            eprintln!("tunnelkit open: {e}");
            Exit::Failure
        }
    }
}

async fn profile(args: &OpenArgs, cancel: &CancellationToken) -> Result<ProfileJson, String> {
    match call(&args.socket, Request::Status, false, cancel).await? {
        Response::Status { profiles } => profiles
            .into_iter()
            .find(|p| p.name == args.name)
            .ok_or_else(|| format!("no profile named {}", args.name)),
        _ => Err("the agent answered another question".into()),
    }
}

async fn open(args: &OpenArgs, cancel: &CancellationToken) -> Result<Exit, String> {
    let mut p = profile(args, cancel).await?;
    // Everything that can be refused is refused before the profile is started.
    let index = pick_forward(&p.name, &p.forwards, args.forward.as_deref()).map_err(text)?;
    let remote = p.forwards[index].remote.clone();
    let argv = match &args.client {
        Some(command) => parse_client(command).map_err(text)?,
        None => {
            let protocol = port_of(&remote)
                .and_then(Protocol::of_port)
                .ok_or_else(|| {
                    text(OpenError::UnknownPort {
                        remote: remote.clone(),
                    })
                })?;
            choose(protocol, find_program).map_err(text)?
        }
    };
    if !matches!(
        p.state,
        ProfileState::Up | ProfileState::Degraded | ProfileState::Partial
    ) {
        let up = bring_up(&p.name, &args.socket, cancel).await?;
        eprintln!("tunnelkit: {up}");
        p = profile(args, cancel).await?;
    }
    let forward = p
        .forwards
        .get(index)
        .ok_or_else(|| format!("{}: its forwards changed while it came up", p.name))?;
    let (host, port) = endpoint(&forward.local).map_err(text)?;
    let argv = fill(&argv, &host, port);
    eprintln!(
        "tunnelkit: {} ({}) at {host}:{port}: starting {}",
        p.name,
        forward.remote,
        argv.join(" ")
    );
    run_client(&argv, cancel).await
}

fn text(e: OpenError) -> String {
    e.to_string()
}

/// Starts the client with this terminal and waits. Ctrl-C reaches it as well (same process
/// group); SIGTERM to tunnelkit alone is passed on, then SIGKILL after [`CLIENT_STOP_GRACE`].
async fn run_client(argv: &[String], cancel: &CancellationToken) -> Result<Exit, String> {
    let (program, rest) = argv.split_first().ok_or("empty client command")?;
    let mut child = tokio::process::Command::new(program)
        .args(rest)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    let status = tokio::select! {
        s = child.wait() => s,
        _ = cancel.cancelled() => {
            crate::platform::terminate(&mut child);
            match tokio::time::timeout(CLIENT_STOP_GRACE, child.wait()).await {
                Ok(_) => {}
                Err(_) => {
                    let _ = child.kill().await;
                }
            }
            return Ok(Exit::Success);
        }
    }
    .map_err(|e| format!("{program}: {e}"))?;
    if status.success() {
        return Ok(Exit::Success);
    }
    Err(match status.code() {
        Some(code) => format!("{program} exited with status {code}"),
        None => format!("{program} was ended by a signal ({status})"),
    })
}

/// `name` on PATH, as an executable file.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find_map(|d| crate::platform::program_in(&d, name))
}
