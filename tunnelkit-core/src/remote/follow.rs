//! The component that keeps the remote forwards on the session in use. It reads the published
//! current session (the `watch` local forwards read) and, for each newly published live one,
//! requests every remote forward there, dispatches that session's `forwarded-tcpip` channels to
//! their forward, and, when the session is replaced or lost, leaves it: a session that is still
//! alive (after a failback) gets `cancel-tcpip-forward` for each of its listeners, in the
//! background, and keeps its open connections until they end.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{RemoteBind, RemoteCtx, RemoteForwardState, RemoteRefusal};
use crate::forward::CurrentSession;
use crate::session::{Forwarded, RouteSession};
use crate::status::Event;

/// First delay before a refused request is sent again.
pub(crate) const RETRY_MIN: Duration = Duration::from_millis(250);
/// Cap of that delay while a refusal may be a stale listener of the previous session: such a
/// listener goes away within seconds once the server notices, and the forward must come back
/// soon after.
pub(crate) const RETRY_FAST_MAX: Duration = Duration::from_secs(2);
/// Refusals in a row answered on the fast schedule (about 25 s of them): longer than a server
/// takes to notice a dead session with OpenSSH's default `ClientAliveInterval` off and TCP
/// keepalive's first probes.
pub(crate) const RETRY_FAST_COUNT: u32 = 16;
/// Cap of the delay once refusals have lasted past the fast schedule: a refusal that persists
/// is the bastion's configuration (`AllowTcpForwarding local`, `PermitListen`), and asking
/// every 2 s forever only fills its log.
pub(crate) const RETRY_MAX: Duration = Duration::from_secs(60);

/// The delay before request number `failures + 1`, after `failures` refusals in a row on the
/// same session: doubling from [`RETRY_MIN`] up to [`RETRY_FAST_MAX`] for the first
/// [`RETRY_FAST_COUNT`] refusals, then doubling again from there up to [`RETRY_MAX`].
pub(crate) fn retry_delay(failures: u32) -> Duration {
    if failures < RETRY_FAST_COUNT {
        return RETRY_MIN
            .saturating_mul(1u32 << failures.min(16))
            .min(RETRY_FAST_MAX);
    }
    let beyond = failures - RETRY_FAST_COUNT + 1;
    RETRY_FAST_MAX
        .saturating_mul(1u32 << beyond.min(16))
        .min(RETRY_MAX)
}

/// The port each remote forward listens on in the session being served (`None`: not active).
type Bound = Mutex<Vec<Option<(String, u16)>>>;

/// Follows the current session until `cancel`.
pub(crate) async fn follow(ctx: Arc<RemoteCtx>, mut sessions: CurrentSession) {
    if ctx.forwards.is_empty() {
        return;
    }
    loop {
        let next = tokio::select! {
            _ = ctx.stopping.cancelled() => return,
            s = sessions.wait_for(|s| s.as_ref().is_some_and(|s| s.is_alive())) => match s {
                Ok(s) => s.clone(),
                Err(_) => return,
            },
        };
        let Some(session) = next else { continue };
        serve_session(&ctx, &session, &mut sessions).await;
    }
}

/// Keeps every remote forward on `session` until it is replaced, lost or the tunnel stops.
async fn serve_session(
    ctx: &Arc<RemoteCtx>,
    session: &Arc<RouteSession>,
    sessions: &mut CurrentSession,
) {
    let leave = ctx.stopping.child_token();
    let bound: Arc<Bound> = Arc::new(Mutex::new(vec![None; ctx.forwards.len()]));
    let mut incoming = session.take_forwarded();
    let mut holds: FuturesUnordered<_> = (0..ctx.forwards.len())
        .map(|i| hold(ctx, i, session, &leave, &bound))
        .collect();
    loop {
        tokio::select! {
            _ = leave.cancelled() => break,
            _ = session.lost().cancelled() => break,
            changed = sessions.changed() => {
                let same = sessions.borrow().as_ref().is_some_and(|s| Arc::ptr_eq(s, session));
                if changed.is_err() || !same {
                    break;
                }
            }
            Some(f) = recv(&mut incoming) => dispatch(ctx, session, &bound, f),
            Some(()) = holds.next() => {}
        }
    }
    leave.cancel();
    // Each forward records its new state and hands the cancel request to the background.
    while holds.next().await.is_some() {}
    // Dropping the queue refuses the opens still in it, and any later one on this session.
    drop(incoming);
}

