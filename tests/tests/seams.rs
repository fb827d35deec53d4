//! Guards the seams between our crates and their users (issue 25, "typed errors end to end"):
//! the sources of tunnelkit-core, tunnelkit-cli, tunnelkit-agent and tunnelkit-desktop (test
//! code left out) must have no public function or trait method whose signature holds a
//! `Result<_, String>`, and no decision taken on an error's text
//! (`e.0.starts_with("no forwards")`, `err.to_string().contains(..)`). A failure names each
//! offending `file:line`.
//!
//! The scan is plain text, on purpose simple: a `pub fn` / `pub async fn` (not `pub(crate)`,
//! `pub(super)`) or any `fn` inside a `pub trait` block is read up to its body or `;`, and every
//! `Result<A, B>` in it is split at its top-level comma; `B == String` fails. Test code is a
//! `*_tests.rs` / `tests.rs` file or an item under `#[cfg(test)]` (or `#[cfg(all(test, ..))]`),
//! which is skipped by counting braces. A `pub fn` in a private module counts as public: say
//! `pub(crate)` where that is what it is.

use std::path::{Path, PathBuf};

/// The crates whose sources are scanned, relative to the workspace root.
const CRATES: &[&str] = &[
    "tunnelkit-core/src",
    "tunnelkit-cli/src",
    "tunnelkit-agent/src",
    "tunnelkit-agent/desktop/src",
];
/// A signature is read over at most this many lines.
const MAX_SIGNATURE_LINES: usize = 40;
/// At most this many directory levels are walked.
const MAX_DEPTH: usize = 12;
/// What, written just before `.starts_with(` / `.contains(` / `.ends_with(`, is an error's text.
const ERROR_TEXT: &[&str] = &[
    ".0",
    "to_string()",
    "e",
    "err",
    "error",
    "message",
    "msg",
    "reason",
    "why",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn rust_files(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    assert!(depth < MAX_DEPTH, "{} is nested too deep", dir.display());
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, depth + 1, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn is_test_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name == "tests.rs" || name.ends_with("_tests.rs")
}

/// The lines of `text` that are not test code, with their 1-based numbers; `//` comments cut.
fn code_lines(text: &str) -> Vec<(usize, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if line.starts_with("#[cfg(") && line.contains("test") && !line.contains("not(test") {
            // Skip the attributes and the item after them; a `mod x;` line is one line, a block
            // runs to its closing brace.
            let mut j = i + 1;
            while j < lines.len() && lines[j].trim().starts_with("#[") {
                j += 1;
            }
            let mut depth = 0i64;
            let mut opened = false;
            while j < lines.len() {
                let l = strip_comment(lines[j]);
                depth += l.matches('{').count() as i64 - l.matches('}').count() as i64;
                opened |= l.contains('{');
                j += 1;
                if (opened && depth <= 0) || (!opened && l.trim_end().ends_with(';')) {
                    break;
                }
            }
            i = j;
            continue;
        }
        out.push((i + 1, strip_comment(lines[i]).to_string()));
        i += 1;
    }
    out
}

fn strip_comment(line: &str) -> &str {
    match line.find("//") {
        // Not inside a string literal (a URL): only when no quote comes before it.
        Some(k) if !line[..k].contains('"') => &line[..k],
        _ => line,
    }
}

/// Each `Result<A, B>` in `sig` whose `B` is `String`.
fn string_results(sig: &str) -> usize {
    let compact: String = sig.chars().filter(|c| !c.is_whitespace()).collect();
    let mut found = 0;
    let mut rest = compact.as_str();
    while let Some(k) = rest.find("Result<") {
        let args = &rest[k + "Result<".len()..];
        let (mut depth, mut comma, mut end) = (0i32, None, None);
        for (n, c) in args.char_indices() {
            match c {
                '<' | '(' | '[' => depth += 1,
                '>' if depth == 0 => {
                    end = Some(n);
                    break;
                }
                '>' | ')' | ']' => depth -= 1,
                ',' if depth == 0 => comma = Some(n),
                _ => {}
            }
        }
        if let (Some(c), Some(e)) = (comma, end) {
            if &args[c + 1..e] == "String" {
                found += 1;
            }
        }
        rest = args;
    }
    found
}

