//! Host key verification against OpenSSH `known_hosts` files, following ssh's rules:
//!
//! - A line is `[marker] patterns keytype base64 [comment]`, fields separated by spaces or tabs;
//!   blank lines and `#` comments are skipped, and so is a malformed line (logged at debug), as
//!   ssh does: a bad line is never an error.
//! - `patterns` is a comma list with `*` and `?` wildcards and `!negation` (a negated match makes
//!   the line not apply even when another pattern matches), or one hashed name `|1|salt|hmac`
//!   (HMAC-SHA1 keyed by the salt over the name). Names match case-insensitively: like ssh, the
//!   looked-up name is lowercased, and so is every name written.
//! - The name is `host` on port 22 and `[host]:port` otherwise; a `HostKeyAlias` replaces both.
//! - `@revoked` refuses its key for the hosts its patterns match, whatever other lines say; as in
//!   ssh, the patterns count: `@revoked * ...` revokes a key for every host.
//! - A matching line with the same key is *known*; a matching line with a different key of the
//!   same algorithm means the key *changed*, refused under every `StrictHostKeyChecking`
//!   (stricter than ssh, which connects with `no`). When several lines differ, the last one is
//!   reported, as ssh does. Lines with keys of other algorithms only leave the host *unknown*.
//! - Learned keys are appended (hashed with `HashKnownHosts`) to the first user file, created
//!   with mode 0600 in a 0700 directory when missing.
//!
//! Not supported: `@cert-authority` lines are ignored (a host certificate's key is checked like a
//! plain key), `CheckHostIP` (no address lookups), `RevokedHostKeys` files, `VerifyHostKeyDNS`,
//! and the `[fingerprint]` answer to the question.
//! Unlike ssh, which treats a key of a new algorithm as changed once any key is known for a host,
//! such a key is *unknown* here (russh may negotiate another algorithm than ssh would); so that
//! an attacker cannot use this to get a key learned, `accept-new` refuses it.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
pub use russh::keys::ssh_key::PublicKey;
use russh::keys::ssh_key::{Algorithm, HashAlg};
use sha1::Sha1;

use crate::config::{Hop, StrictHostKeyChecking};
use crate::prompt::{Confirm, Prompter};
use crate::Error;

/// Start of a hashed name, `|1|base64(salt)|base64(hmac)`.
const HASH_MAGIC: &str = "|1|";
/// Bytes of salt in a hashed name: the SHA1 output size, which ssh requires.
const SALT_LEN: usize = 20;

/// SHA256 fingerprint as OpenSSH prints it: `SHA256:` and unpadded base64.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The name looked up in known_hosts: `host` on port 22, otherwise `[host]:port`.
pub fn lookup_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// What the known_hosts files say about a key for a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A matching line records this key.
    Known,
    /// No matching line records a key of this algorithm.
    Unknown {
        /// `(file, 1-based line, algorithm name)` of matching lines with keys of other
        /// algorithms, e.g. `ecdsa-sha2-nistp256`.
        other_types: Vec<(PathBuf, usize, String)>,
    },
    /// A matching line records a different key of the same algorithm.
    Changed {
        /// The file holding that line.
        file: PathBuf,
        /// Its 1-based number (the last such line, as ssh reports it).
        line: usize,
    },
    /// A matching `@revoked` line lists this key.
    Revoked {
        /// The file holding that line.
        file: PathBuf,
        /// Its 1-based number.
        line: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    None,
    Revoked,
    CertAuthority,
}

/// The fields of one known_hosts entry.
struct Line<'a> {
    marker: Marker,
    hosts: &'a str,
    algorithm: &'a str,
    data: &'a str,
}

/// Splits a line into fields: `Ok(None)` for a blank line or a comment, `Err(why)` when malformed.
fn parse_line(line: &str) -> Result<Option<Line<'_>>, &'static str> {
    let mut fields = line.split([' ', '\t']).filter(|f| !f.is_empty());
    let first = match fields.next() {
        None => return Ok(None),
        Some(f) if f.starts_with('#') => return Ok(None),
        Some(f) => f,
    };
    let (marker, hosts) = match first {
        "@revoked" => (Marker::Revoked, fields.next()),
        "@cert-authority" => (Marker::CertAuthority, fields.next()),
        m if m.starts_with('@') => return Err("unknown marker"),
        hosts => (Marker::None, Some(hosts)),
    };
    match (hosts, fields.next(), fields.next()) {
        (Some(hosts), Some(algorithm), Some(data)) => Ok(Some(Line {
            marker,
            hosts,
            algorithm,
            data,
        })),
        (None, _, _) => Err("no host patterns"),
        _ => Err("no key"),
    }
}

