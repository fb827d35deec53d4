//! The terminal is shared by prompts and log lines: while a prompt waits for an answer, log
//! lines (and `up`'s progress lines) are held back and printed, in order, once it is answered,
//! so nothing is written over the question a person is reading or typing after.
//!
//! Held only when stderr is a terminal (a log redirected to a file cannot break a prompt), and
//! at most [`MAX_HELD_BYTES`]: beyond that, further lines are counted and the count is printed
//! instead of them.

use std::io::{IsTerminal, Write};
use std::sync::{Mutex, MutexGuard};

use tracing_subscriber::fmt::MakeWriter;

/// How much log text is held while a prompt waits; more is dropped (and counted).
pub const MAX_HELD_BYTES: usize = 256 * 1024;

/// Log output and prompts, on one screen.
#[derive(Debug)]
pub struct Screen {
    /// Prompts on screen now (two routes may ask at once).
    prompts: usize,
    /// Lines written while a prompt was on screen, to print when the last one is answered.
    held: Vec<u8>,
    /// Writes dropped because [`MAX_HELD_BYTES`] were held already.
    dropped: usize,
}

impl Screen {
    /// A screen with no prompt on it.
    pub const fn new() -> Screen {
        Screen {
            prompts: 0,
            held: Vec::new(),
            dropped: 0,
        }
    }

    /// Writes `bytes` to `out`, or holds them while a prompt is on screen.
    pub fn write(&mut self, bytes: &[u8], out: &mut dyn Write) {
        if self.prompts == 0 {
            let _ = out.write_all(bytes);
            let _ = out.flush();
        } else if self.held.len() + bytes.len() <= MAX_HELD_BYTES {
            self.held.extend_from_slice(bytes);
        } else {
            self.dropped += 1;
        }
    }

    /// A prompt appears: from now on log lines are held.
    pub fn prompt_shown(&mut self) {
        self.prompts += 1;
    }

    /// A prompt was answered (or given up): once none is left, what was held goes to `out`.
    pub fn prompt_done(&mut self, out: &mut dyn Write) {
        self.prompts = self.prompts.saturating_sub(1);
        if self.prompts > 0 {
            return;
        }
        let held = std::mem::take(&mut self.held);
        let _ = out.write_all(&held);
        if self.dropped > 0 {
            let _ = writeln!(
                out,
                "tunnelkit: {} more log lines were not shown while a prompt waited",
                self.dropped
            );
            self.dropped = 0;
        }
        let _ = out.flush();
    }
}

impl Default for Screen {
    fn default() -> Self {
        Screen::new()
    }
}

static SCREEN: Mutex<Screen> = Mutex::new(Screen::new());

fn screen() -> MutexGuard<'static, Screen> {
    // A panic while holding it leaves nothing half-done that matters: keep using it.
    SCREEN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Held while a prompt is on the terminal: log lines wait until it is dropped.
#[derive(Debug)]
#[must_use = "log lines are held only while this lives"]
pub struct PromptOnScreen {
    holding: bool,
}

/// Marks a prompt as on screen until the returned guard is dropped. Nothing is held when
/// stderr is not a terminal.
pub fn prompt_on_screen() -> PromptOnScreen {
    let holding = std::io::stderr().is_terminal();
    if holding {
        screen().prompt_shown();
    }
    PromptOnScreen { holding }
}

impl Drop for PromptOnScreen {
    fn drop(&mut self) {
        if self.holding {
            screen().prompt_done(&mut std::io::stderr());
        }
    }
}

/// Prints one line on stderr (as `eprintln!`), held while a prompt is on screen.
pub fn say(line: &str) {
    screen().write(format!("{line}\n").as_bytes(), &mut std::io::stderr());
}

/// The tracing writer for stderr: each event is written whole, or held while a prompt is on
/// screen.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        screen().write(buf, &mut std::io::stderr());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LogWriter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_wait_for_the_last_prompt_then_come_in_order() {
        let mut s = Screen::new();
        let mut out = Vec::new();
        s.write(b"before\n", &mut out);
        s.prompt_shown();
        s.prompt_shown();
        s.write(b"one\n", &mut out);
        s.write(b"two\n", &mut out);
        assert_eq!(out, b"before\n");
        s.prompt_done(&mut out);
        assert_eq!(out, b"before\n", "another prompt is still on screen");
        s.prompt_done(&mut out);
        assert_eq!(out, b"before\none\ntwo\n");
        s.write(b"after\n", &mut out);
        assert_eq!(out, b"before\none\ntwo\nafter\n");
        // An extra done (never below zero) holds nothing back.
        s.prompt_done(&mut out);
        s.write(b"more\n", &mut out);
        assert!(out.ends_with(b"after\nmore\n"));
    }

    #[test]
    fn what_is_held_is_bounded_and_the_rest_counted() {
        let mut s = Screen::new();
        let mut out = Vec::new();
        s.prompt_shown();
        let line = vec![b'x'; 1000];
        for _ in 0..(MAX_HELD_BYTES / 1000 + 10) {
            s.write(&line, &mut out);
        }
        assert!(out.is_empty());
        s.prompt_done(&mut out);
        let text = String::from_utf8_lossy(&out);
        assert!(out.len() <= MAX_HELD_BYTES + 100, "{}", out.len());
        assert!(
            text.ends_with("tunnelkit: 10 more log lines were not shown while a prompt waited\n"),
            "{}",
            &text[text.len() - 100..]
        );
    }
}
