//! The one way druppie lists the spec checkout: a walk that refuses
//! symbolic links at every level.
//!
//! A spec repo may hold no symbolic link in the directories druppie reads
//! (`bouwblokken/`, `skills/`, `templates/`, `spec/`), at any depth, and
//! those directories may not be links themselves: a link could point
//! outside the repo, and what it points at would be read, rendered and
//! committed into target repos. Each link is an error naming it, never a
//! skipped file. Only the spec root itself may be reached through a link
//! (it is the operator's choice, not the spec's). Names must be UTF-8,
//! and only regular files and directories are read (a FIFO or device
//! under the spec is refused too).
//!
//! Loading the spec ([`crate::spec::load`]) and loading templates
//! ([`crate::render::TemplateSet`]) both list files with [`walk`].

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::diag::{Diagnostic, Location};

/// Directories deeper than this below the spec root are refused.
pub const MAX_DEPTH: usize = 64;

/// A regular file found by [`walk`]. The walk reads directories only
/// (each entry's type comes with its name): a file's size is taken when
/// it is opened, so what is counted is what is read.
#[derive(Debug, Clone)]
pub struct Found {
    /// Where it is on disk.
    pub disk: PathBuf,
    /// Its path relative to the spec root, with `/` separators.
    pub rel: String,
}

/// An entry [`walk`] refused (the walk goes on without it).
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("`{rel}` is a symbolic link: a spec repo may hold no symbolic links")]
    Symlink { rel: String },
    #[error("`{rel}` has a name that is not valid UTF-8")]
    NotUtf8 { rel: String },
    #[error("`{rel}` is neither a regular file nor a directory")]
    Special { rel: String },
    #[error("`{rel}` is nested deeper than {MAX_DEPTH} directories")]
    TooDeep { rel: String },
    #[error("cannot read `{rel}`")]
    Io {
        rel: String,
        #[source]
        source: std::io::Error,
    },
}

impl Refused {
    /// The refused path, relative to the spec root.
    pub fn rel(&self) -> &str {
        match self {
            Refused::Symlink { rel }
            | Refused::NotUtf8 { rel }
            | Refused::Special { rel }
            | Refused::TooDeep { rel }
            | Refused::Io { rel, .. } => rel,
        }
    }

    /// The refusal as a diagnostic located at the refused path.
    pub fn diagnostic(&self) -> Diagnostic {
        let message = match self {
            Refused::Io { source, .. } => format!("{self}: {source}"),
            _ => self.to_string(),
        };
        let d = Diagnostic::error(message, Location::file(self.rel()));
        match self {
            Refused::Symlink { .. } => d.with_help(
                "druppie reads nothing outside the spec repo: replace the link by the files themselves",
            ),
            Refused::NotUtf8 { .. } => d.with_help("rename it with a UTF-8 name"),
            _ => d,
        }
    }
}

/// More files than the walk's budget allows.
#[derive(Debug, thiserror::Error)]
#[error("more than {limit} files")]
pub struct OverBudget {
    pub limit: usize,
}

/// What one [`walk`] found.
#[derive(Debug, Default)]
pub struct Walk {
    /// Regular files, in the order of a depth-first walk with names sorted.
    pub files: Vec<Found>,
    /// Directories below the walked one (relative to the spec root).
    pub dirs: Vec<String>,
    /// Entries refused, each with its reason.
    pub refused: Vec<Refused>,
}

impl Walk {
    /// The files, or the first refusal.
    ///
    /// # Errors
    /// The first entry refused.
    pub fn into_result(mut self) -> Result<Vec<Found>, Refused> {
        if self.refused.is_empty() {
            Ok(self.files)
        } else {
            Err(self.refused.swap_remove(0))
        }
    }
}

