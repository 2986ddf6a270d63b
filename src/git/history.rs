//! Reading a repository's history without a checkout: the commits
//! reachable from a tip, the entry at a path of a commit's tree, every
//! entry below a directory, and blobs within a size. Nothing here follows
//! a symbolic link or trusts a name: entries come back with their raw
//! name bytes and their kind, for the caller to judge.

use gix::bstr::ByteSlice as _;

use super::{Error, ObjectId, Repo, err};

/// What a tree entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Blob,
    Link,
    Tree,
    /// A submodule's commit.
    Commit,
}

impl EntryKind {
    fn of(mode: gix::objs::tree::EntryMode) -> EntryKind {
        if mode.is_tree() {
            EntryKind::Tree
        } else if mode.is_link() {
            EntryKind::Link
        } else if mode.is_commit() {
            EntryKind::Commit
        } else {
            EntryKind::Blob
        }
    }
}

/// One entry of a commit's tree.
#[derive(Debug, Clone)]
pub struct TreeEntry {
    /// Its path below the directory asked for, segments joined by `/`, as
    /// the raw bytes of the tree's names.
    pub path: Vec<u8>,
    pub kind: EntryKind,
    pub id: ObjectId,
    /// Directories between the one asked for and this entry.
    pub depth: usize,
}

/// What is at a path of a tree.
#[derive(Debug, Clone)]
pub enum Lookup {
    Missing,
    /// A symbolic link at this path or on the way to it (that path);
    /// not followed.
    Link(String),
    Found(TreeEntry),
}

/// A blob read within a size.
#[derive(Debug)]
pub enum Bounded {
    Bytes(Vec<u8>),
    /// Larger than the limit: not read.
    TooLarge(u64),
    Missing,
}

/// Entries below a directory, as [`Repo::entries_below`] found them.
#[derive(Debug, Default)]
pub struct Listing {
    /// Blobs, links and submodules, in breadth-first order, names sorted
    /// as git sorts them in a tree. Trees are walked, not listed.
    pub entries: Vec<TreeEntry>,
    /// A directory deeper than the limit (its path), not walked.
    pub too_deep: Option<Vec<u8>>,
    /// More entries than the limit: the listing stopped.
    pub over: bool,
}

/// Reads history through one handle (and its object cache) of the
/// calling thread.
pub struct Reader {
    repo: gix::Repository,
    /// The entries of large trees read by name, by tree id: a directory
    /// of thousands of plans is looked up in once per plan.
    indexes: std::cell::RefCell<std::collections::HashMap<ObjectId, Index>>,
}

/// A tree's entries by name.
type Index = std::collections::HashMap<Vec<u8>, (EntryKind, ObjectId)>;

/// Trees with more entries than this are indexed by name.
const INDEXED: usize = 64;
/// Indexes a reader keeps (each about 100 bytes an entry: 1 MB for a
/// directory of 10,000 plans); lookups come plan after plan, so the
/// trees of the last few commits are the ones asked for again.
const INDEXES: usize = 8;

/// Whether [`Reader::ancestors`] goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    Next,
    Stop,
}

impl Repo {
    /// A reader of this repository's history, for the calling thread.
    pub fn reader(&self) -> Reader {
        let mut repo = self.repo.to_thread_local();
        repo.object_cache_size_if_unset(4 * 1024 * 1024);
        Reader {
            repo,
            indexes: std::cell::RefCell::default(),
        }
    }
}

impl Reader {
    /// Calls `visit` with the commits reachable from `tip`, newest first
    /// by commit time, until it says [`Walk::Stop`] or `limit` commits
    /// were visited; `Ok(true)` when the limit stopped it.
    ///
    /// # Errors
    /// A commit cannot be read, or `visit` fails.
    pub fn ancestors(
        &self,
        tip: ObjectId,
        limit: usize,
        mut visit: impl FnMut(ObjectId) -> Result<Walk, Error>,
    ) -> Result<bool, Error> {
        use gix::revision::walk::Sorting;
        use gix::traverse::commit::simple::CommitTimeOrder;
        let walk = self
            .repo
            .rev_walk([tip])
            .sorting(Sorting::ByCommitTime(CommitTimeOrder::NewestFirst))
            .all()
            .map_err(|e| err(format!("cannot walk the history of {tip}"), e))?;
        for (seen, info) in walk.enumerate() {
            if seen == limit {
                return Ok(true);
            }
            let info = info.map_err(|e| err(format!("cannot walk the history of {tip}"), e))?;
            if visit(info.id)? == Walk::Stop {
                break;
            }
        }
        Ok(false)
    }

