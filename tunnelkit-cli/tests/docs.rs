//! The README and the user guide stay honest: every relative link in `README.md` and
//! `docs/*.md` points to a file that exists (and its `#anchor` to a heading there), and every
//! `tunnelkit ...` command line in their shell examples parses with the binary's own argument
//! parser (`tunnelkit_cli::Opts`, which `main.rs` calls), so a renamed or mistyped flag or
//! subcommand fails here with its file and line.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use clap::Parser;
use tunnelkit_cli::opts::{similar_subcommand, Opts};

/// The README, as the issue asks: a front door, not the archive.
const README_MAX_LINES: usize = 250;

/// Languages of fenced blocks whose lines are shell commands.
const SHELL: &[&str] = &["sh", "shell", "bash", "zsh", "console"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| panic!("tunnelkit-cli has a parent directory"))
}

/// `README.md` and every `docs/*.md`, sorted.
fn guide_files(root: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap_or_else(|e| panic!("docs/: {e}"))
        .map(|e| e.unwrap_or_else(|e| panic!("docs/: {e}")).path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    files.sort();
    files.insert(0, root.join("README.md"));
    files
}

/// Each guide file: its path, its name as a message shows it (relative to the repository), its
/// text.
fn guide(root: &Path) -> Vec<(PathBuf, String, String)> {
    guide_files(root)
        .into_iter()
        .map(|file| {
            let name = file
                .strip_prefix(root)
                .unwrap_or(&file)
                .display()
                .to_string();
            let text = read(&file);
            (file, name, text)
        })
        .collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One line of a Markdown file: its number (from 1), its text, and the language of the fenced
/// block it is in (`None` outside blocks; the fence lines themselves count as inside).
struct Line<'a> {
    number: usize,
    text: &'a str,
    block: Option<&'a str>,
}

fn lines(text: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    let mut block: Option<&str> = None;
    for (i, t) in text.lines().enumerate() {
        let fence = t.trim_start().strip_prefix("```");
        let lang = match (fence, block) {
            (Some(_), Some(lang)) => {
                block = None;
                Some(lang)
            }
            (Some(info), None) => {
                let lang = info.split_whitespace().next().unwrap_or("");
                block = Some(lang);
                Some(lang)
            }
            (None, b) => b,
        };
        out.push(Line {
            number: i + 1,
            text: t,
            block: lang,
        });
    }
    out
}

/// GitHub's anchor for a heading: lowercase, letters, digits, `-` and `_` kept, spaces become
/// `-`, everything else dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a file's headings (outside fenced blocks), with GitHub's `-1`, `-2` for
/// repeated ones.
fn anchors(text: &str) -> HashSet<String> {
    let mut seen = HashSet::new();
    for line in lines(text).iter().filter(|l| l.block.is_none()) {
        let hashes = line.text.chars().take_while(|&c| c == '#').count();
        let Some(title) = line.text[hashes..].strip_prefix(' ') else {
            continue;
        };
        if !(1..=6).contains(&hashes) {
            continue;
        }
        let base = slug(title.trim_end_matches('#'));
        let mut anchor = base.clone();
        let mut n = 0;
        while !seen.insert(anchor.clone()) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
    }
    seen
}

/// A line's text with inline code spans removed, so that `[[forward]]` and the like are not
/// taken for links.
fn without_code_spans(text: &str) -> String {
    text.split('`').step_by(2).collect::<Vec<_>>().join(" ")
}

/// The targets of a line's inline links and images, `[text](target)`.
fn link_targets(text: &str) -> Vec<String> {
    let text = without_code_spans(text);
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        let end = rest.find(')').unwrap_or(rest.len());
        let target = rest[..end].split_whitespace().next().unwrap_or("");
        out.push(target.to_string());
        rest = &rest[end..];
    }
    out
}

