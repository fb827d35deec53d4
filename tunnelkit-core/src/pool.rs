//! One login, many tunnels: a [`SessionPool`] lets tunnels that go through the same route, as
//! the same user with the same options, share one authenticated SSH session, as OpenSSH's
//! `ControlMaster` does. A second tunnel to a bastion that asks for a one-time code opens without
//! a second code, and a bastion restart costs one login, not one per tunnel.
//!
//! The rules:
//! - **Who shares**: tunnels whose routes have the same [`RouteKey`] (every hop, resolved, equal
//!   in every field) and that have no remote forwards (the bastion hands `forwarded-tcpip`
//!   connections to one session's owner, so a tunnel with `-R` forwards keeps its own session).
//! - **One login at a time per key**: a tunnel that needs a session while another one is
//!   logging in to the same key waits for that attempt; its failure is each waiter's failure
//!   (nobody logs in again at once behind it). If the attempt is abandoned (its tunnel stopped),
//!   the next waiter logs in.
//! - **Liveness is the session's**: a loss (reset, server close, keepalive timeout found by any
//!   of its tunnels) reaches every tunnel at once; they all reconnect, and the first to log in
//!   again puts the new session in the pool for the others.
//! - **Letting go**: a tunnel that stops only lets go of its handle; the session closes when the
//!   last handle is dropped, at once (no linger like `ControlPersist`).
//! - **Background work** (standby and failback probes, hot standby, drills) never asks anyone,
//!   so it never waits on a login attempt: it takes the pool's live session when there is one,
//!   else logs in on its own and offers the result to the pool.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::sync::watch;

use crate::config::{Hop, Route};
use crate::error::Error;
use crate::prompt::Services;
use crate::session::{connect_route, RouteSession, SessionCore};

/// Rounds a tunnel waits behind other tunnels' attempts that were abandoned before it logs in
/// on its own.
const MAX_WAIT_ROUNDS: usize = 8;

/// What two routes must have in common to share a session: every hop of the route as resolved
/// (jump hosts first), compared field by field: host, port, user, `HostKeyAlias`,
/// `ProxyCommand`, and all the hop's [`HopOptions`](crate::HopOptions): identity and
/// certificate files, agent, `IdentitiesOnly`, `BatchMode`, which methods are tried, host key
/// policy and known_hosts files, and the connection options (timeouts, keepalives, ciphers,
/// compression, windows, rekey limit), so that a second login would be indistinguishable from
/// the first. The route's name is not part of it.
///
/// ```
/// use std::sync::Arc;
/// use tunnelkit_core::{Hop, HopOptions, Route, RouteKey};
///
/// let o = Arc::new(HopOptions::default());
/// let route = |name: &str, user: &str| Route {
///     name: name.into(),
///     hops: vec![Hop::new(user, "bastion.example.com", 22, o.clone())],
/// };
/// assert_eq!(RouteKey::of(&route("primary", "ops")), RouteKey::of(&route("main", "ops")));
/// assert_ne!(RouteKey::of(&route("primary", "ops")), RouteKey::of(&route("primary", "dev")));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteKey {
    hops: Vec<Hop>,
}

impl RouteKey {
    /// The key of `route`.
    pub fn of(route: &Route) -> RouteKey {
        RouteKey {
            hops: route.hops.clone(),
        }
    }
}

/// Authenticated sessions shared by the tunnels given the pool (in their
/// [`Services::pool`]): tunnels whose routes have the same [`RouteKey`] use one SSH session
/// (one login, one code at a bastion that asks for one). Create one per program and clone it
/// into each tunnel's services; without a pool every tunnel logs in on its own. See the
/// [module documentation](self) for the rules.
///
/// ```no_run
/// use tunnelkit_core::{Services, SessionPool};
///
/// let pool = SessionPool::new();
/// // For each tunnel:
/// let services = Services {
///     pool: Some(pool.clone()),
///     ..Services::default()
/// };
/// # let _ = services;
/// ```
#[derive(Debug, Clone, Default)]
pub struct SessionPool {
    inner: Arc<PoolInner>,
}

#[derive(Debug, Default)]
struct PoolInner {
    entries: Mutex<Vec<Entry>>,
    /// The last id given to a session or an attempt (ids start at 1).
    next_id: AtomicU64,
}

#[derive(Debug)]
struct Entry {
    key: RouteKey,
    state: State,
}

#[derive(Debug)]
enum State {
    /// A session tunnels may join.
    Live { id: u64, core: Weak<SessionCore> },
    /// A tunnel is logging in; others wait for the outcome.
    Connecting {
        attempt: u64,
        outcome: watch::Receiver<Outcome>,
    },
}

