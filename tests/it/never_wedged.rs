//! Nothing on disk wedges `druppie apply`: a run killed at any point
//! (lock files left in the cache or the spec repo, clones and forge repos
//! half made), a full disk while a forge repo is created, and a push that
//! loses receive-pack's lock race all converge on the next run, with no
//! manual step, `git fsck --strict` clean and every commit druppie wrote
//! signed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::apply::{Setup, setup};
use crate::support::{Run, git};

/// `druppie --config … apply --yes`.
pub(crate) fn apply(s: &Setup) -> Run {
    s.f.run(&[
        "--config",
        s.config.to_str().expect("utf-8"),
        "apply",
        "--yes",
    ])
}

/// The same, started and left running.
fn start_apply(s: &Setup) -> Child {
    Command::new(env!("CARGO_BIN_EXE_druppie"))
        .args(["--spec", s.f.path().to_str().expect("utf-8")])
        .args([
            "--config",
            s.config.to_str().expect("utf-8"),
            "apply",
            "--yes",
        ])
        .current_dir(s.f.path())
        .env_remove("DRUPPIE_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start druppie apply")
}

/// The apply setup with the deployment template showing the image, so
/// each release in the plan changes the dev environment (a commit on
/// main) and prod (the proposal branch).
pub(crate) fn with_image(s: Setup) -> Setup {
    std::fs::write(
        s.f.path()
            .join("templates/webapp-python/infra/deployment.yaml.j2"),
        "kind: Deployment\nimage: {{ image }}\n",
    )
    .expect("template");
    git(
        s.f.path(),
        &["commit", "-qam", "the image in the deployment"],
    );
    s
}

/// Releases `1.0.<patch>` of the app in the spec checkout; returns the
/// spec commit.
pub(crate) fn release(s: &Setup, patch: u32) -> String {
    let plan = s.f.path().join("spec/plans/permits.yaml");
    let text = std::fs::read_to_string(&plan).expect("plan");
    let at = text.find("permits:1.0.").expect("an image") + "permits:1.0.".len();
    let end = at + text[at..].find('}').expect("flow mapping end");
    std::fs::write(&plan, format!("{}{patch}{}", &text[..at], &text[end..])).expect("plan");
    git(
        s.f.path(),
        &["commit", "-qam", &format!("permits 1.0.{patch}")],
    );
    git(s.f.path(), &["rev-parse", "HEAD"]).trim().to_owned()
}

/// The spec commits named by druppie's commits on `rev` of a forge repo,
/// newest first.
pub(crate) fn spec_commits(s: &Setup, repo: &str, rev: &str) -> Vec<String> {
    git(
        &s.forge().join(format!("{repo}.git")),
        &[
            "log",
            "--format=%(trailers:key=Druppie-Spec-Commit,valueonly)",
            rev,
        ],
    )
    .lines()
    .filter(|l| !l.is_empty())
    .map(str::to_owned)
    .collect()
}

/// Every ref of every forge repo, and the audit trail's head.
pub(crate) fn refs(s: &Setup) -> String {
    let mut out = String::new();
    for repo in ["infra", "permits-app"] {
        let path = s.forge().join(format!("{repo}.git"));
        if path.exists() {
            out.push_str(&git(
                &path,
                &["for-each-ref", "--format=%(refname) %(objectname)"],
            ));
        }
    }
    out + &git(s.f.path(), &["rev-parse", "druppie-audit"])
}

/// A run that writes nothing to the forge or the trail.
pub(crate) fn assert_writes_nothing(s: &Setup, what: &str) {
    let before = refs(s);
    let run = apply(s);
    assert_eq!(run.code, 0, "{what}:\n{}", run.transcript());
    assert_eq!(
        refs(s),
        before,
        "{what}: a second run wrote:\n{}",
        run.transcript()
    );
}

