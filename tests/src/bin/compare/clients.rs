//! The two clients under test, started side by side against the same sshd: tunnelkit and
//! `ssh -N -L`, directly or through the delay line, with or without a jump host.

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
    /// The bastion 100 ms away.
    pub(crate) wan: DelayLine,
    pub(crate) user: String,
}

/// Where the client reaches the bastion.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Link {
    /// Directly, on loopback.
    Lan,
    /// Through the delay line.
    Wan,
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
        self.open_via(who, target, cipher, jump, Link::Lan)
    }

    /// [`Env::open`], reaching the bastion over `path`.
    pub(crate) fn open_via(
        &self,
        who: Client,
        target: SocketAddr,
        cipher: &str,
        jump: bool,
        link: Link,
    ) -> Tunnel {
        let port = match link {
            Link::Lan => self.bastion.port(),
            Link::Wan => self.wan.port(),
        };
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
                c.arg(format!("{}@127.0.0.1", self.user))
                    .stdout(Stdio::piped());
                let mut child = c.spawn().expect("start tunnelkit");
                let out = child.stdout.take().expect("stdout");
                let mut line = String::new();
                BufReader::new(out)
                    .read_line(&mut line)
                    .expect("tunnelkit's forward line");
                let local = line
                    .strip_prefix("Forwarding ")
                    .and_then(|r| r.split(" -> ").next())
                    .and_then(|a| a.parse().ok())
                    .unwrap_or_else(|| panic!("unexpected output {line:?}"));
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
