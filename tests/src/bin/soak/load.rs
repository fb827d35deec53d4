//! The clients: connections back to back, each echoing a checksummed payload, and the counters
//! they share with the controller (which marks restarts in them).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::RwLock;

/// One connection's whole exchange must finish within this.
pub const ATTEMPT_DEADLINE: Duration = Duration::from_secs(20);
/// A client pauses this long after a failure, so an outage is not a busy loop.
const AFTER_FAILURE: Duration = Duration::from_millis(50);

/// Counters and the restart in progress, shared by the clients and the controller.
#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) ok: u64,
    pub(crate) bytes: u64,
    pub(crate) failed_restart: u64,
    pub(crate) failed_other: u64,
    pub(crate) data_errors: u64,
    /// The first few failures outside restarts and data errors, to show what went wrong.
    pub(crate) examples: Vec<String>,
    /// Restarts begun so far; a connection that saw it change overlapped a restart.
    pub(crate) generation: u64,
    pub(crate) restarting: bool,
    pub(crate) killed_at: Option<Instant>,
    /// When the first connection started after the kill completed its echo.
    pub(crate) recovered_at: Option<Instant>,
}

pub(crate) enum Outcome {
    Ok,
    Failed(String),
    DataError(String),
}

/// A small xorshift generator: payloads need variety, not cryptographic randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// 64 B to 4 KiB of random bytes, then their SHA-256.
fn payload(rng: &mut Rng) -> Vec<u8> {
    let len = 64 + (rng.next() % 4033) as usize;
    let mut v: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
    let sum = Sha256::digest(&v);
    v.extend_from_slice(&sum);
    v
}

/// Sends `sent`, half-closes, reads the echo to EOF, and judges it.
pub(crate) async fn exchange(addr: SocketAddr, sent: &[u8]) -> Outcome {
    let mut got = Vec::with_capacity(sent.len());
    let attempt = async {
        let s = TcpStream::connect(addr).await?;
        let (mut r, mut w) = s.into_split();
        let write = async {
            w.write_all(sent).await?;
            w.shutdown().await
        };
        let (written, read) = tokio::join!(write, r.read_to_end(&mut got));
        written.and(read.map(|_| ()))
    };
    let result = tokio::time::timeout(ATTEMPT_DEADLINE, attempt).await;
    if got.len() > sent.len() || !sent.starts_with(&got) {
        let at = got.iter().zip(sent).position(|(a, b)| a != b);
        let body = got.len().saturating_sub(32);
        let whole = got.len() >= 32 && Sha256::digest(&got[..body])[..] == got[body..];
        return Outcome::DataError(format!(
            "{} bytes back for {} sent, first difference at {at:?}{}",
            got.len(),
            sent.len(),
            if whole {
                " (a whole other payload)"
            } else {
                ""
            }
        ));
    }
    match result {
        Err(_) => Outcome::Failed(format!("no echo within {ATTEMPT_DEADLINE:?}")),
        Ok(Err(e)) => Outcome::Failed(format!("{e} after {} of {} bytes", got.len(), sent.len())),
        Ok(Ok(())) if got.len() < sent.len() => Outcome::Failed(format!(
            "cut short: {} of {} bytes, then EOF",
            got.len(),
            sent.len()
        )),
        Ok(Ok(())) => Outcome::Ok,
    }
}

/// One client: connections back to back until `end`. Each holds `gate` for reading, so a
/// sample can pause them all.
pub(crate) async fn client(
    id: u64,
    addr: SocketAddr,
    end: Instant,
    gate: Arc<RwLock<()>>,
    shared: Arc<Mutex<Shared>>,
) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (id + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
    while Instant::now() < end {
        let running = gate.read().await;
        let sent = payload(&mut rng);
        let started = Instant::now();
        let (generation, restarting) = lock(&shared, |s| (s.generation, s.restarting));
        let outcome = exchange(addr, &sent).await;
        drop(running);
        let failed = lock(&shared, |s| match outcome {
            Outcome::Ok => {
                s.ok += 1;
                s.bytes += sent.len() as u64;
                if s.restarting && s.killed_at.is_some_and(|k| started > k) {
                    s.recovered_at.get_or_insert_with(Instant::now);
                }
                false
            }
            Outcome::DataError(e) => {
                s.data_errors += 1;
                example(s, format!("data error: {e}"));
                false
            }
            Outcome::Failed(e) => {
                if restarting || s.restarting || s.generation != generation {
                    s.failed_restart += 1;
                } else {
                    s.failed_other += 1;
                    example(s, format!("failed: {e}"));
                }
                true
            }
        });
        if failed {
            tokio::time::sleep(AFTER_FAILURE).await;
        }
    }
}

pub(crate) fn lock<T>(shared: &Mutex<Shared>, f: impl FnOnce(&mut Shared) -> T) -> T {
    let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
    f(&mut s)
}

fn example(s: &mut Shared, e: String) {
    if s.examples.len() < 10 {
        s.examples.push(e);
    }
}
