//! `druppie apply` with the plain-git forge, end to end: a directory of
//! bare repos, signed commits for deploy environments and new project
//! repos, proposal branches for propose environments, nothing new on a
//! second run.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use crate::prism::{self, Act, Proxy};
use crate::support::{Fixture, Run, git};

pub struct Setup {
    pub tmp: tempfile::TempDir,
    pub f: Fixture,
    pub config: PathBuf,
}

/// Whatever a test did, every repo it leaves on the forge and the spec
/// repo pass `git fsck --strict` (unless the test failed already).
impl Drop for Setup {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let mut repos = Vec::new();
        if self.f.path().join(".git").exists() {
            repos.push(self.f.path().to_owned());
        }
        let mut dirs = vec![self.forge()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if !path.is_dir() {
                    continue;
                }
                if path.extension().is_some_and(|e| e == "git") {
                    repos.push(path);
                } else {
                    dirs.push(path);
                }
            }
        }
        for repo in repos {
            let out = Command::new("git")
                .args(["fsck", "--strict", "--no-progress"])
                .current_dir(&repo)
                .output()
                .expect("git fsck");
            assert!(
                out.status.success(),
                "git fsck --strict in {}: {}{}",
                repo.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

impl Setup {
    pub fn forge(&self) -> PathBuf {
        self.tmp.path().join("forge")
    }

    pub fn apply(&self) -> Run {
        self.f
            .run(&["--config", self.config.to_str().unwrap(), "apply", "--yes"])
    }

    /// The forge's infra repo holds only the branch it started with.
    fn assert_nothing_written(&self) {
        let refs = git(
            &self.forge().join("infra.git"),
            &["for-each-ref", "--format=%(refname)"],
        );
        assert_eq!(refs, "refs/heads/main\n", "nothing written");
    }

    /// A person merges the prod proposal into the infra repo's main.
    pub fn merge_proposal(&self, message: &str) {
        let work = self.tmp.path().join("work");
        git(&work, &["fetch", "-q", "origin"]);
        git(
            &work,
            &[
                "merge",
                "-q",
                "--no-ff",
                "-m",
                message,
                "origin/druppie/prod/permits",
            ],
        );
        git(&work, &["push", "-q", "origin", "main"]);
    }

    /// A person who approves merges `druppie/prod/permits` into the infra
    /// repo's main, signing the merge with their SSH key, which the
    /// spec's `spec/approvers.allowed_signers` lists for
    /// `person@example.org`.
    pub fn merge_proposal_signed(&self, message: &str) {
        let work = self.tmp.path().join("work");
        git(&work, &["fetch", "-q", "origin"]);
        let key = self.tmp.path().join("person_ed25519");
        git(
            &work,
            &[
                "-c",
                "gpg.format=ssh",
                "-c",
                &format!("user.signingkey={}", key.display()),
                "merge",
                "-q",
                "-S",
                "--no-ff",
                "-m",
                message,
                "origin/druppie/prod/permits",
            ],
        );
        git(&work, &["push", "-q", "origin", "main"]);
    }

    /// `druppie audit` with `args`.
    pub fn audit_run(&self, args: &[&str]) -> Run {
        let mut full = vec!["--config", self.config.to_str().unwrap(), "audit"];
        full.extend_from_slice(args);
        self.f.run(&full)
    }

    /// `druppie audit --json --verify`: (event, repo, env, signature).
    pub fn audit(&self) -> Vec<(String, String, String, String)> {
        let run = self.audit_run(&["--json", "--verify"]);
        assert_eq!(run.code, 0, "{}", run.transcript());
        let events: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
        events
            .as_array()
            .expect("a list")
            .iter()
            .map(|e| {
                let s = |k: &str| e[k].as_str().unwrap_or("").to_owned();
                (s("kind"), s("repo"), s("env"), s("signature"))
            })
            .collect()
    }

    /// `git verify-commit` with the allowed-signers file druppie's key is in.
    pub fn verify(&self, repo: &str, rev: &str) {
        self.verify_at(&self.forge().join(format!("{repo}.git")), rev);
    }

    /// Every commit druppie made in the repo at `path`, on any ref, passes
    /// `git verify-commit`, and `git fsck --strict` finds nothing; returns
    /// how many commits were checked.
    pub fn verify_all(&self, path: &std::path::Path) -> usize {
        git(path, &["fsck", "--strict"]);
        let log = git(path, &["log", "--all", "--format=%H %ce"]);
        let ours: Vec<&str> = log
            .lines()
            .filter_map(|l| l.strip_suffix(" druppie@example.org"))
            .collect();
        for commit in &ours {
            self.verify_at(path, commit);
        }
        ours.len()
    }

    pub fn verify_at(&self, path: &std::path::Path, rev: &str) {
        let repo = path.display();
        let allowed = self.tmp.path().join("allowed_signers");
        let out = Command::new("git")
            .args(["-c", "gpg.format=ssh"])
            .arg("-c")
            .arg(format!("gpg.ssh.allowedSignersFile={}", allowed.display()))
            .args(["verify-commit", rev])
            .current_dir(path)
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
pub fn setup(prod_approvers: &str) -> Setup {
    let tmp = tempfile::tempdir().expect("tmp");
    let f = Fixture::valid()
        .with(
            "templates/webapp-python/project/README.md.j2",
            "# {{ repo }}\n\nReplicas: {{ replicas }}\n",
        )
        .edit(
            "spec/platform.yaml",
            "approvers: [platform-team]",
            &format!("approvers: [{prod_approvers}]"),
        )
        // Promotion is tested on its own (`promotion`): here prod is
        // proposed in the same run that commits dev.
        .edit(
            "spec/plans/permits.yaml",
            "environments: [dev, prod]",
            "environments: [dev, prod]\npromote: {prod: parallel}",
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
    // A person whose key the spec lists for the principal
    // person@example.org: a merge they sign approves.
    let person = tmp.path().join("person_ed25519");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "person", "-f"])
        .arg(&person)
        .output()
        .expect("ssh-keygen");
    assert!(out.status.success());
    let person_public = std::fs::read_to_string(person.with_extension("pub")).unwrap();
    let f = f.with(
        "spec/approvers.allowed_signers",
        format!("# who signs approvals\nperson@example.org {person_public}"),
    );
    let config = tmp.path().join("druppie.toml");
    std::fs::write(
        &config,
        format!(
            "[forge]\nkind = \"git\"\nbase = \"{}\"\n\n[repos]\ncache_dir = \"{}\"\n\n[signing]\nkey = \"{}\"\nname = \"druppie\"\nemail = \"druppie@example.org\"\nallowed_signers = \"{}\"\n",
            forge.display(),
            tmp.path().join("cache").display(),
            key.display(),
            tmp.path().join("allowed_signers").display()
        ),
    )
    .unwrap();
    // The spec checkout is a git repository: the audit trail lives there.
    git(f.path(), &["init", "-q"]);
    git(f.path(), &["add", "-A"]);
    git(f.path(), &["commit", "-qm", "spec"]);
    Setup { tmp, f, config }
}

#[test]
fn apply_commits_deploy_environments_and_proposes_the_rest() {
    let s = setup("platform-team, person@example.org");
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout.contains("infra (dev) permits: committed "),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("infra (prod) permits: proposed on druppie/prod/permits"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("permits-app permits: committed "),
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
        &["ls-tree", "-r", "--name-only", "druppie/prod/permits"],
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
    let spec_head = git(s.f.path(), &["rev-parse", "HEAD"]);
    // The render digest is the committed tree of the plan's locations,
    // recomputed here from git's own listing
    // of both its locations, the plan's directory and its Flux directory.
    let listing = git(
        &infra,
        &[
            "ls-tree",
            "-r",
            "main",
            "apps/dev/permits/",
            "clusters/dev/druppie/permits/",
        ],
    );
    let mut digest = sha2::Sha256::default();
    for line in listing.lines() {
        let (meta, path) = line.split_once('\t').expect("ls-tree line");
        let blob = meta.split(' ').nth(2).expect("blob id");
        sha2::Digest::update(&mut digest, format!("{path}\0{blob}\n").as_bytes());
    }
    let digest: String = sha2::Digest::finalize(digest)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        trailers,
        format!(
            "Druppie-Plan: permits\nDruppie-Environment: dev\nDruppie-Spec-Commit: {}\nDruppie-Render-Digest: {digest}\nDruppie-Trigger: cli\n\n",
            spec_head.trim()
        )
    );
    for (repo, rev) in [
        ("infra", "main"),
        ("infra", "druppie/prod/permits"),
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

    // The proposal carries its approval card as druppie's git note.
    let card = git(
        &infra,
        &["notes", "--ref=druppie", "show", "druppie/prod/permits"],
    );
    assert!(
        card.starts_with("druppie proposes these changes; merging this branch approves them.\n"),
        "{card}"
    );
    assert!(
        card.contains("create apps/prod/permits/app/deployment.yaml"),
        "{card}"
    );
    let trail = |kind: &str, repo: &str, env: &str| {
        (
            kind.to_owned(),
            repo.to_owned(),
            env.to_owned(),
            "verified".to_owned(),
        )
    };
    let first_events = vec![
        trail("applied", "infra", "dev"),
        trail("proposed", "infra", "prod"),
        trail("applied", "permits-app", ""),
    ];
    assert_eq!(s.audit(), first_events);
    let events = git(
        s.f.path(),
        &[
            "log",
            "--format=%(trailers:key=Druppie-Event,valueonly)",
            "druppie-audit",
        ],
    );
    assert_eq!(events, "applied\n\nproposed\n\napplied\n\n");
    git(s.f.path(), &["fsck", "--strict"]);

    // Again: nothing new is written.
    let heads = git(
        &infra,
        &["for-each-ref", "--format=%(refname) %(objectname)"],
    );
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout
            .contains("infra (prod) permits: druppie/prod/permits already proposes these changes"),
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
    assert_eq!(
        s.audit(),
        first_events,
        "no event for what was already done"
    );

    // A person approves by merging, signed; then there is nothing left
    // to apply, and the proposal's branch is gone.
    let proposal = git(&infra, &["rev-parse", "druppie/prod/permits"]);
    s.merge_proposal_signed("Approve permits in prod");
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    let (verdict, rest) = run.stdout.split_once('\n').unwrap();
    assert!(
        verdict.starts_with(
            "infra: druppie/prod/permits: approved: merged by Person <person@example.org> (approver: person@example.org) at "
        ),
        "{verdict}"
    );
    assert_eq!(
        rest,
        "infra: deleted druppie/prod/permits (merged)\nnothing to apply: every repo matches the spec\n"
    );
    assert_eq!(git(&infra, &["branch", "--list", "druppie/*"]), "");
    let card = git(&infra, &["notes", "--ref=druppie", "show", proposal.trim()]);
    assert!(
        card.contains(
            "approved: merged by Person <person@example.org> (approver: person@example.org) at "
        ),
        "{card}"
    );
    let mut expected = first_events.clone();
    expected.push(trail("approved", "infra", "prod"));
    expected.push(trail("applied", "infra", "prod"));
    assert_eq!(s.audit(), expected);
    // The approval is recorded once.
    assert_eq!(
        s.apply().stdout,
        "nothing to apply: every repo matches the spec\n"
    );
    assert_eq!(s.audit(), expected);
    // Every commit druppie wrote, anywhere, is signed and verifies with
    // git itself: infra (dev, the proposal, notes), the project repo, and
    // the audit trail's five events.
    let checked: Vec<usize> = [
        s.forge().join("infra.git"),
        s.forge().join("permits-app.git"),
        s.f.path().to_owned(),
    ]
    .iter()
    .map(|p| s.verify_all(p))
    .collect();
    assert_eq!(checked[2], 5, "one signed commit per event");
    assert!(checked[0] >= 2 && checked[1] == 1, "{checked:?}");
}

#[test]
fn a_merge_by_someone_not_an_approver_is_a_violation() {
    let s = setup("platform-team");
    assert_eq!(s.apply().code, 0);
    s.merge_proposal("Merge it");
    let run = s.apply();
    assert!(
        run.stdout.contains(
            "infra: druppie/prod/permits: VIOLATION: merged by Person <person@example.org>: the merge commit is not signed; an approval is a merge signed with the key of an approver (platform-team) listed in spec/approvers.allowed_signers"
        ),
        "{}",
        run.stdout
    );
    let kinds: Vec<String> = s.audit().into_iter().map(|(k, ..)| k).collect();
    assert_eq!(
        kinds,
        ["applied", "proposed", "applied", "violation", "applied"]
    );
}

#[test]
fn apply_refuses_without_a_usable_key_and_never_shows_it() {
    let s = setup("platform-team");
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
    s.assert_nothing_written();
}

#[test]
fn apply_needs_a_spec_repo_for_its_audit_trail() {
    let s = setup("platform-team");
    std::fs::remove_dir_all(s.f.path().join(".git")).unwrap();
    let run = s.apply();
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(run.stderr.contains("druppie-audit"), "{}", run.stderr);
    s.assert_nothing_written();
}

#[test]
fn events_lost_to_a_stop_between_push_and_record_are_recorded_next_time() {
    let s = setup("platform-team");
    assert_eq!(s.apply().code, 0);
    // As if apply had stopped after its pushes but before its records:
    // keep only the first event on the trail.
    let first = git(
        s.f.path(),
        &["rev-list", "--max-parents=0", "druppie-audit"],
    );
    git(
        s.f.path(),
        &["update-ref", "refs/heads/druppie-audit", first.trim()],
    );
    let kinds = |s: &Setup| -> Vec<String> { s.audit().into_iter().map(|(k, ..)| k).collect() };
    // The cut trail fails verification, naming what it lacks: the
    // proposal in infra and the project repo's first commit.
    let verify = s.audit_run(&["--verify"]);
    assert_eq!(verify.code, 1, "{}", verify.transcript());
    let infra = s.forge().join("infra.git");
    let proposal = git(&infra, &["rev-parse", "druppie/prod/permits"]);
    let app = git(&s.forge().join("permits-app.git"), &["rev-parse", "main"]);
    assert!(
        verify.stderr.contains(&format!(
            "missing event: infra {} (prod): druppie signed this commit and the trail does not record it",
            proposal.trim()
        )) && verify
            .stderr
            .contains(&format!("missing event: permits-app {}", app.trim())),
        "{}",
        verify.stderr
    );
    assert!(
        verify.stderr.ends_with(
            "error: the trail lacks the events of 2 commit(s) druppie signed (cut short or edited?)\n"
        ),
        "{}",
        verify.stderr
    );
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout.contains("infra: recorded proposed of "),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("permits-app: recorded applied of "),
        "{}",
        run.stdout
    );
    assert_eq!(kinds(&s), ["applied", "proposed", "applied"]);
    // And nothing twice.
    s.apply();
    assert_eq!(kinds(&s), ["applied", "proposed", "applied"]);
}

/// The same forge directory behind a Gitea API: git pushes to
/// `forge/platform/<repo>.git`, the API is Prism serving Gitea's
/// description behind a proxy that logs what druppie asked.
pub(crate) fn setup_gitea(prod_approvers: &str) -> (Setup, Proxy) {
    let s = setup(prod_approvers);
    let proxy = Proxy::new(prism::gitea());
    let owned = s.forge().join("platform");
    std::fs::create_dir_all(&owned).unwrap();
    std::fs::rename(s.forge().join("infra.git"), owned.join("infra.git")).unwrap();
    // Gitea (Prism) says every repo exists; the project repo is there,
    // empty, as Gitea would have made it.
    git(&owned, &["init", "-q", "--bare", "permits-app.git"]);
    let config = std::fs::read_to_string(&s.config).unwrap();
    let forge = format!(
        "[forge]\nkind = \"gitea\"\nbase = \"{}\"\nowner = \"platform\"\ngit_url = \"{}\"\ntoken_env = \"DRUPPIE_IT_TOKEN\"\n",
        proxy.url,
        s.forge().display()
    );
    let config = forge + &config[config.find("[repos]").unwrap()..];
    std::fs::write(&s.config, config).unwrap();
    let work = s.tmp.path().join("work");
    let url = owned.join("infra.git");
    git(
        &work,
        &["remote", "set-url", "origin", url.to_str().unwrap()],
    );
    (s, proxy)
}

#[test]
fn apply_through_gitea_opens_a_pull_request_and_records_its_merge() {
    let (s, proxy) = setup_gitea("platform-team, string");
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout.contains("infra (dev) permits: committed "),
        "{}",
        run.stdout
    );
    // Prism's answer names the pull request's address.
    assert!(
        run.stdout
            .contains("infra (prod) permits: proposed on string ("),
        "{}",
        run.stdout
    );
    proxy.assert_no_violations();
    let opened: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|r| r.line() == "POST /repos/platform/infra/pulls")
        .collect();
    assert_eq!(opened.len(), 1);
    let pr = opened[0].json();
    assert_eq!(pr["head"], "druppie/prod/permits");
    assert_eq!(pr["base"], "main");
    assert_eq!(pr["title"], "druppie: permits in prod");
    let body = pr["body"].as_str().unwrap();
    assert!(
        body.starts_with("druppie proposes these changes; merging this branch approves them.\n"),
        "{body}"
    );
    assert!(
        body.contains("create apps/prod/permits/app/deployment.yaml"),
        "{body}"
    );
    assert_eq!(
        opened[0].header("authorization"),
        Some("token it-token"),
        "the token from the environment variable token_env names"
    );
    let infra = s.forge().join("platform/infra.git");
    let proposal = git(
        &infra,
        &["ls-tree", "-r", "--name-only", "druppie/prod/permits"],
    );
    assert!(proposal.contains("apps/prod/permits/app/deployment.yaml"));
    git(&infra, &["fsck", "--strict"]);
    // The proposal commit's `druppie/conflicts` status is looked at (and
    // set where it differs): no conflict here.
    let tip = git(&infra, &["rev-parse", "druppie/prod/permits"])
        .trim()
        .to_owned();
    let lines = proxy.lines();
    assert!(
        lines.contains(&format!("GET /repos/platform/infra/commits/{tip}/status")),
        "{lines:?}"
    );
    for posted in proxy
        .seen()
        .into_iter()
        .filter(|r| r.line().starts_with("POST /repos/platform/infra/statuses/"))
    {
        assert_eq!(
            posted.line(),
            format!("POST /repos/platform/infra/statuses/{tip}")
        );
        assert_eq!(posted.json()["context"], "druppie/conflicts");
        assert_eq!(posted.json()["state"], "success");
    }

    // The pull request is merged on Gitea (by Prism's user `string`, an
    // approver here): the next run records the approval and says so on
    // the pull request.
    let head = tip.clone();
    let merged = Arc::new(move |v: &mut serde_json::Value| {
        let pr = &mut v[0];
        pr["head"]["ref"] = "druppie/prod/permits".into();
        pr["head"]["sha"] = head.clone().into();
        pr["base"]["ref"] = "main".into();
        pr["state"] = "closed".into();
        pr["merged"] = true.into();
        pr["number"] = 7.into();
        pr["merge_commit_sha"] = "0123456789abcdef0123456789abcdef01234567".into();
    });
    proxy.on("GET /repos/platform/infra/pulls", 2, Act::Patch(merged));
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout
            .contains("infra: druppie/prod/permits: approved: merged by string at "),
        "{}",
        run.stdout
    );
    proxy.assert_no_violations();
    let verdict: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|r| r.line() == "POST /repos/platform/infra/issues/7/comments")
        .collect();
    assert_eq!(verdict.len(), 1, "{:?}", proxy.lines());
    let comment = verdict[0].json()["body"].as_str().unwrap().to_owned();
    assert!(comment.contains("approved: merged by string"), "{comment}");
    assert!(comment.contains("0123456789abcdef0123456789abcdef01234567"));
    // Its branch is deleted through Gitea's branch API, the name one
    // path segment.
    assert!(
        proxy
            .lines()
            .contains(&"DELETE /repos/platform/infra/branches/druppie%2Fprod%2Fpermits".to_owned()),
        "{:?}",
        proxy.lines()
    );
    assert!(
        run.stdout
            .contains("infra: deleted druppie/prod/permits (merged)"),
        "{}",
        run.stdout
    );
    // Prism's merge never reached the repo's main, so the change is
    // still wanted; and Prism's delete left the branch in the repo, so
    // the push of a fresh proposal, made only while the branch is
    // absent, is refused and the next attempt finds the proposal there.
    // (Made within the same second as the first, the fresh proposal is
    // that very commit, signatures being deterministic: the push finds
    // it there already.)
    let refused = run
        .stdout
        .contains("infra (prod) permits: druppie/prod/permits moved on the forge; starting over")
        && run.stdout.contains("already proposes these changes");
    let same = git(&infra, &["rev-parse", "druppie/prod/permits"]).trim() == tip;
    assert!(refused || same, "{}", run.stdout);
    let kinds: Vec<String> = s.audit().into_iter().map(|(k, ..)| k).collect();
    assert_eq!(
        kinds,
        ["applied", "proposed", "applied", "approved", "applied"]
    );
}

