//! DR readiness against real OpenSSH sshds: a standby route whose host key changed, or whose
//! `authorized_keys` lost the key, is reported not ready (with the reason) within one probe
//! interval while the primary keeps serving; fixing it turns it ready again; probes add no
//! reconnects or failovers. A hot standby takes a failover over without a handshake.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use tunnelkit_core::{AttemptFailure, Event, Failback, HopOptions, Services, TunnelConfig};
use tunnelkit_tests::{EchoServer, KeyPair, Sshd, TestDir};

/// The probe interval of these tests.
const PROBE: Duration = Duration::from_secs(1);

struct Sites {
    dir: TestDir,
    key: KeyPair,
    primary: Sshd,
    dr: Sshd,
    echo: tunnelkit_tests::Server,
}

impl Sites {
    async fn start() -> Sites {
        let dir = TestDir::new();
        let key = KeyPair::generate(dir.path(), "client", None);
        let primary = sshd_for(&key);
        let dr = sshd_for(&key);
        let echo = EchoServer::start().await;
        let s = Sites {
            dir,
            key,
            primary,
            dr,
            echo,
        };
        s.trust_current_keys();
        s
    }

    /// Writes known_hosts with both servers' current host keys.
    fn trust_current_keys(&self) -> std::path::PathBuf {
        known_hosts(
            self.dir.path(),
            &[self.primary.known_hosts_line(), self.dr.known_hosts_line()],
        )
    }

    fn config(&self, hot_standby: bool) -> TunnelConfig {
        let kh = self.dir.path().join("known_hosts");
        let mut o: HopOptions = options(&self.key.private, &kh);
        o.server_alive_interval = Duration::from_secs(1);
        o.connect_timeout = Duration::from_secs(3);
        let o = Arc::new(o);
        let mut c = TunnelConfig::new(
            vec![
                route("primary", vec![hop(self.primary.port(), &o)]),
                route("dr", vec![hop(self.dr.port(), &o)]),
            ],
            vec![forward_to(self.echo.addr())],
        );
        c.failback = Failback::Never;
        c.backoff.min = Duration::from_millis(200);
        c.backoff.max = Duration::from_secs(2);
        c.standby_probe = Some(PROBE);
        c.hot_standby = hot_standby;
        c
    }
}

/// Waits for the standby route `dr` to be reported ready (true) or broken (false).
async fn standby(events: &mut tokio::sync::broadcast::Receiver<Event>, ready: bool) -> Event {
    wait_event(events, if ready { "standby ready" } else { "standby broken" }, |e| {
        matches!((e, ready), (Event::StandbyReady { route, .. }, true) | (Event::StandbyBroken { route, .. }, false) if route == "dr")
    })
    .await
}

#[tokio::test]
async fn a_broken_standby_is_reported_while_the_primary_serves_and_fixing_it_shows() {
    let s = Sites::start().await;
    let (handle, addr, mut events) = start(s.config(false), Services::default()).await;
    standby(&mut events, true).await;
    let st = handle.status();
    assert_eq!(st.route.as_deref(), Some("primary"));
    let dr = &st.routes[1];
    assert_eq!(
        (dr.name.as_str(), dr.in_use, dr.ready),
        ("dr", false, Some(true)),
        "{st:?}"
    );
    assert!(dr.probe_ms.is_some() && dr.last_probe.is_some(), "{dr:?}");
    assert!(
        st.routes[0].in_use && st.routes[0].ready == Some(true),
        "{st:?}"
    );

    // 1. The DR bastion's host key changes.
    s.dr.replace_host_key();
    let changed = Instant::now();
    let e = standby(&mut events, false).await;
    let took = changed.elapsed();
    assert!(
        took < PROBE * 2 + Duration::from_secs(1),
        "reported after {took:?}"
    );
    let Event::StandbyBroken {
        reason, failure, ..
    } = &e
    else {
        unreachable!()
    };
    assert_eq!(*failure, AttemptFailure::HostKey, "{e}");
    assert!(
        reason.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
        "{e}"
    );
    let dr = handle.status().routes[1].clone();
    assert_eq!(dr.ready, Some(false));
    assert!(dr
        .last_error
        .unwrap_or_default()
        .contains("IDENTIFICATION HAS CHANGED"));
    assert_eq!(
        echo(addr, b"primary serves").await.unwrap(),
        b"primary serves"
    );
    // Fixed: known_hosts learns the new key.
    s.trust_current_keys();
    standby(&mut events, true).await;
    assert_eq!(handle.status().routes[1].ready, Some(true));

    // 2. The key is removed from the DR bastion's authorized_keys.
    s.dr.set_authorized_keys(&[]);
    let removed = Instant::now();
    let e = standby(&mut events, false).await;
    assert!(
        removed.elapsed() < PROBE * 2 + Duration::from_secs(1),
        "{:?}",
        removed.elapsed()
    );
    let Event::StandbyBroken {
        failure, reason, ..
    } = &e
    else {
        unreachable!()
    };
    assert_eq!(*failure, AttemptFailure::AuthRefused, "{e}");
    assert!(reason.contains("permission denied"), "{e}");
    assert_eq!(
        echo(addr, b"still primary").await.unwrap(),
        b"still primary"
    );
    s.dr.set_authorized_keys(std::slice::from_ref(&s.key.public_line));
    standby(&mut events, true).await;

    let st = handle.status();
    assert_eq!(st.route.as_deref(), Some("primary"));
    assert_eq!(
        (st.reconnects, st.failovers),
        (0, 0),
        "probes are not reconnects: {st:?}"
    );
    assert_eq!(
        s.primary.connections(),
        1,
        "probes never touch the route in use"
    );
    assert!(
        s.dr.connections() >= 4,
        "the DR route was probed: {}",
        s.dr.connections()
    );
}

#[tokio::test]
async fn a_hot_standby_takes_the_failover_without_a_handshake() {
    let s = Sites::start().await;
    let (handle, addr, mut events) = start(s.config(true), Services::default()).await;
    standby(&mut events, true).await;
    let dr_sessions = s.dr.connections();
    assert_eq!(echo(addr, b"before").await.unwrap(), b"before");
    s.primary.kill();
    let e = wait_event(
        &mut events,
        "dr up",
        |e| matches!(e, Event::RouteUp { route, .. } if route == "dr"),
    )
    .await;
    let Event::RouteUp { took, .. } = e else {
        unreachable!()
    };
    assert!(took < Duration::from_millis(50), "no handshake: {took:?}");
    assert_eq!(echo(addr, b"via hot dr").await.unwrap(), b"via hot dr");
    assert_eq!(
        s.dr.connections(),
        dr_sessions,
        "the kept session carried it"
    );
    assert_eq!(handle.status().failovers, 1);
}
