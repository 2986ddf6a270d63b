//! Writing a run of commits as one set of objects: blobs, trees and
//! commits are kept in memory as they are written (each commit can
//! build on the one before, and what was written reads back), then
//! stored together. A few objects are written one file each, as git
//! writes a small push it receives; more go into a pack, where a tree or
//! file that changed is stored whole in its newest version and as
//! differences (deltas) in the older ones, and which `git push` sends on
//! as it is.

use std::collections::BTreeMap;

use gix::bstr::BString;
use gix::hashtable::{HashMap, HashSet};

use gix::objs::Write as _;

use super::write::{NewCommit, Written};
use super::{Error, ObjectId, Repo, err, pack};

/// At most this many objects are written one file each; more go into a
/// pack. Every pack stays until git's `gc --auto` finds 50 of them and
/// repacks the whole repository, so a pack per small change would soon
/// cost a repack; git itself keeps what it receives one file each below
/// 100 objects (`transfer.unpackLimit`): the same limit, so a change of
/// one plan leaves the clone as git would.
pub const LOOSE_MAX: usize = 100;

/// Objects held in memory are written out as a pack once they reach
/// this many bytes, so a run of thousands of commits is never held
/// whole.
const HELD_MAX: usize = 32 << 20;

/// A delta is based on an object that is at most this many deltas from
/// a whole one (git's `pack.depth`): reading an object applies its
/// chain.
const DEPTH_MAX: u32 = 50;

/// Commits being written together; nothing is stored until
/// [`Batch::finish`] (or until the objects held reach a size that is
/// written out as a pack on its own), so no ref may name them before.
pub struct Batch<'r> {
    owner: &'r Repo,
    /// A handle that writes to memory.
    repo: gix::Repository,
    /// The objects held, in the order they were written.
    order: Vec<Placed>,
    /// Where each object of `order` is.
    placed: HashMap<ObjectId, usize>,
    /// The file last placed under each name: a new file's likely
    /// relative (a plan's `deployment.yaml` and the plan's before it).
    named: std::collections::HashMap<BString, ObjectId>,
    /// Bytes of the objects held.
    held: usize,
    /// At this many bytes held, they are written out as a pack.
    held_max: usize,
    /// Commits held in memory.
    commits: HashSet<ObjectId>,
    stored: Stored,
}

/// An object held, and the earlier one (its index in [`Batch::order`])
/// it is likely a new version of.
struct Placed {
    id: ObjectId,
    before: Option<usize>,
    /// `before` was at the same path; else it is a file under the same
    /// name elsewhere.
    same_path: bool,
}

/// What a batch stored.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// Objects written one file each.
    pub loose: usize,
    /// Objects written into packs.
    pub packed: usize,
    /// Packs written.
    pub packs: usize,
}

impl Repo {
    /// A batch of commits to write into this repository.
    pub fn batch(&self) -> Batch<'_> {
        Batch {
            owner: self,
            repo: self.repo.to_thread_local().with_object_memory(),
            order: Vec::new(),
            placed: HashMap::default(),
            named: std::collections::HashMap::new(),
            held: 0,
            held_max: HELD_MAX,
            commits: HashSet::default(),
            stored: Stored::default(),
        }
    }
}

