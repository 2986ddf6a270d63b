//! Writing commits with the library: signed commits that the git CLI
//! verifies, a clean `git fsck --strict`, trailers git reads, and branch
//! moves that lose no concurrent write.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use druppie::git::Repo;
use druppie::git::sign::Signer;
use druppie::git::write::{Identity, NewCommit, message};

fn run(dir: &Path, program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"))
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A fresh ed25519 key made by ssh-keygen, readable by its owner only.
fn keygen(dir: &Path) -> PathBuf {
    let key = dir.join("druppie_ed25519");
    ok(&run(
        dir,
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "druppie",
            "-f",
            key.to_str().unwrap(),
        ],
    ));
    key
}

fn druppie() -> Identity {
    Identity {
        name: "druppie".into(),
        email: "druppie@example.org".into(),
    }
}

#[test]
fn signed_commits_verify_with_git_and_the_repo_stays_clean() {
    let tmp = tempfile::tempdir().expect("tmp");
    let bare = tmp.path().join("infra.git");
    ok(&run(
        tmp.path(),
        "git",
        &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
    ));
    let signer = Signer::load(&keygen(tmp.path())).expect("key");
    let repo = Repo::open(&bare).expect("open").expect("a repository");
    let who = druppie();
    let changes = vec![
        (
            "apps/dev/permits/app/deployment.yaml".to_owned(),
            Some(b"replicas: 1\n".to_vec()),
        ),
        ("README.md".to_owned(), Some(b"# infra\n".to_vec())),
    ];
    let first = repo
        .write_commit(
            &NewCommit {
                base: None,
                replace_tree: false,
                changes: &changes,
                message: message(
                    "Render permits in dev",
                    "2 files created.",
                    &[
                        ("Druppie-Plan", "permits"),
                        ("Druppie-Environment", "dev"),
                        (
                            "Druppie-Spec-Commit",
                            "0123456789abcdef0123456789abcdef01234567",
                        ),
                    ],
                ),
                author: &who,
                time: (1_763_700_000, 3600),
            },
            Some(&signer),
        )
        .expect("first commit")
        .commit;
    repo.set_branch("main", None, first, "druppie: render")
        .expect("create main");
    let changes = vec![
        (
            "apps/dev/permits/app/deployment.yaml".to_owned(),
            Some(b"replicas: 2\n".to_vec()),
        ),
        ("README.md".to_owned(), None),
    ];
    let second = repo
        .write_commit(
            &NewCommit {
                base: Some(first),
                replace_tree: false,
                changes: &changes,
                message: message("Scale permits in dev", "", &[("Druppie-Plan", "permits")]),
                author: &who,
                time: (1_763_700_060, 3600),
            },
            Some(&signer),
        )
        .expect("second commit")
        .commit;
    repo.set_branch("main", Some(first), second, "druppie: render")
        .expect("move main");

    let allowed = tmp.path().join("allowed_signers");
    std::fs::write(
        &allowed,
        format!("druppie@example.org {}\n", signer.public_key()),
    )
    .unwrap();
    for commit in [first.to_string(), second.to_string()] {
        let out = run(
            &bare,
            "git",
            &[
                "-c",
                "gpg.format=ssh",
                "-c",
                &format!("gpg.ssh.allowedSignersFile={}", allowed.display()),
                "verify-commit",
                &commit,
            ],
        );
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{said}");
        assert!(
            said.contains("Good \"git\" signature for druppie@example.org"),
            "{said}"
        );
    }
    ok(&run(&bare, "git", &["fsck", "--strict", "--no-dangling"]));
    let tree = ok(&run(
        &bare,
        "git",
        &["ls-tree", "-r", "--name-only", "main"],
    ));
    assert_eq!(tree, "apps/dev/permits/app/deployment.yaml\n");
    let content = ok(&run(
        &bare,
        "git",
        &["show", "main:apps/dev/permits/app/deployment.yaml"],
    ));
    assert_eq!(content, "replicas: 2\n");
    let plan = ok(&run(
        &bare,
        "git",
        &[
            "log",
            "-1",
            "--format=%(trailers:key=Druppie-Spec-Commit,valueonly)",
            &first.to_string(),
        ],
    ));
    assert_eq!(plan.trim(), "0123456789abcdef0123456789abcdef01234567");

    // A stale expectation loses nothing: the branch stays where it is.
    assert!(
        repo.set_branch("main", Some(first), first, "stale")
            .is_err()
    );
    assert!(repo.set_branch("main", None, first, "exists").is_err());
    let head = ok(&run(&bare, "git", &["rev-parse", "main"]));
    assert_eq!(head.trim(), second.to_string());
}

