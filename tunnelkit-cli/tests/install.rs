//! What an admin installs beside the binary, checked with the real tools: the bash completion
//! script in a real bash (`tunnelkit sta<TAB>` becomes `status`, profile names after `up`), the
//! man page rendered by man-db's `man -l` without a groff warning, and the systemd user unit as
//! installed (`~/.config/systemd/user`, `%h/.cargo/bin/tunnelkit`) passing
//! `systemd-analyze --user verify` without a word of output, and the unit that
//! `tunnelkit agent install` writes (then `status`, `uninstall`) with no `systemctl`, with one
//! whose user manager answers and with one whose manager does not (a script in their place).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tunnelkit")
}

/// A program the test needs; panics naming its Debian package when it is missing.
fn tool(name: &str, package: &str) -> PathBuf {
    ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found: install the {package} package"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs the completion function bash registered for `tunnelkit` (as `complete -p` names it)
/// on `words`, the last one being completed, and returns COMPREPLY.
fn bash_complete(words: &[&str], env: &[(&str, &Path)]) -> Vec<String> {
    let script = r#"
source <("$TK" completions bash) || exit 3
spec=$(complete -p tunnelkit) || exit 4
fn=${spec#*-F }
fn=${fn%% *}
read -r -a COMP_WORDS <<< "$WORDS"
[[ "$WORDS" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_LINE="$WORDS"
COMP_POINT=${#COMP_LINE}
COMP_TYPE=9
"$fn" tunnelkit "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"#;
    let mut cmd = Command::new(tool("bash", "bash"));
    cmd.args(["--norc", "--noprofile", "-c", script])
        .env("TK", bin())
        .env("WORDS", words.join(" "))
        .env_remove("TUNNELKIT_SOCKET")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "bash: {out:?}");
    text(&out.stdout)
        .lines()
        .map(|l| l.trim_end().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn bash_completes_subcommands_flags_and_profile_names() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    let profiles = config.join("tunnelkit/profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    for f in ["web.toml", "winserver.toml", "db.toml", ".web.toml.swp"] {
        std::fs::write(profiles.join(f), "").unwrap();
    }
    let runtime = dir.path().join("run");
    let env = [
        ("XDG_CONFIG_HOME", config.as_path()),
        // No agent there: names come from the profiles directory.
        ("XDG_RUNTIME_DIR", runtime.as_path()),
    ];
    assert_eq!(bash_complete(&["tunnelkit", "sta"], &env), ["status"]);
    assert_eq!(bash_complete(&["tunnelkit", "comp"], &env), ["completions"]);
    assert_eq!(
        bash_complete(&["tunnelkit", "up", "w"], &env),
        ["web", "winserver"]
    );
    assert_eq!(bash_complete(&["tunnelkit", "open", "d"], &env), ["db"]);
    // An empty word: every profile name, then the flags.
    let names: Vec<String> = bash_complete(&["tunnelkit", "down", ""], &env)
        .into_iter()
        .filter(|w| !w.starts_with('-'))
        .collect();
    assert_eq!(names, ["db", "web", "winserver"]);
    assert_eq!(
        bash_complete(&["tunnelkit", "completions", "f"], &env),
        ["fish"]
    );
    assert_eq!(
        bash_complete(&["tunnelkit", "status", "--wa"], &env),
        ["--watch"]
    );
    let top = bash_complete(&["tunnelkit", ""], &env);
    for sub in [
        "agent",
        "status",
        "up",
        "down",
        "open",
        "man",
        "completions",
    ] {
        assert!(top.contains(&sub.to_string()), "{sub} in {top:?}");
    }
}

#[test]
fn zsh_and_fish_scripts_call_back_into_tunnelkit() {
    for shell in ["zsh", "fish"] {
        let out = Command::new(bin())
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let script = text(&out.stdout);
        assert!(
            script.contains("TUNNELKIT_COMPLETE") && script.contains(bin()),
            "{shell}: {script}"
        );
    }
    // What the fish script runs at TAB (fish itself is not needed for that).
    let out = Command::new(bin())
        .args(["--", "tunnelkit", "sta"])
        .env("TUNNELKIT_COMPLETE", "fish")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(text(&out.stdout).starts_with("status\t"), "{out:?}");
}

fn man_page(dir: &Path) -> PathBuf {
    let out = Command::new(bin()).arg("man").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let page = dir.join("man/man1/tunnelkit.1");
    std::fs::create_dir_all(page.parent().unwrap()).unwrap();
    std::fs::write(&page, &out.stdout).unwrap();
    page
}

#[test]
fn man_renders_the_page_with_every_section_and_no_warning() {
    let dir = tempfile::tempdir().unwrap();
    let page = man_page(dir.path());
    let out: Output = Command::new(tool("man", "man-db"))
        .arg("--warnings=all")
        .arg("-l")
        .arg(&page)
        .env("MANWIDTH", "100")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("MAN_DISABLE_SECCOMP", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stderr.is_empty(),
        "groff or man warned:\n{}",
        text(&out.stderr)
    );
    // Rendered text (overstrike bold removed as `col -b` would).
    let shown: String = {
        let raw = text(&out.stdout);
        let mut s = String::new();
        for c in raw.chars() {
            if c == '\u{8}' {
                s.pop();
            } else {
                s.push(c);
            }
        }
        s
    };
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "SUBCOMMANDS",
        "FILES",
        "ENVIRONMENT",
        "EXIT STATUS",
        "EXAMPLES",
        "SEE ALSO",
    ] {
        assert!(
            shown.lines().any(|l| l.trim_end() == section),
            "no {section} heading in:\n{shown}"
        );
    }
    for expected in [
        "[bind_address:]port:host:hostport",
        "-D <[bind_address:]port>",
        "tunnelkit open NAME [FORWARD] [--client CMD] [--socket PATH]",
        "tunnelkit completions bash|zsh|fish",
        "SSH_AUTH_SOCK",
        "$XDG_RUNTIME_DIR/tunnelkit/agent.sock",
        "255",
    ] {
        assert!(shown.contains(expected), "{expected:?} not in:\n{shown}");
    }
}

#[test]
fn the_systemd_user_unit_verifies_as_installed() {
    let analyze = tool("systemd-analyze", "systemd");
    let unit_src =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/systemd/tunnelkit-agent.service");
    let unit = std::fs::read_to_string(&unit_src).unwrap();
    // What a user unit must not say (systemd --user has no network-online.target; a
    // placeholder link helps nobody). systemd-analyze does not flag these, so they are read.
    let settings: String = unit
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!settings.contains("network-online"), "{unit}");
    assert!(!settings.contains("example."), "{unit}");
    assert!(
        unit.contains("ExecStart=%h/.cargo/bin/tunnelkit agent"),
        "{unit}"
    );

    // Installed as docs/profiles-and-agent.md says, into a HOME of the test's own, with the built binary where
    // `cargo install` puts it and the man page that Documentation= names on MANPATH.
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    std::fs::create_dir_all(h.join(".cargo/bin")).unwrap();
    std::os::unix::fs::symlink(bin(), h.join(".cargo/bin/tunnelkit")).unwrap();
    let installed = h.join(".config/systemd/user/tunnelkit-agent.service");
    std::fs::create_dir_all(installed.parent().unwrap()).unwrap();
    std::fs::copy(&unit_src, &installed).unwrap();
    man_page(h);
    let runtime = h.join("run");
    std::fs::create_dir(&runtime).unwrap();
    std::fs::set_permissions(
        &runtime,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let verify = |unit: &Path| {
        Command::new(&analyze)
            .args(["--user", "verify"])
            .arg(unit)
            .env("HOME", h)
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("MANPATH", h.join("man"))
            .env_remove("XDG_CONFIG_HOME")
            .output()
            .unwrap()
    };
    let out = verify(&installed);
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "systemd-analyze --user verify: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    // The same check sees a unit whose binary is missing: it is not a check that cannot fail.
    std::fs::remove_file(h.join(".cargo/bin/tunnelkit")).unwrap();
    let out = verify(&installed);
    assert!(text(&out.stderr).contains("is not executable"), "{out:?}");
}

/// A HOME of the test's own for `tunnelkit agent install|uninstall|status`, with a PATH of
/// one directory (`bin`) where a test may put a `systemctl` of its own.
struct AutostartHome {
    dir: tempfile::TempDir,
}

impl AutostartHome {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        AutostartHome { dir }
    }

    fn unit(&self) -> PathBuf {
        self.dir
            .path()
            .join("config/systemd/user/tunnelkit-agent.service")
    }

    /// A `systemctl` that logs its arguments to `systemctl.log` and then runs `body`.
    fn fake_systemctl(&self, body: &str) {
        let script = self.dir.path().join("bin/systemctl");
        let log = self.dir.path().join("systemctl.log");
        std::fs::write(
            &script,
            format!("#!/bin/sh\necho \"$*\" >> '{}'\n{body}\n", log.display()),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }

    /// What the fake `systemctl` was asked, one call per line (and forgets it).
    fn systemctl_calls(&self) -> Vec<String> {
        let log = self.dir.path().join("systemctl.log");
        let calls = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        calls.lines().map(str::to_string).collect()
    }

    fn agent(&self, args: &[&str]) -> Output {
        let h = self.dir.path();
        Command::new(bin())
            .arg("agent")
            .args(args)
            .env("HOME", h)
            .env("XDG_CONFIG_HOME", h.join("config"))
            .env("PATH", h.join("bin"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

/// This binary as `std::env::current_exe` names it (symbolic links resolved).
fn this_binary() -> String {
    std::fs::canonicalize(bin())
        .unwrap()
        .to_str()
        .unwrap()
        .to_string()
}

#[test]
fn agent_install_without_systemctl_writes_the_unit_and_names_the_command() {
    let home = AutostartHome::new();
    let unit = home.unit();
    let exe = this_binary();

    let out = home.agent(&["install", "--dry-run"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text(&out.stdout).contains(&format!("ExecStart={exe} agent\n")),
        "{out:?}"
    );
    assert!(!unit.exists(), "--dry-run wrote {}", unit.display());

    // No systemctl on PATH: the unit is written, the command says what to run, and fails.
    let out = home.agent(&["install"]);
    assert_eq!(out.status.code(), Some(255), "{out:?}");
    assert!(
        text(&out.stdout).contains(&format!("wrote the systemd user unit {}", unit.display())),
        "{out:?}"
    );
    let err = text(&out.stderr);
    assert!(err.contains("systemctl is not on PATH"), "{err}");
    assert!(
        err.contains(
            "run: systemctl --user daemon-reload && systemctl --user enable --now \
             tunnelkit-agent.service"
        ),
        "{err}"
    );
    let written = std::fs::read_to_string(&unit).unwrap();
    assert_eq!(
        written,
        tunnelkit_cli::platform::autostart::content::systemd_unit(&exe)
    );
    assert!(
        written.contains(&format!("\nExecStart={exe} agent\n")),
        "{written}"
    );

    // The unit as written passes systemd's own check, without a word.
    let h = home.dir.path();
    man_page(h);
    let runtime = h.join("run");
    std::fs::create_dir(&runtime).unwrap();
    std::fs::set_permissions(
        &runtime,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let verify = Command::new(tool("systemd-analyze", "systemd"))
        .args(["--user", "verify"])
        .arg(&unit)
        .env("HOME", h)
        .env("XDG_CONFIG_HOME", h.join("config"))
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("MANPATH", h.join("man"))
        .output()
        .unwrap();
    assert!(
        verify.status.success() && verify.stdout.is_empty() && verify.stderr.is_empty(),
        "systemd-analyze --user verify: {verify:?}"
    );

    let out = home.agent(&["status"]);
    assert!(out.status.success(), "{out:?}");
    let shown = text(&out.stdout);
    assert!(
        shown.contains(&format!("autostart: systemd user unit {}", unit.display())),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("runs: {exe} agent (this binary)")),
        "{shown}"
    );
    assert!(
        shown.contains("state: unknown (systemctl is not on PATH)"),
        "{shown}"
    );

    // A unit that runs another binary is reported as such.
    std::fs::write(
        &unit,
        written.replace(&format!("ExecStart={exe}"), "ExecStart=/opt/old/tunnelkit"),
    )
    .unwrap();
    let out = home.agent(&["status"]);
    assert_eq!(out.status.code(), Some(255), "{out:?}");
    assert!(
        text(&out.stdout).contains("runs: /opt/old/tunnelkit agent, NOT this binary"),
        "{out:?}"
    );

    let out = home.agent(&["uninstall"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text(&out.stdout).contains(&format!("removed the systemd user unit {}", unit.display())),
        "{out:?}"
    );
    assert!(!unit.exists());
    let out = home.agent(&["status"]);
    assert_eq!(out.status.code(), Some(255), "{out:?}");
    assert!(
        text(&out.stdout).starts_with("autostart: not installed"),
        "{out:?}"
    );
    let out = home.agent(&["uninstall"]);
    assert!(out.status.success(), "{out:?}");
    assert!(text(&out.stdout).contains("nothing to remove"), "{out:?}");
}

#[test]
fn agent_install_enables_and_starts_the_unit_when_the_user_manager_answers() {
    let home = AutostartHome::new();
    home.fake_systemctl(
        "case \"$2\" in is-enabled) echo enabled;; is-active) echo active;; esac\nexit 0",
    );
    let out = home.agent(&["install"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text(&out.stdout).contains("started now and at every login"),
        "{out:?}"
    );
    assert_eq!(
        home.systemctl_calls(),
        [
            "--user daemon-reload",
            "--user enable --now tunnelkit-agent.service"
        ]
    );
    // Installed again unchanged: the running agent is left alone.
    assert!(home.agent(&["install"]).status.success());
    assert_eq!(
        home.systemctl_calls(),
        [
            "--user daemon-reload",
            "--user enable --now tunnelkit-agent.service"
        ]
    );
    // Over a unit that ran another binary: the running agent is restarted on this one.
    let unit = home.unit();
    let old = std::fs::read_to_string(&unit)
        .unwrap()
        .replace("ExecStart=/", "ExecStart=/opt/old/");
    std::fs::write(&unit, old).unwrap();
    assert!(home.agent(&["install"]).status.success());
    assert_eq!(
        home.systemctl_calls(),
        [
            "--user daemon-reload",
            "--user enable --now tunnelkit-agent.service",
            "--user try-restart tunnelkit-agent.service"
        ]
    );

    let out = home.agent(&["status"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text(&out.stdout).contains("state: enabled, active"),
        "{out:?}"
    );
    home.systemctl_calls();

    // What `enable` would have linked is removed with the unit.
    let wants = unit.parent().unwrap().join("default.target.wants");
    std::fs::create_dir_all(&wants).unwrap();
    std::os::unix::fs::symlink(&unit, wants.join("tunnelkit-agent.service")).unwrap();
    let out = home.agent(&["uninstall"]);
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
    assert_eq!(
        home.systemctl_calls(),
        [
            "--user disable --now tunnelkit-agent.service",
            "--user daemon-reload"
        ]
    );
    assert!(!unit.exists());
    assert!(std::fs::symlink_metadata(wants.join("tunnelkit-agent.service")).is_err());
}

#[test]
fn agent_install_says_what_to_run_when_the_user_manager_does_not_answer() {
    let home = AutostartHome::new();
    home.fake_systemctl("echo 'Failed to connect to bus: No medium found' >&2\nexit 1");
    let out = home.agent(&["install"]);
    assert_eq!(out.status.code(), Some(255), "{out:?}");
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "not started: `systemctl --user daemon-reload` failed: Failed to connect to bus"
        ),
        "{err}"
    );
    assert!(
        err.contains("systemctl --user enable --now tunnelkit-agent.service"),
        "{err}"
    );
    assert!(home.unit().exists());
}