impl Batch<'_> {
    /// Writes `commit` as [`Repo::write_commit`] does, into the batch.
    ///
    /// # Errors
    /// As [`Repo::write_commit`]; or the objects held reached their limit
    /// and the pack of them cannot be written.
    pub fn write_commit(
        &mut self,
        commit: &NewCommit<'_>,
        signer: Option<&super::sign::Signer>,
    ) -> Result<Written, Error> {
        let (written, parent_tree) = super::write::build(&self.repo, commit, signer)?;
        self.place(written, parent_tree)?;
        if self.held >= self.held_max {
            self.pack()?;
        }
        Ok(written)
    }

    /// [`Repo::files_at`], with the commits of this batch.
    ///
    /// # Errors
    /// The commit or an object of its tree cannot be read.
    pub fn files_at(
        &self,
        commit: ObjectId,
        dir: &str,
    ) -> Result<BTreeMap<String, ObjectId>, Error> {
        if !self.commits.contains(&commit) {
            return self.owner.files_at(commit, dir);
        }
        let tree = self
            .repo
            .find_commit(commit)
            .and_then(|c| c.tree_id())
            .map_err(|e| err(format!("cannot read commit {commit}"), e))?
            .detach();
        super::tree::files_under(&self.repo, None, tree, dir)
    }

    /// [`Repo::blob`], with the blobs of this batch.
    ///
    /// # Errors
    /// The object exists but cannot be read.
    pub fn blob(&self, id: ObjectId) -> Result<Option<Vec<u8>>, Error> {
        super::blob(&self.repo, id)
    }

    /// Stores every object of the batch: one file each when there are at
    /// most [`LOOSE_MAX`] (and none went into a pack yet), else in a
    /// pack. Afterwards a ref may name the commits.
    ///
    /// # Errors
    /// An object or the pack cannot be written.
    pub fn finish(mut self) -> Result<Stored, Error> {
        let held = self.repo.objects.num_objects_in_memory();
        if held == 0 {
            return Ok(self.stored);
        }
        if held > LOOSE_MAX || self.stored.packs > 0 {
            self.pack()?;
            return Ok(self.stored);
        }
        let memory = self.repo.objects.take_object_memory().unwrap_or_default();
        for (id, (kind, data)) in memory.iter() {
            self.repo
                .objects
                .write_buf_with_known_id(*kind, data, *id)
                .map_err(|e| err(format!("cannot write object {id}"), e))?;
        }
        self.stored.loose += memory.len();
        Ok(self.stored)
    }

    /// Places the objects `written` added after those held: each tree
    /// or file that replaced another at its path in `parent_tree` is a
    /// new version of it, a new file one of the file last placed under
    /// its name. Children come before their trees, the commit last.
    fn place(&mut self, written: Written, parent_tree: Option<ObjectId>) -> Result<(), Error> {
        let memory = self
            .repo
            .objects
            .take_object_memory()
            .expect("a batch writes to memory");
        let mut placing = Placing {
            memory: &memory,
            disk: &self.repo,
            order: &mut self.order,
            placed: &mut self.placed,
            named: &mut self.named,
            held: &mut self.held,
        };
        let placed = placing.tree(written.tree, parent_tree);
        placing.object(written.commit, None, true);
        self.repo.objects.set_object_memory(memory);
        self.commits.insert(written.commit);
        placed
    }

    /// Writes the objects held as one pack, and holds none. As git packs
    /// them, the newest version of a file or tree is stored whole and
    /// each older one as a delta of the version after it: what is read
    /// most, the tip, reads without applying deltas.
    fn pack(&mut self) -> Result<(), Error> {
        let memory = self.repo.objects.take_object_memory().unwrap_or_default();
        self.repo.objects.enable_object_memory();
        let order = std::mem::take(&mut self.order);
        // An object's base is its next version at the same path, else
        // the next file under its name.
        let mut newer: Vec<Option<usize>> = vec![None; order.len()];
        for same_path in [true, false] {
            for (at, placed) in order.iter().enumerate() {
                if let Some(b) = placed.before.filter(|_| placed.same_path == same_path) {
                    newer[b].get_or_insert(at);
                }
            }
        }
        // Newest first, so that every base comes before its deltas.
        let last = order.len().saturating_sub(1);
        let mut depth = vec![0u32; order.len()];
        let mut objects: Vec<pack::Object<'_>> = Vec::with_capacity(memory.len());
        for at in (0..order.len()).rev() {
            let base = newer[at]
                .map(|n| last - n)
                .filter(|b| depth[*b] < DEPTH_MAX);
            let here = objects.len();
            depth[here] = base.map_or(0, |b| depth[b] + 1);
            let id = order[at].id;
            let (kind, data) = memory.get(&id).expect("placed objects are held");
            objects.push(pack::Object {
                id,
                kind: *kind,
                data,
                base,
            });
        }
        // Objects no commit names (a file written twice in one commit):
        // stored all the same, in a fixed order.
        let mut unnamed: Vec<(&ObjectId, &(gix::objs::Kind, Vec<u8>))> = memory
            .iter()
            .filter(|(id, _)| !self.placed.contains_key(*id))
            .collect();
        unnamed.sort_unstable_by_key(|(id, _)| **id);
        objects.extend(unnamed.into_iter().map(|(id, (kind, data))| pack::Object {
            id: *id,
            kind: *kind,
            data,
            base: None,
        }));
        let dir = self.repo.common_dir().join("objects").join("pack");
        pack::write(&dir, &objects)?;
        self.stored.packed += objects.len();
        self.stored.packs += 1;
        self.placed.clear();
        self.named.clear();
        self.commits.clear();
        self.held = 0;
        Ok(())
    }
}

/// The objects of one commit being placed.
struct Placing<'a> {
    memory: &'a gix::odb::memory::Storage,
    /// Reads what is not in `memory`.
    disk: &'a gix::Repository,
    order: &'a mut Vec<Placed>,
    placed: &'a mut HashMap<ObjectId, usize>,
    named: &'a mut std::collections::HashMap<BString, ObjectId>,
    held: &'a mut usize,
}

