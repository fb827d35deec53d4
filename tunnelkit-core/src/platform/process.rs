//! A command's whole process tree, ended as one: what ProxyCommand, `Match exec` and a
//! certificate command start (a shell, and whatever it starts: `nc`, `ssh -W`, a credential
//! helper) never outlives the hop or the deadline that owns it. [`run_quiet`] runs a command
//! without a shell whose output must never be seen.
//!
//! - Unix: the command leads a new process group ([`prepare`]); ending it signals the group
//!   with SIGKILL, so the shell's children go too.
//! - Windows: the process is put in a Job Object created with "kill on close" right after
//!   it starts ([`Tree::of`]); ending it closes the job, which ends every process in it.
//!   (A grandchild started before the assignment, within microseconds of the start, would
//!   escape: Win32-OpenSSH has the same window.)

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::error::CommandFailure;

/// The command that runs a ProxyCommand as each OS's ssh runs it, and the program it starts
/// (for messages). `command` is as ssh expands it, with `exec ` in front. Unix:
/// `SHELL -c COMMAND` (`$SHELL`, else `/bin/sh`). Windows, as Win32-OpenSSH: `exec ` dropped,
/// no shell; the rest is the command line of a process, its first word the program (looked up
/// on PATH), so `cmd /c ...` or `powershell -c ...` must be written out when a shell is wanted.
pub(crate) fn proxy_command(shell: &Path, command: &str) -> (tokio::process::Command, String) {
    #[cfg(unix)]
    {
        let mut cmd = tokio::process::Command::new(shell);
        cmd.arg("-c").arg(command);
        (cmd, shell.display().to_string())
    }
    #[cfg(windows)]
    {
        let _ = shell;
        let (program, rest) = windows_proxy_command(command);
        let mut cmd = tokio::process::Command::new(&program);
        if !rest.is_empty() {
            cmd.raw_arg(rest);
        }
        (cmd, program)
    }
}

/// The program and arguments of a ProxyCommand on Windows: ssh's `exec ` dropped (as
/// Win32-OpenSSH drops it), then [`split_command_line`].
#[cfg_attr(not(windows), allow(dead_code))]
pub(crate) fn windows_proxy_command(command: &str) -> (String, &str) {
    split_command_line(command.strip_prefix("exec ").unwrap_or(command))
}

/// A Windows command line's program (its first word: quoted with `"`, or up to the first
/// space or tab) and the rest, given to the program as it is.
#[cfg_attr(not(windows), allow(dead_code))]
pub(crate) fn split_command_line(line: &str) -> (String, &str) {
    let line = line.trim_start_matches([' ', '\t']);
    let (program, rest) = match line.strip_prefix('"') {
        Some(quoted) => match quoted.find('"') {
            Some(end) => (&quoted[..end], &quoted[end + 1..]),
            None => (quoted, ""),
        },
        None => match line.find([' ', '\t']) {
            Some(end) => (&line[..end], &line[end..]),
            None => (line, ""),
        },
    };
    (program.to_string(), rest.trim_start_matches([' ', '\t']))
}

/// Makes a command about to be started the root of its own tree.
pub(crate) fn prepare(cmd: &mut std::process::Command) {
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(cmd, 0);
    #[cfg(not(unix))]
    let _ = cmd;
}

/// [`prepare`] for tokio's command.
pub(crate) fn prepare_async(cmd: &mut tokio::process::Command) {
    #[cfg(unix)]
    cmd.process_group(0);
    #[cfg(not(unix))]
    let _ = cmd;
}

/// The tree of a started command; [`Tree::end`] ends it once.
pub(crate) struct Tree {
    #[cfg(unix)]
    group: Mutex<Option<i32>>,
    #[cfg(windows)]
    job: Mutex<Option<win32job::Job>>,
}

impl Tree {
    /// The tree of a command started with tokio after [`prepare_async`].
    pub(crate) fn of_async(child: &tokio::process::Child) -> Tree {
        #[cfg(unix)]
        return Tree::group(child.id());
        #[cfg(windows)]
        return Tree::job(child.raw_handle());
    }

