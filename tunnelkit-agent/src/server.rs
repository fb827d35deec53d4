//! The agent: loads the profiles, starts the autostart ones, watches the directory, and serves
//! the control socket. The socket's directory is 0700 and the socket 0600; a peer with another
//! uid (SO_PEERCRED) is refused; a live socket is never taken over (a second agent exits with
//! an error), a stale one is replaced. Every request line is bounded in size and read time, so
//! a malformed or slow client is answered with an error or closed while others are served.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, Mutex, Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tunnelkit_core::{Event, RouteState, SecretStore};

use crate::protocol::{
    decode_client_message, decode_request, ClientMessage, Reply, Request, MAX_MESSAGE,
};
use crate::registry::Registry;

/// How often the profiles directory is re-read (changes apply within two of these).
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// A client must send its request line within this time.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// `up` replies within this time (time spent waiting for a person's answer is not counted).
pub const UP_DEADLINE: Duration = Duration::from_secs(60);
/// A person has this long to answer a prompt.
pub const ANSWER_DEADLINE: Duration = Duration::from_secs(300);
/// Clients served at once; more wait in the listen backlog.
pub const MAX_CLIENTS: usize = 64;

/// Where the agent works.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The control socket.
    pub socket: PathBuf,
    /// The profiles directory.
    pub profiles: PathBuf,
}

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Another agent answers on the socket.
    #[error("an agent is already running on {0}")]
    AlreadyRunning(PathBuf),
    /// The socket could not be set up.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> AgentError {
    let context = context.into();
    move |source| AgentError::Io { context, source }
}

/// Binds the control socket: private directory, refuses a live socket, replaces a stale one.
pub async fn bind_socket(path: &Path) -> Result<UnixListener, AgentError> {
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io(format!("create {}", dir.display())))?;
        }
    }
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(AgentError::AlreadyRunning(path.to_path_buf()));
        }
        tracing::info!("replacing the stale socket {}", path.display());
        std::fs::remove_file(path).map_err(io(format!("remove stale {}", path.display())))?;
    }
    let listener = UnixListener::bind(path).map_err(io(format!("bind {}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(io(format!("chmod {}", path.display())))?;
    Ok(listener)
}

/// Runs the agent until `cancel`; `reload` re-reads the profiles at once (SIGHUP). On the way
/// out it stops every tunnel and removes the socket.
pub async fn run(
    config: AgentConfig,
    secrets: Arc<dyn SecretStore>,
    reload: Arc<Notify>,
    cancel: CancellationToken,
) -> Result<(), AgentError> {
    let listener = bind_socket(&config.socket).await?;
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let registry = Arc::new(Mutex::new(Registry::new(
        config.profiles.clone(),
        secrets,
        user,
    )));
    registry.lock().await.scan(true).await;
    tracing::info!(
        "agent ready: socket {}, profiles {}",
        config.socket.display(),
        config.profiles.display()
    );
    let watcher = {
        let (registry, cancel) = (registry.clone(), cancel.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = reload.notified() => {}
                    _ = tokio::time::sleep(POLL_INTERVAL) => {}
                }
                registry.lock().await.scan(true).await;
            }
        })
    };
    let uid = crate::paths::current_uid();
    let limit = Arc::new(Semaphore::new(MAX_CLIENTS));
    let clients = tokio_util::task::TaskTracker::new();
    loop {
        let stream = tokio::select! {
            _ = cancel.cancelled() => break,
            a = listener.accept() => match a {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!("control socket accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let peer = stream.peer_cred().map(|c| c.uid()).ok();
        if peer != Some(uid) {
            tracing::warn!(
                "refused a control connection from uid {peer:?} (agent runs as uid {uid})"
            );
            let mut s = stream;
            let _ = write_reply(
                &mut s,
                &Reply::Error {
                    message: "permission denied: another user's agent".into(),
                },
            )
            .await;
            continue;
        }
        let Ok(permit) = limit.clone().acquire_owned().await else {
            break;
        };
        let (registry, cancel) = (registry.clone(), cancel.clone());
        clients.spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = serve_client(stream, registry) => {}
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = std::fs::remove_file(&config.socket);
    clients.close();
    let _ = tokio::time::timeout(Duration::from_secs(1), clients.wait()).await;
    watcher.abort();
    registry.lock().await.stop_all().await;
    tracing::info!("agent stopped");
    Ok(())
}

async fn write_reply(s: &mut UnixStream, r: &Reply) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(r).map_err(std::io::Error::other)?;
    line.push(b'\n');
    s.write_all(&line).await
}

/// Reads one line of at most [`MAX_MESSAGE`] bytes, its newline included, within `deadline`.
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(
    r: &mut R,
    deadline: Duration,
) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    let read = async {
        let mut limited = (&mut *r).take(MAX_MESSAGE as u64 + 1);
        limited.read_until(b'\n', &mut buf).await
    };
    match tokio::time::timeout(deadline, read).await {
        Err(_) => Err(format!(
            "no complete request within {}s",
            deadline.as_secs()
        )),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(0)) => Err("connection closed".into()),
        Ok(Ok(_)) if buf.len() > MAX_MESSAGE => {
            Err(format!("message longer than {MAX_MESSAGE} bytes"))
        }
        Ok(Ok(_)) if buf.last() != Some(&b'\n') => Err("connection closed mid-message".into()),
        Ok(Ok(_)) => Ok(buf),
    }
}

