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

    let exec = tmp.path().join("exec.conf");
    std::fs::write(&exec, "Match exec \"true\"\n  User never\n").unwrap();
    let (ok, _, err) = run(env!("CARGO_BIN_EXE_tunnelkit"), &exec, &[], "x");
    assert!(!ok);
    assert!(err.contains(":1: Match exec is not supported"), "{err}");
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
