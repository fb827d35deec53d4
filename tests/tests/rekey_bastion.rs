//! The russh server's side of the rekey rule (`vendor/russh-rekey-allowance.patch`): tunnelkit's
//! embedded bastion starts rekeys (its `rekey_limit`, every 32 MiB here) while several
//! connections upload through it as fast as they can over a long path (a [`DelayLine`]). Until
//! the client has our KEXINIT, what it sent within the channels' windows keeps arriving; with
//! several channels that is more than upstream's fixed 4 MiB, which ended the session ("Pending
//! buffer limit reached"). Every upload must arrive whole (the target answers each with the
//! SHA-256 of what it read), on one session, across several rekeys the bastion started (counted
//! in russh's log).
//!
//! `TUNNELKIT_REKEY_UPLOAD_BYTES` sets each upload's size (default 96 MiB, 8 at once).

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use russh::keys::{Algorithm, PrivateKey};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tunnelkit_core::bastion::{Bastion, BastionConfig};
use tunnelkit_core::{Event, RekeyLimit, Services, TunnelConfig};
use tunnelkit_tests::{DelayLine, KeyPair, TestDir};

/// Uploads at once: their windows (2 MiB each, the bastion's) together exceed 4 MiB.
const UPLOADS: usize = 8;
/// Bytes per write, and the size of the pseudo-random block each write is made from.
const BLOCK: usize = 1 << 20;
/// The bastion's `RekeyLimit`.
const BASTION_REKEY_LIMIT: &str = "32M";
/// One-way delay of the path: a 100 ms round trip.
const ONE_WAY: Duration = Duration::from_millis(50);
/// The longest the uploads may take before the test fails.
const UPLOAD_DEADLINE: Duration = Duration::from_secs(180);
/// What russh's server session logs (target `russh::server::session`, debug) when it starts a
/// rekey itself (read, write or time limit).
const SERVER_STARTS_REKEY: &str = "starting rekeying";
/// What the bastion logs (target `tunnelkit_core::bastion`, debug) when a session ends in error.
const BASTION_SESSION_ENDED: &str = "bastion session ended";

/// The log of this test binary (russh's server session and the bastion at debug), for counting
/// rekeys and for why a session ended.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log").extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn random_block(seed: u64) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ seed.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let mut block = Vec::with_capacity(BLOCK);
    while block.len() < BLOCK {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        block.extend_from_slice(&x.to_le_bytes());
    }
    block
}

/// A target that reads each connection to its end, then answers with the byte count (8 bytes,
/// big-endian) and the SHA-256 of what it read.
async fn digest_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind target");
    let addr = listener.local_addr().expect("target address");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 256 * 1024];
                let (mut hash, mut got) = (Sha256::new(), 0u64);
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) => break,
                        Ok(n) => {
                            hash.update(&buf[..n]);
                            got += n as u64;
                        }
                        Err(_) => return,
                    }
                }
                let mut answer = got.to_be_bytes().to_vec();
                answer.extend_from_slice(&hash.finalize());
                let _ = s.write_all(&answer).await;
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

