//! `tunnelkit -D` (a SOCKS proxy) against a real OpenSSH sshd and real clients: the bastion is
//! in a network namespace with an HTTP server on its loopback (reachable only through the
//! bastion) and a name in its own hosts file (resolvable only there, like a site's internal
//! DNS). `curl --socks5-hostname` and `curl --socks4a` fetch a file through the real tunnelkit
//! binary and the bodies' SHA-256 is compared; `--socks5` and `--socks4` (addresses resolved by
//! curl) and IPv6 work too; malformed greetings on raw sockets get the protocol's refusal code
//! and the connection is closed, with a log line each.
//!
//! Needs root, iproute2, python3 (the HTTP server) and curl.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tunnelkit_tests::netns::{Netns, NetnsHttp, NetnsSshd};
use tunnelkit_tests::{find_program, sha256_hex, Forwarding, KeyPair, TestDir};

/// A name that only the namespace's hosts file knows.
const SITE_NAME: &str = "console.tunnelkit-socks.internal";
/// The HTTP server's port inside the namespace (private to the test).
const HTTP_PORT: u16 = 8080;
/// How long a raw client waits for a reply or for the close.
const READ_DEADLINE: Duration = Duration::from_secs(15);

struct Site {
    dir: TestDir,
    _http: NetnsHttp,
    sshd: NetnsSshd,
    _ns: Netns,
    key: KeyPair,
    known_hosts: PathBuf,
    body: Vec<u8>,
}

fn user() -> String {
    std::env::var("USER").unwrap_or_else(|_| "root".into())
}

/// 3 MiB and a bit of bytes that do not compress, from a fixed seed.
fn body() -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..3 * 1024 * 1024 + 17)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn site() -> Site {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let ns = Netns::create();
    ns.hosts(&format!(
        "127.0.0.1 localhost\n::1 localhost\n127.0.0.1 {SITE_NAME}\n"
    ));
    let sshd = NetnsSshd::start(&ns, std::slice::from_ref(&key.public_line));
    let www = dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    let body = body();
    std::fs::write(www.join("console.bin"), &body).unwrap();
    let http = NetnsHttp::start(&ns, &www, HTTP_PORT);
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(&known_hosts, format!("{}\n", sshd.known_hosts_line)).unwrap();
    Site {
        dir,
        _http: http,
        sshd,
        _ns: ns,
        key,
        known_hosts,
        body,
    }
}

/// The real tunnelkit with `-D 0` to the namespace's sshd; its first line gives the port.
fn proxy(site: &Site) -> Forwarding {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tunnelkit"));
    c.args(["-F", "none", "-N", "-D", "0", "-o", "BatchMode=yes"])
        .arg("-i")
        .arg(&site.key.private)
        .args([
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "StrictHostKeyChecking=yes",
        ])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", site.known_hosts.display()))
        .args(["-o", "GlobalKnownHostsFile=/dev/null"])
        .arg(format!("{}@{}", user(), site.sshd.addr.ip()))
        .stdin(Stdio::null())
        .env_remove("SSH_AUTH_SOCK")
        .env("TUNNELKIT_LOG", "info");
    Forwarding::spawn(&mut c)
}

/// `curl PROXY_FLAG 127.0.0.1:PORT URL -o FILE`; the body, or curl's exit code and stderr.
fn curl(proxy: SocketAddr, flag: &str, url: &str, out: &Path) -> Result<Vec<u8>, String> {
    let r = Command::new(find_program("curl", "curl"))
        .args([
            "-sS",
            "--max-time",
            "30",
            flag,
            &proxy.to_string(),
            url,
            "-o",
        ])
        .arg(out)
        .output()
        .unwrap();
    if !r.status.success() {
        return Err(format!(
            "curl {flag} {url}: {:?}: {}",
            r.status.code(),
            String::from_utf8_lossy(&r.stderr)
        ));
    }
    Ok(std::fs::read(out).unwrap())
}

