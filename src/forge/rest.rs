//! The Gitea/Forgejo (API v1) and GitHub (REST) forges. Both speak the
//! same paths for what a reconciler needs — repos, pull requests, issue
//! comments — and differ in a few places, which [`Dialect`] names: how
//! the token is sent, how a pull request is found by its head branch,
//! which status means "already exists", and whether reviews can be read.

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::http::{self, Api, RequestError};
use super::{Forge, ForgeError, Proposal, Pull, PullState, Pulls};
use crate::secret::{Scrubber, Secret};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Gitea,
    GitHub,
}

/// A Gitea or GitHub forge: repos of `owner`, cloned from `git_base`.
pub struct Rest {
    api: Api,
    dialect: Dialect,
    owner: String,
    /// Where git finds `<owner>/<repo>.git`.
    git_base: String,
    /// The token, for git's credential helper only.
    token: Option<Secret>,
}

/// Pages read at most when looking for a pull request or a comment.
const PAGES: usize = 20;
const PAGE_SIZE: usize = 50;

impl Rest {
    /// A forge whose API is at `api_base` and whose repos git finds at
    /// `git_base`. Every error message and every body posted is scrubbed
    /// with `scrubber`, to which the token is added.
    ///
    /// # Errors
    /// The HTTP client cannot be set up.
    pub fn new(
        dialect: Dialect,
        api_base: &str,
        git_base: &str,
        owner: &str,
        token: Option<Secret>,
        scrubber: Scrubber,
    ) -> Result<Rest, http::SetupError> {
        let scheme = match dialect {
            Dialect::Gitea => "token",
            Dialect::GitHub => "Bearer",
        };
        Ok(Rest {
            api: Api::new(api_base, token.as_ref().map(|t| (scheme, t)), scrubber)?,
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

    /// The owner and name of `repo`: a bare name is in the forge's owner,
    /// `owner/name` names another owner (the spec repo may live there).
    /// Anything else is refused, so no name can reach another endpoint.
    fn split<'r>(&'r self, repo: &'r str) -> Result<(&'r str, &'r str), RequestError> {
        match repo.split_once('/') {
            None => Ok((&self.owner, repo)),
            Some((owner, name)) if !name.contains('/') => Ok((owner, name)),
            Some(_) => Err(RequestError::Name {
                what: "repo",
                name: repo.to_owned(),
                reason: "a repo is `name` or `owner/name`",
            }),
        }
    }

    /// `/repos/<owner>/<name>` and `rest` after it, every part one
    /// percent-encoded segment.
    fn repo_path(&self, repo: &str, rest: &[&str]) -> Result<String, RequestError> {
        let (owner, name) = self.split(repo)?;
        http::path(
            [("path", "repos"), ("owner", owner), ("repo", name)]
                .into_iter()
                .chain(rest.iter().map(|s| ("path", *s))),
        )
    }

    fn post(&self, path: &str, body: &Json) -> Result<Json, RequestError> {
        self.api.send(Method::POST, path, Some(body))
    }

    /// Every page of a list, up to [`PAGES`], until `stop` says enough.
    fn list<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        params: &[(&str, &str)],
        mut stop: impl FnMut(&T) -> bool,
    ) -> Result<Option<T>, RequestError> {
        let size = match self.dialect {
            Dialect::Gitea => "limit",
            Dialect::GitHub => "per_page",
        };
        let page_size = PAGE_SIZE.to_string();
        for page in 1..=PAGES {
            let page = page.to_string();
            let mut all = params.to_vec();
            all.extend([(size, page_size.as_str()), ("page", page.as_str())]);
            let url = http::with_query(path, &all);
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

    /// Whether a refusal says "this already exists".
    fn exists_already(&self, f: &RequestError) -> bool {
        let code = f.status().map(|s| s.as_u16());
        match self.dialect {
            Dialect::Gitea => code == Some(409),
            // GitHub says 422 for "already exists" and for invalid input
            // alike: the caller looks again before believing it.
            Dialect::GitHub => code == Some(422),
        }
    }

    /// `scheme://host[:port]` of the git base when git reaches it over
    /// HTTP(S), the only transports that ask a credential helper.
    fn git_origin(&self) -> Option<String> {
        let (scheme, rest) = self.git_base.split_once("://")?;
        if !matches!(scheme, "http" | "https") {
            return None;
        }
        let authority = rest.split(['/', '?', '#']).next()?;
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        (!host.is_empty()).then(|| format!("{scheme}://{host}"))
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

impl Forge for Rest {
    fn url(&self, repo: &str) -> String {
        let (owner, name) = self.split(repo).unwrap_or((&self.owner, repo));
        if self.git_origin().is_some() {
            // Over HTTP a name stays one path segment, as in the API.
            let segment = |s: &str| match s {
                "." | ".." => s.replace('.', "%2E"),
                _ => http::encode(s),
            };
            format!("{}/{}/{}.git", self.git_base, segment(owner), segment(name))
        } else {
            format!("{}/{owner}/{name}.git", self.git_base)
        }
    }

    fn git_env(&self) -> Vec<(String, String)> {
        let (Some(token), Some(origin)) = (&self.token, self.git_origin()) else {
            return Vec::new();
        };
        // git asks this helper for credentials; the token travels in the
        // environment of git alone, never in an argument or a URL. The
        // empty helper first forgets every helper configured elsewhere;
        // the helper is then set for the forge's own protocol, host and
        // port only (gitcredentials(7)), so a redirect to another host
        // gets nothing.
        let helper = "!f() { test \"$1\" = get && printf 'username=druppie\\npassword=%s\\n' \"$DRUPPIE_GIT_TOKEN\"; }; f";
        [
            ("GIT_CONFIG_COUNT", "2".to_owned()),
            ("GIT_CONFIG_KEY_0", "credential.helper".to_owned()),
            ("GIT_CONFIG_VALUE_0", String::new()),
            ("GIT_CONFIG_KEY_1", format!("credential.{origin}.helper")),
            ("GIT_CONFIG_VALUE_1", helper.to_owned()),
            ("DRUPPIE_GIT_TOKEN", token.expose().to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    fn exists(&self, repo: &str) -> Result<bool, ForgeError> {
        self.repo_path(repo, &[])
            .and_then(|path| self.api.get::<Json>(&path))
            .map(|r| r.is_some())
            .map_err(|f| f.at(repo))
    }

    fn ensure_repo(&self, repo: &str, branch: &str) -> Result<bool, ForgeError> {
        if self.exists(repo)? {
            return Ok(false);
        }
        let (owner, name) = self.split(repo).map_err(|f| f.at(repo))?;
        let body = match self.dialect {
            Dialect::Gitea => json!({
                "name": name, "private": true, "auto_init": false, "default_branch": branch,
            }),
            Dialect::GitHub => json!({ "name": name, "private": true, "auto_init": false }),
        };
        let org = http::path([("path", "orgs"), ("owner", owner), ("path", "repos")])
            .map_err(|f| f.at(repo))?;
        let created = match self.post(&org, &body) {
            // The owner is a user, not an organisation.
            Err(f) if f.status().is_some_and(|s| s.as_u16() == 404) => {
                self.post("/user/repos", &body)
            }
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
}

impl Pulls for Rest {
    fn propose(&self, repo: &str, p: &Proposal) -> Result<Pull, ForgeError> {
        let at = |f: RequestError| f.at(repo);
        // What is posted is scrubbed like everything else druppie says.
        let (title, text) = (self.api.scrub(p.title), self.api.scrub(p.body));
        let body = json!({ "title": title, "body": text });
        let update = |found: PullJson| -> Result<Pull, ForgeError> {
            if found.title.as_deref() == Some(title.as_str())
                && found.body.as_deref() == Some(text.as_str())
            {
                return Ok(found.into());
            }
            let path = self
                .repo_path(repo, &["pulls", &found.number.to_string()])
                .map_err(at)?;
            let edited: PullJson = self
                .api
                .send(Method::PATCH, &path, Some(&body))
                .map_err(at)?;
            Ok(edited.into())
        };
        if let Some(found) = self
            .find_pull(repo, p.head, Some(p.base), true)
            .map_err(at)?
        {
            return update(found);
        }
        let create = json!({ "head": p.head, "base": p.base, "title": title, "body": text });
        let path = self.repo_path(repo, &["pulls"]).map_err(at)?;
        match self
            .api
            .send::<_, PullJson>(Method::POST, &path, Some(&create))
        {
            Ok(created) => Ok(created.into()),
            // Opened in the meantime (or by a run that stopped before it
            // could say so): adopt it.
            Err(f) if self.exists_already(&f) => {
                match self
                    .find_pull(repo, p.head, Some(p.base), true)
                    .map_err(at)?
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
        let path = self
            .repo_path(repo, &["pulls", &number.to_string(), "reviews"])
            .map_err(|f| f.at(repo))?;
        let mut logins = Vec::new();
        self.list::<ReviewJson>(&path, &[], |r| {
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
    use super::*;

    fn rest(git_base: &str) -> Rest {
        Rest::new(
            Dialect::Gitea,
            "http://127.0.0.1:1/api/v1",
            git_base,
            "platform",
            Some(Secret::new("t0ken-value")),
            Scrubber::new(),
        )
        .unwrap()
    }

    #[test]
    fn a_repo_is_a_name_or_owner_and_name_and_nothing_more() {
        let r = rest("https://git.example.org");
        assert_eq!(r.repo_path("infra", &[]).unwrap(), "/repos/platform/infra");
        assert_eq!(
            r.repo_path("org/spec", &["pulls"]).unwrap(),
            "/repos/org/spec/pulls"
        );
        assert_eq!(
            r.repo_path("a?b#c", &["pulls", "7"]).unwrap(),
            "/repos/platform/a%3Fb%23c/pulls/7"
        );
        for bad in ["../../admin/users/x", "../x", "a/b/c", "/x", "x/", ".."] {
            let e = r.repo_path(bad, &[]).unwrap_err();
            assert!(!e.is_transient(), "{bad}: {e}");
        }
    }

    #[test]
    fn an_http_git_url_keeps_each_name_in_its_segment() {
        let r = rest("https://git.example.org/");
        assert_eq!(r.url("infra"), "https://git.example.org/platform/infra.git");
        assert_eq!(
            r.url("a?b#c"),
            "https://git.example.org/platform/a%3Fb%23c.git"
        );
        assert_eq!(r.url(".."), "https://git.example.org/platform/%2E%2E.git");
        // A directory (tests, mirrors) is a path, not a URL.
        assert_eq!(rest("/srv/git").url("infra"), "/srv/git/platform/infra.git");
    }

    #[test]
    fn git_gets_a_credential_helper_for_the_forge_origin_only() {
        let env = rest("https://bot@git.example.org:8443/prefix").git_env();
        assert!(
            env.contains(&(
                "GIT_CONFIG_KEY_1".to_owned(),
                "credential.https://git.example.org:8443.helper".to_owned()
            )),
            "{env:?}"
        );
        // ssh and directories ask no helper: the token is not handed out.
        assert!(rest("ssh://git@git.example.org").git_env().is_empty());
        assert!(rest("/srv/git").git_env().is_empty());
    }
}
