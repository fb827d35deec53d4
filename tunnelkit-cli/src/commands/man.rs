//! `tunnelkit man`: the manual page, roff, on standard output. clap_mangen writes the sections
//! it knows from the clap definition (NAME, SYNOPSIS, DESCRIPTION, OPTIONS); this module adds
//! every subcommand with its own options, and FILES, ENVIRONMENT, EXIT STATUS, EXAMPLES and
//! SEE ALSO, so that `--help` and the page never disagree about a flag.

use clap::{Arg, Command, CommandFactory};
use clap_mangen::Man;
use roff::{bold, italic, roman, Inline, Roff};

use crate::exit::Exit;
use crate::opts::{Opts, EXAMPLES};

/// Files: (path, what it is).
const FILES: &[(&str, &str)] = &[
    (
        "~/.ssh/config, /etc/ssh/ssh_config",
        "ssh_config files read as ssh reads them (-F names another, or none).",
    ),
    (
        "~/.ssh/known_hosts, ~/.ssh/known_hosts2",
        "Known host keys and @cert-authority lines (UserKnownHostsFile).",
    ),
    (
        "/etc/ssh/ssh_known_hosts, /etc/ssh/ssh_known_hosts2",
        "System-wide known host keys (GlobalKnownHostsFile).",
    ),
    (
        "~/.ssh/id_rsa, ~/.ssh/id_ecdsa, ~/.ssh/id_ecdsa_sk, ~/.ssh/id_ed25519, ~/.ssh/id_ed25519_sk",
        "Keys tried when no IdentityFile is given.",
    ),
    (
        "$XDG_CONFIG_HOME/tunnelkit/profiles/*.toml",
        "The agent's profiles, one tunnel per file, named by the file (default \
         ~/.config/tunnelkit/profiles; tunnelkit agent --profiles names another directory).",
    ),
    (
        "$XDG_RUNTIME_DIR/tunnelkit/agent.sock",
        "The agent's control socket (else /tmp/tunnelkit-$UID/agent.sock); its directory is \
         mode 0700 and only the agent's own user may talk to it.",
    ),
    (
        "$XDG_CONFIG_HOME/systemd/user/tunnelkit-agent.service",
        "The systemd user unit that tunnelkit agent install writes (default \
         ~/.config/systemd/user) to start the agent at login; tunnelkit agent uninstall removes \
         it.",
    ),
];

/// Environment variables: (name, what tunnelkit does with it).
const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "SSH_AUTH_SOCK",
        "The ssh-agent to authenticate with (IdentityAgent overrides). Under systemd --user, \
         import it: systemctl --user import-environment SSH_AUTH_SOCK.",
    ),
    (
        "TUNNELKIT_LOG",
        "Log filter instead of -v/-q, in tracing's EnvFilter syntax (e.g. debug, or \
         warn,tunnelkit_core=trace).",
    ),
    (
        "TUNNELKIT_SOCKET",
        "The agent's control socket, when --socket is not given.",
    ),
    (
        "TUNNELKIT_KEYRING",
        "Where secrets are kept: secret-service, keyutils or mock. Default: the Secret Service \
         when a session bus answers for it, else the kernel keyring.",
    ),
    (
        "DBUS_SESSION_BUS_ADDRESS",
        "The session bus on which the Secret Service (GNOME Keyring, KeePassXC) is looked for.",
    ),
    (
        "XDG_CONFIG_HOME, XDG_RUNTIME_DIR, HOME",
        "Where the profiles directory and the control socket are (see FILES).",
    ),
    ("USER, LOGNAME", "The login name when none is given."),
    (
        "PATH",
        "Where tunnelkit open looks for xfreerdp, wlfreerdp, remmina and vncviewer.",
    ),
    (
        "TUNNELKIT_COMPLETE",
        "Set by the completion scripts when they ask tunnelkit what to complete; not for \
         people.",
    ),
];

/// Exit statuses: (status, when).
const EXIT_STATUS: &[(&str, &str)] = &[
    (
        "0",
        "Stopped by Ctrl-C, SIGTERM or SIGHUP (a closed terminal; ignored when started under \
         nohup); a subcommand that succeeded; with -f, the tunnel runs in the background; \
         tunnelkit open: the client exited 0.",
    ),
    (
        "255",
        "Any error, as ssh: bad usage, cannot connect, host key mismatch, a forward that could \
         not bind, no agent, a client that could not start or exited with another status.",
    ),
];

/// Renders the page.
pub fn render() -> std::io::Result<Vec<u8>> {
    let mut cmd = Opts::command();
    cmd.build();
    let man = Man::new(cmd.clone()).manual("tunnelkit manual");
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    let mut roff = Roff::new();
    subcommands(&mut roff, &cmd);
    list(&mut roff, "FILES", FILES);
    list(&mut roff, "ENVIRONMENT", ENVIRONMENT);
    list(&mut roff, "EXIT STATUS", EXIT_STATUS);
    examples(&mut roff);
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman(
        "ssh(1), ssh_config(5), sshd(8), xfreerdp(1), vncviewer(1), systemctl(1)",
    )]);
    roff.to_writer(&mut out)?;
    man.render_version_section(&mut out)?;
    Ok(out)
}