use tokio::io::AsyncReadExt;

async fn serve_client(stream: UnixStream, registry: Arc<Mutex<Registry>>) {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let reply = match read_line(&mut read, REQUEST_DEADLINE).await {
        Err(e) => Reply::Error { message: e },
        Ok(line) => match decode_request(&line) {
            Err(message) => Reply::Error { message },
            Ok(req) => handle(req, &registry, &mut read, &mut write).await,
        },
    };
    let mut line = serde_json::to_vec(&reply).unwrap_or_default();
    line.push(b'\n');
    let _ = write.write_all(&line).await;
}

fn done(v: serde_json::Value) -> Reply {
    Reply::Done { result: v }
}

fn error(m: impl Into<String>) -> Reply {
    Reply::Error { message: m.into() }
}

async fn handle(
    req: Request,
    registry: &Arc<Mutex<Registry>>,
    read: &mut BufReader<tokio::net::unix::OwnedReadHalf>,
    write: &mut tokio::net::unix::OwnedWriteHalf,
) -> Reply {
    match req {
        Request::Status => done(json!(registry.lock().await.status())),
        Request::Reload => {
            let applied = registry.lock().await.scan(true).await;
            done(json!({
                "added": applied.added, "changed": applied.changed,
                "removed": applied.removed, "invalid": applied.invalid,
            }))
        }
        Request::Logs { name } => match registry.lock().await.logs(&name) {
            Some(lines) => done(json!(lines)),
            None => error(format!("no profile named {name}")),
        },
        Request::Down { name } => {
            let mut r = registry.lock().await;
            if !r.contains(&name) {
                return error(format!("no profile named {name}"));
            }
            let was = r.stop(&name).await;
            done(json!(if was {
                format!("{name} stopped")
            } else {
                format!("{name} was not running")
            }))
        }
        Request::Up { name, interactive } => up(&name, interactive, registry, read, write).await,
    }
}

/// `up`: (re)starts the profile with this client attached for prompts, and replies once a
/// route is up or with why it is not.
async fn up(
    name: &str,
    interactive: bool,
    registry: &Arc<Mutex<Registry>>,
    read: &mut BufReader<tokio::net::unix::OwnedReadHalf>,
    write: &mut tokio::net::unix::OwnedWriteHalf,
) -> Reply {
    let (mut events, mut jobs, relay) = {
        let mut r = registry.lock().await;
        if !r.contains(name) {
            return error(format!("no profile named {name}"));
        }
        match r.route_state(name) {
            Some(RouteState::Up | RouteState::Degraded) => {
                return done(json!(format!("{name} is up")));
            }
            // Waiting for input or backing off: start over now, with this client attached.
            Some(_) => {
                r.stop(name).await;
            }
            None => {}
        }
        match r.start(name, interactive).await {
            Ok((ev, jobs)) => (ev, jobs, r.relay(name)),
            Err(e) => return error(e),
        }
    };
    let Some(relay) = relay else {
        return error(format!("{name} did not start"));
    };
    let deadline = tokio::time::Instant::now() + UP_DEADLINE;
    let result = loop {
        let job = async {
            match jobs.as_mut() {
                Some(j) => j.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break error(format!("{name}: no route came up within {}s", UP_DEADLINE.as_secs())),
            Some(job) = job => {
                let prompt = Reply::Prompt { text: job.text.clone(), echo: job.echo, confirm: job.confirm };
                let mut line = serde_json::to_vec(&prompt).unwrap_or_default();
                line.push(b'\n');
                if write.write_all(&line).await.is_err() {
                    break error("client went away");
                }
                let answer = match read_line(read, ANSWER_DEADLINE).await {
                    Ok(l) => match decode_client_message(&l) {
                        Ok(ClientMessage::Answer { value }) => value,
                        Err(_) => None,
                    },
                    Err(_) => None,
                };
                let _ = job.answer.send(answer);
            }
            ev = events.recv() => match ev {
                Ok(Event::RouteUp { route, .. }) => break done(json!(format!("{name} is up via {route}"))),
                Ok(Event::RouteFailed { reason, needs_input: true, .. }) if !interactive => {
                    break error(format!("{name} {reason}; run `tunnelkit up {name}` on a terminal to answer"));
                }
                Ok(Event::Stopped { error: Some(e) }) => break error(format!("{name}: {e}")),
                Ok(Event::RouteFailed { reason, permanent: true, .. }) => break error(format!("{name}: {reason}")),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break error(format!("{name} stopped")),
            },
        }
    };
    relay.detach();
    result
}
