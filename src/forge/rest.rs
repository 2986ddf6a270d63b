//! The Gitea/Forgejo (API v1) and GitHub (REST) forges. Both speak the
//! same paths for what a reconciler needs — repos, pull requests, issue
//! comments, commit statuses — and differ in a few places, which
//! [`Dialect`] names: how the token is sent, how a pull request is found
//! by its head branch, which status means "already exists", how a draft
//! is opened and how a branch is deleted. Pull requests are in
//! `pulls.rs`, teams in `teams.rs`.

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::http::{self, Api, RequestError};
use super::{Forge, ForgeError, Pulls};
use crate::secret::{Scrubber, Secret};

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
    token: Option<Secret>,
}

/// Pages read at most when looking for a pull request, a comment or
/// reviews.
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
    pub(super) fn split<'r>(&'r self, repo: &'r str) -> Result<(&'r str, &'r str), RequestError> {
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
    pub(super) fn repo_path(&self, repo: &str, rest: &[&str]) -> Result<String, RequestError> {
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
    pub(super) fn list<T: for<'de> Deserialize<'de>>(
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

    /// Whether a refusal says "this already exists".
    pub(super) fn exists_already(&self, f: &RequestError) -> bool {
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

pub(super) type Json = serde_json::Value;

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

    fn teams(&self) -> Option<&dyn super::Teams> {
        Some(self)
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
