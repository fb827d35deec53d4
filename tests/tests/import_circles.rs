//! No two files of our crates import each other, directly or around a longer circle: a reader
//! can learn a file from the files it names, without meeting it again on the way. Counted per
//! file: a path such as `crate::a::b::Item` or `super::b::Item` is an edge to the deepest file
//! it names (`a/b.rs` or `a/b/mod.rs`); a module and the modules inside it (its parent chain)
//! are one tree and do not count.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

/// Every `.rs` file under `src`, by module path (`lib.rs`/`main.rs`: the root, `mod.rs`: its
/// directory).
fn modules(src: &Path) -> BTreeMap<Module, PathBuf> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    for _ in 0..10_000 {
        let Some(dir) = dirs.pop() else { break };
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut m: Module = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if m.last().is_some_and(|l| l == "mod") {
                m.pop();
            }
            if m == ["lib"] || m == ["main"] {
                m.clear();
            }
            out.insert(m, path);
        }
    }
    out
}

/// Code without `//` comments (doc links name modules without importing them).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths that start with `crate::`, `super::` or `self::` in `text`.
fn paths(text: &str) -> Vec<Vec<String>> {
    let bytes = text.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !word(bytes[i]) || (i > 0 && (word(bytes[i - 1]) || bytes[i - 1] == b':')) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && (word(bytes[i]) || text[i..].starts_with("::")) {
            i += if bytes[i] == b':' { 2 } else { 1 };
        }
        let parts: Vec<String> = text[start..i]
            .split("::")
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect();
        if parts.len() > 1 && matches!(parts[0].as_str(), "crate" | "super" | "self") {
            out.push(parts);
        }
    }
    out
}

/// The deepest file that `path`, written in module `from`, names.
fn target(mods: &BTreeMap<Module, PathBuf>, from: &Module, path: &[String]) -> Option<Module> {
    let mut t: Module = if path[0] == "crate" {
        Vec::new()
    } else {
        from.clone()
    };
    for p in &path[usize::from(path[0] == "crate")..] {
        match p.as_str() {
            "super" => {
                t.pop();
            }
            "self" => {}
            _ => t.push(p.clone()),
        }
    }
    (0..=t.len())
        .rev()
        .map(|k| t[..k].to_vec())
        .find(|m| mods.contains_key(m))
}

/// The circles among `edges` (strongly connected groups of more than one file), each sorted.
fn circles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    let reach = |from: &Module| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        for _ in 0..100_000 {
            let Some(m) = todo.pop() else { break };
            for n in &edges[&m] {
                if seen.insert(n.clone()) {
                    todo.push(n.clone());
                }
            }
        }
        seen
    };
    let reached: BTreeMap<&Module, BTreeSet<Module>> =
        edges.keys().map(|m| (m, reach(m))).collect();
    let mut found: BTreeSet<Vec<Module>> = BTreeSet::new();
    for (m, r) in &reached {
        let group: Vec<Module> = r
            .iter()
            .filter(|n| reached[n].contains(*m))
            .cloned()
            .collect();
        if group.len() > 1 {
            found.insert(group);
        }
    }
    found.into_iter().collect()
}

fn crate_circles(src: &Path) -> Vec<String> {
    let mods = modules(src);
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (m, file) in &mods {
        let text = code(&std::fs::read_to_string(file).unwrap());
        let set = edges.entry(m.clone()).or_default();
        for p in paths(&text) {
            let Some(t) = target(&mods, m, &p) else {
                continue;
            };
            // A module and its parent chain are one tree.
            if t.starts_with(m) || m.starts_with(&t) {
                continue;
            }
            set.insert(t);
        }
    }
    circles(&edges)
        .into_iter()
        .map(|g| {
            g.iter()
                .map(|m| mods[m].display().to_string())
                .collect::<Vec<_>>()
                .join(" <-> ")
        })
        .collect()
}

#[test]
fn no_two_files_of_our_crates_import_each_other() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut all = Vec::new();
    for krate in [
        "tunnelkit-core",
        "tunnelkit-cli",
        "tunnelkit-agent",
        "tunnelkit-agent/desktop",
    ] {
        all.extend(crate_circles(&root.join(krate).join("src")));
    }
    assert!(all.is_empty(), "import circles:\n{}", all.join("\n"));
}

#[test]
fn a_circle_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir(src.join("a")).unwrap();
    std::fs::write(
        src.join("lib.rs"),
        "mod a;\nmod b;\nuse a::x::Y; // crate::b\n",
    )
    .unwrap();
    std::fs::write(src.join("a/mod.rs"), "mod x;\nuse super::b::Z;\n").unwrap();
    std::fs::write(src.join("a/x.rs"), "pub struct Y;\nuse crate::b::Z;\n").unwrap();
    std::fs::write(
        src.join("b.rs"),
        "pub struct Z;\n/// [`crate::a`]\nfn f() {}\n",
    )
    .unwrap();
    // Parent and child use each other, a comment names `b`: no circle yet.
    assert_eq!(crate_circles(src), Vec::<String>::new());
    std::fs::write(src.join("b.rs"), "pub struct Z(crate::a::x::Y);\n").unwrap();
    let found = crate_circles(src);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("a/x.rs") && found[0].contains("b.rs") && !found[0].contains("mod.rs"),
        "{found:?}"
    );
}