#[test]
fn apply_without_a_forge_token_says_which_variable_to_set() {
    let (s, proxy) = setup_gitea("platform-team");
    let config = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(
        &s.config,
        config.replace("DRUPPIE_IT_TOKEN", "DRUPPIE_UNSET_TOKEN"),
    )
    .unwrap();
    let run = s.apply();
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert_eq!(
        run.stderr,
        "error: no forge token: set the environment variable DRUPPIE_UNSET_TOKEN (named by `[forge] token_env`)\n"
    );
    assert!(proxy.seen().is_empty(), "the forge was not asked");
}

#[test]
fn an_apply_stopped_before_its_pull_request_is_finished_by_the_next_run() {
    let (s, proxy) = setup_gitea("platform-team");
    // Gitea fails every try to open the pull request: the proposal branch
    // is pushed, the pull request is not.
    let create = "POST /repos/platform/infra/pulls";
    proxy.on(
        create,
        5,
        Act::Reply(503, vec![], r#"{"message":"unavailable"}"#),
    );
    let run = s.apply();
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr.contains("503 Service Unavailable"),
        "{}",
        run.stderr
    );
    let infra = s.forge().join("platform/infra.git");
    assert!(
        git(&infra, &["branch", "--list", "druppie/prod/permits"]).contains("druppie/prod/permits")
    );

    // The next run opens the pull request for the branch as it is, and
    // records what the stopped run pushed; nothing twice.
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout
            .contains("infra (prod) permits: string already proposes these changes"),
        "{}",
        run.stdout
    );
    let opened = proxy
        .seen()
        .iter()
        .filter(|r| r.line() == create && r.status == 201)
        .count();
    assert_eq!(opened, 1);
    let kinds: Vec<String> = s.audit().into_iter().map(|(k, ..)| k).collect();
    assert_eq!(kinds, ["applied", "proposed", "applied"]);
    proxy.assert_no_violations();
}

#[test]
fn a_protected_branch_refusing_the_push_is_one_clear_error_and_nothing_is_written() {
    let s = setup("platform-team");
    // The infra repo's main only takes pushes through a merge on the
    // forge; the project repo, made by apply, takes them.
    let hook = s.forge().join("infra.git/hooks/pre-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\nwhile read old new ref; do\n  [ \"$ref\" = refs/heads/main ] && { echo 'main is protected' >&2; exit 1; }\ndone\nexit 0\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let run = s.apply();
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr.contains(
            "infra: the forge refused the push to refs/heads/main: [remote rejected] (pre-receive hook declined)\n  remote: main is protected"
        ),
        "{}",
        run.stderr
    );
    s.assert_nothing_written();
    // Nothing pushed, nothing recorded; the run stopped at the first
    // change set, so no project repo was made either.
    assert!(s.audit().is_empty());
    assert!(!s.forge().join("permits-app.git").exists());
}
