//! Embedding tunnelkit-core in an ops tool: open a forward through a jump host with a DR route,
//! watch events from the first, print the status as JSON, stop on Ctrl-C.
//!
//! ```text
//! cargo run -p tunnelkit-examples --example embed -- ops@gw.example.com admin@bastion.example.com admin@bastion.dr.example.com winserver:3389
//! ```
//! Authentication uses your ssh-agent and default keys; host keys must be in ~/.ssh/known_hosts.
//! `docs/embedding.md` explains each step.

use anyhow::{bail, Context, Result};
use tokio_util::sync::CancellationToken;
use tunnelkit_core::spec::{parse_hop, parse_target};
use tunnelkit_core::{
    bind_forwards, Environment, Event, Forward, Hop, Services, Target, Tunnel, TunnelConfig,
};

/// `[user@]host[:port]` as ssh reads it, with `env`'s defaults.
fn hop(text: &str, env: &Environment) -> Result<Hop> {
    let h = parse_hop(text)?;
    let mut b = Hop::builder(h.host).port(h.port.unwrap_or(22));
    if let Some(user) = h.user {
        b = b.user(user);
    }
    Ok(b.build(env)?)
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [jump, dest, dr, target] = args.as_slice() else {
        bail!("usage: embed JUMP DESTINATION DR_DESTINATION TARGET_HOST:PORT");
    };
    // The only place this program's environment is read.
    let env = Environment::from_process(None, false);
    let (host, port) = parse_target(target)?;
    let config = TunnelConfig::builder()
        .route("primary", [hop(jump, &env)?, hop(dest, &env)?])
        .route("dr", [hop(dr, &env)?])
        .forward(Forward::local(0, Target::new(host, port)?))
        .build()?;
    let listeners = bind_forwards(&config.forwards).await?;
    let cancel = CancellationToken::new();
    let (mut handle, mut events) =
        Tunnel::start_subscribed(config, listeners, Services::default(), cancel.clone())?;
    tokio::spawn(async move {
        while let Ok(e) = events.recv().await {
            match &e {
                Event::Listening { local, .. } => println!("point the client at {local}"),
                Event::RouteFailed { route, failure, .. } => {
                    println!("route {route} failed ({failure:?}): {e}")
                }
                _ => println!("event: {e}"),
            }
        }
    });
    tokio::signal::ctrl_c().await.context("ctrl-c")?;
    println!("{}", serde_json::to_string_pretty(&handle.status())?);
    cancel.cancel();
    handle.wait().await?;
    Ok(())
}
