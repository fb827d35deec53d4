//! Which keyboard-interactive prompts ask for the account's password, so that a password stored
//! in the keyring may answer them (as GUI clients with saved passwords do; OpenSSH itself never does).
//!
//! The rule: the prompt hides what is typed (echo off), its text contains `password`
//! (case-insensitive), and it names nothing that marks a one-time or second factor or a
//! password change: `one-time`, `one time`, `otp`, `oath`, `verification`, `code`, `token`,
//! `passcode`, `pin`, `new`, `again`, `retype`, `confirm`. So PAM's `Password: ` and
//! `root@host's password: ` are answered; `One-time password (OATH) for 'root': `,
//! `Verification code: ` and `New password: ` go to a person.

/// Words that make a password-looking prompt something else (lowercase).
const NOT_THE_PASSWORD: &[&str] = &[
    "one-time",
    "one time",
    "otp",
    "oath",
    "verification",
    "code",
    "token",
    "passcode",
    "pin",
    "new",
    "again",
    "retype",
    "confirm",
];

/// True when a keyboard-interactive prompt asks for the account's password (see the module's
/// rule).
pub(super) fn is_password_prompt(prompt: &str, echo: bool) -> bool {
    if echo {
        return false;
    }
    let p = prompt.to_lowercase();
    p.contains("password") && !NOT_THE_PASSWORD.iter().any(|w| p.contains(w))
}

#[cfg(test)]
mod tests {
    use super::is_password_prompt;

    #[test]
    fn the_password_is_told_from_one_time_codes_and_changes() {
        for (prompt, echo, want) in [
            ("Password: ", false, true),
            ("password:", false, true),
            ("root@bastion's password: ", false, true),
            ("Enter PASSWORD for alice: ", false, true),
            ("Password: ", true, false),
            ("One-time password (OATH) for `root': ", false, false),
            ("Verification code: ", false, false),
            ("OTP password: ", false, false),
            ("Enter your PIN or password token: ", false, false),
            ("New password: ", false, false),
            ("Retype new password: ", false, false),
            ("Password again: ", false, false),
            ("Passcode or option (1-3): ", false, false),
            ("Duo two-factor login", false, false),
        ] {
            assert_eq!(
                is_password_prompt(prompt, echo),
                want,
                "{prompt:?} echo={echo}"
            );
        }
    }
}
