//! Proposals that reach the default branch other than by a plain merge of
//! druppie's branch, in plain git: a squash, a person's commit on the
//! proposal before the merge. Each is judged like a merge: approved only
//! when the commit that brought it in is signed by an approver's key.

use crate::apply::{Setup, setup};
use crate::forged_approvals::{events, fsck_all, git_as, kinds, merge, signing, work};
use crate::support::git;

/// Brings the prod proposal into main without merging it: a squash
/// commit made with `config`; returns it.
fn squash(s: &Setup, config: &[String]) -> String {
    let work = work(s);
    git(
        &work,
        &["merge", "-q", "--squash", "origin/druppie/prod/permits"],
    );
    git_as(&work, config, &[], &["commit", "-qm", "squashed"]);
    git(&work, &["push", "-q", "origin", "main"]);
    git(&work, &["rev-parse", "HEAD"]).trim().to_owned()
}

#[test]
fn a_squash_of_the_proposal_is_judged_like_a_merge() {
    let s = setup("person@example.org");
    assert_eq!(s.apply().code, 0);
    let landed = squash(&s, &[]);
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout.contains(
            "VIOLATION: merged by Person <person@example.org>: the commit that brought the proposal in without merging it (a squash or rebase) is not signed"
        ),
        "{}",
        run.transcript()
    );
    let violation = events(&s)
        .into_iter()
        .find(|e| e.0 == "violation")
        .expect("a violation event");
    assert_eq!(
        (violation.2.as_str(), violation.3.as_str()),
        ("prod", landed.as_str())
    );
    // Nothing twice.
    s.apply();
    assert_eq!(
        kinds(&s),
        ["applied", "proposed", "applied", "violation", "applied"]
    );
    fsck_all(&s);
    // Squashed and signed by the approver, it approves.
    let s = setup("person@example.org");
    assert_eq!(s.apply().code, 0);
    squash(&s, &signing(&s.tmp.path().join("person_ed25519")));
    let run = s.apply();
    assert!(
        run.stdout.contains(
            "approved: merged by Person <person@example.org> (approver: person@example.org)"
        ),
        "{}",
        run.transcript()
    );
}

#[test]
fn a_commit_added_to_the_proposal_before_the_merge_does_not_hide_the_merge() {
    for approver_signs in [false, true] {
        let s = setup("person@example.org");
        assert_eq!(s.apply().code, 0);
        // A person's fix-up on druppie's branch, then the merge of that
        // branch: the proposal is the merge's grandparent.
        let work = work(&s);
        git(
            &work,
            &["checkout", "-q", "-B", "fix", "origin/druppie/prod/permits"],
        );
        std::fs::write(work.join("apps/prod/permits/fix-up.txt"), "by a person\n").unwrap();
        git(&work, &["add", "-A"]);
        git_as(&work, &[], &[], &["commit", "-qm", "fix-up"]);
        git(&work, &["push", "-q", "origin", "fix:druppie/prod/permits"]);
        git(&work, &["checkout", "-q", "main"]);
        let config = if approver_signs {
            signing(&s.tmp.path().join("person_ed25519"))
        } else {
            Vec::new()
        };
        let merge = merge(&s, &config, &[]);
        let run = s.apply();
        let verdict = if approver_signs {
            "approved: merged by Person <person@example.org> (approver: person@example.org)"
        } else {
            "VIOLATION: merged by Person <person@example.org>: the merge commit is not signed"
        };
        assert!(run.stdout.contains(verdict), "{}", run.transcript());
        let kind = if approver_signs {
            "approved"
        } else {
            "violation"
        };
        assert!(
            events(&s)
                .iter()
                .any(|e| e.0 == kind && e.2 == "prod" && e.3 == merge),
            "{:?}",
            events(&s)
        );
        fsck_all(&s);
    }
}