/// The marker and key of a line whose patterns match `name` (lowercase); like ssh, the key is
/// only parsed on matching lines.
fn matching_entry(raw: &[u8], name: &str) -> Result<Option<(Marker, PublicKey)>, &'static str> {
    let text = std::str::from_utf8(raw).map_err(|_| "not UTF-8")?;
    let Some(line) = parse_line(text)? else {
        return Ok(None);
    };
    if !hosts_match(line.hosts, name)? {
        return Ok(None);
    }
    let key = PublicKey::from_openssh(&format!("{} {}", line.algorithm, line.data))
        .map_err(|_| "unreadable or unsupported key")?;
    Ok(Some((line.marker, key)))
}

/// HMAC-SHA1 over `name` keyed by `salt`, as in hashed names.
fn name_mac(salt: &[u8], name: &str) -> Option<Hmac<Sha1>> {
    let mut mac = Hmac::<Sha1>::new_from_slice(salt).ok()?;
    mac.update(name.as_bytes());
    Some(mac)
}

/// Whether a line's host field applies to `name` (lowercase); `Err` for a malformed hash.
fn hosts_match(hosts: &str, name: &str) -> Result<bool, &'static str> {
    let Some(hashed) = hosts.strip_prefix(HASH_MAGIC) else {
        return Ok(pattern_list_matches(hosts, name));
    };
    let (salt, hash) = hashed.split_once('|').ok_or("bad hashed name")?;
    let (Ok(salt), Ok(hash)) = (B64.decode(salt), B64.decode(hash)) else {
        return Err("bad hashed name");
    };
    if salt.len() != SALT_LEN {
        return Err("bad hashed name salt length");
    }
    Ok(name_mac(&salt, name).is_some_and(|mac| mac.verify_slice(&hash).is_ok()))
}

/// ssh's `match_pattern_list`: true when a pattern matches and no negated one does.
fn pattern_list_matches(patterns: &str, name: &str) -> bool {
    let mut matched = false;
    for pattern in patterns.split(',') {
        let pattern = pattern.to_ascii_lowercase();
        let (negated, pattern) = match pattern.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, pattern.as_str()),
        };
        if wildcard_matches(pattern.as_bytes(), name.as_bytes()) {
            if negated {
                return false;
            }
            matched = true;
        }
    }
    matched
}

/// `*` matches any run of bytes, `?` exactly one.
fn wildcard_matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and the text position it is currently matched up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    star = Some((sp, st + 1));
                    p = sp + 1;
                    t = st + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// One line of `files` whose patterns match a name.
struct Match<'a> {
    file: &'a PathBuf,
    line: usize,
    marker: Marker,
    key: PublicKey,
}

/// The well-formed lines of `files` whose patterns match `name` (lowercase), in order. Missing
/// files are skipped; malformed lines are skipped and logged at debug.
fn matching_lines<'a>(files: &'a [PathBuf], name: &str) -> crate::Result<Vec<Match<'a>>> {
    let mut found = Vec::new();
    for file in files {
        let bytes = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(format!("read {}", file.display()), e)),
        };
        for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let line = i + 1;
            match matching_entry(raw, name) {
                Ok(Some((marker, key))) => found.push(Match {
                    file,
                    line,
                    marker,
                    key,
                }),
                Ok(None) => {}
                Err(why) => tracing::debug!("{}:{line}: skipped: {why}", file.display()),
            }
        }
    }
    Ok(found)
}

/// Reads `files` in order and decides what they say about `key` for `name` (matched
/// case-insensitively). Missing files are skipped; a file that exists but cannot be read is an
/// [`Error::Io`] naming it.
pub fn check(files: &[PathBuf], name: &str, key: &PublicKey) -> crate::Result<Verdict> {
    let mut changed = None;
    let mut known = false;
    let mut other_types = Vec::new();
    for m in matching_lines(files, &name.to_ascii_lowercase())? {
        let same_key = m.key.key_data() == key.key_data();
        match m.marker {
            Marker::Revoked if same_key => {
                let (file, line) = (m.file.clone(), m.line);
                return Ok(Verdict::Revoked { file, line });
            }
            Marker::Revoked | Marker::CertAuthority => {}
            Marker::None if same_key => known = true,
            Marker::None if m.key.algorithm() == key.algorithm() => changed = Some(m),
            Marker::None => {
                let algorithm = m.key.algorithm().as_str().to_string();
                other_types.push((m.file.clone(), m.line, algorithm));
            }
        }
    }
    Ok(match (known, changed) {
        (true, _) => Verdict::Known,
        (false, Some(m)) => Verdict::Changed {
            file: m.file.clone(),
            line: m.line,
        },
        (false, None) => Verdict::Unknown { other_types },
    })
}