    /// The entry at `path` (`/`-separated) of `commit`'s tree; a symbolic
    /// link at it or on the way to it is [`Lookup::Link`], never followed.
    ///
    /// # Errors
    /// The commit or a tree on the way cannot be read.
    pub fn entry_at(&self, commit: ObjectId, path: &str) -> Result<Lookup, Error> {
        let mut tree = self.root(commit)?;
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut at = String::new();
        for (i, segment) in segments.iter().enumerate() {
            if !at.is_empty() {
                at.push('/');
            }
            at.push_str(segment);
            let found = self
                .child(tree, segment.as_bytes())
                .map_err(|e| err(format!("cannot read `{at}` in {commit}"), e))?;
            let Some((kind, id)) = found else {
                return Ok(Lookup::Missing);
            };
            if kind == EntryKind::Link {
                return Ok(Lookup::Link(at));
            }
            if i + 1 == segments.len() {
                return Ok(Lookup::Found(TreeEntry {
                    path: at.into_bytes(),
                    kind,
                    id,
                    depth: 0,
                }));
            }
            if kind != EntryKind::Tree {
                return Ok(Lookup::Missing);
            }
            tree = id;
        }
        Ok(Lookup::Missing)
    }

    /// The id of the file at `path` (`/`-separated) of `commit`'s tree:
    /// a blob or a symbolic link there, as [`Repo::files_under`] lists
    /// it; `None` for anything else or nothing. The trees on the way are
    /// read through this reader's cache: many paths in one directory
    /// read it once.
    ///
    /// # Errors
    /// The commit or a tree on the way cannot be read.
    pub fn file_id(&self, commit: ObjectId, path: &str) -> Result<Option<ObjectId>, Error> {
        let mut tree = self.root(commit)?;
        let mut segments = path.split('/').filter(|s| !s.is_empty()).peekable();
        while let Some(segment) = segments.next() {
            let found = self
                .child(tree, segment.as_bytes())
                .map_err(|e| err(format!("cannot read `{path}` in {commit}"), e))?;
            match (found, segments.peek()) {
                (Some((EntryKind::Blob | EntryKind::Link, id)), None) => return Ok(Some(id)),
                (Some((EntryKind::Tree, id)), Some(_)) => tree = id,
                _ => return Ok(None),
            }
        }
        Ok(None)
    }

    /// The tree of `commit`.
    fn root(&self, commit: ObjectId) -> Result<ObjectId, Error> {
        self.repo
            .find_commit(commit)
            .and_then(|c| c.tree_id())
            .map(gix::Id::detach)
            .map_err(|e| err(format!("cannot read commit {commit}"), e))
    }

    /// The entry `name` of the tree `tree`: found by name in a large
    /// tree's index, made on its first lookup.
    fn child(
        &self,
        tree: ObjectId,
        name: &[u8],
    ) -> Result<Option<(EntryKind, ObjectId)>, Box<dyn std::error::Error + Send + Sync>> {
        if let Some(index) = self.indexes.borrow().get(&tree) {
            return Ok(index.get(name).copied());
        }
        let read = self.repo.find_tree(tree)?;
        let mut found = None;
        let mut count = 0;
        for entry in read.iter() {
            let entry = entry?;
            if found.is_none() && entry.filename() == name {
                found = Some((EntryKind::of(entry.mode()), entry.object_id()));
            }
            count += 1;
        }
        if count > INDEXED {
            let mut index = Index::with_capacity(count);
            for entry in read.iter() {
                let entry = entry?;
                let value = (EntryKind::of(entry.mode()), entry.object_id());
                // A name given twice (a hostile tree) is the first one,
                // as the scan above finds it.
                index.entry(entry.filename().to_vec()).or_insert(value);
            }
            let mut indexes = self.indexes.borrow_mut();
            if indexes.len() == INDEXES {
                indexes.clear();
            }
            indexes.insert(tree, index);
        }
        Ok(found)
    }

