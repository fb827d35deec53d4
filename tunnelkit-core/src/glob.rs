//! OpenSSH's patterns (`match.c`): `*` matches any run of bytes, `?` exactly one byte, and a
//! pattern list is a set of patterns where a `!`-negated match vetoes. One implementation for
//! ssh_config (`Host`, `Match`) and known_hosts, on bytes as OpenSSH does, so that both agree on
//! every name, ASCII or not. Case folding, where OpenSSH does it (host names), is ASCII only,
//! like C's `tolower` in the C locale.

/// Whether `pattern` matches all of `text`. `fold` compares ASCII letters case-insensitively.
pub fn glob(pattern: &str, text: &str, fold: bool) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let eq = |a: u8, b: u8| {
        if fold {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut pi, mut ti) = (0usize, 0usize);
    // Where the last `*` was, and the text position it is currently matched up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == b'?' || eq(c, t[ti]) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    star = Some((sp, st + 1));
                    pi = sp + 1;
                    ti = st + 1;
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// OpenSSH's `match_pattern_list`: true when some pattern matches and no negated one does (a
/// lone negation matches nothing).
pub fn match_list<'a>(patterns: impl IntoIterator<Item = &'a str>, text: &str, fold: bool) -> bool {
    let mut matched = false;
    for p in patterns {
        if let Some(neg) = p.strip_prefix('!') {
            if glob(neg, text, fold) {
                return false;
            }
        } else if glob(p, text, fold) {
            matched = true;
        }
    }
    matched
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(glob("*.ex?mple", "a.b.example", false));
        assert!(glob("a*b*c", "axbyc", false) && !glob("a*b*c", "axby", false));
        assert!(glob("*", "", false) && !glob("?", "", false));
        assert!(glob("web?", "web1", false) && !glob("web?", "web12", false));
    }

    #[test]
    fn folding_is_ascii_only_as_in_openssh() {
        assert!(glob("*.example.com", "a.EXAMPLE.com", true));
        assert!(!glob("*.example.com", "a.EXAMPLE.com", false));
        // No Unicode case folding: C's tolower leaves these bytes alone.
        assert!(!glob("ä.corp", "Ä.corp", true));
    }

    #[test]
    fn question_mark_is_one_byte_as_in_openssh() {
        // "é" is two bytes in UTF-8: ssh's `?` matches one of them, so it takes `??`.
        assert!(!glob("caf?", "café", false));
        assert!(glob("caf??", "café", false));
        assert!(glob("caf*", "café", true));
    }

    #[test]
    fn lists_and_negation() {
        assert!(match_list(["*.corp", "!secret.corp"], "www.corp", false));
        assert!(!match_list(
            ["*.corp", "!secret.corp"],
            "secret.corp",
            false
        ));
        assert!(
            !match_list(["!secret.corp"], "other", false),
            "a lone negation matches nothing"
        );
    }
}
