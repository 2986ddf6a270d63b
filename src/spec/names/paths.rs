//! Rules for paths druppie writes into a repo: environment paths in the
//! infra repo and every rendered file.
//!
//! Each segment is checked by git's own rules (gitoxide's
//! `gix_validate::path::component`) with every protection on: `.git` in
//! any case and every name NTFS or HFS+ reads as `.git` (`.git.`,
//! `.git `, `git~1`, `.g\u{200c}it`), Windows device names, characters
//! Windows forbids, trailing dots and spaces. `.gitmodules` and its
//! aliases are refused too: druppie never writes one.

use gix::bstr::ByteSlice as _;
use gix::validate::path::component::{Error as GixError, Mode, Options};

/// The longest segment most filesystems store.
pub const MAX_SEGMENT_BYTES: usize = 255;
/// The longest path druppie writes.
pub const MAX_PATH_BYTES: usize = 4096;

/// Why a path is refused. The message completes "path `x` …".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("is empty")]
    Empty,
    #[error("must be relative to the repo root")]
    Absolute,
    #[error("has an empty segment (`//`)")]
    EmptySegment,
    #[error("may not hold `.` or `..` segments")]
    Relative,
    #[error("has the segment `{segment}`, which {why}")]
    Segment { segment: String, why: &'static str },
    #[error(
        "has the segment `{segment}`: `.gitmodules` (or a name a filesystem reads as it) is never written by druppie"
    )]
    GitModules { segment: String },
    #[error("is longer than {max} bytes")]
    TooLong { max: usize },
}

/// Checks one path segment (a file or directory name).
///
/// # Errors
/// What git or a filesystem would make of it.
pub fn component(segment: &str) -> Result<(), PathError> {
    let shown = || segment.escape_debug().to_string();
    if segment.is_empty() {
        return Err(PathError::EmptySegment);
    }
    if segment.len() > MAX_SEGMENT_BYTES {
        return Err(PathError::Segment {
            segment: shown(),
            why: "is longer than 255 bytes",
        });
    }
    // `Mode::Symlink` makes gix test for `.gitmodules` and its NTFS and
    // HFS+ aliases as well; druppie refuses them whatever the mode.
    let checked = gix::validate::path::component(
        segment.as_bytes().as_bstr(),
        Some(Mode::Symlink),
        Options::default(),
    );
    let why = match checked {
        Ok(_) if is_more_windows_device(segment) => "is a Windows device name",
        Ok(_) => return Ok(()),
        Err(GixError::Relative) => return Err(PathError::Relative),
        Err(GixError::Empty) => return Err(PathError::EmptySegment),
        Err(GixError::SymlinkedGitModules) => {
            return Err(PathError::GitModules { segment: shown() });
        }
        Err(GixError::DotGitDir) => "is `.git` or a name a filesystem reads as `.git` (NTFS, HFS+)",
        Err(GixError::PathSeparator) => "holds a backslash",
        Err(GixError::WindowsPathPrefix) => "looks like a Windows drive (`C:`)",
        Err(GixError::WindowsReservedName) => "is a Windows device name",
        Err(GixError::WindowsIllegalCharacter) => {
            "holds a control character or one of `<>:\"|?*`, or ends with a space or `.`"
        }
        Err(_) => "is refused by git",
    };
    Err(PathError::Segment {
        segment: shown(),
        why,
    })
}

/// Whether `segment` is one of the device names Windows reserves that
/// git (and so gix) lets through: `COM0`, and `COM` or `LPT` followed by
/// a superscript digit (`¹`, `²`, `³`), in any case, alone or followed by
/// spaces, an extension (`.`) or a stream (`:`), as gix reads the others.
fn is_more_windows_device(segment: &str) -> bool {
    let Some((stem, rest)) = segment.split_at_checked(3) else {
        return false;
    };
    let digit = if stem.eq_ignore_ascii_case("COM") {
        rest.strip_prefix(['0', '\u{b9}', '\u{b2}', '\u{b3}'])
    } else if stem.eq_ignore_ascii_case("LPT") {
        rest.strip_prefix(['\u{b9}', '\u{b2}', '\u{b3}'])
    } else {
        None
    };
    digit.is_some_and(|after| {
        let after = after.trim_start_matches(' ');
        after.is_empty() || after.starts_with(['.', ':'])
    })
}

/// Checks a path in a repo: relative, `/`-separated, every segment
/// passing [`component`].
///
/// # Errors
/// The first problem found.
pub fn repo_path(path: &str) -> Result<(), PathError> {
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    if path.starts_with('/') {
        return Err(PathError::Absolute);
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(PathError::TooLong {
            max: MAX_PATH_BYTES,
        });
    }
    path.split('/').try_for_each(component)
}

/// Whether one repo path is the other or lies inside it, segment by
/// segment and ignoring case (a case-insensitive checkout would merge
/// them). `apps` and `apps/p` nest; `apps` and `apps2` do not.
pub fn nested(a: &str, b: &str) -> bool {
    let segments = |p: &str| -> Vec<String> {
        p.split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let (a, b) = (segments(a), segments(b));
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_checked_with_every_protection() {
        for ok in [
            "deployment.yaml",
            "README.md",
            ".gitignore",
            "a b.txt",
            "x.j2",
            "com10",
            "computer.yaml",
            "lpt\u{b9}0",
            "COM\u{2074}",
        ] {
            assert_eq!(component(ok), Ok(()), "{ok}");
        }
        for bad in [
            ".git",
            ".GIT",
            ".Git",
            ".git.",
            ".git ",
            "git~1",
            "GIT~1",
            ".g\u{200c}it",
            ".\u{feff}git",
            "..",
            ".",
            "a\\b",
            "c:x",
            "con",
            "nul.txt",
            "com0",
            "COM0.txt",
            "COM\u{b9}",
            "lpt\u{b3}.txt",
            "Lpt\u{b2} .x",
            "lpt0",
            "com1.x",
            "a\u{1}",
            "x.",
        ] {
            assert!(component(bad).is_err(), "{bad:?} must be refused");
        }
        for modules in [
            ".gitmodules",
            ".GITMODULES",
            "gitmod~1",
            "GI7EBA~1",
            ".gitmodules.",
        ] {
            assert!(
                matches!(component(modules), Err(PathError::GitModules { .. })),
                "{modules:?}: {:?}",
                component(modules)
            );
        }
    }

    #[test]
    fn repo_paths() {
        assert_eq!(repo_path("apps/dev"), Ok(()));
        assert_eq!(repo_path("../x"), Err(PathError::Relative));
        assert_eq!(repo_path("/abs"), Err(PathError::Absolute));
        assert_eq!(repo_path("a//b"), Err(PathError::EmptySegment));
        assert_eq!(repo_path("a/"), Err(PathError::EmptySegment));
        assert!(repo_path("a/.GIT/b").is_err());
        assert!(repo_path("a/b/.gitmodules").is_err());
        assert!(repo_path(&"a/".repeat(3000)).is_err());
    }

    #[test]
    fn nesting_compares_whole_segments() {
        assert!(nested("apps", "apps/p"));
        assert!(nested("apps/p", "apps"));
        assert!(nested("apps/dev", "apps/dev/"));
        assert!(nested("Apps/Dev", "apps/dev/x"));
        assert!(!nested("apps", "apps2"));
        assert!(!nested("apps/dev", "apps/prod"));
    }
}
