//! The OpenSSH `known_hosts` file format: reading the lines that apply to a name, and appending
//! one. What the lines *mean* for a connection is decided in [`super::hostkey`] (plain keys) and
//! `hostcert` (certificates).
//!
//! - A line is `[marker] patterns keytype base64 [comment]`, fields separated by spaces or tabs;
//!   blank lines and `#` comments are skipped, and so is a malformed line (logged at debug), as
//!   ssh does: a bad line is never an error. Markers are `@revoked` and `@cert-authority`.
//! - `patterns` is a comma list with `*` and `?` wildcards and `!negation` (a negated match makes
//!   the line not apply even when another pattern matches), or one hashed name `|1|salt|hmac`
//!   (HMAC-SHA1 keyed by the salt over the name). Names match case-insensitively: like ssh, the
//!   looked-up name is lowercased, and so is every name written.
//! - The name is `host` on port 22 and `[host]:port` otherwise; a `HostKeyAlias` replaces both.
//! - Files are read as regular files of at most `KNOWN_HOSTS_MAX` bytes (16 MiB; the
//!   crate's `files` module): a FIFO, `/dev/zero` or a directory is an error naming the file.
//! - Learned keys are appended (hashed with `HashKnownHosts`) to the first user file, created
//!   with mode 0600 in a 0700 directory when missing.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use russh::keys::ssh_key::PublicKey;
use sha1::Sha1;

use crate::files::{read_regular, KNOWN_HOSTS_MAX};
use crate::Error;

/// Start of a hashed name, `|1|base64(salt)|base64(hmac)`.
const HASH_MAGIC: &str = "|1|";
/// Bytes of salt in a hashed name: the SHA1 output size, which ssh requires.
const SALT_LEN: usize = 20;

/// The name looked up in known_hosts: `host` on port 22, otherwise `[host]:port`.
pub fn lookup_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// What a line says about its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Marker {
    /// A plain line: the host's key.
    None,
    /// `@revoked`: never accept this key, as a host key or as a CA.
    Revoked,
    /// `@cert-authority`: a CA trusted to sign host certificates for the patterns.
    CertAuthority,
}

/// The fields of one known_hosts line.
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

/// ssh's `match_pattern_list` on a host field (comma-separated, case-insensitive).
pub(crate) fn pattern_list_matches(patterns: &str, name: &str) -> bool {
    crate::glob::match_list(patterns.split(','), name, true)
}

/// One line of the files whose patterns match a name.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The file holding it.
    pub file: PathBuf,
    /// Its 1-based line number.
    pub line: usize,
    /// Its marker.
    pub marker: Marker,
    /// Its key (a host key, a revoked key or a CA key, after the marker).
    pub key: PublicKey,
}

/// The well-formed lines of `files` whose patterns match `name` (lowercase), in order. Missing
/// files are skipped; malformed lines are skipped and logged at debug; a file that exists but
/// is not a regular file, is larger than [`KNOWN_HOSTS_MAX`] or cannot be read is an
/// [`Error::Io`] naming it. Blocking: see [`matching_entries_async`].
pub(crate) fn matching_entries(files: &[PathBuf], name: &str) -> crate::Result<Vec<Entry>> {
    let mut found = Vec::new();
    for file in files {
        let bytes = match read_regular(file, KNOWN_HOSTS_MAX) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(format!("read {}", file.display()), e)),
        };
        for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let line = i + 1;
            match matching_entry(raw, name) {
                Ok(Some((marker, key))) => found.push(Entry {
                    file: file.clone(),
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

/// [`matching_entries`] on tokio's blocking pool, so that reading never holds up the runtime.
pub(crate) async fn matching_entries_async(
    files: Vec<PathBuf>,
    name: String,
) -> crate::Result<Vec<Entry>> {
    tokio::task::spawn_blocking(move || matching_entries(&files, &name))
        .await
        .map_err(|e| Error::io("read known_hosts", std::io::Error::other(e.to_string())))?
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
/// leading `!#@` or `|1|`) is refused with [`Error::Config`] rather than written. A file that is
/// not a regular file (a FIFO, a device) is refused without waiting on it.
pub fn append(file: &Path, name: &str, key: &PublicKey, hashed: bool) -> crate::Result<()> {
    if crate::files::is_dev_null(file) {
        // `UserKnownHostsFile=/dev/null`: nothing is recorded, as with ssh.
        return Ok(());
    }
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
            .ok_or_else(|| Error::Internal("HMAC-SHA1 refused a 20-byte salt".into()))?;
        let hash = mac.finalize().into_bytes();
        format!("{HASH_MAGIC}{}|{}", B64.encode(salt), B64.encode(hash))
    } else {
        name
    };
    // Without the key's comment: the line is `host type base64`.
    let key_text = PublicKey::new(key.key_data().clone(), "")
        .to_openssh()
        .map_err(|e| Error::Internal(format!("cannot encode the host key: {e}")))?;
    let io = |what: &str, e| Error::io(format!("{what} {}", file.display()), e);
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        crate::platform::files::owner_only_dir(&mut builder);
        builder
            .create(dir)
            .map_err(|e| Error::io(format!("create directory {}", dir.display()), e))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true).append(true).create(true);
    crate::platform::files::owner_only(&mut options);
    crate::platform::files::no_wait(&mut options);
    let mut f = options.open(file).map_err(|e| io("open", e))?;
    let meta = f.metadata().map_err(|e| io("stat", e))?;
    if !meta.is_file() {
        let e = std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file");
        return Err(io("append to", e));
    }
    let mut text = String::new();
    if meta.len() > 0 {
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