    /// The tree of a command started after [`prepare`].
    pub(crate) fn of(child: &std::process::Child) -> Tree {
        #[cfg(unix)]
        return Tree::group(Some(child.id()));
        #[cfg(windows)]
        return Tree::job(Some(std::os::windows::io::AsRawHandle::as_raw_handle(
            child,
        )));
    }

    #[cfg(unix)]
    fn group(pid: Option<u32>) -> Tree {
        Tree {
            group: Mutex::new(pid.and_then(|p| i32::try_from(p).ok())),
        }
    }

    #[cfg(windows)]
    fn job(handle: Option<std::os::windows::io::RawHandle>) -> Tree {
        let job = handle.and_then(|h| {
            let mut limits = win32job::ExtendedLimitInfo::new();
            limits.limit_kill_on_job_close();
            let job = win32job::Job::create_with_limit_info(&limits)
                .map_err(|e| tracing::warn!("cannot create a Job Object: {e}"))
                .ok()?;
            job.assign_process(h as isize)
                .map_err(|e| tracing::warn!("cannot put the command in a Job Object: {e}"))
                .ok()?;
            Some(job)
        });
        Tree {
            job: Mutex::new(job),
        }
    }

    /// Ends every process of the tree (the first call does; later ones do nothing).
    pub(crate) fn end(&self) {
        #[cfg(unix)]
        if let Some(pgid) = self.group.lock().ok().and_then(|mut g| g.take()) {
            if let Some(pgid) = rustix::process::Pid::from_raw(pgid) {
                let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
            }
        }
        #[cfg(windows)]
        if let Some(job) = self.job.lock().ok().and_then(|mut j| j.take()) {
            // Closing a kill-on-close job ends every process in it.
            drop(job);
        }
    }
}

/// How long the output of a command that has exited is still read (a helper it left running
/// may hold its pipes open).
const PIPE_GRACE: Duration = Duration::from_millis(500);

/// Runs `argv` (the program first) without a shell: standard input on the null device, its
/// standard output and error read and thrown away (only counted), in a tree of its own that is
/// ended when `timeout` passes or the returned future is dropped. `Ok` when it exited 0.
pub(crate) async fn run_quiet(argv: &[String], timeout: Duration) -> Result<(), CommandFailure> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| CommandFailure::Start("no program".into()))?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    prepare_async(&mut cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| CommandFailure::Start(crate::error::os_reason(&e)))?;
    let mut tree = EndOnDrop(Some(Tree::of_async(&child)));
    // Both pipes are drained while it runs, so a chatty command never blocks on a full one.
    let stdout_bytes = Arc::new(AtomicU64::new(0));
    let stderr_bytes = Arc::new(AtomicU64::new(0));
    let mut readers = [
        tokio::spawn(count(child.stdout.take(), stdout_bytes.clone())),
        tokio::spawn(count(child.stderr.take(), stderr_bytes.clone())),
    ];
    let waited = tokio::time::timeout(timeout, child.wait()).await;
    if waited.is_ok() {
        let _ = tokio::time::timeout(PIPE_GRACE, async {
            for r in readers.iter_mut() {
                let _ = r.await;
            }
        })
        .await;
    }
    for r in &readers {
        r.abort();
    }
    let status = match waited {
        // Dropping `tree` ends the group (and kill_on_drop the command itself).
        Err(_) => return Err(CommandFailure::Timeout(timeout)),
        Ok(s) => s.map_err(|e| CommandFailure::Start(e.to_string()))?,
    };
    tree.disarm();
    let (stdout_bytes, stderr_bytes) = (
        stdout_bytes.load(Ordering::Relaxed),
        stderr_bytes.load(Ordering::Relaxed),
    );
    tracing::debug!(
        "{program}: {status}, {stdout_bytes} bytes on stdout and {stderr_bytes} on stderr \
         (not shown)"
    );
    match status.code() {
        Some(0) => Ok(()),
        Some(code) => Err(CommandFailure::Exit {
            code,
            stdout_bytes,
            stderr_bytes,
        }),
        None => Err(CommandFailure::Signal(status.to_string())),
    }
}

