//! What to do with one file, from three blob ids: the new render, the live
//! file and the locked blob (what druppie last rendered there).

use crate::git::ObjectId;
use crate::spec::model::OwnershipMode;

/// The decision for one path. Content is looked at only for `Merge`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to do.
    Unchanged,
    Create,
    /// Live is what druppie last wrote; write the new render.
    Modify,
    /// No longer rendered and unmodified since druppie wrote it.
    Delete,
    /// A managed file was edited or deleted by a person: restore it.
    Drift,
    /// A seeded file changed on both sides: merge three-way.
    Merge,
    /// Both sides changed and cannot be combined without a person.
    Conflict(&'static str),
    /// Left alone, and worth telling.
    Keep(&'static str),
}

/// `desired`: the new render (None: no longer rendered); `live`: the file
/// in the repo; `locked`: the blob the lock records (None: not druppie's).
pub fn classify(
    mode: OwnershipMode,
    desired: Option<ObjectId>,
    live: Option<ObjectId>,
    locked: Option<ObjectId>,
) -> Decision {
    use Decision::*;
    let seeded = mode == OwnershipMode::Seeded;
    match (desired, live, locked) {
        (None, None, _) | (None, Some(_), None) => Unchanged,
        (None, Some(l), Some(b)) if l == b => Delete,
        (None, Some(_), Some(_)) => Keep("no longer rendered; kept because it was edited since"),
        (Some(_), None, None) => Create,
        (Some(d), None, Some(b)) => match (seeded, d == b) {
            (false, _) => Drift,
            (true, true) => {
                Keep("deleted in the repo; the template has not changed, so it stays deleted")
            }
            (true, false) => Conflict("deleted in the repo, changed by the spec"),
        },
        (Some(d), Some(l), _) if d == l => Unchanged,
        (Some(_), Some(_), None) => Conflict("exists in the repo but druppie did not write it"),
        (Some(_), Some(l), Some(b)) if l == b => Modify,
        (Some(d), Some(_), Some(b)) => match (seeded, d == b) {
            (false, _) => Drift,
            (true, true) => {
                Keep("edited in the repo; seeded files belong to people, so it is kept")
            }
            (true, false) => Merge,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::Decision::*;
    use super::*;
    use crate::git::blob_id;

    #[test]
    fn every_combination_of_render_live_and_lock() {
        let (a, b, c) = (
            Some(blob_id(b"a")),
            Some(blob_id(b"b")),
            Some(blob_id(b"c")),
        );
        let m = OwnershipMode::Managed;
        let s = OwnershipMode::Seeded;
        // (mode, desired, live, locked) -> decision
        let table = [
            (m, a, None, None, Create),
            (m, a, a, None, Unchanged),
            (
                m,
                a,
                b,
                None,
                Conflict("exists in the repo but druppie did not write it"),
            ),
            (m, b, a, a, Modify),
            (s, b, a, a, Modify),
            (m, a, b, a, Drift),
            (m, b, c, a, Drift),
            (m, a, None, a, Drift),
            (
                s,
                a,
                b,
                a,
                Keep("edited in the repo; seeded files belong to people, so it is kept"),
            ),
            (s, c, b, a, Merge),
            (s, b, b, a, Unchanged),
            (
                s,
                a,
                None,
                a,
                Keep("deleted in the repo; the template has not changed, so it stays deleted"),
            ),
            (
                s,
                b,
                None,
                a,
                Conflict("deleted in the repo, changed by the spec"),
            ),
            (m, None, a, a, Delete),
            (s, None, a, a, Delete),
            (
                m,
                None,
                b,
                a,
                Keep("no longer rendered; kept because it was edited since"),
            ),
            (m, None, a, None, Unchanged),
            (m, None, None, a, Unchanged),
        ];
        for (mode, d, l, b, want) in table {
            assert_eq!(
                classify(mode, d, l, b),
                want,
                "{mode:?} d={d:?} l={l:?} b={b:?}"
            );
        }
    }
}
