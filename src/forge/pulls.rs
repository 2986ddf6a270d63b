//! Pull requests on Gitea/Forgejo and GitHub: opening and updating a
//! proposal (a draft where it conflicts), closing it, its reviews, its
//! commit status and deleting its branch once it is done with.
//!
//! Where the two differ: GitHub opens a draft with `draft: true`, Gitea
//! with a `WIP: ` title prefix (its `WORK_IN_PROGRESS_PREFIXES`, which
//! it will not merge); Gitea deletes a branch at
//! `/repos/{owner}/{repo}/branches/{branch}` and answers 404 when it is
//! gone, GitHub deletes the ref at `/repos/{owner}/{repo}/git/refs/{ref}`
//! and answers 422. Either way a branch name with `/` in it is one
//! percent-encoded path segment (`heads%2Fdruppie%2Fmeters-prod` on
//! GitHub), as both descriptions have it and octokit sends it.

use std::collections::BTreeMap;

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::http::RequestError;
use super::rest::{Dialect, Json, Rest};
use super::{ForgeError, Proposal, Pull, PullState, Pulls, Status};

/// The title prefix that makes a Gitea/Forgejo pull request a draft.
const WIP: &str = "WIP: ";

/// The longest status description sent; GitHub shows 140 characters.
const DESCRIPTION: usize = 140;

/// Whether Gitea reads `title` as work in progress: its default
/// `WORK_IN_PROGRESS_PREFIXES` (`WIP:`, `[WIP]`), in any case.
fn is_wip(title: &str) -> bool {
    let upper = title.to_uppercase();
    upper.starts_with("WIP:") || upper.starts_with("[WIP]")
}

#[derive(Debug, Deserialize)]
struct RefJson {
    #[serde(rename = "ref")]
    name: String,
    sha: Option<String>,
}

#[derive(Debug, Deserialize)]
struct UserJson {
    login: String,
}