/// Every repo druppie wrote (the forge's, the cache's clones, the spec
/// repo) passes `git fsck --strict`, and every commit druppie made in
/// them passes `git verify-commit`.
pub(crate) fn assert_sound(s: &Setup) {
    let mut repos: Vec<PathBuf> = Vec::new();
    for dir in [s.forge(), s.tmp.path().join("cache")] {
        for entry in std::fs::read_dir(&dir).expect("read dir").flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".git") {
                repos.push(entry.path());
            }
            assert!(!name.starts_with(".tmp-"), "a leftover {name} in {dir:?}");
        }
    }
    repos.push(s.f.path().to_owned());
    for repo in &repos {
        s.verify_all(repo);
    }
}

/// Fails when any `*.lock` file is left under `dir`.
fn assert_no_lock_files(dir: &Path) {
    let left: Vec<PathBuf> = walk(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "lock"))
        .collect();
    assert!(left.is_empty(), "lock files left: {left:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Lock files as a process killed while holding them leaves them.
const STALE_LOCKS: [&str; 6] = [
    "refs/heads/main.lock",
    "refs/heads/druppie/prod/permits.lock",
    "packed-refs.lock",
    "HEAD.lock",
    "config.lock",
    "index.lock",
];

/// A lock file written an hour ago, older than a live git holds one.
pub(crate) fn leave_old_lock(path: &Path) {
    let file = std::fs::File::create(path).expect("a stale lock");
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    file.set_modified(hour_ago).expect("mtime");
}

fn leave_stale_locks(git_dir: &Path) {
    for lock in STALE_LOCKS {
        let path = git_dir.join(lock);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, "").expect("a stale lock");
    }
}

#[test]
fn stale_lock_files_in_the_cache_and_the_spec_repo_do_not_stop_apply() {
    let s = with_image(setup("platform-team"));
    let first = apply(&s);
    assert_eq!(first.code, 0, "{}", first.transcript());
    let cache = s.tmp.path().join("cache");
    for repo in ["infra", "permits-app"] {
        leave_stale_locks(&cache.join(format!("{repo}.git")));
    }
    // The spec repo's audit branch, which only druppie writes, and git's
    // own short-lived locks there, as a git killed a while ago left them;
    // an index.lock may be a person's `git commit -a` in its editor.
    let spec_git = s.f.path().join(".git");
    std::fs::write(spec_git.join("refs/heads/druppie-audit.lock"), "").expect("a stale lock");
    let spec = release(&s, 7);
    for lock in ["packed-refs.lock", "HEAD.lock", "config.lock", "index.lock"] {
        leave_old_lock(&spec_git.join(lock));
    }
    let run = apply(&s);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stderr
            .contains("note: infra: removed the stale lock infra.git/refs/heads/main.lock"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("note: spec repo: removed the stale lock refs/heads/druppie-audit.lock"),
        "{}",
        run.stderr
    );
    for lock in ["packed-refs.lock", "HEAD.lock", "config.lock"] {
        let note = format!("note: spec repo: removed the stale lock {lock} (left by a stopped");
        assert!(run.stderr.contains(&note), "{note}:\n{}", run.stderr);
        assert!(!spec_git.join(lock).exists(), "{lock}");
    }
    assert!(
        spec_git.join("index.lock").exists(),
        "a person's index.lock"
    );
    std::fs::remove_file(spec_git.join("index.lock")).expect("index.lock");
    assert!(
        run.stdout.contains("infra (dev) permits: committed "),
        "{}",
        run.stdout
    );
    assert_eq!(spec_commits(&s, "infra", "main")[0], spec);
    assert_no_lock_files(&cache);
    assert_sound(&s);
    assert_writes_nothing(&s, "after the repair");
}

#[test]
fn half_made_and_broken_clones_in_the_cache_are_cloned_again() {
    let s = with_image(setup("platform-team"));
    assert_eq!(apply(&s).code, 0);
    let cache = s.tmp.path().join("cache");
    // A clone cut short (no HEAD, no refs), one whose objects went
    // missing, and a temporary clone a killed run left.
    let infra = cache.join("infra.git");
    std::fs::remove_file(infra.join("HEAD")).expect("HEAD");
    std::fs::remove_dir_all(infra.join("refs")).expect("refs");
    let app = cache.join("permits-app.git");
    std::fs::remove_dir_all(app.join("objects")).expect("objects");
    std::fs::create_dir_all(app.join("objects")).expect("objects");
    std::fs::create_dir_all(cache.join(".tmp-infra-1-2/objects")).expect("temporary clone");
    release(&s, 8);
    let run = apply(&s);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stderr
            .contains("note: infra: the cached clone was not a usable repository; cloned it again"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("infra (dev) permits: committed "),
        "{}",
        run.stdout
    );
    assert_sound(&s);
}

