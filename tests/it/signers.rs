//! Allowed-signers files mean to druppie what they mean to git: every
//! option of ssh-keygen's ALLOWED SIGNERS format, run through druppie's
//! check and through `git verify-commit` (which runs `ssh-keygen -Y
//! find-principals` and `-Y verify`), gives the same verdict.

use std::path::{Path, PathBuf};
use std::process::Command;

use druppie::git::sign::{AllowedSigners, Verdict};
use druppie::git::{ObjectId, Repo};

use crate::support::git;

fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen");
    assert!(out.status.success());
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    (key, public.trim().to_owned())
}

/// A commit by alice@x.org at 2026-06-01T10:00:00Z, signed with `key`
/// by git itself (or unsigned).
fn commit(work: &Path, key: Option<&Path>, n: usize) -> String {
    std::fs::write(work.join("f"), format!("{n}\n")).unwrap();
    git(work, &["add", "f"]);
    let mut args = vec![
        "-c".to_owned(),
        "user.name=Alice".to_owned(),
        "-c".to_owned(),
        "user.email=alice@x.org".to_owned(),
        "-c".to_owned(),
        "gpg.format=ssh".to_owned(),
    ];
    if let Some(key) = key {
        args.extend([
            "-c".to_owned(),
            format!("user.signingkey={}", key.display()),
        ]);
    }
    args.extend([
        "commit".to_owned(),
        "-q".to_owned(),
        "-m".to_owned(),
        format!("c{n}"),
    ]);
    if key.is_some() {
        args.push("-S".to_owned());
    }
    let out = Command::new("git")
        .args(&args)
        .current_dir(work)
        .env("GIT_COMMITTER_DATE", "2026-06-01T10:00:00Z")
        .env("GIT_AUTHOR_DATE", "2026-06-01T10:00:00Z")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    git(work, &["rev-parse", "HEAD"]).trim().to_owned()
}

/// `git verify-commit` with `file` as the allowed signers, in a time
/// zone far from UTC (git hands ssh-keygen local times).
fn git_says(work: &Path, file: &Path, commit: &str) -> bool {
    Command::new("git")
        .args(["-c", "gpg.format=ssh", "-c"])
        .arg(format!("gpg.ssh.allowedSignersFile={}", file.display()))
        .args(["verify-commit", commit])
        .current_dir(work)
        .env("TZ", "Pacific/Auckland")
        .output()
        .expect("git verify-commit")
        .status
        .success()
}

#[test]
fn every_allowed_signers_option_gets_the_verdict_git_verify_commit_gives() {
    let tmp = tempfile::tempdir().unwrap();
    let (alice, key) = keygen(tmp.path(), "alice");
    let (_, other) = keygen(tmp.path(), "other");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q"]);
    let signed = commit(&work, Some(&alice), 1);
    let unsigned = commit(&work, None, 2);
    let repo = Repo::open(&work).unwrap().unwrap();
    // (what the file says, git's verdict, druppie's word)
    let table: Vec<(String, bool, &str)> = vec![
        (format!("alice@x.org {key}"), true, "verified"),
        (
            format!("# a comment\n\n   alice@x.org {key}\n"),
            true,
            "verified",
        ),
        (format!("alice@x.org {other}"), false, "unknown-key"),
        (
            format!("alice@x.org valid-after=\"20260101\" {key}"),
            true,
            "verified",
        ),
        (
            format!("alice@x.org valid-after=\"20270101\" {key}"),
            false,
            "refused",
        ),
        (
            format!("alice@x.org valid-after=\"20260601095900Z\" {key}"),
            true,
            "verified",
        ),
        (
            format!("alice@x.org valid-after=\"20260601100100Z\" {key}"),
            false,
            "refused",
        ),
        (
            format!("alice@x.org valid-before=\"20250101\" {key}"),
            false,
            "refused",
        ),
        (
            format!("alice@x.org valid-before=\"20300101\" {key}"),
            true,
            "verified",
        ),
        (
            format!("alice@x.org valid-before=\"20260601095900Z\" {key}"),
            false,
            "refused",
        ),
        (
            format!("alice@x.org namespaces=\"git\" {key}"),
            true,
            "verified",
        ),
        (
            format!("alice@x.org namespaces=\"file\" {key}"),
            false,
            "refused",
        ),
        (
            format!("alice@x.org namespaces=\"file,git\" {key}"),
            true,
            "verified",
        ),
        (
            format!("alice@x.org namespaces=\"g*\" {key}"),
            true,
            "verified",
        ),
        (
            format!("alice@x.org cert-authority {key}"),
            false,
            "unknown-key",
        ),
        (
            format!("alice@x.org cert-authority,namespaces=\"git\" {key}"),
            false,
            "unknown-key",
        ),
        (
            format!("alice@x.org NAMESPACES=\"git\",Valid-Before=\"20300101\" {key}"),
            true,
            "verified",
        ),
        (format!("bob@x.org,alice@x.org {key}"), true, "verified"),
        (format!("\"alice@x.org\" {key}"), true, "verified"),
        (format!("*@x.org {key}"), true, "verified"),
        (format!("*@x.org,!alice@x.org {key}"), true, "not-committer"),
        (format!("!alice@x.org,*@x.org {key}"), true, "not-committer"),
        (format!("alice@*.org {key}"), true, "verified"),
        (format!("a?ice@x.org {key}"), true, "verified"),
        (format!("bob@x.org {key}"), true, "not-committer"),
        (
            format!("alice@x.org valid-before=\"20250101\" {key}\nalice@x.org {key}"),
            true,
            "verified",
        ),
        (
            format!("bob@x.org {key}\nalice@x.org namespaces=\"file\" {key}"),
            true,
            "not-committer",
        ),
    ];
    let mut disagreements = Vec::new();
    for (i, (text, git_good, word)) in table.iter().enumerate() {
        let file = tmp.path().join(format!("allowed_{i}"));
        std::fs::write(&file, format!("{text}\n")).unwrap();
        let allowed = AllowedSigners::from_file(&file).expect("a well-formed file");
        let verdict = repo
            .check_signature(ObjectId::from_hex(signed.as_bytes()).unwrap(), &allowed)
            .unwrap();
        let git = git_says(&work, &file, &signed);
        // git's "good" is druppie's verified or (a good signature by
        // someone other than the committer) not-committer.
        let druppie_good = matches!(
            verdict,
            Verdict::Verified { .. } | Verdict::NotCommitter { .. }
        );
        if git != *git_good || druppie_good != git || verdict.word() != *word {
            disagreements.push(format!(
                "{text:?}: git {git} (expected {git_good}), druppie {verdict:?} (expected {word})"
            ));
        }
        // An unsigned commit is never good, for either.
        let plain = repo
            .check_signature(ObjectId::from_hex(unsigned.as_bytes()).unwrap(), &allowed)
            .unwrap();
        assert_eq!(plain, Verdict::Unsigned);
        assert!(!git_says(&work, &file, &unsigned));
    }
    assert!(disagreements.is_empty(), "{disagreements:#?}");
}

#[test]
fn a_malformed_allowed_signers_line_is_refused_with_its_line() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, key) = keygen(tmp.path(), "alice");
    let file = tmp.path().join("allowed");
    std::fs::write(
        &file,
        format!("alice@x.org {key}\nbob@x.org expiry=\"20300101\" {key}\n"),
    )
    .unwrap();
    let err = AllowedSigners::from_file(&file).unwrap_err();
    assert_eq!(err.line, 2);
    assert!(
        err.to_string()
            .starts_with(&format!("{}:2: unknown option `expiry=", file.display())),
        "{err}"
    );
}
