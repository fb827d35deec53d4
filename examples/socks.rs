//! A SOCKS proxy (`ssh -D`) through a bastion, for the web consoles behind it (iLO, iDRAC,
//! vCenter): each browser connection becomes one `direct-tcpip` channel to where the browser
//! asks, and names are resolved by the bastion, so a name only the site's DNS knows works.
//! Prints each forward's kind and counters every 10 seconds; stops on Ctrl-C.
//!
//! ```text
//! cargo run -p tunnelkit-examples --example socks -- admin@bastion.example.com 1080
//! curl --socks5-hostname 127.0.0.1:1080 https://ilo-rack3.site.internal/
//! ```
//! Authentication uses your ssh-agent and default keys; host keys must be in ~/.ssh/known_hosts.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio_util::sync::CancellationToken;
use tunnelkit_core::spec::{parse_dynamic, parse_hop};
use tunnelkit_core::{
    bind_forwards, Forward, Hop, HopOptions, Route, Services, Tunnel, TunnelConfig,
};

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dest, listen] = args.as_slice() else {
        bail!("usage: socks DESTINATION [BIND_ADDRESS:]PORT");
    };
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let h = parse_hop(dest)?;
    let hop = Hop::new(
        h.user.unwrap_or(user),
        h.host,
        h.port.unwrap_or(22),
        Arc::new(HopOptions::default()),
    );
    let route = Route {
        name: "primary".into(),
        hops: vec![hop],
    };
    // `ForwardKind::Dynamic`: no target; each SOCKS client names its own.
    let socks = Forward::from_dynamic_spec(&parse_dynamic(listen)?);
    let config = TunnelConfig::new(vec![route], vec![socks]);
    let listeners = bind_forwards(&config.forwards).await?;
    let cancel = CancellationToken::new();
    let mut handle = Tunnel::start(config, listeners, Services::default(), cancel.clone())?;
    println!("SOCKS proxy on {:?}", handle.local_addrs());
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tokio::select! {
            r = tokio::signal::ctrl_c() => { r.context("ctrl-c")?; break; }
            _ = tick.tick() => {
                for f in handle.status().forwards {
                    println!(
                        "{} {:?}: {} open, {} total, {} failed, {} B in, {} B out",
                        f.kind, f.local, f.active, f.total, f.failed, f.bytes_in, f.bytes_out
                    );
                }
            }
        }
    }
    cancel.cancel();
    handle.wait().await?;
    Ok(())
}
