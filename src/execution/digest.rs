//! The plan's id: a digest of every file change, stable for the same
//! changes.

use std::fmt::Write as _;

use crate::diff::ChangeSets;
use crate::git::blob_id;

/// The first 16 hex digits of the blob id of one line per file change
/// (repo, environment, path, action, new blob).
pub fn of(changes: &ChangeSets) -> String {
    // A set without file changes has no lines (nor threads to start).
    let shown: Vec<_> = changes.shown().filter(|cs| !cs.files.is_empty()).collect();
    // Each set's lines on every core: a first apply hashes every file.
    let lines = crate::par::map(&shown, |cs| {
        let mut lines = String::new();
        for f in &cs.files {
            let new = f.new.as_deref().map(blob_id);
            let _ = writeln!(
                lines,
                "{} {:?} {} {:?} {:?}",
                cs.repo, cs.env, f.path, f.action, new
            );
        }
        lines
    });
    blob_id(lines.concat().as_bytes()).to_string()[..16].to_owned()
}
