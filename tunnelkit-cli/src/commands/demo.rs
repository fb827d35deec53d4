//! `tunnelkit demo`: the whole product in a minute, with nothing installed. Starts, inside this
//! process and on loopback only, a target service that speaks first (like VNC), a primary
//! bastion and a DR bastion (embedded SSH servers with fresh host keys), then runs a real
//! tunnel through them: a round trip, the primary bastion killed (failover, with its RTO), the
//! primary back (failback). Host keys are checked against a known_hosts file it writes, never
//! accepted blindly.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use russh::keys::ssh_key::LineEnding;
use russh::keys::{Algorithm, PrivateKey};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tunnelkit_core::bastion::{Bastion, BastionConfig, BastionHandle};
use tunnelkit_core::{
    bind_forwards, Event, Failback, Forward, ForwardKind, Hop, HopOptions, Route, Services,
    StrictHostKeyChecking, Target, Tunnel, TunnelConfig,
};

use crate::exit::Exit;
use crate::opts::DemoArgs;

/// What the demo's target service says first, as a VNC server announces its protocol.
const GREETING: &str = "RFB 003.008 (tunnelkit demo service behind the bastion)";
/// Every wait in the demo is bounded by this.
const STEP_DEADLINE: Duration = Duration::from_secs(20);

/// Runs the demo; exit 0 when every step worked.
pub async fn run(args: &DemoArgs, cancel: CancellationToken) -> Exit {
    match tokio::select! {
        r = demo(args) => r,
        _ = cancel.cancelled() => Err(anyhow!("interrupted")),
    } {
        Ok(()) => Exit::Success,
        Err(e) => {
            eprintln!("tunnelkit demo: {e:#}");
            Exit::Failure
        }
    }
}

async fn demo(args: &DemoArgs) -> Result<()> {
    println!("tunnelkit demo: everything below runs inside this process, on 127.0.0.1 only.\n");
    let dir = tempfile::tempdir().context("temporary directory")?;

    // The service behind the bastions, and a client key the bastions trust.
    let service = TcpListener::bind("127.0.0.1:0").await?;
    let service_addr = service.local_addr()?;
    tokio::spawn(serve_target(service));
    let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
        .map_err(|e| anyhow!("key: {e}"))?;
    let key_file = dir.path().join("id_ed25519");
    write_private_key(&key_file, &key)?;

    // Two bastions: the primary site and its DR twin, each with its own host key.
    let primary_key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
        .map_err(|e| anyhow!("key: {e}"))?;
    let dr_key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
        .map_err(|e| anyhow!("key: {e}"))?;
    let bastion_cancel = CancellationToken::new();
    let _stop_bastions = bastion_cancel.clone().drop_guard();
    let start = |listener: TcpListener, host_key: &PrivateKey| -> Result<BastionHandle> {
        let mut c = BastionConfig::new(host_key.clone());
        c.authorized_keys.push(key.public_key().clone());
        Ok(Bastion::start(listener, c, bastion_cancel.child_token())?)
    };
    let primary = start(TcpListener::bind("127.0.0.1:0").await?, &primary_key)?;
    let dr = start(TcpListener::bind("127.0.0.1:0").await?, &dr_key)?;
    let primary_addr = primary.addr();
    println!("  target service   {service_addr}  (speaks first, then echoes)");
    println!("  primary bastion  {primary_addr}  (embedded SSH server)");
    println!("  DR bastion       {}  (embedded SSH server)\n", dr.addr());

    // known_hosts with both host keys: tunnelkit refuses any host it cannot verify.
    let known_hosts = dir.path().join("known_hosts");
    let lines: Vec<String> = [&primary, &dr]
        .iter()
        .map(|b| {
            let k = b.host_key().to_openssh().unwrap_or_default();
            format!("[127.0.0.1]:{} {k}", b.addr().port())
        })
        .collect();
    std::fs::write(&known_hosts, lines.join("\n") + "\n")?;

    let mut opts = HopOptions::default();
    opts.auth.identity_files = vec![key_file];
    opts.auth.agent_socket = None;
    opts.auth.batch_mode = true;
    opts.host_keys.user_files = vec![known_hosts];
    opts.host_keys.global_files = Vec::new();
    opts.host_keys.strict = StrictHostKeyChecking::Yes;
    opts.server_alive_interval = Duration::from_secs(1);
    opts.server_alive_count_max = 3;
    opts.connect_timeout = Duration::from_secs(5);
    let opts = Arc::new(opts);
    let user = crate::resolve::local_user();
    let route = |name: &str, addr: std::net::SocketAddr| Route {
        name: name.into(),
        hops: vec![Hop::new(
            user.clone(),
            "127.0.0.1",
            addr.port(),
            opts.clone(),
        )],
    };
    let forward = Forward {
        bind_host: "127.0.0.1".into(),
        bind_port: 0,
        kind: ForwardKind::local(Target {
            host: service_addr.ip().to_string(),
            port: service_addr.port(),
        }),
        max_connections: 64,
    };
    let mut config = TunnelConfig::new(
        vec![route("primary", primary_addr), route("dr", dr.addr())],
        vec![forward],
    );
    config.failback = Failback::After(Duration::from_secs(3));
    config.failback_probe_interval = Duration::from_secs(1);

    println!("1. Open the tunnel: tunnelkit -N -L 0:{service_addr} -o ServerAliveInterval=1 \\");
    println!(
        "     127.0.0.1 -p {} --dr 127.0.0.1:{} --failback 3",
        primary_addr.port(),
        dr.addr().port()
    );
    let listeners = bind_forwards(&config.forwards).await?;
    let mut handle = Tunnel::start(
        config,
        listeners,
        Services::default(),
        CancellationToken::new(),
    )?;
    let mut events = handle.events();
    let local = handle.local_addrs()[0].ok_or_else(|| anyhow!("forward not bound"))?;
    wait_event(&mut events, |e| matches!(e, Event::RouteUp { .. })).await?;
    println!("   Forwarding {local} -> {service_addr} via the primary bastion");

    let (greeting, rtt) = round_trip(local).await?;
    println!("\n2. A client connects to {local}:");
    println!("   the service said: {greeting:?}");
    println!(
        "   echo round trip through SSH: {:.2} ms",
        rtt.as_secs_f64() * 1e3
    );

    if args.no_failover {
        println!("\nDone (failover skipped).");
        return Ok(());
    }

    println!("\n3. Kill the primary bastion (its TCP connections are cut, new ones refused).");
    let killed = Instant::now();
    primary.kill();
    let rto = first_working_connection(local, killed).await?;
    let failover = wait_event(&mut events, |e| matches!(e, Event::Failover { .. })).await?;
    println!("   {failover}");
    println!(
        "   RTO (kill -> a new connection works through the DR bastion): {:.0} ms",
        rto.as_secs_f64() * 1e3
    );
    let dr_channels = dr.channels_opened();
    let (_, _) = round_trip(local).await?;
    if dr.channels_opened() <= dr_channels {
        bail!("the DR bastion did not carry the connection");
    }
    println!(
        "   the DR bastion carried it ({} channel(s) so far)",
        dr.channels_opened()
    );

    println!("\n4. Bring the primary back; tunnelkit fails back after it is healthy for 3 s.");
    let listener = rebind(primary_addr).await?;
    let primary = start(listener, &primary_key)?;
    let back = Instant::now();
    let failback = wait_event(&mut events, |e| matches!(e, Event::Failback { .. })).await?;
    println!(
        "   {failback} ({:.1} s after it came back)",
        back.elapsed().as_secs_f64()
    );
    let (_, _) = round_trip(local).await?;
    if primary.channels_opened() == 0 {
        bail!("the primary bastion did not carry the connection after failback");
    }
    println!(
        "   new connections use the primary again ({} channel(s))",
        primary.channels_opened()
    );

    let s = handle.status();
    let f = &s.forwards[0];
    println!(
        "\nStatus: state {}, route {}, {} connections, {} bytes out, {} bytes in, {} failover(s).",
        s.state.as_str(),
        s.route.as_deref().unwrap_or("-"),
        f.total,
        f.bytes_out,
        f.bytes_in,
        s.failovers
    );
    println!("\nThat is tunnelkit. Real use: tunnelkit -N -L 13389:winserver:3389 -J ops@gw admin@bastion --dr admin@bastion.dr");
    handle.stop();
    handle.wait().await?;
    Ok(())
}