/// What is wrong with the relative links of `file` (named `name` in messages).
fn check_links(file: &Path, name: &str, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let dir = file.parent().unwrap_or(Path::new("."));
    for line in lines(text).iter().filter(|l| l.block.is_none()) {
        for target in link_targets(line.text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((p, a)) => (p, Some(a)),
                None => (target.as_str(), None),
            };
            let resolved = if path.is_empty() {
                file.to_path_buf()
            } else {
                dir.join(path)
            };
            if !resolved.exists() {
                problems.push(format!(
                    "{name}:{}: link to {target}: no such file",
                    line.number
                ));
                continue;
            }
            let Some(anchor) = anchor else { continue };
            if resolved.extension().is_some_and(|x| x == "md")
                && !anchors(&read(&resolved)).contains(anchor)
            {
                problems.push(format!(
                    "{name}:{}: link to {target}: no heading with that anchor",
                    line.number
                ));
            }
        }
    }
    problems
}

/// The logical lines of a file's shell blocks (a trailing `\` joins the next line), each with
/// the number of its first line; a `$ ` prompt is dropped.
fn shell_lines(text: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for line in lines(text) {
        let Some(lang) = line.block else { continue };
        if !SHELL.contains(&lang) || line.text.trim_start().starts_with("```") {
            continue;
        }
        let (start, mut joined) = pending.take().unwrap_or((line.number, String::new()));
        let t = line.text.trim();
        let t = t.strip_prefix("$ ").unwrap_or(t);
        match t.strip_suffix('\\') {
            Some(head) => {
                joined.push_str(head);
                joined.push(' ');
                pending = Some((start, joined));
            }
            None => {
                joined.push_str(t);
                out.push((start, joined));
            }
        }
    }
    out.extend(pending);
    out
}

/// Does this word end a command's arguments (an operator or a redirection)?
fn ends_arguments(word: &str) -> bool {
    matches!(word, "&&" | "||" | "|" | ";" | "&")
        || word.starts_with('>')
        || word.starts_with('<')
        || word.starts_with("2>")
        || word.starts_with("&>")
}

/// The `tunnelkit` invocations of one shell line: `tunnelkit ARGS` and `cargo run ... -p
/// tunnelkit-cli -- ARGS`, each as its arguments (without the program name).
fn invocations(words: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut segment: Vec<String> = Vec::new();
    let mut segments = Vec::new();
    let mut cut = false;
    for w in words {
        if matches!(w.as_str(), "&&" | "||" | "|" | ";" | "&") {
            segments.push(std::mem::take(&mut segment));
            cut = false;
        } else if cut || ends_arguments(w) {
            cut = true;
        } else {
            segment.push(w.clone());
        }
    }
    segments.push(segment);
    for s in segments {
        match s.first().map(String::as_str) {
            Some("tunnelkit") => out.push(s[1..].to_vec()),
            Some("cargo") if s.get(1).is_some_and(|w| w == "run") => {
                let is_cli = s
                    .windows(2)
                    .any(|p| p[0] == "-p" && p[1] == "tunnelkit-cli");
                if let (true, Some(dash)) = (is_cli, s.iter().position(|w| w == "--")) {
                    out.push(s[dash + 1..].to_vec());
                }
            }
            _ => {}
        }
    }
    out
}

/// Why the real parser refuses `args` (or takes a mistyped subcommand for a destination).
fn parse_problem(args: &[String]) -> Option<String> {
    let argv = std::iter::once("tunnelkit".to_string()).chain(args.iter().cloned());
    match Opts::try_parse_from(argv) {
        Err(e) if e.use_stderr() => Some(e.render().to_string().lines().next()?.to_string()),
        Err(_) => None, // --help, --version
        Ok(o) => {
            let d = o
                .ssh
                .destination
                .as_deref()
                .filter(|_| o.command.is_none())?;
            let bare =
                o.ssh.local.is_empty() && o.ssh.dynamic.is_empty() && o.ssh.remote.is_empty();
            let cmd = similar_subcommand(d).filter(|_| bare)?;
            Some(format!("`{d}` is not a subcommand (did you mean `{cmd}`?)"))
        }
    }
}

