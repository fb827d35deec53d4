//! The supervisor's rules, run end to end with a scripted [`Connector`] in paused tokio time:
//! each case is a script of what the routes do and when, and the events expected (with time
//! windows) and forbidden. The whole table runs in milliseconds of real time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::config::{Backoff, Failback, Hop, HopOptions, Route};
use crate::status::Status;

/// What a connection attempt to a route does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Reach {
    Up,
    Refused,
    AuthRefused,
    HostKeyChanged,
    /// The login needs a person (a one-time code) and nobody could be asked.
    NeedsInput,
    /// The attempt hangs (a SYN into a network that went away) until a 3 s deadline.
    Stuck,
}

/// One step of a script.
#[derive(Debug, Clone, Copy)]
pub(super) enum Act {
    /// From now on, attempts to the route do this.
    Set(usize, Reach),
    /// The route's live session ends in order (sshd's UnusedConnectionTimeout).
    Close(usize),
    /// The route's live session is reset.
    Reset(usize),
    /// The route's live session goes silent (black hole): no reads, no answers.
    Mute(usize),
    /// A local connection starts waiting for a route (true) or gives up (false).
    Waiting(bool),
    /// The network changed.
    NetChange,
    /// A drill is asked (`true`: stay on the DR route).
    Drill(bool),
    /// From now on, test connections through the route fail (the target is down there).
    TargetDown(usize),
    /// Someone can answer prompts now (`TunnelControl::retry_now`).
    Answer,
}

/// Time one attempt takes.
const CONNECT: Duration = Duration::from_millis(20);
/// Round trip of a keepalive on a healthy session.
const RTT: Duration = Duration::from_millis(10);

struct FakeLink {
    route: usize,
    lost: CancellationToken,
    loss: Mutex<Option<SessionLoss>>,
    heard: Mutex<Instant>,
    muted: AtomicBool,
}

struct FakeSession(Arc<FakeLink>);

impl Link for FakeSession {
    fn lost(&self) -> &CancellationToken {
        &self.0.lost
    }
    fn loss(&self) -> SessionLoss {
        self.0
            .loss
            .lock()
            .ok()
            .and_then(|l| l.clone())
            .unwrap_or(SessionLoss::Stopped)
    }
    fn last_heard(&self) -> Instant {
        self.0
            .heard
            .lock()
            .map(|h| *h)
            .unwrap_or_else(|_| Instant::now())
    }
    async fn probe(&self, within: Duration) -> bool {
        if self.0.muted.load(Ordering::SeqCst) {
            tokio::time::sleep(within).await;
            return false;
        }
        tokio::time::sleep(RTT).await;
        if let Ok(mut h) = self.0.heard.lock() {
            *h = Instant::now();
        }
        true
    }
    fn abandon(&self, loss: SessionLoss) {
        if let Ok(mut l) = self.0.loss.lock() {
            l.get_or_insert(loss);
        }
        self.0.lost.cancel();
    }
}

#[derive(Default)]
struct Sim {
    reach: Vec<Reach>,
    target_down: Vec<bool>,
    live: Vec<Option<Arc<FakeLink>>>,
    /// (ms since start, route, purpose) of every attempt.
    attempts: Vec<(u64, usize, Purpose)>,
}

struct FakeConnector {
    sim: Arc<Mutex<Sim>>,
    t0: Instant,
}

