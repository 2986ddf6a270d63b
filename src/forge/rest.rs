//! The Gitea/Forgejo (API v1) and GitHub (REST) forges. Both speak the
//! same paths for what a reconciler needs — repos, pull requests, issue
//! comments — and differ in a few places, which [`Dialect`] names: how
//! the token is sent, how a pull request is found by its head branch,
//! which status means "already exists", and whether reviews can be read.

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::http::{Api, Failure};
use super::{Forge, ForgeError, Proposal, Pull, PullState, Pulls};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Gitea,
    GitHub,
}

/// A Gitea or GitHub forge: repos of `owner`, cloned from `git_base`.
pub struct Rest {
    pub(super) api: Api,
    pub(super) dialect: Dialect,
    pub(super) owner: String,
    /// Where git finds `<owner>/<repo>.git`.
    git_base: String,
    /// The token, for git's credential helper only.
    token: Option<String>,
}

/// Pages read at most when looking for a pull request or a comment.
const PAGES: usize = 20;
const PAGE_SIZE: usize = 50;

impl Rest {
    /// # Errors
    /// The HTTP client cannot be set up.
    pub fn new(
        dialect: Dialect,
        api_base: &str,
        git_base: &str,
        owner: &str,
        token: Option<String>,
    ) -> Result<Rest, String> {
        let auth = token.as_ref().map(|t| match dialect {
            Dialect::Gitea => format!("token {t}"),
            Dialect::GitHub => format!("Bearer {t}"),
        });
        Ok(Rest {
            api: Api::new(api_base, auth)?,
            dialect,
            owner: owner.to_owned(),
            git_base: git_base.trim_end_matches('/').to_owned(),
            token,
        })
    }

    /// Sleeps between retries with `wait` instead (tests).
    pub fn with_wait(mut self, wait: fn(std::time::Duration)) -> Rest {
        self.api.wait = wait;
        self
    }

    /// `owner/name` of `repo`: a bare name is in the forge's owner.
    fn full(&self, repo: &str) -> String {
        if repo.contains('/') {
            repo.to_owned()
        } else {
            format!("{}/{repo}", self.owner)
        }
    }

    fn post(&self, path: &str, body: &Json) -> Result<Json, Failure> {
        self.api.send(Method::POST, path, Some(body))
    }

    /// Every page of a list, up to [`PAGES`], until `stop` says enough.
    fn list<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        mut stop: impl FnMut(&T) -> bool,
    ) -> Result<Option<T>, Failure> {
        let size = match self.dialect {
            Dialect::Gitea => "limit",
            Dialect::GitHub => "per_page",
        };
        let sep = if path.contains('?') { '&' } else { '?' };
        for page in 1..=PAGES {
            let url = format!("{path}{sep}{size}={PAGE_SIZE}&page={page}");
            let items: Vec<T> = self.api.get(&url)?.unwrap_or_default();
            let last = items.len() < PAGE_SIZE;
            if let Some(found) = items.into_iter().find(|i| stop(i)) {
                return Ok(Some(found));
            }
            if last {
                break;
            }
        }
        Ok(None)
    }

    /// The newest pull request from `head` into `base` (any base when
    /// `None`), open ones only when `open`.
    fn find_pull(
        &self,
        repo: &str,
        head: &str,
        base: Option<&str>,
        open: bool,
    ) -> Result<Option<PullJson>, Failure> {
        let full = self.full(repo);
        let state = if open { "open" } else { "all" };
        let path = match self.dialect {
            Dialect::Gitea => format!("/repos/{full}/pulls?state={state}&sort=recentupdate"),
            Dialect::GitHub => {
                let owner = full.split('/').next().unwrap_or_default();
                format!(
                    "/repos/{full}/pulls?state={state}&head={}&sort=updated&direction=desc",
                    query(&format!("{owner}:{head}"))
                )
            }
        };
        let found = self.list::<PullJson>(&path, |p| {
            p.head.name == head && base.is_none_or(|b| p.base.name == b)
        })?;
        match found {
            // GitHub's list leaves out who merged; the pull itself has it.
            Some(p) if self.dialect == Dialect::GitHub && p.merged_at.is_some() => {
                self.api.get(&format!("/repos/{full}/pulls/{}", p.number))
            }
            other => Ok(other),
        }
    }

    /// Whether a refusal says "this already exists".
    fn exists_already(&self, f: &Failure) -> bool {
        let code = f.status.map(|s| s.as_u16());
        match self.dialect {
            Dialect::Gitea => code == Some(409),
            // GitHub says 422 for "already exists" and for invalid input
            // alike: the caller looks again before believing it.
            Dialect::GitHub => code == Some(422),
        }
    }
}

