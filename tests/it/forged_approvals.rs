//! Attacks on what druppie trusts, each against the real binary, real git
//! and real ssh-keygen keys: commits and events posing as druppie's, and
//! merges posing as an approver's. druppie trusts only what its own key
//! signed, and in plain git an approval is a merge signed by a key the
//! spec lists for an approver.

use std::path::Path;
use std::process::Command;

use crate::apply::{Setup, setup};
use crate::support::git;

/// git as someone else: `config` (`key=value`) and `env` added.
pub(crate) fn git_as(dir: &Path, config: &[String], env: &[(&str, &str)], args: &[&str]) -> String {
    let mut cmd = Command::new("git");
    cmd.args([
        "-c",
        "user.name=Person",
        "-c",
        "user.email=person@example.org",
        "-c",
        "commit.gpgsign=false",
    ]);
    for c in config {
        cmd.args(["-c", c]);
    }
    let out = cmd
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn work(s: &Setup) -> std::path::PathBuf {
    let work = s.tmp.path().join("work");
    git(&work, &["fetch", "-q", "origin"]);
    git(&work, &["reset", "-q", "--hard", "origin/main"]);
    work
}

/// Merges the prod proposal into main as `config`/`env` say, pushes,
/// and returns the merge commit.
pub(crate) fn merge(s: &Setup, config: &[String], env: &[(&str, &str)]) -> String {
    let work = work(s);
    git_as(
        &work,
        config,
        env,
        &[
            "merge",
            "-q",
            "--no-ff",
            "-m",
            "Merge",
            "origin/druppie/prod/permits",
        ],
    );
    git(&work, &["push", "-q", "origin", "main"]);
    git(&work, &["rev-parse", "HEAD"]).trim().to_owned()
}

/// git config that signs with the SSH key at `key`.
pub(crate) fn signing(key: &Path) -> Vec<String> {
    vec![
        "gpg.format=ssh".to_owned(),
        format!("user.signingkey={}", key.display()),
        "commit.gpgsign=true".to_owned(),
    ]
}

fn keygen(s: &Setup, name: &str) -> std::path::PathBuf {
    let key = s.tmp.path().join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen");
    assert!(out.status.success());
    key
}

/// `druppie audit --json` (not verified): (kind, repo, env, commit, actor).
pub(crate) fn events(s: &Setup) -> Vec<(String, String, String, String, String)> {
    let run = s.audit_run(&["--json"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let f = |k: &str| e[k].as_str().unwrap_or("").to_owned();
            (f("kind"), f("repo"), f("env"), f("commit"), f("actor"))
        })
        .collect()
}

pub(crate) fn kinds(s: &Setup) -> Vec<String> {
    events(s).into_iter().map(|e| e.0).collect()
}

pub(crate) fn fsck_all(s: &Setup) {
    for repo in ["infra.git", "permits-app.git"] {
        git(&s.forge().join(repo), &["fsck", "--strict"]);
    }
    git(s.f.path(), &["fsck", "--strict"]);
}

#[test]
fn a_self_made_druppie_branch_never_becomes_a_druppie_event() {
    let s = setup("platform-team");
    assert_eq!(s.apply().code, 0);
    // A person makes a branch that looks like a proposal: druppie's name,
    // druppie's email, druppie's trailers; unsigned. Then merges it.
    let work = work(&s);
    git(
        &work,
        &["checkout", "-q", "-b", "druppie/prod/permits-fake"],
    );
    std::fs::write(work.join("evil.yaml"), "kind: Evil\n").unwrap();
    git(&work, &["add", "-A"]);
    let druppie = [
        ("GIT_COMMITTER_NAME", "druppie"),
        ("GIT_COMMITTER_EMAIL", "druppie@example.org"),
        ("GIT_AUTHOR_NAME", "druppie"),
        ("GIT_AUTHOR_EMAIL", "druppie@example.org"),
    ];
    git_as(
        &work,
        &[],
        &druppie,
        &[
            "commit",
            "-q",
            "-m",
            "druppie: permits in prod\n\nDruppie-Plan: permits\nDruppie-Environment: prod\nDruppie-Trigger: cli",
        ],
    );
    let fake = git(&work, &["rev-parse", "HEAD"]).trim().to_owned();
    git(
        &work,
        &["push", "-q", "origin", "druppie/prod/permits-fake"],
    );
    git(&work, &["checkout", "-q", "main"]);
    git(
        &work,
        &[
            "merge",
            "-q",
            "--no-ff",
            "-m",
            "Merge",
            "druppie/prod/permits-fake",
        ],
    );
    git(&work, &["push", "-q", "origin", "main"]);

    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stderr.contains(&format!(
            "warning: infra: ignored commit {fake} on druppie/prod/permits-fake: it looks like druppie's but is not signed by druppie's key"
        )),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr.matches(&fake).count(),
        1,
        "reported once: {}",
        run.stderr
    );
    for e in events(&s) {
        assert_ne!(e.3, fake, "no event about the fake proposal: {e:?}");
        assert!(!["approved", "violation"].contains(&e.0.as_str()), "{e:?}");
    }
    // main moved, but druppie's prod proposal still holds the same
    // change: left alone, and nothing about the fake one.
    assert_eq!(kinds(&s), ["applied", "proposed", "applied"]);
    assert_eq!(s.audit_run(&["--verify"]).code, 0);
    fsck_all(&s);
}

