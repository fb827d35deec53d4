//! Limits through a real OpenSSH sshd: the per-forward connection cap holds clients back
//! without refusing them.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tunnelkit_core::Services;
use tunnelkit_tests::{EchoServer, KeyPair, TestDir};

#[tokio::test(flavor = "multi_thread")]
async fn the_connection_cap_holds_the_next_client_until_one_ends() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let sshd = sshd_for(&key);
    let echo_server = EchoServer::start().await;
    let mut config = one_hop(dir.path(), &sshd, &key, echo_server.addr());
    config.forwards[0].max_connections = 2;
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
