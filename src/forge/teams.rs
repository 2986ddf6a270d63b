//! Team membership on Gitea/Forgejo and GitHub, for approvers that name a
//! team: Gitea finds the team by name in the organisation
//! (`GET /orgs/{org}/teams/search`) and asks for the member
//! (`GET /teams/{id}/members/{username}`); GitHub asks for the
//! membership by the team's slug
//! (`GET /orgs/{org}/teams/{team_slug}/memberships/{username}`), which
//! counts when its state is `active`.

use serde::Deserialize;

use super::http;
use super::rest::{Dialect, Rest};
use super::{ForgeError, Teams};

#[derive(Debug, Deserialize)]
struct TeamJson {
    id: i64,
    name: String,
}

#[derive(Debug, Deserialize)]
struct SearchJson {
    #[serde(default)]
    data: Vec<TeamJson>,
}

#[derive(Debug, Deserialize)]
struct MembershipJson {
    state: String,
}

/// Whether `s` can be an organisation, team or user name on either
/// forge; anything else (an email address, a path) names no team and
/// is never put into a URL.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

impl Rest {
    /// The organisation and team an approver entry names, if it can
    /// name one.
    fn team_of<'e>(&'e self, entry: &'e str) -> Option<(&'e str, &'e str)> {
        let (org, team) = entry.split_once('/').unwrap_or((&self.owner, entry));
        (is_name(org) && is_name(team)).then_some((org, team))
    }
}

impl Teams for Rest {
    fn is_member(&self, entry: &str, login: &str) -> Result<bool, ForgeError> {
        let Some((org, team)) = self.team_of(entry) else {
            return Ok(false);
        };
        if !is_name(login) {
            return Ok(false);
        }
        let at = |f: http::RequestError| f.at(&format!("team {org}/{team}"));
        match self.dialect {
            Dialect::Gitea => {
                let found: Option<SearchJson> = self
                    .api
                    .get(&http::with_query(
                        &http::path([
                            ("path", "orgs"),
                            ("organisation", org),
                            ("path", "teams"),
                            ("path", "search"),
                        ])
                        .map_err(at)?,
                        &[("q", team), ("include_desc", "false")],
                    ))
                    .map_err(at)?;
                let Some(id) = found
                    .into_iter()
                    .flat_map(|s| s.data)
                    .find(|t| t.name.eq_ignore_ascii_case(team))
                    .map(|t| t.id)
                else {
                    return Ok(false);
                };
                let member: Option<serde_json::Value> = self
                    .api
                    .get(
                        &http::path([
                            ("path", "teams"),
                            ("team id", &id.to_string()),
                            ("path", "members"),
                            ("login", login),
                        ])
                        .map_err(at)?,
                    )
                    .map_err(at)?;
                Ok(member.is_some())
            }
            Dialect::GitHub => {
                let membership: Option<MembershipJson> = self
                    .api
                    .get(
                        &http::path([
                            ("path", "orgs"),
                            ("organisation", org),
                            ("path", "teams"),
                            ("team", team),
                            ("path", "memberships"),
                            ("login", login),
                        ])
                        .map_err(at)?,
                    )
                    .map_err(at)?;
                Ok(membership.is_some_and(|m| m.state == "active"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_forge_names_reach_a_url() {
        assert!(super::is_name("platform-team"));
        assert!(super::is_name("ops_1.x"));
        for bad in [
            "",
            "a/b",
            "person@example.org",
            "..",
            ".hidden",
            "a b",
            "x?y=1",
            "%2e",
        ] {
            assert!(!super::is_name(bad), "{bad}");
        }
    }
}