#[test]
fn an_unsigned_commit_with_druppies_email_is_not_recorded_as_druppies() {
    let s = setup("platform-team");
    assert_eq!(s.apply().code, 0);
    let work = work(&s);
    std::fs::write(work.join("README.md"), "# infra, edited\n").unwrap();
    git(&work, &["add", "-A"]);
    git_as(
        &work,
        &[],
        &[
            ("GIT_COMMITTER_NAME", "druppie"),
            ("GIT_COMMITTER_EMAIL", "druppie@example.org"),
        ],
        &["commit", "-q", "-m", "druppie: permits in dev"],
    );
    let posing = git(&work, &["rev-parse", "HEAD"]).trim().to_owned();
    git(&work, &["push", "-q", "origin", "main"]);
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        !run.stdout.contains("pushed by an earlier run"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains(&format!(
            "warning: infra: ignored commit {posing} on main: it looks like druppie's but is not signed by druppie's key"
        )),
        "{}",
        run.stderr
    );
    assert!(events(&s).iter().all(|e| e.3 != posing));
    // The trail still covers everything druppie signed.
    assert_eq!(s.audit_run(&["--verify"]).code, 0);
    fsck_all(&s);
}

/// Appends an unsigned commit holding `event_yaml` to the trail, as
/// someone with push access to the spec repo could.
fn forge_event(s: &Setup, event_yaml: &str) -> String {
    let spec = s.f.path();
    let blob_file = s.tmp.path().join("event.yaml");
    std::fs::write(&blob_file, event_yaml).unwrap();
    let blob = git(spec, &["hash-object", "-w", blob_file.to_str().unwrap()]);
    let entry = format!("100644 blob {}\tevent.yaml\n", blob.trim());
    let mut mktree = Command::new("git")
        .args(["mktree"])
        .current_dir(spec)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    mktree
        .stdin
        .take()
        .unwrap()
        .write_all(entry.as_bytes())
        .unwrap();
    let tree = String::from_utf8(mktree.wait_with_output().unwrap().stdout).unwrap();
    let commit = git_as(
        spec,
        &[],
        &[
            ("GIT_COMMITTER_NAME", "druppie"),
            ("GIT_COMMITTER_EMAIL", "druppie@example.org"),
        ],
        &[
            "commit-tree",
            tree.trim(),
            "-p",
            "druppie-audit",
            "-m",
            "approved permits in prod (infra)",
        ],
    );
    git(
        spec,
        &["update-ref", "refs/heads/druppie-audit", commit.trim()],
    );
    commit.trim().to_owned()
}

