//! Watching a local spec checkout: a change to a spec file asks for a
//! reconcile once the files have been quiet for a moment, so saving a
//! file re-renders within a second and a `git checkout` is one reconcile.

use std::path::{Component, Path};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

use super::queue::Trigger;
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
    watcher.watch(root, RecursiveMode::Recursive)?;
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Debounce: wait until nothing arrives for QUIET.
            while let Ok(Some(())) = tokio::time::timeout(QUIET, rx.recv()).await {}
            shared.queue.push(Trigger::Watch);
        }
    });
    Ok(watcher)
}

/// Whether `path` is part of the spec: under one of its directories, not
/// git's own files or a cache.
fn is_spec(root: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(root) else {
        return false;
    };
    let mut parts = rel.components();
    match parts.next() {
        Some(Component::Normal(first)) => {
            matches!(
                first.to_str(),
                Some("bouwblokken" | "skills" | "templates" | "spec")
            )
        }
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
        assert!(!is_spec(
            root,
            Path::new("/srv/spec/.druppie/cache/infra.git/HEAD")
        ));
        assert!(!is_spec(root, Path::new("/srv/spec/target/debug/x")));
        assert!(!is_spec(root, Path::new("/elsewhere/spec/a.yaml")));
    }
}
