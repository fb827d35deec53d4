//! What the metrics learn from the agent's event stream: failovers (with their RTO, the time
//! from detecting the failure to the new route being up) and failbacks, per profile. The
//! status does not keep these, so a task subscribed before the first profile starts folds
//! each event into a small table that a scrape copies.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tunnelkit_core::Event;

use super::render::EventStats;
use crate::events::{AgentEvent, ProfileEvent};
use crate::status::unix_ms;

/// The table a scrape reads: per profile, and how many events were missed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Learned {
    pub by_profile: HashMap<String, EventStats>,
    pub missed: u64,
}

/// Folds one event into the table (pure; the task below only moves events here).
pub(crate) fn learn(table: &mut Learned, e: &ProfileEvent) {
    match &e.event {
        AgentEvent::Tunnel(Event::Failover { took, .. }) => {
            let s = table.by_profile.entry(e.profile.clone()).or_default();
            s.failovers += 1;
            s.last_rto = Some(*took);
            s.last_failover_unix_ms = Some(unix_ms(e.time));
        }
        AgentEvent::Tunnel(Event::Failback { .. }) => {
            table
                .by_profile
                .entry(e.profile.clone())
                .or_default()
                .failbacks += 1;
        }
        _ => {}
    }
}

/// Shared between the learning task and the scrapes; the lock is held only to copy or fold.
pub(crate) type Shared = Arc<Mutex<Learned>>;

/// Reads `events` until `cancel` or the registry is gone, folding each into `table`.
pub(crate) async fn follow(
    mut events: broadcast::Receiver<ProfileEvent>,
    table: Shared,
    cancel: CancellationToken,
) {
    loop {
        let got = tokio::select! {
            _ = cancel.cancelled() => return,
            r = events.recv() => r,
        };
        match got {
            Ok(e) => {
                if let Ok(mut t) = table.lock() {
                    learn(&mut t, &e);
                }
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                if let Ok(mut t) = table.lock() {
                    t.missed += n;
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn ev(profile: &str, event: Event) -> ProfileEvent {
        ProfileEvent {
            profile: profile.into(),
            time: UNIX_EPOCH + Duration::from_millis(5_000),
            event: AgentEvent::Tunnel(event),
        }
    }

    #[test]
    fn failovers_keep_the_last_rto_and_failbacks_are_counted() {
        let mut t = Learned::default();
        let fo = |ms| Event::Failover {
            from: "a".into(),
            to: "b".into(),
            took: Duration::from_millis(ms),
        };
        learn(&mut t, &ev("db", fo(900)));
        learn(&mut t, &ev("db", fo(1500)));
        learn(
            &mut t,
            &ev(
                "db",
                Event::Failback {
                    from: "b".into(),
                    to: "a".into(),
                },
            ),
        );
        learn(&mut t, &ev("web", Event::Stopped { error: None }));
        let db = &t.by_profile["db"];
        assert_eq!(db.failovers, 2);
        assert_eq!(db.failbacks, 1);
        assert_eq!(db.last_rto, Some(Duration::from_millis(1500)));
        assert_eq!(db.last_failover_unix_ms, Some(5_000));
        assert!(!t.by_profile.contains_key("web"));
    }

    #[tokio::test]
    async fn the_task_counts_what_it_missed() {
        let (tx, rx) = broadcast::channel(2);
        for _ in 0..5 {
            let _ = tx.send(ev(
                "db",
                Event::Failback {
                    from: "b".into(),
                    to: "a".into(),
                },
            ));
        }
        drop(tx);
        let table = Shared::default();
        follow(rx, table.clone(), CancellationToken::new()).await;
        let t = table.lock().unwrap();
        assert_eq!(t.missed, 3);
        assert_eq!(t.by_profile["db"].failbacks, 2);
    }
}
