//! Shared helpers for the library-level integration tests: hop options pointing at a test
//! HOME's keys and known_hosts, a tunnel runner, and bounded client exchanges.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tunnelkit_core::{
    bind_forwards, Event, Forward, ForwardKind, Hop, HopOptions, Route, Services, Target, Tunnel,
    TunnelConfig, TunnelHandle,
};
use tunnelkit_tests::{KeyPair, Sshd, SshdOptions};

/// Every wait in these tests is bounded by this.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Hop options for tests: one key, one known_hosts file, no agent, nobody to ask.
pub use tunnelkit_tests::hop_options as options;

/// A hop to a loopback server as root (the tests run sshd as root).
pub fn hop(port: u16, options: &Arc<HopOptions>) -> Hop {
    Hop::new(whoami(), "127.0.0.1", port, options.clone())
}

/// The user the harness's sshd lets in: the one running the tests.
pub fn whoami() -> String {
    std::env::var("USER").unwrap_or_else(|_| "root".into())
}

/// One route named `name`.
pub fn route(name: &str, hops: Vec<Hop>) -> Route {
    Route {
        name: name.into(),
        hops,
    }
}

/// A forward from an ephemeral loopback port to `target`.
pub fn forward_to(target: SocketAddr) -> Forward {
    Forward {
        bind_host: "127.0.0.1".into(),
        bind_port: 0,
        kind: ForwardKind::local(Target {
            host: target.ip().to_string(),
            port: target.port(),
        }),
        max_connections: 4096,
    }
}

/// Starts a tunnel and returns its handle, the first forward's address and an event receiver
/// subscribed before anything could happen.
pub async fn start(
    config: TunnelConfig,
    services: Services,
) -> (TunnelHandle, SocketAddr, broadcast::Receiver<Event>) {
    let listeners = bind_forwards(&config.forwards).await.expect("bind");
    let handle =
        Tunnel::start(config, listeners, services, CancellationToken::new()).expect("start");
    let events = handle.events();
    let addr = handle.local_addrs()[0].expect("bound");
    (handle, addr, events)
}

/// Starts a tunnel that may have no local forward (remote forwards only); returns its handle
/// and an event receiver subscribed before anything could happen.
pub async fn start_any(
    config: TunnelConfig,
    services: Services,
) -> (TunnelHandle, broadcast::Receiver<Event>) {
    let listeners = bind_forwards(&config.forwards).await.expect("bind");
    Tunnel::start_subscribed(config, listeners, services, CancellationToken::new()).expect("start")
}

/// Waits for the first event matching `want`, failing on a stop or after the deadline.
pub async fn wait_event(
    events: &mut broadcast::Receiver<Event>,
    what: &str,
    want: impl Fn(&Event) -> bool,
) -> Event {
    let r = tokio::time::timeout(DEADLINE, async {
        loop {
            match events.recv().await {
                Ok(e) if want(&e) => return e,
                Ok(Event::Stopped { error }) => {
                    panic!("tunnel stopped while waiting for {what}: {error:?}")
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => {
                    panic!("events closed while waiting for {what}")
                }
            }
        }
    })
    .await;
    r.unwrap_or_else(|_| panic!("no {what} within {DEADLINE:?}"))
}

/// Connects through the tunnel, sends `msg`, reads the same number of bytes back.
pub async fn echo(addr: SocketAddr, msg: &[u8]) -> std::io::Result<Vec<u8>> {
    tokio::time::timeout(DEADLINE, async {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(msg).await?;
        let mut back = vec![0u8; msg.len()];
        s.read_exact(&mut back).await?;
        Ok(back)
    })
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "echo timed out"))?
}

/// Reads until EOF (bounded); returns what was read.
pub async fn read_to_end(s: &mut TcpStream) -> Vec<u8> {
    let mut v = Vec::new();
    tokio::time::timeout(DEADLINE, s.read_to_end(&mut v))
        .await
        .expect("read to end timed out")
        .expect("read");
    v
}

/// Writes a known_hosts file with the given lines.
pub fn known_hosts(dir: &Path, lines: &[String]) -> PathBuf {
    let p = dir.join("known_hosts");
    let text = if lines.is_empty() {
        String::new()
    } else {
        lines.join("\n") + "\n"
    };
    std::fs::write(&p, text).expect("write known_hosts");
    p
}

/// A real sshd (the harness's) that lets `key` in.
pub fn sshd_for(key: &KeyPair) -> Sshd {
    Sshd::start(SshdOptions {
        authorized_keys: vec![key.public_line.clone()],
        ..Default::default()
    })
}

/// One route of one hop through `sshd`, with `key` and a known_hosts in `dir` that knows it, and
/// one forward to `target`.
pub fn one_hop(dir: &Path, sshd: &Sshd, key: &KeyPair, target: SocketAddr) -> TunnelConfig {
    let kh = known_hosts(dir, &[sshd.known_hosts_line()]);
    let opts = Arc::new(options(&key.private, &kh));
    TunnelConfig::new(
        vec![route("primary", vec![hop(sshd.port(), &opts)])],
        vec![forward_to(target)],
    )
}
