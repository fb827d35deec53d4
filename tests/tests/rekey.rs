//! A fast download across several rekeys that tunnelkit starts, through a real OpenSSH sshd on a
//! long path (a [`DelayLine`]) with tunnelkit's large, growing receive windows: every byte
//! arrives, in order (SHA-256 of what the target sent against what the client read), and the
//! one SSH session carries it all.
//!
//! Before the fix (`vendor/russh-rekey-allowance.patch`), while a rekey we started waited for
//! the server's KEXINIT, russh accepted at most 2 x the initial window (4 MiB) of channel data,
//! however large the windows it had granted: on a long fat path more than that is legitimately
//! in flight, and the session ended with "Pending buffer limit reached" at the first rekey
//! (the cipher's amount by default, as ssh: 1 GiB for chacha20-poly1305, 64 GiB for AES;
//! `RekeyLimit` here makes them come every 128 MiB).
//!
//! `TUNNELKIT_REKEY_BYTES` sets the download's size (default 1.5 GiB; the figure is
//! 4 GiB: `TUNNELKIT_REKEY_BYTES=4294967296`), `TUNNELKIT_REKEY_LIMIT` the `RekeyLimit`
//! (default `128M`) and `TUNNELKIT_REKEY_DELAY_MS` the one-way delay (default 25: a 50 ms
//! round trip; the issue saw it at 30 and 100 ms).

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tunnelkit_core::{Event, Services, SshOptions, TunnelConfig};
use tunnelkit_tests::{DelayLine, KeyPair, TestDir};

/// What is sent per write, and the block of pseudo-random bytes each write is made from.
const BLOCK: usize = 1 << 20;
/// The longest the download may take before the test fails (bounds every wait below).
const DOWNLOAD_DEADLINE: Duration = Duration::from_secs(300);
/// What sshd logs (at `LogLevel DEBUG1`, the harness's) about each KEXINIT, and what marks the
/// session's first key exchange (before authentication).
const KEXINIT_RECEIVED: &str = "SSH2_MSG_KEXINIT received";
const KEXINIT_SENT: &str = "SSH2_MSG_KEXINIT sent";
const PREAUTH: &str = "[preauth]";

/// The key exchanges after authentication that the client started, from sshd's log: sshd
/// received the client's KEXINIT, then sent its own.
fn rekeys_we_started(log: &str) -> usize {
    let kexinit: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("SSH2_MSG_KEXINIT") && !l.contains(PREAUTH))
        .collect();
    kexinit
        .windows(2)
        .filter(|w| w[0].contains(KEXINIT_RECEIVED) && w[1].contains(KEXINIT_SENT))
        .count()
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v}: not a number"))
        })
        .unwrap_or(default)
}

/// A block of pseudo-random bytes (xorshift64), so that the stream does not compress and a lost,
/// repeated or misplaced block changes the digest.
fn random_block() -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut block = Vec::with_capacity(BLOCK);
    while block.len() < BLOCK {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        block.extend_from_slice(&x.to_le_bytes());
    }
    block
}

/// A target that sends `total` bytes to the first connection, then closes it; the task's result
/// is the SHA-256 of what it sent, or the write error that cut it short. Each 1 MiB write is the
/// random block with its number in the first 8 bytes.
async fn target(
    total: u64,
) -> (
    SocketAddr,
    tokio::task::JoinHandle<std::io::Result<[u8; 32]>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind target");
    let addr = listener.local_addr().expect("target address");
    let task = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        let mut block = random_block();
        let mut hash = Sha256::new();
        let (mut sent, mut n) = (0u64, 0u64);
        while sent < total {
            block[..8].copy_from_slice(&n.to_le_bytes());
            let len = usize::try_from((total - sent).min(BLOCK as u64)).expect("block");
            hash.update(&block[..len]);
            s.write_all(&block[..len]).await?;
            sent += len as u64;
            n += 1;
        }
        s.shutdown().await?;
        Ok(hash.finalize().into())
    });
    (addr, task)
}

