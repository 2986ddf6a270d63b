//! Promotion between environments, in plain git with the real binary: a
//! plan's change reaches an environment only once it is live in the one
//! before (platform.yaml's order): committed where that one deploys,
//! merged where it proposes.

use crate::apply::{Setup, setup};
use crate::forged_approvals::{git_as, work};
use crate::never_wedged::{release, with_image};
use crate::support::git;

/// Replaces the first `from` in the spec file `path` with `to`.
pub(crate) fn edit(spec: &std::path::Path, path: &str, from: &str, to: &str) {
    let full = spec.join(path);
    let text = std::fs::read_to_string(&full).unwrap();
    assert!(text.contains(from), "{path}: {from}");
    std::fs::write(&full, text.replacen(from, to, 1)).unwrap();
}

/// The environment the tip of `branch` in the forge repo `repo`
/// promotes its change from (`Druppie-Promoted-From`), "" for none.
pub(crate) fn promoted_from(repo: &std::path::Path, branch: &str) -> String {
    git(
        repo,
        &[
            "log",
            "-1",
            "--format=%(trailers:key=Druppie-Promoted-From,valueonly)",
            branch,
        ],
    )
    .trim()
    .to_owned()
}

/// dev (deploy) → test (propose) → prod (propose), no approvers, the
/// image in the deployment, promotion on.
pub(crate) fn three_stages() -> Setup {
    let s = with_image(setup(""));
    let spec = s.f.path();
    let edit = |path: &str, from: &str, to: &str| edit(spec, path, from, to);
    edit(
        "spec/platform.yaml",
        "  prod:\n",
        "  test:\n    trust: propose\n    path: apps/test\n    namespace: \"{{ plan }}-test\"\n  prod:\n",
    );
    edit(
        "spec/plans/permits.yaml",
        "environments: [dev, prod]\npromote: {prod: parallel}",
        "environments: [dev, test, prod]",
    );
    git(spec, &["commit", "-qam", "three stages, promoted in order"]);
    s
}

fn branches(s: &Setup) -> String {
    git(
        &s.forge().join("infra.git"),
        &["branch", "--list", "druppie/*", "--format=%(refname:short)"],
    )
}

/// Merges `branch` into main as a person and pushes.
pub(crate) fn merge(s: &Setup, branch: &str) {
    let work = work(s);
    git_as(
        &work,
        &[],
        &[],
        &[
            "merge",
            "-q",
            "--no-ff",
            "-m",
            "Merge",
            &format!("origin/{branch}"),
        ],
    );
    git(&work, &["push", "-q", "origin", "main"]);
}

/// (kind, env) of every event, in order.
fn trail(s: &Setup) -> Vec<(String, String)> {
    s.audit()
        .into_iter()
        .map(|(kind, _, env, _)| (kind, env))
        .collect()
}

#[test]
fn a_change_reaches_each_environment_once_live_in_the_one_before() {
    let s = three_stages();
    // dev first; test and prod wait.
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout.contains("infra (dev) permits: committed "),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("infra (test) permits: waiting: dev"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("infra (prod) permits: waiting: test"),
        "{}",
        run.stdout
    );
    assert_eq!(branches(&s), "", "nothing proposed yet");
    // The text diff says what the next apply does where: dev is live
    // now, so test's proposal opens; prod waits for test.
    let diff = s.f.run(&[
        "--config",
        s.config.to_str().unwrap(),
        "diff",
        "--repos",
        s.forge().to_str().unwrap(),
    ]);
    assert_eq!(diff.code, 2, "{}", diff.transcript());
    let headers: Vec<&str> = diff
        .stdout
        .lines()
        .filter(|l| l.starts_with("infra ("))
        .collect();
    assert_eq!(headers.len(), 2, "{}", diff.stdout);
    assert!(
        headers[0].contains("prod, propose)") && headers[0].ends_with("· waiting: test"),
        "{headers:?}"
    );
    assert!(
        headers[1].contains("test, propose)")
            && headers[1].ends_with("· → proposal druppie/test/permits, promoted from dev"),
        "{headers:?}"
    );
    // dev is live: test's proposal opens, prod still waits. prod cannot
    // be merged before test: it has no proposal.
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert_eq!(branches(&s), "druppie/test/permits\n", "{}", run.stdout);
    assert!(
        run.stdout.contains("infra (prod) permits: waiting: test"),
        "{}",
        run.stdout
    );
    // Applying again changes nothing while test waits for its merge.
    let run = s.apply();
    assert_eq!(branches(&s), "druppie/test/permits\n", "{}", run.stdout);
    // test merged: prod's proposal opens.
    merge(&s, "druppie/test/permits");
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert_eq!(branches(&s), "druppie/prod/permits\n", "{}", run.stdout);
    merge(&s, "druppie/prod/permits");
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout
            .ends_with("nothing to apply: every repo matches the spec\n"),
        "{}",
        run.stdout
    );
    let events: Vec<(String, String)> = trail(&s)
        .into_iter()
        .filter(|(_, env)| !env.is_empty())
        .collect();
    let pair = |k: &str, e: &str| (k.to_owned(), e.to_owned());
    // Per environment: proposed → approved → promoted (from the one
    // before, once merged there).
    assert_eq!(
        events,
        [
            pair("applied", "dev"),
            pair("proposed", "test"),
            pair("approved", "test"),
            pair("applied", "test"),
            pair("promoted", "test"),
            pair("proposed", "prod"),
            pair("approved", "prod"),
            pair("applied", "prod"),
            pair("promoted", "prod"),
        ]
    );
    let run = s.audit_run(&["--json"]);
    let events: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let promotions: Vec<(&str, &str)> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "promoted")
        .map(|e| (e["from"].as_str().unwrap(), e["env"].as_str().unwrap()))
        .collect();
    assert_eq!(promotions, [("dev", "test"), ("test", "prod")]);
}

