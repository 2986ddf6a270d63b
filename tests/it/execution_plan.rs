//! `diff --json`'s execution plan against what `apply` pushed, step by
//! step: the example spec of this repository (with a fourth, `observe`
//! environment so every trust level occurs) applied to an empty plain-git
//! forge, then one plan changed and applied again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::{Fixture, Run, example_spec, git, on_an_empty_forge};

/// The example spec in a git repo, an empty forge, a key, a config.
struct Example {
    tmp: tempfile::TempDir,
    f: Fixture,
    config: PathBuf,
    /// Each plan's environments, as the spec copy lists them.
    plans: BTreeMap<String, Vec<String>>,
}

/// The example's environments that propose.
const PROPOSE: [&str; 2] = ["test", "prod"];

impl Example {
    fn new() -> Self {
        let tmp = tempfile::tempdir().expect("tmp");
        let f = example_spec().edit(
            "spec/platform.yaml",
            "    approvers: [platform-team]\n",
            "    approvers: [platform-team]\n  staging:\n    trust: observe\n    path: apps/staging\n    namespace: \"{{ plan }}-staging\"\n",
        );
        let mut plans = BTreeMap::new();
        let dir = f.path().join("spec/plans");
        for entry in std::fs::read_dir(&dir).expect("plans") {
            let path = entry.expect("entry").path();
            let text = std::fs::read_to_string(&path).expect("read plan");
            let line = text
                .lines()
                .find(|l| l.starts_with("environments: ["))
                .expect("a one-line environments list");
            let list = line
                .strip_prefix("environments: [")
                .and_then(|l| l.strip_suffix(']'))
                .expect("environments: [...]");
            let mut envs: Vec<String> = list.split(", ").map(str::to_owned).collect();
            envs.push("staging".to_owned());
            // Every step in one run: promotion between environments is
            // tested on its own (`promotion`).
            let parallel: Vec<String> = envs
                .iter()
                .filter(|e| PROPOSE.contains(&e.as_str()))
                .map(|e| format!("{e}: parallel"))
                .collect();
            std::fs::write(
                &path,
                text.replacen(
                    line,
                    &format!(
                        "environments: [{}]\npromote: {{{}}}",
                        envs.join(", "),
                        parallel.join(", ")
                    ),
                    1,
                ),
            )
            .expect("write plan");
            let name = path
                .file_stem()
                .expect("stem")
                .to_string_lossy()
                .into_owned();
            plans.insert(name, envs);
        }
        assert_eq!(plans.len(), 3, "the example has three plans: {plans:?}");

        let config = on_an_empty_forge(tmp.path(), &f);
        Example {
            tmp,
            f,
            config,
            plans,
        }
    }

    fn forge(&self) -> PathBuf {
        self.tmp.path().join("forge")
    }

    fn run(&self, args: &[&str]) -> Run {
        let mut full = vec!["--config", self.config.to_str().expect("utf-8")];
        full.extend_from_slice(args);
        self.f.run(&full)
    }

    /// `diff --json` seeing the forge's repos as apply will: the plan.
    fn diff(&self) -> Value {
        let forge = self.forge();
        let run = self.run(&["diff", "--json", "--repos", forge.to_str().expect("utf-8")]);
        assert_eq!(run.code, 2, "changes pending: {}", run.transcript());
        let json: Value = serde_json::from_str(&run.stdout).expect("json");
        json["execution_plan"].clone()
    }

    fn apply(&self) {
        let run = self.run(&["apply", "--yes"]);
        assert_eq!(run.code, 0, "{}", run.transcript());
    }

    /// Every branch of every repo on the forge: (repo, branch) -> tip.
    fn branches(&self) -> BTreeMap<(String, String), String> {
        let mut all = BTreeMap::new();
        for entry in std::fs::read_dir(self.forge()).expect("forge") {
            let path = entry.expect("entry").path();
            let name = path.file_name().expect("name").to_string_lossy();
            let repo = name.strip_suffix(".git").expect("a bare repo").to_owned();
            let refs = git(
                &path,
                &[
                    "for-each-ref",
                    "--format=%(refname:short) %(objectname)",
                    "refs/heads",
                ],
            );
            for line in refs.lines() {
                let (branch, tip) = line.split_once(' ').expect("ref line");
                all.insert((repo.clone(), branch.to_owned()), tip.to_owned());
            }
        }
        all
    }

    /// The branches druppie proposes on.
    fn proposals(&self) -> BTreeMap<(String, String), String> {
        self.branches()
            .into_iter()
            .filter(|((_, b), _)| b.starts_with("druppie/"))
            .collect()
    }

