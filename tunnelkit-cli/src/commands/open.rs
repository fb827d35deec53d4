//! `tunnelkit open PROFILE [FORWARD] [--client CMD]`: brings the profile up if it is not (with
//! `up`'s prompts on the terminal), then runs the RDP or VNC client on the forward's local end
//! and waits for it. Which forward and which client: [`crate::remote_desktop`].

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tunnelkit_agent::protocol::{ProfileJson, ProfileState, Request, Response};

use super::agent::{bring_up, call};
use crate::exit::Exit;
use crate::opts::OpenArgs;
use crate::remote_desktop::{
    choose, endpoint, fill, parse_client, pick_forward, port_of, rdp_file, Chosen, Input,
    OpenError, Os, Protocol,
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
    let chosen = match &args.client {
        Some(command) => Chosen {
            argv: parse_client(command).map_err(text)?,
            input: Input::Address,
        },
        None => {
            let protocol = port_of(&remote)
                .and_then(Protocol::of_port)
                .ok_or_else(|| {
                    text(OpenError::UnknownPort {
                        remote: remote.clone(),
                    })
                })?;
            choose(Os::current(), protocol, find_program).map_err(text)?
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
    // Held until the client has exited, then removed (dropped).
    let file = match chosen.input {
        Input::Address => None,
        // No user-name hint: a profile names SSH users (its hops), not desktop accounts.
        Input::RdpFile => Some(write_rdp_file(
            &p.name,
            &rdp_file::contents(&host, port, None).map_err(text)?,
        )?),
    };
    let argv = fill(&chosen.argv, &host, port, file.as_deref());
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

/// A new `.rdp` file with `contents`, readable by its owner alone (0600 on Unix; on Windows it
/// is in the user's own `%TEMP%`), removed when the returned path is dropped. The handle is
/// closed before the client opens it.
fn write_rdp_file(profile: &str, contents: &[u8]) -> Result<tempfile::TempPath, String> {
    let failed = |e: std::io::Error| format!("cannot write the .rdp file: {e}");
    let mut file = tempfile::Builder::new()
        .prefix(&format!("tunnelkit-{profile}-"))
        .suffix(".rdp")
        .tempfile()
        .map_err(failed)?;
    file.write_all(contents).map_err(failed)?;
    file.flush().map_err(failed)?;
    Ok(file.into_temp_path())
}

/// `name` on PATH, as an executable file.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find_map(|d| crate::platform::program_in(&d, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rdp_file_is_private_holds_the_contents_and_is_removed_when_dropped() {
        let bytes = rdp_file::contents("127.0.0.5", 3389, None).unwrap();
        let path = write_rdp_file("finance-rdp", &bytes).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("tunnelkit-finance-rdp-") && name.ends_with(".rdp"),
            "{name}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        }
        let kept = path.to_path_buf();
        drop(path);
        assert!(!kept.exists(), "{}", kept.display());
    }
}
