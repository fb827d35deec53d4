//! `tunnelkit agent install|uninstall|status`: the agent started at login, as the OS does it
//! (the OS-specific work is in [`crate::platform::autostart`]).

use crate::exit::Exit;
use crate::opts::AutostartCommand;
use crate::platform::autostart::{self, Activation, AutostartError};

/// Runs one autostart subcommand; prints what was done, or what the user must do.
pub fn run(command: &AutostartCommand) -> Exit {
    let result = autostart::current_exe().and_then(|exe| match command {
        AutostartCommand::Install(args) if args.dry_run => dry_run(&exe),
        AutostartCommand::Install(_) => install(&exe),
        AutostartCommand::Uninstall => uninstall(),
        AutostartCommand::Status => status(&exe),
    });
    match result {
        Ok(exit) => exit,
        Err(e) => {
            eprintln!("tunnelkit agent: {e}");
            Exit::Failure
        }
    }
}

fn dry_run(exe: &std::path::Path) -> Result<Exit, AutostartError> {
    let plan = autostart::plan(exe)?;
    println!("would write the {} {}:", plan.kind, plan.location);
    print!("{}", plan.text);
    Ok(Exit::Success)
}

fn install(exe: &std::path::Path) -> Result<Exit, AutostartError> {
    let done = autostart::install(exe)?;
    let plan = &done.plan;
    println!(
        "wrote the {} {}, running {} agent",
        plan.kind,
        plan.location,
        exe.display()
    );
    Ok(match done.activation {
        Activation::Started(how) => {
            println!("started now and at every login: {how}");
            Exit::Success
        }
        Activation::Manual { reason, command } => {
            eprintln!("tunnelkit agent: not started: {reason}");
            eprintln!("to start it now and at every login, run: {command}");
            Exit::Failure
        }
    })
}

fn uninstall() -> Result<Exit, AutostartError> {
    let removed = autostart::uninstall()?;
    if removed.existed {
        println!("removed the {} {}", removed.kind, removed.location);
    } else {
        println!(
            "no {} at {}: nothing to remove",
            removed.kind, removed.location
        );
    }
    for note in &removed.notes {
        eprintln!("tunnelkit agent: {note}");
    }
    Ok(Exit::Success)
}

fn status(exe: &std::path::Path) -> Result<Exit, AutostartError> {
    let status = autostart::status(exe)?;
    let Some(found) = status.found else {
        println!(
            "autostart: not installed (`tunnelkit agent install` writes the {} {})",
            status.kind, status.location
        );
        return Ok(Exit::Failure);
    };
    println!("autostart: {} {}", status.kind, status.location);
    match &found.program {
        Some(p) if found.this_binary => println!("runs: {p} agent (this binary)"),
        Some(p) => println!(
            "runs: {p} agent, NOT this binary ({}): `tunnelkit agent install` points it here",
            exe.display()
        ),
        None => println!("runs: no program could be read from it"),
    }
    if let Some(state) = &found.state {
        println!("state: {state}");
    }
    Ok(if found.this_binary {
        Exit::Success
    } else {
        Exit::Failure
    })
}