/// Uploads `total` bytes through `addr` (each write the seeded block with its number in the
/// first 8 bytes), half-closes, and returns what was sent and what the target says it read.
async fn upload(addr: SocketAddr, seed: u64, total: u64) -> ((u64, [u8; 32]), (u64, [u8; 32])) {
    let mut s = TcpStream::connect(addr).await.expect("connect the forward");
    let mut block = random_block(seed);
    let (mut hash, mut sent, mut n) = (Sha256::new(), 0u64, 0u64);
    while sent < total {
        block[..8].copy_from_slice(&n.to_le_bytes());
        let len = usize::try_from((total - sent).min(BLOCK as u64)).expect("block");
        hash.update(&block[..len]);
        if s.write_all(&block[..len]).await.is_err() {
            break;
        }
        sent += len as u64;
        n += 1;
    }
    let _ = s.shutdown().await;
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer).await;
    let read = match answer.split_first_chunk::<8>() {
        Some((count, digest)) if digest.len() == 32 => (
            u64::from_be_bytes(*count),
            digest.try_into().expect("32 bytes"),
        ),
        _ => (0, [0; 32]),
    };
    ((sent, hash.finalize().into()), read)
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_survive_the_bastions_rekeys_on_a_long_path() {
    let each: u64 = std::env::var("TUNNELKIT_REKEY_UPLOAD_BYTES")
        .ok()
        .map(|v| v.parse().expect("TUNNELKIT_REKEY_UPLOAD_BYTES: a number"))
        .unwrap_or(96 << 20);
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter("russh::server::session=debug,tunnelkit_core::bastion=debug")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .try_init()
        .expect("the only subscriber of this test binary");

    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let mut config = BastionConfig::new(
        PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).expect("host key"),
    );
    config
        .authorized_keys
        .push(russh::keys::PublicKey::from_openssh(&key.public_line).expect("client public key"));
    config.rekey_limit = RekeyLimit::parse(BASTION_REKEY_LIMIT).expect("RekeyLimit");
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind bastion");
    let bastion =
        Bastion::start(listener, config, CancellationToken::new()).expect("start the bastion");
    let line = DelayLine::start(bastion.addr(), ONE_WAY, UPLOAD_DEADLINE).await;
    let kh = known_hosts(
        dir.path(),
        &[format!(
            "[127.0.0.1]:{} {}",
            line.port(),
            bastion.host_key().to_openssh().expect("host key line")
        )],
    );
    let target = digest_server().await;
    let o = Arc::new(options(&key.private, &kh));
    let config = TunnelConfig::new(
        vec![route("primary", vec![hop(line.port(), &o)])],
        vec![forward_to(target)],
    );
    let (_handle, addr, mut events) = start(config, Services::default()).await;

    let started = Instant::now();
    let uploads: Vec<_> = (0..UPLOADS as u64)
        .map(|i| tokio::spawn(upload(addr, i, each)))
        .collect();
    let mut results = Vec::new();
    for u in uploads {
        let r = tokio::time::timeout(UPLOAD_DEADLINE, u)
            .await
            .unwrap_or_else(|_| panic!("an upload did not end within {UPLOAD_DEADLINE:?}"))
            .expect("upload task");
        results.push(r);
    }
    let took = started.elapsed();

    let log = String::from_utf8_lossy(&captured.0.lock().expect("log")).into_owned();
    let mut lost = Vec::new();
    while let Ok(e) = events.try_recv() {
        if matches!(e, Event::RouteFailed { .. } | Event::SessionEnded { .. }) {
            lost.push(format!("{e:?}"));
        }
    }
    assert!(
        lost.is_empty(),
        "the session was lost ({took:?}; sent, read: {:?}): {lost:?}; the bastion: {:?}",
        results
            .iter()
            .map(|((s, _), (r, _))| (*s, *r))
            .collect::<Vec<_>>(),
        log.lines()
            .filter(|l| l.contains(BASTION_SESSION_ENDED))
            .collect::<Vec<_>>()
    );
    for (i, ((sent, sent_digest), (read, read_digest))) in results.iter().enumerate() {
        assert_eq!(*sent, each, "upload {i} could not send everything");
        assert_eq!(
            *read, each,
            "upload {i}: the target read {read} of {each} bytes"
        );
        assert_eq!(sent_digest, read_digest, "upload {i}: what arrived differs");
    }
    assert_eq!(bastion.sessions(), 1, "one SSH session carried them all");

    let rekeys = log.matches(SERVER_STARTS_REKEY).count();
    assert!(
        rekeys >= 3,
        "the bastion started {rekeys} rekeys for {} MiB at RekeyLimit {BASTION_REKEY_LIMIT}",
        (each * UPLOADS as u64) >> 20
    );
    let total = each * UPLOADS as u64;
    eprintln!(
        "rekey_bastion: {UPLOADS} uploads, {total} bytes in {took:.1?} ({:.0} Mbit/s) over a \
         {:?} round trip, {rekeys} rekeys started by the bastion, SHA-256 equal",
        total as f64 * 8.0 / took.as_secs_f64() / 1e6,
        ONE_WAY * 2,
    );
}