async fn recv(incoming: &mut Option<tokio::sync::mpsc::Receiver<Forwarded>>) -> Option<Forwarded> {
    match incoming {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Hands one `forwarded-tcpip` open to the forward that listens on its port.
fn dispatch(ctx: &Arc<RemoteCtx>, session: &Arc<RouteSession>, bound: &Bound, f: Forwarded) {
    let index = bound.lock().ok().and_then(|b| {
        let port = u16::try_from(f.connected_port).ok()?;
        let mut on_port = b
            .iter()
            .enumerate()
            .filter(|(_, x)| x.as_ref().is_some_and(|(_, p)| *p == port));
        let first = on_port.next()?;
        // Two forwards on one port differ by address: take the one the server names.
        let exact = std::iter::once(first)
            .chain(on_port)
            .find(|(_, x)| x.as_ref().is_some_and(|(h, _)| *h == f.connected_address));
        Some(exact.unwrap_or(first).0)
    });
    let Some(index) = index else {
        tracing::warn!(
            route = session.route(),
            "the bastion sent a connection from {} for {}:{}, where no remote forward listens: refused",
            f.originator,
            f.connected_address,
            f.connected_port
        );
        // Dropping the reply refuses the channel.
        return;
    };
    let ctx2 = ctx.clone();
    let session = session.clone();
    ctx.tracker.spawn(
        async move { super::connection::serve(&ctx2, index, session, f).await }.in_current_span(),
    );
}

/// Keeps remote forward `i` on `session`: requests it (again after each refusal, on the
/// capped backoff) until active, then holds until `leave`, and cancels it on the bastion if the
/// session lives on.
async fn hold(
    ctx: &Arc<RemoteCtx>,
    i: usize,
    session: &Arc<RouteSession>,
    leave: &CancellationToken,
    bound: &Bound,
) {
    let Some(forward) = ctx.forwards.get(i) else {
        return;
    };
    let Some(slot) = ctx.shared.remotes.get(i) else {
        return;
    };
    let route = session.route().to_string();
    let bind = forward.bind_for(&route).clone();
    let waiting = || slot.set(None, &bind, None, RemoteForwardState::Waiting);
    let mut failures = 0u32;
    // The refusal last reported: a request refused again for the same cause is retried
    // quietly (the status keeps saying `refused`); a new cause, or the first, is an event.
    let mut reported: Option<RemoteRefusal> = None;
    loop {
        if leave.is_cancelled() || !session.is_alive() {
            return waiting();
        }
        if reported.is_none() {
            slot.set(Some(&route), &bind, None, RemoteForwardState::Requested);
            ctx.shared.emit(Event::RemoteForwardRequested {
                remote: i,
                route: route.clone(),
                bind: bind.to_string(),
            });
        }
        let answer = tokio::select! {
            a = session.request_remote(&bind.host, bind.port) => a,
            _ = session.lost().cancelled() => return waiting(),
        };
        match answer {
            Ok(port) => {
                set_bound(bound, i, Some((bind.host.clone(), port)));
                slot.set(Some(&route), &bind, Some(port), RemoteForwardState::Active);
                ctx.shared.emit(Event::RemoteForwardActive {
                    remote: i,
                    route: route.clone(),
                    bind: bind.to_string(),
                    port,
                    allocated: bind.port == 0,
                    target: forward.target.to_string(),
                });
                tokio::select! {
                    _ = leave.cancelled() => {}
                    _ = session.lost().cancelled() => {}
                }
                set_bound(bound, i, None);
                waiting();
                if session.is_alive() && !ctx.stopping.is_cancelled() {
                    cancel_in_background(ctx, i, session, &bind, port);
                }
                return;
            }
            Err(cause) => {
                let retry_in = retry_delay(failures);
                failures = failures.saturating_add(1);
                slot.set(
                    Some(&route),
                    &bind,
                    None,
                    RemoteForwardState::Refused { cause, retry_in },
                );
                if reported != Some(cause) {
                    reported = Some(cause);
                    ctx.shared.emit(Event::RemoteForwardRefused {
                        remote: i,
                        route: route.clone(),
                        bind: bind.to_string(),
                        cause,
                        retry_in,
                    });
                } else {
                    tracing::debug!(
                        route = %route,
                        "remote forward {i} on {bind}: refused again ({cause}); next request in {}",
                        crate::status::delay_text(retry_in)
                    );
                }
                tokio::select! {
                    _ = tokio::time::sleep(retry_in) => {}
                    _ = leave.cancelled() => return waiting(),
                    _ = session.lost().cancelled() => return waiting(),
                }
            }
        }
    }
}

fn set_bound(bound: &Bound, i: usize, v: Option<(String, u16)>) {
    if let Ok(mut b) = bound.lock() {
        if let Some(x) = b.get_mut(i) {
            *x = v;
        }
    }
}

/// `cancel-tcpip-forward` on a session the tunnel left, without holding up the move.
fn cancel_in_background(
    ctx: &Arc<RemoteCtx>,
    i: usize,
    session: &Arc<RouteSession>,
    bind: &RemoteBind,
    port: u16,
) {
    let (ctx2, session, host) = (ctx.clone(), session.clone(), bind.host.clone());
    let shown = RemoteBind {
        host: host.clone(),
        port,
    }
    .to_string();
    ctx.tracker.spawn(
        async move {
            match session.cancel_remote(&host, port).await {
                Ok(()) => ctx2.shared.emit(Event::RemoteForwardCancelled {
                    remote: i,
                    route: session.route().to_string(),
                    bind: shown,
                }),
                Err(e) => tracing::info!(
                    route = session.route(),
                    "remote forward {i}: cancelling {shown} on the bastion the tunnel left: {e}"
                ),
            }
        }
        .in_current_span(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_fast_for_a_stale_listener_then_back_off_to_a_minute() {
        let got: Vec<u128> = (0..8).map(|n| retry_delay(n).as_millis()).collect();
        assert_eq!(got, vec![250, 500, 1000, 2000, 2000, 2000, 2000, 2000]);
        let fast: Duration = (0..RETRY_FAST_COUNT).map(retry_delay).sum();
        assert!(
            fast > Duration::from_secs(20) && fast < Duration::from_secs(35),
            "{fast:?}"
        );
        let slow: Vec<u64> = (RETRY_FAST_COUNT..RETRY_FAST_COUNT + 6)
            .map(|n| retry_delay(n).as_secs())
            .collect();
        assert_eq!(slow, vec![4, 8, 16, 32, 60, 60]);
        assert_eq!(retry_delay(u32::MAX), RETRY_MAX);
        // Requests in the first hour of a refusal that never ends: a few a minute at most.
        let mut t = Duration::ZERO;
        let mut n = 0u32;
        while t < Duration::from_secs(3600) && n < 10_000 {
            t += retry_delay(n);
            n += 1;
        }
        assert!(n < 90, "{n} requests in an hour");
    }
}