impl Connector for FakeConnector {
    type Session = FakeSession;
    async fn connect(&self, route: usize, purpose: Purpose) -> crate::Result<FakeSession> {
        let reach = {
            let mut sim = self
                .sim
                .lock()
                .map_err(|_| Error::Config("poisoned".into()))?;
            sim.attempts.push((ms(self.t0), route, purpose));
            sim.reach[route]
        };
        tokio::time::sleep(CONNECT).await;
        let host = format!("route{route}");
        match reach {
            Reach::Stuck => {
                tokio::time::sleep(Duration::from_secs(3) - CONNECT).await;
                Err(Error::Timeout {
                    stage: crate::error::Stage::Connect,
                    host,
                    port: 22,
                    after: Duration::from_secs(3),
                })
            }
            Reach::Up => {
                let link = Arc::new(FakeLink {
                    route,
                    lost: CancellationToken::new(),
                    loss: Mutex::new(None),
                    heard: Mutex::new(Instant::now()),
                    muted: AtomicBool::new(false),
                });
                if let Ok(mut sim) = self.sim.lock() {
                    sim.live[route] = Some(link.clone());
                }
                Ok(FakeSession(link))
            }
            Reach::Refused => Err(Error::Connect {
                host,
                port: 22,
                reason: "connection refused".into(),
            }),
            Reach::AuthRefused => Err(Error::AuthRejected {
                user: "u".into(),
                host,
                tried: "publickey".into(),
                allowed: "publickey".into(),
            }),
            Reach::NeedsInput => Err(Error::NeedsInput(format!(
                "u@{host}: keyboard-interactive answer for u@{host}"
            ))),
            Reach::HostKeyChanged => Err(Error::HostKeyChanged {
                host,
                key_type: "ssh-ed25519".into(),
                fingerprint: "SHA256:x".into(),
                file: "/known_hosts".into(),
                line: 1,
            }),
        }
    }

    async fn check_forward(
        &self,
        session: &FakeSession,
        route: usize,
        _forward: usize,
    ) -> crate::Result<Option<usize>> {
        tokio::time::sleep(RTT).await;
        let down = self
            .sim
            .lock()
            .map(|s| s.target_down[route])
            .unwrap_or(true);
        if session.0.lost.is_cancelled() || down {
            return Err(Error::ChannelRefused {
                target: "t:1".into(),
                hop: format!("route{route}"),
                reason: "connect failed".into(),
            });
        }
        Ok(Some(12))
    }
}

fn ms(t0: Instant) -> u64 {
    u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn short(e: &Event) -> String {
    match e {
        Event::Connecting { route } => format!("connecting {route}"),
        Event::RouteUp { route, .. } => format!("up {route}"),
        Event::RouteFailed { route, .. } => format!("failed {route}"),
        Event::SessionEnded { route, cause } => {
            let kind = match cause {
                SessionLoss::Closed { .. } => "closed",
                SessionLoss::Reset { .. } => "reset",
                SessionLoss::Silent { .. } => "silent",
                SessionLoss::NoAnswerAfterNetworkChange { .. } => "no answer after network change",
                _ => "other",
            };
            format!("ended {route} {kind}")
        }
        Event::Failover { from, to, .. } => format!("failover {from}->{to}"),
        Event::Failback { from, to } => format!("failback {from}->{to}"),
        Event::Backoff { .. } => "backoff".into(),
        Event::StandbyReady { route, .. } => format!("standby ready {route}"),
        Event::StandbyBroken { route, .. } => format!("standby broken {route}"),
        Event::Stopped { error } => format!("stopped {}", error.is_some()),
        other => other.to_string(),
    }
}

pub(super) struct Case {
    pub(super) name: &'static str,
    pub(super) routes: usize,
    pub(super) backoff: Backoff,
    /// ServerAliveInterval (s) x ServerAliveCountMax.
    pub(super) keepalive: (u64, u32),
    pub(super) script: &'static [(u64, Act)],
    pub(super) run_ms: u64,
    /// (event, earliest ms, latest ms), in order (other events may come in between).
    pub(super) expect: &'static [(&'static str, u64, u64)],
    /// Events that must not happen at all.
    pub(super) forbid: &'static [&'static str],
    /// (route, earliest ms, latest ms, how many carry attempts to it in that window, at most).
    pub(super) attempts: &'static [(usize, u64, u64, usize)],
}

const NAMES: [&str; 3] = ["primary", "dr", "dr2"];

pub(super) fn config(routes: usize, backoff: Backoff, keepalive: (u64, u32)) -> TunnelConfig {
    let o = HopOptions {
        server_alive_interval: Duration::from_secs(keepalive.0),
        server_alive_count_max: keepalive.1,
        ..Default::default()
    };
    let o = Arc::new(o);
    let mut c = TunnelConfig::new(
        (0..routes)
            .map(|i| Route {
                name: NAMES[i].into(),
                hops: vec![Hop::new("u", format!("route{i}"), 22, o.clone())],
            })
            .collect(),
        Vec::new(),
    );
    c.failback = Failback::After(Duration::from_secs(2));
    c.failback_probe_interval = Duration::from_millis(300);
    c.backoff = backoff;
    // The cases here are about the route in use; standby probes have their own file.
    c.standby_probe = None;
    c
}

