//! What a group of idle processes costs, read from `/proc` without touching them: resident and
//! proportional memory, peak RSS, CPU time and context switches (wake-ups) per thread.
//!
//! Context switches are counted per thread (`/proc/PID/task/TID/status`), sampled every
//! [`TICK`]: each thread's increase since its last sample is added up, and a thread born
//! during the window counts from zero, so threads that come and go (tokio's blocking pool) are
//! counted too, all but their last tick before they end. CPU time is counted the same way, in
//! nanoseconds, from each thread's `schedstat` (time on a CPU); `/proc/PID/stat`'s utime +
//! stime (clock ticks, 10 ms each, threads that have ended included) is kept as a cross-check.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How often the threads are sampled.
pub const TICK: Duration = Duration::from_secs(1);

/// What the processes cost over one window.
#[derive(Debug, Clone, Default)]
pub struct Cost {
    /// Processes measured.
    pub processes: usize,
    /// Threads at the end of the window, all processes together.
    pub threads: usize,
    /// VmRSS, all processes together, mean over the samples (KiB).
    pub rss_kib: f64,
    /// Pss (`smaps_rollup`: shared pages divided among their users), all processes together,
    /// at the end (KiB).
    pub pss_kib: u64,
    /// VmHWM (each process's peak RSS since it started, or its largest VmRSS sampled if that
    /// is more), all processes together (KiB).
    pub peak_rss_kib: u64,
    /// CPU seconds spent during the window (the threads' `schedstat`, nanoseconds).
    pub cpu_secs: f64,
    /// The same from utime + stime of `/proc/PID/stat` (10 ms clock ticks).
    pub cpu_secs_ticks: f64,
    /// Voluntary + involuntary context switches during the window.
    pub wakeups: u64,
    /// The involuntary ones among them (preemptions: these grow with the machine's load, the
    /// voluntary ones with the process's own sleeps and wake-ups).
    pub preempted: u64,
    /// The window's length.
    pub secs: f64,
    /// The machine's 1-minute load average at the start and at the end of the window.
    pub load_average: (f64, f64),
    /// Context switches by thread (`comm` and, for a single process, the thread id), for
    /// finding what wakes.
    pub wakeups_by_thread: BTreeMap<String, u64>,
}

impl Cost {
    /// CPU seconds per hour at this rate.
    pub fn cpu_secs_per_hour(&self) -> f64 {
        self.cpu_secs / self.secs * 3600.0
    }

    /// Context switches per second.
    pub fn wakeups_per_sec(&self) -> f64 {
        self.wakeups as f64 / self.secs
    }

    /// Voluntary context switches per second: the process's own wake-ups.
    pub fn voluntary_per_sec(&self) -> f64 {
        self.wakeups.saturating_sub(self.preempted) as f64 / self.secs
    }
}

/// The field `key` of a `/proc/.../status`-style text, as a number (the first word after it).
fn field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command name in parentheses: state is field 0, utime 11, stime 12.
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map(|(_, r)| r)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let tick = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
    tick(11).unwrap_or(0) + tick(12).unwrap_or(0)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux when that fails).
fn clock_ticks_per_sec() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

/// One thread's counters so far.
struct Thread {
    tid: u32,
    name: String,
    /// Voluntary + involuntary context switches.
    switches: u64,
    /// Involuntary context switches.
    preempted: u64,
    /// Nanoseconds on a CPU.
    run_ns: u64,
}

/// Each thread of `pid`.
fn threads(pid: u32) -> Vec<Thread> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| {
            let tid: u32 = e.file_name().to_str()?.parse().ok()?;
            let status = std::fs::read_to_string(e.path().join("status")).ok()?;
            let name = status
                .lines()
                .find_map(|l| l.strip_prefix("Name:"))
                .map(|n| n.trim().to_string())
                .unwrap_or_default();
            let preempted = field(&status, "nonvoluntary_ctxt_switches").unwrap_or(0);
            let switches = field(&status, "voluntary_ctxt_switches").unwrap_or(0) + preempted;
            let run_ns = std::fs::read_to_string(e.path().join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse().ok())
                .unwrap_or(0);
            Some(Thread {
                tid,
                name,
                switches,
                preempted,
                run_ns,
            })
        })
        .collect()
}

