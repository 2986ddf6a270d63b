//! Printing helpers shared by subcommands: diagnostics, errors with their
//! causes, and plain-text tables. Everything the CLI prints goes through
//! [`print_out`] or [`print_err`] (or the macros over them), which scrub
//! every configured secret first, whatever the text's source.

use std::borrow::Cow;
use std::error::Error;
use std::sync::OnceLock;

use crate::secret::Scrubber;
use crate::spec::Diagnostics;

static SCRUBBER: OnceLock<Scrubber> = OnceLock::new();

/// From now on, what the CLI prints is scrubbed with `scrubber` (set once,
/// when the configuration has been read).
pub fn scrub_with(scrubber: Scrubber) {
    let _ = SCRUBBER.set(scrubber);
}

fn scrubbed(text: &str) -> Cow<'_, str> {
    match SCRUBBER.get() {
        Some(s) => s.scrub(text),
        None => Cow::Borrowed(text),
    }
}

/// `eprintln!` to stderr, scrubbed.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::cli::output::print_err(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprint!` to stderr, scrubbed.
macro_rules! err {
    ($($arg:tt)*) => {
        $crate::cli::output::print_err(&format!($($arg)*))
    };
}

pub(crate) use {err, errln};

/// Prints diagnostics to stderr, then a one-line tally when there are any.
pub fn print_diagnostics(diags: &Diagnostics, color: bool) {
    for d in diags.iter() {
        errln!("{}", d.render(color));
    }
}

/// Writes to stdout, scrubbed; a closed pipe (`druppie diff | head`) ends
/// output quietly instead of failing.
pub fn print_out(text: &str) {
    use std::io::Write as _;
    let _ = std::io::stdout()
        .lock()
        .write_all(scrubbed(text).as_bytes());
}

/// Writes to stderr, scrubbed.
pub fn print_err(text: &str) {
    use std::io::Write as _;
    let _ = std::io::stderr()
        .lock()
        .write_all(scrubbed(text).as_bytes());
}

/// Prints an error and the chain of its causes to stderr.
pub fn print_error(err: &dyn Error, color: bool) {
    let word = if color {
        "\x1b[1;31merror\x1b[0m"
    } else {
        "error"
    };
    errln!("{word}: {err}");
    let mut source = err.source();
    while let Some(cause) = source {
        errln!("  caused by: {cause}");
        source = cause.source();
    }
}

/// "1 error", "2 warnings".
pub fn count(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Renders rows as left-aligned columns separated by two spaces, with a
/// header row. The last column is not padded.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let head: Vec<String> = header.iter().map(|h| h.to_uppercase()).collect();
    for row in std::iter::once(&head).chain(rows) {
        let last = row.len().saturating_sub(1);
        for (i, cell) in row.iter().enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                out.push_str(cell);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push('\n');
    }
    out
}

/// `text` cut to `max` characters, with an ellipsis when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = table(
            &["id", "type"],
            &[
                vec!["postgresql".into(), "database".into()],
                vec!["x".into(), "y".into()],
            ],
        );
        assert_eq!(t, "ID          TYPE\npostgresql  database\nx           y\n");
    }

    #[test]
    fn truncates_on_characters() {
        assert_eq!(truncate("ééééé", 3), "éé…");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
