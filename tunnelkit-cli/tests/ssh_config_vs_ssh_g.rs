//! `tunnelkit -G` against OpenSSH's own `ssh -G`, line by line, for every keyword tunnelkit
//! uses, over the corpus in `tests/ssh_config/` (patterns, negation, Include, Match, tokens,
//! ProxyJump, ProxyCommand, first-wins, command-line precedence).
//!
//! Each `NN-name.conf` starts with `# query: HOST...` (destinations to resolve) and optionally
//! `# args: ...` (flags given to both tools). `@DIR@` stands for `NN-name.d/` beside it (files
//! it includes) and `@LOCALUSER@` for the user running the test.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// The keywords tunnelkit resolves (and prints with -G).
const KEYWORDS: &[&str] = &[
    "user",
    "hostname",
    "port",
    "batchmode",
    "exitonforwardfailure",
    "gatewayports",
    "hashknownhosts",
    "identitiesonly",
    "kbdinteractiveauthentication",
    "passwordauthentication",
    "stricthostkeychecking",
    "connectionattempts",
    "serveralivecountmax",
    "serveraliveinterval",
    "ciphers",
    "hostkeyalias",
    "identityagent",
    "localforward",
    "dynamicforward",
    "remoteforward",
    "identityfile",
    "certificatefile",
    "globalknownhostsfile",
    "userknownhostsfile",
    "connecttimeout",
    "proxyjump",
    "proxycommand",
    "proxyusefdpass",
    "addressfamily",
    "compression",
    "rekeylimit",
];

fn ssh_path() -> &'static str {
    for p in ["/usr/bin/ssh", "/usr/local/bin/ssh"] {
        if Path::new(p).exists() {
            return p;
        }
    }
    panic!("ssh not found: install the openssh-client package (apt-get install openssh-client)")
}

/// keyword -> values in output order, for the keywords above.
fn parse(out: &str) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in out.lines() {
        let (k, v) = line.split_once(' ').unwrap_or((line, ""));
        let k = k.to_ascii_lowercase();
        if KEYWORDS.contains(&k.as_str()) {
            m.entry(k).or_default().push(v.to_string());
        }
    }
    m
}

fn run(program: &str, config: &Path, args: &[String], host: &str) -> (bool, String, String) {
    let out = Command::new(program)
        .arg("-G")
        .arg("-F")
        .arg(config)
        .args(args)
        .arg(host)
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn corpus_matches_ssh_g_line_by_line() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ssh_config");
    let tmp = tempfile::tempdir().unwrap();
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let mut files: Vec<_> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    files.sort();
    assert!(files.len() >= 40, "the corpus has {} cases", files.len());
    let (mut compared, mut failures) = (0, Vec::new());
    for file in &files {
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(file)
            .unwrap()
            .replace(
                "@DIR@",
                &corpus.join(format!("{stem}.d")).display().to_string(),
            )
            .replace("@LOCALUSER@", &user);
        let header = |tag: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(tag))
                .map(|s| s.split_whitespace().map(str::to_string).collect::<Vec<_>>())
                .unwrap_or_default()
        };
        let hosts = header("# query: ");
        let args = header("# args: ");
        assert!(!hosts.is_empty(), "{stem}: no # query: line");
        let config = tmp.path().join(format!("{stem}.conf"));
        std::fs::write(&config, &text).unwrap();
        for host in &hosts {
            let (ok_ssh, ssh_out, ssh_err) = run(ssh_path(), &config, &args, host);
            assert!(ok_ssh, "{stem} {host}: ssh -G failed: {ssh_err}");
            let (ok_tk, tk_out, tk_err) =
                run(env!("CARGO_BIN_EXE_tunnelkit"), &config, &args, host);
            if !ok_tk {
                failures.push(format!("{stem} {host}: tunnelkit -G failed: {tk_err}"));
                continue;
            }
            let (want, got) = (parse(&ssh_out), parse(&tk_out));
            for k in KEYWORDS {
                if want.get(*k) != got.get(*k) {
                    failures.push(format!(
                        "{stem} {host}: {k}: ssh -G {:?}, tunnelkit -G {:?}",
                        want.get(*k),
                        got.get(*k)
                    ));
                }
            }
            compared += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(compared >= 40, "compared {compared} destinations");
}

#[test]
fn unknown_keyword_and_unsupported_match_are_errors_with_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.conf");
    std::fs::write(&bad, "Host x\n  User ok\n  Frobnicate yes\n").unwrap();
    let (ok, _, err) = run(env!("CARGO_BIN_EXE_tunnelkit"), &bad, &[], "x");
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "{}:3: Bad configuration option: Frobnicate",
            bad.display()
        )),
        "{err}"
    );
    // ssh agrees that it is an error.
    assert!(!run(ssh_path(), &bad, &[], "x").0);

    let local = tmp.path().join("localnetwork.conf");
    std::fs::write(&local, "Match localnetwork 10.0.0.0/8\n  User never\n").unwrap();
    let (ok, _, err) = run(env!("CARGO_BIN_EXE_tunnelkit"), &local, &[], "x");
    assert!(!ok);
    assert!(
        err.contains(":1: Match localnetwork is not supported"),
        "{err}"
    );
}

