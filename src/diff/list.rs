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
/// from the list in `tree`; `None` when `files` create or delete no Flux
/// location on `tree` (a plan's lock written again in place is neither),
/// or the list says exactly that already. The list's own change in
/// `files`, if any, is ignored.
pub fn text_after(
    env: &str,
    tree: &BTreeMap<String, ObjectId>,
    files: &[FileChange],
) -> Option<Vec<u8>> {
    let changes = || files.iter().map(|f| (f.path.as_str(), f.new.is_some()));
    if !flux::moves_list_on(env, changes(), |path| tree.contains_key(path)) {
        return None;
    }
    // Only the Flux directory's files: an environment's tree holds every
    // plan's files too.
    let root = format!("{}/", crate::spec::names::flux_dir(env));
    let under = tree
        .range(root.clone()..)
        .map(|(path, _)| path.as_str())
        .take_while(|path| path.starts_with(&root));
    let plans = flux::after(env, flux::listed(env, under), changes());
    let text = flux::list(&plans).into_bytes();
    let have = tree.get(&flux::list_path(env));
    (have != Some(&crate::git::blob_id(&text))).then_some(text)
}

/// Sets the list's change in `files` to what it is on `tree`: replaced,
/// added, or dropped when the list stays as it is. `tree` is asked for
/// only when `files` create or delete a plan's Flux location (`None`: it
/// could not be read, as its reader says, and the list is left out).
/// `read` gives a live file's bytes, for the change's old side.
///
/// # Errors
/// What `read` fails with.
pub fn set<'t, E>(
    env: &str,
    tree: impl FnOnce() -> Option<&'t BTreeMap<String, ObjectId>>,
    files: &mut Vec<FileChange>,
    read: impl FnOnce(&str, ObjectId) -> Result<Vec<u8>, E>,
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
    let Some(text) = text_after(env, tree, files) else {
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
/// files of the environment, which `live` reads when [`set`] needs them.
pub(super) fn add<'l>(
    cs: &mut ChangeSet,
    repo: &LiveRepo,
    env: &str,
    live: impl FnOnce() -> Option<&'l BTreeMap<String, ObjectId>>,
) -> Result<(), live::Error> {
    set(env, live, &mut cs.files, |path, id| repo.read(path, id))
}
