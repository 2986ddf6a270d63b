//! Trees: reading the files below a directory of one, and the id git
//! gives a tree of files druppie makes.

use std::collections::BTreeMap;

use gix::bstr::ByteSlice as _;

use super::{Error, ObjectId, Source, err};

/// Directories with at least this many subdirectories are walked on every
/// core.
const PARALLEL_WALK: usize = 64;

/// Every blob and symbolic link below the tree `id`, as `prefix/path`,
/// in path order.
fn walk(
    repo: &gix::Repository,
    id: ObjectId,
    prefix: &str,
) -> Result<Vec<(String, ObjectId)>, Error> {
    let mut recorder = gix::traverse::tree::Recorder::default();
    let walk_error = |e: Source| err(format!("cannot walk `{prefix}`"), e);
    repo.find_tree(id)
        .map_err(|e| walk_error(e.into()))?
        .traverse()
        .breadthfirst(&mut recorder)
        .map_err(|e| walk_error(e.into()))?;
    let mut files: Vec<(String, ObjectId)> = recorder
        .records
        .into_iter()
        .filter(|r| r.mode.is_blob_or_symlink())
        .map(|r| (format!("{prefix}/{}", r.filepath.to_str_lossy()), r.oid))
        .collect();
    // Sorted here, on the walking thread: the caller's map then gets the
    // directories' runs in order and has little left to sort.
    files.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

/// The tree at `dir` (`/`-separated, `""` for the root) of the tree
/// `tree`; `None` when there is no directory there.
pub(super) fn subtree<'r>(
    repo: &'r gix::Repository,
    tree: ObjectId,
    dir: &str,
) -> Result<Option<gix::Tree<'r>>, Error> {
    let root = repo
        .find_tree(tree)
        .map_err(|e| err("cannot read the tree", e))?;
    if dir.is_empty() {
        return Ok(Some(root));
    }
    let entry = root
        .lookup_entry_by_path(dir)
        .map_err(|e| err(format!("cannot read `{dir}`"), e))?;
    match entry {
        Some(e) if e.mode().is_tree() => repo
            .find_tree(e.object_id())
            .map(Some)
            .map_err(|e| err(format!("cannot read `{dir}`"), e)),
        _ => Ok(None),
    }
}

/// [`Repo::files_under`] through `repo`; a large directory is walked on
/// every core through handles of `shared`, when given.
pub(super) fn files_under(
    repo: &gix::Repository,
    shared: Option<&gix::ThreadSafeRepository>,
    tree: ObjectId,
    dir: &str,
) -> Result<BTreeMap<String, ObjectId>, Error> {
    let Some(sub) = subtree(repo, tree, dir)? else {
        return Ok(BTreeMap::new());
    };
    let walk_error = |e: Source| err(format!("cannot walk `{dir}`"), e);
    let mut files = Vec::new();
    let mut subtrees = Vec::new();
    for entry in sub.iter() {
        let entry = entry.map_err(|e| walk_error(e.into()))?;
        let name = entry.filename().to_str_lossy();
        let name = if dir.is_empty() {
            name.into_owned()
        } else {
            format!("{dir}/{name}")
        };
        if entry.mode().is_tree() {
            subtrees.push((name, entry.oid().to_owned()));
        } else if entry.mode().is_blob_or_symlink() {
            files.push((name, entry.oid().to_owned()));
        }
    }
    // A large directory (an environment's, with a directory per plan)
    // is walked on every core.
    let walk_one = |repo: &gix::Repository, (name, id): &(String, ObjectId)| walk(repo, *id, name);
    let walked: Vec<_> = match shared {
        Some(shared) if subtrees.len() >= PARALLEL_WALK => {
            let init = || shared.to_thread_local();
            crate::par::map_init(&subtrees, None, init, |r, t| walk_one(r, t))
        }
        _ => subtrees.iter().map(|t| walk_one(repo, t)).collect(),
    };
    for part in walked {
        files.extend(part?);
    }
    Ok(files.into_iter().collect())
}

