//! PAM for a test sshd, without touching the system's `sshd` PAM service: sshd names its PAM
//! service after its program name (`__progname`, from argv[0]), so the harness starts sshd as
//! `sshd-tk<random>` and writes `/etc/pam.d/sshd-tk<random>`, removed on drop.
//!
//! The stack asks, through keyboard-interactive, for a password the test chose (`pam_exec` with
//! `expose_authtok`: it asks `Password: ` with echo off and hands the answer to a script that
//! compares it) and/or a TOTP code (`pam_oath`, 6 digits, a window of 1 step either side; a code
//! already used is refused, as pam_oath records the last one in its users file).

use std::path::{Path, PathBuf};
use std::process::Command;

/// What the PAM stack of a test sshd asks for, in this order.
#[derive(Debug, Clone, Default)]
pub struct PamAuth {
    /// A TOTP secret in hex (e.g. 40 hex digits): asks `One-time password (OATH) for `USER': `.
    pub totp_secret: Option<String>,
    /// A password: asks `Password: ` (echo off) and compares.
    pub password: Option<String>,
}

/// A PAM service file of our own; removed on drop.
pub(crate) struct PamService {
    /// The service name, which is also sshd's argv[0].
    pub(crate) name: String,
    file: PathBuf,
}

impl Drop for PamService {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

/// Finds `module` in the usual PAM module directories; panics naming `package` when missing.
fn pam_module(module: &str, package: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = vec!["/usr/lib/security".into(), "/lib/security".into()];
    for base in ["/usr/lib", "/lib", "/usr/lib64"] {
        if let Ok(rd) = std::fs::read_dir(base) {
            dirs.extend(rd.flatten().map(|e| e.path().join("security")));
        }
        dirs.push(PathBuf::from(base).join("security"));
    }
    dirs.iter()
        .map(|d| d.join(module))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{module} not found: install the {package} package (apt-get install {package})")
        })
}

/// Writes the PAM stack for `auth` (its files in `dir`) as `/etc/pam.d/sshd-tk<random>`.
pub(crate) fn install(dir: &Path, auth: &PamAuth) -> PamService {
    use std::os::unix::fs::PermissionsExt;
    let mut lines = Vec::new();
    if let Some(pw) = &auth.password {
        pam_module("pam_exec.so", "libpam-modules");
        std::fs::write(dir.join("pam-password"), pw).expect("pam password file");
        let check = dir.join("pam-check-password");
        std::fs::write(
            &check,
            format!(
                "#!/bin/sh\nexec cmp -s {} -\n",
                dir.join("pam-password").display()
            ),
        )
        .expect("pam check script");
        std::fs::set_permissions(&check, std::fs::Permissions::from_mode(0o755))
            .expect("chmod pam check script");
        lines.push(format!(
            "auth requisite pam_exec.so expose_authtok quiet {}",
            check.display()
        ));
    }
    if let Some(secret) = &auth.totp_secret {
        let module = pam_module("pam_oath.so", "libpam-oath");
        crate::find_program("oathtool", "oathtool");
        let users = dir.join("pam-oath-users");
        std::fs::write(&users, format!("HOTP/T30 root - {secret}\n")).expect("oath users file");
        std::fs::set_permissions(&users, std::fs::Permissions::from_mode(0o600))
            .expect("chmod oath users file");
        lines.push(format!(
            "auth required {} usersfile={} window=1 digits=6",
            module.display(),
            users.display()
        ));
    }
    // pam_exec and pam_oath do not establish credentials: without a module that does,
    // sshd's pam_setcred fails after a successful login.
    lines.extend([
        "auth optional pam_permit.so".to_string(),
        "account required pam_permit.so".into(),
        "session required pam_permit.so".into(),
        "password required pam_deny.so".into(),
    ]);
    // The temporary directory's random name makes the service name unique. Lowercase: PAM
    // lowercases the service name, and a file it does not find means the `other` service.
    let unique: String = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let name = format!("sshd-tk{unique}{}", std::process::id());
    let file = PathBuf::from("/etc/pam.d").join(&name);
    std::fs::write(&file, lines.join("\n") + "\n").expect("write /etc/pam.d service (as root)");
    PamService { name, file }
}

/// The current TOTP code of a hex secret (`oathtool --totp HEX`).
pub(crate) fn totp_code(secret: &str) -> String {
    let out = Command::new(crate::find_program("oathtool", "oathtool"))
        .args(["--totp", secret])
        .output()
        .expect("run oathtool");
    assert!(
        out.status.success(),
        "oathtool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The current 30 s TOTP step (Unix time / 30).
pub(crate) fn totp_step() -> u64 {
    unix_secs() / 30
}

/// Seconds until the next 30 s TOTP step begins (1..=30).
pub fn secs_to_next_totp_step() -> u64 {
    30 - unix_secs() % 30
}