    /// The spec repo and every repo on the forge pass `git fsck --strict`.
    fn fsck(&self) {
        let mut repos = vec![self.f.path().to_owned()];
        for entry in std::fs::read_dir(self.forge()).expect("forge") {
            repos.push(entry.expect("entry").path());
        }
        for repo in repos {
            git(&repo, &["fsck", "--strict", "--no-progress"]);
        }
    }
}

/// What a default branch gains from the commit steps: the base the
/// first of them saw, and each commit in step order.
type Gained = (Option<String>, Vec<Made>);

/// A commit's subject, `Druppie-Plan` and `Druppie-Environment` trailers
/// and how many files it changes.
type Made = (String, Vec<String>, Vec<String>, usize);

/// A commit's subject and trailers (key -> values).
fn commit(repo: &Path, rev: &str) -> (String, BTreeMap<String, Vec<String>>) {
    let out = git(
        repo,
        &["log", "-1", "--format=%s%n%(trailers:only,unfold)", rev],
    );
    let mut lines = out.lines();
    let subject = lines.next().unwrap_or_default().to_owned();
    let mut trailers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let (k, v) = line.split_once(": ").expect("a trailer");
        trailers.entry(k.to_owned()).or_default().push(v.to_owned());
    }
    (subject, trailers)
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("a list")
        .iter()
        .map(|s| s.as_str().expect("a string").to_owned())
        .collect()
}

/// The paths a commit changes against its first parent (all of them for
/// a root commit).
fn changed(repo: &Path, rev: &str) -> Vec<String> {
    let out = git(
        repo,
        &[
            "diff-tree",
            "-r",
            "--root",
            "--no-commit-id",
            "--name-only",
            rev,
        ],
    );
    out.lines().map(str::to_owned).collect()
}

fn rev_exists(repo: &Path, rev: &str) -> bool {
    Command::new("git")
        .args(["rev-parse", "--verify", "--quiet", rev])
        .current_dir(repo)
        .output()
        .expect("git rev-parse")
        .status
        .success()
}

