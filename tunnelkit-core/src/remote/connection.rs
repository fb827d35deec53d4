//! One connection of a remote forward: the bastion's client connected to its listener, the
//! server opened a `forwarded-tcpip` channel to us, and we connect to the target on this side
//! (with a deadline) before accepting the channel, as ssh does: a target that is down is a
//! refused channel (`connect failed`), not an accepted one that closes at once. Then the same
//! data path as a local forward ([`crate::pump`]), flow-controlled both ways.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use russh::ChannelOpenFailure;
use tokio::net::TcpStream;

use super::RemoteCtx;
use crate::config::defaults;
use crate::error::os_reason;
use crate::pump::{pump, Counters};
use crate::session::{Forwarded, RouteSession};
use crate::status::{Event, ForwardCounters};

/// How long connecting to a remote forward's target on this side may take.
pub(crate) const TARGET_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Decrements `active` when a connection ends, however it ends.
struct ActiveGuard(Arc<ForwardCounters>);
impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Carries one forwarded connection of remote forward `index` until it ends, the session is
/// lost or the tunnel stops.
pub(crate) async fn serve(ctx: &RemoteCtx, index: usize, session: Arc<RouteSession>, f: Forwarded) {
    let (Some(forward), Some(slot)) = (ctx.forwards.get(index), ctx.shared.remotes.get(index))
    else {
        return;
    };
    let c = &slot.counters;
    c.total.fetch_add(1, Ordering::Relaxed);
    let limit = u64::try_from(forward.max_connections).unwrap_or(u64::MAX);
    if c.active.fetch_add(1, Ordering::Relaxed) >= limit {
        c.active.fetch_sub(1, Ordering::Relaxed);
        let why = format!(
            "{}: the limit of {} connections is reached",
            f.originator, forward.max_connections
        );
        return refuse(ctx, index, c, f, ChannelOpenFailure::ResourceShortage, why).await;
    }
    let _active = ActiveGuard(c.clone());
    let target = &forward.target;
    let connect = TcpStream::connect((target.host.as_str(), target.port));
    let stream = tokio::select! {
        _ = ctx.stopping.cancelled() => return,
        _ = session.lost().cancelled() => return,
        r = tokio::time::timeout(TARGET_CONNECT_TIMEOUT, connect) => r,
    };
    let stream = match stream {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let why = format!("{}: connect to {target}: {}", f.originator, os_reason(&e));
            return refuse(ctx, index, c, f, ChannelOpenFailure::ConnectFailed, why).await;
        }
        Err(_) => {
            let why = format!(
                "{}: connect to {target}: no answer within {TARGET_CONNECT_TIMEOUT:?}",
                f.originator
            );
            return refuse(ctx, index, c, f, ChannelOpenFailure::ConnectFailed, why).await;
        }
    };
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!("TCP_NODELAY: {e}");
    }
    let Forwarded {
        channel,
        reply,
        originator,
        ..
    } = f;
    reply.accept().await;
    let _in_use = session.in_use();
    tracing::debug!(
        remote = index,
        route = session.route(),
        "{originator} connected through the bastion to {target}"
    );
    // `up` is what this side's target sends back, `down` what goes to it.
    let counters = Counters {
        up: &c.bytes_in,
        down: &c.bytes_out,
    };
    tokio::select! {
        _ = ctx.stopping.cancelled() => {}
        _ = session.lost().cancelled() => {
            tracing::info!(remote = index, route = session.route(), "{originator}: closed, its route's session was lost");
        }
        r = pump(stream, channel, counters, defaults::COPY_BUFFER) => {
            if let Err(e) = r {
                tracing::debug!(remote = index, "{originator}: {e}");
            }
        }
    }
}

async fn refuse(
    ctx: &RemoteCtx,
    index: usize,
    c: &ForwardCounters,
    f: Forwarded,
    code: ChannelOpenFailure,
    reason: String,
) {
    c.failed.fetch_add(1, Ordering::Relaxed);
    f.reply.reject(code).await;
    ctx.shared.emit(Event::RemoteConnectionFailed {
        remote: index,
        reason,
    });
}
