//! Splitting ssh_config lines as OpenSSH does: `Keyword [=] args`, keywords case-insensitive,
//! `#` comments, double-quoted arguments, and host pattern matching (`*`, `?`, `!negation`,
//! comma lists).

/// One meaningful line: the keyword (as written) and its arguments, quotes removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Keyword as written.
    pub key: String,
    /// Arguments.
    pub args: Vec<String>,
    /// The rest of the line after the keyword and its separator, as written (quotes kept):
    /// what OpenSSH takes for `ProxyCommand`.
    pub raw: String,
}

/// Splits a line. `Ok(None)` for blank lines and comments; `Err` with a reason for an unclosed
/// quote or a keyword without arguments.
pub(super) fn split_line(text: &str) -> Result<Option<Line>, String> {
    let t = text.trim();
    if t.is_empty() || t.starts_with('#') {
        return Ok(None);
    }
    let end = t
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(t.len());
    let key = t[..end].to_string();
    let mut rest = t[end..].trim_start();
    // OpenSSH takes a ProxyCommand as the rest of the line past any white space and '='.
    let raw = rest
        .trim_start_matches(|c: char| c.is_whitespace() || c == '=')
        .to_string();
    // One '=' may separate keyword and value, with optional white space around it.
    if let Some(r) = rest.strip_prefix('=') {
        rest = r.trim_start();
    }
    let args = split_args(rest)?;
    if args.is_empty() {
        return Err(format!("{key}: missing argument"));
    }
    Ok(Some(Line { key, args, raw }))
}

/// Splits arguments on white space, honouring double quotes; a `#` outside quotes at the start
/// of an argument ends the line.
pub(super) fn split_args(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_arg = false;
    let mut quoted = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                in_arg = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_arg {
                    out.push(std::mem::take(&mut cur));
                    in_arg = false;
                }
            }
            '#' if !quoted && !in_arg => break,
            '\\' if quoted => {
                // \" inside quotes is a literal quote, as in OpenSSH's argv_split.
                match chars.next() {
                    Some('"') => cur.push('"'),
                    Some(other) => {
                        cur.push('\\');
                        cur.push(other);
                    }
                    None => cur.push('\\'),
                }
                in_arg = true;
            }
            c => {
                cur.push(c);
                in_arg = true;
            }
        }
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    if in_arg {
        out.push(cur);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let l = split_line("  HostName=10.0.0.1").unwrap().unwrap();
        assert_eq!(
            (l.key.as_str(), l.args.clone()),
            ("HostName", vec!["10.0.0.1".to_string()])
        );
        let l = split_line("IdentityFile \"/path with/space\" # comment")
            .unwrap()
            .unwrap();
        assert_eq!(l.args, vec!["/path with/space".to_string()]);
        let l = split_line("user = alice").unwrap().unwrap();
        assert_eq!(l.args, vec!["alice".to_string()]);
        let l = split_line("Host a b\tc").unwrap().unwrap();
        assert_eq!(l.args.len(), 3);
        assert_eq!(split_line("   # x").unwrap(), None);
        assert_eq!(split_line("").unwrap(), None);
        assert!(split_line("User").unwrap_err().contains("missing argument"));
        assert!(split_line("User \"x").unwrap_err().contains("unterminated"));
    }
}
