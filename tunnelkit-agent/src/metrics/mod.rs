//! `tunnelkit agent --metrics ADDR`: each profile's and forward's state and counters for
//! Prometheus, at `GET /metrics` on a listener the caller has bound ([`check_address`] first:
//! loopback only unless the caller forces it).
//!
//! HTTP is hyper's HTTP/1.1 connection ([`http`]), not a web framework: the one HTTP server of
//! the agent's pages (a status page will share it). The listener is served the one way of
//! [`tunnelkit_core::serve`]: accept never waits, and every open connection is pending (a scrape
//! is one short request); past [`METRICS_PENDING`] the oldest is closed, so idle connections
//! cannot hold a scrape back. The page is a pure
//! function ([`render()`]) of the registry's status (asked per scrape, answered from the
//! registry's state without waiting for any tunnel) and of what a subscriber to the agent's
//! events has learnt (failovers, their RTO, failbacks). Nothing here can hold up the registry:
//! a slow scrape only waits for itself, and a subscriber that falls behind misses events (and
//! counts them) rather than slowing anyone.

pub mod http;
mod learn;
pub mod render;

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tunnelkit_core::serve::Pending;
pub use tunnelkit_core::serve::METRICS_PENDING;

use crate::accept::next_connection;
use crate::registry::RegistryHandle;
use learn::{follow, Shared};
use render::{render, Snapshot};

/// A scrape waits this long for the registry's status, then gets 503.
pub const STATUS_DEADLINE: Duration = Duration::from_secs(2);

/// Why metrics cannot be served where asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// The address is not loopback and the caller did not force it.
    #[error(
        "refusing to serve metrics on {0}: it is not a loopback address, and the page shows every \
         profile's name, routes, forwards and traffic to whoever reaches it; use 127.0.0.1:PORT or \
         [::1]:PORT, or add --metrics-allow-remote to serve it there anyway"
    )]
    NotLoopback(SocketAddr),
}

/// Accepts a loopback address; anything else only when `allow_remote`.
pub fn check_address(addr: SocketAddr, allow_remote: bool) -> Result<(), MetricsError> {
    if addr.ip().to_canonical().is_loopback() || allow_remote {
        Ok(())
    } else {
        Err(MetricsError::NotLoopback(addr))
    }
}

/// Subscribes to `registry`'s events now (so the first failover is seen) and serves
/// `listener` until `cancel`.
pub fn spawn(
    listener: TcpListener,
    registry: &RegistryHandle,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    let table = Shared::default();
    let learning = tokio::spawn(follow(registry.subscribe(), table.clone(), cancel.clone()));
    let registry = registry.clone();
    tokio::spawn(async move {
        serve(listener, registry, table, cancel).await;
        let _ = learning.await;
    })
}

async fn serve(
    listener: TcpListener,
    registry: RegistryHandle,
    table: Shared,
    cancel: CancellationToken,
) {
    if let Ok(a) = listener.local_addr() {
        tracing::info!("metrics at http://{a}/metrics");
    }
    let pending = Pending::new(METRICS_PENDING, "metrics");
    let scrapes = tokio_util::task::TaskTracker::new();
    loop {
        let Some((stream, _)) = next_connection(&cancel, "metrics", || listener.accept()).await
        else {
            break;
        };
        let ticket = pending.enter();
        let (registry, table, cancel) = (registry.clone(), table.clone(), cancel.clone());
        scrapes.spawn(async move {
            let answer = move |req: Request<Incoming>| {
                let (registry, table) = (registry.clone(), table.clone());
                async move { scrape(&req, &registry, &table).await }
            };
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = http::serve_connection(stream, &ticket, answer) => {}
            }
        });
    }
    scrapes.close();
    scrapes.wait().await;
}

async fn scrape(
    req: &Request<Incoming>,
    registry: &RegistryHandle,
    table: &Shared,
) -> Response<Full<Bytes>> {
    match http::route(req.method(), req.uri().path()) {
        http::Route::Error(status) => http::error(status),
        http::Route::Metrics => {
            match tokio::time::timeout(STATUS_DEADLINE, registry.status()).await {
                Ok(Ok(profiles)) => {
                    let learned = table.lock().map(|t| t.clone()).unwrap_or_default();
                    let page = render(&Snapshot {
                        profiles,
                        events: learned.by_profile,
                        events_missed: learned.missed,
                    });
                    http::response(StatusCode::OK, http::CONTENT_TYPE, page)
                }
                _ => http::response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    "the agent did not answer in time\n".into(),
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_unless_forced() {
        let ok: [SocketAddr; 3] = [
            "127.0.0.1:9100".parse().unwrap(),
            "[::1]:9100".parse().unwrap(),
            "[::ffff:127.0.0.2]:9100".parse().unwrap(),
        ];
        for a in ok {
            assert_eq!(check_address(a, false), Ok(()), "{a}");
        }
        let any: SocketAddr = "0.0.0.0:9100".parse().unwrap();
        let e = check_address(any, false).unwrap_err();
        assert!(e.to_string().contains("--metrics-allow-remote"), "{e}");
        assert_eq!(check_address(any, true), Ok(()));
        let lan: SocketAddr = "192.168.1.5:9100".parse().unwrap();
        assert!(check_address(lan, false).is_err());
    }
}
