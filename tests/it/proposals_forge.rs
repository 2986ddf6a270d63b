//! Contract tests for a proposal's life on Gitea/Forgejo and GitHub: a
//! conflict opened as a draft, the `druppie/conflicts` commit status,
//! closing, deleting the branch, and reading who merged and who
//! approved. Every request is checked by Prism against Gitea's own API
//! description and GitHub's official one.

use std::sync::Arc;

use druppie::forge::{CONFLICTS, Forge, Proposal, PullState, Rest, Status, StatusState};
use serde_json::{Value, json};

use crate::forge::{TOKEN, gitea, github};
use crate::prism::Act;

const BRANCH: &str = "druppie/meters-prod";
const HEAD: &str = "0123456789abcdef0123456789abcdef01234567";

const CONFLICT: Proposal = Proposal {
    head: BRANCH,
    base: "main",
    title: "druppie: meters in prod (CONFLICT)",
    body: "Two files conflict with a person's edit; resolve them, then mark it ready.",
    draft: true,
};

/// Makes Prism's pull request (or the first of a list) the proposal,
/// in `state`, titled `title`, a draft or not.
fn pull(state: &'static str, title: &'static str, draft: bool) -> Act {
    Act::Patch(Arc::new(move |v: &mut Value| {
        let pr = if v.is_array() { &mut v[0] } else { v };
        pr["number"] = json!(7);
        pr["head"]["ref"] = json!(BRANCH);
        pr["head"]["sha"] = json!(HEAD);
        pr["base"]["ref"] = json!("main");
        pr["state"] = json!(state);
        pr["title"] = json!(title);
        pr["body"] = json!(CONFLICT.body);
        pr["draft"] = json!(draft);
        if pr.get("merged").is_some() {
            pr["merged"] = json!(false);
        }
        pr["merged_at"] = Value::Null;
    }))
}

/// An empty list.
fn none() -> Act {
    Act::Patch(Arc::new(|v: &mut Value| *v = json!([])))
}

fn pulls(forge: &Rest) -> &dyn druppie::forge::Pulls {
    forge.pulls().expect("the forge has pull requests")
}

#[test]
fn a_conflict_opens_as_a_draft_pull_request_on_github() {
    let (proxy, forge) = github();
    proxy.on("GET /repos/platform/infra/pulls", 1, none());
    proxy.on(
        "POST /repos/platform/infra/pulls",
        1,
        pull("open", CONFLICT.title, true),
    );
    let opened = pulls(&forge).propose("infra", &CONFLICT).unwrap();
    proxy.assert_no_violations();
    assert_eq!(
        proxy.seen()[1].json(),
        json!({"head": BRANCH, "base": "main", "title": CONFLICT.title, "body": CONFLICT.body, "draft": true})
    );
    assert!(opened.draft);
    // Without a conflict, the same request says so.
    let (proxy, forge) = github();
    proxy.on("GET /repos/platform/infra/pulls", 1, none());
    pulls(&forge)
        .propose(
            "infra",
            &Proposal {
                draft: false,
                ..CONFLICT
            },
        )
        .unwrap();
    proxy.assert_no_violations();
    assert_eq!(proxy.seen()[1].json()["draft"], json!(false));
}

#[test]
fn a_conflict_opens_with_giteas_work_in_progress_title() {
    let (proxy, forge) = gitea();
    proxy.on("GET /repos/platform/infra/pulls", 1, none());
    proxy.on(
        "POST /repos/platform/infra/pulls",
        1,
        pull("open", "WIP: druppie: meters in prod (CONFLICT)", false),
    );
    let opened = pulls(&forge).propose("infra", &CONFLICT).unwrap();
    proxy.assert_no_violations();
    assert_eq!(
        proxy.seen()[1].json(),
        json!({"head": BRANCH, "base": "main", "title": format!("WIP: {}", CONFLICT.title), "body": CONFLICT.body})
    );
    assert!(opened.draft, "Gitea reads the WIP: title as a draft");
}

