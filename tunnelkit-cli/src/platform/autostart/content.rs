//! What `tunnelkit agent install` writes on each OS, as pure functions of the binary's path
//! (compiled everywhere, so Linux tests check the macOS plist and the Windows task too), and
//! the readers that find the program again in such a file for `tunnelkit agent status`.

/// The systemd user unit's file name (also the unit's name).
pub const UNIT_NAME: &str = "tunnelkit-agent.service";
/// The LaunchAgent's label (and its file name, with `.plist`).
pub const LAUNCHD_LABEL: &str = "com.tunnelkit.agent";
/// The Task Scheduler task's name.
pub const TASK_NAME: &str = "tunnelkit-agent";

/// Why a binary's path cannot be written into an autostart file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    /// The path is not UTF-8 (the files are text).
    #[error("the binary's path is not UTF-8: {0}")]
    NotUtf8(String),
    /// The path has a control character (a line break would end the setting early).
    #[error("the binary's path has a control character: {0:?}")]
    ControlCharacter(String),
}

/// `path` as text fit for every file below: UTF-8 without control characters.
pub fn path_text(path: &std::path::Path) -> Result<String, ContentError> {
    let text = path
        .to_str()
        .ok_or_else(|| ContentError::NotUtf8(path.display().to_string()))?;
    if text.chars().any(char::is_control) {
        return Err(ContentError::ControlCharacter(text.to_string()));
    }
    Ok(text.to_string())
}

/// The systemd user unit, as examples/systemd/tunnelkit-agent.service but running `exe`.
pub fn systemd_unit(exe: &str) -> String {
    format!(
        "# Written by `tunnelkit agent install`; `tunnelkit agent uninstall` removes it.\n\
         # Logs: journalctl --user -u tunnelkit-agent -f\n\
         [Unit]\n\
         Description=tunnelkit agent: keeps SSH tunnel profiles alive\n\
         Documentation=man:tunnelkit(1)\n\
         \n\
         [Service]\n\
         Type=simple\n\
         ExecStart={} agent\n\
         ExecReload=/bin/kill -HUP $MAINPID\n\
         Restart=on-failure\n\
         RestartSec=5\n\
         # The agent exits within 5 s of SIGTERM, closing its tunnels and removing its socket.\n\
         TimeoutStopSec=10\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
        systemd_word(exe)
    )
}

/// One word of a systemd command line: as is when it has only plain characters, else in
/// double quotes with `\` and `"` escaped; `%` (specifiers) and `$` (variables) doubled.
fn systemd_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+@,:".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        return word.to_string();
    }
    let mut out = String::from("\"");
    for c in word.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '%' => out.push_str("%%"),
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The program a unit's `ExecStart=` runs (its first word, unquoted), as
/// [`systemd_unit`] writes it.
pub fn unit_program(unit: &str) -> Option<String> {
    let value = unit
        .lines()
        .find_map(|l| l.trim().strip_prefix("ExecStart="))?
        .trim_start_matches(['-', '@', ':', '+', '!']);
    let mut out = String::new();
    let mut chars = value.chars().peekable();
    if chars.peek() == Some(&'"') {
        chars.next();
        while let Some(c) = chars.next() {
            match c {
                '"' => return Some(out),
                '\\' => out.push(chars.next()?),
                '%' | '$' if chars.peek() == Some(&c) => {
                    chars.next();
                    out.push(c);
                }
                c => out.push(c),
            }
        }
        None
    } else {
        Some(
            value
                .split_whitespace()
                .next()?
                .replace("%%", "%")
                .replace("$$", "$"),
        )
    }
}

/// `text` with the five XML special characters escaped.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The inverse of [`xml_escape`] (and numeric references).
pub fn xml_unescape(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let end = rest[at..].find(';')? + at;
        let c = match &rest[at + 1..end] {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            n => {
                let code = match n.strip_prefix("#x") {
                    Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                    None => n.strip_prefix('#')?.parse().ok()?,
                };
                char::from_u32(code)?
            }
        };
        out.push(c);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// The macOS LaunchAgent running `exe agent` at login, logging to `log`.
///
/// `KeepAlive` is `{SuccessfulExit = false}`, as the systemd unit's `Restart=on-failure`:
/// launchd starts the agent again when it fails, but not after an orderly stop (exit 0 on
/// SIGTERM), so that stopping it is possible without removing it; `ThrottleInterval` 5 s as
/// `RestartSec=5`. `ProcessType` is `Interactive`: the agent carries the user's own RDP, VNC
/// and shell traffic, which `Background` would throttle.
pub fn launchd_plist(exe: &str, log: &str) -> String {
    let exe = xml_escape(exe);
    let log = xml_escape(log);
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<!-- Written by `tunnelkit agent install`; `tunnelkit agent uninstall` removes it. -->
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>{LAUNCHD_LABEL}</string>
	<key>ProgramArguments</key>
	<array>
		<string>{exe}</string>
		<string>agent</string>
	</array>
	<key>RunAtLoad</key>
	<true/>
	<key>KeepAlive</key>
	<dict>
		<key>SuccessfulExit</key>
		<false/>
	</dict>
	<key>ThrottleInterval</key>
	<integer>5</integer>
	<key>ProcessType</key>
	<string>Interactive</string>
	<key>StandardOutPath</key>
	<string>{log}</string>
	<key>StandardErrorPath</key>
	<string>{log}</string>
</dict>
</plist>
"#
    )
}