impl<'a> Placing<'a> {
    /// Places the tree `id` held in memory (one that is not was stored
    /// before, and everything in it), a new version of `before`, and
    /// what it holds that is new.
    fn tree(&mut self, id: ObjectId, before: Option<ObjectId>) -> Result<(), Error> {
        if self.placed.contains_key(&id) {
            return Ok(());
        }
        let memory = self.memory;
        let Some((_, data)) = memory.get(&id) else {
            return Ok(());
        };
        let what = |e| err(format!("cannot read tree {id}"), e);
        let tree = gix::objs::TreeRef::from_bytes(data, gix::hash::Kind::Sha1).map_err(what)?;
        let old = match before.filter(|b| *b != id) {
            Some(b) => read(memory, self.disk, b)?,
            None => None,
        };
        let old = old
            .as_deref()
            .map(|bytes| gix::objs::TreeRef::from_bytes(bytes, gix::hash::Kind::Sha1))
            .transpose()
            .map_err(what)?;
        for entry in &tree.entries {
            let entry_id = entry.oid.to_owned();
            if self.placed.contains_key(&entry_id) || !self.memory.contains_key(&entry_id) {
                continue;
            }
            let is_tree = entry.mode.is_tree();
            let before = old
                .as_ref()
                .and_then(|t| t.bisect_entry(entry.filename, is_tree))
                .filter(|e| e.mode.is_blob_or_symlink() == entry.mode.is_blob_or_symlink())
                .map(|e| e.oid.to_owned());
            if is_tree {
                self.tree(entry_id, before)?;
            } else if entry.mode.is_blob_or_symlink() {
                // A new file: like the one last placed under its name.
                match before {
                    Some(_) => self.object(entry_id, before, true),
                    None => {
                        let named = self.named.get(entry.filename).copied();
                        self.object(entry_id, named, false);
                    }
                }
                self.named.insert(entry.filename.to_owned(), entry_id);
            }
        }
        self.object(id, before, true);
        Ok(())
    }

    /// Places `id`, when held and not placed yet, as a new version of
    /// `before` when that is placed (`same_path`: at the same path).
    fn object(&mut self, id: ObjectId, before: Option<ObjectId>, same_path: bool) {
        if self.placed.contains_key(&id) {
            return;
        }
        let Some((_, data)) = self.memory.get(&id) else {
            return;
        };
        let before = before.and_then(|b| self.placed.get(&b).copied());
        self.order.push(Placed {
            id,
            before,
            same_path,
        });
        self.placed.insert(id, self.order.len() - 1);
        *self.held += data.len();
    }
}

