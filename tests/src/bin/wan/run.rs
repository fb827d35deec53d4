//! The three clients (raw TCP, tunnelkit, ssh -N -L), one iperf3 run through each, and the
//! report of the medians.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tunnelkit_tests::bench::{median, proc_stat, start_forwarding};
use tunnelkit_tests::kernel_path::{Delayer, FAR_IP};
use tunnelkit_tests::netns::NetnsSshd;
use tunnelkit_tests::{find_tool, wait_until, KeyPair, TestDir};

use super::IPERF_PORT;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Client {
    /// iperf3 straight across the path, no SSH.
    Raw,
    Tunnelkit,
    OpenSsh,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Way {
    /// Server to client (iperf3 -R): what RDP and VNC screens use.
    Down,
    /// Client to server.
    Up,
}

/// One iperf3 run's shape.
#[derive(Clone, Copy)]
pub(crate) struct Iperf {
    way: Way,
    streams: u32,
    secs: u32,
}

impl Iperf {
    pub(crate) fn new(way: Way, streams: u32, secs: u32) -> Iperf {
        Iperf { way, streams, secs }
    }
}

/// What one run measured.
#[derive(Clone, Debug, Default)]
pub(crate) struct Measured {
    /// Received, over the whole transfer.
    pub(crate) mbits: f64,
    /// Received per second of the transfer (the ramp).
    pub(crate) per_second: Vec<f64>,
    /// Each stream's rate, with several streams.
    pub(crate) streams: Vec<f64>,
    /// The client's CPU seconds per GB carried (0 for raw TCP).
    pub(crate) cpu_s_per_gb: f64,
    /// The client's peak resident memory, MiB (0 for raw TCP).
    pub(crate) peak_rss_mib: f64,
}

/// A running tunnel and its local end.
pub(crate) struct Tunnel {
    child: Child,
    pub(crate) local: SocketAddr,
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) struct Clients {
    config: std::path::PathBuf,
    user: String,
}

impl Clients {
    pub(crate) fn new(dir: &TestDir, key: &KeyPair, sshd: &NetnsSshd) -> Clients {
        let known_hosts = dir.path().join("known_hosts");
        std::fs::write(&known_hosts, format!("{}\n", sshd.known_hosts_line)).expect("known_hosts");
        let config = dir.path().join("ssh_config");
        std::fs::write(
            &config,
            format!(
                "Host *\n  IdentityFile {}\n  UserKnownHostsFile {}\n  BatchMode yes\n  \
                 StrictHostKeyChecking yes\n  IdentitiesOnly yes\n  ExitOnForwardFailure yes\n  \
                 Ciphers aes128-gcm@openssh.com\n",
                key.private.display(),
                known_hosts.display()
            ),
        )
        .expect("ssh_config");
        let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
        Clients { config, user }
    }

    /// Starts `who` (tunnelkit or ssh) with one forward to `port` on the far side's loopback.
    pub(crate) fn open(&self, who: Client, port: u16) -> Tunnel {
        let target = format!("127.0.0.1:{port}");
        let dest = format!("{}@{FAR_IP}", self.user);
        match who {
            Client::Raw => unreachable!("raw TCP has no tunnel"),
            Client::Tunnelkit => {
                let mut c = Command::new(tunnelkit_tests::release_tunnelkit());
                c.arg("-N")
                    .arg("-F")
                    .arg(&self.config)
                    .args(["-q", "-L"])
                    .arg(format!("0:{target}"))
                    .arg(&dest)
                    .stdin(Stdio::null())
                    .stderr(Stdio::null());
                // With TUNNELKIT_LOG set (a tracing filter, e.g. `russh=debug`), its log is kept.
                if std::env::var_os("TUNNELKIT_LOG").is_some() {
                    let log = std::env::temp_dir().join(format!("wan-tunnelkit-{port}.log"));
                    c.stderr(std::fs::File::create(&log).expect("create the tunnelkit log"));
                }
                let (child, local) = start_forwarding(c);
                Tunnel { child, local }
            }
            Client::OpenSsh => {
                let local_port = std::net::TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr())
                    .map(|a| a.port())
                    .expect("a free port");
                let child = Command::new(find_tool("ssh"))
                    .arg("-N")
                    .arg("-F")
                    .arg(&self.config)
                    .arg("-L")
                    .arg(format!("{local_port}:{target}"))
                    .arg(&dest)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("start ssh");
                let local = SocketAddr::from(([127, 0, 0, 1], local_port));
                wait_until(Duration::from_secs(30), "ssh's forward listening", || {
                    listening(local_port)
                });
                Tunnel { child, local }
            }
        }
    }

    /// One iperf3 run through `who` (a fresh tunnel for each run, so that every run starts from
    /// a new SSH session, as a user's first transfer does).
    pub(crate) fn iperf(&self, who: Client, run: Iperf) -> Measured {
        let tunnel = (who != Client::Raw).then(|| self.open(who, IPERF_PORT));
        let addr = tunnel
            .as_ref()
            .map_or(SocketAddr::from((FAR_IP, IPERF_PORT)), |t| t.local);
        let pid = tunnel.as_ref().map(|t| t.child.id());
        let cpu0 = pid.map_or(0.0, |p| proc_stat(p).1);
        let mut m = iperf3(addr, run);
        if let Some(p) = pid {
            let (rss, cpu1) = proc_stat(p);
            let gb = m.mbits * f64::from(run.secs) / 8e3;
            m.cpu_s_per_gb = if gb > 0.0 { (cpu1 - cpu0) / gb } else { 0.0 };
            m.peak_rss_mib = rss;
        }
        m
    }
}