type Json = serde_json::Value;

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
    merged: Option<bool>,
    merged_at: Option<String>,
    merged_by: Option<UserJson>,
    merge_commit_sha: Option<String>,
}

impl From<PullJson> for Pull {
    fn from(p: PullJson) -> Pull {
        let state = if p.merged == Some(true) || p.merged_at.is_some() {
            PullState::Merged
        } else if p.state == "closed" {
            PullState::Closed
        } else {
            PullState::Open
        };
        Pull {
            number: p.number,
            url: p.html_url.unwrap_or_default(),
            state,
            head: p.head.name,
            head_commit: p.head.sha,
            merged_by: p.merged_by.map(|u| u.login),
            merge_commit: p.merge_commit_sha.filter(|_| state == PullState::Merged),
        }
    }
}

#[derive(Debug, Deserialize)]
struct CommentJson {
    id: i64,
    body: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ReviewJson {
    state: String,
    user: Option<UserJson>,
}

/// Percent-encodes a query value.
fn query(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Forge for Rest {
    fn url(&self, repo: &str) -> String {
        format!("{}/{}.git", self.git_base, self.full(repo))
    }

    fn git_env(&self) -> Vec<(String, String)> {
        let Some(token) = &self.token else {
            return Vec::new();
        };
        // git asks this helper for credentials; the token travels in the
        // environment of git alone, never in an argument or a URL.
        let helper = "!f() { test \"$1\" = get && printf 'username=druppie\\npassword=%s\\n' \"$DRUPPIE_GIT_TOKEN\"; }; f";
        [
            ("GIT_CONFIG_COUNT", "2"),
            ("GIT_CONFIG_KEY_0", "credential.helper"),
            ("GIT_CONFIG_VALUE_0", ""),
            ("GIT_CONFIG_KEY_1", "credential.helper"),
            ("GIT_CONFIG_VALUE_1", helper),
            ("DRUPPIE_GIT_TOKEN", token),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    fn exists(&self, repo: &str) -> Result<bool, ForgeError> {
        let path = format!("/repos/{}", self.full(repo));
        self.api
            .get::<Json>(&path)
            .map(|r| r.is_some())
            .map_err(|f| f.at(repo))
    }

    fn ensure_repo(&self, repo: &str, branch: &str) -> Result<bool, ForgeError> {
        if self.exists(repo)? {
            return Ok(false);
        }
        let full = self.full(repo);
        let (owner, name) = full.split_once('/').unwrap_or((&self.owner, repo));
        let body = match self.dialect {
            Dialect::Gitea => json!({
                "name": name, "private": true, "auto_init": false, "default_branch": branch,
            }),
            Dialect::GitHub => json!({ "name": name, "private": true, "auto_init": false }),
        };
        let created = match self.post(&format!("/orgs/{owner}/repos"), &body) {
            // The owner is a user, not an organisation.
            Err(Failure {
                status: Some(s), ..
            }) if s.as_u16() == 404 => self.post("/user/repos", &body),
            other => other,
        };
        match created {
            Ok(_) => Ok(true),
            // Made meanwhile by someone else: fine, once it is really there.
            Err(f) if self.exists_already(&f) && self.exists(repo)? => Ok(false),
            Err(f) => Err(f.at(repo)),
        }
    }

    fn pulls(&self) -> Option<&dyn Pulls> {
        Some(self)
    }

    fn teams(&self) -> Option<&dyn super::Teams> {
        Some(self)
    }
}

impl Pulls for Rest {
    fn propose(&self, repo: &str, p: &Proposal) -> Result<Pull, ForgeError> {
        let full = self.full(repo);
        let body = json!({ "title": p.title, "body": p.body });
        let update = |found: PullJson| -> Result<Pull, ForgeError> {
            if found.title.as_deref() == Some(p.title) && found.body.as_deref() == Some(p.body) {
                return Ok(found.into());
            }
            let path = format!("/repos/{full}/pulls/{}", found.number);
            let edited: PullJson = self
                .api
                .send(Method::PATCH, &path, Some(&body))
                .map_err(|f| f.at(repo))?;
            Ok(edited.into())
        };
        if let Some(found) = self
            .find_pull(repo, p.head, Some(p.base), true)
            .map_err(|f| f.at(repo))?
        {
            return update(found);
        }
        let create = json!({ "head": p.head, "base": p.base, "title": p.title, "body": p.body });
        match self.api.send::<_, PullJson>(
            Method::POST,
            &format!("/repos/{full}/pulls"),
            Some(&create),
        ) {
            Ok(created) => Ok(created.into()),
            // Opened in the meantime (or by a run that stopped before it
            // could say so): adopt it.
            Err(f) if self.exists_already(&f) => {
                match self
                    .find_pull(repo, p.head, Some(p.base), true)
                    .map_err(|e| e.at(repo))?
                {
                    Some(found) => update(found),
                    None => Err(f.at(repo)),
                }
            }
            Err(f) => Err(f.at(repo)),
        }
    }

    fn find(&self, repo: &str, head: &str) -> Result<Option<Pull>, ForgeError> {
        self.find_pull(repo, head, None, false)
            .map(|p| p.map(Pull::from))
            .map_err(|f| f.at(repo))
    }

    fn approvals(&self, repo: &str, number: i64) -> Result<Vec<String>, ForgeError> {
        if self.dialect == Dialect::Gitea {
            // Reviews are outside the Gitea API subset druppie speaks:
            // the merger alone counts there.
            return Ok(Vec::new());
        }
        let path = format!("/repos/{}/pulls/{number}/reviews", self.full(repo));
        let mut logins = Vec::new();
        self.list::<ReviewJson>(&path, |r| {
            if r.state == "APPROVED"
                && let Some(u) = &r.user
            {
                logins.push(u.login.clone());
            }
            false
        })
        .map_err(|f| f.at(repo))?;
        logins.sort();
        logins.dedup();
        Ok(logins)
    }

    fn comment(&self, repo: &str, number: i64, marker: &str, text: &str) -> Result<(), ForgeError> {
        let full = self.full(repo);
        let body = format!("{}\n\n{marker}\n", text.trim_end());
        let path = format!("/repos/{full}/issues/{number}/comments");
        let mine = self
            .list::<CommentJson>(&path, |c| {
                c.body.as_deref().is_some_and(|b| b.contains(marker))
            })
            .map_err(|f| f.at(repo))?;
        let payload = json!({ "body": body });
        let sent: Result<Json, Failure> = match mine {
            Some(c) if c.body.as_deref() == Some(body.as_str()) => return Ok(()),
            Some(c) => self.api.send(
                Method::PATCH,
                &format!("/repos/{full}/issues/comments/{}", c.id),
                Some(&payload),
            ),
            None => self.api.send(Method::POST, &path, Some(&payload)),
        };
        sent.map(|_| ()).map_err(|f| f.at(repo))
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
    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            super::query("platform:druppie/shop-prod"),
            "platform%3Adruppie%2Fshop-prod"
        );
    }
}
