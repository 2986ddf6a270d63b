//! A proposal's life in plain git, end to end with the real binary, git
//! and ssh-keygen: opened on its plan's own branch, left alone once a
//! person pushes to it, recorded once whichever way it is merged, deleted
//! once recorded, never opened for a lock file alone, and never merged
//! with conflict markers unnoticed.

use crate::apply::{Setup, setup};
use crate::forged_approvals::{git_as, kinds, work};
use crate::never_wedged::{release, with_image};
use crate::support::git;

pub(crate) const BRANCH: &str = "druppie/prod/permits";

pub(crate) fn infra(s: &Setup) -> std::path::PathBuf {
    s.forge().join("infra.git")
}

/// The tip of `branch` on the forge's infra repo, or "" when it is gone.
pub(crate) fn tip(s: &Setup, branch: &str) -> String {
    git(
        &infra(s),
        &[
            "for-each-ref",
            "--format=%(objectname)",
            &format!("refs/heads/{branch}"),
        ],
    )
    .trim()
    .to_owned()
}

/// `druppie diff --json` against the forge's repos: the steps, as
/// (action, branch, status).
pub(crate) fn steps(s: &Setup) -> Vec<(String, String, String)> {
    let run = s.f.run(&[
        "--config",
        s.config.to_str().unwrap(),
        "diff",
        "--json",
        "--repos",
        s.forge().to_str().unwrap(),
    ]);
    assert!(run.code == 0 || run.code == 2, "{}", run.transcript());
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    report["execution_plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let f = |v: &serde_json::Value| v.as_str().unwrap_or("").to_owned();
            (f(&s["action"]), f(&s["params"]["branch"]), f(&s["status"]))
        })
        .collect()
}

/// [`steps`] as (action, branch).
fn planned(s: &Setup) -> Vec<(String, String)> {
    steps(s).into_iter().map(|(a, b, _)| (a, b)).collect()
}

/// A reviewer's commit on druppie's prod proposal, in a work clone on the
/// branch `review`, not pushed yet; returns the clone.
pub(crate) fn reviewer_commit(s: &Setup) -> std::path::PathBuf {
    let work = work(s);
    git(
        &work,
        &[
            "checkout",
            "-q",
            "-B",
            "review",
            &format!("origin/{BRANCH}"),
        ],
    );
    std::fs::write(work.join("apps/prod/permits/REVIEW.md"), "looked at it\n").unwrap();
    git(&work, &["add", "-A"]);
    git_as(&work, &[], &[], &["commit", "-qm", "a reviewer's note"]);
    work
}

#[test]
fn a_reviewers_commit_on_a_proposal_survives_the_next_apply() {
    let s = with_image(setup("platform-team"));
    assert_eq!(s.apply().code, 0);
    // A reviewer pushes a commit onto druppie's proposal.
    let work = reviewer_commit(&s);
    git(
        &work,
        &["push", "-q", "origin", &format!("review:{BRANCH}")],
    );
    let theirs = tip(&s, BRANCH);
    // The spec moves on: diff says druppie comments, apply leaves it.
    release(&s, 5);
    assert!(
        planned(&s).contains(&("comment".to_owned(), BRANCH.to_owned())),
        "{:?}",
        planned(&s)
    );
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout.contains(&format!(
            "infra (prod) permits: {BRANCH} has commits by Person <person@example.org>; left as it is"
        )),
        "{}",
        run.stdout
    );
    assert_eq!(
        tip(&s, BRANCH),
        theirs,
        "the reviewer's commit stays the tip"
    );
    let note = git(&infra(&s), &["notes", "--ref=druppie", "show", &theirs]);
    assert!(
        note.contains(
            "Person <person@example.org> pushed to this proposal, so druppie no longer updates it"
        ),
        "{note}"
    );
    // dev deploys the new release all the same.
    let dev = git(
        &infra(&s),
        &["show", "main:apps/dev/permits/app/deployment.yaml"],
    );
    assert!(dev.contains("permits:1.0.5"), "{dev}");
    // Applying again changes nothing.
    let heads = git(
        &infra(&s),
        &["for-each-ref", "--format=%(refname) %(objectname)"],
    );
    assert_eq!(s.apply().code, 0);
    assert_eq!(
        git(
            &infra(&s),
            &["for-each-ref", "--format=%(refname) %(objectname)"]
        ),
        heads
    );
}

