//! Windows: console control events, no `-f`, programs found with `%PATHEXT%`.

use tokio::signal::windows;

/// Why `-f` cannot be used here.
pub const BACKGROUND_UNSUPPORTED: Option<&str> = Some(
    "-f is not available on Windows: keep the tunnel in the agent instead (a profile, then \
     `tunnelkit agent` and `tunnelkit up NAME`), or leave this window open",
);

/// Windows has no SIGHUP to ignore.
pub fn hangup_ignored_at_start() -> bool {
    false
}

/// Waits for the next event of one console control kind (never, when it cannot be listened
/// to).
macro_rules! next_event {
    ($listen:path) => {
        async {
            match $listen() {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        }
    };
}

/// The next request to stop: Ctrl-C, Ctrl-Break, the console window closed, logoff or
/// shutdown (`hangup`, SIGHUP's analog, is the closed window: always a stop here).
pub(crate) async fn stop_request(_hangup: bool) -> &'static str {
    tokio::select! {
        _ = next_event!(windows::ctrl_c) => "interrupted",
        _ = next_event!(windows::ctrl_break) => "Ctrl-Break",
        _ = next_event!(windows::ctrl_close) => "console window closed",
        _ = next_event!(windows::ctrl_logoff) => "logoff",
        _ = next_event!(windows::ctrl_shutdown) => "shutdown",
    }
}

/// Windows has no reload signal: `tunnelkit reload` asks the agent over its pipe.
pub(crate) async fn reload_requests(_reload: impl Fn(&'static str)) {}

/// Never called on Windows (`-f` is refused first); says so if it were.
pub fn detach(_keep_stderr: bool) -> Result<(), crate::background::DetachError> {
    Err(crate::background::DetachError::Unsupported(
        BACKGROUND_UNSUPPORTED.unwrap_or_default(),
    ))
}

/// Ends a child (Windows has no SIGTERM for console programs started this way).
pub(crate) fn terminate(child: &mut tokio::process::Child) {
    let _ = child.start_kill();
}

/// Not measured on Windows: the status table is printed at its natural width.
pub fn terminal_width() -> Option<usize> {
    None
}

/// Files in the user's profile are the user's (as Win32-OpenSSH relies on); nothing to add.
#[cfg(feature = "demo")]
pub(crate) fn private_file(_options: &mut std::fs::OpenOptions) {}

pub(super) fn program_names(name: &str) -> Vec<String> {
    let exts = std::env::var("PATHEXT").unwrap_or_else(|_| ".COM;.EXE;.BAT;.CMD".into());
    program_names_with(name, &exts)
}

/// `name` itself when it has a suffix, then `name` with each suffix of `pathext`.
pub(crate) fn program_names_with(name: &str, pathext: &str) -> Vec<String> {
    let mut names = Vec::new();
    if std::path::Path::new(name).extension().is_some() {
        names.push(name.to_string());
    }
    names.extend(
        pathext
            .split(';')
            .filter(|e| !e.is_empty())
            .map(|e| format!("{name}{}", e.to_ascii_lowercase())),
    );
    names
}

pub(super) fn is_executable(meta: &std::fs::Metadata) -> bool {
    meta.is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_with_the_suffixes_of_pathext() {
        assert_eq!(
            program_names_with("mstsc", ".COM;.EXE"),
            ["mstsc.com", "mstsc.exe"]
        );
        assert_eq!(
            program_names_with("mstsc.exe", ".EXE"),
            ["mstsc.exe", "mstsc.exe.exe"]
        );
    }
}
