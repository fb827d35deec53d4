//! Standby probes and the hot standby, run end to end with the scripted connector of
//! [`tests`](super::tests) in paused time: probes report readiness without disturbing the
//! route in use or its counters, back off on failure, and a hot standby takes over a failover
//! without a handshake.

use std::time::Duration;

use super::tests::{check, config, run_config, Act, Case, Reach, FAST};
use super::Purpose;
use crate::config::TunnelConfig;

/// Two routes, keepalives 1 s x 3, standby probes every second.
fn probed(hot: bool) -> TunnelConfig {
    let mut c = config(2, FAST, (1, 3));
    c.standby_probe = Some(Duration::from_secs(1));
    c.hot_standby = hot;
    c
}

fn count(log: &[(u64, String)], what: &str) -> usize {
    log.iter().filter(|(_, e)| e == what).count()
}

/// Probes of `route` in `lo..=hi` ms: background probes, and the hot standby's logins (which
/// may ask the person attached).
fn background(attempts: &[(u64, usize, Purpose)], route: usize, lo: u64, hi: u64) -> usize {
    attempts
        .iter()
        .filter(|(at, r, p)| {
            *r == route
                && matches!(p, Purpose::Background | Purpose::Standby)
                && (lo..=hi).contains(at)
        })
        .count()
}

#[tokio::test(start_paused = true)]
async fn standby_rules() {
    use Act::*;
    use Reach::*;
    // (case, hot standby, probes of route 1 in the window (lo, hi, least, most), events
    // counted (event, exactly), final readiness of route 1)
    type Row = (
        Case,
        bool,
        (u64, u64, usize, usize),
        &'static [(&'static str, usize)],
        Option<bool>,
    );
    let rows: Vec<Row> = vec![
        (
            Case {
                name: "a healthy standby is reported ready once; the primary is not disturbed",
                routes: 2,
                backoff: FAST,
                keepalive: (1, 3),
                script: &[],
                run_ms: 6000,
                // The first probe within the interval, jittered in its last fifth.
                expect: &[("up primary", 20, 20), ("standby ready dr", 840, 1040)],
                forbid: &[
                    "up dr",
                    "failover primary->dr",
                    "failed dr",
                    "standby broken dr",
                ],
                attempts: &[(1, 0, 6000, 0)],
            },
            false,
            (0, 6000, 5, 7),
            &[("standby ready dr", 1)],
            Some(true),
        ),
        (
            Case {
                name: "refused credentials: broken at once, backed off, ready once fixed",
                routes: 2,
                backoff: FAST,
                keepalive: (1, 3),
                script: &[(0, Set(1, AuthRefused)), (6000, Set(1, Up))],
                run_ms: 9000,
                expect: &[
                    ("standby broken dr", 840, 1040),
                    // The backoff is capped at 2 s.
                    ("standby ready dr", 6000, 8100),
                ],
                forbid: &["up dr", "failover primary->dr"],
                attempts: &[(1, 0, 9000, 0)],
            },
            false,
            // Never more than one probe per 0.8 s, fewer as the backoff grows.
            (1041, 5999, 2, 5),
            &[("standby broken dr", 1), ("standby ready dr", 1)],
            Some(true),
        ),
        (
            Case {
                name: "a changed host key on the standby is reported and probed again",
                routes: 2,
                backoff: FAST,
                keepalive: (1, 3),
                script: &[(0, Set(1, HostKeyChanged))],
                run_ms: 5000,
                expect: &[("standby broken dr", 840, 1040)],
                forbid: &["up dr", "standby ready dr"],
                attempts: &[],
            },
            false,
            (1041, 5000, 1, 4),
            &[("standby broken dr", 1)],
            Some(false),
        ),
        (
            Case {
                name: "hot standby: the failover takes the kept session, no handshake",
                routes: 2,
                backoff: FAST,
                keepalive: (1, 3),
                script: &[(3000, Reset(0))],
                run_ms: 5000,
                expect: &[
                    ("standby ready dr", 840, 1040),
                    ("ended primary reset", 3000, 3000),
                    // No CONNECT time: the session was up already.
                    ("up dr", 3000, 3000),
                    ("failover primary->dr", 3000, 3000),
                ],
                forbid: &["standby broken dr"],
                attempts: &[(1, 0, 5000, 0)],
            },
            true,
            // Kept after the first probe: no more probes.
            (1041, 5000, 0, 0),
            &[("standby ready dr", 1)],
            Some(true),
        ),
        (
            Case {
                name: "hot standby lost: reported broken, brought back",
                routes: 2,
                backoff: FAST,
                keepalive: (1, 3),
                script: &[(3000, Reset(1))],
                run_ms: 6000,
                expect: &[
                    ("standby ready dr", 840, 1040),
                    ("standby broken dr", 3000, 3000),
                    ("standby ready dr", 3800, 5100),
                ],
                forbid: &["up dr"],
                attempts: &[(1, 0, 6000, 0)],
            },
            true,
            (3001, 6000, 1, 1),
            &[("standby ready dr", 2), ("standby broken dr", 1)],
            Some(true),
        ),
        (
            Case {
                name: "a silent hot standby is found by its keepalives",
                routes: 2,
                backoff: FAST,
                keepalive: (1, 3),
                script: &[(3000, Mute(1))],
                run_ms: 9000,
                // Pinged every second, 3 s to answer.
                expect: &[("standby broken dr", 4000, 7100)],
                forbid: &["up dr"],
                attempts: &[],
            },
            true,
            (0, 9000, 2, 3),
            &[],
            None,
        ),
    ];
    for (case, hot, (lo, hi, least, most), counted, ready) in &rows {
        let started = std::time::Instant::now();
        let r = run_config(case, probed(*hot)).await;
        let (log, attempts, status) = (r.log, r.attempts, r.status);
        check(case, &log, &attempts);
        let show = || format!("{}:\nevents {log:#?}\nattempts {attempts:?}", case.name);
        let n = background(&attempts, 1, *lo, *hi);
        assert!(
            (*least..=*most).contains(&n),
            "{n} probes of dr in {lo}..={hi} ms, expected {least}..={most} in {}",
            show()
        );
        for (what, want) in *counted {
            assert_eq!(count(&log, what), *want, "`{what}` in {}", show());
        }
        assert_eq!(
            (status.reconnects, status.failovers),
            if case.name.starts_with("hot standby: the failover") {
                (1, 1)
            } else {
                (0, 0)
            },
            "probes add no reconnects or failovers: {}",
            show()
        );
        if ready.is_some() {
            assert_eq!(status.routes[1].ready, *ready, "{}", show());
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{}: paused time keeps it fast",
            case.name
        );
    }
}

#[tokio::test(start_paused = true)]
async fn probes_off_means_no_probe_and_unknown_readiness() {
    let case = Case {
        name: "standby probes off",
        routes: 2,
        backoff: FAST,
        keepalive: (1, 3),
        script: &[],
        run_ms: 10_000,
        expect: &[("up primary", 20, 20)],
        forbid: &["standby ready dr", "standby broken dr"],
        attempts: &[],
    };
    let r = run_config(&case, config(2, FAST, (1, 3))).await;
    let (log, attempts, status) = (r.log, r.attempts, r.status);
    check(&case, &log, &attempts);
    assert_eq!(background(&attempts, 1, 0, 10_000), 0, "{attempts:?}");
    let names: Vec<(&str, bool, Option<bool>)> = status
        .routes
        .iter()
        .map(|r| (r.name.as_str(), r.in_use, r.ready))
        .collect();
    assert_eq!(names, [("primary", true, Some(true)), ("dr", false, None)]);
}