#[test]
fn a_trailer_value_cannot_smuggle_in_an_approval() {
    let tmp = tempfile::tempdir().expect("tmp");
    let text = message(
        "Render",
        "",
        &[("Druppie-Plan", "permits\nApproved-by: mallory")],
    );
    let file = tmp.path().join("msg");
    std::fs::write(&file, &text).unwrap();
    let parsed = ok(&run(
        tmp.path(),
        "git",
        &["interpret-trailers", "--parse", file.to_str().unwrap()],
    ));
    assert_eq!(parsed, "Druppie-Plan: permits Approved-by: mallory\n");
}

#[test]
fn unusable_keys_are_refused_with_the_path_and_never_the_key() {
    let tmp = tempfile::tempdir().expect("tmp");
    let missing = tmp.path().join("nope");
    let err = Signer::load(&missing).expect_err("missing key").to_string();
    assert!(
        err.contains("nope") && err.contains("cannot read it"),
        "{err}"
    );

    let key = keygen(tmp.path());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Signer::load(&key).expect_err("open key").to_string();
        assert!(
            err.contains("too open") && err.contains("druppie_ed25519"),
            "{err}"
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let garbage = tmp.path().join("garbage");
    std::fs::write(&garbage, "-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&garbage, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let err = Signer::load(&garbage).expect_err("garbage").to_string();
    assert!(
        err.contains("not an OpenSSH private key") && !err.contains("not a key"),
        "{err}"
    );
    assert!(Signer::load(&key).is_ok());
}

#[test]
fn signatures_are_checked_in_rust_like_git_and_against_the_committer() {
    use druppie::git::sign::{AllowedSigners, Verdict};
    let tmp = tempfile::tempdir().expect("tmp");
    let bare = tmp.path().join("spec.git");
    ok(&run(
        tmp.path(),
        "git",
        &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
    ));
    let signer = Signer::load(&keygen(tmp.path())).expect("key");
    let other = tempfile::tempdir().expect("tmp");
    let stranger = Signer::load(&keygen(other.path())).expect("key");
    let repo = Repo::open(&bare).expect("open").expect("a repository");
    let who = druppie();
    let changes = vec![("a.txt".to_owned(), Some(b"a\n".to_vec()))];
    let commit = |signer: Option<&Signer>| {
        repo.write_commit(
            &NewCommit {
                base: None,
                replace_tree: false,
                changes: &changes,
                message: message("Event", "", &[]),
                author: &who,
                time: (1_763_700_000, 0),
            },
            signer,
        )
        .expect("commit")
        .commit
    };
    let signed = commit(Some(&signer));
    let allowed = |lines: &str| AllowedSigners::parse(lines, "allowed_signers").expect("parse");
    let mine = allowed(&format!(
        "# druppie\ndruppie@example.org namespaces=\"git\" {}\n",
        signer.public_key()
    ));
    assert_eq!(
        repo.check_signature(signed, &mine).unwrap(),
        Verdict::Verified {
            principal: "druppie@example.org".into()
        }
    );
    assert_eq!(
        repo.check_signature(commit(None), &mine).unwrap(),
        Verdict::Unsigned
    );
    let strangers = allowed(&format!("druppie@example.org {}\n", stranger.public_key()));
    assert_eq!(
        repo.check_signature(signed, &strangers).unwrap(),
        Verdict::UnknownKey
    );
    let someone = allowed(&format!("ops@example.org {}\n", signer.public_key()));
    assert!(matches!(
        repo.check_signature(signed, &someone).unwrap(),
        Verdict::NotCommitter { .. }
    ));
    // The same signature on an altered commit does not verify.
    let raw = ok(&run(
        &bare,
        "git",
        &["cat-file", "commit", &signed.to_string()],
    ));
    let forged = tmp.path().join("forged");
    std::fs::write(&forged, raw.replace("Event", "Approved")).unwrap();
    let id = ok(&run(
        &bare,
        "git",
        &[
            "hash-object",
            "-t",
            "commit",
            "-w",
            forged.to_str().unwrap(),
        ],
    ));
    let id = druppie::git::ObjectId::from_hex(id.trim().as_bytes()).unwrap();
    assert!(matches!(
        repo.check_signature(id, &mine).unwrap(),
        Verdict::BadSignature(_)
    ));
    let err = AllowedSigners::parse("ops@example.org\n", "allowed_signers").unwrap_err();
    assert_eq!(
        err.to_string(),
        "allowed_signers:1: a line needs principals and a public key"
    );
}
