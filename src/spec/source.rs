//! Source files of the spec repo and positions inside them.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::diag::{Diagnostic, Location};

/// `path` relative to `root`, with `/` separators (as users and git see
/// paths); `path` itself when it is not under `root`.
pub fn slash_path(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Index of a [`SourceFile`] in [`crate::spec::Spec::files`].
pub type FileId = usize;

/// One file read from the spec repo, kept so diagnostics can quote it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path relative to the spec root, with `/` separators (what users see).
    pub path: String,
    /// Absolute or caller-relative path on disk.
    pub disk_path: PathBuf,
    pub text: String,
    /// Lines before the YAML part (1 for a frontmatter that opens with `---`).
    pub yaml_line_offset: u32,
}

/// A position in a file: 1-based line and column (in characters), and the
/// length in characters of the thing pointed at (0 = a point).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
    pub len: u32,
}

impl Pos {
    /// The position of byte `offset` in `text` (1-based line, column in
    /// characters), pointing at `len` bytes (at least one caret).
    pub fn at_offset(text: &str, offset: usize, len: usize) -> Pos {
        let offset = text.floor_char_boundary(offset.min(text.len()));
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Pos {
            line: before.matches('\n').count() as u32 + 1,
            col: text[line_start..offset].chars().count() as u32 + 1,
            len: len.max(1) as u32,
        }
    }
}

/// The byte offset in `text` of a 1-based line and column (in characters);
/// past the end clamps to the end.
pub fn offset_of(text: &str, line: usize, col: usize) -> usize {
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    let rest = &text[line_start.min(text.len())..];
    line_start
        + rest
            .char_indices()
            .nth(col.saturating_sub(1))
            .map_or(rest.len(), |(i, _)| i)
}

impl SourceFile {
    /// Converts a YAML parser location (relative to the YAML part) into a
    /// position in this file.
    pub fn pos(&self, loc: &super::yaml::Location) -> Pos {
        if loc.line() == 0 {
            return Pos::default();
        }
        Pos {
            line: loc.line() as u32 + self.yaml_line_offset,
            col: loc.column() as u32,
            len: loc.len() as u32,
        }
    }

    /// The byte offset of a position.
    pub fn offset(&self, pos: Pos) -> usize {
        offset_of(&self.text, pos.line as usize, pos.col as usize)
    }

    /// Where a position inside a scalar's value lies in the file. The
    /// scalar starts at `start` (its indicator or quote, as the YAML parser
    /// reports it); `offset` is a byte offset in the parsed value. Folding
    /// and indentation change only whitespace, so the position is found by
    /// counting the other characters.
    pub fn pos_in_scalar(&self, start: Pos, value: &str, offset: usize) -> Pos {
        let wanted = value[..value.floor_char_boundary(offset.min(value.len()))]
            .chars()
            .filter(|c| !c.is_whitespace())
            .count();
        let mut at = self.offset(start);
        let rest = &self.text[at..];
        if rest.starts_with(['>', '|']) {
            at += rest.find('\n').map_or(rest.len(), |i| i + 1);
        } else if rest.starts_with(['"', '\'']) {
            at += 1;
        }
        let mut seen = 0;
        for (i, c) in self.text[at..].char_indices() {
            if c.is_whitespace() {
                continue;
            }
            if seen == wanted {
                return Pos::at_offset(&self.text, at + i, c.len_utf8());
            }
            seen += 1;
        }
        start
    }

    /// The text of a 1-based line, without its line ending.
    pub fn line(&self, line: u32) -> Option<&str> {
        let idx = usize::try_from(line).ok()?.checked_sub(1)?;
        self.text
            .split('\n')
            .nth(idx)
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
    }
}

/// A spec file read as `bytes`, shown as `shown`: within `limit` and UTF-8.
pub fn source_file(
    shown: String,
    disk_path: &Path,
    bytes: Vec<u8>,
    limit: u64,
    yaml_line_offset: u32,
) -> Result<SourceFile, Box<Diagnostic>> {
    if bytes.len() as u64 > limit {
        return Err(Box::new(
            Diagnostic::error(
                format!("file is larger than {} KiB", limit / 1024),
                Location::file(shown),
            )
            .with_help("spec files are limited to 1 MiB; split the file"),
        ));
    }
    let Ok(text) = String::from_utf8(bytes) else {
        return Err(Box::new(Diagnostic::error(
            "file is not valid UTF-8",
            Location::file(shown),
        )));
    };
    Ok(SourceFile {
        path: shown,
        disk_path: disk_path.to_owned(),
        text,
        yaml_line_offset,
    })
}

