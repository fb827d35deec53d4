//! Profile names for completion (what TAB offers after `up`, `down`, `open`, `logs`): the
//! running agent's profiles, with their state and description, and the `*.toml` files of the
//! default profiles directory. Used by the argument definitions in [`opts`](crate::opts).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use clap_complete::CompletionCandidate;
use tokio_util::sync::CancellationToken;
use tunnelkit_agent::client::request;
use tunnelkit_agent::paths::{profiles_dir, socket_path};
use tunnelkit_agent::protocol::{Request, Response};
use tunnelkit_agent::scan::safe_name;

/// How long TAB waits for the agent's list of profiles before using the directory alone.
const AGENT_DEADLINE: Duration = Duration::from_millis(500);

/// The profile names TAB offers: the agent's (with state and description as help), and the
/// `*.toml` files of the default profiles directory.
pub fn profile_candidates() -> Vec<CompletionCandidate> {
    let mut names: BTreeMap<String, Option<String>> = BTreeMap::new();
    for name in profile_files(&profiles_dir(None)) {
        names.insert(name, None);
    }
    for (name, help) in agent_profiles() {
        names.insert(name, Some(help));
    }
    names
        .into_iter()
        .map(|(name, help)| CompletionCandidate::new(name).help(help.map(Into::into)))
        .collect()
}

/// Profile names in `dir`: the stems of its `*.toml` files, hidden files left out; a control
/// or invisible character escaped as the agent lists it (one candidate per line, whatever
/// the file name holds).
pub fn profile_files(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".toml")?;
            (!stem.is_empty() && !stem.starts_with('.')).then(|| safe_name(stem))
        })
        .collect();
    names.sort();
    names
}

/// `(name, "state: description")` of every profile the agent at the default socket knows;
/// nothing if it does not answer within [`AGENT_DEADLINE`].
fn agent_profiles() -> Vec<(String, String)> {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return Vec::new();
    };
    let path = socket_path(None);
    let asked = runtime.block_on(async {
        let cancel = CancellationToken::new();
        let mut quiet = |_: &str| {};
        tokio::time::timeout(
            AGENT_DEADLINE,
            request(&path, &Request::Status, None, &mut quiet, &cancel),
        )
        .await
    });
    match asked {
        Ok(Ok(Response::Status { profiles })) => profiles
            .into_iter()
            .map(|p| {
                let help = if p.description.is_empty() {
                    p.state.to_string()
                } else {
                    format!("{}: {}", p.state, p.description)
                };
                (safe_name(&p.name), safe_name(&help))
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_files_are_toml_stems_without_hidden_files() {
        let d = tempfile::tempdir().unwrap();
        for f in [
            "web.toml",
            "db.toml",
            ".web.tmp",
            ".hidden.toml",
            "notes.txt",
        ] {
            std::fs::write(d.path().join(f), "").unwrap();
        }
        // A line break in a file name (which Windows does not allow) is shown escaped.
        let odd = !cfg!(windows);
        if odd {
            std::fs::write(d.path().join("two\nlines.toml"), "").unwrap();
        }
        let expected: &[&str] = if odd {
            &["db", "two\\nlines", "web"]
        } else {
            &["db", "web"]
        };
        assert_eq!(profile_files(d.path()), expected);
        assert!(profile_files(&d.path().join("missing")).is_empty());
    }
}
