//! The daemon's clone of a remote spec repo: after every refresh its
//! files are exactly the fetched commit's, as git itself would write them
//! (`git archive` is the reference), whether the refresh checked out only
//! the files that changed or the whole commit.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{PermissionsExt as _, symlink};
use std::path::Path;
use std::process::Command;

use crate::support::{git, keygen, remote_spec};

/// A work repo pushing to a bare "remote" the daemon's source clones.
struct Remote {
    _tmp: tempfile::TempDir,
    work: std::path::PathBuf,
    bare: std::path::PathBuf,
    cache: std::path::PathBuf,
    key: std::path::PathBuf,
}

impl Remote {
    fn new() -> Remote {
        let tmp = tempfile::tempdir().expect("tmp");
        let work = tmp.path().join("work");
        std::fs::create_dir_all(&work).expect("mkdir");
        git(&work, &["init", "-q"]);
        let bare = tmp.path().join("spec.git");
        git(tmp.path(), &["init", "-q", "--bare", "spec.git"]);
        let key = keygen(tmp.path());
        Remote {
            cache: tmp.path().join("cache"),
            work,
            bare,
            key,
            _tmp: tmp,
        }
    }

    fn source(&self) -> druppie::daemon::SpecSource {
        remote_spec(&self.bare, &self.cache, &self.key)
    }

    fn write(&self, path: impl AsRef<Path>, text: &str) {
        let file = self.work.join(path);
        std::fs::create_dir_all(file.parent().expect("a parent")).expect("mkdir");
        std::fs::write(file, text).expect("write");
    }

    fn remove(&self, path: &str) {
        let at = self.work.join(path);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&at).expect("rm -r"),
            Ok(_) => std::fs::remove_file(&at).expect("rm"),
            Err(_) => {}
        }
    }

    /// Commits the work tree as it is and pushes it; the commit's id.
    fn push(&self, message: &str) -> String {
        git(&self.work, &["add", "-A"]);
        git(
            &self.work,
            &["commit", "-q", "--allow-empty", "-m", message],
        );
        let bare = self.bare.to_str().expect("utf-8");
        git(&self.work, &["push", "-q", "--force", bare, "HEAD:main"]);
        git(&self.work, &["rev-parse", "HEAD"]).trim().to_owned()
    }
}

/// `spec/plans/n<0xff>.yaml`.
fn not_utf8() -> &'static Path {
    Path::new(OsStr::from_bytes(b"spec/plans/n\xff.yaml"))
}

/// `commit` as git writes it, in `dest`.
fn archived(repo: &Path, commit: &str, dest: &Path) {
    std::fs::create_dir_all(dest).expect("mkdir");
    let tar = Command::new("git")
        .args(["archive", "--format=tar", commit])
        .current_dir(repo)
        .output()
        .expect("git archive");
    assert!(tar.status.success());
    let mut untar = Command::new("tar")
        .args(["-x", "-C"])
        .arg(dest)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("tar");
    std::io::Write::write_all(untar.stdin.as_mut().expect("stdin"), &tar.stdout).expect("feed tar");
    assert!(untar.wait().expect("tar ends").success());
}

/// Every path under `root` but `.git`: its kind, mode bits, and content
/// or link target.
fn listing(root: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let entry = entry.expect("entry");
            let path = entry.path();
            let name = path.strip_prefix(root).expect("under root");
            if name == Path::new(".git") {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path).expect("stat");
            let what = if meta.file_type().is_symlink() {
                format!(
                    "link -> {}",
                    std::fs::read_link(&path).expect("readlink").display()
                )
            } else if meta.is_dir() {
                stack.push(path.clone());
                "dir".to_owned()
            } else {
                let exec = meta.permissions().mode() & 0o111 != 0;
                let text = std::fs::read(&path).expect("read");
                format!("file exec={exec} {}", String::from_utf8_lossy(&text))
            };
            // Debug keeps a name that is not UTF-8 apart from its lossy twin.
            out.push((format!("{name:?}"), what));
        }
    }
    out.sort();
    out
}

/// How a refresh brought the clone to the fetched commit.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    /// Only the changed files were checked out.
    ByPath,
    /// The whole commit was checked out and the clone cleaned.
    Whole,
}