/// The text of the first `<open>…</close>` element after `from` in `xml`, unescaped.
fn element_after(xml: &str, from: usize, open: &str, close: &str) -> Option<String> {
    let start = xml[from..].find(open)? + from + open.len();
    let end = xml[start..].find(close)? + start;
    xml_unescape(&xml[start..end])
}

/// The program a LaunchAgent plist runs: the first string of its `ProgramArguments`.
pub fn plist_program(plist: &str) -> Option<String> {
    let key = plist.find("<key>ProgramArguments</key>")?;
    element_after(plist, key, "<string>", "</string>")
}

/// The Task Scheduler task (schema 1.2) running `"exe" agent --log-file "log"` at the logon
/// of `user` (`DOMAIN\name`), as that user, without a time limit, restarted every minute when
/// it fails, on battery too, never twice at once.
pub fn task_xml(exe: &str, user: &str, log: &str) -> String {
    let command = xml_escape(&format!("\"{exe}\""));
    let arguments = xml_escape(&format!("agent --log-file \"{log}\""));
    let user = xml_escape(user);
    format!(
        r#"<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Description>tunnelkit agent: keeps SSH tunnel profiles alive. Written by `tunnelkit agent install`; `tunnelkit agent uninstall` removes it.</Description>
    <URI>\{TASK_NAME}</URI>
  </RegistrationInfo>
  <Triggers>
    <LogonTrigger>
      <Enabled>true</Enabled>
      <UserId>{user}</UserId>
    </LogonTrigger>
  </Triggers>
  <Principals>
    <Principal id="Author">
      <UserId>{user}</UserId>
      <LogonType>InteractiveToken</LogonType>
      <RunLevel>LeastPrivilege</RunLevel>
    </Principal>
  </Principals>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <AllowHardTerminate>true</AllowHardTerminate>
    <StartWhenAvailable>true</StartWhenAvailable>
    <RunOnlyIfNetworkAvailable>false</RunOnlyIfNetworkAvailable>
    <IdleSettings>
      <StopOnIdleEnd>false</StopOnIdleEnd>
      <RestartOnIdle>false</RestartOnIdle>
    </IdleSettings>
    <AllowStartOnDemand>true</AllowStartOnDemand>
    <Enabled>true</Enabled>
    <Hidden>false</Hidden>
    <RunOnlyIfIdle>false</RunOnlyIfIdle>
    <WakeToRun>false</WakeToRun>
    <ExecutionTimeLimit>PT0S</ExecutionTimeLimit>
    <Priority>5</Priority>
    <RestartOnFailure>
      <Interval>PT1M</Interval>
      <Count>999</Count>
    </RestartOnFailure>
  </Settings>
  <Actions Context="Author">
    <Exec>
      <Command>{command}</Command>
      <Arguments>{arguments}</Arguments>
    </Exec>
  </Actions>
</Task>
"#
    )
}

/// The program a task runs: its first `<Command>`, without the quotes around it.
pub fn task_program(xml: &str) -> Option<String> {
    let command = element_after(xml, 0, "<Command>", "</Command>")?;
    let command = command.trim();
    Some(
        command
            .strip_prefix('"')
            .and_then(|c| c.strip_suffix('"'))
            .unwrap_or(command)
            .to_string(),
    )
}

/// `text` as Task Scheduler reads an XML file: UTF-16LE after a byte order mark.
pub fn utf16le_with_bom(text: &str) -> Vec<u8> {
    let mut out = vec![0xFF, 0xFE];
    out.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    out
}

/// What a Windows tool printed, as text: UTF-16LE when it starts with a byte order mark or
/// looks like it (every second byte zero), else UTF-8 (lossy).
pub fn decode_output(bytes: &[u8]) -> String {
    let utf16 = bytes.starts_with(&[0xFF, 0xFE])
        || (bytes.len() >= 4 && bytes.len() % 2 == 0 && bytes[1] == 0 && bytes[3] == 0);
    if !utf16 {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let body = bytes.strip_prefix(&[0xFF, 0xFE]).unwrap_or(bytes);
    let units: Vec<u16> = body
        .chunks_exact(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

#[cfg(test)]
#[path = "content_tests.rs"]
mod tests;