/// The algorithms of the keys `files` record for `name`, first seen first, each once. Offer
/// these host key algorithms first when connecting (ssh does), so that a server with several
/// host keys shows one that can be checked rather than one that is merely unknown.
pub fn known_algorithms(files: &[PathBuf], name: &str) -> crate::Result<Vec<Algorithm>> {
    let mut algorithms: Vec<Algorithm> = Vec::new();
    for m in matching_lines(files, &name.to_ascii_lowercase())? {
        if m.marker == Marker::None && !algorithms.contains(&m.key.algorithm()) {
            algorithms.push(m.key.algorithm());
        }
    }
    Ok(algorithms)
}

/// Why `name` cannot be written unhashed as a known_hosts pattern that matches itself and
/// nothing else, if it cannot.
fn unwritable_plain_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("it is empty")
    } else if name.contains([' ', '\t', '\n']) {
        Some("it contains white space")
    } else if name.contains([',', '*', '?']) {
        Some("it contains ',', '*' or '?', which known_hosts reads as a pattern")
    } else if name.starts_with(['!', '#', '@']) || name.starts_with(HASH_MAGIC) {
        Some("it starts like a negation, a comment, a marker or a hashed name")
    } else {
        None
    }
}

/// Appends `name keytype base64` to `file`, the name lowercased and, when `hashed`, written as
/// `|1|salt|hmac` (what `HashKnownHosts yes` does). Creates the parent directory (mode 0700)
/// and the file (mode 0600) when missing, and starts a new line if the file lacks a final one.
/// Unhashed, a name that would not read back as itself alone (empty, white space, `,*?`, a
/// leading `!#@` or `|1|`) is refused with [`Error::Config`] rather than written.
pub fn append(file: &Path, name: &str, key: &PublicKey, hashed: bool) -> crate::Result<()> {
    let name = name.to_ascii_lowercase();
    if let Some(why) = unwritable_plain_name(&name).filter(|_| !hashed) {
        return Err(Error::Config(format!(
            "cannot record a host key for `{name}` in {}: {why} (HashKnownHosts=yes records \
             any name)",
            file.display()
        )));
    }
    let host = if hashed {
        let salt: [u8; SALT_LEN] = rand::random();
        let mac = name_mac(&salt, &name)
            .ok_or_else(|| Error::Config("HMAC-SHA1 refused a 20-byte salt".into()))?;
        let hash = mac.finalize().into_bytes();
        format!("{HASH_MAGIC}{}|{}", B64.encode(salt), B64.encode(hash))
    } else {
        name
    };
    // Without the key's comment: the line is `host type base64`.
    let key_text = PublicKey::new(key.key_data().clone(), "")
        .to_openssh()
        .map_err(|e| Error::Config(format!("cannot encode the host key: {e}")))?;
    let io = |what: &str, e| Error::io(format!("{what} {}", file.display()), e);
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(dir)
            .map_err(|e| Error::io(format!("create directory {}", dir.display()), e))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true).append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(file).map_err(|e| io("open", e))?;
    let mut text = String::new();
    if f.metadata().map_err(|e| io("stat", e))?.len() > 0 {
        let mut last = [0u8];
        f.seek(SeekFrom::End(-1))
            .and_then(|_| f.read_exact(&mut last))
            .map_err(|e| io("read", e))?;
        if last[0] != b'\n' {
            text.push('\n');
        }
    }
    text.push_str(&format!("{host} {key_text}\n"));
    f.write_all(text.as_bytes()).map_err(|e| io("write", e))
}

