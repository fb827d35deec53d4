//! Bringing up a route: the first hop over TCP or its `ProxyCommand`'s stdin/stdout, each later
//! hop over a `direct-tcpip` channel of the previous one; handshake, host key and
//! authentication on each, every step with a deadline (`ConnectTimeout`; time spent waiting for
//! a person does not count). Before a hop, its certificate command runs when its certificate
//! needs refreshing (`auth::cert_command`). Past the transport, nothing cares which of the three it is.

use std::borrow::Cow;
use std::sync::Arc;

use russh::client::{self, Handle};
use socket2::{SockRef, TcpKeepalive};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::proxy::{self, ProxyGuard};
use super::{
    auth, with_deadline, Activity, ClientHandler, Heard, LossSlot, RouteSession, SessionCore,
};
use crate::config::{Hop, Route};
use crate::error::{os_reason, Error, Stage};
use crate::prompt::Services;

/// Connects and authenticates every hop of `route`. On error, the failing hop is named in an
/// [`Error::Hop`].
pub async fn connect_route(route: &Route, services: &Services) -> crate::Result<RouteSession> {
    let lost = CancellationToken::new();
    let slot = Arc::new(LossSlot::default());
    let mut activity = Arc::new(Activity::new());
    let mut handles: Vec<Handle<ClientHandler>> = Vec::with_capacity(route.hops.len());
    let mut proxies = Vec::new();
    let (forwarded, forwarded_rx) = tokio::sync::mpsc::channel(super::FORWARDED_QUEUE);
    let mut certificate_refreshed = false;
    for (i, hop) in route.hops.iter().enumerate() {
        activity = Arc::new(Activity::new());
        let handler = ClientHandler::new(
            hop.clone(),
            services.prompter.clone(),
            lost.clone(),
            slot.clone(),
            activity.clone(),
            forwarded.clone(),
        );
        let handle = async {
            // A short-lived certificate is refreshed first when it needs to be.
            auth::cert_command::refresh_if_needed(hop, &mut certificate_refreshed).await?;
            connect_hop(hop, handles.last(), handler, services, &mut proxies).await
        }
        .await
        .map_err(|e| Error::Hop {
            route: route.name.clone(),
            index: i + 1,
            hop: hop.label(),
            error: Box::new(e),
        })?;
        handles.push(handle);
    }
    let last_hop = route
        .hops
        .last()
        .cloned()
        .ok_or_else(|| Error::Internal(format!("route {} has no hops", route.name)))?;
    Ok(RouteSession::own(
        route.name.clone(),
        SessionCore {
            last_hop,
            handles,
            lost,
            slot,
            activity,
            _proxies: proxies,
            forwarded: std::sync::Mutex::new(Some(forwarded_rx)),
        },
    ))
}

/// Connects one hop over its transport: its ProxyCommand (whose guard goes to `proxies`), TCP
/// for a first hop, or a `direct-tcpip` channel of the previous hop.
async fn connect_hop(
    hop: &Hop,
    prev: Option<&Handle<ClientHandler>>,
    handler: ClientHandler,
    services: &Services,
    proxies: &mut Vec<ProxyGuard>,
) -> crate::Result<Handle<ClientHandler>> {
    let config = Arc::new(client_config(hop).await?);
    let timeout = hop.options.connect_timeout;
    let host_key_error = handler.host_key_error.clone();
    let prompting = handler.prompting.clone();
    let handle = match (prev, &hop.proxy_command) {
        (_, Some(pc)) => {
            let (stream, guard) = proxy::spawn(hop, pc)?;
            let r = handshake(hop, config, stream, handler, &prompting).await;
            let r = match r {
                Err(e) if !matches!(e, Error::HostKeyChanged { .. }) => {
                    Err(guard.failure(hop, &e).await)
                }
                other => other,
            };
            proxies.push(guard);
            r
        }
        (None, None) => {
            let tcp = tcp_connect(hop).await?;
            handshake(hop, config, QuickAck(tcp), handler, &prompting).await
        }
        (Some(prev), None) => {
            let open = prev.channel_open_direct_tcpip(
                hop.host.clone(),
                u32::from(hop.port),
                "127.0.0.1",
                0,
            );
            let ch = match tokio::time::timeout(timeout, open).await {
                Err(_) => return Err(timed_out(Stage::Jump, hop)),
                Ok(Err(e)) => {
                    return Err(Error::Connect {
                        host: hop.host.clone(),
                        port: hop.port,
                        reason: format!("the previous hop could not reach it: {e}"),
                    })
                }
                Ok(Ok(ch)) => ch,
            };
            handshake(hop, config, ch.into_stream(), handler, &prompting).await
        }
    };
    let mut handle = match handle {
        Ok(h) => h,
        Err(e) => {
            // A refused host key surfaces from russh as a generic error; report ours.
            if let Some(hk) = host_key_error.lock().ok().and_then(|mut s| s.take()) {
                return Err(hk);
            }
            return Err(e);
        }
    };
    match with_deadline(
        timeout,
        &prompting,
        auth::authenticate(&mut handle, hop, services, &prompting),
    )
    .await
    {
        None => Err(timed_out(Stage::Auth, hop)),
        Some(r) => r.map(|()| handle),
    }
}

