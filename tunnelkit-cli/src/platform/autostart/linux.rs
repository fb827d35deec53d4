//! Linux (and other Unix but macOS): a systemd user unit in
//! `$XDG_CONFIG_HOME/systemd/user/tunnelkit-agent.service`, enabled and started with
//! `systemctl --user` when a user manager answers.

use std::path::{Path, PathBuf};

use super::content::{self, UNIT_NAME};
use super::{
    read_file, remove_file, run, same_program, write_file, Activation, AutostartError, Found,
    Installed, Plan, Removed, Status, ToolError,
};

const KIND: &str = "systemd user unit";
const SYSTEMCTL: &str = "systemctl";

/// `$XDG_CONFIG_HOME/systemd/user`, else `~/.config/systemd/user`.
fn unit_dir() -> PathBuf {
    match std::env::var_os("XDG_CONFIG_HOME").filter(|s| !s.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("systemd/user"),
        None => tunnelkit_core::env::home_dir().join(".config/systemd/user"),
    }
}

fn unit_path() -> PathBuf {
    unit_dir().join(UNIT_NAME)
}

/// `systemctl --user ARGS`.
fn systemctl(args: &[&str]) -> Result<std::process::Output, ToolError> {
    let mut all = vec!["--user"];
    all.extend_from_slice(args);
    run(SYSTEMCTL, &all)
}

pub(super) fn plan(exe: &Path) -> Result<Plan, AutostartError> {
    Ok(Plan {
        kind: KIND,
        location: unit_path().display().to_string(),
        text: content::systemd_unit(&content::path_text(exe)?),
    })
}

pub(super) fn install(exe: &Path) -> Result<Installed, AutostartError> {
    let plan = plan(exe)?;
    let path = unit_path();
    let before = read_file(&path)?;
    write_file(&path, plan.text.as_bytes())?;
    // A running agent started from an older file is restarted to run this one.
    let changed = before.is_some_and(|b| b != plan.text);
    let activation = match activate(changed) {
        Ok(done) => Activation::Started(done),
        Err(e) => Activation::Manual {
            reason: e.to_string(),
            command: format!(
                "systemctl --user daemon-reload && systemctl --user enable --now {UNIT_NAME}"
            ),
        },
    };
    Ok(Installed { plan, activation })
}

/// `daemon-reload`, `enable --now`, and `try-restart` when the file changed.
fn activate(changed: bool) -> Result<String, ToolError> {
    systemctl(&["daemon-reload"])?;
    systemctl(&["enable", "--now", UNIT_NAME])?;
    let mut done = format!("systemctl --user enable --now {UNIT_NAME}");
    if changed {
        systemctl(&["try-restart", UNIT_NAME])?;
        done.push_str(" (and try-restart: the unit changed)");
    }
    Ok(done)
}

pub(super) fn uninstall() -> Result<Removed, AutostartError> {
    let path = unit_path();
    let mut notes = Vec::new();
    let existed = path.exists();
    if existed {
        if let Err(e) = systemctl(&["disable", "--now", UNIT_NAME]) {
            notes.push(format!(
                "{e}: if an agent runs from it, stop it with `systemctl --user stop {UNIT_NAME}`"
            ));
        }
    }
    remove_file(&path)?;
    // What `disable` removes, in case the manager did not answer.
    remove_file(&unit_dir().join("default.target.wants").join(UNIT_NAME))?;
    if existed {
        if let Err(e) = systemctl(&["daemon-reload"]) {
            notes.push(format!("{e}: run `systemctl --user daemon-reload` later"));
        }
    }
    Ok(Removed {
        kind: KIND,
        location: path.display().to_string(),
        existed,
        notes,
    })
}

pub(super) fn status(exe: &Path) -> Result<Status, AutostartError> {
    let path = unit_path();
    let found = read_file(&path)?.map(|text| {
        let program = content::unit_program(&text);
        Found {
            this_binary: program.as_deref().is_some_and(|p| same_program(p, exe)),
            program,
            state: manager_state(),
        }
    });
    Ok(Status {
        kind: KIND,
        location: path.display().to_string(),
        found,
    })
}

/// `enabled, active` as the user manager says, or why that is unknown.
fn manager_state() -> Option<String> {
    let word = |verb: &str| match systemctl(&[verb, UNIT_NAME]) {
        Ok(o) => Ok(String::from_utf8_lossy(&o.stdout).trim().to_string()),
        // `is-enabled`/`is-active` exit non-zero with their answer on stdout for "no".
        Err(ToolError::Failed { stdout, .. }) if !stdout.trim().is_empty() => {
            Ok(stdout.trim().to_string())
        }
        Err(e) => Err(e.to_string()),
    };
    Some(match (word("is-enabled"), word("is-active")) {
        (Ok(enabled), Ok(active)) => format!("{enabled}, {active}"),
        (Err(e), _) | (_, Err(e)) => format!("unknown ({e})"),
    })
}
