//! Diagnostics: located, human-readable problems with a spec.
//!
//! Rendered the way cargo and rustc do it:
//!
//! ```text
//! error: unknown block `webap-python`
//!   --> spec/stacks/web.yaml:12:12
//!    |
//! 12 |     block: webap-python
//!    |            ^^^^^^^^^^^^
//!    = help: did you mean `webapp-python`?
//! ```

use std::fmt::Write as _;

use super::source::{Pos, SourceFile};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// A place in a file, with the quoted source line when one exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: String,
    pub pos: Pos,
    pub line_text: Option<String>,
}

impl Location {
    pub fn new(file: &SourceFile, pos: Pos) -> Self {
        Location {
            path: file.path.clone(),
            pos,
            line_text: (pos.line > 0)
                .then(|| file.line(pos.line).map(str::to_owned))
                .flatten(),
        }
    }

    /// A location naming a whole file (no line).
    pub fn file(path: impl Into<String>) -> Self {
        Location {
            path: path.into(),
            pos: Pos::default(),
            line_text: None,
        }
    }
}

/// One problem found in a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    pub location: Location,
    /// Short text printed under the caret.
    pub label: Option<String>,
    /// Further places that explain the problem ("first defined here").
    pub notes: Vec<(String, Location)>,
    /// `= help:` lines: suggestions a person can act on.
    pub help: Vec<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>, location: Location) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            location,
            label: None,
            notes: Vec::new(),
            help: Vec::new(),
        }
    }

    pub fn warning(message: impl Into<String>, location: Location) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(message, location)
        }
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help.push(help.into());
        self
    }

    pub fn with_note(mut self, text: impl Into<String>, location: Location) -> Self {
        self.notes.push((text.into(), location));
        self
    }

    /// Adds "did you mean" help when there are candidates.
    pub fn with_candidates(mut self, candidates: &[String]) -> Self {
        self.candidates(candidates);
        self
    }

    /// Adds a `= help:` line.
    pub fn help(&mut self, help: impl Into<String>) -> &mut Self {
        self.help.push(help.into());
        self
    }

    /// Adds a note pointing at another place.
    pub fn note(&mut self, text: impl Into<String>, location: Location) -> &mut Self {
        self.notes.push((text.into(), location));
        self
    }

    /// Adds "did you mean" help when there are candidates.
    pub fn candidates(&mut self, candidates: &[String]) -> &mut Self {
        match candidates {
            [] => self,
            [one] => self.help(format!("did you mean `{one}`?")),
            many => {
                let list: Vec<String> = many.iter().map(|c| format!("`{c}`")).collect();
                self.help(format!("did you mean one of {}?", list.join(", ")))
            }
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders the diagnostic as text, with ANSI colours when `color` is set.
    pub fn render(&self, color: bool) -> String {
        let paint = Paint(color);
        let mut out = String::new();
        let (word, code) = match self.severity {
            Severity::Error => ("error", RED),
            Severity::Warning => ("warning", YELLOW),
        };
        let _ = writeln!(
            out,
            "{}{}",
            paint.bold(code, word),
            paint.bold("", &format!(": {}", self.message))
        );
        render_location(&mut out, &self.location, self.label.as_deref(), code, paint);
        for (text, loc) in &self.notes {
            let _ = writeln!(out, "{}: {text}", paint.bold(CYAN, "note"));
            render_location(&mut out, loc, None, CYAN, paint);
        }
        let gutter = gutter_width(&self.location);
        for help in &self.help {
            let _ = writeln!(
                out,
                "{:gutter$} {} {}",
                "",
                paint.bold(CYAN, "="),
                paint.bold("", &format!("help: {help}"))
            );
        }
        out
    }
}

fn gutter_width(loc: &Location) -> usize {
    if loc.pos.line == 0 {
        1
    } else {
        loc.pos.line.to_string().len()
    }
}

fn render_location(
    out: &mut String,
    loc: &Location,
    label: Option<&str>,
    code: &str,
    paint: Paint,
) {
    let width = gutter_width(loc);
    let pad = " ".repeat(width);
    if loc.pos.line == 0 {
        let _ = writeln!(out, "{pad}{} {}", paint.bold(CYAN, "-->"), loc.path);
        return;
    }
    let _ = writeln!(
        out,
        "{pad}{} {}:{}:{}",
        paint.bold(CYAN, "-->"),
        loc.path,
        loc.pos.line,
        loc.pos.col
    );
    let Some(text) = &loc.line_text else {
        return;
    };
    let bar = paint.bold(CYAN, "|");
    let _ = writeln!(out, "{pad} {bar}");
    let _ = writeln!(
        out,
        "{} {bar} {}",
        paint.bold(CYAN, &loc.pos.line.to_string()),
        text.replace('\t', " ")
    );
    let before = loc.pos.col.saturating_sub(1) as usize;
    let available = text.chars().count().saturating_sub(before).max(1);
    let carets = "^".repeat((loc.pos.len as usize).clamp(1, available));
    let tail = label.map(|l| format!(" {l}")).unwrap_or_default();
    let _ = writeln!(
        out,
        "{pad} {bar} {}{}",
        " ".repeat(before),
        paint.bold(code, &format!("{carets}{tail}"))
    );
}

const RED: &str = "31";
const YELLOW: &str = "33";
const CYAN: &str = "36";

#[derive(Clone, Copy)]
struct Paint(bool);

impl Paint {
    fn bold(self, code: &str, text: &str) -> String {
        match (self.0, code.is_empty()) {
            (false, _) => text.to_owned(),
            (true, true) => format!("\x1b[1m{text}\x1b[0m"),
            (true, false) => format!("\x1b[1;{code}m{text}\x1b[0m"),
        }
    }
}

/// Everything a run found, errors and warnings, in a stable order.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    pub fn extend(&mut self, other: impl IntoIterator<Item = Diagnostic>) {
        self.0.extend(other);
    }

    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    pub fn error_count(&self) -> usize {
        self.0.iter().filter(|d| d.is_error()).count()
    }

    pub fn warning_count(&self) -> usize {
        self.0.len() - self.error_count()
    }

    /// Sorts by file, then position, then message, and drops exact repeats.
    pub fn sort(&mut self) {
        self.0.sort_by(|a, b| {
            (&a.location.path, a.location.pos, &a.message).cmp(&(
                &b.location.path,
                b.location.pos,
                &b.message,
            ))
        });
        self.0.dedup();
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> SourceFile {
        SourceFile {
            path: "spec/stacks/web.yaml".into(),
            disk_path: "x".into(),
            text: "name: web\ncomponents:\n  app:\n    block: webap-python\n".into(),
            yaml_line_offset: 0,
        }
    }

    #[test]
    fn renders_path_line_caret_and_help() {
        let pos = Pos {
            line: 4,
            col: 12,
            len: 12,
        };
        let d = Diagnostic::error("unknown block `webap-python`", Location::new(&file(), pos))
            .with_candidates(&["webapp-python".into()]);
        assert_eq!(
            d.render(false),
            "error: unknown block `webap-python`\n \
             --> spec/stacks/web.yaml:4:12\n  \
             |\n\
             4 |     block: webap-python\n  \
             |            ^^^^^^^^^^^^\n  \
             = help: did you mean `webapp-python`?\n"
        );
    }

    #[test]
    fn colour_only_when_asked() {
        let d = Diagnostic::error("x", Location::file("a.yaml"));
        assert!(!d.render(false).contains('\x1b'));
        assert!(d.render(true).contains("\x1b[1;31merror"));
    }
}
