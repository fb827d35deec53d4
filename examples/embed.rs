//! Embedding tunnelkit-core in an ops tool: open a forward through a jump host, watch events,
//! print status, stop on Ctrl-C.
//!
//! ```text
//! cargo run -p tunnelkit-examples --example embed -- ops@gw.example.com admin@bastion.example.com winserver:3389
//! ```
//! Authentication uses your ssh-agent and default keys; host keys must be in ~/.ssh/known_hosts.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use tokio_util::sync::CancellationToken;
use tunnelkit_core::spec::{parse_hop, parse_target};
use tunnelkit_core::{
    bind_forwards, Forward, ForwardKind, Hop, HopOptions, Route, Services, Target, Tunnel,
    TunnelConfig,
};

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [jump, dest, target] = args.as_slice() else {
        bail!("usage: embed JUMP DESTINATION TARGET_HOST:PORT");
    };
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let options = Arc::new(HopOptions::default());
    let hop = |text: &str| -> Result<Hop> {
        let h = parse_hop(text)?;
        Ok(Hop::new(
            h.user.unwrap_or(user.clone()),
            h.host,
            h.port.unwrap_or(22),
            options.clone(),
        ))
    };
    let (host, port) = parse_target(target)?;
    let config = TunnelConfig::new(
        vec![Route {
            name: "primary".into(),
            hops: vec![hop(jump)?, hop(dest)?],
        }],
        vec![Forward {
            bind_host: "127.0.0.1".into(),
            bind_port: 0,
            kind: ForwardKind::local(Target { host, port }),
            max_connections: 256,
        }],
    );
    let listeners = bind_forwards(&config.forwards).await?;
    let cancel = CancellationToken::new();
    let handle = Tunnel::start(config, listeners, Services::default(), cancel.clone())?;
    println!("listening on {:?}", handle.local_addrs());
    let mut events = handle.events();
    tokio::spawn(async move {
        while let Ok(e) = events.recv().await {
            println!("event: {e}");
        }
    });
    tokio::signal::ctrl_c().await.context("ctrl-c")?;
    println!("status: {:?}", handle.status());
    cancel.cancel();
    handle.wait().await?;
    Ok(())
}
