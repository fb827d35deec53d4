//! `Match exec COMMAND`: the command runs as ssh runs it (readconf.c `execute_in_shell`): the
//! user's shell (`$SHELL`, else `/bin/sh`) with `-c COMMAND`, standard input and output on
//! `/dev/null`, standard error inherited (a credential helper may print there), and exit status
//! 0 means the criterion matched. A command killed by a signal is an error, as in ssh.
//!
//! One difference, on purpose: ssh waits for the command for ever; tunnelkit gives it
//! [`MATCH_EXEC_TIMEOUT`] and then ends it (its whole process group, so a `sleep` the shell
//! started does not linger) and refuses the configuration, naming the file and line, so that
//! a hanging helper cannot freeze the agent's reload or a `tunnelkit` start without a word.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a `Match exec` command may run before the configuration is refused.
pub const MATCH_EXEC_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a running command is looked at.
const POLL: Duration = Duration::from_millis(5);

/// Whether `Match exec` commands run while a configuration is evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MatchExec {
    /// Run each command as `SHELL -c COMMAND`, as ssh does (`Environment::shell`).
    Shell(PathBuf),
    /// Refuse a `Match exec` line with an error naming the file and line: for callers that
    /// must not run commands (fuzzing, parsers under test, a configuration being inspected).
    Refuse,
}

/// Runs `command` with `shell -c`; `Ok(true)` when it exited 0. `Err` says why it could not
/// run, was killed by a signal, or ran past `timeout`.
pub(super) fn matches(shell: &Path, command: &str, timeout: Duration) -> Result<bool, String> {
    let mut cmd = Command::new(shell);
    cmd.arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    crate::platform::process::prepare(&mut cmd);
    tracing::debug!("Match exec: running '{command}'");
    let mut child = cmd.spawn().map_err(|e| {
        format!(
            "Match exec '{command}': cannot run the shell {}: {e}",
            shell.display()
        )
    })?;
    let tree = crate::platform::process::Tree::of(&child);
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                return match status.code() {
                    Some(code) => {
                        tracing::debug!("Match exec '{command}': exit status {code}");
                        Ok(code == 0)
                    }
                    None => Err(format!(
                        "Match exec '{command}' error: the command exited abnormally ({status})"
                    )),
                }
            }
            Ok(None) if start.elapsed() >= timeout => {
                tree.end();
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "Match exec '{command}' did not finish within {} s (ssh would wait for \
                     ever; tunnelkit ended it)",
                    timeout.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(POLL),
            Err(e) => return Err(format!("Match exec '{command}': {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh() -> PathBuf {
        PathBuf::from("/bin/sh")
    }

    #[test]
    fn exit_status_zero_matches_and_anything_else_does_not() {
        assert_eq!(matches(&sh(), "true", MATCH_EXEC_TIMEOUT), Ok(true));
        assert_eq!(matches(&sh(), "exit 3", MATCH_EXEC_TIMEOUT), Ok(false));
        // Output goes nowhere: a command that prints does not disturb -G's output.
        assert_eq!(matches(&sh(), "echo noise", MATCH_EXEC_TIMEOUT), Ok(true));
    }

    #[test]
    fn a_signal_a_missing_shell_and_a_hang_are_errors() {
        let e = matches(&sh(), "kill -9 $$", MATCH_EXEC_TIMEOUT).unwrap_err();
        assert!(e.contains("exited abnormally"), "{e}");
        let e = matches(Path::new("/nonexistent/sh"), "true", MATCH_EXEC_TIMEOUT).unwrap_err();
        assert!(e.contains("cannot run the shell /nonexistent/sh"), "{e}");
        let start = Instant::now();
        let e = matches(&sh(), "sleep 30; true", Duration::from_millis(200)).unwrap_err();
        assert!(e.contains("did not finish within"), "{e}");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
    }
}
