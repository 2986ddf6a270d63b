//! Stamps the binary with the commit it was built from, for `druppie
//! --version`: `DRUPPIE_COMMIT` when the builder sets it (an image build
//! has no `.git`), else `git rev-parse HEAD`, else `unknown`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=DRUPPIE_COMMIT");
    // HEAD, the branch it names and packed refs: a new commit or checkout
    // stamps the build again (a worktree keeps them outside `.git/`).
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    watched.extend(git(&["rev-parse", "--symbolic-full-name", "HEAD"]));
    for name in watched {
        // A path that does not exist would make every build run this again.
        if let Some(path) =
            git(&["rev-parse", "--git-path", &name]).filter(|p| std::path::Path::new(p).exists())
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let commit = std::env::var("DRUPPIE_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=DRUPPIE_COMMIT={commit}");
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
