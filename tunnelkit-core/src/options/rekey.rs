//! `RekeyLimit`, as ssh_config(5) defines it: the data sent or received before the session key
//! is renegotiated (bytes, with an optional `K`, `M`, `G`, ... suffix and decimals, or `default`:
//! the cipher's amount), optionally followed by a time (sshd_config(5)'s TIME FORMATS, or
//! `none`). Values are checked as OpenSSH 9's `readconf.c` checks them (`scan_scaled`,
//! `convtime`; "RekeyLimit too small" below 16 bytes).

use std::fmt;
use std::time::Duration;

/// The smallest data limit OpenSSH accepts (other than 0, which means `default`).
const MIN_DATA: u64 = 16;
/// The longest time `convtime` accepts, in seconds (C's `INT_MAX`).
const MAX_SECONDS: u64 = i32::MAX as u64;
/// "The cipher's amount" (ssh_config(5)) for a cipher with blocks shorter than 16 bytes (OpenSSH
/// counts chacha20-poly1305 as 8): 1 GiB, RFC 4344's advice for them, and russh's default.
const SMALL_BLOCK_AMOUNT: u64 = 1 << 30;
/// The same for a 16-byte block (AES, any mode): 2^32 blocks, 64 GiB (OpenSSH's `ssh_set_newkeys`:
/// `1 << (block_size * 2)` blocks).
const AES_AMOUNT: u64 = 1 << 36;

/// The cipher's amount of `cipher`: what OpenSSH encrypts under one key when no `RekeyLimit`
/// lowers it.
fn cipher_amount(cipher: &str) -> u64 {
    if cipher.starts_with("aes") {
        AES_AMOUNT
    } else {
        SMALL_BLOCK_AMOUNT
    }
}

/// Why a `RekeyLimit` value was refused, in OpenSSH's words where it has some.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RekeyLimitError {
    /// The value is empty.
    #[error("a data limit (e.g. 512M, 1G or default)")]
    NoDataLimit,
    /// The data limit is below the 16 bytes OpenSSH accepts (other than 0).
    #[error("RekeyLimit too small: at least {MIN_DATA} bytes")]
    TooSmall,
    /// The data limit is not a byte count.
    #[error("bad number `{0}`: bytes, with an optional K, M or G suffix")]
    BadNumber(String),
    /// The data limit does not fit OpenSSH's signed 64-bit count.
    #[error("`{0}` is out of range")]
    OutOfRange(String),
    /// The time part is not a time (or is longer than `INT_MAX` seconds).
    #[error("invalid time value `{0}` (e.g. 3600, 1h or 1h30m)")]
    BadTime(String),
    /// More than a data limit and a time.
    #[error("extra argument `{0}`: a data limit and an optional time")]
    ExtraArgument(String),
}

/// A hop's `RekeyLimit`. The default is OpenSSH's `default none`: the cipher's amount of data
/// (russh's: 1 GiB), no time-based rekeying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RekeyLimit {
    /// Bytes sent or received (each direction counted on its own) before a rekey; `None` is
    /// `default`: the cipher's amount.
    pub data: Option<u64>,
    /// Time before a rekey; `None` is `none`: no time-based rekeying.
    pub time: Option<Duration>,
}

impl RekeyLimit {
    /// Parses a `RekeyLimit` value (`128M`, `1G 1h`, `default none`, ...). The error says what
    /// was wrong, in OpenSSH's words where it has some.
    pub fn parse(value: &str) -> Result<RekeyLimit, RekeyLimitError> {
        let line = RekeyLimitLine::parse(value)?;
        Ok(RekeyLimit {
            data: line.data,
            time: line.time.flatten(),
        })
    }
}

