//! The agent: serves the control socket in front of the [registry](crate::registry). The
//! socket's directory is created 0700 and must belong to the agent's user and be writable by
//! nobody else ([`trust`](crate::trust)); the socket is 0600; a peer with another uid
//! (SO_PEERCRED) is refused; a live socket is never taken over (a second agent exits with an
//! error), a stale one is replaced. Every request line is bounded in size and read time, so a
//! malformed or slow client is answered with an error or closed while others are served.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tunnelkit_core::serve::{bind_unix, Pending, Stalled, CONTROL_PENDING};
use tunnelkit_core::{DrillOptions, SecretStore};

use crate::drill::DrillJson;
use crate::launcher::CoreLauncher;
pub use crate::protocol::limits::{REPLY_WRITE_DEADLINE, REQUEST_DEADLINE};
use crate::protocol::{
    decode_request, done, encode_reply, error, read_line, Reply, Request, Response, MAX_CLIENT_LINE,
};
use crate::registry::{RegistryConfig, RegistryHandle, POLL_INTERVAL, STOP_DEADLINE};
use crate::trust::{prepare_dir, TrustError, Uid};

/// A pause after a failed `accept` (descriptors exhausted) before the next.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// Clients still being served get this long once the agent stops.
const CLIENTS_DRAIN: Duration = Duration::from_secs(1);

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
    /// The socket's directory is not safe to use.
    #[error("refusing to use the control socket {}: {source}", socket.display())]
    Untrusted {
        /// The socket.
        socket: PathBuf,
        /// What is wrong with its directory.
        source: TrustError,
    },
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

/// Binds the control socket: a private directory (created 0700, refused when another user
/// owns it or others can write to it), refuses a live socket, replaces a stale one.
pub async fn bind_socket(path: &Path) -> Result<UnixListener, AgentError> {
    prepare_dir(path).map_err(|source| AgentError::Untrusted {
        socket: path.to_path_buf(),
        source,
    })?;
    if std::fs::symlink_metadata(path).is_ok() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(AgentError::AlreadyRunning(path.to_path_buf()));
        }
        tracing::info!("replacing the stale socket {}", path.display());
        std::fs::remove_file(path).map_err(io(format!("remove stale {}", path.display())))?;
    }
    let listener = bind_unix(path).map_err(io(format!("bind {}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(io(format!("chmod {}", path.display())))?;
    Ok(listener)
}

/// Runs the agent until `cancel`; `reload` re-reads the profiles at once (SIGHUP). On the way
/// out it stops every tunnel and removes the socket. `on_registry` receives the registry's
/// handle once it runs (to subscribe to its events, for example).
pub async fn run(
    config: AgentConfig,
    secrets: Arc<dyn SecretStore>,
    reload: Arc<Notify>,
    cancel: CancellationToken,
) -> Result<(), AgentError> {
    run_with(config, secrets, reload, cancel, |_| {}).await
}

/// [`run`], handing the registry's handle to `on_registry` before the socket is served.
pub async fn run_with(
    config: AgentConfig,
    secrets: Arc<dyn SecretStore>,
    reload: Arc<Notify>,
    cancel: CancellationToken,
    on_registry: impl FnOnce(&RegistryHandle),
) -> Result<(), AgentError> {
    let listener = bind_socket(&config.socket).await?;
    let user = tunnelkit_core::env::local_user();
    let (registry, registry_task) = RegistryHandle::spawn(
        RegistryConfig {
            dir: config.profiles.clone(),
            local_user: user,
            poll: POLL_INTERVAL,
        },
        Arc::new(CoreLauncher { secrets }),
    );
    on_registry(&registry);
    if let Ok(summary) = registry.reload().await {
        tracing::info!("profiles: {summary}");
    }
    tracing::info!(
        "agent ready: socket {}, profiles {}",
        config.socket.display(),
        config.profiles.display()
    );
    let sighup = {
        let (registry, cancel) = (registry.clone(), cancel.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = reload.notified() => {}
                }
                match registry.reload().await {
                    Ok(summary) => tracing::info!("reload: {summary}"),
                    Err(_) => break,
                }
            }
        })
    };
    let pending = Pending::new(
        CONTROL_PENDING,
        format!("control socket {}", config.socket.display()),
    );
    let clients = tokio_util::task::TaskTracker::new();
    loop {
        let stream = tokio::select! {
            _ = cancel.cancelled() => break,
            a = listener.accept() => match a {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!("control socket accept: {e}");
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                    continue;
                }
            },
        };
        let (registry, cancel, pending) = (registry.clone(), cancel.clone(), pending.clone());
        clients.spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = serve_client(stream, registry, pending) => {}
            }
        });
    }
    drop(listener);
    let _ = std::fs::remove_file(&config.socket);
    clients.close();
    let _ = tokio::time::timeout(CLIENTS_DRAIN, clients.wait()).await;
    sighup.abort();
    registry.shutdown().await;
    let _ = tokio::time::timeout(STOP_DEADLINE, registry_task).await;
    tracing::info!("agent stopped");
    Ok(())
}