pub(super) const FAST: Backoff = Backoff {
    min: Duration::from_millis(200),
    max: Duration::from_secs(2),
    reset_after: Duration::from_secs(30),
};
/// A backoff so long that only demand or a network change can end it within a case.
const SLOW: Backoff = Backoff {
    min: Duration::from_secs(30),
    max: Duration::from_secs(60),
    reset_after: Duration::from_secs(30),
};

/// Events as (ms, short text), attempts as (ms, route, purpose).
pub(super) type Log = Vec<(u64, String)>;
pub(super) type Attempts = Vec<(u64, usize, Purpose)>;

async fn run_case(case: &Case) -> (Log, Attempts) {
    let c = config(case.routes, case.backoff, case.keepalive);
    let r = run_config(case, c).await;
    (r.log, r.attempts)
}

/// What a run showed.
pub(super) struct Ran {
    pub log: Log,
    pub attempts: Attempts,
    /// The status at the end of the run.
    pub status: Status,
    /// The answer to each drill asked.
    pub drills: Vec<Result<crate::drill::DrillReport, crate::drill::DrillError>>,
    /// (ms, route of the session published to new connections, `None` for none).
    pub served: Vec<(u64, Option<usize>)>,
}

/// Runs `case`'s script on a tunnel configured as `config`.
pub(super) async fn run_config(case: &Case, config: TunnelConfig) -> Ran {
    let t0 = Instant::now();
    let sim = Arc::new(Mutex::new(Sim {
        reach: vec![Reach::Up; case.routes],
        target_down: vec![false; case.routes],
        live: vec![None; case.routes],
        attempts: Vec::new(),
    }));
    let shared = Arc::new(Shared::new(Vec::new()));
    shared.set_routes(config.routes.iter().map(|r| r.name.as_str()));
    let mut events = shared.events.subscribe();
    let collector = tokio::spawn(async move {
        let mut log = Vec::new();
        while let Ok(e) = events.recv().await {
            let stop = matches!(e, Event::Stopped { .. });
            log.push((ms(t0), short(&e)));
            if stop {
                break;
            }
        }
        log
    });
    let (current, mut sessions) = watch::channel::<Option<Arc<FakeSession>>>(None);
    let watcher = tokio::spawn(async move {
        let mut served = Vec::new();
        while sessions.changed().await.is_ok() {
            let r = sessions.borrow_and_update().as_ref().map(|s| s.0.route);
            served.push((ms(t0), r));
        }
        served
    });
    let cancel = CancellationToken::new();
    let triggers = Triggers::default();
    let (commands, commands_rx) = tokio::sync::mpsc::channel(COMMAND_QUEUE);
    let mut drills = Vec::new();
    let supervisor = Supervisor {
        commands: commands_rx,
        config: Arc::new(config),
        connector: Arc::new(FakeConnector {
            sim: sim.clone(),
            t0,
        }),
        shared: shared.clone(),
        current,
        cancel: cancel.clone(),
        triggers: triggers.clone(),
    };
    let task = tokio::spawn(supervisor.run());
    let mut waiting = None;
    for (at, act) in case.script {
        tokio::time::sleep_until(t0 + Duration::from_millis(*at)).await;
        let live = |r: usize| sim.lock().ok().and_then(|s| s.live[r].clone());
        match *act {
            Act::Set(r, reach) => {
                if let Ok(mut s) = sim.lock() {
                    s.reach[r] = reach;
                }
            }
            Act::Close(r) | Act::Reset(r) => {
                let loss = if matches!(act, Act::Close(_)) {
                    SessionLoss::Closed {
                        hop: "h".into(),
                        detail: "EOF".into(),
                    }
                } else {
                    SessionLoss::Reset {
                        hop: "h".into(),
                        detail: "reset".into(),
                    }
                };
                if let Some(l) = live(r) {
                    FakeSession(l).abandon(loss);
                }
            }
            Act::Mute(r) => {
                if let Some(l) = live(r) {
                    l.muted.store(true, Ordering::SeqCst);
                }
            }
            Act::Waiting(true) => waiting = Some(triggers.demand.wait()),
            Act::Waiting(false) => waiting = None,
            Act::NetChange => triggers.network.notify_one(),
            Act::Answer => triggers.input.notify_one(),
            Act::Drill(stay) => {
                let (reply, answer) = tokio::sync::oneshot::channel();
                let options = crate::drill::DrillOptions { stay };
                let _ = commands.send(Command::Drill { options, reply }).await;
                drills.push(answer);
            }
            Act::TargetDown(r) => {
                if let Ok(mut s) = sim.lock() {
                    s.target_down[r] = true;
                }
            }
        }
    }
    tokio::time::sleep_until(t0 + Duration::from_millis(case.run_ms)).await;
    drop(waiting);
    let status = shared.snapshot();
    cancel.cancel();
    let _ = task.await;
    let log = collector.await.unwrap_or_default();
    let attempts = sim.lock().map(|s| s.attempts.clone()).unwrap_or_default();
    let mut answers = Vec::new();
    for d in drills {
        answers.push(d.await.unwrap_or(Err(crate::drill::DrillError::Stopped)));
    }
    drop(commands);
    let mut served = watcher.await.unwrap_or_default();
    // The stop at the end is not part of the script.
    served.retain(|(t, _)| *t < case.run_ms);
    Ran {
        log,
        attempts,
        status,
        drills: answers,
        served,
    }
}

