//! Table tests of the SOCKS parser: every input fed whole and byte by byte (a client's bytes
//! may arrive in any pieces) gives the same replies and the same end.

use super::*;

/// How a handshake ended, with every reply sent on the way.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Connect {
        request: Request,
        /// Bytes left after the request (the client's first data).
        early: Vec<u8>,
    },
    Refuse {
        reply: Option<Vec<u8>>,
        error: SocksError,
    },
    /// The input ran out: the refusal for a client that closes now.
    CutShort { reply: Option<Vec<u8>> },
}

/// Feeds `input` in pieces of `piece` bytes; returns the replies sent and the end.
fn run(input: &[u8], piece: usize) -> (Vec<Vec<u8>>, End) {
    let mut hs = Handshake::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0;
    let mut sent = Vec::new();
    // Bounded: every round consumes input, feeds input, or ends.
    for _ in 0..input.len() * 2 + 4 {
        match hs.step(&buf) {
            Step::NeedMore => {
                if fed == input.len() {
                    let Step::Refuse { reply, .. } = hs.refusal(SocksError::Truncated) else {
                        unreachable!()
                    };
                    return (sent, End::CutShort { reply });
                }
                let n = piece.min(input.len() - fed);
                buf.extend_from_slice(&input[fed..fed + n]);
                fed += n;
                assert!(buf.len() <= MAX_HANDSHAKE, "buffer past the bound");
            }
            Step::Send { reply, consumed } => {
                sent.push(reply);
                buf.drain(..consumed);
            }
            Step::Connect { request, consumed } => {
                let mut early = buf[consumed..].to_vec();
                early.extend_from_slice(&input[fed..]);
                return (sent, End::Connect { request, early });
            }
            Step::Refuse { reply, error } => return (sent, End::Refuse { reply, error }),
        }
    }
    panic!("no end for {input:02x?}");
}

/// Runs `input` whole and byte by byte; both must agree.
fn check(input: &[u8]) -> (Vec<Vec<u8>>, End) {
    let whole = run(input, input.len().max(1));
    let bytewise = run(input, 1);
    assert_eq!(whole, bytewise, "{input:02x?}");
    whole
}

const OK5: [u8; 2] = [5, 0];
const NO5: [u8; 2] = [5, 0xff];

fn rep5(code: u8) -> Vec<u8> {
    vec![5, code, 0, 1, 0, 0, 0, 0, 0, 0]
}

fn rep4(code: u8) -> Vec<u8> {
    vec![0, code, 0, 0, 0, 0, 0, 0]
}

fn connect(version: Version, host: Host, port: u16, early: &[u8]) -> End {
    End::Connect {
        request: Request {
            version,
            host,
            port,
        },
        early: early.to_vec(),
    }
}

