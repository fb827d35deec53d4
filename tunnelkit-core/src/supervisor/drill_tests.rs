//! Drills, run end to end with the scripted connector of [`tests`](super::tests) in paused
//! time: new connections move to the DR route and back (or stay), nothing is cut, nothing is
//! counted as a reconnect or failover, and a DR route that cannot carry the test says why.

use std::time::Duration;

use super::tests::{check, config, run_config, Act, Case, Ran, Reach, FAST};
use crate::config::{Forward, ForwardKind, Target, TunnelConfig};
use crate::drill::{DrillError, DrillReport, ForwardOutcome};
use crate::error::AttemptFailure;
use crate::status::RouteState;

const MS: fn(u64) -> Duration = Duration::from_millis;

/// `routes` routes with one forward; standby probes (and a hot standby) when `hot`.
fn drilled(routes: usize, hot: bool) -> TunnelConfig {
    let mut c = config(routes, FAST, (1, 3));
    c.forwards = vec![Forward::from_spec(&crate::spec::ForwardSpec {
        bind_host: None,
        bind_port: 0,
        remote_host: "vnc".into(),
        remote_port: 5901,
    })];
    if let ForwardKind::Local { route_targets, .. } = &mut c.forwards[0].kind {
        route_targets.push((
            "dr".into(),
            Target {
                host: "vnc.dr".into(),
                port: 5901,
            },
        ));
    }
    if hot {
        c.standby_probe = Some(Duration::from_secs(1));
        c.hot_standby = true;
    }
    c
}

fn case(name: &'static str, routes: usize, script: &'static [(u64, Act)], run_ms: u64) -> Case {
    Case {
        name,
        routes,
        backoff: FAST,
        keepalive: (1, 3),
        script,
        run_ms,
        expect: &[],
        forbid: &["ended primary", "failover primary->dr", "up dr"],
        // No carry attempt after the first: nothing was reconnected.
        attempts: &[(0, 21, 60_000, 0), (1, 0, 60_000, 0)],
    }
}

async fn run(c: &Case, config: TunnelConfig) -> Ran {
    let r = run_config(c, config).await;
    check(c, &r.log, &r.attempts);
    assert_eq!(
        (r.status.reconnects, r.status.failovers),
        (0, 0),
        "{}: a drill is not a reconnect or failover: {:?}",
        c.name,
        r.log
    );
    r
}