/// The key type as ssh names it in messages: `ED25519`, `RSA`, `ECDSA`, `ED25519-SK`, ...
fn type_label(key: &PublicKey) -> String {
    match key.algorithm() {
        Algorithm::Dsa => "DSA".into(),
        Algorithm::Ecdsa { .. } => "ECDSA".into(),
        Algorithm::Ed25519 => "ED25519".into(),
        Algorithm::Rsa { .. } => "RSA".into(),
        Algorithm::SkEcdsaSha2NistP256 => "ECDSA-SK".into(),
        Algorithm::SkEd25519 => "ED25519-SK".into(),
        other => other.as_str().to_ascii_uppercase(),
    }
}

/// Decides whether to trust `key` for `hop`: looks its name (the `HostKeyAlias`, or `host` /
/// `[host]:port`) up in the policy's user files, then its global files, and applies
/// `StrictHostKeyChecking` to an unknown key. A revoked or changed key is refused under every
/// policy, `no` included. A learned key goes to the first user file; failing to write it is an
/// error (ssh only warns), so a key is not trusted today and forgotten tomorrow. With no user
/// file at all, an accepted key is trusted for this connection only.
pub async fn verify(hop: &Hop, key: &PublicKey, prompter: &dyn Prompter) -> crate::Result<()> {
    let policy = &hop.options.host_keys;
    let name = match &hop.host_key_alias {
        Some(alias) => alias.to_ascii_lowercase(),
        None => lookup_name(&hop.host, hop.port).to_ascii_lowercase(),
    };
    let files: Vec<PathBuf> = policy
        .user_files
        .iter()
        .chain(&policy.global_files)
        .cloned()
        .collect();
    let (fp, key_type) = (fingerprint(key), type_label(key));
    let other_types = match check(&files, &name, key)? {
        Verdict::Known => return Ok(()),
        Verdict::Revoked { file, line } => {
            return Err(Error::HostKeyRevoked {
                host: name,
                fingerprint: fp,
                file,
                line,
            })
        }
        Verdict::Changed { file, line } => {
            return Err(Error::HostKeyChanged {
                host: name,
                key_type,
                fingerprint: fp,
                file,
                line,
            })
        }
        Verdict::Unknown { other_types } => other_types,
    };
    let others = other_types
        .iter()
        .map(|(f, l, t)| format!("{t} at {}:{l}", f.display()))
        .collect::<Vec<_>>()
        .join(", ");
    let unknown = |why: &str| {
        let also = if others.is_empty() {
            String::new()
        } else {
            format!("; keys of other types are known for this host: {others}")
        };
        Error::HostKeyUnknown {
            host: name.clone(),
            key_type: key_type.clone(),
            fingerprint: fp.clone(),
            files: files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            why: format!("{why}{also}"),
        }
    };
    let learn = || -> crate::Result<()> {
        let Some(file) = policy.user_files.first() else {
            tracing::warn!(
                "no user known_hosts file: the {key_type} key {fp} of '{name}' is accepted \
                 but not recorded"
            );
            return Ok(());
        };
        append(file, &name, key, policy.hash_new_entries)?;
        tracing::info!(
            "Permanently added '{name}' ({key_type}) to the list of known hosts ({}).",
            file.display()
        );
        Ok(())
    };
    match policy.strict {
        StrictHostKeyChecking::Yes => Err(unknown("StrictHostKeyChecking=yes")),
        StrictHostKeyChecking::No => {
            tracing::warn!(
                "accepting the unknown {key_type} key {fp} of '{name}' without recording it \
                 (StrictHostKeyChecking=no)"
            );
            Ok(())
        }
        StrictHostKeyChecking::AcceptNew if others.is_empty() => learn(),
        StrictHostKeyChecking::AcceptNew => Err(unknown(
            "StrictHostKeyChecking=accept-new learns keys of new hosts only",
        )),
        StrictHostKeyChecking::Ask => {
            let established = if others.is_empty() {
                "."
            } else {
                "\nbut keys of different type are already known for this host."
            };
            let question = Confirm {
                question: format!(
                    "The authenticity of host '{name}' can't be established{established}\n\
                     {key_type} key fingerprint is {fp}.\n\
                     Are you sure you want to continue connecting (yes/no)? "
                ),
            };
            match prompter.confirm(&question).await {
                Ok(Some(true)) => learn(),
                Ok(Some(false)) => Err(unknown("you answered no")),
                Ok(None) => Err(unknown(
                    "StrictHostKeyChecking=ask and nobody can be asked (no TTY or BatchMode)",
                )),
                Err(e) => Err(unknown(&format!("the question could not be asked: {e}"))),
            }
        }
    }
}

#[cfg(test)]
#[path = "hostkey_tests.rs"]
mod tests;
