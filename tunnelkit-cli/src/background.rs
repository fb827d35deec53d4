//! `-f`: go to the background once the tunnel is up, as `ssh -f -N` does.
//!
//! A tokio program must not `fork()` once its runtime runs, and the forwards must be bound and
//! the first route up before the command returns. So the process that the admin started (the
//! *parent*) starts no runtime: it runs this same program again as a *child*, with the same
//! arguments and a marker in the environment, and waits. The child is an ordinary tunnelkit
//! run: it binds the forwards, asks for passphrases on the terminal if it must, and once the
//! first route is up it prints its `Forwarding` lines and a ready line on its standard output
//! (a pipe to the parent), leaves the terminal's session (`setsid`) and points its standard
//! streams at /dev/null (standard error stays with `-v`, as in ssh). The parent relays the
//! `Forwarding` lines and exits 0 on the ready line; when the child ends before that, the
//! parent exits with the child's status (its error is already on the terminal).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use crate::exit::Exit;

/// Set in the child's environment; internal, not an interface.
const CHILD_ENV: &str = "TUNNELKIT_INTERNAL_BACKGROUND_CHILD";
/// The line the child prints once it is up (never shown: the parent consumes it).
const READY: &str = "\u{1}tunnelkit: up, going to the background";

/// True in the child of a `-f` run.
pub fn is_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// In the parent: runs the child and waits until it is up (exit 0) or has ended (its status).
/// Where `-f` is not available (Windows), says why and fails.
pub fn run_parent() -> Exit {
    if let Some(why) = crate::platform::BACKGROUND_UNSUPPORTED {
        eprintln!("tunnelkit: {why}");
        return Exit::Failure;
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("tunnelkit: -f: cannot find this program to run it in the background: {e}");
            return Exit::Failure;
        }
    };
    let spawned = Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(CHILD_ENV, "1")
        // -f implies -n, as in ssh.
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tunnelkit: -f: cannot start the background process: {e}");
            return Exit::Failure;
        }
    };
    if let Some(out) = child.stdout.take() {
        let mut stdout = std::io::stdout().lock();
        // Bounded by the child: it either says ready or ends, which closes the pipe.
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if line == READY {
                tracing::debug!("background process {} is up", child.id());
                return Exit::Success;
            }
            let _ = writeln!(stdout, "{line}");
            let _ = stdout.flush();
        }
    }
    match child.wait() {
        Ok(s) if s.success() => Exit::Success,
        Ok(_) => Exit::Failure,
        Err(e) => {
            eprintln!("tunnelkit: -f: waiting for the background process: {e}");
            Exit::Failure
        }
    }
}

/// Why the child could not go to the background.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DetachError {
    /// A step failed: `telling the parent`, `setsid`, `/dev/null`, `stdin`, `stdout`, `stderr`.
    #[error("{step}")]
    Step {
        /// The step.
        step: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// This system cannot run a tunnel in the background (the reason, for the person).
    #[error("{0}")]
    Unsupported(&'static str),
}

impl DetachError {
    /// A failed step's error, for `map_err`.
    pub(crate) fn step<E: Into<std::io::Error>>(step: &'static str) -> impl Fn(E) -> DetachError {
        move |e| DetachError::Step {
            step,
            source: e.into(),
        }
    }
}

/// In the child, once up: tells the parent, leaves the terminal's session and closes the
/// standard streams (standard error is kept when `keep_stderr`, i.e. with `-v`).
pub fn detach(keep_stderr: bool) -> Result<(), DetachError> {
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{READY}")
            .and_then(|()| out.flush())
            .map_err(DetachError::step("telling the parent"))?;
    }
    crate::platform::detach(keep_stderr)?;
    tracing::debug!("in the background as process {}", std::process::id());
    Ok(())
}
