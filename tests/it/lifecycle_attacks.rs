//! Attacks on the proposal lifecycle in plain git by a person who can
//! push to the infra repo but not to druppie's `druppie/…` branches:
//! tags named like druppie's branches or the default branch, and refs
//! under `refs/druppie/rejected/`. None of them records a merge that did
//! not happen, keeps a branch that should go, suppresses a proposal or
//! stops apply. Each runs the real binary, git and ssh-keygen.

use crate::apply::{Setup, setup};
use crate::forged_approvals::{kinds, work};
use crate::never_wedged::{release, with_image};
use crate::proposals::{BRANCH, infra, steps as planned, tip};
use crate::support::git;

const REJECTED: &str = "refs/druppie/rejected/prod/permits";

/// A person pushes `object` to `target` on the forge's infra repo.
fn push(s: &Setup, object: &str, target: &str) {
    let work = work(s);
    git(
        &work,
        &["push", "-q", "origin", &format!("{object}:{target}")],
    );
}

#[test]
fn a_tag_named_like_the_default_branch_records_no_merge() {
    // No approvers: any merge into main approves.
    let s = with_image(setup(""));
    // A tag `main` at the commit druppie will propose: git resolves a
    // short name to a tag before a branch.
    assert_eq!(s.apply().code, 0);
    let proposal = tip(&s, BRANCH);
    push(&s, &proposal, "refs/tags/main");
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        !run.stdout.contains("approved") && !run.stdout.contains("deleted"),
        "{}",
        run.stdout
    );
    assert_eq!(tip(&s, BRANCH), proposal, "the proposal stays open");
    let k = kinds(&s);
    assert!(
        !k.contains(&"approved".to_owned()) && !k.contains(&"violation".to_owned()),
        "{k:?}"
    );
    // The real merge is recorded, once.
    let work = work(&s);
    let theirs = format!("origin/{BRANCH}");
    crate::forged_approvals::git_as(
        &work,
        &[],
        &[],
        &["merge", "-q", "--no-ff", "-m", "approve", &theirs],
    );
    git(&work, &["push", "-q", "origin", "HEAD:refs/heads/main"]);
    assert_eq!(s.apply().code, 0);
    assert_eq!(s.apply().code, 0);
    let approved = kinds(&s).iter().filter(|k| *k == "approved").count();
    assert_eq!(approved, 1, "{:?}", kinds(&s));
}

#[test]
fn a_tag_named_like_a_proposal_branch_does_not_keep_it_after_its_merge() {
    let s = with_image(setup(""));
    // The tag is there before druppie's cache clones the repo.
    let main = git(&infra(&s), &["rev-parse", "main"]);
    push(&s, main.trim(), &format!("refs/tags/{BRANCH}"));
    assert_eq!(s.apply().code, 0);
    s.merge_proposal("approve");
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout
            .contains(&format!("infra: {BRANCH}: approved: merged by ")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("infra: deleted {BRANCH} (merged)")),
        "{}",
        run.stdout
    );
    assert_eq!(tip(&s, BRANCH), "");
}

#[test]
fn a_rejected_ref_that_names_no_commit_does_not_stop_apply() {
    let s = with_image(setup("platform-team"));
    let work = work(&s);
    let blob = git(&work, &["hash-object", "-w", "README.md"]);
    push(&s, blob.trim(), REJECTED);
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert_ne!(tip(&s, BRANCH), "", "prod is proposed: {}", run.stdout);
}

#[test]
fn druppies_proposal_copied_under_the_rejected_refs_suppresses_nothing() {
    let s = with_image(setup("platform-team"));
    assert_eq!(s.apply().code, 0);
    let first = tip(&s, BRANCH);
    // Someone fetches it.
    git(&work(&s), &["branch", "first", &first]);
    // The spec moves on: the proposal is rebuilt.
    release(&s, 5);
    assert_eq!(s.apply().code, 0);
    assert_ne!(tip(&s, BRANCH), first);
    // Someone who cannot push druppie's branches copies druppie's first
    // proposal (signed by druppie) to where rejected proposals are kept.
    push(&s, &first, REJECTED);
    // The spec goes back to what the first proposal held: it is
    // proposed again, not left as the 1.0.5 proposal nobody wants.
    release(&s, 0);
    let steps = planned(&s);
    assert!(
        steps.contains(&(
            "pull_request".to_owned(),
            BRANCH.to_owned(),
            "pending".to_owned()
        )),
        "{steps:?}"
    );
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    let proposed = git(
        &infra(&s),
        &[
            "show",
            &format!("{BRANCH}:apps/prod/permits/app/deployment.yaml"),
        ],
    );
    assert!(proposed.contains("permits:1.0.0"), "{proposed}");
}