/// Refuses a peer of another uid (with a reply it may read), or serves its request.
async fn serve_client(stream: UnixStream, registry: RegistryHandle, pending: Pending) {
    let me = crate::paths::current_uid();
    let peer = stream.peer_cred().map(|c| c.uid());
    if peer.as_ref().ok() != Some(&me) {
        let who = match peer {
            Ok(uid) => Uid(uid).to_string(),
            Err(e) => format!("an unknown user ({e})"),
        };
        tracing::warn!(
            "refused a control connection from {who}: the agent runs as {}",
            Uid(me)
        );
        let message = format!(
            "permission denied: this agent belongs to {}, not to {who}",
            Uid(me)
        );
        let mut s = stream;
        let refusal = encode_reply(&Reply::Error { message });
        let _ = pending
            .guard(REPLY_WRITE_DEADLINE, s.write_all(&refusal))
            .await;
        return;
    }
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    // Pending until the request is read: a newer connection may shed this one.
    let ticket = pending.enter();
    let line = tokio::select! {
        _ = ticket.shed() => {
            let note = error(Stalled::Shed.to_string());
            let _ = write.try_write(&encode_reply(&note));
            return;
        }
        l = read_line(&mut read, MAX_CLIENT_LINE, REQUEST_DEADLINE) => l,
    };
    drop(ticket);
    let reply = match line {
        Err(e) => error(e),
        Ok(line) => match decode_request(&line) {
            Err(e) => error(e.to_string()),
            Ok(req) => handle(req, &registry, &mut read, &mut write).await,
        },
    };
    // Pending again until the client has taken the reply.
    let _ = pending
        .guard(REPLY_WRITE_DEADLINE, write.write_all(&encode_reply(&reply)))
        .await;
}

async fn handle(
    req: Request,
    registry: &RegistryHandle,
    read: &mut BufReader<tokio::net::unix::OwnedReadHalf>,
    write: &mut tokio::net::unix::OwnedWriteHalf,
) -> Reply {
    let result = match req {
        Request::Status => registry
            .status()
            .await
            .map(|profiles| done(Response::Status { profiles })),
        Request::Reload => registry.reload().await.map(|s| {
            tracing::info!("reload: {s}");
            done(Response::Reload(s))
        }),
        Request::Logs { name } => registry
            .logs(&name)
            .await
            .map(|lines| done(Response::Logs { name, lines })),
        Request::Down { name } => match registry.down(&name).await {
            Ok(started) => {
                if let Some(stopped) = started.done {
                    // The registry gives up waiting after its own deadline and says so.
                    let _ = tokio::time::timeout(STOP_DEADLINE * 2, stopped).await;
                }
                Ok(done(Response::Down {
                    name,
                    was_running: started.was_running,
                }))
            }
            Err(e) => Err(e),
        },
        Request::Drill { name, stay } => match registry.drill_target(&name).await {
            Ok(target) => {
                let span = crate::launcher::profile_span(&name);
                let drill = target.control.drill(DrillOptions { stay });
                match tracing::Instrument::instrument(drill, span).await {
                    Ok(r) => Ok(done(Response::Drill {
                        report: DrillJson::from_report(&r, &target.locals),
                        name,
                    })),
                    Err(e) => match DrillJson::from_error(&e, target.route.as_deref()) {
                        Some(report) => Ok(done(Response::Drill { name, report })),
                        None => Ok(error(format!("{name}: {e}"))),
                    },
                }
            }
            Err(e) => Err(e),
        },
        Request::Up { name, interactive } => {
            let span = crate::launcher::profile_span(&name);
            let up = crate::up::up(&name, interactive, registry, read, write);
            Ok(tracing::Instrument::instrument(up, span).await)
        }
    };
    result.unwrap_or_else(|e| error(e.to_string()))
}
