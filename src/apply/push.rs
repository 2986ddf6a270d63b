//! How the forge took a push: git's machine-readable report (`git push
//! --porcelain`) read for the one ref pushed, and what the forge's side
//! printed; the cache's pushes.

use std::path::Path;

use super::{Cache, CacheError};

/// How a push ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    Done,
    /// The ref moved on the forge since it was fetched, or another push
    /// to it was under way in the forge's repo (a lock race): fetch and
    /// start over. `said` is what the forge's side printed.
    Rejected {
        said: Vec<String>,
    },
}

/// How the forge took one ref of a push.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum PushStatus {
    Done,
    /// Not a fast-forward, or lost a race for the ref's lock on the
    /// forge: it moved, or is moving.
    Moved,
    Refused(String),
}

/// receive-pack's reasons for a ref it could not update because another
/// update of it was under way: the ref's lock was taken, or the ref was
/// no longer at the value the pusher saw.
const LOCK_RACE: [&str; 3] = ["failed to update ref", "failed to lock", "cannot lock ref"];

/// The status of `target` in `git push --porcelain` output: lines
/// `<flag>\t<from>:<to>\t<summary> (<reason>)`, flag `!` for a rejected
/// ref.
pub(super) fn push_status(stdout: &str, target: &str) -> Option<PushStatus> {
    stdout.lines().find_map(|line| {
        let mut fields = line.split('\t');
        let flag = fields.next()?;
        let (_, to) = fields.next()?.split_once(':')?;
        if to != target {
            return None;
        }
        let summary = fields.next().unwrap_or("");
        if flag != "!" {
            return Some(PushStatus::Done);
        }
        let reason = summary
            .split_once('(')
            .map_or("", |(_, r)| r.trim_end_matches(')'));
        let moved = summary.starts_with("[rejected]")
            || (summary.starts_with("[remote rejected]")
                && LOCK_RACE.iter().any(|r| reason.starts_with(r)));
        Some(if moved {
            PushStatus::Moved
        } else {
            PushStatus::Refused(summary.to_owned())
        })
    })
}

