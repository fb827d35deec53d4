//! The agent: serves the control channel in front of the [registry](crate::registry). The
//! channel is each OS's own ([`control`](crate::platform::control)): a Unix socket in a
//! private directory, or on Windows a named pipe for the user alone. A peer that runs as
//! another user is refused; a live agent is never taken over (a second agent exits with an
//! error). Every request line is bounded in size and read time, so a
//! malformed or slow client is answered with an error or closed while others are served.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tunnelkit_core::serve::{Pending, Stalled, CONTROL_PENDING};
use tunnelkit_core::{DrillOptions, SecretStore};

use crate::accept::next_connection;
use crate::drill::DrillJson;
use crate::launcher::CoreLauncher;
use crate::platform::control::{Listener, Peer, ReadHalf, Stream, WriteHalf};
pub use crate::protocol::limits::{REPLY_WRITE_DEADLINE, REQUEST_DEADLINE};
use crate::protocol::{
    decode_request, done, encode_reply, error, read_line, Reply, Request, Response, MAX_CLIENT_LINE,
};
use crate::registry::{RegistryConfig, RegistryHandle, POLL_INTERVAL, STOP_DEADLINE};
use crate::trust::TrustError;

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

impl AgentError {
    /// An [`AgentError::Io`] with what was being done.
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> AgentError {
        let context = context.into();
        move |source| AgentError::Io { context, source }
    }
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
    let listener = Listener::bind(&config.socket).await?;
    let user = tunnelkit_core::env::local_user();
    let (registry, registry_task) = RegistryHandle::spawn(
        RegistryConfig {
            dir: config.profiles.clone(),
            local_user: user,
            poll: POLL_INTERVAL,
        },
        Arc::new(CoreLauncher::new(secrets)),
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
        let Some(stream) = next_connection(&cancel, "control socket", || listener.accept()).await
        else {
            break;
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
    clients.close();
    let _ = tokio::time::timeout(CLIENTS_DRAIN, clients.wait()).await;
    sighup.abort();
    registry.shutdown().await;
    let _ = tokio::time::timeout(STOP_DEADLINE, registry_task).await;
    tracing::info!("agent stopped");
    Ok(())
}

/// Refuses a peer of another user (with a reply it may read), or serves its request.
async fn serve_client((stream, peer): (Stream, Peer), registry: RegistryHandle, pending: Pending) {
    if let Peer::Other { who, me } = peer {
        tracing::warn!("refused a control connection from {who}: the agent runs as {me}");
        let message = format!("permission denied: this agent belongs to {me}, not to {who}");
        let mut s = stream;
        let refusal = encode_reply(&Reply::Error { message });
        let _ = pending
            .guard(REPLY_WRITE_DEADLINE, s.write_all(&refusal))
            .await;
        return;
    }
    let (read, mut write) = tokio::io::split(stream);
    let mut read = BufReader::new(read);
    // Pending until the request is read: a newer connection may shed this one.
    let ticket = pending.enter();
    let line = tokio::select! {
        _ = ticket.shed() => {
            let note = encode_reply(&error(Stalled::Shed.to_string()));
            // One attempt that never waits: a shed client gets the note only if it reads.
            let _ = tokio::time::timeout(Duration::ZERO, write.write_all(&note)).await;
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
    read: &mut BufReader<ReadHalf>,
    write: &mut WriteHalf,
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
