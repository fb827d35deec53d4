//! Evaluating ssh_config files for one destination, in OpenSSH's order and with its rules.

use std::path::{Path, PathBuf};

use super::exec::{self, MatchExec, MATCH_EXEC_TIMEOUT};
use super::lex::split_line;
use super::ConfigError;
use crate::env::Sources;
use crate::glob::match_list;
use crate::options::{canonical, SshOptions};

/// Include files nest at most this deep, as in OpenSSH.
const MAX_INCLUDE_DEPTH: usize = 16;

/// What is being looked up.
#[derive(Debug, Clone)]
pub struct Query {
    /// The destination as typed (an alias or a host name).
    pub host: String,
    /// The local user name (`%u`, `Match localuser`, default `User`).
    pub local_user: String,
    /// The home directory (`~`, `%d`).
    pub home: PathBuf,
    /// Whether `Match exec` commands run (with which shell), or are refused.
    pub exec: MatchExec,
}

/// The configuration resolved for one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// The destination as typed.
    pub original_host: String,
    /// The host to connect to (`HostName`, with `%h` expanded, or the name typed).
    pub host_name: String,
    /// The login name.
    pub user: String,
    /// The port.
    pub port: u16,
    /// Every option obtained, paths expanded (tokens and `~`).
    pub options: SshOptions,
    /// `IdentityFile` values as written (ssh -G prints them so).
    pub identity_files_raw: Vec<String>,
    /// `CertificateFile` values as written.
    pub certificate_files_raw: Vec<String>,
}

#[derive(Default)]
struct Raw {
    identity: Vec<String>,
    certificate: Vec<String>,
    user_known_hosts: Option<String>,
    global_known_hosts: Option<String>,
    identity_agent: Option<String>,
    host_name: Option<String>,
}

struct Eval<'a> {
    q: &'a Query,
    opts: SshOptions,
    raw: Raw,
    /// The name `Host` lines match: the name typed, then (second pass) the first pass's HostName.
    host: String,
    final_pass: bool,
    want_final: bool,
}

/// Resolves `q.host` through the files in `sources`, after the options already in `cmdline`
/// (which therefore win).
pub fn evaluate(
    q: &Query,
    cmdline: SshOptions,
    sources: &Sources,
) -> Result<HostConfig, ConfigError> {
    let mut e = Eval {
        q,
        opts: cmdline,
        raw: Raw::default(),
        host: q.host.clone(),
        final_pass: false,
        want_final: false,
    };
    e.read_all(sources)?;
    if e.want_final {
        e.host = e.host_name();
        e.final_pass = true;
        e.read_all(sources)?;
    }
    e.finish()
}