fn status_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    field(&status, key).unwrap_or(0)
}

fn pss_kib(pid: u32) -> u64 {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    field(&rollup, "Pss").unwrap_or(0)
}

/// The 1-minute load average (0 if unknown).
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Measures `pids` for `window`, sampling every [`TICK`]. Panics naming the process when one
/// of them exits during the window (an idle client must stay up).
pub fn measure(pids: &[u32], window: Duration) -> Cost {
    let hz = clock_ticks_per_sec();
    let alive = |pid: u32| std::path::Path::new(&format!("/proc/{pid}/stat")).exists();
    // (pid, tid) -> (switches, preempted, run_ns) at its last sample.
    let mut last: BTreeMap<(u32, u32), (u64, u64, u64)> = BTreeMap::new();
    for &pid in pids {
        for t in threads(pid) {
            last.insert((pid, t.tid), (t.switches, t.preempted, t.run_ns));
        }
    }
    let mut run_ns = 0u64;
    let cpu0: u64 = pids.iter().map(|&p| cpu_ticks(p)).sum();
    let load0 = load_average();
    let start = Instant::now();
    let mut cost = Cost {
        processes: pids.len(),
        ..Cost::default()
    };
    let mut rss_samples = Vec::new();
    // Each process's largest VmRSS seen (VmHWM is read from approximate per-CPU counters and
    // can trail a VmRSS read a moment earlier).
    let mut rss_max: BTreeMap<u32, u64> = BTreeMap::new();
    let mut next = start;
    while next.duration_since(start) < window {
        next += TICK;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        let mut rss = 0;
        for &pid in pids {
            assert!(alive(pid), "process {pid} exited during the idle window");
            for t in threads(pid) {
                let (s0, p0, ns0) = last
                    .insert((pid, t.tid), (t.switches, t.preempted, t.run_ns))
                    .unwrap_or((0, 0, 0));
                let d = t.switches.saturating_sub(s0);
                cost.preempted += t.preempted.saturating_sub(p0);
                run_ns += t.run_ns.saturating_sub(ns0);
                cost.wakeups += d;
                let key = if pids.len() == 1 {
                    format!("{} {}", t.name, t.tid)
                } else {
                    t.name
                };
                *cost.wakeups_by_thread.entry(key).or_default() += d;
            }
            let r = status_kib(pid, "VmRSS");
            let m = rss_max.entry(pid).or_default();
            *m = (*m).max(r);
            rss += r;
        }
        rss_samples.push(rss as f64);
    }
    cost.secs = start.elapsed().as_secs_f64();
    cost.load_average = (load0, load_average());
    let cpu1: u64 = pids.iter().map(|&p| cpu_ticks(p)).sum();
    cost.cpu_secs_ticks = cpu1.saturating_sub(cpu0) as f64 / hz;
    cost.cpu_secs = run_ns as f64 / 1e9;
    cost.rss_kib = rss_samples.iter().sum::<f64>() / rss_samples.len().max(1) as f64;
    cost.peak_rss_kib = pids
        .iter()
        .map(|&p| status_kib(p, "VmHWM").max(rss_max.get(&p).copied().unwrap_or(0)))
        .sum();
    cost.pss_kib = pids.iter().map(|&p| pss_kib(p)).sum();
    cost.threads = pids.iter().map(|&p| threads(p).len()).sum();
    cost
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_by_exact_key() {
        let text = "Name:\tssh\nvoluntary_ctxt_switches:\t12\nnonvoluntary_ctxt_switches:\t3\nVmRSS:\t  5120 kB\n";
        assert_eq!(field(text, "voluntary_ctxt_switches"), Some(12));
        assert_eq!(field(text, "nonvoluntary_ctxt_switches"), Some(3));
        assert_eq!(field(text, "VmRSS"), Some(5120));
        assert_eq!(field(text, "VmHWM"), None);
    }

    #[test]
    fn this_process_can_be_measured() {
        let c = measure(&[std::process::id()], Duration::from_millis(10));
        assert_eq!(c.processes, 1);
        assert!(c.threads >= 1 && c.rss_kib > 0.0 && c.peak_rss_kib > 0);
    }
}
