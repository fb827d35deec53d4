//! Leaks: 20,000 connections through one tunnel and one real OpenSSH sshd leave no descriptor
//! behind. Alone in its test binary, so that no other test's descriptors blur the count.

mod common;

use std::time::{Duration, Instant};

use common::*;
use tunnelkit_core::Services;
use tunnelkit_tests::{EchoServer, KeyPair, TestDir};

#[tokio::test(flavor = "multi_thread")]
async fn twenty_thousand_connections_leave_no_descriptor_behind() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let sshd = sshd_for(&key);
    let echo_server = EchoServer::start().await;
    let config = one_hop(dir.path(), &sshd, &key, echo_server.addr());
    let (handle, addr, _events) = start(config, Services::default()).await;
    assert_eq!(echo(addr, b"warm").await.unwrap(), b"warm");
    let settle = |handle: &tunnelkit_core::TunnelHandle| handle.status().forwards[0].active == 0;
    tunnelkit_tests::wait_until(DEADLINE, "connections to end", || settle(&handle));
    let (fds_before, rss_before) = (tunnelkit_tests::open_fds(), tunnelkit_tests::rss_kib());
    const TOTAL: usize = 20_000;
    const WORKERS: usize = 8;
    let started = Instant::now();
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            tokio::spawn(async move {
                for i in 0..TOTAL / WORKERS {
                    let msg = format!("{w}:{i}");
                    let back = echo(addr, msg.as_bytes()).await.expect("echo");
                    assert_eq!(back, msg.as_bytes());
                }
            })
        })
        .collect();
    for w in workers {
        tokio::time::timeout(Duration::from_secs(300), w)
            .await
            .expect("churn within 5 minutes")
            .unwrap();
    }
    let took = started.elapsed();
    tunnelkit_tests::wait_until(DEADLINE, "connections to end", || settle(&handle));
    let mut fds_after = tunnelkit_tests::open_fds();
    tunnelkit_tests::wait_until(DEADLINE, "descriptors back to the baseline", || {
        fds_after = tunnelkit_tests::open_fds();
        fds_after <= fds_before
    });
    let s = handle.status();
    assert_eq!(s.forwards[0].total as usize, TOTAL + 1);
    assert_eq!(s.forwards[0].failed, 0);
    assert_eq!(sshd.connections(), 1, "one SSH transport carried them all");
    // Memory is reported, not asserted (benchmarks measure; tests check correctness).
    eprintln!(
        "churn: {TOTAL} connections in {took:?}; fds {fds_before} -> {fds_after}; RSS {} -> {} KiB",
        rss_before,
        tunnelkit_tests::rss_kib()
    );
}