#[test]
fn a_resolved_conflict_drops_the_work_in_progress_title_on_gitea() {
    let (proxy, forge) = gitea();
    proxy.on(
        "GET /repos/platform/infra/pulls",
        1,
        pull("open", "WIP: druppie: meters in prod (CONFLICT)", false),
    );
    proxy.on(
        "PATCH /repos/platform/infra/pulls/7",
        1,
        pull("open", "druppie: meters in prod", false),
    );
    let resolved = Proposal {
        title: "druppie: meters in prod",
        draft: false,
        ..CONFLICT
    };
    let ready = pulls(&forge).propose("infra", &resolved).unwrap();
    proxy.assert_no_violations();
    assert_eq!(
        proxy.lines(),
        [
            "GET /repos/platform/infra/pulls",
            "PATCH /repos/platform/infra/pulls/7"
        ]
    );
    assert_eq!(
        proxy.seen()[1].json(),
        json!({"title": "druppie: meters in prod", "body": CONFLICT.body})
    );
    assert!(!ready.draft);
    // Proposed again as a conflict: the prefix comes back.
    proxy.on(
        "GET /repos/platform/infra/pulls",
        1,
        pull("open", "druppie: meters in prod", false),
    );
    pulls(&forge)
        .propose(
            "infra",
            &Proposal {
                title: "druppie: meters in prod",
                ..CONFLICT
            },
        )
        .unwrap();
    assert_eq!(
        proxy.seen()[3].json()["title"],
        json!("WIP: druppie: meters in prod")
    );
    proxy.assert_no_violations();
}

#[test]
fn github_keeps_an_open_pull_requests_draft_state_and_retitles_it() {
    // GitHub's REST API cannot turn an open pull request into a draft or
    // back: the title changes, the state stays, and the caller is told.
    let (proxy, forge) = github();
    proxy.on(
        "GET /repos/platform/infra/pulls",
        1,
        pull("open", "druppie: meters in prod", false),
    );
    proxy.on(
        "PATCH /repos/platform/infra/pulls/7",
        1,
        pull("open", CONFLICT.title, false),
    );
    let kept = pulls(&forge).propose("infra", &CONFLICT).unwrap();
    proxy.assert_no_violations();
    assert_eq!(
        proxy.lines(),
        [
            "GET /repos/platform/infra/pulls",
            "PATCH /repos/platform/infra/pulls/7"
        ]
    );
    assert_eq!(
        proxy.seen()[1].json(),
        json!({"title": CONFLICT.title, "body": CONFLICT.body})
    );
    assert!(!kept.draft, "the pull request says what it is");
    assert_eq!(kept.number, 7, "no second pull request");
}

#[test]
fn github_opens_a_conflict_for_review_where_the_repo_has_no_drafts() {
    let (proxy, forge) = github();
    let list = "GET /repos/platform/infra/pulls";
    let create = "POST /repos/platform/infra/pulls";
    proxy.on(list, 2, none());
    proxy.on(
        create,
        1,
        Act::Reply(
            422,
            vec![],
            r#"{"message":"Validation Failed","errors":[{"message":"Draft pull requests are not supported in this repository."}]}"#,
        ),
    );
    pulls(&forge).propose("infra", &CONFLICT).unwrap();
    assert_eq!(proxy.lines(), [list, create, list, create]);
    let seen = proxy.seen();
    assert_eq!(seen[3].json()["draft"], json!(false));
    assert_eq!(seen[3].json()["title"], json!(CONFLICT.title));
    proxy.assert_no_violations();
}

/// Makes the combined status list `statuses`, each `(context, state,
/// description)`; Gitea names the state `status`, GitHub `state`.
fn statuses(gitea: bool, statuses: &'static [(&str, &str, &str)]) -> Act {
    Act::Patch(Arc::new(move |v: &mut Value| {
        let sample = v["statuses"][0].clone();
        v["statuses"] = statuses
            .iter()
            .map(|(context, state, description)| {
                let mut s = sample.clone();
                s["context"] = json!(context);
                s[if gitea { "status" } else { "state" }] = json!(state);
                s["description"] = json!(description);
                s
            })
            .collect();
    }))
}