/// How a login attempt others wait on ended.
#[derive(Debug, Clone)]
enum Outcome {
    Running,
    Up { id: u64, core: Weak<SessionCore> },
    Failed(Arc<Error>),
}

/// What a tunnel does next for a key.
enum Step {
    Join(RouteSession),
    Wait(watch::Receiver<Outcome>),
    Lead(Leading),
}

impl SessionPool {
    /// An empty pool.
    pub fn new() -> SessionPool {
        SessionPool::default()
    }

    /// How many sessions are live in the pool now.
    pub fn live_sessions(&self) -> usize {
        self.entries()
            .iter()
            .filter(|e| matches!(e.state, State::Live { .. }))
            .count()
    }

    fn entries(&self) -> MutexGuard<'_, Vec<Entry>> {
        let mut entries = self
            .inner
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Forget sessions that ended and attempts whose tunnel went away: the list stays as
        // long as the number of keys in use.
        entries.retain(|e| match &e.state {
            State::Live { core, .. } => core.upgrade().is_some_and(|c| c.is_alive()),
            State::Connecting { outcome, .. } => outcome.has_changed().is_ok(),
        });
        entries
    }

    fn next_id(&self) -> u64 {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The pool's live session for `route`, as a new handle; `None` when there is none.
    pub(crate) fn join_live(&self, route: &Route) -> Option<RouteSession> {
        let key = RouteKey::of(route);
        let entries = self.entries();
        live(&entries, &key, &route.name)
    }

    /// A session for `route` carrying traffic: the pool's live one, the outcome of another
    /// tunnel's attempt in progress, or a login of our own (asking through `services`) that
    /// the others then share.
    pub(crate) async fn session(
        &self,
        route: &Route,
        services: &Services,
    ) -> crate::Result<RouteSession> {
        let key = RouteKey::of(route);
        for _ in 0..MAX_WAIT_ROUNDS {
            match self.step(&key, &route.name) {
                Step::Join(s) => {
                    tracing::info!(route = %route.name, "sharing the session already logged in to this route");
                    return Ok(s);
                }
                Step::Lead(leading) => return leading.connect(self, route, services).await,
                Step::Wait(mut outcome) => {
                    tracing::info!(route = %route.name, "waiting for another tunnel's login to this route");
                    // Ends when the attempt has an outcome or its tunnel went away.
                    while matches!(*outcome.borrow_and_update(), Outcome::Running) {
                        if outcome.changed().await.is_err() {
                            break;
                        }
                    }
                    let got = outcome.borrow().clone();
                    match got {
                        Outcome::Failed(e) => return Err(e.replicate()),
                        Outcome::Up { id, core } => {
                            if let Some(core) = core.upgrade().filter(|c| c.is_alive()) {
                                return Ok(RouteSession::joined(route.name.clone(), core, id));
                            }
                        }
                        Outcome::Running => {}
                    }
                }
            }
        }
        // Attempts kept being abandoned: log in on our own rather than wait longer.
        connect_route(route, services).await
    }

    /// A background session for `route` (never asks anyone, never waits on another attempt):
    /// the pool's live one, else a login of its own that is offered to the pool.
    pub(crate) async fn background(
        &self,
        route: &Route,
        services: &Services,
    ) -> crate::Result<RouteSession> {
        if let Some(s) = self.join_live(route) {
            return Ok(s);
        }
        let session = connect_route(route, &services.background()).await?;
        let key = RouteKey::of(route);
        let mut entries = self.entries();
        if let Some(s) = live(&entries, &key, &route.name) {
            // Another tunnel logged in meanwhile: share its session, close ours.
            return Ok(s);
        }
        let id = self.next_id();
        let (session, core) = session.into_pooled(id);
        let live = State::Live {
            id,
            core: Arc::downgrade(&core),
        };
        // An attempt in progress for the key keeps its place; it will find ours.
        match entries.iter_mut().find(|e| e.key == key) {
            Some(e) if matches!(e.state, State::Connecting { .. }) => {}
            Some(e) => e.state = live,
            None => entries.push(Entry { key, state: live }),
        }
        Ok(session)
    }

    fn step(&self, key: &RouteKey, route: &str) -> Step {
        let mut entries = self.entries();
        if let Some(s) = live(&entries, key, route) {
            return Step::Join(s);
        }
        if let Some(e) = entries.iter().find(|e| &e.key == key) {
            if let State::Connecting { outcome, .. } = &e.state {
                return Step::Wait(outcome.clone());
            }
        }
        let attempt = self.next_id();
        let (tx, rx) = watch::channel(Outcome::Running);
        let state = State::Connecting {
            attempt,
            outcome: rx,
        };
        match entries.iter_mut().find(|e| &e.key == key) {
            Some(e) => e.state = state,
            None => entries.push(Entry {
                key: key.clone(),
                state,
            }),
        }
        Step::Lead(Leading {
            pool: self.clone(),
            key: key.clone(),
            attempt,
            outcome: tx,
        })
    }
}

