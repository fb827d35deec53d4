//! A command's whole process tree, ended as one: what ProxyCommand and `Match exec` start
//! (a shell, and whatever it starts: `nc`, `ssh -W`, a credential helper) never outlives
//! the hop or the deadline that owns it.
//!
//! - Unix: the command leads a new process group ([`prepare`]); ending it signals the group
//!   with SIGKILL, so the shell's children go too.
//! - Windows: the process is put in a Job Object created with "kill on close" right after
//!   it starts ([`Tree::of`]); ending it closes the job, which ends every process in it.
//!   (A grandchild started before the assignment, within microseconds of the start, would
//!   escape: Win32-OpenSSH has the same window.)

use std::path::Path;
use std::sync::Mutex;

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
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        #[cfg(windows)]
        if let Some(job) = self.job.lock().ok().and_then(|mut j| j.take()) {
            // Closing a kill-on-close job ends every process in it.
            drop(job);
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