/// Compares the execution plan `diff --json` printed with what the forge
/// at `forge` holds after `apply`, step by step. Returns the
/// `pull_request` steps' (repo, branch, plan, env).
fn compare(plan: &Value, forge: &Path) -> Vec<(String, String, String, Option<String>)> {
    let steps = plan["steps"].as_array().expect("steps");
    let bare = |repo: &str| forge.join(format!("{repo}.git"));
    let mut proposed = Vec::new();
    // Per repo and branch: the base the first commit step saw, and every
    // (subject, plans) committed there, in step order.
    let mut commits: BTreeMap<(String, String), Gained> = BTreeMap::new();
    for step in steps {
        let p = &step["params"];
        let repo = p["repo"].as_str().unwrap_or_default().to_owned();
        match step["action"].as_str().expect("action") {
            "create_repo" => {
                let path = bare(&repo);
                assert!(path.is_dir(), "step {step}: no repo {}", path.display());
                let head = git(&path, &["symbolic-ref", "--short", "HEAD"]);
                assert_eq!(head.trim(), p["branch"], "step {step}: default branch");
            }
            "commit" => {
                let branch = p["branch"].as_str().expect("branch").to_owned();
                let head = git(&bare(&repo), &["symbolic-ref", "--short", "HEAD"]);
                assert_eq!(
                    branch,
                    head.trim(),
                    "step {step}: a commit step writes the default branch"
                );
                assert_eq!(branch, "main", "step {step}: the example's default branch");
                let entry = commits
                    .entry((repo, branch))
                    .or_insert_with(|| (p["base"].as_str().map(str::to_owned), Vec::new()));
                let env: Vec<String> = p["env"].as_str().map(str::to_owned).into_iter().collect();
                for c in p["commits"].as_array().expect("commits") {
                    let plans = strs(&c["plans"]);
                    assert_eq!(plans.len(), 1, "step {step}: one plan per commit");
                    let subject = c["subject"].as_str().expect("subject").to_owned();
                    let files = c["files"].as_u64().expect("files") as usize;
                    entry.1.push((subject, plans, env.clone(), files));
                }
            }
            "pull_request" => {
                let branch = p["branch"].as_str().expect("branch").to_owned();
                let plans = strs(&p["plans"]);
                assert_eq!(plans.len(), 1, "step {step}: one plan per proposal");
                let plan = plans[0].clone();
                let env = p["env"].as_str().map(str::to_owned);
                let named = match &env {
                    Some(env) => format!("druppie/{env}/{plan}"),
                    None => format!("druppie/{plan}"),
                };
                assert_eq!(branch, named, "step {step}: the proposal's branch name");
                let path = bare(&repo);
                let tip = format!("refs/heads/{branch}");
                assert!(
                    rev_exists(&path, &tip),
                    "step {step}: apply pushed no {repo}:{branch}"
                );
                let (subject, trailers) = commit(&path, &tip);
                assert_eq!(subject, p["title"], "step {step}: the tip's subject");
                assert_eq!(
                    trailers.get("Druppie-Plan"),
                    Some(&vec![plan.clone()]),
                    "step {step}: the tip's plan"
                );
                assert_eq!(
                    trailers.get("Druppie-Environment"),
                    env.as_ref().map(|e| vec![e.clone()]).as_ref(),
                    "step {step}: the tip's environment"
                );
                // It carries the change's id; a new or rebuilt proposal
                // builds on the default branch as apply left it, one the
                // branch already held is left where it was.
                assert_eq!(
                    trailers.get("Druppie-Proposal"),
                    Some(&vec![p["id"].as_str().expect("id").to_owned()]),
                    "step {step}: the tip's proposal id"
                );
                let into = p["into"].as_str().expect("into");
                if p["already"] == false {
                    assert_eq!(
                        git(&path, &["rev-parse", &format!("{tip}^")]),
                        git(&path, &["rev-parse", into]),
                        "step {step}: the proposal builds on {into}"
                    );
                }
                // It carries this plan's files in this environment, as
                // many as the step says.
                let files = changed(&path, &tip);
                assert_eq!(
                    files.len() as u64,
                    p["files"].as_u64().expect("files"),
                    "step {step}: files changed on the proposal: {files:?}"
                );
                if let Some(env) = &env {
                    let dir = format!("apps/{env}/{plan}/");
                    let flux = format!("clusters/{env}/druppie/{plan}/");
                    let list = format!("clusters/{env}/druppie/kustomization.yaml");
                    assert!(
                        files
                            .iter()
                            .all(|f| f.starts_with(&dir) || f.starts_with(&flux) || *f == list),
                        "step {step}: the proposal changes files outside {dir}, {flux} and {list}: {files:?}"
                    );
                }
                proposed.push((repo, branch, plan, env));
            }
            "report" => {
                let env = p["env"].as_str().expect("a report names its environment");
                let infra = bare(&repo);
                let paths = git(&infra, &["log", "--all", "--format=", "--name-only"]);
                for dir in [format!("apps/{env}/"), format!("clusters/{env}/")] {
                    assert!(
                        !paths.lines().any(|l| l.starts_with(&dir)),
                        "step {step}: {dir} written: {paths}"
                    );
                }
                let refs = git(&infra, &["for-each-ref", "--format=%(refname)"]);
                assert!(
                    !refs.contains(&format!("/druppie/{env}/")),
                    "step {step}: a proposal in {env}: {refs}"
                );
            }
            other => panic!("step {step}: `{other}` does not occur in this scenario"),
        }
    }
    for ((repo, branch), (base, expected)) in &commits {
        let path = bare(repo);
        let range = match base {
            Some(base) => format!("{base}..{branch}"),
            None => branch.clone(),
        };
        let ids = git(&path, &["rev-list", "--reverse", "--first-parent", &range]);
        let seen: Vec<Made> = ids
            .lines()
            .map(|id| {
                let (subject, trailers) = commit(&path, id);
                let trailer = |k: &str| trailers.get(k).cloned().unwrap_or_default();
                (
                    subject,
                    trailer("Druppie-Plan"),
                    trailer("Druppie-Environment"),
                    changed(&path, id).len(),
                )
            })
            .collect();
        assert_eq!(
            &seen, expected,
            "{repo}:{branch} gained exactly these commits"
        );
    }
    proposed
}

/// The proposals' (repo, branch) set equals the forge's `druppie/…`
/// branches.
fn same_branches(
    proposed: &[(String, String, String, Option<String>)],
    on_forge: &BTreeMap<(String, String), String>,
) {
    let steps: BTreeSet<(String, String)> = proposed
        .iter()
        .map(|(repo, branch, ..)| (repo.clone(), branch.clone()))
        .collect();
    let pushed: BTreeSet<(String, String)> = on_forge.keys().cloned().collect();
    assert_eq!(
        steps, pushed,
        "diff's proposals against the forge's branches"
    );
}