/// The id git gives the tree holding `files` (paths relative to it, `/`
/// between directories, each a regular file: mode 100644, as druppie
/// writes them), when the paths make a tree: no empty, `.` or `..` part,
/// and no name both a file and a directory.
pub fn tree_id<'p>(files: impl IntoIterator<Item = (&'p str, ObjectId)>) -> Option<ObjectId> {
    #[derive(Default)]
    struct Dir<'p> {
        files: BTreeMap<&'p str, ObjectId>,
        dirs: BTreeMap<&'p str, Dir<'p>>,
    }
    fn id(dir: &Dir<'_>) -> Option<ObjectId> {
        // git orders a tree's entries by name, a directory's as if it
        // ended in `/`.
        let mut entries: Vec<(Vec<u8>, &[u8], ObjectId)> = dir
            .files
            .iter()
            .map(|(name, id)| (name.as_bytes().to_vec(), b"100644".as_slice(), *id))
            .collect();
        for (name, sub) in &dir.dirs {
            entries.push((
                [name.as_bytes(), b"/"].concat(),
                b"40000".as_slice(),
                id(sub)?,
            ));
        }
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut bytes = Vec::with_capacity(entries.len() * 48);
        for (key, mode, oid) in &entries {
            let name = key.strip_suffix(b"/").unwrap_or(key);
            bytes.extend_from_slice(mode);
            bytes.push(b' ');
            bytes.extend_from_slice(name);
            bytes.push(0);
            bytes.extend_from_slice(oid.as_bytes());
        }
        gix::objs::compute_hash(gix::hash::Kind::Sha1, gix::objs::Kind::Tree, &bytes).ok()
    }
    let mut root = Dir::default();
    for (path, oid) in files {
        let mut parts = path.split('/').peekable();
        let mut at = &mut root;
        while let Some(part) = parts.next() {
            if part.is_empty() || part == "." || part == ".." {
                return None;
            }
            if parts.peek().is_none() {
                if at.dirs.contains_key(part) || at.files.insert(part, oid).is_some() {
                    return None;
                }
            } else {
                if at.files.contains_key(part) {
                    return None;
                }
                at = at.dirs.entry(part).or_default();
            }
        }
    }
    id(&root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::blob_id;

    /// `tree_id` against `git write-tree` of the same files, with names
    /// that sort differently as files and as directories (`a-b`, `a.b`
    /// and `a0` around the directory `a`).
    #[test]
    fn tree_ids_are_gits() {
        let files = [
            ("a/x.yaml", "x\n"),
            ("a/b/c.txt", "c\n"),
            ("a-b", "dash\n"),
            ("a.b", "dot\n"),
            ("a0", "zero\n"),
            ("Z", "upper\n"),
            ("kustomization.yaml", "k\n"),
            (".druppie-lock.yaml", "lock\n"),
        ];
        let dir = tempfile::tempdir().expect("tmp");
        for (path, text) in files {
            let file = dir.path().join(path);
            std::fs::create_dir_all(file.parent().expect("a parent")).expect("mkdir");
            std::fs::write(file, text).expect("write");
        }
        let git = |args: &[&str]| crate::git::history::tests::git(dir.path(), args);
        git(&["init", "-q"]);
        git(&["add", "-A"]);
        let want = git(&["write-tree"]);
        let ids = files.map(|(path, text)| (path, blob_id(text.as_bytes())));
        assert_eq!(tree_id(ids).map(|id| id.to_string()), Some(want));
        // Paths that make no tree.
        let one = blob_id(b"1");
        assert_eq!(tree_id([("a", one), ("a/b", one)]), None);
        assert_eq!(tree_id([("a/b", one), ("a", one)]), None);
        assert_eq!(tree_id([("a//b", one)]), None);
        assert_eq!(tree_id([("a/../b", one)]), None);
        assert_eq!(tree_id([("a", one), ("a", one)]), None);
    }
}