/// Whether something listens on `port` on this namespace's loopback (without connecting: the
/// iperf3 server would take a probe connection for a test).
pub(crate) fn listening(port: u16) -> bool {
    let hex = format!(":{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(1).is_some_and(|a| a.ends_with(&hex)) && f.get(3) == Some(&"0A")
        })
}

/// iperf3 against `addr`; a run that measures nothing (the server still busy with the last
/// test) is tried again, up to 5 times.
fn iperf3(addr: SocketAddr, run: Iperf) -> Measured {
    for attempt in 0..5 {
        let mut c = Command::new("iperf3");
        c.args([
            "-c",
            &addr.ip().to_string(),
            "-p",
            &addr.port().to_string(),
            "-J",
        ])
        .args(["-t", &run.secs.to_string(), "-P", &run.streams.to_string()]);
        if run.way == Way::Down {
            c.arg("-R");
        }
        let out = c
            .output()
            .expect("iperf3 not found: install the iperf3 package (apt-get install iperf3)");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let mbits = v["end"]["sum_received"]["bits_per_second"]
            .as_f64()
            .unwrap_or(0.0)
            / 1e6;
        if mbits > 0.0 {
            let list = |v: &serde_json::Value| v.as_array().cloned().unwrap_or_default();
            let per_second = list(&v["intervals"])
                .iter()
                .map(|i| i["sum"]["bits_per_second"].as_f64().unwrap_or(0.0) / 1e6)
                .collect();
            let streams = list(&v["end"]["streams"])
                .iter()
                .map(|s| s["receiver"]["bits_per_second"].as_f64().unwrap_or(0.0) / 1e6)
                .collect();
            return Measured {
                mbits,
                per_second,
                streams,
                ..Measured::default()
            };
        }
        eprintln!(
            "iperf3 measured nothing (attempt {}): {}",
            attempt + 1,
            v["error"].as_str().unwrap_or("no JSON result")
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    Measured::default()
}

/// Every run, by path, way and client.
#[derive(Default)]
pub(crate) struct Report {
    rows: Vec<(String, Way, Client, Measured)>,
    pub(crate) checked: Option<super::download::Checked>,
}

impl Report {
    pub(crate) fn add(&mut self, path: &str, way: Way, who: Client, m: Measured) {
        self.rows.push((path.to_string(), way, who, m));
    }

    fn runs(&self, path: &str, way: Way, who: Client) -> Vec<&Measured> {
        self.rows
            .iter()
            .filter(|r| r.0 == path && r.1 == way && r.2 == who)
            .map(|r| &r.3)
            .collect()
    }

    fn med(&self, path: &str, way: Way, who: Client, f: impl Fn(&Measured) -> f64) -> f64 {
        median(self.runs(path, way, who).into_iter().map(f).collect())
    }

    fn keys(&self) -> Vec<(String, Way)> {
        let mut keys: Vec<(String, Way)> = Vec::new();
        for r in &self.rows {
            if !keys.iter().any(|k| k.0 == r.0 && k.1 == r.1) {
                keys.push((r.0.clone(), r.1));
            }
        }
        keys
    }

    pub(crate) fn print(&self) {
        println!(
            "\n{:<36} {:>5} {:>10} {:>10} {:>10} {:>7} {:>7} {:>9} {:>9}",
            "path (Mbit/s, medians)",
            "way",
            "raw TCP",
            "tunnelkit",
            "ssh",
            "tk/raw",
            "tk/ssh",
            "tk s/GB",
            "ssh s/GB"
        );
        for (path, way) in self.keys() {
            let rate = |who| self.med(&path, way, who, |m| m.mbits);
            let cpu = |who| self.med(&path, way, who, |m| m.cpu_s_per_gb);
            let (raw, tk, ssh) = (
                rate(Client::Raw),
                rate(Client::Tunnelkit),
                rate(Client::OpenSsh),
            );
            println!(
                "{path:<36} {:>5} {raw:>10.0} {tk:>10.0} {ssh:>10.0} {:>7.2} {:>7.2} {:>9.2} {:>9.2}",
                match way {
                    Way::Down => "down",
                    Way::Up => "up",
                },
                tk / raw,
                tk / ssh,
                cpu(Client::Tunnelkit),
                cpu(Client::OpenSsh),
            );
        }
        for (path, way) in self.keys() {
            for who in [Client::Raw, Client::Tunnelkit, Client::OpenSsh] {
                for m in self.runs(&path, way, who) {
                    if m.streams.len() > 1 {
                        let min = m.streams.iter().copied().fold(f64::INFINITY, f64::min);
                        let max = m.streams.iter().copied().fold(0.0, f64::max);
                        println!(
                            "{path}, {who:?}: streams {} Mbit/s (slowest/fastest {:.2}), peak RSS {:.1} MiB",
                            m.streams.iter().map(|s| format!("{s:.0}")).collect::<Vec<_>>().join(" "),
                            min / max,
                            m.peak_rss_mib
                        );
                    }
                }
            }
        }
        println!("\nramp of the first download round, Mbit/s per second:");
        for (path, way) in self.keys().into_iter().filter(|k| k.1 == Way::Down) {
            for who in [Client::Raw, Client::Tunnelkit, Client::OpenSsh] {
                if let Some(m) = self.runs(&path, way, who).first() {
                    let ramp: Vec<String> =
                        m.per_second.iter().map(|v| format!("{v:.0}")).collect();
                    println!("{path:<36} {who:<10?} {}", ramp.join(" "));
                }
            }
        }
    }

    pub(crate) fn write(
        &self,
        json: &Path,
        delayer: Delayer,
        congestion: &str,
        rounds: u32,
        secs: u32,
    ) {
        let rows: Vec<serde_json::Value> = self
            .rows
            .iter()
            .map(|(path, way, who, m)| {
                serde_json::json!({"path": path, "way": format!("{way:?}"), "client": format!("{who:?}"),
                    "mbits": m.mbits, "per_second": m.per_second, "streams": m.streams,
                    "cpu_s_per_gb": m.cpu_s_per_gb, "peak_rss_mib": m.peak_rss_mib})
            })
            .collect();
        let checked = self.checked.as_ref().map(|c| c.json());
        let doc = serde_json::json!({"delayer": format!("{delayer:?}"), "congestion": congestion, "rounds": rounds,
            "secs": secs, "runs": rows, "checked_download": checked});
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        match std::fs::write(json, text) {
            Ok(()) => println!("written: {}", json.display()),
            Err(e) => {
                eprintln!("error: writing {}: {e}", json.display());
                std::process::exit(1);
            }
        }
    }
}
