//! Which agent events become a desktop notification, and what it says: a pure function of the
//! event and of what was already said (`Said`), so that a profile asking for a passphrase
//! round after round produces one notification, not one per round.

use std::collections::HashSet;

use tunnelkit_core::{AttemptFailure, Event};

use tunnelkit_desktop::notify::{Notification, Urgency};

use crate::events::{AgentEvent, ProfileEvent};

/// What was already said, per profile.
#[derive(Debug, Default)]
pub(crate) struct Said {
    needs_input: HashSet<String>,
}

/// The notification an event calls for, if any.
pub(crate) fn notification_for(said: &mut Said, e: &ProfileEvent) -> Option<Notification> {
    let name = e.profile.as_str();
    let make = |summary: String, body: String, urgency| {
        Some(Notification {
            profile: name.to_string(),
            summary,
            body,
            urgency,
        })
    };
    match &e.event {
        AgentEvent::Tunnel(Event::Failover { from, to, took }) => make(
            format!("tunnelkit: {name} failed over to {to}"),
            format!(
                "Route {from} failed; new connections use {to} ({} ms after the failure).",
                took.as_millis()
            ),
            Urgency::Normal,
        ),
        AgentEvent::Tunnel(Event::Failback { from, to }) => make(
            format!("tunnelkit: {name} is back on {to}"),
            format!("Route {to} is healthy again; new connections use it instead of {from}."),
            Urgency::Low,
        ),
        AgentEvent::Tunnel(Event::Stopped { error: Some(why) }) => {
            said.needs_input.remove(name);
            make(
                format!("tunnelkit: {name} failed"),
                format!("It gave up: {why}. Run `tunnelkit up {name}` to try again."),
                Urgency::Critical,
            )
        }
        AgentEvent::StartFailed { reason } => make(
            format!("tunnelkit: {name} could not start"),
            reason.clone(),
            Urgency::Critical,
        ),
        AgentEvent::Tunnel(Event::RouteFailed {
            route,
            reason,
            failure,
        }) if failure.needs_input() => {
            if !said.needs_input.insert(name.to_string()) {
                return None;
            }
            make(
                format!("tunnelkit: {name} needs input"),
                format!("Route {route}: {reason}. Run `tunnelkit up {name}` to answer."),
                Urgency::Critical,
            )
        }
        AgentEvent::Tunnel(Event::StandbyBroken {
            route,
            reason,
            failure: AttemptFailure::NeedsInput,
        }) => {
            if !said.needs_input.insert(format!("{name}\n{route}")) {
                return None;
            }
            make(
                format!("tunnelkit: {name}'s standby route {route} needs input"),
                format!(
                    "Route {route}: {reason}. A failover to it would wait for a person. \
                     Run `tunnelkit up {name}` to answer."
                ),
                Urgency::Critical,
            )
        }
        AgentEvent::Tunnel(Event::StandbyReady { route, .. }) => {
            said.needs_input.remove(&format!("{name}\n{route}"));
            None
        }
        AgentEvent::Tunnel(Event::RouteUp { .. })
        | AgentEvent::Started
        | AgentEvent::Stopped
        | AgentEvent::Tunnel(Event::Stopped { error: None }) => {
            said.needs_input.remove(name);
            None
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    fn ev(event: AgentEvent) -> ProfileEvent {
        ProfileEvent {
            profile: "db".into(),
            time: SystemTime::now(),
            event,
        }
    }

    fn needs_input() -> AgentEvent {
        AgentEvent::Tunnel(Event::RouteFailed {
            route: "primary".into(),
            reason: "hop 1: the key needs a passphrase".into(),
            failure: tunnelkit_core::AttemptFailure::NeedsInput,
        })
    }

    #[test]
    fn failover_failback_and_giving_up_are_said() {
        let mut s = Said::default();
        let n = notification_for(
            &mut s,
            &ev(AgentEvent::Tunnel(Event::Failover {
                from: "site-a".into(),
                to: "site-b".into(),
                took: Duration::from_millis(2300),
            })),
        )
        .unwrap();
        assert_eq!(n.summary, "tunnelkit: db failed over to site-b");
        assert_eq!(
            n.body,
            "Route site-a failed; new connections use site-b (2300 ms after the failure)."
        );
        assert_eq!(n.urgency, Urgency::Normal);
        let n = notification_for(
            &mut s,
            &ev(AgentEvent::Tunnel(Event::Failback {
                from: "site-b".into(),
                to: "site-a".into(),
            })),
        )
        .unwrap();
        assert_eq!(n.summary, "tunnelkit: db is back on site-a");
        assert_eq!(n.urgency, Urgency::Low);
        let n = notification_for(
            &mut s,
            &ev(AgentEvent::Tunnel(Event::Stopped {
                error: Some("host key changed".into()),
            })),
        )
        .unwrap();
        assert_eq!(n.summary, "tunnelkit: db failed");
        assert!(n.body.contains("tunnelkit up db"), "{}", n.body);
        assert_eq!(n.urgency, Urgency::Critical);
        let n = notification_for(
            &mut s,
            &ev(AgentEvent::StartFailed {
                reason: "forward 0: bind 127.0.0.1:80: permission denied".into(),
            }),
        )
        .unwrap();
        assert_eq!(n.summary, "tunnelkit: db could not start");
    }

    #[test]
    fn needs_input_is_said_once_until_the_route_comes_up() {
        let mut s = Said::default();
        let first = notification_for(&mut s, &ev(needs_input())).unwrap();
        assert_eq!(first.summary, "tunnelkit: db needs input");
        assert!(first.body.ends_with("Run `tunnelkit up db` to answer."));
        assert_eq!(notification_for(&mut s, &ev(needs_input())), None);
        let up = AgentEvent::Tunnel(Event::RouteUp {
            route: "primary".into(),
            took: Duration::from_millis(5),
        });
        assert_eq!(notification_for(&mut s, &ev(up)), None);
        assert!(notification_for(&mut s, &ev(needs_input())).is_some());
    }

    #[test]
    fn routine_events_are_not_said() {
        let mut s = Said::default();
        for e in [
            AgentEvent::Started,
            AgentEvent::Stopped,
            AgentEvent::Tunnel(Event::Connecting {
                route: "primary".into(),
            }),
            AgentEvent::Tunnel(Event::RouteFailed {
                route: "primary".into(),
                reason: "connection refused".into(),
                failure: tunnelkit_core::AttemptFailure::Unreachable,
            }),
            AgentEvent::Tunnel(Event::Stopped { error: None }),
        ] {
            assert_eq!(notification_for(&mut s, &ev(e)), None);
        }
    }
}
