//! git's lock files in the spec repo, which holds the audit trail and
//! where people run git too: one a killed git left long ago is removed
//! (see `never_wedged`), a young one that stops the trail is reported at
//! once with the command that removes it, before anything is pushed, and
//! when one appears while a run pushes, the next run records what was
//! pushed.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::apply::{Setup, setup};
use crate::never_wedged::{apply, assert_sound, assert_writes_nothing, refs, release, with_image};

/// The `rm …` command in `stderr`, after checking that it names the
/// spec repo's lock file `name` and that nothing speaks of a branch that
/// kept moving.
fn removal_command(stderr: &str, name: &str) -> String {
    assert!(
        stderr.contains(&format!("{name} is locked (")) && stderr.contains("the spec repo's "),
        "{stderr}"
    );
    assert!(!stderr.contains("kept moving"), "{stderr}");
    let (_, rest) = stderr
        .split_once("remove it with `")
        .unwrap_or_else(|| panic!("no command in:\n{stderr}"));
    let command = rest.split('`').next().expect("the command").to_owned();
    assert!(
        command.starts_with("rm ") && command.ends_with(name),
        "{command}"
    );
    assert!(
        rest.contains("` if no git runs there"),
        "the condition for running it: {stderr}"
    );
    command
}

/// Runs `command` (the fixture's path shown as `[ROOT]`), which removes
/// `lock`.
fn run_command(s: &Setup, command: &str, lock: &Path) {
    let command = command.replace("[ROOT]", s.f.path().to_str().expect("utf-8"));
    assert!(lock.exists(), "druppie left the lock to its owner");
    let out = Command::new("sh")
        .args(["-c", &command])
        .output()
        .expect("sh");
    assert!(out.status.success(), "{command}");
    assert!(!lock.exists(), "{command} removes {lock:?}");
}

/// `druppie audit --verify` passes and records no commit twice.
fn assert_trail_complete(s: &Setup) {
    let run = s.audit_run(&["--json", "--verify"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let events: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let mut seen = std::collections::BTreeSet::new();
    for e in events.as_array().expect("a list") {
        let id = ["kind", "repo", "commit", "env"].map(|k| e[k].to_string());
        assert!(seen.insert(id), "recorded twice: {e}");
    }
}

#[test]
fn a_young_lock_in_the_spec_repo_is_reported_at_once_with_the_command_that_removes_it() {
    let s = with_image(setup("platform-team"));
    assert_eq!(apply(&s).code, 0);
    release(&s, 21);
    // A git in the spec checkout writing its refs, or one killed a
    // moment ago: gix cannot move the audit branch past it.
    let lock = s.f.path().join(".git/packed-refs.lock");
    std::fs::write(&lock, "").expect("a young lock");
    let before = refs(&s);
    let started = Instant::now();
    let run = apply(&s);
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(took < Duration::from_secs(10), "reported after {took:?}");
    assert_eq!(refs(&s), before, "pushed before the trail could be written");
    let command = removal_command(&run.stderr, "packed-refs.lock");
    run_command(&s, &command, &lock);
    let run = apply(&s);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout.contains("infra (dev) permits: committed "),
        "{}",
        run.stdout
    );
    assert_trail_complete(&s);
    assert_sound(&s);
    assert_writes_nothing(&s, "after the lock went");
}

#[test]
fn a_lock_taken_in_the_spec_repo_while_a_run_pushes_is_reported_and_the_next_run_records_the_push()
{
    let s = with_image(setup("platform-team"));
    assert_eq!(apply(&s).code, 0);
    let lock = s.f.path().join(".git/packed-refs.lock");
    let armed = s.tmp.path().join("armed");
    std::fs::write(&armed, "").expect("arm");
    // The first push of the run takes the spec repo's packed-refs lock,
    // as a `git pack-refs` started there at that moment would.
    let hook = s.forge().join("infra.git/hooks/pre-receive");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\ncat >/dev/null\nrm {} 2>/dev/null && : > {}\nexit 0\n",
            armed.display(),
            lock.display()
        ),
    )
    .expect("hook");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    release(&s, 22);
    let started = Instant::now();
    let run = apply(&s);
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(took < Duration::from_secs(15), "reported after {took:?}");
    let command = removal_command(&run.stderr, "packed-refs.lock");
    assert!(
        run.stdout.contains("infra (dev) permits: committed "),
        "{}",
        run.transcript()
    );
    let verify = s.audit_run(&["--verify"]);
    assert_eq!(
        verify.code,
        1,
        "the trail lacks the push:\n{}",
        verify.transcript()
    );
    run_command(&s, &command, &lock);
    let run = apply(&s);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout.contains("infra: recorded applied of ")
            && run.stdout.contains("(pushed by an earlier run)"),
        "{}",
        run.stdout
    );
    assert_trail_complete(&s);
    assert_sound(&s);
    assert_writes_nothing(&s, "after the catch-up");
}