pub(super) fn check(case: &Case, log: &[(u64, String)], attempts: &[(u64, usize, Purpose)]) {
    let show = || format!("{}:\nevents {log:#?}\nattempts {attempts:?}", case.name);
    let mut from = 0;
    for (want, lo, hi) in case.expect {
        let found = log[from..]
            .iter()
            .position(|(_, e)| e.as_str() == *want)
            .map(|k| from + k);
        let Some(k) = found else {
            panic!("expected `{want}` in {}", show());
        };
        let at = log[k].0;
        assert!(
            (*lo..=*hi).contains(&at),
            "`{want}` at {at} ms, expected within {lo}..={hi} ms in {}",
            show()
        );
        from = k + 1;
    }
    for bad in case.forbid {
        assert!(
            !log.iter().any(|(_, e)| e.as_str() == *bad),
            "`{bad}` happened in {}",
            show()
        );
    }
    for (route, lo, hi, most) in case.attempts {
        let n = attempts
            .iter()
            .filter(|(at, r, p)| r == route && *p == Purpose::Carry && (*lo..=*hi).contains(at))
            .count();
        assert!(
            n <= *most,
            "{n} attempts to route {route} in {lo}..={hi} ms (at most {most}) in {}",
            show()
        );
    }
}

#[tokio::test(start_paused = true)]
async fn supervisor_rules() {
    use Act::*;
    use Reach::*;
    let cases = [
        Case {
            name: "a reset fails over at once",
            routes: 2,
            backoff: FAST,
            keepalive: (1, 3),
            script: &[(1000, Reset(0))],
            run_ms: 1500,
            expect: &[
                ("up primary", 20, 20),
                ("ended primary reset", 1000, 1000),
                ("failed primary", 1000, 1000),
                ("up dr", 1020, 1020),
                ("failover primary->dr", 1020, 1020),
            ],
            forbid: &["backoff"],
            attempts: &[(0, 1000, 1500, 0)],
        },
        Case {
            name: "an orderly close reconnects to the same route, no failover",
            routes: 2,
            backoff: FAST,
            keepalive: (1, 3),
            script: &[(2000, Close(0)), (4000, Close(0)), (6000, Close(0))],
            run_ms: 10_000,
            expect: &[
                ("up primary", 20, 20),
                ("ended primary closed", 2000, 2000),
                ("up primary", 2020, 2020),
                ("ended primary closed", 4000, 4000),
                ("up primary", 4020, 4020),
                ("ended primary closed", 6000, 6000),
                ("up primary", 6020, 6020),
            ],
            forbid: &["failover primary->dr", "failed primary", "up dr", "backoff"],
            attempts: &[(1, 0, 10_000, 0)],
        },
        Case {
            name: "an orderly close fails over when the route cannot be reached again",
            routes: 2,
            backoff: FAST,
            keepalive: (1, 3),
            script: &[(1999, Set(0, Refused)), (2000, Close(0))],
            run_ms: 3000,
            expect: &[
                ("ended primary closed", 2000, 2000),
                ("failed primary", 2020, 2020),
                ("up dr", 2040, 2040),
                ("failover primary->dr", 2040, 2040),
            ],
            forbid: &["backoff"],
            attempts: &[],
        },
        Case {
            name: "a server closing every session at once is retried at most once per gap (0.5 s)",
            routes: 1,
            backoff: FAST,
            keepalive: (1, 3),
            script: &[
                (1000, Close(0)),
                (1030, Close(0)),
                (1530, Close(0)),
                (2550, Close(0)),
            ],
            run_ms: 3000,
            expect: &[
                ("up primary", 20, 20),
                ("up primary", 1020, 1020),
                ("up primary", 1520, 1520),
                ("up primary", 2020, 2020),
                ("up primary", 2570, 2570),
            ],
            forbid: &[],
            attempts: &[(0, 1001, 1499, 0), (0, 1501, 1999, 0)],
        },
        Case {
            name: "silence is detected after interval x count and fails over",
            routes: 2,
            backoff: FAST,
            keepalive: (1, 3),
            script: &[(5000, Mute(0))],
            run_ms: 9000,
            expect: &[
                // The last answer came at ~4060 ms (probes every ~1010 ms).
                ("ended primary silent", 7000, 7100),
                ("up dr", 7020, 7120),
                ("failover primary->dr", 7020, 7120),
            ],
            forbid: &[],
            attempts: &[],
        },
        Case {
            name: "a network change with a dead session replaces it within the probe wait",
            routes: 2,
            backoff: FAST,
            // Keepalives (10 s x 3) alone would take until ~34 s.
            keepalive: (10, 3),
            script: &[(5000, Mute(0)), (5100, NetChange)],
            run_ms: 9000,
            expect: &[
                ("ended primary no answer after network change", 8100, 8100),
                ("up dr", 8120, 8120),
            ],
            forbid: &["ended primary silent"],
            attempts: &[],
        },
        Case {
            name: "a network change during a stuck attempt starts another, which wins",
            routes: 1,
            backoff: FAST,
            keepalive: (1, 3),
            script: &[(0, Set(0, Stuck)), (1000, Set(0, Up)), (1000, NetChange)],
            run_ms: 5000,
            expect: &[("up primary", 1220, 1220)],
            forbid: &["failed primary", "backoff"],
            attempts: &[],
        },
        Case {
            name: "a network change with a healthy session changes nothing",
            routes: 2,
            backoff: FAST,
            keepalive: (1, 3),
            script: &[(1000, NetChange), (1500, NetChange)],
            run_ms: 6000,
            expect: &[("up primary", 20, 20)],
            forbid: &["ended primary no answer after network change", "up dr"],
            attempts: &[(0, 21, 6000, 0)],
        },
        Case {
            name: "failback after the hold time, not before",
            routes: 2,
            backoff: FAST,
            keepalive: (1, 3),
            script: &[(0, Set(0, Refused)), (3000, Set(0, Up))],
            run_ms: 8000,
            expect: &[
                ("failed primary", 20, 20),
                ("up dr", 40, 40),
                // Probed every 300 ms: healthy from the first probe after 3 s, held 2 s.
                ("failback dr->primary", 5000, 5700),
            ],
            forbid: &[],
            attempts: &[],
        },
        Case {
            name: "a flapping primary restarts the hold time",
            routes: 2,
            backoff: FAST,
            keepalive: (1, 3),
            script: &[
                (0, Set(0, Refused)),
                (3000, Set(0, Up)),
                (4000, Set(0, Refused)),
                (4400, Set(0, Up)),
            ],
            run_ms: 9000,
            expect: &[("up dr", 40, 40), ("failback dr->primary", 6400, 7100)],
            forbid: &[],
            attempts: &[],
        },
        Case {
            name: "a host key change disables the route: never tried again, never failed back to",
            routes: 2,
            backoff: FAST,
            keepalive: (1, 3),
            script: &[(0, Set(0, HostKeyChanged)), (1000, Reset(1))],
            run_ms: 6000,
            expect: &[
                ("failed primary", 20, 20),
                ("up dr", 40, 40),
                ("up dr", 1020, 1020),
            ],
            forbid: &["failback dr->primary", "failover dr->primary"],
            attempts: &[(0, 21, 6000, 0)],
        },
        Case {
            name: "refused credentials are probed on the backoff only",
            routes: 2,
            backoff: FAST,
            keepalive: (1, 3),
            script: &[(0, Set(0, AuthRefused))],
            run_ms: 10_000,
            expect: &[("failed primary", 20, 20), ("up dr", 40, 40)],
            forbid: &["failback dr->primary"],
            attempts: &[],
        },
        Case {
            name: "every route down: backoff, then recovery",
            routes: 2,
            backoff: FAST,
            keepalive: (1, 3),
            script: &[
                (0, Set(0, Refused)),
                (0, Set(1, Refused)),
                (3000, Set(1, Up)),
            ],
            run_ms: 8000,
            expect: &[
                ("failed primary", 20, 20),
                ("failed dr", 40, 40),
                ("backoff", 40, 40),
                ("up dr", 3000, 5100),
            ],
            forbid: &[],
            attempts: &[],
        },
        Case {
            name: "a waiting connection cuts the backoff short, once per gap (0.5 s)",
            routes: 1,
            backoff: SLOW,
            keepalive: (1, 3),
            script: &[
                (0, Set(0, Refused)),
                (5000, Waiting(true)),
                (7500, Set(0, Up)),
            ],
            run_ms: 9000,
            expect: &[
                ("backoff", 20, 20),
                ("backoff", 5020, 5020),
                ("up primary", 7520, 7520),
            ],
            forbid: &[],
            attempts: &[(0, 21, 4999, 0), (0, 5000, 7499, 5)],
        },
        Case {
            name: "without a waiting connection the backoff runs its course",
            routes: 1,
            backoff: SLOW,
            keepalive: (1, 3),
            script: &[(0, Set(0, Refused)), (5000, Set(0, Up))],
            run_ms: 20_000,
            expect: &[("backoff", 20, 20)],
            forbid: &["up primary"],
            attempts: &[(0, 21, 20_000, 0)],
        },
        Case {
            name: "a network change during the backoff tries at once",
            routes: 1,
            backoff: SLOW,
            keepalive: (1, 3),
            script: &[(0, Set(0, Refused)), (5000, Set(0, Up)), (6000, NetChange)],
            run_ms: 7000,
            expect: &[("backoff", 20, 20), ("up primary", 6220, 6220)],
            forbid: &[],
            attempts: &[],
        },
    ];
    for case in &cases {
        let started = std::time::Instant::now();
        let (log, attempts) = run_case(case).await;
        check(case, &log, &attempts);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{}: paused time keeps it fast ({:?})",
            case.name,
            started.elapsed()
        );
    }
}

