//! `druppie apply` with the plain-git forge, end to end: a directory of
//! bare repos, signed commits for deploy environments and new project
//! repos, proposal branches for propose environments, nothing new on a
//! second run.

use std::path::PathBuf;
use std::process::Command;

use crate::support::{Fixture, Run, git};

struct Setup {
    tmp: tempfile::TempDir,
    f: Fixture,
    config: PathBuf,
}

impl Setup {
    fn forge(&self) -> PathBuf {
        self.tmp.path().join("forge")
    }

    fn apply(&self) -> Run {
        self.f
            .run(&["--config", self.config.to_str().unwrap(), "apply", "--yes"])
    }

    /// `git verify-commit` with the allowed-signers file druppie's key is in.
    fn verify(&self, repo: &str, rev: &str) {
        let allowed = self.tmp.path().join("allowed_signers");
        let out = Command::new("git")
            .args(["-c", "gpg.format=ssh"])
            .arg("-c")
            .arg(format!("gpg.ssh.allowedSignersFile={}", allowed.display()))
            .args(["verify-commit", rev])
            .current_dir(self.forge().join(format!("{repo}.git")))
            .output()
            .expect("git verify-commit");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{repo} {rev}: {said}");
        assert!(
            said.contains("Good \"git\" signature for druppie@example.org"),
            "{said}"
        );
    }
}

/// The valid fixture with a project template, a forge holding an infra
/// repo with one commit, a signing key, and a config naming them.
fn setup() -> Setup {
    let tmp = tempfile::tempdir().expect("tmp");
    let f = Fixture::valid().with(
        "templates/webapp-python/project/README.md.j2",
        "# {{ repo }}\n\nReplicas: {{ replicas }}\n",
    );
    let forge = tmp.path().join("forge");
    std::fs::create_dir_all(&forge).unwrap();
    git(&forge, &["init", "-q", "--bare", "infra.git"]);
    let work = tmp.path().join("work");
    git(
        tmp.path(),
        &[
            "clone",
            "-q",
            forge.join("infra.git").to_str().unwrap(),
            "work",
        ],
    );
    std::fs::write(work.join("README.md"), "# infra\n").unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-qm", "start"]);
    git(&work, &["push", "-q", "origin", "main"]);
    let key = tmp.path().join("druppie_ed25519");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "druppie", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen");
    assert!(out.status.success());
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    std::fs::write(
        tmp.path().join("allowed_signers"),
        format!("druppie@example.org {public}"),
    )
    .unwrap();
    let config = tmp.path().join("druppie.toml");
    std::fs::write(
        &config,
        format!(
            "[forge]\nkind = \"git\"\nbase = \"{}\"\n\n[repos]\ncache_dir = \"{}\"\n\n[signing]\nkey = \"{}\"\nname = \"druppie\"\nemail = \"druppie@example.org\"\n",
            forge.display(),
            tmp.path().join("cache").display(),
            key.display()
        ),
    )
    .unwrap();
    Setup { tmp, f, config }
}

#[test]
fn apply_commits_deploy_environments_and_proposes_the_rest() {
    let s = setup();
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout.contains("infra (dev): committed "),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("infra (prod): proposed on druppie/permits-prod"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("permits-app: committed "),
        "{}",
        run.stdout
    );

    let infra = s.forge().join("infra.git");
    let main = git(&infra, &["ls-tree", "-r", "--name-only", "main"]);
    assert!(
        main.contains("README.md\napps/dev/permits/.druppie-lock.yaml\n"),
        "{main}"
    );
    assert!(
        !main.contains("apps/prod/"),
        "prod waits for approval: {main}"
    );
    let proposal = git(
        &infra,
        &["ls-tree", "-r", "--name-only", "druppie/permits-prod"],
    );
    assert!(
        proposal.contains("apps/prod/permits/app/deployment.yaml"),
        "{proposal}"
    );
    let app = s.forge().join("permits-app.git");
    assert_eq!(
        git(&app, &["show", "main:README.md"]),
        "# permits-app\n\nReplicas: 1\n"
    );
    let trailers = git(&infra, &["log", "-1", "--format=%(trailers)", "main"]);
    assert!(
        trailers
            .contains("Druppie-Plan: permits\nDruppie-Environment: dev\nDruppie-Trigger: cli\n"),
        "{trailers}"
    );
    for (repo, rev) in [
        ("infra", "main"),
        ("infra", "druppie/permits-prod"),
        ("permits-app", "main"),
    ] {
        s.verify(repo, rev);
    }
    for repo in ["infra", "permits-app"] {
        git(
            &s.forge().join(format!("{repo}.git")),
            &["fsck", "--strict"],
        );
    }

    // Again: nothing new is written.
    let heads = git(
        &infra,
        &["for-each-ref", "--format=%(refname) %(objectname)"],
    );
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout
            .contains("infra (prod): druppie/permits-prod already proposes these changes"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("committed"), "{}", run.stdout);
    assert_eq!(
        git(
            &infra,
            &["for-each-ref", "--format=%(refname) %(objectname)"]
        ),
        heads
    );

    // A person approves by merging; then there is nothing left to apply.
    let work = s.tmp.path().join("work");
    git(&work, &["fetch", "-q", "origin"]);
    git(
        &work,
        &[
            "merge",
            "-q",
            "--no-ff",
            "-m",
            "Approve permits in prod",
            "origin/druppie/permits-prod",
        ],
    );
    git(&work, &["push", "-q", "origin", "main"]);
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert_eq!(
        run.stdout,
        "nothing to apply: every repo matches the spec\n"
    );
}

#[test]
fn apply_refuses_without_a_usable_key_and_never_shows_it() {
    let s = setup();
    let key = s.tmp.path().join("druppie_ed25519");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let run = s.apply();
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(run.stderr.contains("too open"), "{}", run.stderr);
    assert!(!run.stderr.contains("PRIVATE KEY"), "{}", run.stderr);
    assert_eq!(
        git(
            &s.forge().join("infra.git"),
            &["for-each-ref", "--format=%(refname)"]
        ),
        "refs/heads/main\n",
        "nothing written"
    );
}
