//! The two clients under test, started side by side against the same sshd: tunnelkit and
//! `ssh -N -L`, with or without a jump host.

use super::*;

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Client {
    Tunnelkit,
    OpenSsh,
}

pub(crate) struct Env {
    pub(crate) dir: TestDir,
    pub(crate) bastion: Sshd,
    pub(crate) gw: Sshd,
    pub(crate) user: String,
}

pub(crate) struct Tunnel {
    pub(crate) child: Child,
    pub(crate) local: SocketAddr,
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

impl Env {
    /// Starts the client with one forward to `target`, through the gateway when `jump`.
    pub(crate) fn open(&self, who: Client, target: SocketAddr, cipher: &str, jump: bool) -> Tunnel {
        let port = self.bastion.port();
        // Both clients read the same ssh_config, so jump hosts get the same key and known_hosts.
        let common = |c: &mut Command| {
            c.arg("-N")
                .arg("-F")
                .arg(self.dir.path().join("ssh_config"))
                .arg("-o")
                .arg(format!("Ciphers={cipher}"))
                .arg("-p")
                .arg(port.to_string());
            if jump {
                c.arg("-J")
                    .arg(format!("{}@127.0.0.1:{}", self.user, self.gw.port()));
            }
            c.stdin(Stdio::null()).stderr(Stdio::null());
        };
        match who {
            Client::Tunnelkit => {
                let mut c = Command::new(tunnelkit_tests::release_tunnelkit());
                common(&mut c);
                // With TUNNELKIT_LOG set (a tracing filter), tunnelkit's log is kept.
                if std::env::var_os("TUNNELKIT_LOG").is_some() {
                    let log = std::env::temp_dir().join(format!("compare-tunnelkit-{port}.log"));
                    c.stderr(std::fs::File::create(&log).expect("create the tunnelkit log"));
                }
                c.args(["-q", "-L"]).arg(format!("0:{target}"));
                c.arg(format!("{}@127.0.0.1", self.user));
                let (child, local) = tunnelkit_tests::bench::start_forwarding(c);
                Tunnel { child, local }
            }
            Client::OpenSsh => {
                let port = free_port();
                let mut c = Command::new(find_tool("ssh"));
                c.arg("-L").arg(format!("{port}:{target}"));
                common(&mut c);
                c.arg(format!("{}@127.0.0.1", self.user))
                    .stdout(Stdio::null());
                let child = c.spawn().expect("start ssh");
                Tunnel {
                    child,
                    local: SocketAddr::from(([127, 0, 0, 1], port)),
                }
            }
        }
    }
}

/// Waits until an echo round trip works through `local`; returns when it did.
pub(crate) fn first_echo(local: SocketAddr, deadline: Duration) -> Instant {
    let start = Instant::now();
    loop {
        let ok = (|| -> std::io::Result<()> {
            let mut s = TcpStream::connect(local)?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(b"?")?;
            let mut b = [0u8; 1];
            s.read_exact(&mut b)
        })();
        if ok.is_ok() {
            return Instant::now();
        }
        assert!(
            start.elapsed() < deadline,
            "no echo through {local}: {ok:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}
