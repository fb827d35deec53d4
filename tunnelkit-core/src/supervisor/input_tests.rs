//! Routes whose login needs a person, run end to end with the scripted connector of
//! [`tests`](super::tests) in paused time: such a route is not logged in to again by the
//! rounds, by a client knocking on a forward, by failback probes or by standby probes until
//! someone can answer or [`NEEDS_INPUT_RETRY`] passed; an answer retries at once.

use super::input::NEEDS_INPUT_RETRY;
use super::tests::{check, config, run_config, Act, Case, Ran, Reach, FAST};
use super::Purpose;
use crate::status::RouteState;

/// Logins to `route` in `lo..=hi` ms, whatever their purpose.
fn logins(r: &Ran, route: usize, lo: u64, hi: u64) -> Vec<(u64, Purpose)> {
    r.attempts
        .iter()
        .filter(|(at, j, _)| *j == route && (lo..=hi).contains(at))
        .map(|(at, _, p)| (*at, *p))
        .collect()
}

fn retry_ms() -> u64 {
    u64::try_from(NEEDS_INPUT_RETRY.as_millis()).unwrap_or(u64::MAX)
}

#[tokio::test(start_paused = true)]
async fn a_knocking_client_does_not_make_logins_while_nobody_can_answer() {
    use Act::*;
    let case = Case {
        name: "one route needs a code; a client waits for 30 s",
        routes: 1,
        backoff: FAST,
        keepalive: (1, 3),
        script: &[(0, Set(0, Reach::NeedsInput)), (100, Waiting(true))],
        run_ms: 30_000,
        expect: &[("failed primary", 0, 100)],
        forbid: &["up primary", "backoff"],
        attempts: &[],
    };
    let r = run_config(&case, config(1, FAST, (1, 3))).await;
    check(&case, &r.log, &r.attempts);
    assert_eq!(
        logins(&r, 0, 0, 30_000).len(),
        1,
        "one login in 30 s: {:?}",
        r.attempts
    );
    assert_eq!(r.status.state, RouteState::NeedsInput);
}

#[tokio::test(start_paused = true)]
async fn an_answer_retries_at_once_and_the_wait_ends_by_itself() {
    use Act::*;
    let answered = Case {
        name: "someone answers after 6 s",
        routes: 1,
        backoff: FAST,
        keepalive: (1, 3),
        script: &[
            (0, Set(0, Reach::NeedsInput)),
            (5000, Set(0, Reach::Up)),
            (6000, Answer),
        ],
        run_ms: 7000,
        expect: &[("failed primary", 0, 100), ("up primary", 6000, 6100)],
        forbid: &[],
        attempts: &[(0, 100, 5999, 0)],
    };
    let r = run_config(&answered, config(1, FAST, (1, 3))).await;
    check(&answered, &r.log, &r.attempts);
    assert_eq!(r.status.state, RouteState::Up);

    // Nobody answers: the next login comes after NEEDS_INPUT_RETRY, not before.
    let retry = retry_ms();
    let alone = Case {
        name: "nobody answers",
        routes: 1,
        backoff: FAST,
        keepalive: (1, 3),
        script: &[(0, Set(0, Reach::NeedsInput)), (100, Waiting(true))],
        run_ms: retry + 1000,
        expect: &[],
        forbid: &["up primary"],
        attempts: &[],
    };
    let r = run_config(&alone, config(1, FAST, (1, 3))).await;
    let at: Vec<u64> = logins(&r, 0, 0, retry + 1000)
        .iter()
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(at.len(), 2, "{at:?}");
    assert!(
        at[1] >= retry && at[1] <= retry + 100,
        "second login at {} ms: {at:?}",
        at[1]
    );
}

#[tokio::test(start_paused = true)]
async fn failback_to_a_primary_that_needs_a_code_waits_for_an_answer() {
    use Act::*;
    let case = Case {
        name: "primary needs a code, DR carries; an answer after 10 min fails back",
        routes: 2,
        backoff: FAST,
        keepalive: (1, 3),
        script: &[
            (0, Set(0, Reach::NeedsInput)),
            (599_000, Set(0, Reach::Up)),
            (600_000, Answer),
        ],
        run_ms: 604_000,
        expect: &[
            ("failed primary", 0, 100),
            ("up dr", 0, 200),
            ("failback dr->primary", 602_000, 603_000),
        ],
        forbid: &[],
        attempts: &[],
    };
    let r = run_config(&case, config(2, FAST, (1, 3))).await;
    check(&case, &r.log, &r.attempts);
    let before = logins(&r, 0, 0, 599_999);
    assert_eq!(
        before.len(),
        1,
        "no failback probe while it waits: {before:?}"
    );
    assert_eq!(r.status.state, RouteState::Up);
}

#[tokio::test(start_paused = true)]
async fn a_hot_standby_that_needs_a_code_asks_and_is_not_probed_until_answered() {
    use Act::*;
    let mut c = config(2, FAST, (1, 3));
    c.standby_probe = Some(std::time::Duration::from_secs(1));
    c.hot_standby = true;
    let case = Case {
        name: "the DR bastion needs a code; answered after 10 min",
        routes: 2,
        backoff: FAST,
        keepalive: (1, 3),
        script: &[
            (0, Set(1, Reach::NeedsInput)),
            (599_000, Set(1, Reach::Up)),
            (600_000, Answer),
        ],
        run_ms: 601_000,
        expect: &[
            ("up primary", 0, 100),
            ("standby broken dr", 800, 1100),
            ("standby ready dr", 600_000, 600_100),
        ],
        forbid: &["up dr", "failover primary->dr"],
        attempts: &[],
    };
    let r = run_config(&case, c).await;
    check(&case, &r.log, &r.attempts);
    let dr = logins(&r, 1, 0, 599_999);
    assert_eq!(dr.len(), 1, "one login to the DR bastion: {dr:?}");
    assert_eq!(
        dr[0].1,
        Purpose::Standby,
        "the hot standby's login may ask the person attached"
    );
    assert!(
        r.status.routes[1].hot,
        "kept as a hot standby once answered"
    );
}