fn report(r: &Ran) -> &DrillReport {
    match r.drills.first() {
        Some(Ok(report)) => report,
        other => panic!("expected a report, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_drill_moves_new_connections_and_back() {
    let c = case("drill and back", 2, &[(1000, Act::Drill(false))], 2000);
    let r = run(&c, drilled(2, false)).await;
    let rep = report(&r);
    assert_eq!(
        (rep.from.as_str(), rep.to.as_str(), rep.back_on.as_str()),
        ("primary", "dr", "primary")
    );
    assert_eq!((rep.hot, rep.connect), (false, MS(20)));
    assert_eq!(
        rep.forwards[0].target, "vnc.dr:5901",
        "the DR route's own target"
    );
    // RTO: the DR handshake (20 ms) and the test connection (10 ms).
    assert_eq!(
        rep.forwards[0].outcome,
        ForwardOutcome::Reached {
            rto: MS(30),
            first_bytes: Some(12)
        }
    );
    assert!(rep.carried() && rep.rto() == Some(MS(30)));
    // New connections: primary, dr while the test ran, primary again.
    assert_eq!(r.served, [(20, Some(0)), (1020, Some(1)), (1030, Some(0))]);
    assert_eq!(r.status.route.as_deref(), Some("primary"));
    assert_eq!(r.status.routes[1].ready, Some(true));
    assert!(
        r.log
            .iter()
            .any(|(t, e)| *t == 1030 && e.starts_with("drill: route dr carried")),
        "{:?}",
        r.log
    );
}

#[tokio::test(start_paused = true)]
async fn a_drill_that_stays() {
    let c = case("drill --stay", 2, &[(1000, Act::Drill(true))], 2000);
    let r = run(&c, drilled(2, false)).await;
    assert_eq!(report(&r).back_on, "dr");
    assert_eq!(r.served.last(), Some(&(1030, Some(1))));
    assert_eq!(
        (r.status.state, r.status.route.as_deref()),
        (RouteState::Degraded, Some("dr"))
    );
}

#[tokio::test(start_paused = true)]
async fn a_broken_dr_route_or_target_says_why() {
    let c = case(
        "DR refuses the key",
        2,
        &[
            (0, Act::Set(1, Reach::AuthRefused)),
            (1000, Act::Drill(false)),
        ],
        2000,
    );
    let r = run(&c, drilled(2, false)).await;
    assert!(
        matches!(&r.drills[0], Err(DrillError::RouteDown { route, failure: AttemptFailure::AuthRefused, reason }) if route == "dr" && reason.contains("permission denied")),
        "{:?}",
        r.drills
    );
    assert_eq!(
        r.served,
        [(20, Some(0))],
        "new connections never left the primary"
    );
    assert_eq!(r.status.routes[1].ready, Some(false));

    let c = case(
        "the target is down at the DR site",
        2,
        &[(0, Act::TargetDown(1)), (1000, Act::Drill(false))],
        2000,
    );
    let r = run(&c, drilled(2, false)).await;
    let rep = report(&r);
    assert!(!rep.carried() && rep.rto().is_none());
    assert!(
        matches!(&rep.forwards[0].outcome, ForwardOutcome::Failed { reason } if reason.contains("connect failed")),
        "{rep:?}"
    );
    assert_eq!(
        r.served.last(),
        Some(&(1030, Some(0))),
        "back on the primary"
    );

    let c = case("one route only", 1, &[(1000, Act::Drill(false))], 2000);
    let r = run(&c, drilled(1, false)).await;
    assert!(
        matches!(&r.drills[0], Err(DrillError::NoStandby { in_use }) if in_use == "primary"),
        "{:?}",
        r.drills
    );

    let c = case(
        "two at once",
        2,
        &[(1000, Act::Drill(false)), (1000, Act::Drill(false))],
        2000,
    );
    let r = run(&c, drilled(2, false)).await;
    assert!(
        r.drills[0].is_ok() && r.drills[1] == Err(DrillError::Busy),
        "{:?}",
        r.drills
    );
}

#[tokio::test(start_paused = true)]
async fn a_socks_proxy_is_skipped_not_tested() {
    // Every test connection through the DR route fails; the SOCKS proxy is not one of them.
    let c = case(
        "drill with a SOCKS proxy",
        2,
        &[(0, Act::TargetDown(1)), (1000, Act::Drill(false))],
        2000,
    );
    let mut config = drilled(2, false);
    config.forwards.insert(0, Forward::dynamic(0));
    let r = run(&c, config).await;
    let rep = report(&r);
    assert_eq!(rep.forwards[0].target, "socks");
    assert_eq!(rep.forwards[0].outcome, ForwardOutcome::Skipped);
    assert!(
        matches!(&rep.forwards[1].outcome, ForwardOutcome::Failed { .. }),
        "{rep:?}"
    );
    assert!(!rep.carried() && rep.rto().is_none());

    // Only a SOCKS proxy: the DR session is up, but nothing was tested: no pass.
    let c = case(
        "drill of a SOCKS proxy only",
        2,
        &[(1000, Act::Drill(false))],
        2000,
    );
    let mut config = drilled(2, false);
    config.forwards = vec![Forward::dynamic(0)];
    let r = run(&c, config).await;
    let rep = report(&r);
    assert_eq!(rep.forwards.len(), 1);
    assert_eq!(rep.forwards[0].outcome, ForwardOutcome::Skipped);
    assert_eq!(rep.tested(), 0);
    assert!(!rep.carried(), "nothing was tested");
    assert_eq!(rep.rto(), None, "nothing was measured");
}

#[tokio::test(start_paused = true)]
async fn a_drill_on_a_hot_standby_needs_no_handshake_and_keeps_it() {
    let mut c = case("hot drill", 2, &[(3000, Act::Drill(false))], 5000);
    c.expect = &[("standby ready dr", 840, 1040)];
    let r = run(&c, drilled(2, true)).await;
    let rep = report(&r);
    assert_eq!(
        (rep.hot, rep.connect, rep.rto()),
        (true, Duration::ZERO, Some(MS(10)))
    );
    assert_eq!(r.served, [(20, Some(0)), (3000, Some(1)), (3010, Some(0))]);
    let probes: Vec<_> = r
        .attempts
        .iter()
        .filter(|(_, route, _)| *route == 1)
        .collect();
    assert_eq!(
        probes.len(),
        1,
        "kept up after the drill, not probed again: {probes:?}"
    );
}