fn refuse(reply: Vec<u8>, error: SocksError) -> End {
    End::Refuse {
        reply: Some(reply),
        error,
    }
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn socks5_connects() {
    let name = |n: &str| {
        let mut v = vec![5, 1, 0, 3, n.len() as u8];
        v.extend_from_slice(n.as_bytes());
        v.extend_from_slice(&443u16.to_be_bytes());
        v
    };
    let v6: Ipv6Addr = "fd00::1".parse().unwrap();
    let cases: Vec<(Vec<u8>, End)> = vec![
        (
            cat(&[&[5, 1, 0], &[5, 1, 0, 1, 10, 0, 0, 7, 0, 80]]),
            connect(Version::Socks5, Host::Ipv4([10, 0, 0, 7].into()), 80, &[]),
        ),
        (
            // Several methods offered, "no authentication" among them; the request sent at once
            // with data after it (optimistic data).
            cat(&[&[5, 3, 2, 1, 0], &name("ilo-rack3.site"), b"GET /"]),
            connect(
                Version::Socks5,
                Host::Name("ilo-rack3.site".into()),
                443,
                b"GET /",
            ),
        ),
        (
            cat(&[&[5, 1, 0, 5, 1, 0, 4], &v6.octets(), &[0x1f, 0x90]]),
            connect(Version::Socks5, Host::Ipv6(v6), 8080, &[]),
        ),
        (
            cat(&[&[5, 1, 0], &name(&"a".repeat(255))]),
            connect(Version::Socks5, Host::Name("a".repeat(255)), 443, &[]),
        ),
    ];
    for (input, want) in cases {
        let (sent, end) = check(&input);
        assert_eq!(sent, [OK5.to_vec()], "{input:02x?}");
        assert_eq!(end, want, "{input:02x?}");
    }
}

#[test]
fn socks5_refusals_carry_the_protocol_code() {
    let greet: &[u8] = &[5, 1, 0];
    let cases: Vec<(Vec<u8>, bool, End)> = vec![
        // (input, method reply sent first, end)
        (
            vec![5, 2, 1, 2],
            false,
            refuse(NO5.to_vec(), SocksError::NoAcceptableMethod(vec![1, 2])),
        ),
        (
            vec![5, 0],
            false,
            refuse(NO5.to_vec(), SocksError::NoAcceptableMethod(vec![])),
        ),
        (
            cat(&[greet, &[5, 2, 0, 1, 1, 2, 3, 4, 0, 80]]),
            true,
            refuse(
                rep5(7),
                SocksError::UnsupportedCommand {
                    version: Version::Socks5,
                    command: 2,
                },
            ),
        ),
        (
            cat(&[greet, &[5, 3, 0, 1, 1, 2, 3, 4, 0, 80]]),
            true,
            refuse(
                rep5(7),
                SocksError::UnsupportedCommand {
                    version: Version::Socks5,
                    command: 3,
                },
            ),
        ),
        (
            cat(&[greet, &[5, 1, 0, 9]]),
            true,
            refuse(rep5(8), SocksError::UnsupportedAddressType(9)),
        ),
        (
            cat(&[greet, &[4, 1, 0, 1]]),
            true,
            refuse(rep5(1), SocksError::BadRequestVersion(4)),
        ),
        (
            cat(&[greet, &[5, 1, 0, 3, 0, 0, 80]]),
            true,
            refuse(rep5(1), SocksError::EmptyName(Version::Socks5)),
        ),
        (
            cat(&[greet, &[5, 1, 0, 3, 3, b'a', 0, b'b', 0, 80]]),
            true,
            refuse(rep5(1), SocksError::BadName(Version::Socks5)),
        ),
        (
            cat(&[greet, &[5, 1, 0, 3, 2, 0xc3, 0x28, 0, 80]]),
            true,
            refuse(rep5(1), SocksError::BadName(Version::Socks5)),
        ),
        (
            cat(&[greet, &[5, 1, 0, 1, 1, 2, 3, 4, 0, 0]]),
            true,
            refuse(rep5(1), SocksError::PortZero(Version::Socks5)),
        ),
    ];
    for (input, method_ok, want) in cases {
        let (sent, end) = check(&input);
        let expect_sent: Vec<Vec<u8>> = if method_ok {
            vec![OK5.to_vec()]
        } else {
            vec![]
        };
        assert_eq!(sent, expect_sent, "{input:02x?}");
        assert_eq!(end, want, "{input:02x?}");
    }
}

#[test]
fn socks4_and_4a() {
    let v4 = |cmd: u8, ip: [u8; 4], rest: &[u8]| cat(&[&[4, cmd, 0x0d, 0x3d], &ip, rest]);
    let cases: Vec<(Vec<u8>, End)> = vec![
        (
            v4(1, [192, 0, 2, 9], b"admin\0"),
            connect(
                Version::Socks4,
                Host::Ipv4([192, 0, 2, 9].into()),
                3389,
                &[],
            ),
        ),
        (
            v4(1, [192, 0, 2, 9], b"\0hello"),
            connect(
                Version::Socks4,
                Host::Ipv4([192, 0, 2, 9].into()),
                3389,
                b"hello",
            ),
        ),
        (
            v4(1, [0, 0, 0, 1], b"me\0vcenter.site\0"),
            connect(
                Version::Socks4a,
                Host::Name("vcenter.site".into()),
                3389,
                &[],
            ),
        ),
        (
            v4(
                1,
                [0, 0, 0, 1],
                &cat(&[&[0], "n".repeat(255).as_bytes(), &[0]]),
            ),
            connect(Version::Socks4a, Host::Name("n".repeat(255)), 3389, &[]),
        ),
        (
            v4(2, [192, 0, 2, 9], b"\0"),
            refuse(
                rep4(91),
                SocksError::UnsupportedCommand {
                    version: Version::Socks4,
                    command: 2,
                },
            ),
        ),
        (
            v4(1, [0, 0, 0, 1], b"\0\0"),
            refuse(rep4(91), SocksError::EmptyName(Version::Socks4a)),
        ),
        (
            v4(
                1,
                [0, 0, 0, 1],
                &cat(&[&[0], "n".repeat(256).as_bytes(), &[0]]),
            ),
            refuse(rep4(91), SocksError::NameTooLong),
        ),
        (
            v4(1, [192, 0, 2, 9], "u".repeat(256).as_bytes()),
            refuse(rep4(91), SocksError::UserIdTooLong),
        ),
        (
            v4(1, [0, 0, 0, 1], b"\0bad name\0"),
            refuse(rep4(91), SocksError::BadName(Version::Socks4a)),
        ),
        (
            cat(&[&[4, 1, 0, 0, 192, 0, 2, 9], b"\0"]),
            refuse(rep4(91), SocksError::PortZero(Version::Socks4)),
        ),
    ];
    for (input, want) in cases {
        let (sent, end) = check(&input);
        assert!(sent.is_empty(), "{input:02x?}");
        assert_eq!(end, want, "{input:02x?}");
    }
}

#[test]
fn unknown_versions_and_cut_short_greetings_are_refused() {
    // Not SOCKS at all (an HTTP request to the proxy port): refused at the first byte.
    let (sent, end) = check(b"GET / HTTP/1.1\r\n\r\n");
    assert!(sent.is_empty());
    assert_eq!(end, refuse(NO5.to_vec(), SocksError::UnknownVersion(b'G')));
    // Cut short anywhere: the refusal of the protocol begun, none before the first byte.
    // (input, replies sent before, the refusal)
    type Case = (Vec<u8>, Vec<Vec<u8>>, Option<Vec<u8>>);
    let cases: Vec<Case> = vec![
        (vec![], vec![], None),
        (vec![5], vec![], Some(NO5.to_vec())),
        (vec![5, 3, 0], vec![], Some(NO5.to_vec())),
        (
            vec![5, 1, 0, 5, 1, 0, 3, 9, b'a'],
            vec![OK5.to_vec()],
            Some(rep5(1)),
        ),
        (
            vec![5, 1, 0, 5, 1, 0, 1, 10, 0],
            vec![OK5.to_vec()],
            Some(rep5(1)),
        ),
        (vec![4, 1, 0, 80, 1, 2, 3, 4, b'u'], vec![], Some(rep4(91))),
        (
            vec![4, 1, 0, 80, 0, 0, 0, 1, 0, b'h'],
            vec![],
            Some(rep4(91)),
        ),
    ];
    for (input, want_sent, want_reply) in cases {
        let (sent, end) = check(&input);
        assert_eq!(sent, want_sent, "{input:02x?}");
        assert_eq!(end, End::CutShort { reply: want_reply }, "{input:02x?}");
    }
}

#[test]
fn replies_and_targets() {
    let r = Request {
        version: Version::Socks5,
        host: Host::Ipv6("::1".parse().unwrap()),
        port: 443,
    };
    assert_eq!(r.reply(Outcome::Granted), rep5(0));
    assert_eq!(r.reply(Outcome::ConnectionRefused), rep5(5));
    assert_eq!(r.reply(Outcome::NetworkUnreachable), rep5(3));
    // The channel's host is the address without brackets, as direct-tcpip wants it.
    assert_eq!(r.target().host, "::1");
    assert_eq!(r.target().to_string(), "[::1]:443");
    let r4 = Request {
        version: Version::Socks4a,
        host: Host::Name("idrac.site".into()),
        port: 443,
    };
    assert_eq!(r4.reply(Outcome::Granted), rep4(90));
    assert_eq!(r4.reply(Outcome::HostUnreachable), rep4(91));
    assert_eq!(r4.target().to_string(), "idrac.site:443");
    // After the end, nothing more is parsed.
    let mut hs = Handshake::new();
    assert!(matches!(
        hs.step(&[4, 1, 0, 80, 1, 2, 3, 4, 0]),
        Step::Connect { .. }
    ));
    assert!(matches!(
        hs.step(&[5, 1, 0]),
        Step::Refuse { reply: None, .. }
    ));
    assert!(matches!(
        hs.refusal(SocksError::Truncated),
        Step::Refuse { reply: None, .. }
    ));
}

#[test]
fn errors_read_as_sentences() {
    let e = SocksError::UnsupportedCommand {
        version: Version::Socks5,
        command: 3,
    };
    assert_eq!(
        e.to_string(),
        "SOCKS5: command 0x03 (UDP ASSOCIATE) is not supported, only CONNECT"
    );
    assert_eq!(
        SocksError::UnknownVersion(0x47).to_string(),
        "unknown SOCKS version 0x47"
    );
    assert!(SocksError::NoAcceptableMethod(vec![2])
        .to_string()
        .contains("[02]"));
    // Peer input never makes a long log line: 255 methods are a count.
    let all: Vec<u8> = (1..=255).collect();
    assert_eq!(
        SocksError::NoAcceptableMethod(all).to_string(),
        "SOCKS5: 255 methods offered, none acceptable (only 00, no authentication, is accepted)"
    );
}