/// The lines the forge's side printed (`remote: …` in git's stderr).
pub(super) fn remote_said(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("remote: "))
        .map(|l| l.trim_end().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The lock file a forge's receive-pack could not create because it
/// exists (`Unable to create '<path>.lock': File exists.`), if the forge
/// said so: left by a push that was killed, unless one is running.
pub fn held_lock(said: &[String]) -> Option<&str> {
    said.iter().find_map(|line| {
        let (_, rest) = line.split_once("Unable to create '")?;
        let (path, rest) = rest.split_once('\'')?;
        (path.ends_with(".lock") && rest.starts_with(": File exists")).then_some(path)
    })
}

impl Cache {
    /// Pushes `commit` to `branch` of `url` as a fast-forward. `packed`:
    /// the commits' objects are in packs druppie wrote, each file or tree
    /// already a delta of its previous version where that is worth it;
    /// git then sends them as they are rather than searching thousands of
    /// objects for more deltas (`pack.window=0`), which costs more time
    /// than the bytes it would save (bench/scale.py).
    ///
    /// # Errors
    /// git fails for another reason than a moved branch.
    pub fn push(
        &self,
        repo: &str,
        url: &str,
        commit: &str,
        branch: &str,
        packed: bool,
    ) -> Result<Pushed, CacheError> {
        let target = format!("refs/heads/{branch}");
        let config: &[&str] = if packed {
            &["-c", "pack.window=0"]
        } else {
            &[]
        };
        self.push_with(
            repo,
            url,
            &format!("{commit}:{target}"),
            &target,
            config,
            &[],
        )
    }

    /// Pushes `commit` to `branch` of `url` (a branch druppie owns,
    /// `druppie/…`) over what it holds, only while it holds `expected`
    /// (`None`: while it does not exist): a commit a person pushed to it
    /// since it was fetched is never overwritten; the push is
    /// [`Pushed::Rejected`] instead.
    ///
    /// # Errors
    /// git fails for another reason than a moved branch.
    pub fn replace(
        &self,
        repo: &str,
        url: &str,
        commit: &str,
        branch: &str,
        expected: Option<&str>,
    ) -> Result<Pushed, CacheError> {
        let target = format!("refs/heads/{branch}");
        let lease = format!("--force-with-lease={target}:{}", expected.unwrap_or(""));
        self.push_with(
            repo,
            url,
            &format!("{commit}:{target}"),
            &target,
            &[],
            &[&lease],
        )
    }

    /// Deletes `branch` on the forge if it is still at `expected`, and in
    /// the cache's clone.
    ///
    /// # Errors
    /// The push failed in transport, or the forge refused it.
    pub fn delete_branch(
        &self,
        repo: &str,
        url: &str,
        branch: &str,
        expected: &str,
    ) -> Result<Pushed, CacheError> {
        let target = format!("refs/heads/{branch}");
        let lease = format!("--force-with-lease={target}:{expected}");
        let pushed = self.push_with(repo, url, &format!(":{target}"), &target, &[], &[&lease])?;
        if pushed == Pushed::Done {
            self.git(repo, &self.path(repo), &["update-ref", "-d", &target])?;
        }
        Ok(pushed)
    }

    /// Pushes `source` (a commit or a ref) to the ref `target` of `url`.
    /// git's machine-readable report (`--porcelain`) says how the ref
    /// fared: rejected because it moved, or because the forge's repo was
    /// updating it at the same moment (receive-pack's lock race, "failed
    /// to update ref"), is [`Pushed::Rejected`]; refused for any other
    /// reason is an error.
    ///
    /// # Errors
    /// The push failed in transport, or the forge refused it.
    pub fn push_ref(
        &self,
        repo: &str,
        url: &str,
        source: &str,
        target: &str,
        force: bool,
    ) -> Result<Pushed, CacheError> {
        let refspec = format!("{}{source}:{target}", if force { "+" } else { "" });
        self.push_with(repo, url, &refspec, target, &[], &[])
    }

    /// Pushes the ref `target` of the clone at `dir` (a work clone, such
    /// as the spec's, not the cache's bare clone of `repo`) to the same
    /// ref of its remote `remote`, as a fast-forward; how it fared as
    /// [`Cache::push_ref`] tells. Its objects are sent as stored, with
    /// no search for deltas (`pack.window=0`): what druppie writes there
    /// (the audit trail, a pack for a long run of events) is stored as
    /// [`Cache::push`] sends a packed run.
    ///
    /// # Errors
    /// The push failed in transport, or the forge refused it.
    pub fn push_from(
        &self,
        repo: &str,
        dir: &Path,
        remote: &str,
        target: &str,
    ) -> Result<Pushed, CacheError> {
        let refspec = format!("{target}:{target}");
        let config = ["-c", "pack.window=0"];
        self.push_in(repo, dir, (remote, &refspec, target), &config, &[])
    }

    /// `git <config> push --porcelain <options> <url> <refspec>` from the
    /// cache's clone of `repo`, read for `target`.
    fn push_with(
        &self,
        repo: &str,
        url: &str,
        refspec: &str,
        target: &str,
        config: &[&str],
        options: &[&str],
    ) -> Result<Pushed, CacheError> {
        self.push_in(
            repo,
            &self.path(repo),
            (url, refspec, target),
            config,
            options,
        )
    }

    /// [`Cache::push_with`] from the clone at `dir`.
    fn push_in(
        &self,
        repo: &str,
        dir: &Path,
        (url, refspec, target): (&str, &str, &str),
        config: &[&str],
        options: &[&str],
    ) -> Result<Pushed, CacheError> {
        let mut args = config.to_vec();
        args.extend(["push", "--porcelain"]);
        args.extend_from_slice(options);
        args.extend([url, refspec]);
        let (ok, stdout, said) = self.run(repo, dir, &args)?;
        match push_status(&stdout, target) {
            Some(PushStatus::Done) | None if ok => Ok(Pushed::Done),
            Some(PushStatus::Moved) => Ok(Pushed::Rejected {
                said: remote_said(&said),
            }),
            Some(PushStatus::Refused(reason)) => Err(CacheError::Refused {
                repo: repo.to_owned(),
                target: target.to_owned(),
                reason,
                said: remote_said(&said),
            }),
            _ => Err(CacheError::Git {
                repo: repo.to_owned(),
                command: "push".to_owned(),
                said,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_lock_race_on_the_forge_is_a_moved_ref_and_a_hook_is_a_refusal() {
        let main = "refs/heads/main";
        let line = |s: &str| format!("To /srv/git/infra.git\n{s}\nDone\n");
        for (out, want) in [
            ("=\tabc:refs/heads/main\t[up to date]", PushStatus::Done),
            (" \tabc:refs/heads/main\t1234567..89abcde", PushStatus::Done),
            (
                "!\tabc:refs/heads/main\t[rejected] (fetch first)",
                PushStatus::Moved,
            ),
            (
                "!\tabc:refs/heads/main\t[rejected] (non-fast-forward)",
                PushStatus::Moved,
            ),
            (
                "!\tabc:refs/heads/main\t[remote rejected] (failed to update ref)",
                PushStatus::Moved,
            ),
            (
                "!\tabc:refs/heads/main\t[remote rejected] (pre-receive hook declined)",
                PushStatus::Refused("[remote rejected] (pre-receive hook declined)".to_owned()),
            ),
        ] {
            assert_eq!(push_status(&line(out), main), Some(want), "{out}");
        }
        assert_eq!(
            push_status(&line("!\tabc:refs/heads/other\t[rejected]"), main),
            None
        );
    }

    #[test]
    fn a_lock_file_the_forge_cannot_create_is_named() {
        // git 2.47's receive-pack, on a ref lock left by a killed push.
        let stderr = "remote: error: cannot lock ref 'refs/heads/main': Unable to create '/srv/git/infra.git/./refs/heads/main.lock': File exists.        \nremote: \nremote: Another git process seems to be running in this repository, e.g.        \nerror: failed to push some refs to '/srv/git/infra.git'\n";
        let said = remote_said(stderr);
        assert_eq!(said.len(), 2);
        assert_eq!(
            held_lock(&said),
            Some("/srv/git/infra.git/./refs/heads/main.lock")
        );
        assert_eq!(held_lock(&remote_said("remote: hook declined\n")), None);
    }
}
