//! The `.rdp` file given to Remote Desktop Connection (mstsc, Windows) and to Windows App
//! (macOS): where to connect, as whom when that is known, and to ask for the credentials.
//! Never a password: the client asks, and keeps what it saves in its own store.
//!
//! Encoding: UTF-16LE with a byte-order mark and CRLF line ends, as mstsc writes its own files.
//! mstsc also reads UTF-8, but a file without a BOM can be taken for the ANSI code page, which
//! would mangle a non-ASCII value; UTF-16LE with a BOM is the one form every Microsoft client
//! (mstsc, the macOS clients that open mstsc's files) reads the same way.

use super::OpenError;

/// The byte-order mark that opens a UTF-16LE file.
const UTF16LE_BOM: [u8; 2] = [0xFF, 0xFE];

/// The file's text: `full address`, `username` when `username` is given, `prompt for
/// credentials`; each line ends with CRLF. `host` is as [`super::endpoint`] gives it (IPv6 in
/// brackets). A value with a control character (a line break would add settings) is refused.
pub fn text(host: &str, port: u16, username: Option<&str>) -> Result<String, OpenError> {
    let mut lines = vec![format!("full address:s:{}:{port}", value(host)?)];
    if let Some(user) = username {
        lines.push(format!("username:s:{}", value(user)?));
    }
    lines.push("prompt for credentials:i:1".to_string());
    Ok(lines.iter().map(|l| format!("{l}\r\n")).collect())
}

/// [`text`] encoded as mstsc writes it: UTF-16LE after a byte-order mark.
pub fn contents(host: &str, port: u16, username: Option<&str>) -> Result<Vec<u8>, OpenError> {
    let text = text(host, port, username)?;
    let mut bytes = UTF16LE_BOM.to_vec();
    bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    Ok(bytes)
}

fn value(v: &str) -> Result<&str, OpenError> {
    if v.is_empty() || v.chars().any(char::is_control) {
        return Err(OpenError::RdpFileValue(v.to_string()));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_names_the_address_asks_for_credentials_and_holds_no_password() {
        let t = text("127.0.0.5", 3389, None).unwrap();
        assert_eq!(
            t,
            "full address:s:127.0.0.5:3389\r\nprompt for credentials:i:1\r\n"
        );
        assert!(!t.contains("username"), "{t}");
        let t = text("127.0.0.1", 40001, Some("CORP\\anna")).unwrap();
        assert_eq!(
            t,
            "full address:s:127.0.0.1:40001\r\nusername:s:CORP\\anna\r\n\
             prompt for credentials:i:1\r\n"
        );
        for t in [&t, &text("[::1]", 1, Some("x")).unwrap()] {
            assert!(!t.to_ascii_lowercase().contains("password"), "{t}");
            // Every line ends CRLF; no bare LF.
            assert_eq!(t.matches('\n').count(), t.matches("\r\n").count(), "{t}");
            assert!(t.ends_with("\r\n"), "{t}");
        }
    }

    #[test]
    fn an_ipv6_address_stays_in_brackets() {
        let t = text("[::1]", 13389, None).unwrap();
        assert!(t.starts_with("full address:s:[::1]:13389\r\n"), "{t}");
    }

    #[test]
    fn a_line_break_in_a_value_is_refused_not_written() {
        for bad in ["anna\r\nalternate shell:s:cmd", "a\nb", "a\tb", ""] {
            assert!(
                matches!(
                    text("127.0.0.1", 3389, Some(bad)),
                    Err(OpenError::RdpFileValue(_))
                ),
                "{bad:?}"
            );
        }
        assert!(text("127.0.0.1\r\nx", 3389, None).is_err());
    }

    #[test]
    fn the_bytes_are_utf16le_after_a_bom() {
        let bytes = contents("127.0.0.1", 3389, Some("Jörg")).unwrap();
        assert_eq!(&bytes[..2], &[0xFF, 0xFE]);
        assert_eq!(&bytes[2..6], &[b'f', 0, b'u', 0]);
        assert_eq!(bytes.len() % 2, 0);
        let units: Vec<u16> = bytes[2..]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let decoded = String::from_utf16(&units).unwrap();
        assert_eq!(decoded, text("127.0.0.1", 3389, Some("Jörg")).unwrap());
        assert!(decoded.contains("username:s:Jörg\r\n"), "{decoded}");
    }
}