/// One `RekeyLimit` line as OpenSSH records it: the data part always, the time part only when
/// one is given other than `none` (`0` is recorded: it means none too, but later lines no longer
/// set it). With first-wins, `RekeyLimit 1G` then `RekeyLimit 2G 1h` is therefore `1G 1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RekeyLimitLine {
    /// The data part: `None` is `default` (or 0).
    pub(crate) data: Option<u64>,
    /// The time part: `None` when absent or `none`, `Some(None)` for 0.
    pub(crate) time: Option<Option<Duration>>,
}

impl RekeyLimitLine {
    /// Parses and checks one value.
    pub(crate) fn parse(value: &str) -> Result<RekeyLimitLine, RekeyLimitError> {
        let mut words = value.split_whitespace();
        let data = match words.next() {
            None => return Err(RekeyLimitError::NoDataLimit),
            Some("default") => None,
            Some(w) => match scaled(w)? {
                0 => None,
                n if n < MIN_DATA => return Err(RekeyLimitError::TooSmall),
                n => Some(n),
            },
        };
        let time = match words.next() {
            None | Some("none") => None,
            Some(w) => Some(match convtime(w)? {
                0 => None,
                s => Some(Duration::from_secs(s)),
            }),
        };
        if let Some(extra) = words.next() {
            return Err(RekeyLimitError::ExtraArgument(extra.to_string()));
        }
        Ok(RekeyLimitLine { data, time })
    }
}

impl RekeyLimit {
    /// As russh's limits (client or server) for a session that offers `ciphers` (in order; the
    /// peer picks one of them): the data part in each direction, held to the cipher's amount as
    /// ssh holds it. The cipher is not known before the key exchange, so this is the smallest
    /// amount among those offered: never later than ssh would rekey (1 GiB when
    /// chacha20-poly1305 is offered, 64 GiB when only AES is). Without a time part, no time
    /// limit.
    pub(crate) fn russh_limits(&self, ciphers: &[russh::cipher::Name]) -> russh::Limits {
        let amount = ciphers
            .iter()
            .map(|c| cipher_amount(c.as_ref()))
            .min()
            .unwrap_or(SMALL_BLOCK_AMOUNT);
        let data = self.data.unwrap_or(amount).min(amount);
        let data = usize::try_from(data).unwrap_or(usize::MAX);
        russh::Limits {
            rekey_write_limit: data,
            rekey_read_limit: data,
            rekey_time_limit: self.time.unwrap_or(Duration::MAX),
        }
    }
}

impl fmt::Display for RekeyLimit {
    /// As `ssh -G` prints it: bytes and seconds, 0 for `default` and `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.time.map_or(0, |t| t.as_secs());
        write!(f, "{} {secs}", self.data.unwrap_or(0))
    }
}

/// A byte count with an optional scale suffix, as OpenBSD's `scan_scaled`: `[+]digits[.digits]`
/// then one of `B K M G T P E` (any case; powers of 1024), the fraction truncated to bytes.
fn scaled(w: &str) -> Result<u64, RekeyLimitError> {
    let bad = || RekeyLimitError::BadNumber(w.to_string());
    let s = w.strip_prefix('+').unwrap_or(w);
    let (number, shift) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'B' => 0,
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                'P' => 50,
                'E' => 60,
                _ => return Err(bad()),
            };
            (&s[..i], shift)
        }
        _ => (s, 0),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return Err(bad());
    }
    let range = || RekeyLimitError::OutOfRange(w.to_string());
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| range())?
    };
    let scale = 1u128 << shift;
    // At most 18 fraction digits count (a nanobyte is already below one byte for every scale).
    let fraction = &fraction[..fraction.len().min(18)];
    let frac = if fraction.is_empty() {
        0
    } else {
        let f: u128 = fraction.parse().map_err(|_| bad())?;
        f * scale / 10u128.pow(fraction.len() as u32)
    };
    let total = whole
        .checked_mul(scale)
        .and_then(|t| t.checked_add(frac))
        .ok_or_else(range)?;
    // OpenSSH keeps the value in a signed 64-bit integer.
    if total > i64::MAX as u128 {
        return Err(range());
    }
    Ok(total as u64)
}

