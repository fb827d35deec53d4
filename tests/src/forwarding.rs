//! A `tunnelkit` process run by a test: started, its first stdout line (`Forwarding ADDR -> ...`)
//! read for the bound address, its stderr drained all along (a full pipe would block its
//! logging) and kept for assertions, and killed on drop.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a test waits for the first `Forwarding` line, or for an exit after SIGTERM.
const DEADLINE: Duration = Duration::from_secs(20);

/// A running tunnel process and the local address of its first forward.
pub struct Forwarding {
    /// The process.
    pub child: Child,
    /// The first forward's bound address.
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Forwarding {
    /// Spawns `cmd` and waits (bounded) for its `Forwarding` line; panics with its log if none.
    pub fn spawn(cmd: &mut Command) -> Forwarding {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let line = rx.recv_timeout(DEADLINE).unwrap_or_else(|_| {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tunnelkit printed no forward: {}", log.lock().unwrap())
        });
        // "Forwarding 127.0.0.1:PORT -> host:port"
        let addr = line
            .strip_prefix("Forwarding ")
            .and_then(|r| r.split(" -> ").next())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        Forwarding { child, addr, log }
    }

    /// What the process wrote on stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends SIGTERM and waits (bounded) for the exit.
    pub fn sigterm_and_wait(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let since = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                since.elapsed() < DEADLINE,
                "tunnelkit did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
