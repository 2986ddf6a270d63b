//! Two `druppie apply --yes` at once, over and over, against the same
//! spec repo and forge (sharing a cache, or each with its own, as the CLI
//! beside the daemon): the trail never holds an event twice, and every
//! repo stays clean.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::apply::setup;
use crate::support::git;

#[test]
fn two_applies_at_once_never_write_an_event_twice() {
    let s = setup("person@example.org");
    let template =
        s.f.path()
            .join("templates/webapp-python/infra/deployment.yaml.j2");
    std::fs::write(&template, "kind: Deployment\nimage: {{ image }}\n").unwrap();
    let plan = s.f.path().join("spec/plans/permits.yaml");
    let original = std::fs::read_to_string(&plan).unwrap();
    // A second configuration with a cache of its own.
    let other = s.tmp.path().join("other.toml");
    let config = std::fs::read_to_string(&s.config).unwrap();
    let cache = s.tmp.path().join("cache");
    std::fs::write(
        &other,
        config.replace(
            cache.to_str().unwrap(),
            s.tmp.path().join("cache-2").to_str().unwrap(),
        ),
    )
    .unwrap();
    let rounds = 12;
    let mut failures = Vec::new();
    for round in 0..rounds {
        std::fs::write(
            &plan,
            original.replace("permits:1.0.0", &format!("permits:1.0.{round}")),
        )
        .unwrap();
        git(s.f.path(), &["add", "-A"]);
        git(s.f.path(), &["commit", "-qm", &format!("round {round}")]);
        if round % 4 == 3 {
            // An approver merges the open proposal: both runs see it.
            s.merge_proposal_signed(&format!("Approve round {round}"));
        }
        let spawn = |config: &std::path::Path| {
            Command::new(env!("CARGO_BIN_EXE_druppie"))
                .args(["--spec", s.f.path().to_str().unwrap()])
                .args(["--config", config.to_str().unwrap(), "apply", "--yes"])
                .current_dir(s.f.path())
                .env("NO_COLOR", "1")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("druppie starts")
        };
        let first = spawn(&s.config);
        std::thread::sleep(Duration::from_millis(fastrand::u64(0..=250)));
        let second = spawn(if round % 2 == 0 { &s.config } else { &other });
        let mut ok = 0;
        for child in [first, second] {
            let out = child.wait_with_output().unwrap();
            let said = String::from_utf8_lossy(&out.stderr).into_owned();
            match out.status.code() {
                Some(0) => ok += 1,
                // Two runs sharing a cache may trip over each other's
                // clone; the trail is never what fails.
                Some(1) if !said.contains("druppie-audit") => failures.push(said),
                code => panic!("round {round}: exit {code:?}: {said}"),
            }
        }
        assert!(
            ok >= 1,
            "round {round}: neither run finished: {failures:#?}"
        );
    }
    // One more run converges on whatever a failed run left.
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    eprintln!(
        "{} of {} runs failed outside the trail: {:?}",
        failures.len(),
        2 * rounds,
        failures
            .iter()
            .map(|f| f.lines().find(|l| l.starts_with("error")).unwrap_or(""))
            .collect::<Vec<_>>()
    );
    let run = s.audit_run(&["--json", "--verify"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let events: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let mut seen = BTreeMap::new();
    for e in events.as_array().unwrap() {
        let id = (
            e["kind"].as_str().unwrap().to_owned(),
            e["repo"].as_str().unwrap().to_owned(),
            e["commit"].as_str().unwrap_or("").to_owned(),
            e["env"].as_str().unwrap_or("").to_owned(),
        );
        *seen.entry(id).or_insert(0) += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "events written twice: {twice:#?}");
    // Every round applied dev; every merge was judged once.
    let applied_dev = seen
        .keys()
        .filter(|(k, r, _, e)| k == "applied" && r == "infra" && e == "dev")
        .count();
    assert_eq!(applied_dev, rounds, "{seen:#?}");
    let verdicts = seen.keys().filter(|(k, ..)| k == "approved").count();
    assert_eq!(verdicts, rounds / 4, "{seen:#?}");
    for repo in ["infra.git", "permits-app.git"] {
        git(&s.forge().join(repo), &["fsck", "--strict"]);
    }
    git(s.f.path(), &["fsck", "--strict"]);
}
