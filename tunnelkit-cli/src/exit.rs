//! Exit codes, in one place. tunnelkit follows ssh: 0 when stopped by the user, 255 on errors.

/// How the process ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Stopped cleanly (Ctrl-C, SIGTERM, or a command that succeeded).
    Success,
    /// Any error: bad usage, cannot connect, host key mismatch, forward failure.
    Failure,
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        match e {
            Exit::Success => std::process::ExitCode::SUCCESS,
            Exit::Failure => std::process::ExitCode::from(255),
        }
    }
}
