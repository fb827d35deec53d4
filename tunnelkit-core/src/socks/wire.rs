//! The messages of each protocol, parsed from the bytes received so far: SOCKS5's greeting
//! and request, SOCKS4/4a's request. Each returns the [`Step`] the handshake takes.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{
    socks4_reply, socks5_reply, Host, Outcome, Request, SocksError, Step, Version, MAX_NAME,
    MAX_USER_ID, NO_ACCEPTABLE, NO_AUTH,
};

/// `05 NMETHODS METHODS...`: choose "no authentication" or refuse.
pub(super) fn socks5_greeting(input: &[u8]) -> Step {
    let Some(&n) = input.get(1) else {
        return Step::NeedMore;
    };
    let end = 2 + usize::from(n);
    let Some(methods) = input.get(2..end) else {
        return Step::NeedMore;
    };
    if methods.contains(&NO_AUTH) {
        Step::Send {
            reply: vec![5, NO_AUTH],
            consumed: end,
        }
    } else {
        Step::Refuse {
            reply: Some(vec![5, NO_ACCEPTABLE]),
            error: SocksError::NoAcceptableMethod(methods.to_vec()),
        }
    }
}

fn refuse5(outcome: Outcome, error: SocksError) -> Step {
    Step::Refuse {
        reply: Some(socks5_reply(outcome)),
        error,
    }
}

/// `05 CMD 00 ATYP ADDR PORT`.
pub(super) fn socks5_request(input: &[u8]) -> Step {
    let v = Version::Socks5;
    let [ver, cmd, _reserved, atyp, rest @ ..] = input else {
        return Step::NeedMore;
    };
    if *ver != 5 {
        return refuse5(Outcome::GeneralFailure, SocksError::BadRequestVersion(*ver));
    }
    if *cmd != 1 {
        let error = SocksError::UnsupportedCommand {
            version: v,
            command: *cmd,
        };
        return refuse5(Outcome::CommandNotSupported, error);
    }
    let (host, addr_len) = match *atyp {
        1 => match rest.get(..4) {
            Some(a) => (Host::Ipv4(Ipv4Addr::new(a[0], a[1], a[2], a[3])), 4),
            None => return Step::NeedMore,
        },
        4 => match rest.get(..16).and_then(|a| <[u8; 16]>::try_from(a).ok()) {
            Some(a) => (Host::Ipv6(Ipv6Addr::from(a)), 16),
            None => return Step::NeedMore,
        },
        3 => {
            let Some(&len) = rest.first() else {
                return Step::NeedMore;
            };
            if len == 0 {
                return refuse5(Outcome::GeneralFailure, SocksError::EmptyName(v));
            }
            let Some(name) = rest.get(1..1 + usize::from(len)) else {
                return Step::NeedMore;
            };
            match host_name(name) {
                Some(n) => (Host::Name(n), 1 + usize::from(len)),
                None => return refuse5(Outcome::GeneralFailure, SocksError::BadName(v)),
            }
        }
        other => {
            return refuse5(
                Outcome::AddressTypeNotSupported,
                SocksError::UnsupportedAddressType(other),
            )
        }
    };
    let Some(p) = rest.get(addr_len..addr_len + 2) else {
        return Step::NeedMore;
    };
    let port = u16::from_be_bytes([p[0], p[1]]);
    if port == 0 {
        return refuse5(Outcome::GeneralFailure, SocksError::PortZero(v));
    }
    Step::Connect {
        request: Request {
            version: v,
            host,
            port,
        },
        consumed: 4 + addr_len + 2,
    }
}

fn refuse4(error: SocksError) -> Step {
    Step::Refuse {
        reply: Some(socks4_reply(Outcome::GeneralFailure)),
        error,
    }
}

/// `04 CMD PORT(2) IP(4) USERID 00 [NAME 00]`; an IP of 0.0.0.x (x != 0) means SOCKS4a.
pub(super) fn socks4_request(input: &[u8]) -> Step {
    let [_, cmd, p0, p1, a, b, c, d, rest @ ..] = input else {
        return Step::NeedMore;
    };
    let is_4a = [*a, *b, *c] == [0, 0, 0] && *d != 0;
    let v = if is_4a {
        Version::Socks4a
    } else {
        Version::Socks4
    };
    if *cmd != 1 {
        return refuse4(SocksError::UnsupportedCommand {
            version: v,
            command: *cmd,
        });
    }
    let Some(user_end) = nul_within(rest, MAX_USER_ID) else {
        return if rest.len() > MAX_USER_ID {
            refuse4(SocksError::UserIdTooLong)
        } else {
            Step::NeedMore
        };
    };
    let port = u16::from_be_bytes([*p0, *p1]);
    let mut consumed = 8 + user_end + 1;
    let host = if is_4a {
        let after = &rest[user_end + 1..];
        let Some(name_end) = nul_within(after, MAX_NAME) else {
            return if after.len() > MAX_NAME {
                refuse4(SocksError::NameTooLong)
            } else {
                Step::NeedMore
            };
        };
        consumed += name_end + 1;
        if name_end == 0 {
            return refuse4(SocksError::EmptyName(v));
        }
        match host_name(&after[..name_end]) {
            Some(n) => Host::Name(n),
            None => return refuse4(SocksError::BadName(v)),
        }
    } else {
        Host::Ipv4(Ipv4Addr::new(*a, *b, *c, *d))
    };
    if port == 0 {
        return refuse4(SocksError::PortZero(v));
    }
    Step::Connect {
        request: Request {
            version: v,
            host,
            port,
        },
        consumed,
    }
}

/// The index of the first NUL in `bytes`, if it is within `max` bytes.
fn nul_within(bytes: &[u8], max: usize) -> Option<usize> {
    bytes.iter().take(max + 1).position(|&b| b == 0)
}

/// A domain name as sent, if it can be one: UTF-8 without control characters or white space.
fn host_name(bytes: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(bytes).ok()?;
    (!s.chars().any(|c| c.is_control() || c.is_whitespace())).then(|| s.to_string())
}
