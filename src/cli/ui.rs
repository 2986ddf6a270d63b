//! The one place the CLI writes to the terminal: data on stdout,
//! diagnostics and errors on stderr, colour decided once, and every
//! configured secret scrubbed from whatever is written, whatever the
//! text's source. A closed pipe (`druppie diff | head`) ends output
//! quietly, as git does.

use std::error::Error;
use std::io::Write as _;

use crate::secret::Scrubber;
use crate::spec::Diagnostics;

/// Where and how the CLI writes.
#[derive(Debug, Clone)]
pub struct Ui {
    color_out: bool,
    color_err: bool,
    scrubber: Scrubber,
}

impl Ui {
    pub fn new(color_out: bool, color_err: bool, scrubber: Scrubber) -> Ui {
        Ui {
            color_out,
            color_err,
            scrubber,
        }
    }

    /// Whether stdout is coloured.
    pub fn color_out(&self) -> bool {
        self.color_out
    }

    /// Whether stderr is coloured.
    pub fn color_err(&self) -> bool {
        self.color_err
    }

    /// Writes data to stdout.
    pub fn out(&self, text: &str) {
        let _ = std::io::stdout()
            .lock()
            .write_all(self.scrubber.scrub(text).as_bytes());
    }

    /// Writes to stderr.
    pub fn err(&self, text: &str) {
        let _ = std::io::stderr()
            .lock()
            .write_all(self.scrubber.scrub(text).as_bytes());
    }

    /// `note: …` on stderr: something done on the way that a person
    /// should know (a repaired cache, a skipped step).
    pub fn note(&self, text: &str) {
        self.err(&format!("{}: {text}\n", self.paint("\x1b[1;36m", "note")));
    }

    /// `warning: …` on stderr: something druppie skipped that a person
    /// should look at (a commit posing as druppie's).
    pub fn warning(&self, text: &str) {
        self.err(&format!(
            "{}: {text}\n",
            self.paint("\x1b[1;33m", "warning")
        ));
    }

    /// Located diagnostics, each as it renders itself.
    pub fn diagnostics(&self, diags: &Diagnostics) {
        for d in diags.iter() {
            self.err(&format!("{}\n", d.render(self.color_err)));
        }
    }

    /// `error: …`, then each cause on its own line.
    pub fn error(&self, err: &dyn Error) {
        let mut text = format!("{}: {err}\n", self.paint("\x1b[1;31m", "error"));
        let mut source = err.source();
        while let Some(cause) = source {
            text.push_str(&format!("  caused by: {cause}\n"));
            source = cause.source();
        }
        self.err(&text);
    }

    /// `error: …` with what to do about it.
    pub fn user_error(&self, message: &str, hint: Option<&str>) {
        let mut text = format!("{}: {message}\n", self.paint("\x1b[1;31m", "error"));
        if let Some(hint) = hint {
            text.push_str(&format!("  = help: {hint}\n"));
        }
        self.err(&text);
    }

    fn paint(&self, code: &str, word: &str) -> String {
        if self.color_err {
            format!("{code}{word}\x1b[0m")
        } else {
            word.to_owned()
        }
    }
}

/// Panic messages as Rust prints them (with a backtrace when
/// `RUST_BACKTRACE` asks for one), scrubbed of every configured secret:
/// a panic's message may quote an error whose text came from outside.
pub fn scrub_panics(scrubber: Scrubber) {
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("<unnamed>");
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("Box<dyn Any>");
        let at = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_default();
        let backtrace = std::backtrace::Backtrace::capture();
        let trace = match backtrace.status() {
            std::backtrace::BacktraceStatus::Captured => format!("stack backtrace:\n{backtrace}\n"),
            _ => String::new(),
        };
        let text = format!("thread '{name}' panicked at {at}:\n{message}\n{trace}");
        let _ = std::io::stderr()
            .lock()
            .write_all(scrubber.scrub(&text).as_bytes());
    }));
}