#[derive(Debug, Deserialize)]
struct PullJson {
    number: i64,
    html_url: Option<String>,
    state: String,
    title: Option<String>,
    body: Option<String>,
    head: RefJson,
    base: RefJson,
    draft: Option<bool>,
    merged: Option<bool>,
    merged_at: Option<String>,
    merged_by: Option<UserJson>,
    merge_commit_sha: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CommentJson {
    id: i64,
    body: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ReviewJson {
    id: Option<i64>,
    state: String,
    user: Option<UserJson>,
    commit_id: Option<String>,
    /// Gitea says so here; GitHub turns the state into `DISMISSED`.
    dismissed: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct CombinedJson {
    #[serde(default)]
    statuses: Vec<StatusJson>,
}

#[derive(Debug, Deserialize)]
struct StatusJson {
    context: Option<String>,
    /// GitHub's name for the state.
    state: Option<String>,
    /// Gitea's name for it.
    status: Option<String>,
    description: Option<String>,
}

impl Rest {
    /// The pull request as druppie reads it.
    fn pull(&self, p: PullJson) -> Pull {
        let state = if p.merged == Some(true) || p.merged_at.is_some() {
            PullState::Merged
        } else if p.state == "closed" {
            PullState::Closed
        } else {
            PullState::Open
        };
        let wip = self.dialect == Dialect::Gitea && p.title.as_deref().is_some_and(is_wip);
        Pull {
            number: p.number,
            url: p.html_url.unwrap_or_default(),
            state,
            head: p.head.name,
            head_commit: p.head.sha,
            merged_by: p.merged_by.map(|u| u.login),
            merge_commit: p.merge_commit_sha.filter(|_| state == PullState::Merged),
            draft: p.draft == Some(true) || wip,
        }
    }

    /// The newest pull request from `head` into `base` (any base when
    /// `None`), open ones only when `open`.
    fn find_pull(
        &self,
        repo: &str,
        head: &str,
        base: Option<&str>,
        open: bool,
    ) -> Result<Option<PullJson>, RequestError> {
        let (owner, _) = self.split(repo)?;
        let path = self.repo_path(repo, &["pulls"])?;
        let state = if open { "open" } else { "all" };
        let qualified = format!("{owner}:{head}");
        let params: &[(&str, &str)] = match self.dialect {
            Dialect::Gitea => &[("state", state), ("sort", "recentupdate")],
            Dialect::GitHub => &[
                ("state", state),
                ("head", &qualified),
                ("sort", "updated"),
                ("direction", "desc"),
            ],
        };
        let found = self.list::<PullJson>(&path, params, |p| {
            p.head.name == head && base.is_none_or(|b| p.base.name == b)
        })?;
        match found {
            // GitHub's list leaves out who merged; the pull itself has it.
            Some(p) if self.dialect == Dialect::GitHub && p.merged_at.is_some() => self
                .api
                .get(&self.repo_path(repo, &["pulls", &p.number.to_string()])?),
            other => Ok(other),
        }
    }

    /// The title a proposal is opened or kept with: Gitea marks a draft
    /// by its title.
    fn title(&self, p: &Proposal) -> String {
        let title = self.api.scrub(p.title);
        match self.dialect {
            Dialect::Gitea if p.draft && !is_wip(&title) => format!("{WIP}{title}"),
            _ => title,
        }
    }

    /// Opens the pull request; `draft` only where the forge says so in
    /// the request (GitHub).
    fn open(
        &self,
        repo: &str,
        p: &Proposal,
        title: &str,
        text: &str,
        draft: bool,
    ) -> Result<PullJson, RequestError> {
        let mut create = json!({ "head": p.head, "base": p.base, "title": title, "body": text });
        if self.dialect == Dialect::GitHub {
            create["draft"] = json!(draft);
        }
        let path = self.repo_path(repo, &["pulls"])?;
        self.api.send(Method::POST, &path, Some(&create))
    }

    /// Where `branch` is deleted, and the path that finds it.
    fn branch_paths(&self, repo: &str, branch: &str) -> Result<(String, String), RequestError> {
        match self.dialect {
            Dialect::Gitea => {
                let path = self.repo_path(repo, &["branches", branch])?;
                Ok((path.clone(), path))
            }
            Dialect::GitHub => {
                let name = format!("heads/{branch}");
                Ok((
                    self.repo_path(repo, &["git", "refs", &name])?,
                    self.repo_path(repo, &["git", "ref", &name])?,
                ))
            }
        }
    }
}

impl Pulls for Rest {
    fn propose(&self, repo: &str, p: &Proposal) -> Result<Pull, ForgeError> {
        let at = |f: RequestError| f.at(repo);
        // What is posted is scrubbed like everything else druppie says.
        let (title, text) = (self.title(p), self.api.scrub(p.body));
        let body = json!({ "title": title, "body": text });
        let update = |found: PullJson| -> Result<Pull, ForgeError> {
            if found.title.as_deref() == Some(title.as_str())
                && found.body.as_deref() == Some(text.as_str())
            {
                return Ok(self.pull(found));
            }
            let path = self
                .repo_path(repo, &["pulls", &found.number.to_string()])
                .map_err(at)?;
            let edited: PullJson = self
                .api
                .send(Method::PATCH, &path, Some(&body))
                .map_err(at)?;
            Ok(self.pull(edited))
        };
        if let Some(found) = self
            .find_pull(repo, p.head, Some(p.base), true)
            .map_err(at)?
        {
            return update(found);
        }
        match self.open(repo, p, &title, &text, p.draft) {
            Ok(created) => Ok(self.pull(created)),
            // Opened in the meantime (or by a run that stopped before it
            // could say so): adopt it.
            Err(f) if self.exists_already(&f) => {
                match self
                    .find_pull(repo, p.head, Some(p.base), true)
                    .map_err(at)?
                {
                    Some(found) => update(found),
                    // A GitHub repo without drafts (a private repo on
                    // some plans) refuses one with 422: open it for
                    // review, its title and failing status still say why
                    // it must not be merged.
                    None if self.dialect == Dialect::GitHub && p.draft => self
                        .open(repo, p, &title, &text, false)
                        .map(|created| self.pull(created))
                        .map_err(at),
                    None => Err(f.at(repo)),
                }
            }
            Err(f) => Err(f.at(repo)),
        }
    }

    fn close(&self, repo: &str, number: i64) -> Result<Pull, ForgeError> {
        let at = |f: RequestError| f.at(repo);
        let path = self
            .repo_path(repo, &["pulls", &number.to_string()])
            .map_err(at)?;
        let closed =
            self.api
                .send::<_, PullJson>(Method::PATCH, &path, Some(&json!({ "state": "closed" })));
        match closed {
            Ok(p) => Ok(self.pull(p)),
            // Merged already (Gitea 412, GitHub 422), or closed meanwhile:
            // it stays as it is.
            Err(f)
                if f.status()
                    .is_some_and(|s| matches!(s.as_u16(), 409 | 412 | 422)) =>
            {
                match self.api.get::<PullJson>(&path).map_err(at)? {
                    Some(p) if p.state == "closed" || p.merged == Some(true) => Ok(self.pull(p)),
                    _ => Err(f.at(repo)),
                }
            }
            Err(f) => Err(f.at(repo)),
        }
    }

    fn set_status(&self, repo: &str, commit: &str, status: &Status) -> Result<(), ForgeError> {
        let at = |f: RequestError| f.at(repo);
        let context = self.api.scrub(&status.context);
        let mut description = self.api.scrub(&status.description);
        if let Some((cut, _)) = description.char_indices().nth(DESCRIPTION - 1) {
            description.truncate(cut);
            description.push('…');
        }
        let state = status.state.as_str();
        // The latest status of each context; the same one is not posted
        // again (GitHub keeps at most 1000 per commit and context).
        let combined: Option<CombinedJson> = self
            .api
            .get(
                &self
                    .repo_path(repo, &["commits", commit, "status"])
                    .map_err(at)?,
            )
            .map_err(at)?;
        let same = combined.into_iter().flat_map(|c| c.statuses).any(|s| {
            s.context
                .as_deref()
                .is_some_and(|c| c.eq_ignore_ascii_case(&context))
                && s.state.as_deref().or(s.status.as_deref()) == Some(state)
                && s.description.as_deref() == Some(description.as_str())
        });
        if same {
            return Ok(());
        }
        let body = json!({ "context": context, "state": state, "description": description });
        let path = self.repo_path(repo, &["statuses", commit]).map_err(at)?;
        self.api
            .send::<_, Json>(Method::POST, &path, Some(&body))
            .map(|_| ())
            .map_err(at)
    }

    fn delete_branch(&self, repo: &str, branch: &str) -> Result<bool, ForgeError> {
        let at = |f: RequestError| f.at(repo);
        let (delete, get) = self.branch_paths(repo, branch).map_err(at)?;
        match self.api.send_only::<()>(Method::DELETE, &delete, None) {
            Ok(()) => Ok(true),
            Err(f) => match f.status().map(|s| s.as_u16()) {
                // Gitea: no such branch.
                Some(404) => Ok(false),
                // GitHub: "Reference does not exist", or another
                // validation failure: gone only if it is really gone.
                Some(422) if self.dialect == Dialect::GitHub => {
                    match self.api.get::<Json>(&get).map_err(at)? {
                        None => Ok(false),
                        Some(_) => Err(f.at(repo)),
                    }
                }
                _ => Err(f.at(repo)),
            },
        }
    }

    fn find(&self, repo: &str, head: &str) -> Result<Option<Pull>, ForgeError> {
        self.find_pull(repo, head, None, false)
            .map(|p| p.map(|p| self.pull(p)))
            .map_err(|f| f.at(repo))
    }

    fn approvals(&self, repo: &str, number: i64) -> Result<Vec<String>, ForgeError> {
        let at = |f: RequestError| f.at(repo);
        let number = number.to_string();
        let pull: Option<PullJson> = self
            .api
            .get(&self.repo_path(repo, &["pulls", &number]).map_err(at)?)
            .map_err(at)?;
        let Some(head) = pull.and_then(|p| p.head.sha) else {
            return Ok(Vec::new());
        };
        let path = self
            .repo_path(repo, &["pulls", &number, "reviews"])
            .map_err(at)?;
        let mut reviews = Vec::new();
        self.list::<ReviewJson>(&path, &[], |r| {
            if let Some(u) = &r.user {
                let approves = r.state == "APPROVED"
                    && r.dismissed != Some(true)
                    && r.commit_id.as_deref() == Some(head.as_str());
                reviews.push((r.id, u.login.clone(), r.state.clone(), approves));
            }
            false
        })
        .map_err(at)?;
        // Oldest first; each reviewer's latest verdict is theirs. A
        // comment or a pending review says nothing either way.
        reviews.sort_by_key(|r| r.0);
        let mut latest = BTreeMap::new();
        for (_, login, state, approves) in reviews {
            if matches!(
                state.as_str(),
                "APPROVED" | "CHANGES_REQUESTED" | "REQUEST_CHANGES" | "DISMISSED"
            ) {
                latest.insert(login, approves);
            }
        }
        Ok(latest
            .into_iter()
            .filter_map(|(login, approves)| approves.then_some(login))
            .collect())
    }

    fn comment(&self, repo: &str, number: i64, marker: &str, text: &str) -> Result<(), ForgeError> {
        let at = |f: RequestError| f.at(repo);
        let body = self
            .api
            .scrub(&format!("{}\n\n{marker}\n", text.trim_end()));
        let number = number.to_string();
        let path = self
            .repo_path(repo, &["issues", &number, "comments"])
            .map_err(at)?;
        let mine = self
            .list::<CommentJson>(&path, &[], |c| {
                c.body.as_deref().is_some_and(|b| b.contains(marker))
            })
            .map_err(at)?;
        let payload = json!({ "body": body });
        let sent: Result<Json, RequestError> = match mine {
            Some(c) if c.body.as_deref() == Some(body.as_str()) => return Ok(()),
            Some(c) => {
                let edit = self
                    .repo_path(repo, &["issues", "comments", &c.id.to_string()])
                    .map_err(at)?;
                self.api.send(Method::PATCH, &edit, Some(&payload))
            }
            None => self.api.send(Method::POST, &path, Some(&payload)),
        };
        sent.map(|_| ()).map_err(at)
    }

    fn body_limit(&self) -> usize {
        match self.dialect {
            // GitHub refuses bodies over 65,536 characters.
            Dialect::GitHub => 65_000,
            // Gitea stores bodies as TEXT; keep them readable.
            Dialect::Gitea => 60_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_wip;

    #[test]
    fn gitea_reads_its_work_in_progress_prefixes_as_draft() {
        for wip in ["WIP: CONFLICT x", "wip:x", "[WIP] x", "[wip]x"] {
            assert!(is_wip(wip), "{wip}");
        }
        for not in ["CONFLICT: WIP: x", "WIPE x", "druppie: meters in prod"] {
            assert!(!is_wip(not), "{not}");
        }
    }
}