/// Prints the page.
pub fn run() -> Exit {
    match render().and_then(|page| std::io::Write::write_all(&mut std::io::stdout(), &page)) {
        Ok(()) => Exit::Success,
        Err(e) => {
            eprintln!("tunnelkit man: {e}");
            Exit::Failure
        }
    }
}

fn list(roff: &mut Roff, heading: &str, items: &[(&str, &str)]) {
    roff.control("SH", [heading]);
    for (term, text) in items {
        roff.control("TP", []);
        roff.text([bold(*term)]);
        roff.text([roman(*text)]);
    }
}

/// Each subcommand: its usage line, what it does, and its own arguments.
fn subcommands(roff: &mut Roff, cmd: &Command) {
    roff.control("SH", ["SUBCOMMANDS"]);
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let mut usage = vec![bold(format!("tunnelkit {}", sub.get_name()))];
        for arg in sub.get_arguments().filter(|a| shown(a)) {
            usage.push(roman(" "));
            let optional_flag = !arg.is_positional() && !arg.is_required_set();
            if optional_flag {
                usage.push(roman("["));
            }
            usage.extend(usage_of(arg));
            if optional_flag {
                usage.push(roman("]"));
            }
        }
        roff.control("TP", []);
        roff.text(usage);
        let about = sub.get_long_about().or_else(|| sub.get_about());
        if let Some(about) = about {
            roff.text([roman(about.to_string())]);
        }
        let args: Vec<&Arg> = sub
            .get_arguments()
            .filter(|a| shown(a) && a.get_help().is_some())
            .collect();
        if args.is_empty() {
            continue;
        }
        roff.control("RS", []);
        for arg in args {
            roff.control("TP", []);
            roff.text(usage_of(arg));
            let help = arg.get_long_help().or_else(|| arg.get_help());
            roff.text([roman(help.map(|h| h.to_string()).unwrap_or_default())]);
            let values: Vec<String> = arg
                .get_possible_values()
                .iter()
                .filter(|v| !v.is_hide_set())
                .map(|v| v.get_name().to_string())
                .collect();
            let takes_value = arg.get_num_args().is_some_and(|n| n.takes_values());
            if takes_value && !values.is_empty() && !arg.is_positional() {
                roff.text([roman(format!(" One of: {}.", values.join(", ")))]);
            }
        }
        roff.control("RE", []);
    }
}

/// Every argument but the hidden ones and `--help` (which every subcommand has).
fn shown(arg: &Arg) -> bool {
    !arg.is_hide_set() && arg.get_id().as_str() != "help"
}

/// `--socket PATH`, `-v`, `NAME`, `[FORWARD]`, `bash|zsh|fish`.
fn usage_of(arg: &Arg) -> Vec<Inline> {
    let value = arg
        .get_value_names()
        .and_then(|v| v.first())
        .map(|v| v.to_string())
        .unwrap_or_else(|| arg.get_id().as_str().to_uppercase());
    let takes_value = arg.get_num_args().is_some_and(|n| n.takes_values());
    if arg.is_positional() {
        let values: Vec<String> = arg
            .get_possible_values()
            .iter()
            .map(|v| v.get_name().to_string())
            .collect();
        let shown = if values.is_empty() {
            italic(value)
        } else {
            roman(values.join("|"))
        };
        return if arg.is_required_set() {
            vec![shown]
        } else {
            vec![roman("["), shown, roman("]")]
        };
    }
    let flag = match (arg.get_long(), arg.get_short()) {
        (Some(long), _) => format!("--{long}"),
        (None, Some(short)) => format!("-{short}"),
        (None, None) => value.clone(),
    };
    let mut v = vec![bold(flag)];
    if takes_value {
        v.push(roman(" "));
        v.push(italic(value));
    }
    v
}

fn examples(roff: &mut Roff) {
    roff.control("SH", ["EXAMPLES"]);
    // The --help epilogue: an indented command line after each description.
    for line in EXAMPLES.lines().skip(1) {
        let text = line.trim();
        if text.starts_with("Exit status") {
            break; // its own section
        }
        if text.is_empty() {
            roff.control("PP", []);
        } else if line.starts_with("    ") {
            roff.control("RS", []);
            roff.control("nf", []);
            roff.text([bold(text)]);
            roff.control("fi", []);
            roff.control("RE", []);
        } else {
            roff.text([roman(text)]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_has_every_section_and_subcommand() {
        let page = String::from_utf8(render().unwrap()).unwrap();
        for section in [
            ".SH NAME",
            ".SH SYNOPSIS",
            ".SH DESCRIPTION",
            ".SH OPTIONS",
            ".SH SUBCOMMANDS",
            ".SH FILES",
            ".SH ENVIRONMENT",
            ".SH \"EXIT STATUS\"",
            ".SH EXAMPLES",
        ] {
            assert!(page.contains(section), "{section} missing");
        }
        for sub in [
            "agent",
            "status",
            "up",
            "down",
            "open",
            "completions",
            "man",
        ] {
            assert!(page.contains(&format!("tunnelkit {sub}")), "{sub} missing");
        }
    }
}
