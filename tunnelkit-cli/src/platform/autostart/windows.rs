//! Windows: a Task Scheduler task `tunnelkit-agent` started at the user's logon, registered
//! from an XML file with `schtasks /Create /XML`.

use std::path::Path;

use super::content::{self, TASK_NAME};
use super::{
    run, same_program, write_file, Activation, AutostartError, Found, Installed, Plan, Removed,
    Status, ToolError,
};

const KIND: &str = "Task Scheduler logon task";
const SCHTASKS: &str = "schtasks";

fn location() -> String {
    format!("\\{TASK_NAME}")
}

/// Where the agent started at logon logs: `%LOCALAPPDATA%\tunnelkit\agent.log`.
fn log_path() -> Result<String, AutostartError> {
    let local = std::env::var("LOCALAPPDATA")
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or(AutostartError::MissingVariable("LOCALAPPDATA"))?;
    Ok(format!("{local}\\tunnelkit\\agent.log"))
}

/// `%USERDOMAIN%\%USERNAME%` (just the name without a domain).
fn user() -> Result<String, AutostartError> {
    let var = |k| std::env::var(k).ok().filter(|v| !v.is_empty());
    let name = var("USERNAME").ok_or(AutostartError::MissingVariable("USERNAME"))?;
    Ok(match var("USERDOMAIN") {
        Some(domain) => format!("{domain}\\{name}"),
        None => name,
    })
}

pub(super) fn plan(exe: &Path) -> Result<Plan, AutostartError> {
    Ok(Plan {
        kind: KIND,
        location: location(),
        text: content::task_xml(&content::path_text(exe)?, &user()?, &log_path()?),
    })
}

pub(super) fn install(exe: &Path) -> Result<Installed, AutostartError> {
    let plan = plan(exe)?;
    let dir = tempfile::tempdir().map_err(|source| AutostartError::File {
        path: std::env::temp_dir().display().to_string(),
        source,
    })?;
    let file = dir.path().join(format!("{TASK_NAME}.xml"));
    write_file(&file, &content::utf16le_with_bom(&plan.text))?;
    let file_text = file.display().to_string();
    run(
        SCHTASKS,
        &["/Create", "/TN", TASK_NAME, "/XML", &file_text, "/F"],
    )
    .map_err(AutostartError::Tool)?;
    // The logon trigger fires at the next logon; start it for this one too.
    let activation = match run(SCHTASKS, &["/Run", "/TN", TASK_NAME]) {
        Ok(_) => Activation::Started(format!("schtasks /Run /TN {TASK_NAME}")),
        Err(e) => Activation::Manual {
            reason: e.to_string(),
            command: format!("schtasks /Run /TN {TASK_NAME}"),
        },
    };
    Ok(Installed { plan, activation })
}

/// The task's XML as Task Scheduler has it; None when there is no such task.
fn query() -> Result<Option<String>, AutostartError> {
    match run(SCHTASKS, &["/Query", "/TN", TASK_NAME, "/XML", "ONE"]) {
        Ok(o) => Ok(Some(content::decode_output(&o.stdout))),
        Err(ToolError::Failed { .. }) => Ok(None),
        Err(e) => Err(AutostartError::Tool(e)),
    }
}

pub(super) fn uninstall() -> Result<Removed, AutostartError> {
    let existed = query()?.is_some();
    if existed {
        // Stops the agent the task started (fails when it is not running: nothing to do).
        let _ = run(SCHTASKS, &["/End", "/TN", TASK_NAME]);
        run(SCHTASKS, &["/Delete", "/TN", TASK_NAME, "/F"]).map_err(AutostartError::Tool)?;
    }
    Ok(Removed {
        kind: KIND,
        location: location(),
        existed,
        notes: Vec::new(),
    })
}

pub(super) fn status(exe: &Path) -> Result<Status, AutostartError> {
    let found = query()?.map(|xml| {
        let program = content::task_program(&xml);
        Found {
            this_binary: program.as_deref().is_some_and(|p| same_program(p, exe)),
            program,
            state: None,
        }
    });
    Ok(Status {
        kind: KIND,
        location: location(),
        found,
    })
}
