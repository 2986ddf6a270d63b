//! After a verdict: a merge with conflict markers left in a file is no
//! approval; a closed proposal is kept so its change is not proposed
//! again; the branch is deleted.

use super::ApplyError;
use super::trail::{Trail, TrailError, Verdict};
use crate::git::write::{NewCommit, message};
use crate::git::{ObjectId, Repo};

impl Trail<'_> {
    /// The files the proposal carried conflicts in that still have
    /// conflict markers where it was merged.
    pub(super) fn marked(&self, v: &Verdict) -> Result<Vec<String>, TrailError> {
        let (true, Some(proposal)) = (v.merged, &v.proposal) else {
            return Ok(Vec::new());
        };
        let cached = Repo::open(&self.cache.path(&v.repo))
            .ok()
            .flatten()
            .ok_or_else(|| ApplyError::not_cached(&v.repo))?;
        // What the clone cannot read (a forge's merge not fetched yet, an
        // id the forge got wrong) says nothing.
        let id = |hex: &str| ObjectId::from_hex(hex.as_bytes()).ok();
        let (Some(proposal), Some(merge)) = (id(proposal), id(&v.commit)) else {
            return Ok(Vec::new());
        };
        let Ok((_, message)) = cached.author_and_message(proposal) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for line in message.lines() {
            let Some(rest) = line.strip_prefix("CONFLICT ") else {
                continue;
            };
            let path = rest.split_once(" (").map_or(rest, |(p, _)| p);
            if let Ok(Some(bytes)) = cached.file_at(merge, path)
                && crate::diff::has_markers(&bytes)
            {
                out.push(path.to_owned());
            }
        }
        Ok(out)
    }

    /// Deletes the branch of a proposal whose verdict is recorded, when
    /// it is still where the verdict saw it (a person's later push is
    /// kept); says so in a line.
    pub(super) fn retire(&self, v: &Verdict) -> Result<Option<String>, TrailError> {
        let Some(tip) = v.retire.as_deref() else {
            return Ok(None);
        };
        // An id the forge got wrong names nothing to delete.
        let Ok(tip) = ObjectId::from_hex(tip.as_bytes()) else {
            return Ok(None);
        };
        let cached = Repo::open(&self.cache.path(&v.repo))
            .ok()
            .flatten()
            .ok_or_else(|| ApplyError::not_cached(&v.repo))?;
        let url = self.forge.url(&v.repo);
        if !v.merged {
            self.keep_rejected(v, tip, &url)?;
        }
        let now = cached
            .branch_head(&v.branch)
            .map_err(ApplyError::git(&v.repo, "read the proposal branch"))?;
        if now.is_none_or(|h| h.commit != tip) {
            return Ok(None);
        }
        let deleted = match self.forge.pulls() {
            Some(pulls) => {
                let deleted = pulls.delete_branch(&v.repo, &v.branch)?;
                // The clone forgets it too, so this run proposes afresh.
                let path = self.cache.path(&v.repo);
                let full = format!("refs/heads/{}", v.branch);
                self.cache
                    .git(&v.repo, &path, &["update-ref", "-d", &full])
                    .map_err(ApplyError::from)?;
                deleted
            }
            None => {
                let pushed = self
                    .cache
                    .delete_branch(&v.repo, &url, &v.branch, &tip.to_string())
                    .map_err(ApplyError::from)?;
                pushed == super::Pushed::Done
            }
        };
        Ok(deleted.then(|| {
            format!(
                "{}: deleted {} ({})",
                v.repo,
                v.branch,
                if v.merged { "merged" } else { "closed" }
            )
        }))
    }

    /// Keeps a proposal closed without merging at
    /// [`crate::execution::rejected_ref`], on the forge and in the clone,
    /// so the same change is not proposed again: a commit druppie signs
    /// on top of the proposal, with the proposal's tree and a
    /// [`crate::execution::REJECTED_TRAILER`] naming its id. Anyone who
    /// can push a ref can put druppie's proposal itself there, so only
    /// this commit says that a person closed it.
    fn keep_rejected(&self, v: &Verdict, tip: ObjectId, url: &str) -> Result<(), TrailError> {
        let kept = crate::execution::rejected_ref(&v.branch);
        let path = self.cache.path(&v.repo);
        let cached = Repo::open(&path)
            .ok()
            .flatten()
            .ok_or_else(|| ApplyError::not_cached(&v.repo))?;
        let have = cached
            .refs_under(&kept)
            .map_err(ApplyError::git(&v.repo, "read the rejected proposals"))?
            .into_iter()
            .find(|(name, _)| *name == kept);
        let key = self.signer.own_key();
        let ours = |commit| {
            cached
                .signed_by(commit, &key)
                .map_err(|source| ApplyError::Verify {
                    repo: v.repo.clone(),
                    source,
                })
        };
        if let Some((_, have)) = have
            && cached
                .first_parent(have.commit)
                .map_err(ApplyError::git(&v.repo, "read a rejected proposal"))?
                == Some(tip)
            && ours(have.commit)?
        {
            return Ok(());
        }
        // Only a proposal druppie signed names a change: a person's
        // commit on top (a pull request they pushed to, then closed)
        // could name any id in its message.
        if !ours(tip)? {
            return Ok(());
        }
        let (_, proposal) = cached
            .author_and_message(tip)
            .map_err(ApplyError::git(&v.repo, "read the rejected proposal"))?;
        let Some(id) = crate::live::trailer(&proposal, crate::execution::PROPOSAL_TRAILER) else {
            return Ok(());
        };
        let written = cached
            .write_commit(
                &NewCommit {
                    base: Some(tip),
                    replace_tree: false,
                    changes: &[],
                    message: message(
                        &format!("druppie: {} closed without merging", v.branch),
                        "",
                        &[(crate::execution::REJECTED_TRAILER, &id)],
                    ),
                    author: self.identity,
                    time: super::now(),
                },
                Some(self.signer),
            )
            .map_err(ApplyError::git(&v.repo, "write the rejection"))?;
        let marker = written.commit.to_string();
        self.cache
            .push_ref(&v.repo, url, &marker, &kept, true)
            .map_err(ApplyError::from)?;
        self.cache
            .git(&v.repo, &path, &["update-ref", &kept, &marker])
            .map_err(ApplyError::from)?;
        Ok(())
    }
}
