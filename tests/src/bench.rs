//! What the benchmark binaries (`compare`, `wan`) share: starting tunnelkit with one forward,
//! reading a process's CPU time and peak memory, medians.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

/// Starts `tunnelkit` (a command already given its arguments, `-q -L 0:...` among them) and
/// returns it with the local address it printed on its first line (`Forwarding ADDR -> ...`).
pub fn start_forwarding(mut tunnelkit: Command) -> (Child, SocketAddr) {
    let mut child = tunnelkit
        .stdout(Stdio::piped())
        .spawn()
        .expect("start tunnelkit");
    let out = child.stdout.take().expect("tunnelkit's stdout");
    let mut line = String::new();
    BufReader::new(out)
        .read_line(&mut line)
        .expect("tunnelkit's forward line");
    let local = line
        .strip_prefix("Forwarding ")
        .and_then(|r| r.split(" -> ").next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unexpected output from tunnelkit: {line:?}"));
    (child, local)
}

/// A process's peak resident memory (MiB) and CPU time (user + system, seconds), from `/proc`.
pub fn proc_stat(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(") ")
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (hwm, (ticks(11) + ticks(12)) / 100.0)
}

/// The median of `v` (the upper one of an even count); 0 for none.
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
