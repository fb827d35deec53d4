//! Real remote-desktop servers for `tunnelkit open`: xrdp and TigerVNC's Xvnc, each listening
//! on 127.0.0.1 inside a test's network namespace (so only the bastion there reaches them), and
//! an Xvnc without a VNC port as the X display a viewer draws on. Each logs to a file in its own
//! temporary directory; everything is killed on drop.
//!
//! Needs the xrdp and tigervnc-standalone-server packages (and root, for the namespace).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::netns::Netns;

/// How long a server gets to listen or to print its display number.
const DEADLINE: Duration = Duration::from_secs(20);

fn program(name: &str, package: &str) -> PathBuf {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} not found: install the {package} package (apt-get install {package})")
        })
}

/// A server process and its log. Killed on drop.
pub struct DesktopServer {
    dir: tempfile::TempDir,
    child: Child,
    /// The TCP port it listens on (inside the namespace, on 127.0.0.1), or 0 for none.
    pub port: u16,
    /// The X display number (Xvnc), or 0.
    pub display: u32,
}

impl DesktopServer {
    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Polls (bounded) until the log contains `text`; panics with the log if it never does.
    pub fn wait_for_log(&self, text: &str) {
        let start = std::time::Instant::now();
        while !self.log().contains(text) {
            assert!(
                start.elapsed() < DEADLINE,
                "{text:?} not in the log within {DEADLINE:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn spawn(mut cmd: Command, dir: tempfile::TempDir, port: u16) -> DesktopServer {
        use std::os::unix::process::CommandExt;
        let log = std::fs::File::create(dir.path().join("server.log")).expect("server log");
        let err = log.try_clone().expect("server log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .process_group(0)
            .spawn()
            .expect("start the server");
        DesktopServer {
            dir,
            child,
            port,
            display: 0,
        }
    }

    /// xrdp on 127.0.0.1:3389 inside `ns`, in the foreground, with TLS (the snakeoil
    /// certificate the package installs), logging to its own file. No session manager: a client
    /// gets through the RDP connection sequence (what `xfreerdp +auth-only` checks), not to a
    /// desktop.
    pub fn xrdp(ns: &Netns) -> DesktopServer {
        let xrdp = program("xrdp", "xrdp");
        let dir = tempfile::tempdir().expect("xrdp dir");
        let ini = dir.path().join("xrdp.ini");
        let config = "[Globals]\nini_version=1\nfork=false\nport=tcp://127.0.0.1:3389\n\
            security_layer=negotiate\ncrypt_level=high\ncertificate=/etc/xrdp/cert.pem\n\
            key_file=/etc/xrdp/key.pem\nssl_protocols=TLSv1.2, TLSv1.3\nallow_channels=true\n\
            [Logging]\nLogFile=LOGFILE\nLogLevel=INFO\nEnableSyslog=false\nEnableConsole=false\n\
            [Channels]\nrdpdr=true\nrdpsnd=true\ndrdynvc=true\ncliprdr=true\nrail=true\n\
            [Xvnc]\nname=Xvnc\nlib=libvnc.so\nusername=ask\npassword=ask\nip=127.0.0.1\n\
            port=-1\n";
        // Its own log file, written as it goes (its console output is buffered).
        let log = dir.path().join("server.log");
        let config = config.replace("LOGFILE", &log.to_string_lossy());
        std::fs::write(&ini, config).expect("xrdp.ini");
        let mut cmd = ns.command(xrdp);
        cmd.arg("--nodaemon").arg("--config").arg(&ini);
        let me = Self::spawn(cmd, dir, 3389);
        me.wait_for_log("listening to port 3389");
        me
    }

    /// Xvnc (TigerVNC) inside `ns`: a VNC server on 127.0.0.1:`port` without authentication
    /// (`SecurityTypes None`), on a display number it picks itself.
    pub fn xvnc(ns: &Netns, port: u16) -> DesktopServer {
        let cmd = ns.command("sh");
        Self::xvnc_with(cmd, &["-rfbport", &port.to_string(), "-localhost"], port)
    }

    /// Xvnc in this namespace with no VNC port: an X display (`DISPLAY=:N`) for a viewer.
    pub fn x_display() -> DesktopServer {
        Self::xvnc_with(Command::new("sh"), &["-rfbport", "-1"], 0)
    }

    fn xvnc_with(mut sh: Command, args: &[&str], port: u16) -> DesktopServer {
        let xvnc = program("Xvnc", "tigervnc-standalone-server");
        let dir = tempfile::tempdir().expect("Xvnc dir");
        let display_file = dir.path().join("display");
        // -displayfd: Xvnc takes the first free display and writes its number there.
        sh.arg("-c")
            .arg("exec \"$0\" -displayfd 3 -SecurityTypes None -geometry 640x480 \"$@\" 3>\"$DISPLAY_FILE\"")
            .arg(&xvnc)
            .args(args)
            .env("DISPLAY_FILE", &display_file);
        let mut me = Self::spawn(sh, dir, port);
        crate::wait_until(DEADLINE, "Xvnc's display number", || {
            std::fs::read_to_string(&display_file).is_ok_and(|s| s.ends_with('\n'))
        });
        me.display = std::fs::read_to_string(&display_file)
            .expect("display file")
            .trim()
            .parse()
            .expect("a display number");
        if port != 0 {
            me.wait_for_log("Listening for VNC connections");
        }
        me
    }
}

impl Drop for DesktopServer {
    fn drop(&mut self) {
        let pgid = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &pgid]).output();
        let _ = self.child.wait();
    }
}