/// Reads `s` to its end, or to an error (a reset when the session is lost); returns the bytes
/// read and their SHA-256.
async fn download(mut s: TcpStream) -> (u64, [u8; 32]) {
    let mut buf = vec![0u8; 256 * 1024];
    let mut hash = Sha256::new();
    let mut got = 0u64;
    loop {
        let n = s.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return (got, hash.finalize().into());
        }
        hash.update(&buf[..n]);
        got += n as u64;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fast_download_survives_several_of_our_rekeys_on_a_long_path() {
    let total = env_or("TUNNELKIT_REKEY_BYTES", 3 << 29);
    let one_way = Duration::from_millis(env_or("TUNNELKIT_REKEY_DELAY_MS", 25));
    let limit = std::env::var("TUNNELKIT_REKEY_LIMIT").unwrap_or_else(|_| "128M".into());

    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let sshd = sshd_for(&key);
    let line = DelayLine::start(sshd.addr(), one_way, DOWNLOAD_DEADLINE).await;
    let (target_addr, sent) = target(total).await;

    // `-o RekeyLimit=...`, as the command line applies it.
    let mut ssh = SshOptions::default();
    ssh.apply_kv(&format!("RekeyLimit={limit}"))
        .expect("RekeyLimit");
    let rekey_limit = ssh.rekey_limit();
    let every = rekey_limit.data.expect("a data limit");
    assert!(
        total / every >= 3,
        "{total} bytes at RekeyLimit {limit}: fewer than 3 rekeys; raise TUNNELKIT_REKEY_BYTES"
    );
    let kh = known_hosts(
        dir.path(),
        &[format!(
            "[127.0.0.1]:{} {}",
            line.port(),
            sshd.host_key_line()
        )],
    );
    let mut o = options(&key.private, &kh);
    o.rekey_limit = rekey_limit;
    let config = TunnelConfig::new(
        vec![route("primary", vec![hop(line.port(), &Arc::new(o))])],
        vec![forward_to(target_addr)],
    );
    let (handle, addr, mut events) = start(config, Services::default()).await;

    let started = Instant::now();
    let client = TcpStream::connect(addr).await.expect("connect the forward");
    let (got, digest) = tokio::time::timeout(DOWNLOAD_DEADLINE, download(client))
        .await
        .unwrap_or_else(|_| panic!("the download did not end within {DOWNLOAD_DEADLINE:?}"));
    let took = started.elapsed();

    // The session was never lost: no route failure or end (when the download was cut short,
    // the supervisor's event may come just after the forward closed: wait for it, bounded).
    let mut lost = Vec::new();
    while let Ok(e) = events.try_recv() {
        if matches!(e, Event::RouteFailed { .. } | Event::SessionEnded { .. }) {
            lost.push(format!("{e:?}"));
        }
    }
    if got != total && lost.is_empty() {
        let e = wait_event(&mut events, "why the download ended early", |e| {
            matches!(e, Event::RouteFailed { .. } | Event::SessionEnded { .. })
        })
        .await;
        lost.push(format!("{e:?}"));
    }
    assert!(
        lost.is_empty(),
        "the session was lost after {got} of {total} bytes ({took:?}): {lost:?}"
    );
    assert_eq!(got, total, "the download ended early after {took:?}");
    let sent = sent
        .await
        .expect("target task")
        .expect("the target sent everything");
    assert_eq!(digest, sent, "what arrived differs from what was sent");
    assert_eq!(sshd.connections(), 1, "one SSH session carried it all");
    assert_eq!(handle.status().forwards[0].failed, 0);

    // Several rekeys, and ours: sshd's log shows our KEXINIT received before it sent its own
    // (its rekeys, after the cipher's amount, would be the other way round).
    let rekeys = rekeys_we_started(&sshd.log());
    let expected = usize::try_from(total / every).expect("count");
    assert!(
        rekeys >= 3 && rekeys + 1 >= expected,
        "{rekeys} rekeys started by tunnelkit for {total} bytes at RekeyLimit {limit} \
         (expected about {expected})"
    );
    eprintln!(
        "rekey: {total} bytes in {took:.1?} ({:.0} Mbit/s) over a {:?} round trip, \
         {rekeys} rekeys at RekeyLimit {limit}, SHA-256 equal",
        total as f64 * 8.0 / took.as_secs_f64() / 1e6,
        one_way * 2,
    );
}
