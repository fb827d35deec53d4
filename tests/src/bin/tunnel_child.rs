//! A tunnel in a process of its own, for tests that stop and continue it (SIGSTOP/SIGCONT, as a
//! laptop suspend or a VM pause does to tunnelkit). One route of one hop, one forward.
//!
//! ```text
//! tunnel_child SSHD_PORT KEY KNOWN_HOSTS TARGET_HOST:PORT INTERVAL_SECS COUNT_MAX
//! ```
//! Prints `listening ADDR` once the forward is bound, then one line per event (`event: ...`).

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tunnelkit_core::{
    bind_forwards, Forward, ForwardKind, Hop, Route, Services, Target, Tunnel, TunnelConfig,
};

fn usage() -> ! {
    eprintln!(
        "usage: tunnel_child SSHD_PORT KEY KNOWN_HOSTS TARGET_HOST:PORT INTERVAL_SECS COUNT_MAX"
    );
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [port, key, known_hosts, target, interval, count] = args.as_slice() else {
        usage()
    };
    let port: u16 = port.parse().unwrap_or_else(|_| usage());
    let interval: u64 = interval.parse().unwrap_or_else(|_| usage());
    let count: u32 = count.parse().unwrap_or_else(|_| usage());
    let target: std::net::SocketAddr = target.parse().unwrap_or_else(|_| usage());
    let mut o = tunnelkit_tests::hop_options(key.as_ref(), known_hosts.as_ref());
    o.server_alive_interval = Duration::from_secs(interval);
    o.server_alive_count_max = count;
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let config = TunnelConfig::new(
        vec![Route {
            name: "primary".into(),
            hops: vec![Hop::new(user, "127.0.0.1", port, Arc::new(o))],
        }],
        vec![Forward {
            bind_host: "127.0.0.1".into(),
            bind_port: 0,
            kind: ForwardKind::local(Target {
                host: target.ip().to_string(),
                port: target.port(),
            }),
            max_connections: 64,
        }],
    );
    let listeners = match bind_forwards(&config.forwards).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bind: {e}");
            std::process::exit(1)
        }
    };
    let handle = match Tunnel::start(
        config,
        listeners,
        Services::default(),
        CancellationToken::new(),
    ) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("start: {e}");
            std::process::exit(1)
        }
    };
    let mut events = handle.events();
    let addr = handle.local_addrs().first().copied().flatten();
    let mut out = std::io::stdout();
    match addr {
        Some(a) => {
            let _ = writeln!(out, "listening {a}");
            let _ = out.flush();
        }
        None => std::process::exit(1),
    }
    loop {
        match events.recv().await {
            Ok(e) => {
                let _ = writeln!(out, "event: {e}");
                let _ = out.flush();
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                let _ = writeln!(out, "event: ({n} events lost)");
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
        }
    }
}
