//! A hop reached through its `ProxyCommand`, as ssh does it: `SHELL -c "exec COMMAND"`, the
//! child's stdin and stdout are the hop's transport, its stderr goes to the log line by line.
//! The child is the root of its own process tree (a process group on Unix, a Job Object on
//! Windows: [`crate::platform::process`]); the whole tree is ended when the hop's transport or
//! its route session is dropped (whichever comes first), and tokio reaps the child.

use std::collections::VecDeque;
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::process::{Child, ChildStdin, ChildStdout};

use crate::config::{Hop, ProxyCommand};
use crate::error::Error;

/// How long a failed handshake waits for the command's exit status, to report it.
const EXIT_STATUS_WAIT: Duration = Duration::from_millis(500);
/// stderr lines kept for the error message.
const STDERR_TAIL_LINES: usize = 4;
/// A stderr line is cut after this many bytes (a command writing without newlines cannot grow
/// memory).
const STDERR_MAX_LINE: usize = 1024;

/// The running command: its process group, and the last lines of its stderr.
struct Group {
    child: Mutex<Option<Child>>,
    tree: crate::platform::process::Tree,
    tail: Arc<Mutex<VecDeque<String>>>,
    /// The stderr logger: finished once every process of the group has closed stderr.
    stderr_done: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Group {
    /// Kills the whole process group (once). The child stays here, so that its exit status
    /// can still be read; it is reaped by tokio once the group is dropped (`kill_on_drop`).
    fn kill(&self) {
        let Ok(mut c) = self.child.lock() else {
            return;
        };
        let Some(child) = c.as_mut() else {
            return;
        };
        self.tree.end();
        let _ = child.start_kill();
    }
}

/// Kills the command's process group when dropped. The route session holds one, so the
/// command never outlives the tunnel's session, even if the transport is still referenced.
pub(crate) struct ProxyGuard {
    group: Arc<Group>,
    configured: String,
}

impl ProxyGuard {
    /// The command's exit status if it has ended (waiting at most [`EXIT_STATUS_WAIT`]), and
    /// its last stderr lines: for an error that names the command and says what it said.
    pub(crate) async fn failure(&self, hop: &Hop, cause: &Error) -> Error {
        let status = tokio::time::timeout(EXIT_STATUS_WAIT, self.exit_status())
            .await
            .ok()
            .flatten();
        // Let the logger take in what the command said before it ended.
        let logger = self
            .group
            .stderr_done
            .lock()
            .ok()
            .and_then(|mut l| l.take());
        if let (Some(_), Some(logger)) = (status, logger) {
            let _ = tokio::time::timeout(EXIT_STATUS_WAIT, logger).await;
        }
        let said = self
            .group
            .tail
            .lock()
            .map(|t| t.iter().cloned().collect::<Vec<_>>().join(" / "))
            .unwrap_or_default();
        let said = if said.is_empty() {
            String::new()
        } else {
            format!(" (it said: {said})")
        };
        let reason = match status {
            Some(s) => format!("ProxyCommand `{}` exited with {s}{said}", self.configured),
            None => format!("ProxyCommand `{}`: {cause}{said}", self.configured),
        };
        Error::Connect {
            host: hop.host.clone(),
            port: hop.port,
            reason,
        }
    }

    async fn exit_status(&self) -> Option<ExitStatus> {
        loop {
            {
                let mut c = self.group.child.lock().ok()?;
                match c.as_mut()?.try_wait() {
                    Ok(Some(s)) => return Some(s),
                    Ok(None) => {}
                    Err(_) => return None,
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for ProxyGuard {
    fn drop(&mut self) {
        self.group.kill();
    }
}

/// The command's stdout (read) and stdin (write): the hop's byte stream.
pub(crate) struct ProxyStream {
    stdout: ChildStdout,
    stdin: ChildStdin,
    group: Arc<Group>,
}

impl Drop for ProxyStream {
    fn drop(&mut self) {
        // The hop's transport ended: the command has no more use.
        self.group.kill();
    }
}

/// Starts `pc` for `hop`.
pub(crate) fn spawn(hop: &Hop, pc: &ProxyCommand) -> crate::Result<(ProxyStream, ProxyGuard)> {
    let failed = |reason: String| Error::Connect {
        host: hop.host.clone(),
        port: hop.port,
        reason: format!("ProxyCommand `{}`: {reason}", pc.configured),
    };
    tracing::debug!("Executing proxy command: {}", pc.command);
    let (mut cmd, program) = crate::platform::process::proxy_command(&pc.shell, &pc.command);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    crate::platform::process::prepare_async(&mut cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| failed(format!("cannot run {program}: {e}")))?;
    let tree = crate::platform::process::Tree::of_async(&child);
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(failed("no pipes to the command".into()));
    };
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    let logger = tokio::spawn(log_stderr(stderr, hop.label(), tail.clone()));
    let group = Arc::new(Group {
        child: Mutex::new(Some(child)),
        tree,
        tail,
        stderr_done: Mutex::new(Some(logger)),
    });
    Ok((
        ProxyStream {
            stdout,
            stdin,
            group: group.clone(),
        },
        ProxyGuard {
            group,
            configured: pc.configured.clone(),
        },
    ))
}

/// Logs the command's stderr line by line (lines cut at [`STDERR_MAX_LINE`]) and keeps the
/// last few. Ends when every process of the group has closed it.
async fn log_stderr(
    mut stderr: tokio::process::ChildStderr,
    hop: String,
    tail: Arc<Mutex<VecDeque<String>>>,
) {
    let mut line: Vec<u8> = Vec::new();
    let mut buf = [0u8; 1024];
    let emit = |line: &mut Vec<u8>| {
        let text = String::from_utf8_lossy(line).trim_end().to_string();
        line.clear();
        if text.is_empty() {
            return;
        }
        tracing::info!("ProxyCommand for {hop}: {text}");
        if let Ok(mut t) = tail.lock() {
            if t.len() == STDERR_TAIL_LINES {
                t.pop_front();
            }
            t.push_back(text);
        }
    };
    loop {
        let n = match stderr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in &buf[..n] {
            if b == b'\n' {
                emit(&mut line);
            } else if line.len() < STDERR_MAX_LINE {
                line.push(b);
            }
        }
    }
    emit(&mut line);
}

impl AsyncRead for ProxyStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdout).poll_read(cx, buf)
    }
}

impl AsyncWrite for ProxyStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stdin).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdin).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdin).poll_shutdown(cx)
    }
}