/// `file:line` of each public signature with a `Result<_, String>`.
fn string_error_signatures(path: &Path, lines: &[(usize, String)]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut depth = 0i64;
    // The brace depth inside which every `fn` belongs to a public trait.
    let mut pub_trait: Option<i64> = None;
    for (k, (n, line)) in lines.iter().enumerate() {
        let t = line.trim_start();
        if t.starts_with("pub trait ") {
            pub_trait = Some(depth + 1);
        }
        let in_trait = pub_trait == Some(depth);
        let is_fn = t.starts_with("pub fn ")
            || t.starts_with("pub async fn ")
            || t.starts_with("pub const fn ")
            || t.starts_with("pub unsafe fn ")
            || (in_trait && (t.starts_with("fn ") || t.starts_with("async fn ")));
        if is_fn {
            let mut sig = String::new();
            for (_, l) in lines[k..].iter().take(MAX_SIGNATURE_LINES) {
                let cut = l.find(['{', ';']);
                sig.push_str(&l[..cut.unwrap_or(l.len())]);
                sig.push(' ');
                if cut.is_some() {
                    break;
                }
            }
            if string_results(&sig) > 0 {
                hits.push(format!("{}:{n}: {}", path.display(), t.trim_end()));
            }
        }
        depth += line.matches('{').count() as i64 - line.matches('}').count() as i64;
        if pub_trait.is_some_and(|d| depth < d) {
            pub_trait = None;
        }
    }
    hits
}

/// `file:line` of each test of an error's text (`.starts_with(`, `.contains(`, `.ends_with(`).
fn text_decisions(path: &Path, lines: &[(usize, String)]) -> Vec<String> {
    let mut hits = Vec::new();
    for (n, line) in lines {
        for call in [".starts_with(", ".contains(", ".ends_with("] {
            let mut rest = line.as_str();
            while let Some(k) = rest.find(call) {
                let before = &rest[..k];
                let receiver = before
                    .rsplit(|c: char| {
                        !(c.is_alphanumeric() || c == '_' || c == '.' || c == '(' || c == ')')
                    })
                    .next()
                    .unwrap_or("");
                if ERROR_TEXT.iter().any(|w| {
                    receiver == *w
                        || (w.starts_with('.') || w.ends_with(')')) && receiver.ends_with(w)
                }) {
                    hits.push(format!("{}:{n}: {}", path.display(), line.trim()));
                }
                rest = &rest[k + call.len()..];
            }
        }
    }
    hits
}

fn scan() -> (Vec<String>, Vec<String>) {
    let root = root();
    let (mut signatures, mut decisions) = (Vec::new(), Vec::new());
    for dir in CRATES {
        let mut files = Vec::new();
        rust_files(&root.join(dir), 0, &mut files);
        assert!(!files.is_empty(), "no sources under {dir}");
        for f in files.iter().filter(|f| !is_test_file(f)) {
            let text =
                std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            let lines = code_lines(&text);
            let shown = f.strip_prefix(&root).unwrap_or(f);
            signatures.extend(string_error_signatures(shown, &lines));
            decisions.extend(text_decisions(shown, &lines));
        }
    }
    (signatures, decisions)
}

#[test]
fn no_public_signature_has_a_string_error() {
    let (signatures, _) = scan();
    assert!(
        signatures.is_empty(),
        "public signatures with Result<_, String> (give them a typed error):\n{}",
        signatures.join("\n")
    );
}

#[test]
fn no_decision_is_taken_on_an_error_text() {
    let (_, decisions) = scan();
    assert!(
        decisions.is_empty(),
        "decisions on an error's text (decide on its type or variant):\n{}",
        decisions.join("\n")
    );
}

/// The scanner itself finds what it must find, and leaves what it must leave.
#[test]
fn the_scanner_sees_what_it_guards() {
    let p = Path::new("x.rs");
    let src = "\
pub fn a() -> Result<u8, String> {}
pub(crate) fn b() -> Result<u8, String> {}
pub fn c() -> Result<HashMap<String, String>> {}
pub fn d(\n    r: Result<Duration, String>,\n) {}
pub trait T {
    fn e(&self) -> Result<Option<u8>, String>;
    async fn f(&self) -> Result<(), Error>;
}
fn g() -> Result<u8, String> {}
fn h(e: UsageError) { if e.0.starts_with(\"no forwards\") {} }
fn i(e: Error) { if e.to_string().contains(\"refused\") {} }
fn j(name: &str) { if name.starts_with(\"tunnelkit\") {} }
#[cfg(test)]
mod tests {
    pub fn k() -> Result<u8, String> {}
    fn l(e: E) { assert!(e.0.contains(\"x\")); }
}
pub fn m() -> Result<u8, String> {}
#[cfg(all(test, unix))]
mod unix_tests {
    pub fn n() -> Result<u8, String> {}
}
";
    let lines = code_lines(src);
    let sigs = string_error_signatures(p, &lines);
    let lines_of = |hits: &[String]| -> Vec<String> {
        hits.iter()
            .map(|h| h.split(':').nth(1).unwrap_or("").to_string())
            .collect()
    };
    // a, d (an argument), e (a public trait's method), m (after the test module).
    assert_eq!(lines_of(&sigs), ["1", "4", "8", "20"], "{sigs:#?}");
    let decisions = text_decisions(p, &lines);
    assert_eq!(lines_of(&decisions), ["12", "13"], "{decisions:#?}");
}