#[test]
fn diff_names_exactly_the_commits_and_branches_apply_pushes_for_every_trust_level() {
    let ex = Example::new();

    // Round 1: everything is new.
    let plan = ex.diff();
    ex.apply();
    let proposed = compare(&plan, &ex.forge());
    same_branches(&proposed, &ex.proposals());
    // One proposal per plan and propose environment, all in the infra
    // repo (a new project repo's first commit goes straight in).
    let expected: BTreeSet<(String, String)> = ex
        .plans
        .iter()
        .flat_map(|(plan, envs)| {
            envs.iter()
                .filter(|e| PROPOSE.contains(&e.as_str()))
                .map(move |env| ("infra".to_owned(), format!("druppie/{env}/{plan}")))
        })
        .collect();
    assert_eq!(expected.len(), 4, "{expected:?}");
    let got: BTreeSet<(String, String)> = proposed
        .iter()
        .map(|(repo, branch, ..)| (repo.clone(), branch.clone()))
        .collect();
    assert_eq!(got, expected);
    let actions: Vec<&str> = plan["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["action"].as_str().expect("action"))
        .collect();
    for action in ["create_repo", "commit", "pull_request", "report"] {
        assert!(actions.contains(&action), "no {action}: {actions:?}");
    }
    // Every plan reaches the observe environment, which writes nothing.
    assert_eq!(actions.iter().filter(|a| **a == "report").count(), 3);

    // Round 2: one plan changes, in every environment (its image) and in
    // a project repo that now exists (a managed file of its block, which
    // no other plan uses).
    let before = ex.proposals();
    change_permits(&ex);
    let plan = ex.diff();
    ex.apply();
    let proposed = compare(&plan, &ex.forge());
    let after = ex.proposals();
    same_branches(&proposed, &after);
    for step in plan["steps"].as_array().expect("steps") {
        if step["action"] == "commit" {
            for c in step["params"]["commits"].as_array().expect("commits") {
                assert_eq!(c["plans"], serde_json::json!(["permits"]), "{step}");
                assert_eq!(c["subject"], "druppie: permits in dev", "{step}");
            }
        }
    }
    let project = ("permits-app".to_owned(), "druppie/permits".to_owned());
    assert!(
        proposed
            .iter()
            .any(|(r, b, p, e)| (r, b) == (&project.0, &project.1)
                && p == "permits"
                && e.is_none()),
        "the project repo's change is a proposal: {proposed:?}"
    );
    assert!(!before.contains_key(&project) && after.contains_key(&project));
    for env in ["test", "prod"] {
        let key = ("infra".to_owned(), format!("druppie/{env}/permits"));
        assert_ne!(before[&key], after[&key], "{key:?} is updated");
    }

    // Round 3: nothing changed, so applying again writes nothing.
    let all = ex.branches();
    let plan = ex.diff();
    ex.apply();
    assert_eq!(ex.branches(), all, "a second apply moves no branch");
    same_branches(&compare(&plan, &ex.forge()), &ex.proposals());
    ex.fsck();
}

/// Changes one plan, permits: its image (every environment) and a
/// managed file of its web app's block (its project repo; no other plan
/// uses the block).
fn change_permits(ex: &Example) {
    let spec = ex.f.path();
    edit(
        spec,
        "spec/plans/permits.yaml",
        "registry.example.org/permits/portal:1.4.2",
        "registry.example.org/permits/portal:1.4.3",
    );
    edit(
        spec,
        "templates/webapp-python/project/.github/workflows/ci.yml",
        "jobs:\n",
        "# Tests run on every pull request.\njobs:\n",
    );
    git(spec, &["commit", "-qam", "permits 1.4.3"]);
}

/// Replaces `from` by `to` in a file of the spec copy.
fn edit(spec: &Path, path: &str, from: &str, to: &str) {
    let full = spec.join(path);
    let text = std::fs::read_to_string(&full).expect("read");
    assert!(text.contains(from), "{path} does not contain {from:?}");
    std::fs::write(full, text.replacen(from, to, 1)).expect("write");
}

#[test]
fn a_change_to_one_plan_leaves_the_other_plans_proposals_alone() {
    let ex = Example::new();
    ex.diff();
    ex.apply();
    let before = ex.proposals();
    change_permits(&ex);
    ex.diff();
    ex.apply();
    let after = ex.proposals();
    for ((repo, branch), tip) in &before {
        if !branch.ends_with("/permits") {
            assert_eq!(
                &after[&(repo.clone(), branch.clone())],
                tip,
                "{repo}:{branch}"
            );
        }
    }
    // The audit trail records proposals of the changed plan only.
    let spec_head = git(ex.f.path(), &["rev-parse", "HEAD"]);
    let run = ex.run(&["audit", "--json"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let events: Value = serde_json::from_str(&run.stdout).expect("json");
    for e in events.as_array().expect("events") {
        if e["spec_commit"] == spec_head.trim() {
            assert_eq!(e["plans"], serde_json::json!(["permits"]), "{e}");
        }
    }
    ex.fsck();
}

#[test]
fn diff_after_apply_shows_open_proposals_waiting_not_as_writes() {
    let ex = Example::new();
    ex.diff();
    ex.apply();
    let plan = ex.diff();
    for step in plan["steps"].as_array().expect("steps") {
        let want = if step["action"] == "pull_request" {
            "proposed"
        } else {
            "noop"
        };
        assert_eq!(step["status"], want, "{step}");
    }
    assert_eq!(plan["status"], "proposed", "{plan}");
}
