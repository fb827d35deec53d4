//! One notification ([`Notification`], [`Urgency`]), the deadlines of showing it, and its text
//! as each service needs it written (markup entities, an AppleScript literal).

/// Connecting to the session bus may take this long.
pub const CONNECT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(3);
/// One `Notify` call may take this long.
pub const CALL_DEADLINE: std::time::Duration = std::time::Duration::from_secs(3);
/// The name notifications are sent under.
pub const APP_NAME: &str = "tunnelkit";

/// How pressing a notification is (the freedesktop `urgency` hint).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Urgency {
    /// Good news (a failback).
    Low = 0,
    /// Worth knowing (a failover).
    Normal = 1,
    /// Someone must act (a profile gave up, or needs input).
    Critical = 2,
}

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The profile it is about (a newer notification of the same profile replaces it).
    pub profile: String,
    /// The title.
    pub summary: String,
    /// The text (plain; escaped for markup when sent).
    pub body: String,
    /// How pressing.
    pub urgency: Urgency,
}

/// `&`, `<` and `>` as entities: notification servers may read the body as markup.
pub fn escape_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// The AppleScript that shows `n` in the macOS notification centre (`osascript -e`): the
/// body as the text, `tunnelkit` as the title, the summary as the subtitle.
pub fn applescript(n: &Notification) -> String {
    format!(
        "display notification {} with title {} subtitle {}",
        applescript_string(&n.body),
        applescript_string(APP_NAME),
        applescript_string(&n.summary)
    )
}

/// An AppleScript string literal: backslashes and quotes escaped, control characters (line
/// breaks among them) as spaces.
fn applescript_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_characters_are_escaped() {
        assert_eq!(escape_markup("a <b> & c"), "a &lt;b&gt; &amp; c");
    }

    #[test]
    fn the_applescript_quotes_what_a_profile_name_or_error_may_hold() {
        let n = Notification {
            profile: "p".into(),
            summary: r#"rdp "lab" \ failed over"#.into(),
            body: "line one\nline two".into(),
            urgency: Urgency::Normal,
        };
        assert_eq!(
            applescript(&n),
            r#"display notification "line one line two" with title "tunnelkit" subtitle "rdp \"lab\" \\ failed over""#
        );
    }
}
