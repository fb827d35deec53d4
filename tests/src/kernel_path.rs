//! A long fat path made in the kernel, for the WAN benchmark: two network namespaces, `near`
//! (the clients) and `far` (sshd and the targets), joined by a veth pair whose packets are held a
//! fixed time each way in the kernel. TCP runs end to end across it, so slow start, socket
//! buffers and sshd's own send path all count (a user-space relay ends TCP at the relay and adds
//! its own buffering).
//!
//! The delay is `tc qdisc ... netem` where the kernel has `sch_netem`; otherwise `nfqdelay`
//! (`tests/tools/nfqdelay.c`, compiled with `cc` at run time): iptables sends each packet that
//! arrives on the link to an NFQUEUE, and nfqdelay accepts it the delay after it arrived (with an
//! optional random loss); while no nfqdelay runs (before [`KernelPath::set`]), packets pass at
//! once (`--queue-bypass`). The process that calls [`KernelPath::enter_near`] then runs in `near`,
//! and so does every process and thread it starts afterwards.
//!
//! Needs root, `iproute2`, and for nfqdelay `iptables` and a C compiler (`gcc`).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The near side's address on the link.
pub const NEAR_IP: Ipv4Addr = Ipv4Addr::new(10, 253, 0, 1);
/// The far side's address on the link.
pub const FAR_IP: Ipv4Addr = Ipv4Addr::new(10, 253, 0, 2);

/// How large TCP's socket buffers may grow on both ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Buffers {
    /// What a stock Linux allows (`tcp_rmem` max 6 MiB, `tcp_wmem` max 4 MiB).
    Stock,
    /// Up to 128 MiB each way: the path, not the buffers, sets the rate.
    Large,
}

/// How packets are delayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delayer {
    /// `tc qdisc netem` on each end of the link.
    Netem,
    /// `nfqdelay` on an NFQUEUE in each namespace.
    Nfqueue,
}

/// The two namespaces and their link; removed, with every process in them, on drop.
pub struct KernelPath {
    near: String,
    far: String,
    delayer: Delayer,
    nfqdelay: PathBuf,
    running: Vec<Child>,
    _dir: tempfile::TempDir,
}

fn ip(args: &[&str]) -> std::io::Result<std::process::Output> {
    Command::new(crate::netns::ip_tool()).args(args).output()
}

