//! The autostart files of every OS, checked on any OS.

use super::*;

/// A tiny well-formedness check: every element opened is closed in order, `<?…?>`, `<!…>`
/// and `<…/>` aside, and every `&…;` is one [`xml_unescape`] knows. Returns the root's name.
fn well_formed(xml: &str) -> Result<String, String> {
    let mut open: Vec<String> = Vec::new();
    let mut root = None;
    let mut rest = xml;
    while let Some(at) = rest.find('<') {
        xml_unescape(&rest[..at]).ok_or_else(|| format!("bad reference in {:?}", &rest[..at]))?;
        let end = rest[at..].find('>').ok_or("unclosed <")? + at;
        let tag = &rest[at + 1..end];
        rest = &rest[end + 1..];
        if tag.starts_with('?') || tag.starts_with('!') || tag.ends_with('/') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            match open.pop() {
                Some(o) if o == name => {}
                o => return Err(format!("</{name}> closes {o:?}")),
            }
        } else {
            let name = tag
                .split_whitespace()
                .next()
                .ok_or("empty tag")?
                .to_string();
            if open.is_empty() {
                if root.is_some() {
                    return Err(format!("second root <{name}>"));
                }
                root = Some(name.clone());
            }
            open.push(name);
        }
    }
    if !open.is_empty() {
        return Err(format!("unclosed {open:?}"));
    }
    root.ok_or_else(|| "no root".to_string())
}

#[test]
fn the_checker_can_fail() {
    assert_eq!(well_formed("<a><b/></a>"), Ok("a".into()));
    assert!(well_formed("<a><b></a></b>").is_err());
    assert!(well_formed("<a>x & y</a>").is_err());
    assert!(well_formed("<a></a><b></b>").is_err());
}

#[test]
fn the_unit_runs_this_binary_and_otherwise_is_the_example() {
    let unit = systemd_unit("/home/ann/.cargo/bin/tunnelkit");
    assert!(unit.contains("\nExecStart=/home/ann/.cargo/bin/tunnelkit agent\n"));
    // Every setting of examples/systemd/tunnelkit-agent.service, ExecStart aside.
    let example = include_str!("../../../../examples/systemd/tunnelkit-agent.service");
    let settings = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("ExecStart="))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(settings(&unit), settings(example));
    assert_eq!(
        unit_program(&unit).as_deref(),
        Some("/home/ann/.cargo/bin/tunnelkit")
    );
}

#[test]
fn unit_paths_with_spaces_percent_and_dollar_are_quoted_and_read_back() {
    let exe = r#"/opt/my tools/50%/$HOME/"q"\tunnelkit"#;
    let unit = systemd_unit(exe);
    assert!(
        unit.contains(r#"ExecStart="/opt/my tools/50%%/$$HOME/\"q\"\\tunnelkit" agent"#),
        "{unit}"
    );
    assert_eq!(unit_program(&unit).as_deref(), Some(exe));
    assert_eq!(
        unit_program("ExecStart=-/bin/x%%y a").as_deref(),
        Some("/bin/x%y")
    );
    assert_eq!(unit_program("ExecStart=\"/bin/unterminated"), None);
    assert_eq!(unit_program("[Service]\n"), None);
}

#[test]
fn paths_that_cannot_be_written_are_refused() {
    use std::path::Path;
    assert_eq!(
        path_text(Path::new("/usr/bin/tunnelkit")),
        Ok("/usr/bin/tunnelkit".into())
    );
    assert!(matches!(
        path_text(Path::new("/tmp/a\nExecStartPre=/bin/evil")),
        Err(ContentError::ControlCharacter(_))
    ));
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let p = Path::new(std::ffi::OsStr::from_bytes(b"/tmp/\xff"));
        assert!(matches!(path_text(p), Err(ContentError::NotUtf8(_))));
    }
}

#[test]
fn xml_escaping_round_trips() {
    let text = r#"a&b<c>d"e'f"#;
    assert_eq!(xml_escape(text), "a&amp;b&lt;c&gt;d&quot;e&apos;f");
    assert_eq!(xml_unescape(&xml_escape(text)).as_deref(), Some(text));
    assert_eq!(xml_unescape("&#65;&#x42;").as_deref(), Some("AB"));
    assert_eq!(xml_unescape("a & b"), None);
    assert_eq!(xml_unescape("&bogus;"), None);
}

