//! Starting the agent at login, as each OS does it: a systemd user unit (Linux and other
//! Unix), a LaunchAgent (macOS), a Task Scheduler logon task (Windows). One implementation
//! per OS behind [`plan`], [`install`], [`uninstall`] and [`status`]; what they write is built
//! by the pure functions of [`content`], compiled and tested on every OS.

pub mod content;

#[cfg(all(unix, not(target_os = "macos")))]
mod linux;
#[cfg(all(unix, not(target_os = "macos")))]
use linux as imp;
#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "macos")]
use macos as imp;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as imp;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long one call of systemctl, launchctl or schtasks may take.
pub const COMMAND_DEADLINE: Duration = Duration::from_secs(30);
/// How often a running command is checked for its end.
const COMMAND_POLL: Duration = Duration::from_millis(20);

pub use content::ContentError;

/// Why autostart could not be installed, removed or read.
#[derive(Debug, thiserror::Error)]
pub enum AutostartError {
    /// This binary's own path is unknown.
    #[error("cannot tell where this binary is: {0}")]
    CurrentExe(std::io::Error),
    /// The binary's path cannot be written into the file.
    #[error(transparent)]
    Path(#[from] ContentError),
    /// A file or directory could not be written, read or removed.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// A setting the OS needs is missing from the environment.
    #[error("{0} is not set")]
    MissingVariable(&'static str),
    /// The OS tool refused (registering the task on Windows).
    #[error("{0}")]
    Tool(ToolError),
}

/// A run of systemctl, launchctl or schtasks that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The program is not installed (not on PATH).
    #[error("{0} is not on PATH")]
    Missing(String),
    /// It could not be started, or waited for.
    #[error("{program}: {source}")]
    Io {
        /// The command line.
        program: String,
        /// What failed.
        source: std::io::Error,
    },
    /// It ran longer than [`COMMAND_DEADLINE`] and was killed.
    #[error("`{0}` did not finish within {COMMAND_DEADLINE:?}")]
    Timeout(String),
    /// It exited with a failure.
    #[error("`{command}` failed: {message}")]
    Failed {
        /// The command line.
        command: String,
        /// The first line it printed (stderr, else stdout), or its exit status.
        message: String,
        /// Its standard output (some tools answer a question there and exit 1 for "no").
        stdout: String,
    },
}

/// What would be written: which kind of autostart, where, and the text.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The kind, in the OS's words (`systemd user unit`).
    pub kind: &'static str,
    /// Where it goes (a file, or the task's name).
    pub location: String,
    /// The file's text.
    pub text: String,
}

/// How the installed autostart was activated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activation {
    /// Enabled for every login and started now (what was run).
    Started(String),
    /// Written, but not activated: why, and the command the user must run.
    Manual {
        /// Why it could not be done here.
        reason: String,
        /// The command line(s) to run.
        command: String,
    },
}

/// The outcome of [`install`].
#[derive(Debug, Clone)]
pub struct Installed {
    /// What was written.
    pub plan: Plan,
    /// Whether it runs now.
    pub activation: Activation,
}

/// The outcome of [`uninstall`].
#[derive(Debug, Clone)]
pub struct Removed {
    /// The kind and where it was (or would have been).
    pub kind: &'static str,
    /// Where.
    pub location: String,
    /// False when there was nothing to remove.
    pub existed: bool,
    /// What else the user should know or do (a manager that did not answer).
    pub notes: Vec<String>,
}

/// What [`status`] found.
#[derive(Debug, Clone)]
pub struct Status {
    /// The kind of autostart this OS uses.
    pub kind: &'static str,
    /// Where it is or would be.
    pub location: String,
    /// The installed one, if any.
    pub found: Option<Found>,
}

/// An installed autostart.
#[derive(Debug, Clone)]
pub struct Found {
    /// The program it runs (None: the file names none that could be read).
    pub program: Option<String>,
    /// Whether that is this binary.
    pub this_binary: bool,
    /// What the OS says of it (`enabled, active`), when it answers.
    pub state: Option<String>,
}

/// This binary's absolute path, as the autostart file names it.
pub fn current_exe() -> Result<std::path::PathBuf, AutostartError> {
    std::env::current_exe().map_err(AutostartError::CurrentExe)
}

/// What [`install`] would write for `exe`.
pub fn plan(exe: &Path) -> Result<Plan, AutostartError> {
    imp::plan(exe)
}

/// Writes the autostart for `exe` and activates it (or says which command would).
pub fn install(exe: &Path) -> Result<Installed, AutostartError> {
    imp::install(exe)
}

/// Stops and removes the autostart.
pub fn uninstall() -> Result<Removed, AutostartError> {
    imp::uninstall()
}

/// Which autostart is installed, where, and whether it runs `exe`.
pub fn status(exe: &Path) -> Result<Status, AutostartError> {
    imp::status(exe)
}

/// Whether `program` (read from a file) names `exe`: the same text, or the same file.
fn same_program(program: &str, exe: &Path) -> bool {
    Path::new(program) == exe
        || matches!(
            (std::fs::canonicalize(program), std::fs::canonicalize(exe)),
            (Ok(a), Ok(b)) if a == b
        )
}

/// Writes `bytes` to `path`, creating its directory.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), AutostartError> {
    let err = |source| AutostartError::File {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    std::fs::write(path, bytes).map_err(err)
}

/// The text of `path`, None when it does not exist (the unit and the plist are files; the
/// Windows task is not).
#[cfg(unix)]
fn read_file(path: &Path) -> Result<Option<String>, AutostartError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(AutostartError::File {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// Removes `path`; false when it was not there.
#[cfg(unix)]
fn remove_file(path: &Path) -> Result<bool, AutostartError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(AutostartError::File {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// Runs `program args`, within [`COMMAND_DEADLINE`]; its output when it succeeded.
fn run(program: &str, args: &[&str]) -> Result<Output, ToolError> {
    let line = std::iter::once(program)
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ToolError::Missing(program.to_string()))
        }
        Err(source) => {
            return Err(ToolError::Io {
                program: line,
                source,
            })
        }
    };
    let readers = [
        child.stdout.take().map(read_all),
        child.stderr.take().map(read_all),
    ];
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if started.elapsed() < COMMAND_DEADLINE => std::thread::sleep(COMMAND_POLL),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(ToolError::Timeout(line));
            }
            Err(source) => {
                return Err(ToolError::Io {
                    program: line,
                    source,
                })
            }
        }
    };
    let [stdout, stderr] = readers.map(|r| r.and_then(|h| h.join().ok()).unwrap_or_default());
    if status.success() {
        return Ok(Output {
            status,
            stdout,
            stderr,
        });
    }
    let first = |b: &[u8]| {
        content::decode_output(b)
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_string)
    };
    let message = first(&stderr)
        .or_else(|| first(&stdout))
        .unwrap_or_else(|| status.to_string());
    Err(ToolError::Failed {
        command: line,
        message,
        stdout: content::decode_output(&stdout),
    })
}

/// Reads a pipe to its end on a thread of its own (so that a full pipe never stalls the
/// child while [`run`] waits for it).
fn read_all(mut pipe: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}
