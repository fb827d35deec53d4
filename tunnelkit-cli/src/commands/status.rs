//! `tunnelkit status [--json | --watch]`: every profile as a table, one row per forward, its
//! KIND `local` (`-L`), `dynamic` (`-D`, a SOCKS proxy) or `remote` (`-R`), as the JSON's
//! `kind` of `forwards` says and `remote_forwards` are. Column widths follow the content, so rows line up however long a forward is; on a terminal too
//! narrow for it the address columns are shortened in the middle (`…`) and the last error is
//! wrapped. `--json` always has the full text.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tunnelkit_agent::protocol::{ProfileJson, Request, Response};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::agent::{call, finish, local_time};
use crate::exit::Exit;
use crate::opts::StatusArgs;

/// `--watch` redraws this often unless `--interval` says otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);

/// Columns are never shortened below this many characters.
const MIN_WIDTH: usize = 12;

/// Space between columns.
const GAP: &str = "  ";

/// `tunnelkit status`.
pub async fn run(args: &StatusArgs, cancel: &CancellationToken) -> Exit {
    if args.watch {
        return watch(args, cancel).await;
    }
    let json = args.json;
    finish(
        call(&args.socket, Request::Status, false, cancel).await,
        |r| {
            let Response::Status { profiles } = r else {
                return;
            };
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&profiles).unwrap_or_default()
                );
            } else {
                print!("{}", table(&profiles, crate::platform::terminal_width()));
            }
        },
    )
}