#[test]
fn the_plist_escapes_paths_and_is_well_formed() {
    let exe = "/Users/a&b/<bin>/tunnelkit";
    let log = "/Users/a&b/Library/Logs/tunnelkit/agent.log";
    let plist = launchd_plist(exe, log);
    assert_eq!(well_formed(&plist), Ok("plist".into()));
    assert!(plist.contains(
        "<key>ProgramArguments</key>\n\t<array>\n\t\t<string>/Users/a&amp;b/&lt;bin&gt;/tunnelkit</string>\n\t\t<string>agent</string>\n\t</array>"
    ));
    assert!(plist.contains("<key>Label</key>\n\t<string>com.tunnelkit.agent</string>"));
    assert!(plist.contains("<key>RunAtLoad</key>\n\t<true/>"));
    assert!(plist.contains(
        "<key>KeepAlive</key>\n\t<dict>\n\t\t<key>SuccessfulExit</key>\n\t\t<false/>\n\t</dict>"
    ));
    for key in ["StandardOutPath", "StandardErrorPath"] {
        assert!(plist.contains(&format!(
            "<key>{key}</key>\n\t<string>/Users/a&amp;b/Library/Logs/tunnelkit/agent.log</string>"
        )));
    }
    assert_eq!(plist_program(&plist).as_deref(), Some(exe));
    assert_eq!(plist_program("<plist/>"), None);
}

#[test]
fn the_task_escapes_quotes_and_names_the_user() {
    let exe = r"C:\Users\Ann & Bob\<tools>\tunnelkit.exe";
    let xml = task_xml(
        exe,
        r"CORP\ann&bob",
        r"C:\Users\Ann & Bob\AppData\Local\tunnelkit\agent.log",
    );
    assert_eq!(well_formed(&xml), Ok("Task".into()));
    assert!(xml.contains(
        "<Command>&quot;C:\\Users\\Ann &amp; Bob\\&lt;tools&gt;\\tunnelkit.exe&quot;</Command>"
    ));
    assert!(xml.contains(
        "<Arguments>agent --log-file &quot;C:\\Users\\Ann &amp; Bob\\AppData\\Local\\tunnelkit\\agent.log&quot;</Arguments>"
    ));
    assert!(xml.contains(
        "<LogonTrigger>\n      <Enabled>true</Enabled>\n      <UserId>CORP\\ann&amp;bob</UserId>"
    ));
    for setting in [
        "<ExecutionTimeLimit>PT0S</ExecutionTimeLimit>",
        "<DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>",
        "<MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>",
        "<RestartOnFailure>",
        "<Task version=\"1.2\"",
    ] {
        assert!(xml.contains(setting), "{setting}");
    }
    assert_eq!(task_program(&xml).as_deref(), Some(exe));
}

#[test]
fn a_path_with_spaces_is_one_quoted_word_of_the_command_line() {
    let xml = task_xml(
        r"C:\Program Files\tunnelkit\tunnelkit.exe",
        r"PC\ann",
        r"C:\log.txt",
    );
    assert!(
        xml.contains("<Command>&quot;C:\\Program Files\\tunnelkit\\tunnelkit.exe&quot;</Command>")
    );
    assert_eq!(
        task_program(&xml).as_deref(),
        Some(r"C:\Program Files\tunnelkit\tunnelkit.exe")
    );
}

#[test]
fn task_files_are_utf16le_with_a_bom_and_read_back() {
    let bytes = utf16le_with_bom("<a>é</a>");
    assert_eq!(&bytes[..6], &[0xFF, 0xFE, b'<', 0, b'a', 0]);
    assert_eq!(decode_output(&bytes), "<a>é</a>");
    assert_eq!(decode_output(&bytes[2..]), "<a>é</a>");
    assert_eq!(decode_output(b"<a>plain</a>"), "<a>plain</a>");
}