async fn handshake<S>(
    hop: &Hop,
    config: Arc<client::Config>,
    stream: S,
    handler: ClientHandler,
    prompting: &std::sync::atomic::AtomicBool,
) -> crate::Result<Handle<ClientHandler>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Every read from this hop's transport is a sign of life (the supervisor's liveness).
    let stream = Heard::new(stream, handler.activity.clone());
    let fut = client::connect_stream(config, stream, handler);
    match with_deadline(hop.options.connect_timeout, prompting, fut).await {
        None => Err(timed_out(Stage::Handshake, hop)),
        Some(Ok(h)) => Ok(h),
        Some(Err(e)) => Err(Error::Protocol {
            stage: Stage::Handshake,
            host: hop.host.clone(),
            port: hop.port,
            reason: russh_reason(&e),
        }),
    }
}

fn russh_reason(e: &russh::Error) -> String {
    match e {
        russh::Error::Disconnect => "the server closed the connection".into(),
        russh::Error::NoCommonAlgo { kind, ours, theirs } => {
            format!(
                "no common {kind:?} algorithm (ours: {}; theirs: {})",
                ours.join(","),
                theirs.join(",")
            )
        }
        russh::Error::IO(io) => os_reason(io),
        other => other.to_string(),
    }
}

fn timed_out(stage: Stage, hop: &Hop) -> Error {
    Error::Timeout {
        stage,
        host: hop.host.clone(),
        port: hop.port,
        after: hop.options.connect_timeout,
    }
}

/// The transport to the first hop, acknowledging every read at once (TCP_QUICKACK, which Linux
/// clears after each use). The server's side of an SSH transport runs Nagle's algorithm: with
/// delayed ACKs here, a small reply behind an unacknowledged one waits up to 40 ms.
struct QuickAck(TcpStream);

impl AsyncRead for QuickAck {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let r = std::pin::Pin::new(&mut self.0).poll_read(cx, buf);
        if r.is_ready() {
            crate::platform::tcp::quick_ack(&self.0);
        }
        r
    }
}

impl AsyncWrite for QuickAck {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

/// TCP to the first hop: every resolved address of the hop's `AddressFamily` in turn within
/// one deadline, with TCP_NODELAY and TCP keepalive set.
async fn tcp_connect(hop: &Hop) -> crate::Result<TcpStream> {
    let timeout = hop.options.connect_timeout;
    let attempt = async {
        let addrs = tokio::net::lookup_host((hop.host.as_str(), hop.port))
            .await
            .map_err(|e| Error::Connect {
                host: hop.host.clone(),
                port: hop.port,
                reason: format!("could not resolve hostname: {}", os_reason(&e)),
            })?;
        let family = hop.options.address_family;
        let mut last = None;
        for addr in addrs.filter(|a| family.allows(a)) {
            match TcpStream::connect(addr).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        let none_found = match family {
            crate::config::AddressFamily::Any => "no address found".to_string(),
            f => format!(
                "could not resolve hostname: no {} address (AddressFamily {})",
                if f == crate::config::AddressFamily::Inet {
                    "IPv4"
                } else {
                    "IPv6"
                },
                f.as_str()
            ),
        };
        Err(Error::Connect {
            host: hop.host.clone(),
            port: hop.port,
            reason: last.map(|e| os_reason(&e)).unwrap_or(none_found),
        })
    };
    let stream = tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| timed_out(Stage::Connect, hop))??;
    tune_socket(&stream, hop);
    Ok(stream)
}

/// TCP_NODELAY (interactive RDP/VNC must not wait on Nagle) and kernel keepalive on a transport.
fn tune_socket(stream: &TcpStream, hop: &Hop) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!("TCP_NODELAY: {e}");
    }
    let idle = hop
        .options
        .server_alive_interval
        .max(std::time::Duration::from_secs(1));
    let ka = TcpKeepalive::new().with_time(idle).with_interval(idle);
    if let Err(e) = SockRef::from(stream).set_tcp_keepalive(&ka) {
        tracing::debug!("TCP keepalive: {e}");
    }
}

/// `Compression yes`: zlib first, as OpenSSH offers it (`none` last, for servers without zlib).
const COMPRESSION_YES: &[russh::compression::Name] = &[
    russh::compression::ZLIB_LEGACY,
    russh::compression::ZLIB,
    russh::compression::NONE,
];

/// The russh client configuration for one hop.
async fn client_config(hop: &Hop) -> crate::Result<client::Config> {
    let mut preferred = russh::Preferred::default();
    let (keys, certificates) = super::hostkey::offered_algorithms(hop, &preferred.key).await?;
    preferred.key = Cow::Owned(keys);
    preferred.host_key_certificates = Cow::Owned(certificates);
    if !hop.options.ciphers.is_empty() {
        let mut names = Vec::new();
        for c in &hop.options.ciphers {
            let name = russh::cipher::Name::try_from(c.as_str())
                .map_err(|()| Error::Config(format!("Ciphers: unsupported cipher {c}")))?;
            names.push(name);
        }
        preferred.cipher = Cow::Owned(names);
    }
    if hop.options.compression {
        // ssh's order with `Compression yes`; the server picks the first it supports.
        preferred.compression = Cow::Borrowed(COMPRESSION_YES);
    }
    let limits = hop.options.rekey_limit.russh_limits(&preferred.cipher);
    Ok(client::Config {
        preferred,
        nodelay: true,
        window_size_max: hop.options.receive_windows.max,
        window_budget: hop.options.receive_windows.budget,
        limits,
        // Liveness is the supervisor's job (it probes with its own deadline and reports why).
        keepalive_interval: None,
        inactivity_timeout: None,
        ..Default::default()
    })
}
