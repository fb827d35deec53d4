//! One measurement each: iperf3 throughput either way, connection latency, many concurrent
//! connections, CPU time of a process.

use super::*;
pub(crate) use tunnelkit_tests::bench::{median, proc_stat};

/// Which way iperf3's data flows through the tunnel.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Way {
    /// Client to target (iperf3).
    Up,
    /// Target to client (iperf3 -R): what the bastion sends us.
    Down,
}

/// Gbit/s received, measured for `secs.0` seconds after `secs.1` omitted. A run that measures
/// nothing (iperf3's server still busy with the last test) is tried again, up to 5 times.
pub(crate) fn iperf(local: SocketAddr, streams: u32, way: Way, secs: (u32, u32)) -> f64 {
    for _ in 0..4 {
        let gbits = iperf_once(local, streams, way, secs);
        if gbits > 0.0 {
            return gbits;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    iperf_once(local, streams, way, secs)
}

pub(crate) fn iperf_once(local: SocketAddr, streams: u32, way: Way, secs: (u32, u32)) -> f64 {
    let mut c = Command::new("iperf3");
    c.args(["-c", "127.0.0.1", "-p", &local.port().to_string(), "-J"])
        .args(["-t", &secs.0.to_string(), "-O", &secs.1.to_string()])
        .args(["-P", &streams.to_string()]);
    if way == Way::Down {
        c.arg("-R");
    }
    let out = c
        .output()
        .expect("iperf3 not found: install the iperf3 package (apt-get install iperf3)");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let gbits = v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or(0.0)
        / 1e9;
    if gbits == 0.0 {
        eprintln!(
            "iperf3 measured nothing: {}",
            v["error"].as_str().unwrap_or("no JSON result")
        );
    }
    gbits
}

/// connect, first byte from a target that speaks first, one echo round trip; `n` times.
pub(crate) fn latencies(local: SocketAddr, n: usize) -> (f64, f64) {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let mut s = TcpStream::connect(local).expect("connect");
        s.set_nodelay(true).ok();
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        let mut g = [0u8; 12];
        s.read_exact(&mut g).expect("greeting");
        s.write_all(b"x").expect("write");
        let mut b = [0u8; 1];
        s.read_exact(&mut b).expect("echo");
        v.push(t.elapsed().as_secs_f64() * 1e3);
    }
    v.sort_by(f64::total_cmp);
    (v[n / 2], v[(n * 99) / 100])
}

/// 1,000 concurrent connections each echoing 64 KiB; returns (intact count, wall seconds).
pub(crate) fn many(local: SocketAddr, n: usize) -> (usize, f64) {
    let t = Instant::now();
    let handles: Vec<_> = (0..n)
        .map(|i| {
            std::thread::spawn(move || -> bool {
                let data: Vec<u8> = (0..65536u32)
                    .map(|j| (j.wrapping_mul(31) ^ i as u32) as u8)
                    .collect();
                let want = Sha256::digest(&data);
                let Ok(mut s) = TcpStream::connect(local) else {
                    return false;
                };
                s.set_read_timeout(Some(Duration::from_secs(60))).ok();
                let Ok(mut r) = s.try_clone() else {
                    return false;
                };
                let w = std::thread::spawn(move || {
                    s.write_all(&data)
                        .and_then(|()| s.shutdown(std::net::Shutdown::Write))
                });
                let mut got = Vec::new();
                let read_ok = r.read_to_end(&mut got).is_ok();
                let write_ok = w.join().map(|r| r.is_ok()).unwrap_or(false);
                read_ok && write_ok && Sha256::digest(&got) == want
            })
        })
        .collect();
    let ok = handles
        .into_iter()
        .filter(|_| true)
        .map(|h| h.join().unwrap_or(false))
        .filter(|ok| *ok)
        .count();
    (ok, t.elapsed().as_secs_f64())
}

/// Waits until something listens on the local port, without connecting through it (iperf3's
/// server would take a probe connection for a test).
pub(crate) fn first_echo_iperf(local: SocketAddr) {
    let hex = format!(":{:04X} ", local.port());
    wait_until(DEADLINE, "the forward's listener", || {
        ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .lines()
                .any(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .is_some_and(|a| a.ends_with(hex.trim()))
                        && l.split_whitespace().nth(3) == Some("0A")
                })
        })
    });
}