/// An object's bytes, from `memory` or the repository; `None` when it is
/// in neither.
fn read<'a>(
    memory: &'a gix::odb::memory::Storage,
    disk: &gix::Repository,
    id: ObjectId,
) -> Result<Option<std::borrow::Cow<'a, [u8]>>, Error> {
    if let Some((_, data)) = memory.get(&id) {
        return Ok(Some(data.as_slice().into()));
    }
    let found = disk
        .try_find_object(id)
        .map_err(|e| err(format!("cannot read object {id}"), e))?;
    Ok(found.map(|o| o.detach().data.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::write::Identity;
    use std::path::Path;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    fn bare() -> (tempfile::TempDir, Repo) {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "-q", "--bare", "r.git"]);
        let repo = Repo::open(&dir.path().join("r.git")).unwrap().unwrap();
        (dir, repo)
    }

    fn loose(repo: &Path) -> usize {
        walkdir::WalkDir::new(repo.join("objects"))
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .filter(|e| {
                e.path()
                    .parent()
                    .is_some_and(|p| p.file_name().is_some_and(|n| n.len() == 2))
            })
            .count()
    }

    /// `n` commits in one batch, each adding a plan's directory and its
    /// line in a list beside them; every commit reads the list back from
    /// the one before. Returns the last commit.
    fn plans(repo: &Repo, n: usize, held_max: usize) -> (ObjectId, Stored) {
        let who = Identity {
            name: "druppie".into(),
            email: "druppie@example.org".into(),
        };
        let mut batch = repo.batch();
        batch.held_max = held_max;
        let mut tip = None;
        for i in 0..n {
            let list = match tip {
                Some(t) => {
                    let files = batch.files_at(t, "").unwrap();
                    batch.blob(files["plans/list.yaml"]).unwrap().unwrap()
                }
                None => b"plans:\n".to_vec(),
            };
            let mut list = String::from_utf8(list).unwrap();
            list.push_str(&format!("  - plan-{i:03}\n"));
            let changes = [
                ("plans/list.yaml".to_owned(), Some(list.into_bytes())),
                // Under the list's name, in the plan's directory: never
                // the base the list's previous version is a delta of.
                (
                    format!("plans/plan-{i:03}/list.yaml"),
                    Some(format!("- plan-{i:03}\n").into_bytes()),
                ),
                (
                    format!("plans/plan-{i:03}/deployment.yaml"),
                    Some(
                        format!("kind: Deployment\nname: plan-{i:03}\nreplicas: 2\n").into_bytes(),
                    ),
                ),
            ];
            let written = batch
                .write_commit(
                    &NewCommit {
                        base: tip,
                        replace_tree: false,
                        changes: &changes,
                        message: format!("plan {i}\n"),
                        author: &who,
                        time: (0, 0),
                    },
                    None,
                )
                .unwrap();
            tip = Some(written.commit);
        }
        (tip.unwrap(), batch.finish().unwrap())
    }

    #[test]
    fn a_batch_writing_more_packs_than_an_open_repository_had_slots_for_reads_them_all() {
        let (dir, repo) = bare();
        // A pack every few commits: far more than the 32 index slots
        // gix gives a repository it opens by default.
        let (tip, stored) = plans(&repo, 300, 4 * 1024);
        assert!(stored.packs > 40, "{}", stored.packs);
        let listed = git(
            &dir.path().join("r.git"),
            &["ls-tree", "-r", "--name-only", &tip.to_string()],
        );
        assert_eq!(
            listed.lines().count(),
            601,
            "every plan's two files and the list"
        );
        git(
            &dir.path().join("r.git"),
            &["fsck", "--strict", "--no-progress"],
        );
    }

    #[test]
    fn a_large_batch_is_one_pack_with_each_version_a_delta_of_the_one_after() {
        let (dir, repo) = bare();
        let (tip, stored) = plans(&repo, 60, HELD_MAX);
        // Each commit, its list, two files, plan directory, `plans/` and
        // root.
        assert_eq!(
            stored,
            Stored {
                loose: 0,
                packed: 60 * 7,
                packs: 1
            }
        );
        let path = dir.path().join("r.git");
        assert_eq!(loose(&path), 0);
        git(&path, &["update-ref", "refs/heads/main", &tip.to_string()]);
        git(&path, &["fsck", "--strict", "--no-dangling"]);
        assert_eq!(git(&path, &["rev-list", "--count", "main"]), "60\n");
        let list = git(&path, &["show", "main:plans/list.yaml"]);
        assert!(list.ends_with("  - plan-058\n  - plan-059\n"), "{list}");
        // The list and the directory holding it grow by a line and an
        // entry a commit: stored as a chain of deltas.
        let pack = std::fs::read_dir(path.join("objects/pack"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "idx"))
            .unwrap();
        let verified = git(&path, &["verify-pack", "-v", pack.to_str().unwrap()]);
        let deltas = verified
            .lines()
            .filter(|l| l.split_whitespace().count() == 7)
            .count();
        assert!(deltas >= 2 * 59, "{verified}");
        // The tip's list is whole, the one before it a delta of it.
        let fields = |rev: &str| {
            let id = git(&path, &["rev-parse", rev]);
            let line = verified.lines().find(|l| l.starts_with(id.trim())).unwrap();
            line.split_whitespace().count()
        };
        assert_eq!(fields("main:plans/list.yaml"), 5);
        assert_eq!(fields("main~1:plans/list.yaml"), 7);
    }

    #[test]
    fn a_small_batch_is_written_one_file_an_object() {
        let (dir, repo) = bare();
        let (_, stored) = plans(&repo, 3, HELD_MAX);
        assert_eq!(
            stored,
            Stored {
                loose: 3 * 7,
                packed: 0,
                packs: 0
            }
        );
        let path = dir.path().join("r.git");
        assert_eq!(loose(&path), 21);
        assert!(
            std::fs::read_dir(path.join("objects/pack"))
                .unwrap()
                .next()
                .is_none()
        );
    }

    #[test]
    fn objects_past_the_memory_limit_go_into_a_pack_and_read_back_from_it() {
        let (dir, repo) = bare();
        // About ten commits' objects a pack.
        let (tip, stored) = plans(&repo, 60, 5_000);
        assert!(stored.packs >= 5, "{stored:?}");
        assert_eq!(stored.packed, 60 * 7);
        let path = dir.path().join("r.git");
        assert_eq!(loose(&path), 0);
        git(&path, &["update-ref", "refs/heads/main", &tip.to_string()]);
        git(&path, &["fsck", "--strict", "--no-dangling"]);
        let list = git(&path, &["show", "main:plans/list.yaml"]);
        assert_eq!(list.lines().count(), 61, "{list}");
    }
}
