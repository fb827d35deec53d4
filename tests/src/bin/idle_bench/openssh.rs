//! The OpenSSH side: N `ssh -N -L PORT:TARGET` processes against the benchmark's sshd, with a
//! generated ssh_config (the same key and known_hosts as the agent's profiles, BatchMode), each
//! on a free local port, killed when measured.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tunnelkit_tests::find_tool;

use crate::meter::{measure, Cost};
use crate::{echo_through, poll_until, Opts, Site};

/// A forward whose port was taken between [`free_port`] and ssh's bind (by another program, or
/// as the source port of a new connection) is started again on another port, this many times.
const PORT_RETRIES: u32 = 3;

/// One ssh process and its forward's local address.
struct Client {
    child: Child,
    local: SocketAddr,
    retries: u32,
}

/// The ssh processes; killed on drop.
struct Clients(Vec<Client>);

impl Drop for Clients {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.child.kill();
            let _ = c.child.wait();
        }
    }
}

/// Writes `DIR/ssh_config` for the site: one key, its known_hosts, strict, BatchMode.
pub fn write_config(site: &Site) {
    let d = site.dir.path();
    std::fs::write(
        d.join("ssh_config"),
        format!(
            "Host *\n  IdentityFile {}\n  UserKnownHostsFile {}\n  GlobalKnownHostsFile /dev/null\n  \
             BatchMode yes\n  StrictHostKeyChecking yes\n  IdentitiesOnly yes\n  \
             ExitOnForwardFailure yes\n  ServerAliveCountMax 3\n",
            site.key.private.display(),
            d.join("known_hosts").display()
        ),
    )
    .expect("ssh_config");
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The ports listening on 127.0.0.1, from `/proc/net/tcp`. Read instead of connecting: a
/// connection to a port nobody listens on yet can be given that same port as its source and
/// connect to itself (TCP simultaneous open), which would both look ready and take the port
/// from the ssh about to bind it.
fn loopback_listeners() -> BTreeSet<u16> {
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let local = f.nth(1)?;
            let state = f.nth(1)?;
            let port = local.strip_prefix("0100007F:")?;
            (state == "0A").then(|| u16::from_str_radix(port, 16).ok())?
        })
        .collect()
}

/// Starts `ssh -N -L PORT:TARGET` (PORT free now), its stderr to `log`.
fn spawn(site: &Site, keepalive: u64, log: &Path) -> (Child, SocketAddr) {
    let port = free_port();
    let log = std::fs::File::create(log).expect("ssh log");
    let child = Command::new(find_tool("ssh"))
        .arg("-N")
        .arg("-F")
        .arg(site.dir.path().join("ssh_config"))
        .arg("-o")
        .arg(format!("ServerAliveInterval={keepalive}"))
        .arg("-L")
        .arg(format!("{port}:{}", site.target))
        .arg("-p")
        .arg(site.sshd.port().to_string())
        .arg(format!("{}@127.0.0.1", site.user))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start ssh");
    (child, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// Starts N ssh, waits until every forward carries an echo, measures them together.
pub fn run(site: &Site, opts: &Opts, keepalive: u64) -> Cost {
    let log = |i: usize| site.dir.path().join(format!("ssh-{keepalive}-{i}.log"));
    let mut clients = Clients(Vec::new());
    for i in 0..opts.profiles as usize {
        let (child, local) = spawn(site, keepalive, &log(i));
        clients.0.push(Client {
            child,
            local,
            retries: 0,
        });
    }
    let n = clients.0.len();
    poll_until(&format!("{n} ssh forwards listening"), || {
        let listening = loopback_listeners();
        let mut all = true;
        for (i, c) in clients.0.iter_mut().enumerate() {
            if let Ok(Some(status)) = c.child.try_wait() {
                let text = std::fs::read_to_string(log(i)).unwrap_or_default();
                if text.contains("Address already in use") && c.retries < PORT_RETRIES {
                    (c.child, c.local) = spawn(site, keepalive, &log(i));
                    c.retries += 1;
                    all = false;
                    continue;
                }
                panic!("ssh {i} exited ({status}): {text}");
            }
            all &= listening.contains(&c.local.port());
        }
        all
    });
    let locals: Vec<SocketAddr> = clients.0.iter().map(|c| c.local).collect();
    echo_through(&locals);
    std::thread::sleep(Duration::from_secs(opts.settle));
    let pids: Vec<u32> = clients.0.iter().map(|c| c.child.id()).collect();
    measure(&pids, Duration::from_secs(opts.secs))
}