/// Refreshes `source`, holds its clone to `commit`, file by file, and
/// says which route the refresh took: a file nobody tracks, left in the
/// clone before, is gone only after a whole checkout (`git clean`).
fn refreshed_to(
    source: &druppie::daemon::SpecSource,
    cache: &druppie::apply::Cache,
    remote: &Remote,
    commit: &str,
) -> (druppie::daemon::Revision, Route) {
    let clone = source.root();
    let marker = clone.join("left-by-the-test");
    if clone.join(".git").is_dir() {
        std::fs::write(&marker, "untracked\n").expect("write the marker");
    }
    let revision = source.refresh(cache).expect("refresh");
    let route = if std::fs::remove_file(&marker).is_ok() {
        Route::ByPath
    } else {
        Route::Whole
    };
    assert_eq!(revision.commit.as_deref(), Some(commit));
    assert_eq!(git(clone, &["rev-parse", "HEAD"]).trim(), commit);
    let want = tempfile::tempdir().expect("tmp");
    archived(&remote.work, commit, want.path());
    assert_eq!(listing(clone), listing(want.path()), "at {commit}");
    // git agrees: nothing staged, changed, untracked or ignored.
    let status = git(
        clone,
        &[
            "status",
            "--porcelain",
            "--untracked-files=all",
            "--ignored",
        ],
    );
    assert_eq!(status, "", "at {commit}");
    (revision, route)
}