/// Lists every regular file under `root/dir` (`dir`: `/`-separated,
/// relative to `root`). `dir` and each directory between `root` and it
/// must be real directories: a link there is refused like one inside. A
/// `dir` that does not exist lists nothing. Every file found takes one
/// from `budget`.
///
/// # Errors
/// [`OverBudget`] when the files found exceed `budget`; refused entries
/// are in [`Walk::refused`].
pub fn walk(root: &Path, dir: &str, budget: &mut usize) -> Result<Walk, OverBudget> {
    let limit = *budget;
    let mut out = Walk::default();
    let rel = dir
        .split('/')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("/");
    match no_link_on_the_way(root, &rel) {
        Ok(Some(Kind::Dir)) => {}
        Ok(_) => return Ok(out),
        Err(refused) => {
            out.refused.push(refused);
            return Ok(out);
        }
    }
    let start = root.join(&rel);
    let depth = rel.split('/').filter(|s| !s.is_empty()).count();
    walk_dir(&start, &rel, depth, budget, &mut out).map_err(|_| OverBudget { limit })?;
    Ok(out)
}

/// What [`no_link_on_the_way`] found at the end of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    /// A FIFO, socket or device.
    Other,
}

/// Checks that no segment of `rel` (`/`-separated, below `root`) is a
/// symbolic link, without following any, and says what `rel` is
/// (`None`: it does not exist, or something on the way is not a
/// directory). `root` itself is not checked.
///
/// # Errors
/// [`Refused::Symlink`] naming the first link, or [`Refused::Io`].
pub fn no_link_on_the_way(root: &Path, rel: &str) -> Result<Option<Kind>, Refused> {
    let mut at = String::new();
    let mut kind = Kind::Dir;
    for segment in rel.split('/').filter(|s| !s.is_empty()) {
        if kind != Kind::Dir {
            return Ok(None);
        }
        if !at.is_empty() {
            at.push('/');
        }
        at.push_str(segment);
        kind = match fs::symlink_metadata(root.join(&at)) {
            Ok(m) if m.file_type().is_symlink() => return Err(Refused::Symlink { rel: at }),
            Ok(m) if m.is_dir() => Kind::Dir,
            Ok(m) if m.is_file() => Kind::File,
            Ok(_) => Kind::Other,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(Refused::Io { rel: at, source }),
        };
    }
    Ok(Some(kind))
}