#[test]
fn a_forged_approved_event_does_not_stop_the_real_verdict() {
    let s = setup("platform-team");
    assert_eq!(s.apply().code, 0);
    // Merged by someone who is not an approver; then an unsigned
    // `approved` event for that merge is put on the trail.
    let merged = merge(&s, &[], &[]);
    let fake = forge_event(
        &s,
        &format!(
            "kind: approved\ntime: \"2026-01-01T00:00:00Z\"\nactor: \"platform-team\"\nplans: [\"permits\"]\nenv: \"prod\"\nrepo: \"infra\"\ncommit: \"{merged}\"\nbranch: \"druppie/prod/permits\"\n"
        ),
    );
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout.contains(
            "infra: druppie/prod/permits: VIOLATION: merged by Person <person@example.org>"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains(&format!(
            "warning: druppie-audit commit {fake}: not signed by druppie's key; ignored"
        )),
        "{}",
        run.stderr
    );
    let violations: Vec<_> = events(&s)
        .into_iter()
        .filter(|e| e.0 == "violation" && e.3 == merged)
        .collect();
    assert_eq!(violations.len(), 1, "{:?}", events(&s));
    // Verification names the forged event.
    let verify = s.audit_run(&["--verify"]);
    assert_eq!(verify.code, 1, "{}", verify.transcript());
    assert!(
        verify.stderr.contains("1 of 6 events do not verify"),
        "{}",
        verify.transcript()
    );
    fsck_all(&s);
}

#[test]
fn a_merge_committed_under_an_approvers_name_is_a_violation() {
    for (name, email) in [
        ("platform-team", "person@example.org"),
        ("Person", "platform-team@evil.example"),
        ("platform-team", "platform-team@example.org"),
    ] {
        let s = setup("platform-team");
        assert_eq!(s.apply().code, 0);
        merge(
            &s,
            &[],
            &[("GIT_COMMITTER_NAME", name), ("GIT_COMMITTER_EMAIL", email)],
        );
        let run = s.apply();
        assert_eq!(run.code, 0, "{}", run.transcript());
        assert!(
            run.stdout.contains(&format!(
                "VIOLATION: merged by {name} <{email}>: the merge commit is not signed"
            )),
            "{}",
            run.stdout
        );
        assert_eq!(
            kinds(&s),
            ["applied", "proposed", "applied", "violation", "applied"]
        );
    }
}

