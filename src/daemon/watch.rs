//! Watching a local spec checkout: a change to a spec file, or a commit
//! or checkout (git's log of `HEAD`), asks for a reconcile once the files
//! have been quiet for a moment, so saving a file re-renders within a
//! second and a `git checkout` is one reconcile. Only the spec
//! directories are watched, not build or cache directories beside them.

use std::path::{Component, Path};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

use super::queue::Trigger;
use super::source::SPEC_DIRS;
use super::state::Shared;

/// How long the files must be quiet before the reconcile.
pub const QUIET: Duration = Duration::from_millis(200);

/// Watches `root` until the returned watcher is dropped.
///
/// # Errors
/// The platform's file watcher cannot be started.
pub fn start(root: &Path, shared: Arc<Shared>) -> notify::Result<notify::RecommendedWatcher> {
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let base = root.to_owned();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if event.kind.is_access() {
            return;
        }
        if event.paths.iter().any(|p| is_spec(&base, p)) {
            let _ = tx.send(());
        }
    })?;
    for dir in SPEC_DIRS {
        let path = root.join(dir);
        if path.is_dir() {
            watcher.watch(&path, RecursiveMode::Recursive)?;
        }
    }
    // Commits and checkouts append to `.git/logs/HEAD`; druppie's own
    // audit commits move another branch and do not.
    let logs = root.join(".git/logs");
    if logs.is_dir() {
        watcher.watch(&logs, RecursiveMode::NonRecursive)?;
    }
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Debounce: wait until nothing arrives for QUIET.
            while let Ok(Some(())) = tokio::time::timeout(QUIET, rx.recv()).await {}
            shared.queue.push(Trigger::Watch);
        }
    });
    Ok(watcher)
}

/// Whether `path` is part of the spec (under one of its directories) or
/// the log of `HEAD`.
fn is_spec(root: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(root) else {
        return false;
    };
    if rel == Path::new(".git/logs/HEAD") {
        return true;
    }
    match rel.components().next() {
        Some(Component::Normal(first)) => first.to_str().is_some_and(|f| SPEC_DIRS.contains(&f)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_spec_directories_count_as_edits() {
        let root = Path::new("/srv/spec");
        assert!(is_spec(root, Path::new("/srv/spec/spec/plans/a.yaml")));
        assert!(is_spec(
            root,
            Path::new("/srv/spec/templates/x/infra/d.yaml.j2")
        ));
        assert!(!is_spec(root, Path::new("/srv/spec/.git/index")));
        assert!(is_spec(root, Path::new("/srv/spec/.git/logs/HEAD")));
        assert!(!is_spec(
            root,
            Path::new("/srv/spec/.git/logs/refs/heads/druppie-audit")
        ));
        assert!(!is_spec(
            root,
            Path::new("/srv/spec/.druppie/cache/infra.git/HEAD")
        ));
        assert!(!is_spec(root, Path::new("/srv/spec/target/debug/x")));
        assert!(!is_spec(root, Path::new("/elsewhere/spec/a.yaml")));
    }
}
