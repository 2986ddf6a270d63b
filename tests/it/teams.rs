//! Contract tests for team membership: the requests that resolve an
//! approver team, checked by Prism against Gitea's own API description
//! and GitHub's official one, and what each answer means.

use std::sync::Arc;

use druppie::forge::{Dialect, Forge, Rest};
use druppie::secret::{Scrubber, Secret};
use serde_json::{Value, json};

use crate::prism::{self, Act, Proxy};

fn forge(dialect: Dialect, proxy: &Proxy) -> Rest {
    Rest::new(
        dialect,
        &proxy.url,
        "https://git.example.org",
        "platform",
        Some(Secret::new("s3cret")),
        Scrubber::new(),
    )
    .unwrap()
    .with_wait(|_| {})
}

fn is_member(forge: &Rest, team: &str, login: &str) -> bool {
    forge
        .teams()
        .expect("the forge has teams")
        .is_member(team, login)
        .expect("the forge answers")
}

/// Makes Gitea's team search find `name` with id 5 (or nothing).
fn found(name: Option<&'static str>) -> Act {
    Act::Patch(Arc::new(move |v: &mut Value| {
        v["data"] = match name {
            Some(n) => json!([{ "id": 5, "name": n }]),
            None => json!([]),
        };
    }))
}

#[test]
fn gitea_resolves_a_team_by_name_then_asks_for_the_member() {
    let proxy = Proxy::new(prism::gitea());
    let gitea = forge(Dialect::Gitea, &proxy);
    proxy.on(
        "GET /orgs/platform/teams/search",
        1,
        found(Some("Platform-Team")),
    );
    assert!(is_member(&gitea, "platform-team", "alice"));
    assert_eq!(
        proxy.lines(),
        [
            "GET /orgs/platform/teams/search",
            "GET /teams/5/members/alice"
        ]
    );
    assert_eq!(
        proxy.seen()[0].target,
        "/orgs/platform/teams/search?q=platform-team&include_desc=false"
    );
    // Not a member: Gitea's 404.
    proxy.on("GET /orgs/ops/teams/search", 1, found(Some("oncall")));
    proxy.on("GET /teams/5/members/mallory", 1, Act::Prefer(404));
    assert!(!is_member(&gitea, "ops/oncall", "mallory"));
    // A search that finds only a team of another name: no member request.
    proxy.on(
        "GET /orgs/platform/teams/search",
        1,
        found(Some("platform-team-2")),
    );
    assert!(!is_member(&gitea, "platform-team", "alice"));
    proxy.on("GET /orgs/platform/teams/search", 1, found(None));
    assert!(!is_member(&gitea, "platform-team", "alice"));
    assert_eq!(proxy.lines().len(), 6, "{:?}", proxy.lines());
    proxy.assert_no_violations();
}

#[test]
fn github_counts_an_active_team_membership_only() {
    let proxy = Proxy::new(prism::github());
    let github = forge(Dialect::GitHub, &proxy);
    let state = |s: &'static str| Act::Patch(Arc::new(move |v: &mut Value| v["state"] = json!(s)));
    let line = "GET /orgs/platform/teams/platform-team/memberships/alice";
    proxy.on(line, 1, state("active"));
    assert!(is_member(&github, "platform-team", "alice"));
    proxy.on(line, 1, state("pending"));
    assert!(!is_member(&github, "platform-team", "alice"));
    proxy.on(line, 1, Act::Prefer(404));
    assert!(!is_member(&github, "platform/platform-team", "alice"));
    assert_eq!(proxy.lines(), [line, line, line]);
    proxy.assert_no_violations();
}

#[test]
fn an_approver_entry_that_cannot_name_a_team_sends_no_request() {
    let proxy = Proxy::new(prism::github());
    let github = forge(Dialect::GitHub, &proxy);
    for entry in ["person@example.org", "../admin", "a/b/c", "team?x=1", ""] {
        assert!(!is_member(&github, entry, "alice"), "{entry}");
    }
    assert!(!is_member(&github, "platform-team", "../../user"));
    assert!(proxy.seen().is_empty(), "{:?}", proxy.lines());
}

/// Gitea (Prism) lists the prod proposal as merged by its user `string`.
fn merged_on_gitea(proxy: &Proxy) {
    let merged = Arc::new(|v: &mut Value| {
        let pr = &mut v[0];
        pr["head"]["ref"] = "druppie/prod/permits".into();
        pr["base"]["ref"] = "main".into();
        pr["state"] = "closed".into();
        pr["merged"] = true.into();
        pr["number"] = 7.into();
        pr["merge_commit_sha"] = "0123456789abcdef0123456789abcdef01234567".into();
    });
    proxy.on("GET /repos/platform/infra/pulls", 2, Act::Patch(merged));
}

#[test]
fn a_gitea_merge_by_a_member_of_an_approving_team_approves_and_by_others_is_a_violation() {
    for (member, verdict) in [
        (
            true,
            "approved: merged by string (approver: string, member of platform-team)",
        ),
        (
            false,
            "VIOLATION: merged by string: string is not an approver (platform-team), nor a member of an approving team",
        ),
    ] {
        let (s, proxy) = crate::apply::setup_gitea("platform-team");
        assert_eq!(s.apply().code, 0);
        merged_on_gitea(&proxy);
        proxy.on(
            "GET /orgs/platform/teams/search",
            1,
            found(Some("platform-team")),
        );
        if !member {
            proxy.on("GET /teams/5/members/string", 1, Act::Prefer(404));
        }
        let run = s.apply();
        assert_eq!(run.code, 0, "{}", run.transcript());
        assert!(
            run.stdout
                .contains(&format!("infra: druppie/prod/permits: {verdict}")),
            "{}",
            run.stdout
        );
        assert!(
            proxy
                .lines()
                .contains(&"GET /teams/5/members/string".to_owned()),
            "{:?}",
            proxy.lines()
        );
        proxy.assert_no_violations();
    }
}