#[test]
fn a_merge_signed_by_a_key_the_spec_does_not_list_is_a_violation() {
    let s = setup("person@example.org");
    assert_eq!(s.apply().code, 0);
    let stranger = keygen(&s, "stranger_ed25519");
    merge(&s, &signing(&stranger), &[]);
    let run = s.apply();
    assert!(
        run.stdout.contains(
            "VIOLATION: merged by Person <person@example.org>: the merge commit is not signed by a key that spec/approvers.allowed_signers accepts for an approver (person@example.org)"
        ),
        "{}",
        run.transcript()
    );
    // The same merge signed with the listed key approves.
    let s = setup("person@example.org");
    assert_eq!(s.apply().code, 0);
    merge(&s, &signing(&s.tmp.path().join("person_ed25519")), &[]);
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
fn an_approver_key_the_spec_lets_expire_or_limits_to_files_does_not_approve() {
    for option in ["valid-before=\"20200101\"", "namespaces=\"file\""] {
        let s = setup("platform-team");
        let person = s.tmp.path().join("person_ed25519");
        let public = std::fs::read_to_string(person.with_extension("pub")).unwrap();
        // The person is `platform-team` only under the option.
        std::fs::write(
            s.f.path().join("spec/approvers.allowed_signers"),
            format!("person@example.org,platform-team {option} {public}"),
        )
        .unwrap();
        git(s.f.path(), &["commit", "-qam", "approvers"]);
        assert_eq!(s.apply().code, 0);
        merge(&s, &signing(&person), &[]);
        let run = s.apply();
        assert!(
            run.stdout.contains(
                "VIOLATION: merged by Person <person@example.org>: the merge commit is not signed by a key that spec/approvers.allowed_signers accepts for an approver (platform-team)"
            ),
            "{option}: {}",
            run.transcript()
        );
    }
}

#[test]
fn a_fast_forward_cannot_carry_an_approval() {
    let s = setup("platform-team");
    assert_eq!(s.apply().code, 0);
    let work = work(&s);
    git(
        &work,
        &["merge", "-q", "--ff-only", "origin/druppie/prod/permits"],
    );
    git(&work, &["push", "-q", "origin", "main"]);
    let run = s.apply();
    assert!(
        run.stdout.contains(
            "VIOLATION: merged by a fast-forward (no merge commit): the default branch was fast-forwarded to the proposal"
        ),
        "{}",
        run.transcript()
    );
    assert_eq!(
        kinds(&s),
        ["applied", "proposed", "applied", "violation", "applied"]
    );
    fsck_all(&s);
}

#[test]
fn a_malformed_approvers_file_is_a_located_error() {
    let s = setup("platform-team");
    std::fs::write(
        s.f.path().join("spec/approvers.allowed_signers"),
        "# approvers\nplatform-team ssh-ed25519 AAAA-not-a-key\n",
    )
    .unwrap();
    let run = s.f.run(&["validate"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr.contains("spec/approvers.allowed_signers:2:1"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("no readable public key"),
        "{}",
        run.stderr
    );
}

#[test]
fn audit_verify_refuses_an_expired_or_other_namespace_key_as_git_does() {
    let s = setup("platform-team");
    assert_eq!(s.apply().code, 0);
    let allowed = s.tmp.path().join("allowed_signers");
    let line = std::fs::read_to_string(&allowed).unwrap();
    let (principal, key) = line.split_once(' ').unwrap();
    for option in [
        "valid-before=\"20200101\"",
        "namespaces=\"file\"",
        "cert-authority",
    ] {
        std::fs::write(&allowed, format!("{principal} {option} {key}")).unwrap();
        let run = s.audit_run(&["--verify"]);
        assert_eq!(run.code, 1, "{option}: {}", run.transcript());
        assert!(
            run.stderr.contains("3 of 3 events do not verify"),
            "{option}: {}",
            run.stderr
        );
        // And git agrees on the trail's newest event.
        let out = Command::new("git")
            .args(["-c", "gpg.format=ssh", "-c"])
            .arg(format!("gpg.ssh.allowedSignersFile={}", allowed.display()))
            .args(["verify-commit", "druppie-audit"])
            .current_dir(s.f.path())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{option}");
    }
}

#[test]
fn a_trail_cut_short_fails_verification_naming_the_missing_events() {
    let s = setup("person@example.org");
    assert_eq!(s.apply().code, 0);
    s.merge_proposal_signed("Approve");
    assert_eq!(s.apply().code, 0);
    assert_eq!(s.audit_run(&["--verify"]).code, 0);
    // applied dev, proposed prod, applied app, approved prod, applied
    // prod: cut the last three.
    git(
        s.f.path(),
        &["update-ref", "refs/heads/druppie-audit", "druppie-audit~3"],
    );
    let run = s.audit_run(&["--verify"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    let app = git(&s.forge().join("permits-app.git"), &["rev-parse", "main"]);
    let missing: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("missing event: "))
        .collect();
    assert_eq!(
        missing,
        [format!(
            "missing event: permits-app {}: druppie signed this commit and the trail does not record it",
            app.trim()
        )],
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("error: the trail lacks the events of 1 commit(s) druppie signed"),
        "{}",
        run.stderr
    );
}