#[test]
fn a_change_to_the_lock_alone_opens_no_proposal() {
    let s = with_image(setup("platform-team"));
    assert_eq!(s.apply().code, 0);
    s.merge_proposal_signed("approve");
    assert_eq!(s.apply().code, 0);
    assert_eq!(tip(&s, BRANCH), "", "the merged proposal's branch is gone");
    // A block version bump that renders the same files.
    let block = s.f.path().join("bouwblokken/webapp-python.md");
    let text = std::fs::read_to_string(&block).unwrap();
    std::fs::write(&block, text.replacen("version: 1.0.0", "version: 1.0.1", 1)).unwrap();
    git(s.f.path(), &["commit", "-qam", "webapp-python 1.0.1"]);
    let steps = planned(&s);
    assert!(
        steps.contains(&("nothing".to_owned(), BRANCH.to_owned()))
            && steps.contains(&("commit".to_owned(), "main".to_owned())),
        "{steps:?}"
    );
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert_eq!(tip(&s, BRANCH), "", "no proposal for a lock file alone");
    // dev deploys: its lock records the new version.
    let lock = git(
        &infra(&s),
        &["show", "main:apps/dev/permits/.druppie-lock.yaml"],
    );
    assert!(lock.contains("version: \"1.0.1\""), "{lock}");
    let prod = git(
        &infra(&s),
        &["show", "main:apps/prod/permits/.druppie-lock.yaml"],
    );
    assert!(!prod.contains("1.0.1"), "{prod}");
    // The next real change carries prod's lock with it.
    release(&s, 6);
    assert_eq!(s.apply().code, 0);
    let proposed = git(
        &infra(&s),
        &[
            "show",
            &format!("{BRANCH}:apps/prod/permits/.druppie-lock.yaml"),
        ],
    );
    assert!(proposed.contains("version: \"1.0.1\""), "{proposed}");
}

/// Each way a person brings a proposal into main, by `style`.
fn land(s: &Setup, style: &str) {
    let work = work(s);
    let theirs = format!("origin/{BRANCH}");
    match style {
        "merge" => {
            git_as(
                &work,
                &[],
                &[],
                &["merge", "-q", "--no-ff", "-m", "Merge", &theirs],
            );
        }
        "fix-up then merge" => {
            git(&work, &["checkout", "-q", "-B", "fix", &theirs]);
            std::fs::write(work.join("apps/prod/permits/FIX.md"), "fixed\n").unwrap();
            git(&work, &["add", "-A"]);
            git_as(&work, &[], &[], &["commit", "-qm", "fix-up"]);
            git(&work, &["checkout", "-q", "main"]);
            git_as(
                &work,
                &[],
                &[],
                &["merge", "-q", "--no-ff", "-m", "Merge", "fix"],
            );
        }
        "squash" => {
            git(&work, &["merge", "-q", "--squash", &theirs]);
            git_as(&work, &[], &[], &["commit", "-qm", "squashed"]);
        }
        "rebase" => {
            // main moves first, so the rebase makes a new commit.
            std::fs::write(work.join("NOTES.md"), "meanwhile\n").unwrap();
            git(&work, &["add", "-A"]);
            git_as(&work, &[], &[], &["commit", "-qm", "meanwhile"]);
            git_as(&work, &[], &[], &["cherry-pick", &theirs]);
        }
        "fast-forward" => {
            git(&work, &["merge", "-q", "--ff-only", &theirs]);
        }
        other => panic!("{other}"),
    }
    git(&work, &["push", "-q", "origin", "main"]);
}

#[test]
fn every_way_of_merging_records_one_approval_and_deletes_the_branch() {
    for style in [
        "merge",
        "fix-up then merge",
        "squash",
        "rebase",
        "fast-forward",
    ] {
        // No approvers in prod: whoever merges approves.
        let s = with_image(setup(""));
        assert_eq!(s.apply().code, 0, "{style}");
        land(&s, style);
        let run = s.apply();
        assert_eq!(run.code, 0, "{style}: {}", run.transcript());
        assert!(
            run.stdout
                .contains(&format!("infra: {BRANCH}: approved: merged by ")),
            "{style}: {}",
            run.stdout
        );
        assert!(
            run.stdout
                .contains(&format!("infra: deleted {BRANCH} (merged)")),
            "{style}: {}",
            run.stdout
        );
        assert_eq!(tip(&s, BRANCH), "", "{style}");
        // Once, however often it runs.
        assert_eq!(s.apply().code, 0);
        let approved = kinds(&s).iter().filter(|k| *k == "approved").count();
        assert_eq!(approved, 1, "{style}: {:?}", kinds(&s));
        // The next change is a fresh proposal: one commit on main.
        release(&s, 9);
        assert_eq!(s.apply().code, 0, "{style}");
        let fresh = git(
            &infra(&s),
            &["rev-list", "--count", &format!("main..{BRANCH}")],
        );
        assert_eq!(fresh.trim(), "1", "{style}");
        let base = git(&infra(&s), &["rev-parse", &format!("{BRANCH}^")]);
        assert_eq!(base, git(&infra(&s), &["rev-parse", "main"]), "{style}");
    }
}

