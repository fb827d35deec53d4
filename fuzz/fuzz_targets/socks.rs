//! The SOCKS handshake parser (`tunnelkit_core::socks::Handshake`), fed a client's bytes whole
//! and in pieces (the first byte of the input picks the piece size). Checks: both feedings give
//! the same replies and the same end; the parser never needs more than `MAX_HANDSHAKE` bytes; a
//! request has a port and a well-formed host; every reply is one the protocols define (method
//! `05 00`, refusals `05 FF`, a SOCKS5 reply with a failure code, SOCKS4's `91`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tunnelkit_core::socks::{
    Handshake, Host, Outcome, SocksError, Step, Version, MAX_HANDSHAKE, MAX_NAME,
};

#[derive(Debug, PartialEq)]
enum End {
    Connect(tunnelkit_core::socks::Request, usize),
    Refuse(Option<Vec<u8>>),
    CutShort(Option<Vec<u8>>),
}

/// Runs the handshake on `input` fed `piece` bytes at a time; the replies sent and the end.
fn run(input: &[u8], piece: usize) -> (Vec<Vec<u8>>, End) {
    let mut hs = Handshake::new();
    let mut buf = Vec::new();
    let (mut fed, mut consumed_total, mut sent) = (0, 0, Vec::new());
    for _ in 0..input.len() * 2 + 4 {
        match hs.step(&buf) {
            Step::NeedMore => {
                assert!(buf.len() <= MAX_HANDSHAKE, "needs more past the bound");
                if fed == input.len() {
                    let Step::Refuse { reply, .. } = hs.refusal(SocksError::Truncated) else {
                        panic!("refusal is not a Refuse");
                    };
                    return (sent, End::CutShort(reply));
                }
                let n = piece.min(input.len() - fed);
                buf.extend_from_slice(&input[fed..fed + n]);
                fed += n;
            }
            Step::Send { reply, consumed } => {
                assert!(consumed <= buf.len() && consumed > 0);
                assert_eq!(reply, [5, 0], "the only method reply");
                consumed_total += consumed;
                buf.drain(..consumed);
                sent.push(reply);
            }
            Step::Connect { request, consumed } => {
                assert!(consumed <= buf.len());
                return (sent, End::Connect(request, consumed_total + consumed));
            }
            Step::Refuse { reply, .. } => return (sent, End::Refuse(reply)),
        }
    }
    panic!("no end");
}

fn check_refusal(reply: &Option<Vec<u8>>) {
    if let Some(r) = reply {
        let ok = r == &[5, 0xff]
            || (r.len() == 10 && r[0] == 5 && r[1] != 0 && r[2..] == [0, 1, 0, 0, 0, 0, 0, 0])
            || r == &[0, 91, 0, 0, 0, 0, 0, 0];
        assert!(ok, "not a refusal: {r:02x?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&p, input)) = data.split_first() else {
        return;
    };
    let piece = usize::from(p % 16) + 1;
    let whole = run(input, input.len().max(1));
    let pieces = run(input, piece);
    assert_eq!(whole, pieces, "piece size {piece}");
    match &whole.1 {
        End::Connect(r, consumed) => {
            assert!(*consumed <= input.len());
            assert!(r.port != 0);
            if let Host::Name(n) = &r.host {
                assert!(!n.is_empty() && n.len() <= MAX_NAME, "{n:?}");
                assert!(
                    !n.chars().any(|c| c.is_control() || c.is_whitespace()),
                    "{n:?}"
                );
            }
            let granted = r.reply(Outcome::Granted);
            match r.version {
                Version::Socks5 => assert_eq!(granted[..2], [5, 0]),
                _ => assert_eq!(granted[..2], [0, 90]),
            }
            assert!(!r.target().host.is_empty());
        }
        End::Refuse(reply) | End::CutShort(reply) => check_refusal(reply),
    }
});
