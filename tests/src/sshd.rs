//! A real OpenSSH `sshd` on loopback, run the way inetd runs it: the harness binds
//! `127.0.0.1:0` itself (no port race) and starts `sshd -i` for each accepted connection, in its
//! own process group so that [`Sshd::kill`] cuts every connection at once, like a host dying.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How sshd is configured.
#[derive(Debug, Clone, Default)]
pub struct SshdOptions {
    /// Public key lines allowed to log in (as the user running the tests).
    pub authorized_keys: Vec<String>,
    /// More `sshd_config` lines, e.g. `Ciphers aes128-gcm@openssh.com`. They come before all of
    /// the harness's lines, so each overrides the harness's value for its keyword (sshd takes a
    /// keyword's first value): `LogLevel ERROR` for a long soak run, `AllowTcpForwarding
    /// local` for a bastion that refuses remote forwards; no `Match` block.
    pub extra_config: Vec<String>,
    /// Sign the host key with a CA and serve the certificate (`HostCertificate`).
    pub host_certificate: Option<HostCertificate>,
    /// Ask for a password and/or a TOTP code through PAM (keyboard-interactive), with a PAM
    /// service of this sshd's own. Combine with `AuthenticationMethods
    /// publickey,keyboard-interactive` in `extra_config` to require a key too.
    pub pam: Option<crate::PamAuth>,
}

/// How the harness certifies sshd's host key: `ssh-keygen -s CA -h -I ID [-n P] [-V V]`.
#[derive(Debug, Clone)]
pub struct HostCertificate {
    /// The CA's private key file (e.g. a [`crate::KeyPair`]'s `private`).
    pub ca: PathBuf,
    /// `-n`: comma-separated principals; empty for a certificate without principals.
    pub principals: String,
    /// `-V`: the validity interval, e.g. `20200101:20210101`; `None` for forever.
    pub validity: Option<String>,
    /// `-h`: a host certificate; `false` makes a user certificate, which a client must refuse.
    pub host: bool,
}

struct Shared {
    children: Mutex<Vec<Child>>,
    connections: AtomicUsize,
    stop: AtomicBool,
}

/// A running sshd. Dropping it kills every process and removes its files.
pub struct Sshd {
    dir: tempfile::TempDir,
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Mutex<Option<JoinHandle<()>>>,
    /// Our PAM service (removed on drop); its name is sshd's argv[0].
    pam: Option<crate::pam::PamService>,
    totp_secret: Option<String>,
}