#[test]
fn curl_through_the_socks_proxy_reaches_what_only_the_bastion_can() {
    let site = site();
    // The name is the site's: this side cannot resolve it.
    assert!(
        (SITE_NAME, 80).to_socket_addrs().is_err(),
        "{SITE_NAME} must not resolve outside the namespace"
    );
    let tk = proxy(&site);
    let want = sha256_hex(&site.body);
    let out = site.dir.path().join("got.bin");
    let by_name = format!("http://{SITE_NAME}:{HTTP_PORT}/console.bin");
    for (flag, url) in [
        // Names resolved by the far end.
        ("--socks5-hostname", by_name.as_str()),
        ("--socks4a", by_name.as_str()),
        // Addresses (curl resolves): the far end's own loopback, IPv4 and IPv6.
        (
            "--socks5",
            &format!("http://127.0.0.1:{HTTP_PORT}/console.bin"),
        ),
        (
            "--socks4",
            &format!("http://127.0.0.1:{HTTP_PORT}/console.bin"),
        ),
        ("--socks5", &format!("http://[::1]:{HTTP_PORT}/console.bin")),
    ] {
        let got = curl(tk.addr, flag, url, &out).unwrap_or_else(|e| {
            panic!("{e}\ntunnelkit:\n{}\nsshd:\n{}", tk.log(), site.sshd.log())
        });
        assert_eq!(got.len(), site.body.len(), "{flag} {url}");
        assert_eq!(sha256_hex(&got), want, "{flag} {url}: body differs");
    }
    // Resolving locally fails where the far end succeeds: curl itself cannot resolve the name.
    let e = curl(tk.addr, "--socks5", &by_name, &out).unwrap_err();
    assert!(e.contains("Some(6)") || e.contains("resolve"), "{e}");
    // A port nothing listens on at the far end: SOCKS5 "connection refused" (05); curl names
    // the code and exits 97 (proxy handshake error).
    let e = curl(
        tk.addr,
        "--socks5-hostname",
        &format!("http://{SITE_NAME}:9/"),
        &out,
    )
    .unwrap_err();
    assert!(e.contains("Some(97)") && e.contains("(5)"), "{e}");
    assert!(tk.sigterm_and_wait().success());
}

/// Sends `bytes` (then half-closes when `close_write`), returns everything read until the
/// proxy closes the connection.
fn raw(proxy: SocketAddr, bytes: &[u8], close_write: bool) -> Vec<u8> {
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(READ_DEADLINE)).unwrap();
    s.write_all(bytes).unwrap();
    if close_write {
        s.shutdown(std::net::Shutdown::Write).unwrap();
    }
    let mut got = Vec::new();
    // read_to_end returns at EOF: the proxy closed. A timeout is an error here (a hang).
    s.read_to_end(&mut got)
        .unwrap_or_else(|e| panic!("{bytes:02x?}: no close within {READ_DEADLINE:?}: {e}"));
    got
}

#[test]
fn malformed_greetings_get_the_refusal_code_and_are_closed() {
    let site = site();
    let tk = proxy(&site);
    let ipv4_80: &[u8] = &[1, 127, 0, 0, 1, 0, 80];
    let cases: Vec<(&str, Vec<u8>, bool, Vec<u8>)> = vec![
        // (what, sent, half-close after, everything the proxy answers before closing)
        (
            "only username/password offered",
            vec![5, 1, 2],
            false,
            vec![5, 0xff],
        ),
        (
            "BIND",
            [&[5, 1, 0, 5, 2, 0][..], ipv4_80].concat(),
            false,
            vec![5, 0, 5, 7, 0, 1, 0, 0, 0, 0, 0, 0],
        ),
        (
            "UDP ASSOCIATE",
            [&[5, 1, 0, 5, 3, 0][..], ipv4_80].concat(),
            false,
            vec![5, 0, 5, 7, 0, 1, 0, 0, 0, 0, 0, 0],
        ),
        (
            "address type 9",
            vec![5, 1, 0, 5, 1, 0, 9],
            false,
            vec![5, 0, 5, 8, 0, 1, 0, 0, 0, 0, 0, 0],
        ),
        (
            "SOCKS4 BIND",
            vec![4, 2, 0, 80, 127, 0, 0, 1, 0],
            false,
            vec![0, 91, 0, 0, 0, 0, 0, 0],
        ),
        (
            "SOCKS4a name of 300 bytes",
            [&[4, 1, 0, 80, 0, 0, 0, 1, 0][..], &[b'n'; 300]].concat(),
            false,
            vec![0, 91, 0, 0, 0, 0, 0, 0],
        ),
        (
            "an HTTP request (unknown version)",
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            false,
            vec![5, 0xff],
        ),
        (
            "truncated greeting, then EOF",
            vec![5, 3, 0],
            true,
            vec![5, 0xff],
        ),
        (
            "truncated request, then EOF",
            vec![5, 1, 0, 5, 1, 0, 3, 20, b'h'],
            true,
            vec![5, 0, 5, 1, 0, 1, 0, 0, 0, 0, 0, 0],
        ),
    ];
    for (what, sent, close_write, want) in &cases {
        let got = raw(tk.addr, sent, *close_write);
        assert_eq!(&got, want, "{what}\n{}", tk.log());
    }
    // The proxy still serves after all that.
    let out = site.dir.path().join("after.bin");
    let url = format!("http://{SITE_NAME}:{HTTP_PORT}/console.bin");
    let got = curl(tk.addr, "--socks5-hostname", &url, &out).unwrap();
    assert_eq!(sha256_hex(&got), sha256_hex(&site.body));
    // A log line for each refusal, saying why.
    tunnelkit_tests::wait_until(Duration::from_secs(5), "a log line per refusal", || {
        tk.log().matches("SOCKS refused").count() >= cases.len()
    });
    let log = tk.log();
    for needle in [
        "no acceptable authentication method",
        "command 0x02 (BIND) is not supported",
        "command 0x03 (UDP ASSOCIATE) is not supported",
        "address type 0x09 is not supported",
        "SOCKS4a: the domain name is longer than 255 bytes",
        "unknown SOCKS version 0x47",
        "before its SOCKS request was complete",
    ] {
        assert!(log.contains(needle), "no log line with {needle:?}:\n{log}");
    }
    assert!(tk.sigterm_and_wait().success());
}