/// What [`super::LoadOptions::max_total_bytes`] leaves of the bytes the
/// spec's files may hold: each file takes its size (at most the limit
/// of one file) as it is opened, from whichever thread reads it, and a
/// file that does not fit is not read.
#[derive(Debug)]
pub struct Bytes {
    left: AtomicU64,
    over: AtomicBool,
}

impl Bytes {
    pub fn new(left: u64) -> Self {
        Bytes {
            left: AtomicU64::new(left),
            over: AtomicBool::new(false),
        }
    }

    /// Takes `n`, or says no (and remembers it) when less is left.
    pub fn take(&self, n: u64) -> bool {
        let taken = self
            .left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(n)
            })
            .is_ok();
        if !taken {
            self.over.store(true, Ordering::Relaxed);
        }
        taken
    }

    pub fn left(&self) -> u64 {
        self.left.load(Ordering::Relaxed)
    }

    /// Whether a file did not fit.
    pub fn over(&self) -> bool {
        self.over.load(Ordering::Relaxed)
    }
}

/// Reads one spec file under `root`, enforcing the size limit and UTF-8;
/// its size (at most `limit`) is taken from `bytes` first, and a file
/// that does not fit there is not read.
pub(super) fn read_file(
    root: &Path,
    path: &Path,
    limit: u64,
    yaml_line_offset: u32,
    bytes_left: &Bytes,
) -> Result<SourceFile, Box<super::diag::Diagnostic>> {
    use std::io::Read as _;
    let shown = slash_path(root, path);
    let cannot = |why: String| {
        Box::new(super::diag::Diagnostic::error(
            why,
            super::diag::Location::file(shown.clone()),
        ))
    };
    let mut bytes = Vec::new();
    let file = std::fs::File::open(path).and_then(|f| Ok((f.metadata()?.len(), f)));
    let read = file.and_then(|(len, f)| {
        if !bytes_left.take(len.min(limit)) {
            return Ok(Read::OverBudget);
        }
        // Room for the whole file and the end-of-file check: one read call.
        bytes.reserve_exact(usize::try_from(len.min(limit) + 1).unwrap_or(0));
        f.take(limit + 1).read_to_end(&mut bytes)?;
        // What was counted is what was read.
        Ok(if bytes.len() as u64 > len {
            Read::Grew
        } else {
            Read::Whole
        })
    });
    match read {
        Ok(Read::Whole) => source_file(shown, path, bytes, limit, yaml_line_offset),
        Ok(Read::OverBudget) => Err(cannot(
            "the spec's files pass `max_total_bytes` here: not read".to_owned(),
        )),
        Ok(Read::Grew) => Err(cannot("file changed while it was read".to_owned())),
        Err(e) => Err(cannot(format!("cannot read file: {e}"))),
    }
}

/// How [`read_file`] ended.
enum Read {
    Whole,
    /// Not read: the byte budget does not hold it.
    OverBudget,
    /// It grew between its size being taken and its end.
    Grew,
}

/// Takes from `bytes` the size of each of `files` that is not read (a
/// file under a directory the load lists that is not a spec file), as
/// its reading would.
pub(super) fn count_unread<'f>(
    files: impl Iterator<Item = &'f super::walk::Found>,
    limit: u64,
    bytes: &Bytes,
) {
    for found in files {
        // Gone or unreadable since the walk: nothing is read of it.
        if let Ok(meta) = std::fs::symlink_metadata(&found.disk) {
            bytes.take(meta.len().min(limit));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_counted_as_read_and_one_that_grows_while_read_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("plan.yaml");
        std::fs::write(&file, "name: p\n").expect("write");
        let bytes = Bytes::new(100);
        let read = read_file(dir.path(), &file, 1024, 0, &bytes).expect("read");
        assert_eq!(read.text, "name: p\n");
        assert_eq!(bytes.left(), 92);
        // Not read when the budget does not hold it, and remembered.
        let small = Bytes::new(7);
        let err = read_file(dir.path(), &file, 1024, 0, &small).expect_err("over");
        assert!(err.message.contains("max_total_bytes"), "{}", err.message);
        assert!(small.over());
        assert_eq!(small.left(), 7);

        // A pipe has no size when opened and gives bytes when read: what
        // is read is more than what was counted.
        let pipe = dir.path().join("pipe.yaml");
        let made = std::process::Command::new("mkfifo").arg(&pipe).status();
        assert!(made.expect("mkfifo").success());
        let writer = {
            let pipe = pipe.clone();
            std::thread::spawn(move || std::fs::write(pipe, "name: grown\n").expect("write"))
        };
        let bytes = Bytes::new(100);
        let err = read_file(dir.path(), &pipe, 1024, 0, &bytes).expect_err("grew");
        writer.join().expect("writer");
        assert!(
            err.message.contains("changed while it was read"),
            "{}",
            err.message
        );
        assert_eq!(bytes.left(), 100);
    }
}