fn write_private_key(path: &Path, key: &PrivateKey) -> Result<()> {
    let text = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| anyhow!("key: {e}"))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    crate::platform::private_file(&mut options);
    let mut f = options.open(path)?;
    std::io::Write::write_all(&mut f, text.as_bytes())?;
    Ok(())
}

/// The service: greets, then echoes lines.
async fn serve_target(listener: TcpListener) {
    while let Ok((mut s, _)) = listener.accept().await {
        tokio::spawn(async move {
            let _ = s.set_nodelay(true);
            if s.write_all(format!("{GREETING}\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
            let mut buf = vec![0u8; 16 * 1024];
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// Connects through the tunnel, reads the greeting, times one echo.
async fn round_trip(local: std::net::SocketAddr) -> Result<(String, Duration)> {
    tokio::time::timeout(STEP_DEADLINE, async {
        let s = TcpStream::connect(local).await?;
        s.set_nodelay(true)?;
        let mut r = BufReader::new(s);
        let mut greeting = String::new();
        r.read_line(&mut greeting).await?;
        if greeting.is_empty() {
            bail!("the connection closed before the service spoke");
        }
        let t = Instant::now();
        r.get_mut().write_all(b"ping\n").await?;
        let mut echo = String::new();
        r.read_line(&mut echo).await?;
        if echo != "ping\n" {
            bail!("echo came back as {echo:?}");
        }
        Ok((greeting.trim_end().to_string(), t.elapsed()))
    })
    .await
    .map_err(|_| anyhow!("no answer through the tunnel within {STEP_DEADLINE:?}"))?
}

/// Retries a round trip until one works; returns the time since `since`.
async fn first_working_connection(local: std::net::SocketAddr, since: Instant) -> Result<Duration> {
    for _ in 0..200 {
        if round_trip(local).await.is_ok() {
            return Ok(since.elapsed());
        }
        if since.elapsed() > STEP_DEADLINE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("no connection worked within {STEP_DEADLINE:?} of the failure")
}

async fn wait_event(
    events: &mut broadcast::Receiver<Event>,
    want: impl Fn(&Event) -> bool,
) -> Result<Event> {
    tokio::time::timeout(STEP_DEADLINE, async {
        loop {
            match events.recv().await {
                Ok(e) if want(&e) => return Ok(e),
                Ok(Event::Stopped { error }) => bail!("the tunnel stopped: {error:?}"),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => bail!("the tunnel ended"),
            }
        }
    })
    .await
    .map_err(|_| anyhow!("waited {STEP_DEADLINE:?} in vain"))?
}

/// Binds the same address again (the old listener is closed; the port may take a moment).
async fn rebind(addr: std::net::SocketAddr) -> Result<TcpListener> {
    let since = Instant::now();
    loop {
        match TcpListener::bind(addr).await {
            Ok(l) => return Ok(l),
            Err(e) if since.elapsed() > STEP_DEADLINE => {
                return Err(e).context(format!("rebind {addr}"))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}