/// What is wrong with the `tunnelkit` command lines of a file; also how many there are.
fn check_commands(name: &str, text: &str) -> (Vec<String>, usize) {
    let mut problems = Vec::new();
    let mut count = 0;
    for (number, line) in shell_lines(text) {
        let Some(words) = shlex::split(&line) else {
            problems.push(format!(
                "{name}:{number}: cannot split as a shell would: {line}"
            ));
            continue;
        };
        for args in invocations(&words) {
            count += 1;
            if let Some(why) = parse_problem(&args) {
                problems.push(format!(
                    "{name}:{number}: `tunnelkit {}`: {why}",
                    args.join(" ")
                ));
            }
        }
    }
    (problems, count)
}

#[test]
fn every_relative_link_in_the_readme_and_the_guide_resolves() {
    let root = root();
    let mut problems = Vec::new();
    let mut links = 0;
    for (file, name, text) in guide(&root) {
        links += lines(&text)
            .iter()
            .filter(|l| l.block.is_none())
            .map(|l| link_targets(l.text).len())
            .sum::<usize>();
        problems.extend(check_links(&file, &name, &text));
    }
    assert!(links >= 50, "only {links} links found: is the scan broken?");
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_tunnelkit_command_in_the_readme_and_the_guide_parses() {
    let root = root();
    let mut problems = Vec::new();
    let mut total = 0;
    for (_, name, text) in guide(&root) {
        let (p, n) = check_commands(&name, &text);
        problems.extend(p);
        total += n;
    }
    println!("{total} tunnelkit command lines checked");
    assert!(
        total >= 30,
        "only {total} command lines found: is the scan broken?"
    );
    assert!(
        problems.is_empty(),
        "command lines the parser refuses:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_readme_is_a_front_door() {
    let n = read(&root().join("README.md")).lines().count();
    assert!(
        n <= README_MAX_LINES,
        "README.md has {n} lines (at most {README_MAX_LINES}): move detail to docs/"
    );
}

/// The checks themselves can fail: a mistyped flag, an unknown subcommand, a subcommand typo
/// that would otherwise be taken for a destination, a broken link and a missing anchor.
#[test]
fn the_checks_catch_typos_and_broken_links() {
    let doc = "\
# Title

```sh
tunnelkit -N -L 13389:winserver:3389 admin@bastion.example.com   # fine
tunnelkit -N --failbak 60 admin@bastion.example.com
tunnelkit status --jsn
sudo true && tunnelkit stauts
tunnelkit up NAME \\
    --no-such-flag
cargo run --release -p tunnelkit-cli -- demo --bogus
```

[fine](#title) [gone](no-such-page.md) [no anchor](#nowhere)
";
    let (problems, count) = check_commands("doc.md", doc);
    assert_eq!(count, 6, "{problems:?}");
    let lines: Vec<&str> = problems
        .iter()
        .map(|p| p.split(": ").next().unwrap_or(""))
        .collect();
    assert_eq!(
        lines,
        ["doc.md:5", "doc.md:6", "doc.md:7", "doc.md:8", "doc.md:10"],
        "{problems:#?}"
    );
    assert!(problems[0].contains("--failbak"), "{problems:#?}");
    assert!(
        problems[2].contains("did you mean `status`"),
        "{problems:#?}"
    );

    let dir = tempfile_dir();
    let file = dir.join("doc.md");
    std::fs::write(&file, doc).unwrap_or_else(|e| panic!("{e}"));
    let links = check_links(&file, "doc.md", doc);
    assert_eq!(links.len(), 2, "{links:#?}");
    assert!(links[0].starts_with("doc.md:13: link to no-such-page.md: no such file"));
    assert!(links[1].starts_with("doc.md:13: link to #nowhere: no heading"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fresh directory of this test's own under the target directory's tmp.
fn tempfile_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("docs-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}