#[test]
fn a_second_apply_waits_for_the_one_holding_the_cache() {
    let s = with_image(setup("platform-team"));
    let cache = s.tmp.path().join("cache");
    std::fs::create_dir_all(&cache).expect("cache");
    let holder = std::fs::File::create(cache.join(".druppie-lock")).expect("lock file");
    holder.lock().expect("hold the cache");
    // A lock file that looks stale, but whose owner (this test) is alive.
    let live = cache.join("infra.git");
    std::fs::create_dir_all(&live).expect("dir");
    std::fs::write(live.join("config.lock"), "").expect("lock");
    let run = std::thread::scope(|scope| {
        let run = scope.spawn(|| apply(&s));
        std::thread::sleep(Duration::from_millis(1500));
        // Still waiting: nothing was touched.
        assert!(live.join("config.lock").exists());
        assert!(!s.forge().join("permits-app.git").exists());
        std::fs::remove_dir_all(&live).expect("clean up");
        drop(holder);
        run.join().expect("apply thread")
    });
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert_sound(&s);
}

#[test]
fn apply_killed_at_random_points_converges_on_the_next_run() {
    let s = with_image(setup("platform-team"));
    let first = apply(&s);
    assert_eq!(first.code, 0, "{}", first.transcript());
    // How long a run with a release to apply takes here, to spread the
    // kills over it.
    let spec = release(&s, 100);
    let started = Instant::now();
    let timed = apply(&s);
    assert_eq!(timed.code, 0, "{}", timed.transcript());
    let span = started.elapsed().as_millis().max(50) as u64;
    let mut released = vec![spec];
    let rounds = 20;
    let mut killed_mid_run = 0;
    for round in 0..rounds {
        let spec = release(&s, 101 + round);
        let mut child = start_apply(&s);
        let delay = fastrand::u64(0..span);
        std::thread::sleep(Duration::from_millis(delay));
        if child.try_wait().expect("wait").is_none() {
            killed_mid_run += 1;
        }
        let _ = child.kill();
        let _ = child.wait();
        if round % 4 == 3 {
            // As if the kill had hit while a ref was locked.
            leave_stale_locks(&s.tmp.path().join("cache/infra.git"));
        }
        let run = apply(&s);
        assert_eq!(
            run.code,
            0,
            "round {round}, killed after {delay} ms:\n{}",
            run.transcript()
        );
        assert_writes_nothing(&s, &format!("round {round}"));
        released.push(spec);
    }
    assert!(
        killed_mid_run >= rounds / 4,
        "only {killed_mid_run} kills hit a running apply"
    );
    println!("{killed_mid_run} of {rounds} kills hit a running apply ({span} ms)");
    // One dev commit per release on main, each once, and the proposal
    // branch at the newest.
    let mut on_main = spec_commits(&s, "infra", "main");
    on_main.truncate(released.len());
    on_main.reverse();
    assert_eq!(on_main, released, "one commit per release, none twice");
    assert_eq!(
        spec_commits(&s, "infra", "druppie/prod/permits")[0],
        *released.last().expect("released")
    );
    assert_no_lock_files(&s.tmp.path().join("cache"));
    assert_sound(&s);
}