#[test]
fn a_conflict_sets_a_failing_status_on_the_proposal_commit_once() {
    for (gitea_forge, (proxy, forge)) in [(true, gitea()), (false, github())] {
        let combined = format!("GET /repos/platform/infra/commits/{HEAD}/status");
        let post = format!("POST /repos/platform/infra/statuses/{HEAD}");
        let other = &[("ci/build", "failure", "2 files have conflict markers")];
        proxy.on(&combined, 1, statuses(gitea_forge, other));
        let status = Status::conflicts(2);
        assert_eq!(status.context, CONFLICTS);
        assert_eq!(status.state, StatusState::Failure);
        pulls(&forge).set_status("infra", HEAD, &status).unwrap();
        assert_eq!(proxy.lines(), [combined.clone(), post.clone()]);
        assert_eq!(
            proxy.seen()[1].json(),
            json!({"context": "druppie/conflicts", "state": "failure", "description": "2 files have conflict markers"})
        );
        // The forge has it now: the same status is not posted again.
        let ours = &[(
            "druppie/conflicts",
            "failure",
            "2 files have conflict markers",
        )];
        proxy.on(&combined, 1, statuses(gitea_forge, ours));
        pulls(&forge).set_status("infra", HEAD, &status).unwrap();
        assert_eq!(proxy.lines().len(), 3, "{:?}", proxy.lines());
        // Resolved: success replaces the failure.
        proxy.on(&combined, 1, statuses(gitea_forge, ours));
        pulls(&forge)
            .set_status("infra", HEAD, &Status::conflicts(0))
            .unwrap();
        assert_eq!(proxy.lines()[4], post);
        assert_eq!(proxy.seen()[4].json()["state"], json!("success"));
        proxy.assert_no_violations();
    }
}

