//! A command that refreshes a hop's short-lived user certificate before a connect (step-ca's
//! `step ssh certificate`, Vault's `vault write -field=signed_key ...`, a site's own helper),
//! as trzsz-ssh's `OtpCommand` does for one-time codes. Not an OpenSSH keyword: it comes from a
//! profile's `certificate_command` or the command line's `--certificate-command`, never from
//! ssh_config.
//!
//! The rule (run by the session code, `session/auth/cert_command.rs`): before a hop is
//! connected, its certificate files (each `CertificateFile`, else `IDENTITY-cert.pub` beside each
//! identity file) are read; when none is valid for at least
//! [`CERTIFICATE_REFRESH_MARGIN`](super::defaults::CERTIFICATE_REFRESH_MARGIN) more, the command
//! runs, without a shell, standard input on `/dev/null`, for at most
//! [`CERTIFICATE_COMMAND_TIMEOUT`](super::defaults::CERTIFICATE_COMMAND_TIMEOUT) (then it is
//! ended with its whole process group). Its output is read and thrown away, never logged (it
//! may hold tokens); only its exit status and byte counts are told. A failure fails the route
//! attempt with [`Error::CertificateCommand`](crate::Error::CertificateCommand), and the route is
//! tried again later like after any failure.

/// Why words are not a certificate command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateCommandError {
    /// No words at all.
    #[error(
        "expected a program and its arguments, e.g. [\"step\", \"ssh\", \"certificate\", ...]; \
         got nothing"
    )]
    Empty,
    /// The first word is empty or blank.
    #[error("the program (first word) is empty")]
    EmptyProgram,
}

/// The program and its arguments: at least a program, which is not empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateCommand {
    argv: Vec<String>,
}

impl CertificateCommand {
    /// A command from its words (no shell will ever see them: `$HOME`, `~`, `*` and quotes are
    /// passed as they are). `Err` says what is wrong: no words, or an empty program.
    pub fn new(argv: Vec<String>) -> Result<Self, CertificateCommandError> {
        match argv.first() {
            None => Err(CertificateCommandError::Empty),
            Some(p) if p.trim().is_empty() => Err(CertificateCommandError::EmptyProgram),
            Some(_) => Ok(CertificateCommand { argv }),
        }
    }

    /// Every word, the program first.
    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    /// The program (the first word), as errors name it.
    pub fn program(&self) -> &str {
        self.argv.first().map(String::as_str).unwrap_or_default()
    }
}

impl super::Route {
    /// Gives every hop of the route `command` (or none).
    pub fn set_certificate_command(&mut self, command: Option<&CertificateCommand>) {
        for hop in &mut self.hops {
            std::sync::Arc::make_mut(&mut hop.options)
                .auth
                .certificate_command = command.cloned();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_stay_words_and_nothing_is_expanded() {
        let words = [
            "step",
            "ssh",
            "certificate",
            "alice smith",
            "~/.ssh/id",
            "$HOME",
        ];
        let c = CertificateCommand::new(words.iter().map(|w| w.to_string()).collect()).unwrap();
        assert_eq!(c.argv(), words);
        assert_eq!(c.program(), "step");
        assert_eq!(
            CertificateCommand::new(Vec::new()),
            Err(CertificateCommandError::Empty)
        );
        assert_eq!(
            CertificateCommand::new(vec![" ".into(), "x".into()]),
            Err(CertificateCommandError::EmptyProgram)
        );
    }
}