/// A new handle to the live session of `key`, if there is one.
fn live(entries: &[Entry], key: &RouteKey, route: &str) -> Option<RouteSession> {
    entries
        .iter()
        .find(|e| &e.key == key)
        .and_then(|e| match &e.state {
            State::Live { id, core } => core
                .upgrade()
                .filter(|c| c.is_alive())
                .map(|c| RouteSession::joined(route.to_string(), c, *id)),
            State::Connecting { .. } => None,
        })
}

/// This tunnel is logging in for a key others may wait on. Dropped before the end (the
/// tunnel stopped), it leaves the key free and wakes the waiters, so the next one logs in.
struct Leading {
    pool: SessionPool,
    key: RouteKey,
    attempt: u64,
    outcome: watch::Sender<Outcome>,
}

impl Leading {
    async fn connect(
        self,
        pool: &SessionPool,
        route: &Route,
        services: &Services,
    ) -> crate::Result<RouteSession> {
        match connect_route(route, services).await {
            Ok(session) => {
                let id = pool.next_id();
                let (session, core) = session.into_pooled(id);
                let weak = Arc::downgrade(&core);
                self.finish(Some(State::Live {
                    id,
                    core: weak.clone(),
                }));
                self.outcome.send_replace(Outcome::Up { id, core: weak });
                Ok(session)
            }
            Err(e) => {
                self.finish(None);
                self.outcome
                    .send_replace(Outcome::Failed(Arc::new(e.replicate())));
                Err(e)
            }
        }
    }

    /// Replaces this attempt's entry with `next` (or removes it), if it is still ours.
    fn finish(&self, next: Option<State>) {
        let mut entries = self.pool.entries();
        let ours = entries.iter().position(|e| {
            e.key == self.key
                && matches!(e.state, State::Connecting { attempt, .. } if attempt == self.attempt)
        });
        match (ours, next) {
            (Some(i), Some(state)) => {
                if let Some(e) = entries.get_mut(i) {
                    e.state = state;
                }
            }
            (Some(i), None) => {
                entries.remove(i);
            }
            (None, Some(state)) => {
                if !entries.iter().any(|e| e.key == self.key) {
                    entries.push(Entry {
                        key: self.key.clone(),
                        state,
                    });
                }
            }
            (None, None) => {}
        }
    }
}

impl Drop for Leading {
    fn drop(&mut self) {
        self.finish(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HopOptions;

    fn route(name: &str, hops: Vec<Hop>) -> Route {
        Route {
            name: name.into(),
            hops,
        }
    }

    #[test]
    fn a_route_key_is_every_hop_resolved_but_not_the_route_name() {
        let o = Arc::new(HopOptions::default());
        let mut other_key = HopOptions::default();
        other_key.auth.identity_files = vec!["/k/other".into()];
        let other_key = Arc::new(other_key);
        let hop = |user: &str, port: u16, o: &Arc<HopOptions>| {
            Hop::new(user, "b.example", port, o.clone())
        };
        let base = RouteKey::of(&route("primary", vec![hop("ops", 22, &o)]));
        assert_eq!(base, RouteKey::of(&route("dr", vec![hop("ops", 22, &o)])));
        // Equal options in another Arc are the same options.
        let copy = Arc::new(HopOptions::default());
        assert_eq!(base, RouteKey::of(&route("p", vec![hop("ops", 22, &copy)])));
        for different in [
            route("primary", vec![hop("dev", 22, &o)]),
            route("primary", vec![hop("ops", 2222, &o)]),
            route("primary", vec![hop("ops", 22, &other_key)]),
            route("primary", vec![hop("ops", 22, &o), hop("ops", 22, &o)]),
            route(
                "primary",
                vec![Hop {
                    host_key_alias: Some("alias".into()),
                    ..hop("ops", 22, &o)
                }],
            ),
        ] {
            assert_ne!(base, RouteKey::of(&different), "{different:?}");
        }
    }
}
