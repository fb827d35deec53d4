//! `tunnelkit completions bash|zsh|fish`: the shell's completion script. The script asks the
//! binary itself what fits (clap_complete's `CompleteEnv`: the shell runs
//! `TUNNELKIT_COMPLETE=bash tunnelkit -- WORDS...`), so subcommands, flags and their values come
//! from the same clap definition that parses them, and profile names (for `up`, `down`, `open`,
//! `logs`) are looked up when TAB is pressed: from the agent when it answers, and from the
//! profiles directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::CommandFactory;
use clap_complete::env::{Bash, EnvCompleter, Fish, Zsh};
use clap_complete::{CompleteEnv, CompletionCandidate};
use tokio_util::sync::CancellationToken;
use tunnelkit_agent::client::request;
use tunnelkit_agent::paths::{profiles_dir, socket_path};
use tunnelkit_agent::protocol::{Request, Response};

use crate::exit::Exit;
use crate::opts::{CompletionsArgs, Opts, Shell};

/// The variable that tells the binary a shell asks for completions (not clap's default
/// `COMPLETE`, which other programs use too).
pub const COMPLETE_VAR: &str = "TUNNELKIT_COMPLETE";

/// How long TAB waits for the agent's list of profiles before using the directory alone.
const AGENT_DEADLINE: Duration = Duration::from_millis(500);

/// If a shell is asking for completions ([`COMPLETE_VAR`] set), answers and exits; otherwise
/// returns at once. Called first thing in `main`, before anything is written to stdout.
pub fn complete_from_env() {
    CompleteEnv::with_factory(Opts::command)
        .var(COMPLETE_VAR)
        .complete();
}

/// Prints the completion script for `args.shell`.
pub fn run(args: &CompletionsArgs) -> Exit {
    let shell: &dyn EnvCompleter = match args.shell {
        Shell::Bash => &Bash,
        Shell::Zsh => &Zsh,
        Shell::Fish => &Fish,
    };
    let mut script = Vec::new();
    let written = shell.write_registration(
        COMPLETE_VAR,
        "tunnelkit",
        "tunnelkit",
        &completer(std::env::args_os().next().map(PathBuf::from)),
        &mut script,
    );
    match written.and_then(|()| std::io::Write::write_all(&mut std::io::stdout(), &script)) {
        Ok(()) => Exit::Success,
        Err(e) => {
            eprintln!("tunnelkit completions: {e}");
            Exit::Failure
        }
    }
}

/// The program the script runs at each TAB: `tunnelkit` when this one was found on PATH, else
/// the absolute path it was started by (`./target/debug/tunnelkit`).
fn completer(argv0: Option<PathBuf>) -> String {
    match argv0 {
        Some(p) if p.components().count() > 1 => std::path::absolute(&p)
            .unwrap_or(p)
            .to_string_lossy()
            .into_owned(),
        _ => "tunnelkit".to_string(),
    }
}

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

/// Profile names in `dir`: the stems of its `*.toml` files, hidden files left out.
pub fn profile_files(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".toml")?;
            (!stem.is_empty() && !stem.starts_with('.')).then(|| stem.to_string())
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
                (p.name, help)
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_calls_the_binary_by_name_or_by_absolute_path() {
        assert_eq!(completer(Some("tunnelkit".into())), "tunnelkit");
        assert_eq!(completer(None), "tunnelkit");
        let p = completer(Some("./target/debug/tunnelkit".into()));
        assert!(
            p.starts_with('/') && p.ends_with("target/debug/tunnelkit"),
            "{p}"
        );
    }

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
        assert_eq!(profile_files(d.path()), ["db", "web"]);
        assert!(profile_files(&d.path().join("missing")).is_empty());
    }
}
