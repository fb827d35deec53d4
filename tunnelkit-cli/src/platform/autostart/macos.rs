//! macOS: a LaunchAgent in `~/Library/LaunchAgents/com.tunnelkit.agent.plist`, logging to
//! `~/Library/Logs/tunnelkit/agent.log`, loaded with `launchctl bootstrap gui/$UID`.

use std::path::{Path, PathBuf};

use super::content::{self, LAUNCHD_LABEL};
use super::{
    read_file, remove_file, run, same_program, write_file, Activation, AutostartError, Found,
    Installed, Plan, Removed, Status,
};

const KIND: &str = "LaunchAgent";
const LAUNCHCTL: &str = "launchctl";

fn plist_path() -> PathBuf {
    tunnelkit_core::env::home_dir()
        .join("Library/LaunchAgents")
        .join(format!("{LAUNCHD_LABEL}.plist"))
}

fn log_path() -> PathBuf {
    tunnelkit_core::env::home_dir().join("Library/Logs/tunnelkit/agent.log")
}

/// `gui/UID`: the login session's launchd domain.
fn domain() -> String {
    format!("gui/{}", rustix::process::getuid().as_raw())
}

/// `gui/UID/com.tunnelkit.agent`.
fn service() -> String {
    format!("{}/{LAUNCHD_LABEL}", domain())
}

pub(super) fn plan(exe: &Path) -> Result<Plan, AutostartError> {
    let log = log_path();
    Ok(Plan {
        kind: KIND,
        location: plist_path().display().to_string(),
        text: content::launchd_plist(&content::path_text(exe)?, &content::path_text(&log)?),
    })
}

pub(super) fn install(exe: &Path) -> Result<Installed, AutostartError> {
    let plan = plan(exe)?;
    let path = plist_path();
    let logs = log_path();
    if let Some(dir) = logs.parent() {
        // launchd opens the log file but does not create its directory.
        std::fs::create_dir_all(dir).map_err(|source| AutostartError::File {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let before = read_file(&path)?;
    write_file(&path, plan.text.as_bytes())?;
    if before.is_some() {
        // Loaded from an older file: unload it first, or bootstrap fails. Not loaded: fine.
        let _ = run(LAUNCHCTL, &["bootout", &service()]);
    }
    let location = path.display().to_string();
    let activation = match run(LAUNCHCTL, &["bootstrap", &domain(), &location]) {
        Ok(_) => Activation::Started(format!("launchctl bootstrap {} {location}", domain())),
        Err(e) => Activation::Manual {
            reason: e.to_string(),
            command: format!("launchctl bootstrap {} {location}", domain()),
        },
    };
    Ok(Installed { plan, activation })
}

pub(super) fn uninstall() -> Result<Removed, AutostartError> {
    let path = plist_path();
    let existed = path.exists();
    let mut notes = Vec::new();
    if existed {
        if let Err(e) = run(LAUNCHCTL, &["bootout", &service()]) {
            notes.push(format!("{e} (it may not have been loaded)"));
        }
    }
    remove_file(&path)?;
    Ok(Removed {
        kind: KIND,
        location: path.display().to_string(),
        existed,
        notes,
    })
}

pub(super) fn status(exe: &Path) -> Result<Status, AutostartError> {
    let path = plist_path();
    let found = read_file(&path)?.map(|text| {
        let program = content::plist_program(&text);
        let state = match run(LAUNCHCTL, &["print", &service()]) {
            Ok(_) => "loaded",
            Err(_) => "not loaded",
        };
        Found {
            this_binary: program.as_deref().is_some_and(|p| same_program(p, exe)),
            program,
            state: Some(format!("{state}; log {}", log_path().display())),
        }
    });
    Ok(Status {
        kind: KIND,
        location: path.display().to_string(),
        found,
    })
}
