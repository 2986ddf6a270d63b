//! An environment's list of Flux directories
//! (`clusters/<env>/druppie/kustomization.yaml`) as one change set
//! changes it. The list belongs to no plan's lock: it follows from which
//! plan directories have a lock ([`crate::render::flux`]), so it changes
//! with a change set that creates or deletes a plan's Flux location, and
//! is computed from the tree that change set builds on: by `diff` from
//! the live tree, by `apply` from the tree each commit builds on.

use std::collections::BTreeMap;

use super::{Action, ChangeSet, FileChange};
use crate::git::ObjectId;
use crate::live::{self, LiveRepo};
use crate::render::flux;

/// The list's text after `files` are applied to a tree whose files under
/// `clusters/<env>/druppie/` are `tree` (full paths), when it differs
/// from the list in `tree`; `None` when the list says exactly that
/// already. The list's own change in `files`, if any, is ignored.
///
/// Only `files` that create or delete a Flux location on `tree` change
/// the plans listed. Any others leave the list as `tree` lists its plans
/// (a plan's lock written again in place is neither): that is
/// `settled`, the same for every such change set, which a caller doing
/// many asks once ([`settled`] makes it).
pub fn text_after(
    env: &str,
    tree: &BTreeMap<String, ObjectId>,
    files: &[FileChange],
    settled: impl FnOnce() -> Option<Vec<u8>>,
) -> Option<Vec<u8>> {
    let changes = || files.iter().map(|f| (f.path.as_str(), f.new.is_some()));
    if !flux::moves_list_on(env, changes(), |path| tree.contains_key(path)) {
        return settled();
    }
    made(env, tree, changes())
}

/// The list `tree` should hold, by the plans it has a Flux lock for,
/// when the one it holds is not that (edited by hand, or missing).
pub fn settled(env: &str, tree: &BTreeMap<String, ObjectId>) -> Option<Vec<u8>> {
    made(env, tree, std::iter::empty())
}

/// The list of the plans `tree` has a Flux lock for after `changes`,
/// when it differs from the list in `tree`.
fn made<'c>(
    env: &str,
    tree: &BTreeMap<String, ObjectId>,
    changes: impl IntoIterator<Item = (&'c str, bool)>,
) -> Option<Vec<u8>> {
    // Only the Flux directory's files: an environment's tree holds every
    // plan's files too.
    let root = format!("{}/", crate::spec::names::flux_dir(env));
    let under = tree
        .range(root.clone()..)
        .map(|(path, _)| path.as_str())
        .take_while(|path| path.starts_with(&root));
    let plans = flux::after(env, flux::listed(env, under), changes);
    let text = flux::list(&plans).into_bytes();
    let have = tree.get(&flux::list_path(env));
    (have != Some(&crate::git::blob_id(&text))).then_some(text)
}

/// Sets the list's change in `files` to what it is on `tree`: replaced,
/// added, or dropped when the list stays as it is. `tree` is asked for
/// only when `files` touch a plan's Flux lock (`None`: it could not be
/// read, as its reader says, and the list is left out); `settled` as
/// for [`text_after`]. `read` gives a live file's bytes, for the
/// change's old side.
///
/// # Errors
/// What `read` fails with.
pub fn set<'t, E>(
    env: &str,
    tree: impl FnOnce() -> Option<&'t BTreeMap<String, ObjectId>>,
    files: &mut Vec<FileChange>,
    read: impl FnOnce(&str, ObjectId) -> Result<Vec<u8>, E>,
    settled: impl FnOnce(&BTreeMap<String, ObjectId>) -> Option<Vec<u8>>,
) -> Result<(), E> {
    let path = flux::list_path(env);
    files.retain(|f| f.path != path);
    if !flux::moves_list(
        env,
        files.iter().map(|f| (f.path.as_str(), f.new.is_some())),
    ) {
        return Ok(());
    }
    let Some(tree) = tree() else {
        return Ok(());
    };
    let Some(text) = text_after(env, tree, files, || settled(tree)) else {
        return Ok(());
    };
    let old = tree.get(&path).map(|id| read(&path, *id)).transpose()?;
    files.push(FileChange {
        action: if old.is_some() {
            Action::Modify
        } else {
            Action::Create
        },
        path,
        old,
        new: Some(text),
        reason: None,
    });
    Ok(())
}

/// Adds the list's change to `cs` (in `env`), computed from the live
/// files of the environment, which `live` reads when [`set`] needs them;
/// `settled` as for [`text_after`], on those files.
pub(super) fn add<'l>(
    cs: &mut ChangeSet,
    repo: &LiveRepo,
    env: &str,
    live: impl FnOnce() -> Option<&'l BTreeMap<String, ObjectId>>,
    settled: impl FnOnce(&BTreeMap<String, ObjectId>) -> Option<Vec<u8>>,
) -> Result<(), live::Error> {
    set(
        env,
        live,
        &mut cs.files,
        |path, id| repo.read(path, id),
        settled,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "clusters/dev/druppie/a/.druppie-lock.yaml";
    const B: &str = "clusters/dev/druppie/b/.druppie-lock.yaml";
    const C: &str = "clusters/dev/druppie/c/.druppie-lock.yaml";

    /// A tree with the locks of `a` and `b`, and `list` as its list.
    fn tree(list: &str) -> BTreeMap<String, ObjectId> {
        let id = crate::git::blob_id(b"lock");
        let mut t: BTreeMap<String, ObjectId> = [(A.to_owned(), id), (B.to_owned(), id)].into();
        t.insert(flux::list_path("dev"), crate::git::blob_id(list.as_bytes()));
        t
    }

    fn change(path: &str, present: bool) -> FileChange {
        FileChange {
            path: path.to_owned(),
            action: if present {
                Action::Modify
            } else {
                Action::Delete
            },
            old: None,
            new: present.then(|| b"lock".to_vec()),
            reason: None,
        }
    }

    fn listing(plans: &[&str]) -> String {
        flux::list(&plans.iter().map(|p| (*p).to_owned()).collect())
    }

    #[test]
    fn a_lock_written_again_leaves_the_list_as_the_tree_says_it_should_be() {
        let whole = tree(&listing(&["a", "b"]));
        let rewritten = [change(B, true)];
        let asked = std::cell::Cell::new(0);
        let counted = || {
            asked.set(asked.get() + 1);
            settled("dev", &whole)
        };
        // The list is right: nothing to write, asked of `settled` alone.
        assert_eq!(text_after("dev", &whole, &rewritten, counted), None);
        assert_eq!(asked.get(), 1);
        // A list edited by hand (`b` taken out) is put right by it.
        let edited = tree(&listing(&["a"]));
        let put_right = text_after("dev", &edited, &rewritten, || settled("dev", &edited));
        assert_eq!(put_right, Some(listing(&["a", "b"]).into_bytes()));
        // A lock created or deleted moves the list, without `settled`.
        let moved = |files: &[FileChange]| {
            text_after("dev", &whole, files, || unreachable!("moves the list"))
        };
        assert_eq!(
            moved(&[change(C, true)]),
            Some(listing(&["a", "b", "c"]).into_bytes())
        );
        assert_eq!(
            moved(&[change(A, false)]),
            Some(listing(&["b"]).into_bytes())
        );
    }
}
