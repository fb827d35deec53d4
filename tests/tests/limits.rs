//! Limits through a real OpenSSH sshd: the per-forward connection cap holds clients back
//! without refusing them.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tunnelkit_core::{Services, TunnelConfig};
use tunnelkit_tests::{EchoServer, KeyPair, Sshd, SshdOptions, TestDir};

fn sshd_and_key(dir: &TestDir) -> (Sshd, KeyPair) {
    let key = KeyPair::generate(dir.path(), "client", None);
    let sshd = Sshd::start(SshdOptions {
        authorized_keys: vec![key.public_line.clone()],
        ..Default::default()
    });
    (sshd, key)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_connection_cap_holds_the_next_client_until_one_ends() {
    let dir = TestDir::new();
    let (sshd, key) = sshd_and_key(&dir);
    let echo_server = EchoServer::start().await;
    let kh = known_hosts(dir.path(), &[sshd.known_hosts_line()]);
    let opts = Arc::new(options(&key.private, &kh));
    let mut forward = forward_to(echo_server.addr());
    forward.max_connections = 2;
    let config = TunnelConfig::new(
        vec![route("primary", vec![hop(sshd.port(), &opts)])],
        vec![forward],
    );
    let (handle, addr, _events) = start(config, Services::default()).await;
    let mut held = Vec::new();
    for i in 0..2u8 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(&[i]).await.unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        held.push(s);
    }
    // The third is accepted by the kernel but not served while two are open.
    let mut third = TcpStream::connect(addr).await.unwrap();
    third.write_all(b"3").await.unwrap();
    let mut b = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read_exact(&mut b)).await;
    assert!(
        early.is_err(),
        "a third connection was served past the cap of 2"
    );
    assert_eq!(handle.status().forwards[0].total, 2);
    // One ends: the third is served, nothing lost, nothing refused.
    drop(held.pop());
    tokio::time::timeout(DEADLINE, third.read_exact(&mut b))
        .await
        .expect("served once a slot is free")
        .unwrap();
    assert_eq!(&b, b"3");
    let s = handle.status();
    assert_eq!((s.forwards[0].total, s.forwards[0].failed), (3, 0));
}