impl Sshd {
    /// Starts sshd on a fresh loopback port with a fresh ed25519 host key.
    pub fn start(opts: SshdOptions) -> Sshd {
        let sshd = crate::find_tool("sshd");
        ensure_privsep_dir();
        let dir = tempfile::tempdir().expect("sshd temp dir");
        let d = dir.path();
        new_host_key(d);
        std::fs::write(
            d.join("authorized_keys"),
            opts.authorized_keys.join("\n") + "\n",
        )
        .expect("authorized_keys");
        // The caller's lines first: sshd takes a keyword's first value, so they override the
        // harness's defaults below (e.g. `AllowTcpForwarding local`).
        let mut config = opts.extra_config;
        let pam = opts.pam.as_ref().map(|p| crate::pam::install(d, p));
        if pam.is_some() {
            config.extend([
                "UsePAM yes".into(),
                "KbdInteractiveAuthentication yes".into(),
            ]);
        }
        config.extend([
            format!("HostKey {}", d.join("host_key").display()),
            format!("AuthorizedKeysFile {}", d.join("authorized_keys").display()),
            "PidFile none".into(),
            "StrictModes no".into(),
            "UsePAM no".into(),
            "PermitRootLogin yes".into(),
            "PasswordAuthentication no".into(),
            "KbdInteractiveAuthentication no".into(),
            "AllowTcpForwarding yes".into(),
            "ClientAliveInterval 0".into(),
            "MaxStartups 1000".into(),
        ]);
        if let Some(cert) = &opts.host_certificate {
            certify_host_key(d, cert);
            config.push(format!(
                "HostCertificate {}",
                d.join("host_key-cert.pub").display()
            ));
        }
        // After the caller's lines, which may override it.
        config.push("LogLevel DEBUG1".into());
        std::fs::write(d.join("sshd_config"), config.join("\n") + "\n").expect("sshd_config");
        // Fail early, with sshd's own words, on a bad config.
        let check = Command::new(&sshd)
            .arg("-t")
            .arg("-f")
            .arg(d.join("sshd_config"))
            .output()
            .expect("run sshd -t");
        assert!(
            check.status.success(),
            "sshd -t: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind sshd listener");
        let addr = listener.local_addr().expect("sshd address");
        let shared = Arc::new(Shared {
            children: Mutex::new(Vec::new()),
            connections: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let s = Sshd {
            dir,
            addr,
            shared,
            acceptor: Mutex::new(None),
            pam,
            totp_secret: opts.pam.and_then(|p| p.totp_secret),
        };
        s.accept_on(listener);
        s
    }

    fn accept_on(&self, listener: TcpListener) {
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let shared = self.shared.clone();
        shared.stop.store(false, Ordering::SeqCst);
        let sshd = crate::find_tool("sshd");
        let config = self.dir.path().join("sshd_config");
        let log = self.dir.path().join("sshd.log");
        let arg0 = self.pam.as_ref().map(|p| p.name.clone());
        let handle = std::thread::spawn(move || {
            while !shared.stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((sock, _)) => {
                        let _ = sock.set_nonblocking(false);
                        shared.connections.fetch_add(1, Ordering::SeqCst);
                        if let Some(child) =
                            spawn_inetd(&sshd, arg0.as_deref(), &config, &log, sock)
                        {
                            if let Ok(mut c) = shared.children.lock() {
                                c.push(child);
                            }
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        if let Ok(mut a) = self.acceptor.lock() {
            *a = Some(handle);
        }
    }

    /// Stops the acceptor thread, which closes the listener.
    fn stop_accepting(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let handle = self.acceptor.lock().ok().and_then(|mut a| a.take());
        if let Some(t) = handle {
            let _ = t.join();
        }
    }

    /// The listening address (127.0.0.1:port).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The host key as `type base64`.
    pub fn host_key_line(&self) -> String {
        let pub_line =
            std::fs::read_to_string(self.dir.path().join("host_key.pub")).expect("host key");
        pub_line
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A known_hosts line for this server: `[127.0.0.1]:PORT type base64`.
    pub fn known_hosts_line(&self) -> String {
        format!("[127.0.0.1]:{} {}", self.port(), self.host_key_line())
    }

    /// TCP connections accepted so far (each is one SSH transport).
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// sshd's log, to print when a test fails.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// Stops accepting (new connections are refused) and kills every sshd process at once,
    /// so clients see their transport die.
    pub fn kill(&self) {
        self.stop_accepting();
        if let Ok(mut children) = self.shared.children.lock() {
            for c in children.iter_mut() {
                kill_group(c);
            }
            children.clear();
        }
    }

    /// Accepts again on the same port, with the same (or a replaced) host key.
    pub fn restart(&self) {
        self.stop_accepting();
        let mut listener = None;
        crate::wait_until(Duration::from_secs(10), "sshd port free again", || {
            listener = TcpListener::bind(self.addr).ok();
            listener.is_some()
        });
        if let Some(l) = listener {
            self.accept_on(l);
        }
    }

    /// Replaces the public keys allowed to log in (new connections use the new list): a key
    /// removed from `authorized_keys`, or put back.
    pub fn set_authorized_keys(&self, lines: &[String]) {
        std::fs::write(
            self.dir.path().join("authorized_keys"),
            lines.join("\n") + "\n",
        )
        .expect("authorized_keys");
    }

    /// The current TOTP code of the PAM TOTP secret (`oathtool --totp`). pam_oath refuses a code
    /// already used: for a second login in the same 30 s step wait (bounded, at most 30 s) for
    /// [`crate::secs_to_next_totp_step`] to pass, then ask again.
    pub fn totp_code(&self) -> String {
        let secret = self
            .totp_secret
            .as_deref()
            .expect("totp_code: this sshd has no PamAuth::totp_secret");
        crate::pam::totp_code(secret)
    }

    /// A TOTP code other than `used` (one pam_oath already took): the current one if it
    /// differs, otherwise the next 30 s step's, waiting for that step (at most 31 s).
    pub fn totp_code_other_than(&self, used: &str) -> String {
        let code = self.totp_code();
        if code != used {
            return code;
        }
        let step = crate::pam::totp_step();
        crate::wait_until(Duration::from_secs(31), "the next TOTP step", || {
            crate::pam::totp_step() != step
        });
        self.totp_code()
    }

    /// The PAM service name (sshd's `argv[0]`), when PAM is on.
    pub fn pam_service(&self) -> Option<&str> {
        self.pam.as_ref().map(|p| p.name.as_str())
    }

    /// Keyboard-interactive logins started so far (accepted, refused or abandoned): sshd logs
    /// `Postponed keyboard-interactive for USER` once for each start of the method.
    pub fn kbd_int_logins(&self) -> usize {
        self.log_lines_with("Postponed keyboard-interactive for ")
    }

    /// Keyboard-interactive logins the bastion accepted (`Accepted keyboard-interactive/pam`).
    pub fn accepted_kbd_int(&self) -> usize {
        self.log_lines_with("Accepted keyboard-interactive/pam for ")
    }

    /// Keyboard-interactive answers the bastion refused (`Failed keyboard-interactive/pam`).
    pub fn failed_kbd_int(&self) -> usize {
        self.log_lines_with("Failed keyboard-interactive/pam for ")
    }

    /// Lines of sshd's log that contain `needle`.
    pub fn log_lines_with(&self, needle: &str) -> usize {
        self.log().lines().filter(|l| l.contains(needle)).count()
    }

    /// Replaces the host key (new connections present the new key): a host key change.
    pub fn replace_host_key(&self) {
        let d = self.dir.path();
        let _ = std::fs::remove_file(d.join("host_key"));
        let _ = std::fs::remove_file(d.join("host_key.pub"));
        new_host_key(d);
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill();
    }
}

fn new_host_key(dir: &Path) {
    let out = Command::new(crate::find_tool("ssh-keygen"))
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test-host", "-f"])
        .arg(dir.join("host_key"))
        .output()
        .expect("run ssh-keygen");
    assert!(
        out.status.success(),
        "ssh-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn certify_host_key(dir: &Path, cert: &HostCertificate) {
    let mut cmd = Command::new(crate::find_tool("ssh-keygen"));
    cmd.args(["-q", "-s"])
        .arg(&cert.ca)
        .args(["-I", "test-host"]);
    if cert.host {
        cmd.arg("-h");
    }
    if !cert.principals.is_empty() {
        cmd.args(["-n", &cert.principals]);
    }
    if let Some(v) = &cert.validity {
        cmd.args(["-V", v]);
    }
    let out = cmd
        .arg(dir.join("host_key.pub"))
        .output()
        .expect("run ssh-keygen -s");
    assert!(
        out.status.success(),
        "ssh-keygen -s: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Debian's sshd refuses to start without its privilege separation directory.
fn ensure_privsep_dir() {
    let d = Path::new("/run/sshd");
    if !d.exists() {
        let _ = std::fs::create_dir_all(d);
    }
}

/// `arg0`: sshd's program name, which names its PAM service.
fn spawn_inetd(
    sshd: &Path,
    arg0: Option<&str>,
    config: &Path,
    log: &Path,
    sock: std::net::TcpStream,
) -> Option<Child> {
    use std::os::unix::process::CommandExt;
    let out = sock.try_clone().ok()?;
    let err = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .ok()?;
    let mut cmd = Command::new(sshd);
    if let Some(a) = arg0 {
        cmd.arg0(a);
    }
    cmd.arg("-i")
        .arg("-e")
        .arg("-f")
        .arg(config)
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(sock)))
        .stdout(Stdio::from(std::os::fd::OwnedFd::from(out)))
        .stderr(Stdio::from(err))
        .process_group(0)
        .spawn()
        .ok()
}

fn kill_group(c: &mut Child) {
    let pgid = c.id().to_string();
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .status();
    let _ = c.kill();
    let _ = c.wait();
}