/// `tunnelkit status --watch`: the table again every interval, until Ctrl-C or SIGTERM. On a
/// terminal each frame replaces the last; otherwise frames follow each other.
async fn watch(args: &StatusArgs, cancel: &CancellationToken) -> Exit {
    let interval = args.interval.unwrap_or(DEFAULT_INTERVAL);
    let tty = std::io::stdout().is_terminal();
    loop {
        let answer = call(&args.socket, Request::Status, false, cancel).await;
        if cancel.is_cancelled() {
            return Exit::Success;
        }
        let now = tunnelkit_agent::protocol::unix_ms(std::time::SystemTime::now());
        let mut frame = String::new();
        if tty {
            frame.push_str("\x1b[H\x1b[2J"); // cursor home, clear the screen
        }
        frame.push_str(&format!(
            "{}  every {}s; Ctrl-C to stop\n\n",
            local_time(now),
            interval.as_secs_f64()
        ));
        match answer {
            Ok(Response::Status { profiles }) => {
                frame.push_str(&table(&profiles, crate::platform::terminal_width()))
            }
            Ok(_) => frame.push_str("tunnelkit: the agent answered another question\n"),
            Err(e) => frame.push_str(&format!("tunnelkit: {e}\n")),
        }
        if !tty {
            frame.push('\n');
        }
        let mut out = std::io::stdout().lock();
        if out
            .write_all(frame.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            return Exit::Failure; // stdout closed (`| head`)
        }
        drop(out);
        tokio::select! {
            _ = cancel.cancelled() => return Exit::Success,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

/// Columns in the table.
const COLUMNS: usize = 9;
const HEADERS: [&str; COLUMNS] = [
    "PROFILE", "STATE", "ROUTE", "KIND", "LOCAL", "REMOTE", "CONN", "IN", "OUT",
];
/// Right-aligned columns (numbers).
const NUMERIC: [bool; COLUMNS] = [false, false, false, false, false, false, true, true, true];
/// The order in which columns give up width on a narrow terminal.
const SHRINK_ORDER: [usize; 4] = [5, 4, 0, 2];

/// The KIND of a remote forward's row (local and dynamic ones say their JSON `kind`).
const REMOTE_KIND: &str = "remote";

/// The table, one row per forward (a profile without forwards gets one row), and under a
/// profile its last error. `width`: the terminal's, to fit; `None`: never shortened.
pub fn table(profiles: &[ProfileJson], width: Option<usize>) -> String {
    let mut rows: Vec<([String; COLUMNS], Vec<String>)> = Vec::new();
    for p in profiles {
        let route = p.route.clone().unwrap_or_else(|| "-".into());
        let head = [p.name.clone(), p.state.to_string(), route];
        if p.forwards.is_empty() {
            let [a, b, c] = head.clone();
            rows.push((
                [
                    a,
                    b,
                    c,
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    String::new(),
                    String::new(),
                    String::new(),
                ],
                Vec::new(),
            ));
        }
        for (i, f) in p.forwards.iter().enumerate() {
            let [a, b, c] = if i == 0 {
                head.clone()
            } else {
                Default::default()
            };
            rows.push((
                [
                    a,
                    b,
                    c,
                    f.kind.to_string(),
                    match f.exposure() {
                        Some(mark) => format!("{} ({mark})", f.local),
                        None => f.local.clone(),
                    },
                    f.remote.clone(),
                    format!("{}/{}", f.active, f.total),
                    bytes(f.bytes_in),
                    bytes(f.bytes_out),
                ],
                Vec::new(),
            ));
        }
        // Remote forwards (-R): the bastion listens, connections come to a target on this side.
        for r in &p.remote_forwards {
            let on = match (&r.route, r.port) {
                (Some(route), Some(port)) => format!(" on {route} port {port}"),
                (Some(route), None) => format!(" on {route}"),
                (None, _) => String::new(),
            };
            let reason = r
                .reason
                .as_ref()
                .map(|w| format!(": {w}"))
                .unwrap_or_default();
            rows.push((
                [
                    String::new(),
                    String::new(),
                    String::new(),
                    REMOTE_KIND.into(),
                    r.target.clone(),
                    format!("{} ({}{on}{reason})", r.bind, r.state),
                    format!("{}/{}", r.active, r.total),
                    bytes(r.bytes_in),
                    bytes(r.bytes_out),
                ],
                Vec::new(),
            ));
        }
        // Under the profile: one line per route with its readiness, the profiles sharing its
        // session, then the last error.
        if let Some(last) = rows.last_mut() {
            let now = super::agent::now_secs();
            last.1
                .extend(p.routes.iter().map(|r| super::agent::route_line(r, now)));
            if !p.shared_with.is_empty() {
                last.1.push(format!(
                    "one login shared with: {}",
                    p.shared_with.join(", ")
                ));
            }
            last.1
                .extend(p.last_error.iter().map(|e| format!("last error: {e}")));
        }
    }
    let mut widths: [usize; COLUMNS] = std::array::from_fn(|c| {
        rows.iter()
            .map(|(row, _)| width_of(&row[c]))
            .chain([HEADERS[c].len()])
            .max()
            .unwrap_or(0)
    });
    if let Some(limit) = width {
        fit(&mut widths, limit);
    }
    let mut out = String::new();
    let headers = HEADERS.map(String::from);
    line(&mut out, &headers, &widths);
    for (cells, notes) in &rows {
        line(&mut out, cells, &widths);
        for text in notes {
            let indent = "  ";
            match width {
                Some(w) => {
                    for l in wrap(text, w.saturating_sub(indent.len()).max(20)) {
                        out.push_str(&format!("{indent}{l}\n"));
                    }
                }
                None => out.push_str(&format!("{indent}{text}\n")),
            }
        }
    }
    out
}

/// Narrows the shrinkable columns, widest first, until the line fits `limit` (or they are all
/// at [`MIN_WIDTH`]).
fn fit(widths: &mut [usize; COLUMNS], limit: usize) {
    let total = |w: &[usize; COLUMNS]| w.iter().sum::<usize>() + GAP.len() * (w.len() - 1);
    while total(widths) > limit {
        let widest = SHRINK_ORDER
            .iter()
            .copied()
            .filter(|&c| widths[c] > MIN_WIDTH)
            .max_by_key(|&c| widths[c]);
        match widest {
            Some(c) => widths[c] -= 1,
            None => break,
        }
    }
}

fn line(out: &mut String, cells: &[String; COLUMNS], widths: &[usize; COLUMNS]) {
    let mut l = String::new();
    for (c, cell) in cells.iter().enumerate() {
        if c > 0 {
            l.push_str(GAP);
        }
        let cell = shorten(cell, widths[c]);
        let pad = " ".repeat(widths[c].saturating_sub(width_of(&cell)));
        if NUMERIC[c] {
            l.push_str(&pad);
            l.push_str(&cell);
        } else {
            l.push_str(&cell);
            l.push_str(&pad);
        }
    }
    out.push_str(l.trim_end());
    out.push('\n');
}

/// The cells `s` takes on a terminal (a wide character two, a combining mark none).
fn width_of(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// The longest run of `chars` that fits in `width` cells.
fn fitting(chars: impl Iterator<Item = char>, width: usize) -> String {
    let mut used = 0;
    chars
        .take_while(|c| {
            used += UnicodeWidthChar::width(*c).unwrap_or(0);
            used <= width
        })
        .collect()
}

/// `s` in at most `width` terminal cells, its middle replaced by `…` when it is longer (both
/// ends of an address say the most: the host's start and the port).
pub fn shorten(s: &str, width: usize) -> String {
    if width_of(s) <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let keep = width - 1;
    let tail = keep / 2;
    let head = keep - tail;
    let start = fitting(s.chars(), head);
    let end: String = fitting(s.chars().rev(), tail).chars().rev().collect();
    format!("{start}…{end}")
}

/// Words of `text` in lines of at most `width` cells (a longer word gets a line alone).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        if !current.is_empty() && width_of(&current) + 1 + width_of(word) > width {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

/// A byte count for people: `812 B`, `4.1 KiB`, `12.3 MiB` (exact in `--json`).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;
    use tunnelkit_agent::protocol::{ForwardJson, ProfileState, RemoteForwardJson};
    use tunnelkit_core::ForwardType;

    fn profile(name: &str, forwards: &[(&str, &str)], error: Option<&str>) -> ProfileJson {
        ProfileJson {
            name: name.into(),
            state: ProfileState::Up,
            route: Some("primary".into()),
            since: None,
            description: String::new(),
            autostart: false,
            forwards: forwards
                .iter()
                .map(|(l, r)| ForwardJson {
                    kind: if *r == "socks" {
                        ForwardType::Dynamic
                    } else {
                        ForwardType::Local
                    },
                    local: l.to_string(),
                    exposed: false,
                    remote: r.to_string(),
                    active: 1,
                    total: 12,
                    bytes_in: 5 * 1024 * 1024,
                    bytes_out: 300,
                })
                .collect(),
            reconnects: 0,
            failovers: 0,
            last_error: error.map(String::from),
            remote_forwards: Vec::new(),
            routes: Vec::new(),
            shared_with: Vec::new(),
        }
    }

    #[test]
    fn profiles_sharing_a_session_say_with_whom() {
        let mut a = profile("rdp", &[("127.0.0.1:13389", "win:3389")], None);
        a.shared_with = vec!["vnc".into(), "db".into()];
        let b = profile("web", &[("127.0.0.1:8080", "web:80")], None);
        let t = table(&[a, b], None);
        assert!(t.contains("\n  one login shared with: vnc, db\n"), "{t}");
        assert_eq!(t.matches("one login shared").count(), 1, "{t}");
    }

    /// The character column where each header starts.
    fn starts(header: &str) -> Vec<usize> {
        HEADERS.iter().map(|h| header.find(h).unwrap()).collect()
    }

    #[test]
    fn long_forwards_do_not_shift_the_columns() {
        let long = "a-very-long-internal-host-name.datacenter-two.example.com:3389";
        let ps = [
            profile("web", &[("127.0.0.1:8443", "intranet:443")], None),
            profile(
                "rdp",
                &[("127.0.0.1:13389", long), ("[::1]:5901", "vnc:5901")],
                None,
            ),
        ];
        let t = table(&ps, None);
        let lines: Vec<&str> = t.lines().collect();
        assert!(t.contains(long), "the full text without a terminal: {t}");
        let cols = starts(lines[0]);
        // Every row's CONN column ends where the header's does.
        let conn_end = cols[6] + "CONN".len();
        for l in &lines[1..] {
            let end = l.char_indices().nth(conn_end - 1).map(|(_, c)| c);
            assert_eq!(end, Some('2'), "{l:?} in\n{t}");
        }
        assert!(
            lines[1].contains("5.0 MiB") && lines[1].contains("300 B"),
            "{t}"
        );
        assert!(
            lines[3].starts_with("    ") || lines[3].starts_with(' '),
            "second forward row has no profile: {t}"
        );
    }

    #[test]
    fn wide_and_combining_characters_keep_the_columns() {
        // Two cells per character for 東京, none for the combining accent of "é".
        let ps = [
            profile("東京-rdp", &[("127.0.0.1:13389", "win:3389")], None),
            profile("cafe\u{301}", &[("127.0.0.1:5901", "vnc:5901")], None),
            profile("plain", &[("127.0.0.1:8080", "web:80")], None),
        ];
        let t = table(&ps, None);
        let lines: Vec<&str> = t.lines().collect();
        // Measured as the terminal draws it, not by the function under test.
        let drawn = |s: &str| UnicodeWidthStr::width(s);
        let header = drawn(lines[0].split("STATE").next().unwrap());
        for l in lines.iter().filter(|l| l.contains("127.0.0.1")) {
            let before = l.split("up").next().unwrap();
            assert_eq!(drawn(before), header, "STATE column in {l:?} of\n{t}");
        }
        // Shortened by cells, never splitting a wide character.
        assert_eq!(shorten("東京東京東京", 5), "東…京");
        assert!(drawn(&shorten("東京東京東京", 6)) <= 6);
    }

    #[test]
    fn a_narrow_terminal_shortens_addresses_in_the_middle_and_wraps_the_error() {
        let long = "a-very-long-internal-host-name.datacenter-two.example.com:3389";
        let error =
            "route primary: connection refused by 192.0.2.7:22 after 3 attempts; next try in 30s";
        let ps = [profile("rdp", &[("127.0.0.1:13389", long)], Some(error))];
        let t = table(&ps, Some(80));
        for l in t.lines() {
            assert!(width_of(l) <= 80, "{l:?} is {} wide", width_of(l));
        }
        assert!(t.contains('…') && t.contains(":3389"), "{t}");
        assert!(t.contains("last error: route primary"), "{t}");
        assert!(
            t.contains("next try in 30s"),
            "the error is wrapped, not cut: {t}"
        );
    }

    #[test]
    fn each_row_says_its_kind() {
        let mut p = profile(
            "site",
            &[
                ("127.0.0.1:8443", "intranet:443"),
                ("127.0.0.1:1080", "socks"),
            ],
            None,
        );
        p.remote_forwards.push(RemoteForwardJson {
            bind: "localhost:13389".into(),
            port: Some(13389),
            target: "127.0.0.1:3389".into(),
            route: Some("primary".into()),
            state: "active".into(),
            reason: None,
            active: 0,
            total: 0,
            bytes_in: 0,
            bytes_out: 0,
        });
        let t = table(&[p], None);
        let lines: Vec<&str> = t.lines().collect();
        let kind = starts(lines[0])[3];
        let kinds: Vec<&str> = lines[1..4]
            .iter()
            .map(|l| l[kind..].split_whitespace().next().unwrap_or(""))
            .collect();
        assert_eq!(kinds, ["local", "dynamic", "remote"], "{t}");
        assert!(
            lines[2].contains("127.0.0.1:1080") && lines[2].contains("socks"),
            "{t}"
        );
        assert!(
            lines[3].contains("localhost:13389 (active on primary port 13389)"),
            "{t}"
        );
    }

    #[test]
    fn shorten_keeps_both_ends() {
        assert_eq!(shorten("abcdef", 6), "abcdef");
        assert_eq!(shorten("abcdefghij", 5), "ab…ij");
        assert_eq!(width_of(&shorten("abcdefghij", 5)), 5);
    }

    #[test]
    fn byte_counts_read_as_sizes() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