#[test]
fn the_spec_clone_holds_exactly_each_fetched_commit_through_every_kind_of_change() {
    let remote = Remote::new();
    let cache = druppie::apply::Cache::new(&remote.cache, Vec::new());
    let source = remote.source();

    remote.write("spec/plans/a.yaml", "a: 1\n");
    remote.write("spec/plans/b.yaml", "b: 1\n");
    remote.write("x", "a file\n");
    remote.write("tools/run.sh", "#!/bin/sh\n");
    std::fs::set_permissions(
        remote.work.join("tools/run.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    symlink("spec/plans/a.yaml", remote.work.join("link")).expect("symlink");
    let first = remote.push("first");
    let (revision, route) = refreshed_to(&source, &cache, &remote, &first);
    assert_eq!(revision.changes, None, "a new clone has nothing to compare");
    assert_eq!(route, Route::Whole);

    // Edited, deleted (its directory with it), added.
    remote.write("spec/plans/a.yaml", "a: 2\n");
    remote.remove("spec/plans/b.yaml");
    remote.write("spec/stacks/s.yaml", "s: 1\n");
    let second = remote.push("edit, delete, add");
    let (revision, route) = refreshed_to(&source, &cache, &remote, &second);
    assert_eq!(route, Route::ByPath);
    let changes = revision.changes.expect("the changed files");
    assert_eq!(changes.from, first);
    assert_eq!(
        changes.paths,
        [
            "spec/plans/a.yaml",
            "spec/plans/b.yaml",
            "spec/stacks/s.yaml"
        ]
    );

    // A file becomes a directory; a link becomes a file; a script loses
    // its mode.
    remote.remove("x");
    remote.write("x/inside.yaml", "inside: 1\n");
    remote.remove("link");
    remote.write("link", "now a file\n");
    std::fs::set_permissions(
        remote.work.join("tools/run.sh"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    let third = remote.push("file to dir, link to file");
    let (_, route) = refreshed_to(&source, &cache, &remote, &third);
    assert_eq!(route, Route::ByPath);

    // A directory becomes a link (to a directory of the clone); names
    // that would be pathspec magic or globs if git read them as such.
    remote.remove("x");
    symlink("spec", remote.work.join("x")).expect("symlink");
    remote.write("spec/plans/*.yaml", "star: 1\n");
    remote.write("spec/plans/[ab].yaml", "class: 1\n");
    remote.write(":(top)spec", "magic: 1\n");
    // A name that is not UTF-8, and the name it becomes when read as
    // UTF-8 with a replacement character.
    remote.write(not_utf8(), "raw: 1\n");
    remote.write("spec/plans/n\u{FFFD}.yaml", "twin: 1\n");
    let fourth = remote.push("dir to link, odd names");
    let (revision, route) = refreshed_to(&source, &cache, &remote, &fourth);
    assert_eq!(revision.changes.expect("changes").paths.len(), 7);
    // git will not check out a path below what became a link; the name
    // that is not UTF-8 is not tried.
    assert_eq!(route, Route::Whole);

    // Edits to the odd names reach only them.
    remote.write("spec/plans/*.yaml", "star: 2\n");
    remote.write("spec/plans/[ab].yaml", "class: 2\n");
    remote.write(":(top)spec", "magic: 2\n");
    let fifth = remote.push("odd names edited");
    let (_, route) = refreshed_to(&source, &cache, &remote, &fifth);
    assert_eq!(route, Route::ByPath);
    remote.write(not_utf8(), "raw: 2\n");
    let raw = remote.push("the name that is not UTF-8 edited");
    let (_, route) = refreshed_to(&source, &cache, &remote, &raw);
    assert_eq!(route, Route::Whole);

    // Attributes change how git writes the other files: a change of
    // `.gitattributes` is checked out whole, with the new rules for
    // every file, also one whose name sorts before it.
    remote.write(".gitattributes", "*.txt text eol=lf\n");
    remote.write("-early.txt", "one\ntwo\n");
    remote.write("notes.txt", "one\ntwo\n");
    let attributes = remote.push("attributes");
    refreshed_to(&source, &cache, &remote, &attributes);
    remote.write(".gitattributes", "*.txt text eol=crlf\n");
    remote.write("-early.txt", "one\ntwo\nthree\n");
    remote.write("notes.txt", "one\ntwo\nthree\n");
    let crlf = remote.push("attributes changed with the files");
    let (_, route) = refreshed_to(&source, &cache, &remote, &crlf);
    assert_eq!(route, Route::Whole);
    for file in ["-early.txt", "notes.txt"] {
        let text = std::fs::read(source.root().join(file)).expect("read");
        assert_eq!(text, b"one\r\ntwo\r\nthree\r\n", "{file}");
    }

    // More files than are checked out one by one: the whole commit.
    for i in 0..300 {
        remote.write(&format!("spec/plans/many-{i:03}.yaml"), "n: 1\n");
    }
    let sixth = remote.push("many files");
    let (revision, route) = refreshed_to(&source, &cache, &remote, &sixth);
    assert_eq!(revision.changes.expect("changes").paths.len(), 300);
    assert_eq!(route, Route::Whole);

    // Back to the first tree, over a force push; then a commit with no
    // change of files.
    git(&remote.work, &["reset", "-q", "--hard", &first]);
    git(
        &remote.work,
        &["commit", "-q", "--allow-empty", "-m", "as first"],
    );
    let bare = remote.bare.to_str().expect("utf-8");
    git(&remote.work, &["push", "-q", "--force", bare, "HEAD:main"]);
    let again = git(&remote.work, &["rev-parse", "HEAD"]).trim().to_owned();
    refreshed_to(&source, &cache, &remote, &again);
    let empty = remote.push("nothing changed");
    let (revision, route) = refreshed_to(&source, &cache, &remote, &empty);
    assert_eq!(route, Route::ByPath);
    assert_eq!(
        revision.changes.expect("changes").paths,
        Vec::<String>::new()
    );
}

#[test]
fn a_checkout_left_half_done_by_an_ended_process_is_put_right_by_the_next() {
    let remote = Remote::new();
    let cache = druppie::apply::Cache::new(&remote.cache, Vec::new());
    remote.write("spec/plans/a.yaml", "a: 1\n");
    remote.write("spec/plans/b.yaml", "b: 1\n");
    let first = remote.push("first");
    refreshed_to(&remote.source(), &cache, &remote, &first);
    remote.write("spec/plans/a.yaml", "a: 2\n");
    let second = remote.push("a edited");

    // A process ended between writing a changed file and moving `HEAD`:
    // the clone's index and file are the second commit's, `HEAD` the
    // first's.
    let clone = remote.source().root().to_owned();
    git(&clone, &["fetch", "-q", "origin"]);
    git(
        &clone,
        &["checkout", "-q", &second, "--", "spec/plans/a.yaml"],
    );
    assert_eq!(git(&clone, &["rev-parse", "HEAD"]).trim(), first);

    // The edit is taken back before the next process starts: from `HEAD`,
    // nothing changed in a.yaml, but b.yaml did.
    remote.write("spec/plans/a.yaml", "a: 1\n");
    remote.write("spec/plans/b.yaml", "b: 2\n");
    let third = remote.push("a back, b edited");
    assert_eq!(
        git(&remote.work, &["diff", "--name-only", &first, &third]).trim(),
        "spec/plans/b.yaml"
    );
    let (revision, route) = refreshed_to(&remote.source(), &cache, &remote, &third);
    assert_eq!(route, Route::Whole, "a new process checks out whole");
    assert_eq!(
        revision.changes.expect("changes").paths,
        ["spec/plans/b.yaml"]
    );
    assert_eq!(
        std::fs::read_to_string(clone.join("spec/plans/a.yaml")).expect("read"),
        "a: 1\n"
    );
}

/// Runs git in `dir` with `input` on its standard input; its output.
fn git_fed(dir: &Path, args: &[&str], input: &str) -> String {
    let mut child = Command::new("git")
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("git");
    std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), input.as_bytes())
        .expect("feed git");
    let out = child.wait_with_output().expect("git ends");
    assert!(out.status.success(), "git {args:?}");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

#[test]
fn a_commit_git_will_not_check_out_whole_is_not_checked_out_by_path_either() {
    // Trees made by hand, as a forge that does not check pushed objects
    // takes them: an entry named `.`, and `.gitmodules` as a link.
    let remote = Remote::new();
    let cache = druppie::apply::Cache::new(&remote.cache, Vec::new());
    let source = remote.source();
    let work = &remote.work;
    let blob = |text: &str| git_fed(work, &["hash-object", "-w", "--stdin"], text);
    let tree = |entries: &[(&str, &str, &str)]| {
        let listing: String = entries
            .iter()
            .map(|(mode, id, name)| {
                let kind = if *mode == "040000" { "tree" } else { "blob" };
                format!("{mode} {kind} {id}\t{name}\n")
            })
            .collect();
        git_fed(work, &["mktree"], &listing)
    };
    let bare = remote.bare.to_str().expect("utf-8");
    let mut parent: Option<String> = None;
    let mut push = |root: &str| {
        let mut args = vec!["commit-tree", root, "-m", "made by hand"];
        if let Some(p) = &parent {
            args.extend(["-p", p.as_str()]);
        }
        let commit = git(work, &args).trim().to_owned();
        git(
            work,
            &[
                "push",
                "-q",
                "--force",
                bare,
                &format!("{commit}:refs/heads/main"),
            ],
        );
        parent = Some(commit.clone());
        commit
    };
    let modules = blob("# none\n");
    let spec = |a: &str| tree(&[("100644", &blob(a), "a.yaml")]);
    let first = push(&tree(&[
        ("100644", &modules, ".gitmodules"),
        ("040000", &spec("a: 1\n"), "spec"),
    ]));
    refreshed_to(&source, &cache, &remote, &first);

    let dotted = tree(&[
        ("100644", &blob("dot\n"), "."),
        ("100644", &blob("a: 2\n"), "a.yaml"),
    ]);
    push(&tree(&[
        ("100644", &modules, ".gitmodules"),
        ("040000", &dotted, "spec"),
    ]));
    assert!(source.refresh(&cache).is_err(), "an entry named `.`");
    assert_eq!(git(source.root(), &["rev-parse", "HEAD"]).trim(), first);

    push(&tree(&[
        ("120000", &blob("/etc/passwd"), ".gitmodules"),
        ("040000", &spec("a: 3\n"), "spec"),
    ]));
    assert!(source.refresh(&cache).is_err(), "`.gitmodules` as a link");
    assert!(
        !std::fs::symlink_metadata(source.root().join(".gitmodules"))
            .expect("still there")
            .file_type()
            .is_symlink()
    );

    // A commit git checks out puts the clone right again.
    let fine = push(&tree(&[
        ("100644", &modules, ".gitmodules"),
        ("040000", &spec("a: 4\n"), "spec"),
    ]));
    refreshed_to(&source, &cache, &remote, &fine);
}