#[test]
fn a_conflict_is_proposed_as_such_and_merging_its_markers_is_a_violation() {
    let s = setup("person@example.org");
    // A person wrote prod's deployment before druppie ever did.
    let work = work(&s);
    std::fs::create_dir_all(work.join("apps/prod/permits/app")).unwrap();
    std::fs::write(
        work.join("apps/prod/permits/app/deployment.yaml"),
        "kind: Deployment\nreplicas: 9\n",
    )
    .unwrap();
    git(&work, &["add", "-A"]);
    git_as(&work, &[], &[], &["commit", "-qm", "by hand"]);
    git(&work, &["push", "-q", "origin", "main"]);
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    let subject = git(&infra(&s), &["log", "-1", "--format=%s", BRANCH]);
    assert_eq!(subject, "CONFLICT (1 file): druppie: permits in prod\n");
    let card = git(&infra(&s), &["notes", "--ref=druppie", "show", BRANCH]);
    assert!(
        card.contains("**CONFLICT**") && card.contains("- `apps/prod/permits/app/deployment.yaml`"),
        "{card}"
    );
    // Merged as it is, signed by the approver: still a violation.
    s.merge_proposal_signed("merge with markers");
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout.contains("VIOLATION: merged by Person <person@example.org>: merged with conflict markers in apps/prod/permits/app/deployment.yaml"),
        "{}",
        run.stdout
    );
    assert!(
        kinds(&s).contains(&"violation".to_owned()),
        "{:?}",
        kinds(&s)
    );
    // The next diff names the file.
    let run = s.f.run(&[
        "--config",
        s.config.to_str().unwrap(),
        "diff",
        "--repos",
        s.forge().to_str().unwrap(),
        "--env",
        "prod",
    ]);
    assert!(
        run.stdout.contains(
            "apps/prod/permits/app/deployment.yaml (conflict markers were merged into the repo"
        ),
        "{}",
        run.transcript()
    );
}

#[test]
fn a_proposal_deleted_without_merging_is_rejected_and_not_proposed_again() {
    let s = with_image(setup("platform-team"));
    assert_eq!(s.apply().code, 0);
    let proposal = tip(&s, BRANCH);
    // In plain git, deleting the branch closes the proposal.
    let work = work(&s);
    git(&work, &["push", "-q", "origin", &format!(":{BRANCH}")]);
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout.contains(&format!(
            "infra: {BRANCH}: rejected: closed without merging by whoever deleted the branch"
        )),
        "{}",
        run.stdout
    );
    assert!(
        kinds(&s).contains(&"rejected".to_owned()),
        "{:?}",
        kinds(&s)
    );
    // The same change is not proposed again, by this run or the next.
    assert_eq!(tip(&s, BRANCH), "", "{}", run.stdout);
    // Kept under a commit druppie signs on top of it.
    let kept = git(
        &infra(&s),
        &["rev-parse", "refs/druppie/rejected/prod/permits^"],
    );
    assert_eq!(kept.trim(), proposal);
    s.verify("infra", "refs/druppie/rejected/prod/permits");
    assert!(
        planned(&s).contains(&("nothing".to_owned(), BRANCH.to_owned())),
        "{:?}",
        planned(&s)
    );
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout.contains(
            "nothing to write: what differs waits for a merge, was closed without merging"
        ),
        "{}",
        run.stdout
    );
    assert_eq!(tip(&s, BRANCH), "");
    let rejected = kinds(&s).iter().filter(|k| *k == "rejected").count();
    assert_eq!(rejected, 1, "{:?}", kinds(&s));
    // A new change is proposed afresh.
    release(&s, 7);
    assert_eq!(s.apply().code, 0);
    let fresh = git(
        &infra(&s),
        &[
            "show",
            &format!("{BRANCH}:apps/prod/permits/app/deployment.yaml"),
        ],
    );
    assert!(fresh.contains("permits:1.0.7"), "{fresh}");
}

#[test]
fn a_proposal_merged_and_then_deleted_by_a_person_is_still_recorded() {
    let s = with_image(setup(""));
    assert_eq!(s.apply().code, 0);
    land(&s, "merge");
    git(&work(&s), &["push", "-q", "origin", &format!(":{BRANCH}")]);
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout.contains(&format!(
            "infra: {BRANCH}: approved: merged by Person <person@example.org>"
        )),
        "{}",
        run.stdout
    );
    assert_eq!(s.apply().code, 0);
    assert_eq!(
        kinds(&s).iter().filter(|k| *k == "approved").count(),
        1,
        "{:?}",
        kinds(&s)
    );
    assert!(!kinds(&s).contains(&"rejected".to_owned()));
}

