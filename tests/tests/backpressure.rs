//! Backpressure through a real OpenSSH sshd: a local client that stops reading must neither slow
//! the other connections of the same SSH session nor make tunnelkit buffer without bound. This is
//! what the russh flow-control patch in `vendor/russh` is for (see `vendor/README.md`): before
//! it, the stalled channel's queue filled and froze the whole session, and these busy
//! connections never finished.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tunnelkit_core::Services;
use tunnelkit_tests::{firehose_byte, FirehoseServer, KeyPair, TestDir};

/// What each busy connection reads while the stalled one sits there.
const BUSY_BYTES: u64 = 64 * 1024 * 1024;
const BUSY_CONNECTIONS: usize = 4;
/// What the target may push into a connection nobody reads: socket buffers on both sides of the
/// sshd and of tunnelkit, plus one 2 MiB SSH window, are well under this. Without flow control it
/// is everything the target can send.
const STALLED_BOUND: u64 = 48 * 1024 * 1024;

/// Reads `n` bytes from `s`, checking each against the firehose pattern from `offset`.
async fn read_pattern(s: &mut TcpStream, offset: u64, n: u64) -> std::io::Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut at = offset;
    while at < offset + n {
        let want = usize::try_from((offset + n - at).min(buf.len() as u64)).unwrap_or(buf.len());
        let got = s.read(&mut buf[..want]).await?;
        if got == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        for (i, b) in buf[..got].iter().enumerate() {
            assert_eq!(
                *b,
                firehose_byte(at + i as u64),
                "byte {} corrupted",
                at + i as u64
            );
        }
        at += got as u64;
    }
    Ok(())
}

async fn busy(addr: SocketAddr) -> Duration {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).await.expect("connect busy");
    read_pattern(&mut s, 0, BUSY_BYTES)
        .await
        .expect("busy read");
    started.elapsed()
}

/// Runs [`BUSY_CONNECTIONS`] busy readers at once; returns the wall time and each one's.
async fn busy_round(addr: SocketAddr) -> (Duration, Vec<Duration>) {
    let started = Instant::now();
    let workers: Vec<_> = (0..BUSY_CONNECTIONS)
        .map(|_| tokio::spawn(busy(addr)))
        .collect();
    let mut each = Vec::new();
    for w in workers {
        let took = tokio::time::timeout(Duration::from_secs(120), w)
            .await
            .expect("busy connections must not wait for the stalled one")
            .expect("busy worker");
        each.push(took);
    }
    (started.elapsed(), each)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_reader_neither_slows_the_others_nor_grows_memory() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let sshd = sshd_for(&key);
    let firehose = FirehoseServer::start().await;
    let config = one_hop(dir.path(), &sshd, &key, firehose.addr());
    let (handle, addr, _events) = start(config, Services::default()).await;

    // The same busy load without a stalled reader, for comparison.
    let (baseline, _) = busy_round(addr).await;

    // The stalled client: it reads the first bytes, so the stream is known to flow, then stops.
    let mut stalled = TcpStream::connect(addr).await.expect("connect stalled");
    read_pattern(&mut stalled, 0, 1).await.expect("first byte");
    let rss_before = tunnelkit_tests::rss_kib();

    // Busy connections on the same SSH session, all at once, each checked byte by byte.
    let (wall, each) = busy_round(addr).await;
    let rss_after = tunnelkit_tests::rss_kib();
    let stalled_written = firehose.written(BUSY_CONNECTIONS);
    assert_eq!(sshd.connections(), 1, "one SSH session carried all of them");
    assert!(
        stalled_written < STALLED_BOUND,
        "the target pushed {stalled_written} bytes into a connection nobody reads: \
         something buffers without bound"
    );

    // Nothing was lost while it stalled: it picks up exactly where it stopped.
    read_pattern(&mut stalled, 1, 8 * 1024 * 1024)
        .await
        .expect("the stalled connection resumes intact");
    assert_eq!(handle.status().forwards[0].failed, 0);

    // Figures, reported and not asserted (the benchmark measures; this test checks behaviour).
    let rate =
        |d: Duration| (BUSY_BYTES * BUSY_CONNECTIONS as u64) as f64 / d.as_secs_f64() / 1048576.0;
    eprintln!(
        "backpressure: {BUSY_CONNECTIONS} busy x {} MiB: {:.0} MiB/s aggregate alone ({baseline:?}), \
         {:.0} MiB/s while one reader stalled ({wall:?}; each {each:?}); target wrote {} KiB \
         into the stalled one; test process RSS {rss_before} -> {rss_after} KiB",
        BUSY_BYTES >> 20,
        rate(baseline),
        rate(wall),
        stalled_written >> 10,
    );
}
