//! ssh_config files (`ssh_config::evaluate`). Input: the destination on the first line, the
//! file's text after it. `Include` may only name files under `~/.ssh` of a private temporary
//! home (lines that mention `include` together with `/`, `~` or `..` are dropped), where three
//! small fixed files wait, one including itself. Checks: an error names the fuzzed file with a
//! line inside it, or an included file; a result has a port, well-formed forwards and jump
//! hosts, prints (`-G`) as one `keyword value` per line, and options given on the command line
//! win over the file.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tunnelkit_core::spec::{parse_forward, parse_jump_list};
use tunnelkit_core::ssh_config::{evaluate, print_g, HostConfig, MatchExec, Query, Sources};
use tunnelkit_core::SshOptions;

struct Home {
    dir: tempfile::TempDir,
    config: PathBuf,
}

fn home() -> &'static Home {
    static HOME: OnceLock<Home> = OnceLock::new();
    HOME.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary home");
        let ssh = dir.path().join(".ssh");
        std::fs::create_dir(&ssh).expect(".ssh");
        for (name, text) in [
            (
                "inc_host",
                "Host *.example.com\n  Port 2222\n  User incuser\n",
            ),
            (
                "inc_match",
                "Match host *.internal\n  HostName %h.corp\n  ProxyJump gw\n",
            ),
            ("inc_self", "Include inc_self\n"),
        ] {
            std::fs::write(ssh.join(name), text).expect("include file");
        }
        let config = dir.path().join("config");
        Home { dir, config }
    })
}

fn confined(text: &str) -> String {
    text.split('\n')
        .filter(|l| {
            let lower = l.to_ascii_lowercase();
            !(lower.contains("include") && (l.contains('/') || l.contains('~') || l.contains("..")))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn well_formed(c: &HostConfig) {
    assert!(c.port != 0);
    for f in &c.options.local_forwards {
        assert!(parse_forward(f).is_ok(), "LocalForward kept {f:?}");
    }
    if let Some(j) = c.options.proxy_jump.as_deref().filter(|j| !j.is_empty()) {
        assert!(parse_jump_list(j).is_ok(), "ProxyJump kept {j:?}");
    }
    for line in print_g(c, std::path::Path::new("/home/fuzz")).lines() {
        let (k, _) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("-G line {line:?}"));
        assert!(
            !k.is_empty()
                && k.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
            "-G line {line:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let (host, text) = s.split_once('\n').unwrap_or((s, ""));
    if host.is_empty() {
        return;
    }
    let h = home();
    let text = confined(text);
    std::fs::write(&h.config, &text).expect("write config");
    let q = Query {
        host: host.to_string(),
        local_user: "me".into(),
        home: h.dir.path().to_path_buf(),
        // Fuzzed text must never run commands.
        exec: MatchExec::Refuse,
    };
    let sources = Sources::file(&h.config);
    match evaluate(&q, SshOptions::default(), &sources) {
        Ok(c) => well_formed(&c),
        Err(e) => {
            if e.file == h.config {
                assert!(
                    e.line >= 1 && e.line <= text.lines().count(),
                    "{e} in {text:?}"
                );
            } else {
                assert!(e.file.starts_with(h.dir.path().join(".ssh")), "{e}");
            }
        }
    }
    // The command line comes first, so it wins.
    let mut cmdline = SshOptions::default();
    cmdline.apply_kv("User=cmdline").expect("User");
    cmdline.apply_kv("Port=2200").expect("Port");
    if let Ok(c) = evaluate(&q, cmdline, &sources) {
        assert_eq!((c.user.as_str(), c.port), ("cmdline", 2200));
        well_formed(&c);
    }
});