#[test]
fn a_conflict_on_gitea_is_a_draft_with_a_failing_status() {
    let (s, proxy) = crate::apply::setup_gitea("platform-team");
    // A person wrote prod's deployment before druppie ever did.
    let work = s.tmp.path().join("work");
    git(&work, &["pull", "-q", "origin", "main"]);
    std::fs::create_dir_all(work.join("apps/prod/permits/app")).unwrap();
    std::fs::write(
        work.join("apps/prod/permits/app/deployment.yaml"),
        "kind: Deployment\nreplicas: 9\n",
    )
    .unwrap();
    git(&work, &["add", "-A"]);
    git_as(&work, &[], &[], &["commit", "-qm", "by hand"]);
    git(&work, &["push", "-q", "origin", "main"]);
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    proxy.assert_no_violations();
    let seen = proxy.seen();
    let opened = seen
        .iter()
        .find(|r| r.line() == "POST /repos/platform/infra/pulls")
        .expect("a pull request opened");
    // Gitea's own draft: a work-in-progress title.
    assert_eq!(
        opened.json()["title"],
        "WIP: CONFLICT (1 file): druppie: permits in prod"
    );
    let tip = git(
        &s.forge().join("platform/infra.git"),
        &["rev-parse", BRANCH],
    );
    let status = seen
        .iter()
        .find(|r| r.line() == format!("POST /repos/platform/infra/statuses/{}", tip.trim()))
        .expect("a status on the proposal commit");
    assert_eq!(status.json()["context"], "druppie/conflicts");
    assert_eq!(status.json()["state"], "failure");
    assert_eq!(status.json()["description"], "1 file has conflict markers");
}

#[test]
fn deleting_a_proposal_a_person_pushed_to_opens_a_fresh_one() {
    let s = with_image(setup("platform-team"));
    assert_eq!(s.apply().code, 0);
    let ours = tip(&s, BRANCH);
    // A reviewer pushes onto druppie's proposal; the spec does not move.
    let work = reviewer_commit(&s);
    git(
        &work,
        &["push", "-q", "origin", &format!("review:{BRANCH}")],
    );
    let theirs = tip(&s, BRANCH);
    let run = s.apply();
    assert!(run.stdout.contains("left as it is"), "{}", run.stdout);
    // As druppie's comment says: close it (delete the branch) for a fresh one.
    git(&work, &["push", "-q", "origin", &format!(":{BRANCH}")]);
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    // druppie's own proposal again (within the same second it is even
    // the same commit as the first), without the reviewer's commit.
    let fresh = tip(&s, BRANCH);
    assert!(
        !fresh.is_empty() && fresh != theirs,
        "no fresh proposal after deleting a person's proposal:\n{}",
        run.stdout
    );
    assert_eq!(
        git(&infra(&s), &["rev-parse", &format!("{BRANCH}^")]),
        git(&infra(&s), &["rev-parse", &format!("{ours}^")]),
        "built on main, as the first"
    );
}

#[test]
fn a_forge_that_refuses_to_delete_a_merged_branch_stops_nothing() {
    let s = with_image(setup(""));
    assert_eq!(s.apply().code, 0);
    // The forge's hook refuses every deletion of a branch.
    let hook = infra(&s).join("hooks/pre-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\nwhile read old new ref; do\n  case $new in 0000000000000000000000000000000000000000) echo \"deleting $ref is not allowed\"; exit 1;; esac\ndone\n",
    )
    .unwrap();
    std::process::Command::new("chmod")
        .args(["+x", hook.to_str().unwrap()])
        .status()
        .unwrap();
    land(&s, "merge");
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout
            .contains(&format!("infra: {BRANCH}: approved: merged by ")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!(
            "infra: {BRANCH} kept, not deleted (the next run tries again)"
        )),
        "{}",
        run.stdout
    );
    assert!(!tip(&s, BRANCH).is_empty(), "the branch stays");
    // Once the forge allows it, the next run deletes it; the approval is
    // recorded once.
    std::fs::remove_file(&hook).unwrap();
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout
            .contains(&format!("infra: deleted {BRANCH} (merged)")),
        "{}",
        run.stdout
    );
    assert_eq!(
        kinds(&s).iter().filter(|k| *k == "approved").count(),
        1,
        "{:?}",
        kinds(&s)
    );
}