#[test]
fn a_commit_pushed_to_a_proposal_while_apply_runs_is_kept() {
    let s = with_image(setup("platform-team"));
    assert_eq!(s.apply().code, 0);
    // A reviewer's commit on the proposal, ready to push.
    let work = crate::proposals::reviewer_commit(&s);
    let theirs = git(&work, &["rev-parse", "HEAD"]).trim().to_owned();
    git(&work, &["checkout", "-q", "main"]);
    // It reaches the forge right after druppie's cache fetched (a hook
    // of the cache's clone pushes it once), so druppie decides on the
    // proposal as it was and pushes after the reviewer did.
    let marker = s.tmp.path().join("pushed");
    let hook = s
        .tmp
        .path()
        .join("cache/infra.git/hooks/reference-transaction");
    std::fs::create_dir_all(hook.parent().unwrap()).unwrap();
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\n[ \"$1\" = committed ] || exit 0\n[ -e '{m}' ] && exit 0\ntouch '{m}'\nenv -i PATH=\"$PATH\" HOME=\"$HOME\" git -C '{w}' push -q origin review:{BRANCH}\n",
            m = marker.display(),
            w = work.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Something for the fetch to bring, and a spec change to propose.
    git(&work, &["push", "-q", "origin", "main:scratch"]);
    release(&s, 5);
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(marker.exists(), "the hook ran");
    assert_eq!(tip(&s, BRANCH), theirs, "{}", run.transcript());
    assert!(
        run.stdout.contains(&format!(
            "infra (prod) permits: {BRANCH} has commits by Person <person@example.org>; left as it is"
        )),
        "{}",
        run.stdout
    );
}

#[test]
fn a_branch_named_like_an_environment_holds_only_that_environment() {
    let s = with_image(setup("platform-team"));
    // `druppie/prod` leaves no room for `druppie/prod/permits`.
    push(&s, "main", "refs/heads/druppie/prod");
    for _ in 0..2 {
        let run = s.apply();
        assert_eq!(run.code, 0, "{}", run.transcript());
    }
    assert_ne!(
        tip(&s, "main"),
        git(&infra(&s), &["rev-parse", "druppie/prod"]).trim()
    );
    assert!(s.forge().join("permits-app.git").exists());
    let steps = planned(&s);
    assert!(
        steps.contains(&("nothing".to_owned(), BRANCH.to_owned(), "noop".to_owned())),
        "{steps:?}"
    );
    // Deleted, it makes room for the proposal.
    let work = work(&s);
    git(&work, &["push", "-q", "origin", ":refs/heads/druppie/prod"]);
    assert_eq!(s.apply().code, 0);
    assert_ne!(tip(&s, BRANCH), "");
}

#[test]
fn a_closed_pull_request_whose_tip_a_person_wrote_rejects_no_change_of_their_choosing() {
    use crate::prism::Act;
    use std::sync::Arc;
    let (s, proxy) = crate::apply::setup_gitea("platform-team");
    assert_eq!(s.apply().code, 0);
    let forge = s.forge().join("platform/infra.git");
    // A person pushes onto the proposal a commit whose message names a
    // proposal id, then closes the pull request.
    let work = work(&s);
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
    crate::forged_approvals::git_as(
        &work,
        &[],
        &[],
        &[
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "looked at it\n\nDruppie-Proposal: 0123456789abcdef",
        ],
    );
    git(
        &work,
        &["push", "-q", "origin", &format!("review:{BRANCH}")],
    );
    let theirs = git(&forge, &["rev-parse", BRANCH]).trim().to_owned();
    let closed = Arc::new(move |v: &mut serde_json::Value| {
        let pr = &mut v[0];
        pr["head"]["ref"] = BRANCH.into();
        pr["head"]["sha"] = theirs.clone().into();
        pr["base"]["ref"] = "main".into();
        pr["state"] = "closed".into();
        pr["merged"] = false.into();
        pr["merged_at"] = serde_json::Value::Null;
        pr["number"] = 7.into();
    });
    proxy.on("GET /repos/platform/infra/pulls", 2, Act::Patch(closed));
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout.contains("rejected: closed without merging"),
        "{}",
        run.stdout
    );
    // druppie signs no rejection of a change it did not propose there.
    let kept = git(
        &forge,
        &["for-each-ref", "--format=%(refname)", "refs/druppie/"],
    );
    assert_eq!(kept, "", "{}", run.stdout);
}