#[tokio::test(start_paused = true)]
async fn backoff_delays_stay_within_the_cap() {
    let case = Case {
        name: "backoff",
        routes: 2,
        backoff: Backoff {
            min: Duration::from_millis(500),
            max: Duration::from_secs(4),
            reset_after: Duration::from_secs(30),
        },
        keepalive: (1, 3),
        script: &[
            (0, Act::Set(0, Reach::Refused)),
            (0, Act::Set(1, Reach::Refused)),
        ],
        run_ms: 60_000,
        expect: &[],
        forbid: &[],
        attempts: &[],
    };
    let (log, _) = run_case(&case).await;
    let backoffs: Vec<u64> = log
        .iter()
        .filter(|(_, e)| e == "backoff")
        .map(|(t, _)| *t)
        .collect();
    // Each round takes 2 x 20 ms; the gaps between rounds are the delays.
    let gaps: Vec<u64> = backoffs.windows(2).map(|w| w[1] - w[0] - 40).collect();
    assert!(gaps.len() >= 10, "{gaps:?}");
    assert!(gaps.iter().all(|g| (500..=4000).contains(g)), "{gaps:?}");
    assert!(
        gaps[gaps.len() - 1] >= 2000,
        "grows to the cap's half at least: {gaps:?}"
    );
}