fn walk_dir(
    disk: &Path,
    rel: &str,
    depth: usize,
    budget: &mut usize,
    out: &mut Walk,
) -> Result<(), OverBudget> {
    let entries = match fs::read_dir(disk) {
        Ok(entries) => entries,
        Err(source) => {
            out.refused.push(Refused::Io {
                rel: rel.to_owned(),
                source,
            });
            return Ok(());
        }
    };
    let mut entries: Vec<fs::DirEntry> = match entries.collect() {
        Ok(e) => e,
        Err(source) => {
            out.refused.push(Refused::Io {
                rel: rel.to_owned(),
                source,
            });
            return Ok(());
        }
    };
    entries.sort_by_key(fs::DirEntry::file_name);
    for entry in entries {
        let name = entry.file_name();
        let child = |name: &str| {
            if rel.is_empty() {
                name.to_owned()
            } else {
                format!("{rel}/{name}")
            }
        };
        let Some(name) = name.to_str() else {
            out.refused.push(Refused::NotUtf8 {
                rel: child(&name.to_string_lossy()),
            });
            continue;
        };
        let child_rel = child(name);
        // `DirEntry::file_type` does not follow a link, and comes with the
        // directory listing (a `stat` only where the file system does not
        // say).
        let kind = match entry.file_type() {
            Ok(kind) => kind,
            Err(source) => {
                out.refused.push(Refused::Io {
                    rel: child_rel,
                    source,
                });
                continue;
            }
        };
        if kind.is_symlink() {
            out.refused.push(Refused::Symlink { rel: child_rel });
        } else if kind.is_dir() {
            if depth + 1 > MAX_DEPTH {
                out.refused.push(Refused::TooDeep { rel: child_rel });
                continue;
            }
            out.dirs.push(child_rel.clone());
            walk_dir(&entry.path(), &child_rel, depth + 1, budget, out)?;
        } else if kind.is_file() {
            *budget = budget.checked_sub(1).ok_or(OverBudget { limit: 0 })?;
            out.files.push(Found {
                disk: entry.path(),
                rel: child_rel,
            });
        } else {
            out.refused.push(Refused::Special { rel: child_rel });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for f in [
            "templates/a/infra/x.yaml",
            "templates/a/infra/sub/y.yaml",
            "templates/b/project/z",
        ] {
            let p = dir.path().join(f);
            fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            fs::write(p, "x").expect("write");
        }
        dir
    }

    fn rels(w: &Walk) -> Vec<&str> {
        w.files.iter().map(|f| f.rel.as_str()).collect()
    }

    #[test]
    fn lists_files_depth_first_in_name_order() {
        let dir = tree();
        let w = walk(dir.path(), "templates", &mut 100).expect("within budget");
        assert_eq!(
            rels(&w),
            [
                "templates/a/infra/sub/y.yaml",
                "templates/a/infra/x.yaml",
                "templates/b/project/z"
            ]
        );
        assert!(w.refused.is_empty());
        let w = walk(dir.path(), "templates/a/infra", &mut 100).expect("within budget");
        assert_eq!(w.files.len(), 2);
        assert!(
            walk(dir.path(), "missing/dir", &mut 100)
                .expect("ok")
                .files
                .is_empty()
        );
    }

    #[test]
    fn a_link_at_any_level_is_refused_and_named() {
        let outside = tempfile::tempdir().expect("temp dir");
        fs::write(outside.path().join("secret"), "s").expect("write");
        let dir = tree();
        symlink(outside.path(), dir.path().join("templates/a/infra/out")).expect("link");
        symlink(
            outside.path().join("secret"),
            dir.path().join("templates/b/project/f"),
        )
        .expect("link");
        let w = walk(dir.path(), "templates", &mut 100).expect("within budget");
        let refused: Vec<&str> = w.refused.iter().map(Refused::rel).collect();
        assert_eq!(refused, ["templates/a/infra/out", "templates/b/project/f"]);
        assert!(rels(&w).iter().all(|r| !r.contains("secret")));

        // The walked directory, or one on the way to it, being a link.
        let dir = tempfile::tempdir().expect("temp dir");
        symlink(outside.path(), dir.path().join("templates")).expect("link");
        let w = walk(dir.path(), "templates/a/infra", &mut 100).expect("within budget");
        assert!(w.files.is_empty());
        assert_eq!(w.refused[0].rel(), "templates");
    }

    #[test]
    fn a_name_that_is_not_utf8_is_refused() {
        use std::os::unix::ffi::OsStrExt as _;
        let dir = tree();
        let name = std::ffi::OsStr::from_bytes(b"f\xff.txt");
        fs::write(dir.path().join("templates/a/infra").join(name), "x").expect("write");
        let w = walk(dir.path(), "templates", &mut 100).expect("within budget");
        assert!(
            matches!(&w.refused[..], [Refused::NotUtf8 { rel }] if rel == "templates/a/infra/f\u{fffd}.txt"),
            "{:?}",
            w.refused
        );
    }

    #[test]
    fn a_fifo_is_refused_not_read() {
        let dir = tree();
        let fifo = dir.path().join("templates/a/infra/pipe.yaml");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        let w = walk(dir.path(), "templates", &mut 100).expect("within budget");
        assert!(
            matches!(&w.refused[..], [Refused::Special { rel }] if rel == "templates/a/infra/pipe.yaml"),
            "{:?}",
            w.refused
        );
    }

    #[test]
    fn the_budget_bounds_the_walk() {
        let dir = tree();
        assert!(walk(dir.path(), "templates", &mut 2).is_err());
        let mut budget = 3;
        walk(dir.path(), "templates", &mut budget).expect("exactly enough");
        assert_eq!(budget, 0);
    }
}