/// A time as OpenSSH's `convtime`: one or more `digits[unit]` with unit `s`, `m`, `h`, `d` or `w`
/// (any case; none means seconds), added up; at most `INT_MAX` seconds.
fn convtime(w: &str) -> Result<u64, RekeyLimitError> {
    let bad = || RekeyLimitError::BadTime(w.to_string());
    let mut total: u64 = 0;
    let mut rest = w;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if end == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..end].parse().map_err(|_| bad())?;
        rest = &rest[end..];
        let unit = match rest.chars().next().map(|c| c.to_ascii_lowercase()) {
            None => 1,
            Some('s') => 1,
            Some('m') => 60,
            Some('h') => 3600,
            Some('d') => 86400,
            Some('w') => 604800,
            Some(_) => return Err(bad()),
        };
        if !rest.is_empty() {
            rest = &rest[1..];
        }
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .filter(|t| *t <= MAX_SECONDS)
            .ok_or_else(bad)?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `ssh -G -o RekeyLimit=VALUE` prints (OpenSSH 9.2), or `None` where it refuses.
    const AS_SSH_G: &[(&str, Option<&str>)] = &[
        ("default none", Some("0 0")),
        ("default", Some("0 0")),
        ("0", Some("0 0")),
        ("128M", Some("134217728 0")),
        ("1g", Some("1073741824 0")),
        ("1G 1h", Some("1073741824 3600")),
        ("1G none", Some("1073741824 0")),
        ("1G 0", Some("1073741824 0")),
        ("1G 0s", Some("1073741824 0")),
        ("default 1d", Some("0 86400")),
        ("default 1h", Some("0 3600")),
        ("1k 1m30s", Some("1024 90")),
        ("1G 1H30M", Some("1073741824 5400")),
        ("1G 1h30", Some("1073741824 3630")),
        ("1G 1d1d", Some("1073741824 172800")),
        ("1G 1w", Some("1073741824 604800")),
        ("16", Some("16 0")),
        ("2147483648", Some("2147483648 0")),
        ("5G", Some("5368709120 0")),
        ("1T", Some("1099511627776 0")),
        ("1E", Some("1152921504606846976 0")),
        ("9223372036854775807", Some("9223372036854775807 0")),
        ("1.5G", Some("1610612736 0")),
        ("1.25G", Some("1342177280 0")),
        ("1.123456789G", Some("1206302541 0")),
        ("1.5K", Some("1536 0")),
        (".5K", Some("512 0")),
        ("+5K", Some("5120 0")),
        ("8", None),
        ("1B", None),
        ("-1", None),
        ("1.5", None),
        ("8E", None),
        ("1KB", None),
        ("1Gx", None),
        ("1h", None),
        ("0x10", None),
        ("none 30", None),
        ("1G default", None),
        ("1G 10x", None),
        ("1G -5", None),
        ("1G s", None),
        ("1G ,", None),
        ("1G 99999999999", None),
        ("1G 1h extra", None),
        ("1G none extra", None),
        ("", None),
    ];

    #[test]
    fn values_are_read_as_openssh_reads_them() {
        for (value, want) in AS_SSH_G {
            let got = RekeyLimit::parse(value).map(|r| r.to_string());
            match want {
                Some(w) => assert_eq!(got.as_deref(), Ok(*w), "RekeyLimit {value}"),
                None => assert!(got.is_err(), "RekeyLimit {value}: {got:?}"),
            }
        }
    }

    #[test]
    fn parsed_values_and_errors() {
        assert_eq!(
            RekeyLimit::default(),
            RekeyLimit::parse("default none").unwrap()
        );
        assert_eq!(
            RekeyLimit::parse("128M 30m").unwrap(),
            RekeyLimit {
                data: Some(128 << 20),
                time: Some(Duration::from_secs(1800)),
            }
        );
        let e = RekeyLimit::parse("8").unwrap_err();
        assert_eq!(e, RekeyLimitError::TooSmall);
        assert!(e.to_string().contains("RekeyLimit too small"), "{e}");
        let e = RekeyLimit::parse("lots").unwrap_err();
        assert_eq!(e, RekeyLimitError::BadNumber("lots".into()));
        assert!(e.to_string().contains("bad number `lots`"), "{e}");
        let e = RekeyLimit::parse("1G soon").unwrap_err();
        assert_eq!(e, RekeyLimitError::BadTime("soon".into()));
        assert!(e.to_string().contains("invalid time value `soon`"), "{e}");
    }

    #[test]
    fn maps_onto_russh_limits() {
        use russh::cipher::{AES_128_CTR, AES_128_GCM, AES_256_GCM, CHACHA20_POLY1305};
        let both = [CHACHA20_POLY1305, AES_128_GCM];
        let l = |v: &str| RekeyLimit::parse(v).unwrap().russh_limits(&both);
        // `default none` with chacha20-poly1305 offered: 1 GiB each way, no time-based rekey.
        let d = l("default none");
        assert_eq!(
            (d.rekey_read_limit, d.rekey_write_limit),
            (1 << 30, 1 << 30)
        );
        assert_eq!(d.rekey_time_limit, Duration::MAX);
        let s = l("128M 30m");
        assert_eq!(
            (s.rekey_read_limit, s.rekey_write_limit),
            (128 << 20, 128 << 20)
        );
        assert_eq!(s.rekey_time_limit, Duration::from_secs(1800));
        // Above the cipher's amount: held to it, as ssh holds it.
        assert_eq!(l("5G").rekey_read_limit, 1 << 30);
        // Only AES offered: ssh's 2^32 16-byte blocks (64 GiB), or less when asked.
        let aes = [AES_128_GCM, AES_256_GCM, AES_128_CTR];
        let a = |v: &str| RekeyLimit::parse(v).unwrap().russh_limits(&aes);
        assert_eq!(a("default none").rekey_read_limit as u64, 1 << 36);
        assert_eq!(a("default none").rekey_write_limit as u64, 1 << 36);
        assert_eq!(a("5G").rekey_write_limit as u64, 5 << 30);
        assert_eq!(a("100T").rekey_write_limit as u64, 1 << 36);
        // Nothing known: 1 GiB.
        let n = RekeyLimit::parse("default").unwrap().russh_limits(&[]);
        assert_eq!(n.rekey_read_limit, 1 << 30);
    }

    #[test]
    fn each_part_is_first_wins_on_its_own_as_in_openssh() {
        // ssh -G with `RekeyLimit 1G` (or `1G none`) in a Host block and `RekeyLimit 2G 1h`
        // under `Host *` prints `rekeylimit 1073741824 3600`; with `1G 0`, `... 0`.
        for (first, want) in [
            ("1G", "1073741824 3600"),
            ("1G none", "1073741824 3600"),
            ("1G 0", "1073741824 0"),
        ] {
            let mut o = crate::SshOptions::default();
            o.apply_kv(&format!("RekeyLimit {first}")).unwrap();
            o.apply_kv("RekeyLimit=2G 1h").unwrap();
            assert_eq!(o.rekey_limit().to_string(), want, "{first}");
        }
        let mut o = crate::SshOptions::default();
        assert_eq!(o.rekey_limit(), RekeyLimit::default());
        o.apply_kv("RekeyLimit=128M").unwrap();
        let env = crate::Environment {
            local_user: "alice".into(),
            home: "/home/alice".into(),
            sources: crate::ssh_config::Sources::default(),
            shell: "/bin/sh".into(),
            interactive: false,
            agent_socket: None,
        };
        assert_eq!(o.hop_options(&env).rekey_limit.data, Some(128 << 20));
        let e = o.apply_kv("RekeyLimit=8").unwrap_err();
        assert_eq!(
            e.to_string(),
            "option RekeyLimit: bad value `8`: RekeyLimit too small: at least 16 bytes"
        );
    }
}
