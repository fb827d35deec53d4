//! What the agent refuses to read, against a real agent and OpenSSH sshd: profiles that another
//! user could have written (a 0777 profiles directory, a 0666 profile, a directory owned by
//! `nobody`, `--profiles` through a link to a 0777 directory, a profile linked into one, a
//! profile whose identity file lies in one) and a profile whose file name has a newline. Each is
//! shown `refused` in `tunnelkit status` (table and JSON) with the path and the fix, logged
//! once, and not started; a trusted profile beside them starts.

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use tunnelkit_tests::{blocking_echo as echo, TunnelkitAgent};

mod agent_site;
use agent_site::{local_of, site, write_profile, Agent, Site};

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A loopback port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Asserts that `name` is refused for `why` (naming `path`), that nothing listens on `port`,
/// that `up` refuses it too, and that the agent logged the refusal exactly once although it
/// read the directory again (two reloads; each reload's own summary is an answer to the
/// request and is not counted).
fn assert_refused(agent: &TunnelkitAgent, name: &str, port: u16, path: &Path, why: &str) {
    let p = agent.wait_state(name, "refused");
    let err = p["last_error"].as_str().unwrap_or_default().to_string();
    assert!(
        err.contains(&path.display().to_string()) && err.contains(why),
        "{name}: {err}"
    );
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "{name}: something listens on its port {port}"
    );
    let up = agent.cli(&["up", name]);
    assert!(!up.status.success(), "{name}: up started it");
    for _ in 0..2 {
        assert!(agent.cli(&["reload"]).status.success());
    }
    let table = String::from_utf8_lossy(&agent.cli(&["status"]).stdout).to_string();
    assert!(
        table.contains("refused") && table.contains(why),
        "{name}: {table}"
    );
    let log = agent.log();
    let lines = log
        .lines()
        .filter(|l| l.contains(&format!("profile{{profile={name}}}: ")) && l.contains("refused"))
        .count();
    assert_eq!(lines, 1, "{name}: logged {lines} times:\n{log}");
}

fn profile_text(s: &Site, port: u16, key: &Path) -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    format!(
        "autostart = true\n[ssh]\nIdentityFile = \"{}\"\nUserKnownHostsFile = \"{}\"\n\
         [[forward]]\nlocal = {port}\nremote = \"127.0.0.1:{}\"\n\
         [[route]]\nname = \"primary\"\nhops = [\"{user}@127.0.0.1:{}\"]\n",
        key.display(),
        s.known_hosts.display(),
        s.echo.addr().port(),
        s.sshd.port()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn untrusted_profile_files_are_refused_and_a_trusted_one_starts() {
    let s = site(None).await;
    write_profile(&s, "trusted", true, 0);
    // Another user could rewrite this one.
    let open_port = free_port();
    let open = s.profiles.join("open.toml");
    std::fs::write(&open, profile_text(&s, open_port, &s.key.private)).unwrap();
    chmod(&open, 0o666);
    // A private link to a profile in a directory anyone can write.
    let shared = s.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    chmod(&shared, 0o777);
    let linked_port = free_port();
    std::fs::write(
        shared.join("linked.toml"),
        profile_text(&s, linked_port, &s.key.private),
    )
    .unwrap();
    std::os::unix::fs::symlink(shared.join("linked.toml"), s.profiles.join("linked.toml")).unwrap();
    // A private profile whose key anyone could replace.
    let key_port = free_port();
    let key = shared.join("key");
    std::fs::copy(&s.key.private, &key).unwrap();
    chmod(&key, 0o600);
    std::fs::write(
        s.profiles.join("foreignkey.toml"),
        profile_text(&s, key_port, &key),
    )
    .unwrap();
    // A newline in the file name.
    std::fs::write(
        s.profiles.join("two\nlines.toml"),
        profile_text(&s, free_port(), &s.key.private),
    )
    .unwrap();

    let agent = Agent::start(s.dir.path(), &s.profiles, "mock");
    let trusted = agent.wait_state("trusted", "up");
    assert_eq!(echo(local_of(&trusted), b"trusted"), b"trusted");
    assert_refused(&agent, "open", open_port, &open, "chmod go-w");
    assert_refused(&agent, "linked", linked_port, &shared, "chmod go-w");
    assert_refused(&agent, "foreignkey", key_port, &shared, "identity file");
    let shown = agent.wait_state("two\\nlines", "refused");
    let err = shown["last_error"].as_str().unwrap();
    assert!(
        err.contains("two\\nlines.toml") && err.contains("U+000A") && !err.contains('\n'),
        "{err}"
    );
    let table = String::from_utf8_lossy(&agent.cli(&["status"]).stdout).to_string();
    assert!(
        table.contains("two\\nlines") && !table.contains("two\nlines"),
        "{table}"
    );
    assert!(!agent.log().contains("two\nlines"), "{}", agent.log());
    // Fixed, the file is used at the next read.
    chmod(&open, 0o600);
    assert!(agent.cli(&["reload"]).status.success());
    let fixed = agent.wait_state("open", "up");
    assert_eq!(local_of(&fixed).port(), open_port);
}

/// Starts an agent on `profiles` holding one autostart profile `NAME.toml` on a free port, and
/// checks that it is refused because of `culprit`.
fn refused_directory(s: &Site, profiles: &Path, name: &str, culprit: &Path, why: &str) {
    let port = free_port();
    let file = culprit.join(format!("{name}.toml"));
    std::fs::write(&file, profile_text(s, port, &s.key.private)).unwrap();
    let run = s.dir.path().join(format!("run-{name}"));
    std::fs::create_dir(&run).unwrap();
    let agent = Agent::start_with(Command::new(agent_site::bin()), &run, profiles, "mock");
    assert_refused(&agent, name, port, culprit, why);
    let json: Value = agent.profile(name);
    assert!(
        json["last_error"]
            .as_str()
            .unwrap()
            .contains("profiles directory is not safe"),
        "{json}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn untrusted_profile_directories_are_refused() {
    let s = site(None).await;
    // Mode 0777.
    let open = s.dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    chmod(&open, 0o777);
    refused_directory(&s, &open, "opendir", &open, "chmod go-w");
    // Owned by another user (mode 0755).
    let theirs = s.dir.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    chmod(&theirs, 0o755);
    let out = Command::new("chown")
        .args(["65534"])
        .arg(&theirs)
        .output()
        .unwrap();
    assert!(out.status.success(), "chown: {out:?}");
    refused_directory(&s, &theirs, "foreigndir", &theirs, "owned by uid 65534");
    // --profiles through a private link to a 0777 directory.
    let shared = s.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    chmod(&shared, 0o777);
    let link = s.dir.path().join("profiles-link");
    std::os::unix::fs::symlink(&shared, &link).unwrap();
    refused_directory(&s, &link, "viadir", &shared, "chmod go-w");
}