/// A whole SOCKS5 CONNECT to the namespace's HTTP server: the reply code, and how long it took
/// from the TCP connect to the reply.
fn socks5_connect(proxy: SocketAddr) -> (u8, Duration) {
    let t = std::time::Instant::now();
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(READ_DEADLINE)).unwrap();
    s.write_all(&[5, 1, 0]).unwrap();
    let mut method = [0u8; 2];
    s.read_exact(&mut method).unwrap();
    assert_eq!(method, [5, 0]);
    let port = HTTP_PORT.to_be_bytes();
    s.write_all(&[5, 1, 0, 1, 127, 0, 0, 1, port[0], port[1]])
        .unwrap();
    let mut reply = [0u8; 10];
    s.read_exact(&mut reply).unwrap();
    (reply[1], t.elapsed())
}

#[test]
fn a_greeting_of_255_methods_is_refused_with_a_short_log_line() {
    let site = site();
    let tk = proxy(&site);
    let greeting: Vec<u8> = [5, 255].into_iter().chain(1..=255).collect();
    assert_eq!(raw(tk.addr, &greeting, false), [5, 0xff]);
    tunnelkit_tests::wait_until(Duration::from_secs(5), "the refusal's log line", || {
        tk.log().contains("SOCKS refused")
    });
    let log = tk.log();
    let line = log.lines().find(|l| l.contains("SOCKS refused")).unwrap();
    assert!(
        line.contains("255 methods offered, none acceptable"),
        "{line}"
    );
    assert!(line.len() < 300, "{} bytes: {line}", line.len());
    assert!(tk.sigterm_and_wait().success());
}

#[test]
fn stalled_socks_greetings_do_not_starve_a_new_client() {
    // 4,200 sockets here (the proxy raises its own limit at start).
    rlimit::increase_nofile_limit(10_000).unwrap();
    let site = site();
    let tk = proxy(&site);
    // The session is up and the proxy works.
    assert_eq!(socks5_connect(tk.addr).0, 0, "{}", tk.log());
    // More than the forward's 4,096 connections connect and never finish their greeting.
    let stalled: Vec<TcpStream> = (0..4200)
        .map(|i| {
            TcpStream::connect(tk.addr)
                .unwrap_or_else(|e| panic!("stalled client {i}: {e}\n{}", tk.log()))
        })
        .collect();
    let (code, took) = socks5_connect(tk.addr);
    assert!(
        took < Duration::from_secs(1),
        "a new SOCKS5 client waited {took:?} behind 4,200 stalled greetings"
    );
    assert_eq!(code, 0, "{}", tk.log());
    // The oldest stalled ones were closed to make room, and the log says so in a few lines.
    let log = tk.log();
    assert!(log.contains("closed the oldest"), "{log}");
    assert!(
        log.lines().count() < 100,
        "{} log lines",
        log.lines().count()
    );
    drop(stalled);
    println!("new SOCKS5 client behind 4,200 stalled greetings: {took:?}");
    assert!(tk.sigterm_and_wait().success());
}