/// Adds to `total` how many bytes `pipe` gives until its end; the bytes are dropped unseen.
async fn count<R: tokio::io::AsyncRead + Unpin>(pipe: Option<R>, total: Arc<AtomicU64>) {
    let Some(mut pipe) = pipe else { return };
    let mut buf = [0u8; 4096];
    while let Ok(k) = pipe.read(&mut buf).await {
        if k == 0 {
            break;
        }
        total.fetch_add(k as u64, Ordering::Relaxed);
    }
}

/// A [`Tree`] ended when dropped, unless [`disarm`](EndOnDrop::disarm)ed first.
struct EndOnDrop(Option<Tree>);

impl EndOnDrop {
    /// The command finished by itself: its tree is not ended (on Windows, closing its job
    /// still ends what it left running, as for a ProxyCommand).
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            t.end();
        }
    }
}

#[cfg(test)]
mod command_line_tests {
    use super::split_command_line;

    #[test]
    fn the_program_is_the_first_word_or_the_quoted_path() {
        assert_eq!(
            split_command_line("ncat --proxy gw:3128 %h %p"),
            ("ncat".into(), "--proxy gw:3128 %h %p")
        );
        assert_eq!(
            split_command_line(r#""C:\Program Files\Nmap\ncat.exe" bastion 22"#),
            (r"C:\Program Files\Nmap\ncat.exe".into(), "bastion 22")
        );
        assert_eq!(split_command_line("  plink.exe"), ("plink.exe".into(), ""));
        assert_eq!(split_command_line(r#""unclosed"#), ("unclosed".into(), ""));
    }

    #[test]
    fn ssh_s_exec_is_not_taken_for_the_program() {
        // Found by running tunnelkit.exe under wine: "exec" was the program it looked for.
        assert_eq!(
            super::windows_proxy_command("exec ncat bastion 22"),
            ("ncat".into(), "bastion 22")
        );
    }
}

#[cfg(all(test, unix))]
mod run_quiet_tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), script.into()]
    }

    #[tokio::test]
    async fn exit_status_and_byte_counts_without_the_bytes() {
        assert_eq!(
            run_quiet(&sh("echo token-123"), Duration::from_secs(10)).await,
            Ok(())
        );
        let e = run_quiet(
            &sh("printf 12345; printf abc >&2; exit 3"),
            Duration::from_secs(10),
        )
        .await
        .unwrap_err();
        assert_eq!(
            e,
            CommandFailure::Exit {
                code: 3,
                stdout_bytes: 5,
                stderr_bytes: 3
            }
        );
        assert!(!e.to_string().contains("12345"), "{e}");
        let e = run_quiet(
            &["/nonexistent/helper".to_string()],
            Duration::from_secs(10),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, CommandFailure::Start(_)), "{e}");
        let e = run_quiet(&sh("kill -9 $$"), Duration::from_secs(10))
            .await
            .unwrap_err();
        assert!(matches!(e, CommandFailure::Signal(_)), "{e}");
    }

    #[tokio::test]
    async fn a_hang_is_ended_with_what_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let script = format!("sleep 30 & echo $! > {}; wait", pid_file.display());
        let start = std::time::Instant::now();
        let e = run_quiet(&sh(&script), Duration::from_millis(500))
            .await
            .unwrap_err();
        assert_eq!(e, CommandFailure::Timeout(Duration::from_millis(500)));
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The shell's child got SIGKILL with its group: gone, or a zombie about to be reaped.
        let gone = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.contains(") Z "))
                .unwrap_or(true)
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !gone() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(gone(), "the sleep the command started still runs");
    }

    #[tokio::test]
    async fn a_helper_left_holding_the_pipes_does_not_hold_the_result() {
        let start = std::time::Instant::now();
        let r = run_quiet(&sh("sleep 5 & exit 0"), Duration::from_secs(10)).await;
        assert_eq!(r, Ok(()));
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
    }
}
