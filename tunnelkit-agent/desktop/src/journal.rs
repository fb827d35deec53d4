//! Logging under systemd: when stderr is the journal (`$JOURNAL_STREAM` names stderr's device
//! and inode, as systemd sets it for a service's output), each line starts with its syslog
//! priority in the sd-daemon way (`<3>` error, `<4>` warning, `<6>` info, `<7>` debug) and
//! carries no timestamp of our own: the journal records both. A message of several lines
//! becomes several lines of the same priority, so none is logged as a different one.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The syslog priority of a level (`sd-daemon.h`: `SD_ERR` 3 ... `SD_DEBUG` 7).
pub fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// `text` as journal lines: each line prefixed with `<priority>`, each ended by a newline.
pub fn journal_lines(level: Level, text: &str) -> String {
    let p = priority(level);
    let mut out = String::with_capacity(text.len() + 8);
    for line in text.trim_end_matches('\n').split('\n') {
        out.push_str(&format!("<{p}>{line}\n"));
    }
    out
}

/// True when `journal_stream` (the value of `$JOURNAL_STREAM`, `DEVICE:INODE`) names the
/// file whose device and inode are given.
pub fn names_file(journal_stream: &str, dev: u64, ino: u64) -> bool {
    let Some((d, i)) = journal_stream.trim().split_once(':') else {
        return false;
    };
    d.parse() == Ok(dev) && i.parse() == Ok(ino)
}

/// True when `journal_stream` (the value of `$JOURNAL_STREAM`, if set) names this process's
/// stderr: set but pointing elsewhere (stderr redirected by a child of the service) is false.
pub fn stderr_is_journal(journal_stream: Option<&str>) -> bool {
    let Some(value) = journal_stream else {
        return false;
    };
    crate::platform::files::stderr_id().is_some_and(|(dev, ino)| names_file(value, dev, ino))
}

/// The tracing event format for the journal: `<N>` prefix, the spans
/// (`profile{profile=db}: `), the message and its fields; no time, no level word, no colour.
#[derive(Debug, Clone, Copy, Default)]
pub struct JournalFormat;

impl<S, N> FormatEvent<S, N> for JournalFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut text = String::new();
        let mut w = Writer::new(&mut text);
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                fmt::Write::write_str(&mut w, span.name())?;
                let ext = span.extensions();
                if let Some(fields) = ext.get::<FormattedFields<N>>() {
                    if !fields.is_empty() {
                        write!(w, "{{{fields}}}")?;
                    }
                }
                fmt::Write::write_str(&mut w, ": ")?;
            }
        }
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writer.write_str(&journal_lines(*event.metadata().level(), &text))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn each_line_carries_its_priority() {
        assert_eq!(journal_lines(Level::ERROR, "gave up"), "<3>gave up\n");
        assert_eq!(journal_lines(Level::WARN, "a\nb\n"), "<4>a\n<4>b\n");
        assert_eq!(journal_lines(Level::INFO, "ready"), "<6>ready\n");
        assert_eq!(journal_lines(Level::DEBUG, "x"), "<7>x\n");
        assert_eq!(journal_lines(Level::TRACE, "x"), "<7>x\n");
    }

    #[test]
    fn journal_stream_must_name_the_file() {
        assert!(names_file("8:12345", 8, 12345));
        assert!(names_file("8:12345\n", 8, 12345));
        assert!(!names_file("8:12346", 8, 12345));
        assert!(!names_file("9:12345", 8, 12345));
        assert!(!names_file("garbage", 8, 12345));
        assert!(!names_file("", 8, 12345));
        assert!(!stderr_is_journal(None));
        assert!(!stderr_is_journal(Some("0:0")));
    }

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn events_become_prefixed_lines_without_time_or_level() {
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || out.clone())
            .with_ansi(false)
            .with_max_level(Level::DEBUG)
            .event_format(JournalFormat)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("agent ready");
            let span = tracing::info_span!("profile", profile = %"db");
            let _in = span.enter();
            tracing::warn!("route primary: failed: timeout\nsecond line");
            tracing::error!(code = 3, "gave up");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "<6>agent ready\n\
             <4>profile{profile=db}: route primary: failed: timeout\n\
             <4>second line\n\
             <3>profile{profile=db}: gave up code=3\n"
        );
    }
}
