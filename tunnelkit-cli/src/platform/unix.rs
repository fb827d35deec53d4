//! Unix (Linux, macOS): signals, the terminal's size, `setsid`.

use tokio::signal::unix::{signal, SignalKind};

/// Why `-f` cannot be used here: `None`, it can.
pub const BACKGROUND_UNSUPPORTED: Option<&str> = None;

/// True when SIGHUP was ignored by whoever started this process (`nohup`, a parent that set
/// `SIG_IGN`). On Linux it reads the kernel's record (`SigIgn` in /proc/self/status); must be
/// called before a SIGHUP handler is installed. Elsewhere (macOS: no /proc) false.
pub fn hangup_ignored_at_start() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| ignored_mask(&s))
        .is_some_and(|mask| mask & 1 == 1) // signal 1 (SIGHUP) is bit 0
}

/// The `SigIgn:` mask of a /proc/PID/status text.
fn ignored_mask(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

async fn wait_for(kind: SignalKind) {
    match signal(kind) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

/// The next request to stop: SIGINT (Ctrl-C), SIGTERM, and SIGHUP when `hangup`; says which.
pub(crate) async fn stop_request(hangup: bool) -> &'static str {
    let hup = async {
        if hangup {
            wait_for(SignalKind::hangup()).await
        } else {
            std::future::pending().await
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "interrupted",
        _ = wait_for(SignalKind::terminate()) => "SIGTERM",
        _ = hup => "SIGHUP (hangup)",
    }
}

/// Calls `reload` on each request to re-read the agent's profiles (SIGHUP), for as long as
/// the process runs; never, when it cannot listen.
pub(crate) async fn reload_requests(reload: impl Fn(&'static str)) {
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        return;
    };
    while hangups.recv().await.is_some() {
        reload("SIGHUP");
    }
}

use crate::background::DetachError;

/// In the child of `-f`, once up: leaves the terminal's session and points the standard
/// streams at /dev/null (standard error is kept when `keep_stderr`).
pub fn detach(keep_stderr: bool) -> Result<(), DetachError> {
    rustix::process::setsid().map_err(DetachError::step("setsid"))?;
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(DetachError::step("/dev/null"))?;
    rustix::stdio::dup2_stdin(&null).map_err(DetachError::step("stdin"))?;
    rustix::stdio::dup2_stdout(&null).map_err(DetachError::step("stdout"))?;
    if !keep_stderr {
        rustix::stdio::dup2_stderr(&null).map_err(DetachError::step("stderr"))?;
    }
    Ok(())
}

/// Asks a child to end: SIGTERM.
pub(crate) fn terminate(child: &mut tokio::process::Child) {
    if let Some(pid) = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
}

/// The columns of stdout when it is a terminal.
pub fn terminal_width() -> Option<usize> {
    use std::io::IsTerminal;
    let out = std::io::stdout();
    if !out.is_terminal() {
        return None;
    }
    rustix::termios::tcgetwinsize(&out)
        .ok()
        .map(|w| usize::from(w.ws_col))
        .filter(|&w| w > 0)
}

/// Makes `options` create a file for its owner alone (0600).
#[cfg(feature = "demo")]
pub(crate) fn private_file(options: &mut std::fs::OpenOptions) {
    std::os::unix::fs::OpenOptionsExt::mode(options, 0o600);
}

pub(super) fn program_names(name: &str) -> Vec<String> {
    vec![name.to_string()]
}

pub(super) fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.is_file() && meta.permissions().mode() & 0o111 != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_ignored_mask() {
        let status = "Name:\ttunnelkit\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000001001\n";
        assert_eq!(ignored_mask(status), Some(0x1001));
        assert_eq!(ignored_mask("Name:\tx\n"), None);
    }

    #[test]
    #[cfg(target_os = "linux")] // /proc
    fn this_process_has_an_ignored_mask() {
        // This test process does not ignore SIGHUP unless its runner does.
        let own = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(ignored_mask(&own).is_some());
    }
}