/// `Match exec` runs exactly the commands ssh runs: not one whose line already failed, each
/// once per pass, with `$SHELL` (here a shell that logs what it was given, then runs it).
#[test]
fn match_exec_runs_the_same_commands_as_ssh() {
    let tmp = tempfile::tempdir().unwrap();
    let shell = tmp.path().join("logging-sh");
    std::fs::write(
        &shell,
        "#!/bin/sh\nprintf '%s\\n' \"$2\" >> \"$(dirname \"$0\")/$RUN_LOG\"\nexec /bin/sh \"$@\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&shell, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = tmp.path().join("exec.conf");
    std::fs::write(
        &config,
        "Match host skipped exec \"echo never %h\"\n  User a\n\
         Match exec \"echo first %h %p\"\n  Port 2200\n\
         Match exec \"echo second %h %p\"\n  User b\n\
         Match final exec \"echo final %h\"\n  ConnectTimeout 9\n",
    )
    .unwrap();
    let mut logs = Vec::new();
    for (program, log) in [
        (ssh_path(), "ssh.log"),
        (env!("CARGO_BIN_EXE_tunnelkit"), "tk.log"),
    ] {
        let out = Command::new(program)
            .args(["-G", "-F"])
            .arg(&config)
            .arg("target")
            .env("SHELL", &shell)
            .env("RUN_LOG", log)
            .env_remove("SSH_AUTH_SOCK")
            .output()
            .unwrap();
        assert!(out.status.success(), "{program}: {out:?}");
        logs.push(std::fs::read_to_string(tmp.path().join(log)).unwrap_or_default());
    }
    assert!(logs[0].contains("echo first target 22"), "{}", logs[0]);
    assert!(!logs[0].contains("never"), "{}", logs[0]);
    assert_eq!(logs[1], logs[0], "tunnelkit ran other commands than ssh");
}

#[test]
fn keywords_that_decide_how_we_connect_are_refused_with_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, (line, needle)) in [
        (
            "KexAlgorithms curve25519-sha256",
            "KexAlgorithms curve25519-sha256 is not supported by tunnelkit",
        ),
        (
            "ProxyUseFdpass yes",
            "ProxyUseFdpass yes is not supported by tunnelkit",
        ),
        (
            "PubkeyAuthentication no",
            "PubkeyAuthentication no is not supported",
        ),
        (
            "BindAddress 127.0.0.1",
            "BindAddress 127.0.0.1 is not supported",
        ),
        ("ProxyCommand nc %u %h", "unknown token %u"),
    ]
    .into_iter()
    .enumerate()
    {
        let f = tmp.path().join(format!("refused{i}.conf"));
        std::fs::write(&f, format!("Host x\n  User ok\n  {line}\n")).unwrap();
        let mut c = Command::new(env!("CARGO_BIN_EXE_tunnelkit"));
        c.arg("-F")
            .arg(&f)
            .args(["-N", "-L", "0:t:1", "-o", "BatchMode=yes", "x"])
            .stdin(std::process::Stdio::null());
        let out = c.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(255), "{line}: {err}");
        assert!(err.contains(needle), "{line}: {err}");
        if !line.starts_with("ProxyCommand") {
            assert!(
                err.contains(&format!("{}:3: ", f.display())),
                "{line}: {err}"
            );
        }
    }
    // Harmless ones stay accepted (and -v lists them).
    let f = tmp.path().join("harmless.conf");
    std::fs::write(
        &f,
        "Host x\n  ForwardX11 yes\n  SendEnv LANG\n  ControlMaster auto\n",
    )
    .unwrap();
    let (ok, _, err) = run(env!("CARGO_BIN_EXE_tunnelkit"), &f, &[], "x");
    assert!(ok, "{err}");
}

/// ssh's rule for config files (readconf.c, `SSHCONF_CHECKPERM`): `~/.ssh/config` and every
/// Included file must be owned by the user or root and not writable by group or others ("Bad
/// owner or permissions"); a file named with `-F` is not checked. tunnelkit agrees on each.
#[test]
fn writable_config_files_are_refused_where_ssh_refuses_them() {
    use std::os::unix::fs::PermissionsExt;
    let chmod =
        |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let inc = tmp.path().join("included.conf");
    std::fs::write(&inc, "Host x\n  User included\n").unwrap();
    let main = tmp.path().join("main.conf");
    std::fs::write(&main, format!("Include {}\n", inc.display())).unwrap();
    chmod(&main, 0o666);
    chmod(&inc, 0o644);
    // -F FILE writable by others: accepted by both.
    for program in [ssh_path(), env!("CARGO_BIN_EXE_tunnelkit")] {
        let (ok, out, err) = run(program, &main, &[], "x");
        assert!(ok && out.contains("user included"), "{program}: {err}");
    }
    // An Included file writable by others: refused by both, the file named.
    chmod(&inc, 0o666);
    for program in [ssh_path(), env!("CARGO_BIN_EXE_tunnelkit")] {
        let (ok, _, err) = run(program, &main, &[], "x");
        assert!(!ok, "{program} accepted {}", inc.display());
        assert!(
            err.contains("Bad owner or permissions") && err.contains(&inc.display().to_string()),
            "{program}: {err}"
        );
    }
    // ~/.ssh/config writable by group: tunnelkit refuses it with the fix (ssh reads the
    // password database's home, not $HOME, so it cannot be pointed at this directory).
    chmod(&inc, 0o644);
    let home = tmp.path().join("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    let user_config = home.join(".ssh/config");
    std::fs::write(&user_config, "Host x\n  User mine\n").unwrap();
    chmod(&user_config, 0o664);
    let out = Command::new(env!("CARGO_BIN_EXE_tunnelkit"))
        .args(["-G", "x"])
        .env("HOME", &home)
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "tunnelkit accepted a 0664 ~/.ssh/config"
    );
    assert!(
        err.contains("Bad owner or permissions")
            && err.contains("mode 0664")
            && err.contains(&format!("chmod go-w {}", user_config.display())),
        "{err}"
    );
    chmod(&user_config, 0o644);
    let out = Command::new(env!("CARGO_BIN_EXE_tunnelkit"))
        .args(["-G", "x"])
        .env("HOME", &home)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("user mine"));
}
