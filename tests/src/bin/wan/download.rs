//! The checked download: a server in the far namespace sends a fixed number of bytes of a
//! deterministic stream; the client reads them through tunnelkit and compares their SHA-256
//! with the stream's, so that a transfer that loses, repeats or corrupts a byte fails.

use std::io::{Read, Write};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tunnelkit_tests::kernel_path::KernelPath;

use super::run::{Client, Clients};

/// The stream's bytes, block by block (xorshift64: fast, and the same on both ends).
struct Stream {
    state: u64,
}

impl Stream {
    fn new() -> Stream {
        Stream {
            state: 0x9E37_79B9_7F4A_7C15,
        }
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let mut x = self.state;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.state = x;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
    }
}

/// The SHA-256 of the stream's first `bytes` bytes.
fn expected(bytes: u64) -> [u8; 32] {
    let mut s = Stream::new();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        s.fill(&mut buf[..n]);
        h.update(&buf[..n]);
        left -= n as u64;
    }
    h.finalize().into()
}

/// `--serve PORT BYTES` (run in the far namespace): sends the stream's first `bytes` bytes to
/// each of up to 16 connections in turn, then exits.
pub(crate) fn serve(port: u16, bytes: u64) {
    let l = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind the stream server");
    let mut buf = vec![0u8; 1 << 16];
    for conn in l.incoming().take(16) {
        let Ok(mut c) = conn else { continue };
        let mut s = Stream::new();
        let mut left = bytes;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            s.fill(&mut buf[..n]);
            if c.write_all(&buf[..n]).is_err() {
                break;
            }
            left -= n as u64;
        }
    }
}

/// The stream server, killed on drop.
pub(crate) struct Server(Child);

impl Server {
    pub(crate) fn start(path: &KernelPath, port: u16, bytes: u64) -> Server {
        let me = std::env::current_exe().expect("this benchmark's path");
        let child = path
            .far_command(me)
            .args(["--serve", &port.to_string(), &bytes.to_string()])
            .stdin(Stdio::null())
            .spawn()
            .expect("start the stream server in the far namespace");
        Server(child)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the checked download gave.
pub(crate) struct Checked {
    bytes: u64,
    received: u64,
    secs: f64,
    intact: bool,
}

impl Checked {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::json!({"bytes": self.bytes, "received": self.received, "secs": self.secs,
            "mbits": self.mbits(), "sha256_matches": self.intact})
    }

    fn mbits(&self) -> f64 {
        self.received as f64 * 8.0 / self.secs / 1e6
    }
}

impl std::fmt::Display for Checked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "checked download through tunnelkit at 100 ms: {} of {} bytes in {:.1} s ({:.0} Mbit/s), SHA-256 {}",
            self.received,
            self.bytes,
            self.secs,
            self.mbits(),
            if self.intact { "matches" } else { "DIFFERS" }
        )
    }
}

impl Clients {
    /// Downloads `bytes` from the stream server on the far side's `port` through tunnelkit.
    pub(crate) fn checked_download(&self, port: u16, bytes: u64) -> Checked {
        // The server runs in the far namespace; wait (bounded) until it listens there.
        let deadline = Instant::now() + Duration::from_secs(30);
        let tunnel = self.open(Client::Tunnelkit, port);
        let mut s = loop {
            let mut s = std::net::TcpStream::connect(tunnel.local).expect("connect the tunnel");
            s.set_read_timeout(Some(Duration::from_secs(60))).ok();
            let mut first = [0u8; 1];
            match s.read(&mut first) {
                Ok(1) => break (s, first[0]),
                _ if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                other => panic!("no data from the stream server: {other:?}"),
            }
        };
        let start = Instant::now();
        let mut h = Sha256::new();
        h.update([s.1]);
        let mut received = 1u64;
        let mut buf = vec![0u8; 1 << 18];
        loop {
            match s.0.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    h.update(&buf[..n]);
                    received += n as u64;
                }
                Err(e) => {
                    eprintln!("checked download: read failed after {received} bytes: {e}");
                    break;
                }
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let got: [u8; 32] = h.finalize().into();
        Checked {
            bytes,
            received,
            secs,
            intact: received == bytes && got == expected(bytes),
        }
    }
}
