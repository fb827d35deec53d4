//! One login, many tunnels: tunnels given one `SessionPool` that go through the same route as
//! the same user share one SSH session against a real sshd (`Sshd::connections` counts logins).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use tunnelkit_core::{Event, Services, SessionPool, TunnelConfig};
use tunnelkit_tests::{EchoServer, KeyPair, Sshd, SshdOptions, TestDir};

fn pooled(pool: &SessionPool) -> Services {
    Services {
        pool: Some(pool.clone()),
        ..Services::default()
    }
}

/// A config through `sshd` with `key`, its route named `route`, quick to retry.
fn config(
    dir: &std::path::Path,
    sshd: &Sshd,
    key: &KeyPair,
    route_name: &str,
    target: std::net::SocketAddr,
) -> TunnelConfig {
    let kh = known_hosts(dir, &[sshd.known_hosts_line()]);
    let opts = Arc::new(options(&key.private, &kh));
    let mut c = TunnelConfig::new(
        vec![route(route_name, vec![hop(sshd.port(), &opts)])],
        vec![forward_to(target)],
    );
    c.backoff.min = Duration::from_millis(200);
    c.backoff.max = Duration::from_millis(500);
    c
}

#[tokio::test]
async fn two_tunnels_share_one_login_and_reconnect_with_one() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let sshd = sshd_for(&key);
    let target = EchoServer::start().await;
    let pool = SessionPool::new();
    let before = sshd.connections();
    // Both at once: the second waits for the first's login instead of logging in too.
    let (mut a, addr_a, mut ev_a) = start(
        config(dir.path(), &sshd, &key, "primary", target.addr()),
        pooled(&pool),
    )
    .await;
    let (mut b, addr_b, mut ev_b) = start(
        config(dir.path(), &sshd, &key, "main", target.addr()),
        pooled(&pool),
    )
    .await;
    for ev in [&mut ev_a, &mut ev_b] {
        wait_event(ev, "route up", |e| matches!(e, Event::RouteUp { .. })).await;
    }
    assert_eq!(echo(addr_a, b"via a").await.unwrap(), b"via a");
    assert_eq!(echo(addr_b, b"via b").await.unwrap(), b"via b");
    assert_eq!(sshd.connections() - before, 1, "{}", sshd.log());
    let id = a.status().shared_session;
    assert!(id.is_some());
    assert_eq!(b.status().shared_session, id);
    assert_eq!(pool.live_sessions(), 1);

    // One stops: the other keeps the session and carries bytes on it.
    b.stop();
    b.wait().await.unwrap();
    assert_eq!(echo(addr_a, b"still a").await.unwrap(), b"still a");
    assert_eq!(a.status().shared_session, id);
    assert_eq!(sshd.connections() - before, 1);

    // A third joins the live session without a login.
    let (mut c, addr_c, mut ev_c) = start(
        config(dir.path(), &sshd, &key, "primary", target.addr()),
        pooled(&pool),
    )
    .await;
    wait_event(&mut ev_c, "route up", |e| {
        matches!(e, Event::RouteUp { .. })
    })
    .await;
    assert_eq!(echo(addr_c, b"via c").await.unwrap(), b"via c");
    assert_eq!(sshd.connections() - before, 1);

    // The bastion dies: both lose the session at once; once it is back, one login for both.
    let mut ev_a = a.events();
    let mut ev_c2 = c.events();
    sshd.kill();
    for ev in [&mut ev_a, &mut ev_c2] {
        wait_event(ev, "session ended", |e| {
            matches!(e, Event::SessionEnded { .. })
        })
        .await;
    }
    sshd.restart();
    for ev in [&mut ev_a, &mut ev_c2] {
        wait_event(ev, "route up again", |e| matches!(e, Event::RouteUp { .. })).await;
    }
    assert_eq!(echo(addr_a, b"a again").await.unwrap(), b"a again");
    assert_eq!(echo(addr_c, b"c again").await.unwrap(), b"c again");
    assert_eq!(sshd.connections() - before, 2, "{}", sshd.log());
    let id2 = a.status().shared_session;
    assert!(id2.is_some() && id2 != id, "{id:?} {id2:?}");
    assert_eq!(c.status().shared_session, id2);
    a.stop();
    c.stop();
    a.wait().await.unwrap();
    c.wait().await.unwrap();
    tunnelkit_tests::wait_until(DEADLINE, "the last user closed the session", || {
        pool.live_sessions() == 0
    });
}

#[tokio::test]
async fn different_identities_do_not_share() {
    let dir = TestDir::new();
    let key1 = KeyPair::generate(dir.path(), "one", None);
    let key2 = KeyPair::generate(dir.path(), "two", None);
    let sshd = Sshd::start(SshdOptions {
        authorized_keys: vec![key1.public_line.clone(), key2.public_line.clone()],
        ..Default::default()
    });
    let target = EchoServer::start().await;
    let pool = SessionPool::new();
    let before = sshd.connections();
    let (_a, addr_a, mut ev_a) = start(
        config(dir.path(), &sshd, &key1, "primary", target.addr()),
        pooled(&pool),
    )
    .await;
    let (_b, addr_b, mut ev_b) = start(
        config(dir.path(), &sshd, &key2, "primary", target.addr()),
        pooled(&pool),
    )
    .await;
    for ev in [&mut ev_a, &mut ev_b] {
        wait_event(ev, "route up", |e| matches!(e, Event::RouteUp { .. })).await;
    }
    assert_eq!(echo(addr_a, b"a").await.unwrap(), b"a");
    assert_eq!(echo(addr_b, b"b").await.unwrap(), b"b");
    assert_eq!(sshd.connections() - before, 2);
    assert_eq!(pool.live_sessions(), 2);
}

#[tokio::test]
async fn without_a_pool_each_tunnel_logs_in() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let sshd = sshd_for(&key);
    let target = EchoServer::start().await;
    let before = sshd.connections();
    let (a, _, mut ev_a) = start(
        config(dir.path(), &sshd, &key, "primary", target.addr()),
        Services::default(),
    )
    .await;
    let (b, _, mut ev_b) = start(
        config(dir.path(), &sshd, &key, "primary", target.addr()),
        Services::default(),
    )
    .await;
    for ev in [&mut ev_a, &mut ev_b] {
        wait_event(ev, "route up", |e| matches!(e, Event::RouteUp { .. })).await;
    }
    assert_eq!(sshd.connections() - before, 2);
    assert_eq!(a.status().shared_session, None);
    assert_eq!(b.status().shared_session, None);
}