fn ip_ok(args: &[&str]) {
    let out = ip(args).unwrap_or_else(|e| panic!("ip {args:?}: {e}"));
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl KernelPath {
    /// Creates `near` and `far` (names unique to this process) and their link, no delay yet.
    pub fn create() -> KernelPath {
        let pid = std::process::id();
        let near = format!("tkn{pid}");
        let far = format!("tkf{pid}");
        for ns in [&near, &far] {
            ip_ok(&["netns", "add", ns]);
        }
        ip_ok(&["link", "add", &near, "type", "veth", "peer", "name", &far]);
        let dir = tempfile::tempdir().expect("temp dir");
        let mut me = KernelPath {
            near: near.clone(),
            far: far.clone(),
            delayer: Delayer::Netem,
            nfqdelay: dir.path().join("nfqdelay"),
            running: Vec::new(),
            _dir: dir,
        };
        for (ns, addr) in [(&near, NEAR_IP), (&far, FAR_IP)] {
            ip_ok(&["link", "set", ns, "netns", ns]);
            ip_ok(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", ns]);
            ip_ok(&["-n", ns, "link", "set", "lo", "up"]);
            ip_ok(&["-n", ns, "link", "set", ns, "up"]);
        }
        let netem = ip(&[
            "netns", "exec", &near, "tc", "qdisc", "add", "dev", &near, "root", "netem", "delay",
            "1ms",
        ])
        .is_ok_and(|o| o.status.success());
        if netem {
            me.exec(
                &far,
                &[
                    "tc", "qdisc", "add", "dev", &far, "root", "netem", "delay", "1ms",
                ],
            );
        } else {
            me.delayer = Delayer::Nfqueue;
            me.build_nfqdelay();
            for ns in [&near, &far] {
                me.exec(
                    ns,
                    &[
                        "iptables",
                        "-A",
                        "INPUT",
                        "-i",
                        ns,
                        "-j",
                        "NFQUEUE",
                        "--queue-num",
                        "0",
                        "--queue-bypass",
                    ],
                );
            }
        }
        me
    }

    fn build_nfqdelay(&self) {
        let src = self.nfqdelay.with_extension("c");
        std::fs::write(&src, include_str!("../tools/nfqdelay.c")).expect("write nfqdelay.c");
        let out = Command::new("cc")
            .args(["-O2", "-o"])
            .arg(&self.nfqdelay)
            .arg(&src)
            .output()
            .unwrap_or_else(|e| {
                panic!("cc not found ({e}): the kernel has no sch_netem, so the delay needs nfqdelay: install gcc")
            });
        assert!(
            out.status.success(),
            "cc nfqdelay.c: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn exec(&self, ns: &str, args: &[&str]) {
        let mut all = vec!["netns", "exec", ns];
        all.extend_from_slice(args);
        let out = ip(&all).unwrap_or_else(|e| panic!("ip {all:?}: {e}"));
        assert!(
            out.status.success(),
            "{args:?} in {ns}: {} (iptables: install the iptables package)",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// How this kernel delays the packets.
    pub fn delayer(&self) -> Delayer {
        self.delayer
    }

    /// Holds every packet `one_way` in each direction and drops `loss_ppm` of them (per million,
    /// each way); TCP's buffers as `buffers`. Replaces what was set before.
    pub fn set(&mut self, one_way: Duration, loss_ppm: u32, buffers: Buffers) {
        for mut c in self.running.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
        let (rmem, wmem) = match buffers {
            Buffers::Stock => ("4096 131072 6291456", "4096 16384 4194304"),
            Buffers::Large => ("4096 131072 134217728", "4096 16384 134217728"),
        };
        let (near, far) = (self.near.clone(), self.far.clone());
        for ns in [&near, &far] {
            self.exec(
                ns,
                &[
                    "sysctl",
                    "-q",
                    "-w",
                    &format!("net.ipv4.tcp_rmem={rmem}"),
                    &format!("net.ipv4.tcp_wmem={wmem}"),
                ],
            );
            match self.delayer {
                Delayer::Netem => {
                    let delay = format!("{}us", one_way.as_micros());
                    let loss = format!("{}%", f64::from(loss_ppm) / 1e4);
                    self.exec(
                        ns,
                        &[
                            "tc", "qdisc", "change", "dev", ns, "root", "netem", "delay", &delay,
                            "loss", &loss, "limit", "1000000",
                        ],
                    );
                }
                Delayer::Nfqueue => {
                    let child = Command::new(crate::netns::ip_tool())
                        .args(["netns", "exec", ns])
                        .arg(&self.nfqdelay)
                        .args(["0", &one_way.as_millis().to_string(), &loss_ppm.to_string()])
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .expect("start nfqdelay");
                    self.running.push(child);
                }
            }
        }
    }

    /// TCP's congestion control in the namespaces (a new namespace takes the host's default;
    /// only the host's `tcp_allowed_congestion_control` could be chosen there).
    pub fn congestion(&self) -> String {
        ip(&[
            "netns",
            "exec",
            &self.near,
            "sysctl",
            "-n",
            "net.ipv4.tcp_congestion_control",
        ])
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
    }

    /// Moves the calling thread into `near`; threads and processes it starts afterwards are
    /// there too. Call it before starting any runtime.
    pub fn enter_near(&self) {
        let path = Path::new("/run/netns").join(&self.near);
        let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&f),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .expect("setns into the near namespace");
    }

    /// A command that runs `program` in `far`.
    pub fn far_command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(crate::netns::ip_tool());
        c.args(["netns", "exec", &self.far]).arg(program);
        c
    }

    /// The far namespace's name (for [`crate::netns::NetnsSshd::start_in`]).
    pub fn far(&self) -> &str {
        &self.far
    }
}

impl Drop for KernelPath {
    fn drop(&mut self) {
        for mut c in self.running.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.near, &self.far] {
            // Every process in it but this one (which entered `near`).
            let me = std::process::id().to_string();
            if let Ok(out) = ip(&["netns", "pids", ns]) {
                for pid in String::from_utf8_lossy(&out.stdout)
                    .split_whitespace()
                    .filter(|p| *p != me)
                {
                    let _ = Command::new("kill").args(["-KILL", pid]).output();
                }
            }
            let _ = ip(&["netns", "del", ns]);
        }
    }
}
