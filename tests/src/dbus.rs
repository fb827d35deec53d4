//! A private D-Bus session bus (`dbus-daemon --session`, as `dbus-run-session` starts one) and
//! a `dbus-monitor` on it that records what is sent, for tests of desktop notifications. The
//! test process's own environment is never changed: pass [`SessionBus::address`] as
//! `DBUS_SESSION_BUS_ADDRESS` to the processes that should use it.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long the bus's address and the monitor's start are waited for.
const START_DEADLINE: Duration = Duration::from_secs(10);

fn find(name: &str, package: &str) -> PathBuf {
    ["/usr/bin", "/bin"]
        .iter()
        .map(|d| PathBuf::from(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found: install the {package} package"))
}

/// A running session bus. Killed on drop.
pub struct SessionBus {
    child: Child,
    address: String,
}

impl SessionBus {
    /// Starts `dbus-daemon --session --nofork --print-address` and reads its address.
    pub fn start() -> SessionBus {
        let mut child = Command::new(find("dbus-daemon", "dbus-daemon"))
            .args(["--session", "--nofork", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-daemon");
        let stdout = child.stdout.take().expect("dbus-daemon stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let address = rx
            .recv_timeout(START_DEADLINE)
            .expect("dbus-daemon printed no address")
            .trim()
            .to_string();
        assert!(
            address.starts_with("unix:"),
            "dbus-daemon address {address:?}"
        );
        SessionBus { child, address }
    }

    /// The bus's address (for `DBUS_SESSION_BUS_ADDRESS`).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Starts `dbus-monitor` on this bus with a match rule and waits until it is monitoring.
    pub fn monitor(&self, rule: &str) -> BusMonitor {
        let mut child = Command::new(find("dbus-monitor", "dbus-bin"))
            .arg("--address")
            .arg(&self.address)
            .arg(rule)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-monitor");
        let mut stdout = child.stdout.take().expect("dbus-monitor stdout");
        let text = Arc::new(Mutex::new(String::new()));
        let t = text.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut t) = t.lock() {
                    t.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        let m = BusMonitor { child, text };
        // Becoming a monitor, it loses its own unique name: from then on it sees everything.
        crate::wait_until(START_DEADLINE, "dbus-monitor to start monitoring", || {
            m.text().contains("member=NameLost")
        });
        m
    }
}

impl Drop for SessionBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `dbus-monitor` recording a bus's messages. Killed on drop.
pub struct BusMonitor {
    child: Child,
    text: Arc<Mutex<String>>,
}

impl BusMonitor {
    /// Everything it has printed so far.
    pub fn text(&self) -> String {
        self.text.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// The method calls seen so far with this member name, each as its header and arguments.
    pub fn calls(&self, member: &str) -> Vec<String> {
        let text = self.text();
        let mut calls = Vec::new();
        let mut current: Option<String> = None;
        for line in text.lines() {
            if !line.starts_with(' ') {
                calls.extend(current.take());
                let wanted = format!("member={member}");
                if line.starts_with("method call ") && line.ends_with(&wanted) {
                    current = Some(line.to_string());
                }
            } else if let Some(c) = current.as_mut() {
                c.push('\n');
                c.push_str(line);
            }
        }
        calls.extend(current);
        calls
    }
}

impl Drop for BusMonitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