#[test]
fn a_push_that_loses_the_forge_s_ref_lock_race_is_retried() {
    let s = with_image(setup("platform-team"));
    assert_eq!(apply(&s).code, 0);
    let infra = s.forge().join("infra.git");
    let sync = s.tmp.path().join("sync");
    std::fs::create_dir_all(&sync).expect("dir");
    // The first push druppie makes to main waits in the forge's hook
    // until a person's push has moved main: receive-pack then finds the
    // ref locked at another value ("cannot lock ref … is at X but
    // expected Y").
    std::fs::write(sync.join("armed"), "").expect("arm");
    let hook = infra.join("hooks/pre-receive");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nd={}\nwhile read old new ref; do\n  if [ \"$ref\" = refs/heads/main ] && rm \"$d/armed\" 2>/dev/null; then\n    touch \"$d/waiting\"\n    i=0; while [ ! -e \"$d/go\" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done\n  fi\ndone\nexit 0\n",
            sync.display()
        ),
    )
    .expect("hook");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let spec = release(&s, 9);
    let work = s.tmp.path().join("work");
    let run = std::thread::scope(|scope| {
        let run = scope.spawn(|| apply(&s));
        let until = Instant::now() + Duration::from_secs(30);
        while !sync.join("waiting").exists() {
            assert!(
                Instant::now() < until,
                "druppie's push never reached the hook"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        git(&work, &["pull", "-q", "--ff-only", "origin", "main"]);
        std::fs::write(work.join("NOTES.md"), "a person's change\n").expect("write");
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-qm", "a person's change"]);
        git(&work, &["push", "-q", "origin", "main"]);
        std::fs::write(sync.join("go"), "").expect("go");
        run.join().expect("apply thread")
    });
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout
            .contains("infra (dev) permits: main moved on the forge; starting over"),
        "{}",
        run.stdout
    );
    let log = git(&infra, &["log", "--format=%s", "main"]);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines[0], "druppie: permits in dev", "{log}");
    assert_eq!(lines[1], "a person's change", "{log}");
    assert_eq!(spec_commits(&s, "infra", "main")[0], spec);
    assert_eq!(
        spec_commits(&s, "infra", "main")
            .iter()
            .filter(|c| **c == spec)
            .count(),
        1
    );
    assert_sound(&s);
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` at `dir`; `Err` says why it cannot.
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(Tmpfs(dir.to_owned()))
    }

    /// Bytes still free.
    fn free(&self) -> u64 {
        let out = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(&self.0)
            .output()
            .expect("df");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .expect("df's figure")
    }

    /// Fills the file system up to `leave` free bytes.
    fn fill(&self, leave: u64) -> PathBuf {
        let filler = self.0.join("filler");
        let _ = std::fs::remove_file(&filler);
        let size = self.free().saturating_sub(leave);
        std::fs::write(&filler, vec![0u8; size as usize]).expect("fill");
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Points the setup's forge at `dir`, where the infra repo is a symbolic
/// link to the one outside it: only the project repo apply creates is
/// made in `dir`.
fn forge_in(s: &Setup, dir: &Path) {
    std::os::unix::fs::symlink(s.forge().join("infra.git"), dir.join("infra.git"))
        .expect("link the infra repo");
    let config = std::fs::read_to_string(&s.config).expect("config");
    let old = format!("base = \"{}\"", s.forge().display());
    assert!(config.contains(&old));
    std::fs::write(
        &s.config,
        config.replace(&old, &format!("base = \"{}\"", dir.display())),
    )
    .expect("config");
}

#[test]
fn a_full_disk_while_a_forge_repo_is_made_leaves_nothing_half_made() {
    let probe = tempfile::tempdir().expect("tmp");
    let fs = match Tmpfs::mount(&probe.path().join("fs"), "4m") {
        Ok(fs) => fs,
        Err(why) => {
            println!("skipped: cannot mount a tmpfs here ({why})");
            return;
        }
    };
    // Free space left when apply runs: below what `git init` needs, then
    // enough for init but not for the first push, and so on.
    let mut failed = Vec::new();
    for (round, leave) in [0u64, 16, 40, 64, 88, 112, 136, 160]
        .into_iter()
        .enumerate()
    {
        let s = with_image(setup("platform-team"));
        let forge = fs.0.join(format!("forge-{round}"));
        std::fs::create_dir_all(&forge).expect("forge");
        forge_in(&s, &forge);
        let filler = fs.fill(leave * 1024);
        let full = apply(&s);
        let app = forge.join("permits-app.git");
        if full.code != 0 {
            // Either no repo at all, or a whole one; never a half-made one.
            if app.exists() {
                git(&app, &["rev-parse", "--git-dir"]);
            }
            assert!(
                full.stderr.contains("No space left on device"),
                "{}",
                full.transcript()
            );
            failed.push((leave, app.exists()));
        }
        let leftovers: Vec<String> = std::fs::read_dir(&forge)
            .expect("forge")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "round {round}: {leftovers:?}");
        std::fs::remove_file(filler).expect("free the space");
        let run = apply(&s);
        assert_eq!(run.code, 0, "round {round}:\n{}", run.transcript());
        git(&app, &["fsck", "--strict"]);
        assert_eq!(
            git(&app, &["show", "main:README.md"]),
            "# permits-app\n\nReplicas: 1\n"
        );
        s.verify_all(&app);
        s.verify_all(&forge.join("infra.git"));
        s.verify_all(&s.tmp.path().join("cache/permits-app.git"));
        s.verify_all(s.f.path());
        std::fs::remove_dir_all(&forge).expect("clean up");
    }
    println!("full-disk rounds that failed (KiB left, repo made): {failed:?}");
    assert!(!failed.is_empty(), "the disk was never too full");
}

#[test]
fn a_half_made_forge_repo_is_finished_or_reported_with_the_command_that_finishes_it() {
    let s = with_image(setup("platform-team"));
    // What `git init --bare` leaves on a full disk: templates, no HEAD,
    // no config, no objects, no refs. Nothing in it to lose: finished.
    let app = s.forge().join("permits-app.git");
    std::fs::create_dir_all(app.join("hooks")).expect("hooks");
    std::fs::write(app.join("description"), "Unnamed repository\n").expect("description");
    let run = apply(&s);
    assert_eq!(run.code, 0, "{}", run.transcript());
    git(&app, &["fsck", "--strict"]);
    assert_eq!(git(&app, &["symbolic-ref", "HEAD"]), "refs/heads/main\n");
    s.verify_all(&app);

    // One that holds objects is left alone and reported, with the command.
    let s = with_image(setup("platform-team"));
    let app = s.forge().join("permits-app.git");
    std::fs::create_dir_all(app.join("objects/ab")).expect("objects");
    std::fs::write(app.join("objects/ab/cdef"), "?").expect("an object");
    let run = apply(&s);
    assert_eq!(run.code, 1, "{}", run.transcript());
    let command = format!("git init --bare {}", app.display());
    assert!(
        run.stderr.contains(&format!("`{command}`")),
        "{}",
        run.stderr
    );
    assert!(app.join("objects/ab/cdef").exists(), "left as it was");
    let out = Command::new("sh")
        .args(["-c", &command])
        .output()
        .expect("sh");
    assert!(out.status.success());
    std::fs::remove_file(app.join("objects/ab/cdef")).expect("the stray object");
    let run = apply(&s);
    assert_eq!(run.code, 0, "{}", run.transcript());
    git(&app, &["fsck", "--strict"]);
    s.verify_all(&app);
}

#[test]
fn a_lock_file_left_in_the_forge_s_repo_is_reported_with_the_command_that_removes_it() {
    let s = with_image(setup("platform-team"));
    assert_eq!(apply(&s).code, 0);
    // A push to the forge killed while receive-pack held main's lock.
    let lock = s.forge().join("infra.git/refs/heads/main.lock");
    std::fs::write(&lock, "").expect("a stale lock on the forge");
    release(&s, 11);
    let run = apply(&s);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr
            .contains("branches kept moving on the forge; gave up after 3 attempts"),
        "{}",
        run.stderr
    );
    let (_, rest) = run
        .stderr
        .split_once("remove it with `")
        .unwrap_or_else(|| panic!("no command in:\n{}", run.stderr));
    let command = rest.split('`').next().expect("the command");
    assert!(command.starts_with("rm "), "{command}");
    assert!(lock.exists(), "the forge's lock is left to its owner");
    let out = Command::new("sh")
        .args(["-c", command])
        .output()
        .expect("sh");
    assert!(out.status.success(), "{command}");
    assert!(!lock.exists());
    let run = apply(&s);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert_sound(&s);
}