    /// Every blob, link and submodule below the tree `dir`, breadth
    /// first, descending at most `max_depth` directories and listing at
    /// most `limit` entries.
    ///
    /// # Errors
    /// A tree cannot be read.
    pub fn entries_below(
        &self,
        dir: ObjectId,
        max_depth: usize,
        limit: usize,
    ) -> Result<Listing, Error> {
        let repo = &self.repo;
        let mut out = Listing::default();
        let mut queue = std::collections::VecDeque::from([(Vec::new(), dir, 0usize)]);
        while let Some((prefix, id, depth)) = queue.pop_front() {
            let tree = repo
                .find_tree(id)
                .map_err(|e| err(format!("cannot read tree {id}"), e))?;
            for entry in tree.iter() {
                let entry = entry.map_err(|e| err(format!("cannot read tree {id}"), e))?;
                let mut path = prefix.clone();
                if !path.is_empty() {
                    path.push(b'/');
                }
                path.extend_from_slice(entry.filename().as_bytes());
                let kind = EntryKind::of(entry.mode());
                if kind == EntryKind::Tree {
                    if depth + 1 > max_depth {
                        out.too_deep.get_or_insert(path);
                        continue;
                    }
                    queue.push_back((path, entry.object_id(), depth + 1));
                    continue;
                }
                if out.entries.len() == limit {
                    out.over = true;
                    return Ok(out);
                }
                out.entries.push(TreeEntry {
                    path,
                    kind,
                    id: entry.object_id(),
                    depth,
                });
            }
        }
        Ok(out)
    }

    /// A blob's bytes when it holds at most `limit` bytes (its size is
    /// read from the object's header first).
    ///
    /// # Errors
    /// The object exists but cannot be read.
    pub fn blob_within(&self, id: ObjectId, limit: u64) -> Result<Bounded, Error> {
        let header = match self.repo.try_find_header(id) {
            Ok(Some(h)) => h,
            Ok(None) => return Ok(Bounded::Missing),
            Err(e) => return Err(err(format!("cannot read blob {id}"), e)),
        };
        if header.kind() != gix::objs::Kind::Blob {
            return Ok(Bounded::Missing);
        }
        if header.size() > limit {
            return Ok(Bounded::TooLarge(header.size()));
        }
        match self.repo.try_find_object(id) {
            Ok(Some(obj)) if obj.kind == gix::objs::Kind::Blob => {
                Ok(Bounded::Bytes(obj.detach().data))
            }
            Ok(_) => Ok(Bounded::Missing),
            Err(e) => Err(err(format!("cannot read blob {id}"), e)),
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Runs git in `dir`; its output, trimmed.
    pub(in crate::git) fn git(dir: &std::path::Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.org"])
            .args(args)
            .current_dir(dir)
            .output()
            .expect("git");
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .trim()
            .to_owned()
    }

    #[test]
    fn paths_through_large_directories_are_found_as_git_finds_them() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path();
        git(root, &["init", "-q"]);
        // A directory of more entries than are looked up one by one.
        for i in 0..3 * INDEXED {
            let plan = root.join(format!("apps/p{i:03}"));
            std::fs::create_dir_all(&plan).expect("dir");
            std::fs::write(plan.join("lock.yaml"), format!("{i}\n")).expect("file");
        }
        std::os::unix::fs::symlink("../p001", root.join("apps/p000/link")).expect("link");
        git(root, &["add", "-A"]);
        git(root, &["commit", "-qm", "plans"]);
        let head: ObjectId = git(root, &["rev-parse", "HEAD"]).parse().expect("id");
        let repo = Repo::open(root).expect("opens").expect("a repo");
        let reader = repo.reader();
        let id = |path: &str| git(root, &["rev-parse", &format!("HEAD:{path}")]);
        // Twice: the second lookups go through the indexes.
        for _ in 0..2 {
            for i in [0, 1, INDEXED, 3 * INDEXED - 1] {
                let path = format!("apps/p{i:03}/lock.yaml");
                let found = reader.file_id(head, &path).expect("reads");
                assert_eq!(found.map(|f| f.to_string()), Some(id(&path)), "{path}");
                match reader.entry_at(head, &path).expect("reads") {
                    Lookup::Found(e) => assert_eq!(e.id.to_string(), id(&path)),
                    other => panic!("{path}: {other:?}"),
                }
            }
            assert_eq!(
                reader.file_id(head, "apps/p000").expect("reads"),
                None,
                "a tree"
            );
            assert_eq!(
                reader.file_id(head, "apps/nope/lock.yaml").expect("reads"),
                None
            );
            assert_eq!(
                reader
                    .file_id(head, "apps/p000/link")
                    .expect("reads")
                    .map(|f| f.to_string()),
                Some(id("apps/p000/link")),
                "a link is listed, not followed"
            );
            assert!(matches!(
                reader.entry_at(head, "apps/p000/link/lock.yaml").expect("reads"),
                Lookup::Link(at) if at == "apps/p000/link"
            ));
            assert!(matches!(
                reader.entry_at(head, "apps/p999/lock.yaml").expect("reads"),
                Lookup::Missing
            ));
        }
        assert_eq!(reader.indexes.borrow().len(), 1, "only the large tree");
    }
}