#[test]
fn a_status_description_is_scrubbed_and_kept_short() {
    let (proxy, forge) = github();
    let combined = format!("GET /repos/platform/infra/commits/{HEAD}/status");
    proxy.on(&combined, 1, statuses(false, &[]));
    let status = Status {
        context: CONFLICTS.to_owned(),
        state: StatusState::Failure,
        description: format!("{TOKEN} {}", "x".repeat(300)),
    };
    pulls(&forge).set_status("infra", HEAD, &status).unwrap();
    proxy.assert_no_violations();
    let said = proxy.seen()[1].json()["description"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(said.starts_with("*** xxx"), "{said}");
    assert_eq!(said.chars().count(), 140, "{said}");
}

#[test]
fn a_branch_with_a_slash_is_deleted_as_one_path_segment() {
    for ((proxy, forge), line) in [
        (
            gitea(),
            "DELETE /repos/platform/infra/branches/druppie%2Fmeters-prod",
        ),
        (
            github(),
            "DELETE /repos/platform/infra/git/refs/heads%2Fdruppie%2Fmeters-prod",
        ),
    ] {
        assert!(pulls(&forge).delete_branch("infra", BRANCH).unwrap());
        proxy.assert_no_violations();
        assert_eq!(proxy.lines(), [line]);
        assert_eq!(proxy.seen()[0].status, 204);
    }
}

#[test]
fn a_branch_already_gone_is_deleted_on_gitea() {
    let (proxy, forge) = gitea();
    let line = "DELETE /repos/platform/infra/branches/druppie%2Fmeters-prod";
    proxy.on(line, 1, Act::Prefer(404));
    assert!(!pulls(&forge).delete_branch("infra", BRANCH).unwrap());
    proxy.assert_no_violations();
    assert_eq!(proxy.lines(), [line], "a 404 is the answer, not retried");
}

#[test]
fn a_branch_already_gone_is_deleted_on_github() {
    let (proxy, forge) = github();
    let delete = "DELETE /repos/platform/infra/git/refs/heads%2Fdruppie%2Fmeters-prod";
    let get = "GET /repos/platform/infra/git/ref/heads%2Fdruppie%2Fmeters-prod";
    proxy.on(
        delete,
        1,
        Act::Reply(422, vec![], r#"{"message":"Reference does not exist"}"#),
    );
    proxy.on(get, 1, Act::Prefer(404));
    assert!(!pulls(&forge).delete_branch("infra", BRANCH).unwrap());
    proxy.assert_no_violations();
    assert_eq!(proxy.lines(), [delete, get]);
}

#[test]
fn a_github_branch_that_cannot_be_deleted_and_is_still_there_is_an_error() {
    let (proxy, forge) = github();
    let delete = "DELETE /repos/platform/infra/git/refs/heads%2Fdruppie%2Fmeters-prod";
    proxy.on(delete, 1, Act::Prefer(422));
    let err = pulls(&forge).delete_branch("infra", BRANCH).unwrap_err();
    assert!(!err.is_transient(), "{err}");
    assert!(err.to_string().starts_with("infra: DELETE "), "{err}");
    proxy.assert_no_violations();
    assert_eq!(proxy.lines().len(), 2, "deleted, then looked for");
}

#[test]
fn a_protected_gitea_branch_is_not_deleted_and_says_why() {
    let (proxy, forge) = gitea();
    let line = "DELETE /repos/platform/infra/branches/druppie%2Fmeters-prod";
    proxy.on(
        line,
        1,
        Act::Reply(403, vec![], r#"{"message":"branch protected"}"#),
    );
    let err = pulls(&forge).delete_branch("infra", BRANCH).unwrap_err();
    assert!(err.to_string().contains("branch protected"), "{err}");
    assert!(!err.is_transient());
}

#[test]
fn closing_a_proposal_sets_its_state_to_closed() {
    for (proxy, forge) in [gitea(), github()] {
        let line = "PATCH /repos/platform/infra/pulls/7";
        proxy.on(line, 1, pull("closed", CONFLICT.title, false));
        let closed = pulls(&forge).close("infra", 7).unwrap();
        proxy.assert_no_violations();
        assert_eq!(proxy.lines(), [line]);
        assert_eq!(proxy.seen()[0].json(), json!({"state": "closed"}));
        assert_eq!(closed.state, PullState::Closed);
    }
}

#[test]
fn closing_a_proposal_merged_meanwhile_leaves_it_merged() {
    for ((proxy, forge), refusal) in [(gitea(), 412), (github(), 422)] {
        let path = "/repos/platform/infra/pulls/7";
        proxy.on(&format!("PATCH {path}"), 1, Act::Prefer(refusal));
        proxy.on(
            &format!("GET {path}"),
            1,
            Act::Patch(Arc::new(|v: &mut Value| {
                v["state"] = json!("closed");
                v["merged"] = json!(true);
                v["merged_at"] = json!("2026-11-21T10:00:00Z");
                v["merged_by"]["login"] = json!("alice");
                v["merge_commit_sha"] = json!(HEAD);
            })),
        );
        let pull = pulls(&forge).close("infra", 7).unwrap();
        proxy.assert_no_violations();
        assert_eq!(pull.state, PullState::Merged);
        assert_eq!(pull.merged_by.as_deref(), Some("alice"));
        assert_eq!(pull.merge_commit.as_deref(), Some(HEAD));
    }
}

#[test]
fn a_merged_pull_request_names_who_merged_it_and_its_merge_commit() {
    for (gitea_forge, (proxy, forge)) in [(true, gitea()), (false, github())] {
        let merged = Act::Patch(Arc::new(|v: &mut Value| {
            let pr = if v.is_array() { &mut v[0] } else { v };
            pr["number"] = json!(7);
            pr["head"]["ref"] = json!(BRANCH);
            pr["base"]["ref"] = json!("main");
            pr["state"] = json!("closed");
            if pr.get("merged").is_some() {
                pr["merged"] = json!(true);
            }
            pr["merged_at"] = json!("2026-11-21T10:00:00Z");
            if pr["merged_by"].is_object() {
                pr["merged_by"]["login"] = json!("alice");
            }
            pr["merge_commit_sha"] = json!(HEAD);
        }));
        proxy.on("GET /repos/platform/infra/pulls", 1, merged.clone());
        if !gitea_forge {
            // GitHub's list leaves out who merged; the pull request has it.
            proxy.on("GET /repos/platform/infra/pulls/7", 1, merged);
        }
        let pull = pulls(&forge).find("infra", BRANCH).unwrap().unwrap();
        proxy.assert_no_violations();
        assert_eq!(pull.state, PullState::Merged);
        assert_eq!(pull.merged_by.as_deref(), Some("alice"));
        assert_eq!(pull.merge_commit.as_deref(), Some(HEAD));
    }
}

/// Makes Prism's review list `reviews`, oldest first, each `(login,
/// state, commit, dismissed)`.
fn reviews(reviews: &'static [(&str, &str, &str, bool)]) -> Act {
    Act::Patch(Arc::new(move |v: &mut Value| {
        let sample = v[0].clone();
        *v = reviews
            .iter()
            .enumerate()
            .map(|(i, (login, state, commit, dismissed))| {
                let mut r = sample.clone();
                r["id"] = json!(100 + i);
                r["user"]["login"] = json!(login);
                r["state"] = json!(state);
                r["commit_id"] = json!(commit);
                r["dismissed"] = json!(dismissed);
                r
            })
            .collect();
    }))
}

#[test]
fn approving_reviews_of_the_head_commit_are_read_on_both_forges() {
    const OLD: &str = "89abcdef0123456789abcdef0123456789abcdef";
    for (proxy, forge, list) in [
        {
            let (p, f) = gitea();
            (
                p,
                f,
                reviews(&[
                    ("alice", "APPROVED", HEAD, false),
                    ("bob", "APPROVED", OLD, false),
                    ("carol", "APPROVED", HEAD, false),
                    ("carol", "REQUEST_CHANGES", HEAD, false),
                    ("dave", "APPROVED", HEAD, true),
                    ("erin", "APPROVED", HEAD, false),
                    ("erin", "COMMENT", HEAD, false),
                ]),
            )
        },
        {
            let (p, f) = github();
            (
                p,
                f,
                reviews(&[
                    ("alice", "APPROVED", HEAD, false),
                    ("bob", "APPROVED", OLD, false),
                    ("carol", "APPROVED", HEAD, false),
                    ("carol", "CHANGES_REQUESTED", HEAD, false),
                    ("dave", "DISMISSED", HEAD, false),
                    ("erin", "APPROVED", HEAD, false),
                    ("erin", "COMMENTED", HEAD, false),
                ]),
            )
        },
    ] {
        proxy.on(
            "GET /repos/platform/infra/pulls/7",
            1,
            pull("closed", "druppie: meters in prod", false),
        );
        proxy.on("GET /repos/platform/infra/pulls/7/reviews", 1, list);
        let approvers = pulls(&forge).approvals("infra", 7).unwrap();
        proxy.assert_no_violations();
        assert_eq!(approvers, ["alice", "erin"]);
        assert_eq!(
            proxy.lines(),
            [
                "GET /repos/platform/infra/pulls/7",
                "GET /repos/platform/infra/pulls/7/reviews"
            ]
        );
    }
}

#[test]
fn a_hostile_branch_name_stays_inside_its_path_segment() {
    for (proxy, forge) in [gitea(), github()] {
        assert!(
            pulls(&forge)
                .delete_branch("infra", "x/../../../admin?y#z")
                .unwrap()
        );
        proxy.assert_no_violations();
        let target = &proxy.seen()[0].target;
        assert!(
            target.ends_with("x%2F..%2F..%2F..%2Fadmin%3Fy%23z"),
            "{target}"
        );
    }
}