#[test]
fn diff_shows_what_waits_where_and_an_environment_filter_still_waits() {
    let s = three_stages();
    assert_eq!(s.apply().code, 0);
    release(&s, 4);
    // Only prod selected: dev and test are still read to decide.
    let run = s.f.run(&[
        "--config",
        s.config.to_str().unwrap(),
        "diff",
        "--json",
        "--env",
        "prod",
        "--repos",
        s.forge().to_str().unwrap(),
    ]);
    assert_eq!(run.code, 2, "{}", run.transcript());
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let steps: Vec<&serde_json::Value> = report["execution_plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["params"]["repo"] == "infra")
        .collect();
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert_eq!(steps[0]["action"], "nothing");
    assert_eq!(steps[0]["params"]["waiting"], "test");
    assert_eq!(steps[0]["params"]["env"], "prod");
    // The report shows prod only.
    let envs: Vec<&str> = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["env"].as_str())
        .collect();
    assert_eq!(envs, ["prod"]);
    // apply --env prod proposes nothing either.
    let run = s.f.run(&[
        "--config",
        s.config.to_str().unwrap(),
        "apply",
        "--yes",
        "--env",
        "prod",
    ]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(!branches(&s).contains("druppie/prod/"), "{}", run.stdout);
    // Nothing written, and said why.
    assert!(
        run.stdout.contains("infra (prod) permits: waiting: test"),
        "{}",
        run.stdout
    );
}

#[test]
fn an_environment_marked_parallel_does_not_wait() {
    let s = three_stages();
    let plan = s.f.path().join("spec/plans/permits.yaml");
    let text = std::fs::read_to_string(&plan).unwrap();
    std::fs::write(
        &plan,
        text.replacen(
            "environments: [dev, test, prod]",
            "environments: [dev, test, prod]\npromote: {prod: parallel}",
            1,
        ),
    )
    .unwrap();
    git(s.f.path(), &["commit", "-qam", "prod is independent"]);
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert_eq!(branches(&s), "druppie/prod/permits\n", "{}", run.stdout);
    assert!(
        run.stdout.contains("infra (test) permits: waiting: dev"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_newer_change_in_dev_leaves_the_proposal_in_test_alone_until_dev_has_it() {
    let s = three_stages();
    assert_eq!(s.apply().code, 0);
    assert_eq!(s.apply().code, 0);
    let infra = s.forge().join("infra.git");
    let proposed = git(&infra, &["rev-parse", "druppie/test/permits"]);
    release(&s, 5);
    // This run commits 1.0.5 to dev; test keeps what is live in dev
    // before it.
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout.contains("infra (test) permits: waiting: dev"),
        "{}",
        run.stdout
    );
    assert_eq!(
        git(&infra, &["rev-parse", "druppie/test/permits"]),
        proposed
    );
    // Now dev runs 1.0.5: test's proposal moves to it.
    assert_eq!(s.apply().code, 0);
    let test = git(
        &infra,
        &[
            "show",
            "druppie/test/permits:apps/test/permits/app/deployment.yaml",
        ],
    );
    assert!(test.contains("permits:1.0.5"), "{test}");
}

/// `druppie promote` with the real binary.
fn promote(s: &Setup, args: &[&str]) -> crate::support::Run {
    let mut full = vec!["--config", s.config.to_str().unwrap(), "promote"];
    full.extend_from_slice(args);
    s.f.run(&full)
}

#[test]
fn promote_brings_what_is_live_in_dev_to_test_while_a_newer_change_waits_in_dev() {
    let s = three_stages();
    // dev proposes too: a newer change waits there until merged.
    let platform = s.f.path().join("spec/platform.yaml");
    let text = std::fs::read_to_string(&platform).unwrap();
    std::fs::write(
        &platform,
        text.replacen("trust: deploy", "trust: propose", 1),
    )
    .unwrap();
    git(s.f.path(), &["commit", "-qam", "dev proposes"]);
    let live_in_dev = release(&s, 3);
    assert_eq!(s.apply().code, 0);
    assert_eq!(branches(&s), "druppie/dev/permits\n");
    merge(&s, "druppie/dev/permits");
    // 1.0.3 is live in dev; 1.0.4 is proposed there, and test waits
    // for it.
    release(&s, 4);
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout.contains("infra (test) permits: waiting: dev"),
        "{}",
        run.stdout
    );
    assert_eq!(branches(&s), "druppie/dev/permits\n", "{}", run.stdout);
    // Promoting brings 1.0.3, what dev runs, to test now.
    let run = promote(&s, &["permits", "--to", "test", "--yes"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stderr.contains(&format!(
            "what is live in dev (spec commit {})",
            &live_in_dev[..12]
        )),
        "{}",
        run.transcript()
    );
    assert!(
        run.stdout
            .contains("infra (test) permits: proposed on druppie/test/permits"),
        "{}",
        run.stdout
    );
    let infra = s.forge().join("infra.git");
    let proposed = git(
        &infra,
        &[
            "show",
            "druppie/test/permits:apps/test/permits/app/deployment.yaml",
        ],
    );
    assert!(proposed.contains("permits:1.0.3"), "{proposed}");
    let trailers = git(
        &infra,
        &[
            "log",
            "-1",
            "--format=%(trailers:key=Druppie-Promoted-From,valueonly)%(trailers:key=Druppie-Spec-Commit,valueonly)",
            "druppie/test/permits",
        ],
    );
    assert_eq!(trailers.trim_end(), format!("dev\n{live_in_dev}"));
    // The newer change in dev is untouched, and prod is not opened.
    let dev = git(
        &infra,
        &[
            "show",
            "druppie/dev/permits:apps/dev/permits/app/deployment.yaml",
        ],
    );
    assert!(dev.contains("permits:1.0.4"), "{dev}");
    assert_eq!(branches(&s), "druppie/dev/permits\ndruppie/test/permits\n");
    // Merged: test runs 1.0.3, recorded as promoted from dev; the next
    // apply leaves test alone while 1.0.4 waits in dev.
    merge(&s, "druppie/test/permits");
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout.contains("infra (test) permits: waiting: dev"),
        "{}",
        run.stdout
    );
    let live = git(
        &infra,
        &["show", "main:apps/test/permits/app/deployment.yaml"],
    );
    assert!(live.contains("permits:1.0.3"), "{live}");
    let test_events: Vec<String> = trail(&s)
        .into_iter()
        .filter(|(_, env)| env == "test")
        .map(|(kind, _)| kind)
        .collect();
    assert_eq!(test_events, ["proposed", "approved", "applied", "promoted"]);
    // The audit table says from where.
    let run = s.audit_run(&["--env", "test"]);
    assert!(run.stdout.contains("dev → test"), "{}", run.stdout);
}

#[test]
fn promote_refuses_what_cannot_be_promoted_with_a_clear_reason() {
    let s = three_stages();
    let refused = |args: &[&str], says: &str| {
        let run = promote(&s, args);
        assert_eq!(run.code, 1, "{}", run.transcript());
        assert!(run.stderr.contains(says), "{}", run.transcript());
    };
    refused(
        &["permits", "--to", "dev", "--yes"],
        "is the first environment",
    );
    refused(
        &["permit", "--to", "test", "--yes"],
        "did you mean `permits`?",
    );
    refused(
        &["permits", "--to", "staging", "--yes"],
        "its environments: dev, test, prod",
    );
    // Nothing is live in dev yet.
    refused(
        &["permits", "--to", "test", "--yes"],
        "not live in `dev`: infra:apps/dev/permits/.druppie-lock.yaml does not exist",
    );
    assert_eq!(branches(&s), "");
}

#[test]
fn promote_takes_only_a_lock_druppie_wrote_and_only_under_the_same_rules() {
    let s = three_stages();
    assert_eq!(s.apply().code, 0);
    // A spec commit on an unmerged branch (an unreviewed spec change).
    let spec = s.f.path();
    git(spec, &["checkout", "-q", "-b", "unreviewed"]);
    release(&s, 9);
    let unreviewed = git(spec, &["rev-parse", "HEAD"]).trim().to_owned();
    git(spec, &["checkout", "-q", "main"]);
    // A person with push access to the infra repo points dev's lock at
    // it, or at a branch name: no lock druppie wrote says so.
    let lock = "apps/dev/permits/.druppie-lock.yaml";
    let point = |to: &str| {
        let work = work(&s);
        let text = std::fs::read_to_string(work.join(lock)).unwrap();
        let at = text.find("spec_commit: ").expect("a spec commit");
        let end = at + text[at..].find('\n').unwrap();
        std::fs::write(
            work.join(lock),
            format!("{}spec_commit: \"{to}\"{}", &text[..at], &text[end..]),
        )
        .unwrap();
        git_as(&work, &[], &[], &["commit", "-qam", "point the lock"]);
        git(&work, &["push", "-q", "origin", "main"]);
    };
    let refused = |says: &str| {
        let run = promote(&s, &["permits", "--to", "test", "--yes"]);
        assert_eq!(run.code, 1, "{}", run.transcript());
        assert!(run.stderr.contains(says), "{}", run.transcript());
    };
    let by_hand = "infra:apps/dev/permits/.druppie-lock.yaml is not a lock druppie wrote";
    point(&unreviewed);
    refused(by_hand);
    point("unreviewed");
    refused(by_hand);
    assert_eq!(branches(&s), "", "nothing proposed");
    // The person reverts the edits: druppie's lock is live again. Then
    // the platform changes (prod gets approvers): what dev runs was
    // rendered under the old rules.
    let work = work(&s);
    git_as(&work, &[], &[], &["revert", "--no-edit", "HEAD", "HEAD~1"]);
    git(&work, &["push", "-q", "origin", "main"]);
    edit(
        spec,
        "spec/platform.yaml",
        "    approvers: []",
        "    approvers: [platform-team]",
    );
    git(spec, &["commit", "-qam", "prod needs the platform team"]);
    refused("the spec's platform changed since spec commit");
    assert!(!branches(&s).contains("druppie/test/"));
}

#[test]
fn a_committer_name_cannot_drive_the_terminal_of_apply_status_or_audit() {
    let s = three_stages();
    assert_eq!(s.apply().code, 0);
    assert_eq!(s.apply().code, 0);
    assert_eq!(branches(&s), "druppie/test/permits\n");
    let work = work(&s);
    let name = "Mallory\x1b[2J\x1b[31mFAKE";
    git_as(
        &work,
        &[],
        &[("GIT_COMMITTER_NAME", name)],
        &[
            "merge",
            "-q",
            "--no-ff",
            "-m",
            "Merge",
            "origin/druppie/test/permits",
        ],
    );
    git(&work, &["push", "-q", "origin", "main"]);
    let applied = s.apply();
    assert_eq!(applied.code, 0, "{}", applied.transcript());
    let config = s.config.to_str().unwrap();
    let forge = s.forge();
    let status = s.f.run(&[
        "--config",
        config,
        "status",
        "--repos",
        forge.to_str().unwrap(),
        "--plan",
        "permits",
    ]);
    let audit = s.audit_run(&[]);
    for (what, out) in [
        ("apply", applied.stdout),
        ("status", status.stdout),
        ("audit", audit.stdout),
    ] {
        assert!(out.contains("Mallory"), "{what}: {out}");
        assert!(!out.contains('\x1b'), "{what} prints the escape: {out:?}");
        assert!(out.contains("Mallory\\u{1b}[2J"), "{what}: {out}");
    }
}