impl Eval<'_> {
    fn read_all(&mut self, sources: &Sources) -> Result<(), ConfigError> {
        if let Some(f) = &sources.user {
            let base = self.q.home.join(".ssh");
            // ssh checks ~/.ssh/config's owner and mode, but not a file named with -F.
            let check = !sources.user_required;
            self.read_file(f, &base, 0, false, sources.user_required, check)?;
        }
        if let Some(f) = &sources.system {
            let base = crate::platform::paths::system_ssh_dir();
            self.read_file(f, &base, 0, false, false, false)?;
        }
        Ok(())
    }

    /// The host to connect to: `HostName` with `%h` expanded, or the name; lowercased, as ssh
    /// does.
    fn host_name(&self) -> String {
        match &self.raw.host_name {
            Some(h) => expand_hostname(h, &self.host),
            None => self.host.clone(),
        }
        .to_lowercase()
    }

    fn read_file(
        &mut self,
        file: &Path,
        include_base: &Path,
        depth: usize,
        never_match: bool,
        required: bool,
        check_perm: bool,
    ) -> Result<(), ConfigError> {
        let err = |line: usize, message: String| ConfigError {
            file: file.to_path_buf(),
            line,
            message,
        };
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(()),
            Err(e) => return Err(err(0, format!("cannot read: {e}"))),
        };
        // OpenSSH's readconf.c (SSHCONF_CHECKPERM): the user's file and every Included file
        // must be owned by the user or root and not writable by group or others.
        if check_perm {
            crate::trust::check_config_file(file)
                .map_err(|e| err(0, format!("Bad owner or permissions: {e}")))?;
        }
        let mut active = !never_match;
        for (i, raw_line) in text.lines().enumerate() {
            let n = i + 1;
            let Some(line) = split_line(raw_line).map_err(|m| err(n, m))? else {
                continue;
            };
            let key = line.key.to_ascii_lowercase();
            match key.as_str() {
                "host" => {
                    active = !never_match
                        && match_list(line.args.iter().map(String::as_str), &self.host, false)
                }
                "match" => {
                    let m = self.match_line(&line.args).map_err(|m| err(n, m))?;
                    active = !never_match && m;
                }
                "include" => {
                    if depth >= MAX_INCLUDE_DEPTH {
                        return Err(err(n, "Include nested too deeply".into()));
                    }
                    for pattern in &line.args {
                        for inc in include_files(pattern, include_base, &self.q.home)
                            .map_err(|m| err(n, m))?
                        {
                            self.read_file(&inc, include_base, depth + 1, !active, false, true)?;
                        }
                    }
                }
                _ => {
                    let Some(canon) = canonical(&line.key) else {
                        if self.ignores_unknown(&line.key) {
                            continue;
                        }
                        return Err(err(n, format!("Bad configuration option: {}", line.key)));
                    };
                    if active {
                        let args = if canon == "ProxyCommand" {
                            std::slice::from_ref(&line.raw)
                        } else {
                            &line.args[..]
                        };
                        self.apply(canon, args).map_err(|m| err(n, m))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// `IgnoreUnknown`: an unknown keyword matching its patterns is skipped, as in OpenSSH.
    fn ignores_unknown(&self, key: &str) -> bool {
        self.opts.ignore_unknown.as_deref().is_some_and(|p| {
            match_list(p.split(',').map(str::trim), &key.to_ascii_lowercase(), true)
        })
    }

    fn apply(&mut self, key: &'static str, args: &[String]) -> Result<(), String> {
        let first = args.first().cloned().unwrap_or_default();
        let r = &mut self.raw;
        match key {
            "IdentityFile" => r.identity.push(first),
            "CertificateFile" => r.certificate.push(first),
            "UserKnownHostsFile" => {
                r.user_known_hosts.get_or_insert_with(|| args.join(" "));
            }
            "GlobalKnownHostsFile" => {
                r.global_known_hosts.get_or_insert_with(|| args.join(" "));
            }
            "IdentityAgent" => {
                r.identity_agent.get_or_insert(first);
            }
            "HostName" => {
                r.host_name.get_or_insert(first);
            }
            _ => self
                .opts
                .apply(key, &args.join(" "))
                .map_err(|e| e.to_string())?,
        }
        Ok(())
    }

    /// Evaluates a `Match` line's criteria (all must hold).
    fn match_line(&mut self, args: &[String]) -> Result<bool, String> {
        let mut all = true;
        let mut it = args.iter();
        while let Some(word) = it.next() {
            let (negate, crit) = match word.strip_prefix('!') {
                Some(c) => (true, c.to_ascii_lowercase()),
                None => (false, word.to_ascii_lowercase()),
            };
            let result = match crit.as_str() {
                "all" => {
                    if args.iter().any(|a| !matches!(a.to_ascii_lowercase().as_str(), "all" | "canonical" | "final")) {
                        return Err("Match all must appear alone or with canonical/final".into());
                    }
                    true
                }
                "canonical" | "final" => {
                    if crit == "final" {
                        self.want_final = true;
                    }
                    self.final_pass
                }
                "host" | "originalhost" | "user" | "localuser" => {
                    let arg = it.next().ok_or_else(|| format!("Match {crit}: missing argument"))?;
                    let (subject, fold) = match crit.as_str() {
                        "host" => (self.host_name(), true),
                        "originalhost" => (self.q.host.clone(), true),
                        "user" => (self.opts.user.clone().unwrap_or_else(|| self.q.local_user.clone()), false),
                        _ => (self.q.local_user.clone(), false),
                    };
                    match_list(arg.split(','), &subject, fold)
                }
                "exec" => {
                    let command = it.next().ok_or("Match exec: missing argument")?;
                    // As ssh: not run once an earlier criterion of the line has failed.
                    if !all {
                        continue;
                    }
                    self.exec(command)?
                }
                "localnetwork" | "tagged" | "command" => {
                    return Err(format!(
                        "Match {crit} is not supported by tunnelkit (supported: all, host, originalhost, \
                         user, localuser, canonical, final, exec)"
                    ))
                }
                other => return Err(format!("unsupported Match attribute {other}")),
            };
            all &= result != negate;
        }
        Ok(all)
    }

    /// Runs a `Match exec` command with its `%` tokens expanded from what is known at this
    /// line (readconf.c `expand_match_exec_or_include_path`): the port, user and host so far.
    fn exec(&self, command: &str) -> Result<bool, String> {
        let shell = match &self.q.exec {
            MatchExec::Shell(shell) => shell,
            MatchExec::Refuse => {
                return Err(
                    "Match exec is not run here (commands are refused in this context)".into(),
                )
            }
        };
        let host = if self.final_pass {
            self.host_name()
        } else {
            match &self.raw.host_name {
                Some(h) => expand_hostname(h, &self.host),
                None => self.host.clone(),
            }
        };
        let jump = match &self.opts.proxy_jump {
            Some(j) if !j.eq_ignore_ascii_case("none") => j.clone(),
            _ => String::new(),
        };
        let tokens = Tokens {
            home: self.q.home.display().to_string(),
            alias: self
                .opts
                .host_key_alias
                .clone()
                .unwrap_or_else(|| host.clone()),
            host,
            original: self.q.host.clone(),
            port: self
                .opts
                .port
                .unwrap_or(crate::defaults::SSH_PORT)
                .to_string(),
            user: self
                .opts
                .user
                .clone()
                .unwrap_or_else(|| self.q.local_user.clone()),
            local_user: self.q.local_user.clone(),
            jump,
        };
        if let Some(bad) = unknown_token(command) {
            // ssh's percent_expand is fatal on an unknown key; so is this.
            return Err(format!("Match exec \"{command}\": unknown token %{bad}"));
        }
        exec::matches(shell, &tokens.expand(command), MATCH_EXEC_TIMEOUT)
    }

    fn finish(self) -> Result<HostConfig, ConfigError> {
        let q = self.q;
        let host_name = self.host_name();
        let mut opts = self.opts;
        let user = opts.user.clone().unwrap_or_else(|| q.local_user.clone());
        let port = opts.port.unwrap_or(crate::defaults::SSH_PORT);
        let alias = opts
            .host_key_alias
            .clone()
            .unwrap_or_else(|| host_name.clone());
        let tokens = Tokens {
            home: q.home.display().to_string(),
            host: host_name.clone(),
            original: q.host.clone(),
            port: port.to_string(),
            user: user.clone(),
            local_user: q.local_user.clone(),
            alias,
            jump: opts.proxy_jump.clone().unwrap_or_default(),
        };
        let expand = |s: &str| {
            crate::options::expand_tilde(&tokens.expand(s))
                .display()
                .to_string()
        };
        let raw = self.raw;
        let mut set = |k: &str, v: String| {
            // Values were validated when read; a failure here is a token that made one invalid.
            let _ = opts.apply(k, &v);
        };
        for f in &raw.identity {
            set("IdentityFile", expand(f));
        }
        for f in &raw.certificate {
            set("CertificateFile", expand(f));
        }
        if let Some(v) = &raw.user_known_hosts {
            set(
                "UserKnownHostsFile",
                v.split_whitespace()
                    .map(expand)
                    .collect::<Vec<_>>()
                    .join(" "),
            );
        }
        if let Some(v) = &raw.global_known_hosts {
            set(
                "GlobalKnownHostsFile",
                v.split_whitespace()
                    .map(expand)
                    .collect::<Vec<_>>()
                    .join(" "),
            );
        }
        if let Some(v) = &raw.identity_agent {
            let v = if v == "SSH_AUTH_SOCK" || v.eq_ignore_ascii_case("none") {
                v.clone()
            } else {
                expand(v)
            };
            set("IdentityAgent", v);
        }
        Ok(HostConfig {
            original_host: q.host.clone(),
            host_name,
            user,
            port,
            options: opts,
            identity_files_raw: raw.identity,
            certificate_files_raw: raw.certificate,
        })
    }
}

/// `HostName` accepts only `%h` and `%%`.
fn expand_hostname(v: &str, host: &str) -> String {
    let mut out = String::new();
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        match (c, chars.clone().next()) {
            ('%', Some('h')) => {
                out.push_str(host);
                chars.next();
            }
            ('%', Some('%')) => {
                out.push('%');
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

struct Tokens {
    home: String,
    host: String,
    original: String,
    port: String,
    user: String,
    local_user: String,
    alias: String,
    jump: String,
}

impl Tokens {
    /// Expands `%d %h %n %p %r %u %k %j %l %L %i %C %%`; an unknown token stays as written.
    fn expand(&self, s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('%') => out.push('%'),
                Some('d') => out.push_str(&self.home),
                Some('h') => out.push_str(&self.host),
                Some('n') => out.push_str(&self.original),
                Some('p') => out.push_str(&self.port),
                Some('r') => out.push_str(&self.user),
                Some('u') => out.push_str(&self.local_user),
                Some('k') => out.push_str(&self.alias),
                Some('j') => out.push_str(&self.jump),
                Some('l') => out.push_str(&local_hostname(false)),
                Some('L') => out.push_str(&local_hostname(true)),
                Some('i') => out.push_str(&uid()),
                Some('C') => out.push_str(&self.connection_hash()),
                Some(other) => {
                    out.push('%');
                    out.push(other);
                }
                None => out.push('%'),
            }
        }
        out
    }

    /// `%C`: SHA1 of `%l%h%p%r%j`, as OpenSSH computes it.
    fn connection_hash(&self) -> String {
        use sha1::{Digest, Sha1};
        let mut h = Sha1::new();
        h.update(local_hostname(false));
        h.update(&self.host);
        h.update(&self.port);
        h.update(&self.user);
        h.update(&self.jump);
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The first `%x` in `s` that [`Tokens::expand`] does not know, if any.
fn unknown_token(s: &str) -> Option<char> {
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.next() {
                Some(
                    '%' | 'd' | 'h' | 'n' | 'p' | 'r' | 'u' | 'k' | 'j' | 'l' | 'L' | 'i' | 'C',
                ) => {}
                Some(other) => return Some(other),
                None => return Some(' '),
            }
        }
    }
    None
}

fn local_hostname(short: bool) -> String {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default()
        .trim()
        .to_string();
    if short {
        h.split('.').next().unwrap_or_default().to_string()
    } else {
        h
    }
}

fn uid() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("Uid:")
                    .and_then(|r| r.split_whitespace().next().map(str::to_string))
            })
        })
        .unwrap_or_default()
}

/// The files an `Include` names: `~` expanded, relative paths under `base`, globs sorted.
fn include_files(pattern: &str, base: &Path, home: &Path) -> Result<Vec<PathBuf>, String> {
    let p = if pattern == "~" {
        home.to_path_buf()
    } else if let Some(rest) = pattern.strip_prefix("~/") {
        home.join(rest)
    } else if Path::new(pattern).is_absolute() {
        PathBuf::from(pattern)
    } else {
        base.join(pattern)
    };
    let text = p
        .to_str()
        .ok_or_else(|| format!("Include {pattern}: not valid UTF-8"))?;
    let mut found: Vec<PathBuf> = glob::glob(text)
        .map_err(|e| format!("Include {pattern}: {e}"))?
        .filter_map(Result::ok)
        .filter(|f| f.is_file())
        .collect();
    found.sort();
    Ok(found)
}
