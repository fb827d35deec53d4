//! `tunnelkit completions bash|zsh|fish`: the shell's completion script. The script asks the
//! binary itself what fits (clap_complete's `CompleteEnv`: the shell runs
//! `TUNNELKIT_COMPLETE=bash tunnelkit -- WORDS...`), so subcommands, flags and their values come
//! from the same clap definition that parses them, and profile names (for `up`, `down`, `open`,
//! `logs`) are looked up when TAB is pressed: from the agent when it answers, and from the
//! profiles directory ([`candidates`](crate::candidates)).

use std::path::PathBuf;

use clap::CommandFactory;
use clap_complete::env::{Bash, EnvCompleter, Fish, Zsh};
use clap_complete::CompleteEnv;

use crate::exit::Exit;
use crate::opts::{CompletionsArgs, Opts, Shell};

/// The variable that tells the binary a shell asks for completions (not clap's default
/// `COMPLETE`, which other programs use too).
pub const COMPLETE_VAR: &str = "TUNNELKIT_COMPLETE";

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_calls_the_binary_by_name_or_by_absolute_path() {
        assert_eq!(completer(Some("tunnelkit".into())), "tunnelkit");
        assert_eq!(completer(None), "tunnelkit");
        let p = completer(Some("./target/debug/tunnelkit".into()));
        let path = std::path::Path::new(&p);
        assert!(
            path.is_absolute() && path.ends_with("target/debug/tunnelkit"),
            "{p}"
        );
    }
}
