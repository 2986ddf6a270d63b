//! [`reload`]: a spec loaded before, with the plan and stack files that
//! changed since read again, instead of every file.
//!
//! A push that edits one plan of thousands changes one file. When every
//! changed file is one the last load read as a plan or a stack, and reads
//! cleanly as one again, the spec is the last one with those files
//! replaced in place: the same file ids, the same order, what a full
//! [`load`](super::load) of the tree gives. Anything else (a file added
//! or removed, a block, a template, a policy, `platform.yaml`, a file
//! that no longer parses or has a diagnostic, a spec with pins to a
//! block's past version, a link, a name that is not UTF-8, more than a
//! thousand files) is left to a full load, which reports it as it always
//! does.

use std::path::Path;

use super::load::{LoadOptions, PARSE_STACK, Spec};
use super::model::{Plan, Stack};
use super::source::{Bytes, FileId, read_file};
use super::yaml;

/// The spec at `root`: `prev` with the files `changed` since read again
/// (taken out of `prev`), when [`reload`] can; else loaded whole (`prev`
/// left as it was). With whether it was read again. The daemon and its
/// kept render check both open a spec this way.
///
/// # Errors
/// The whole spec is loaded and cannot be read.
pub fn reload_or_load(
    root: &Path,
    prev: Option<&mut Spec>,
    changed: Option<&[String]>,
    options: &LoadOptions,
) -> Result<(Spec, bool), super::LoadError> {
    let started = std::time::Instant::now();
    let read_again = prev
        .zip(changed)
        .and_then(|(prev, changed)| reload(prev, changed, options).map(|()| std::mem::take(prev)));
    let read = match read_again {
        Some(spec) => (spec, true),
        None => (super::load(root, options)?, false),
    };
    tracing::debug!(elapsed = ?started.elapsed(), read_again = read.1, "load");
    Ok(read)
}

/// Whether `changed` is few enough files to read again rather than load
/// the whole spec (a push of many files is a platform-wide change).
pub fn worth_it(changed: &[String]) -> bool {
    changed.len() <= 1000 && changed.iter().map(String::len).sum::<usize>() <= 1 << 20
}

/// `prev`, loaded from `prev.root` with `options`, after the files
/// `changed` (paths relative to the root, as git names them) changed on
/// disk; `None` when a full load is needed (see the module comment).
/// `prev` is left as it was when `None` is returned.
pub fn reload(prev: &mut Spec, changed: &[String], options: &LoadOptions) -> Option<()> {
    // Pins are read from the history, which a change of plan files alone
    // can move (a merge bringing in a block's version): those specs are
    // loaded whole.
    if options.catalog_only
        || options.history.is_some()
        || !prev.pinned.is_empty()
        || !worth_it(changed)
    {
        return None;
    }
    // A name that is not UTF-8 reaches here replaced, and a full load
    // refuses it; each file is read once.
    let distinct: std::collections::HashSet<&String> = changed.iter().collect();
    if distinct.len() != changed.len() || changed.iter().any(|p| p.contains('\u{FFFD}')) {
        return None;
    }
    // Parsing recurses as deep as YAML nests: on a thread with the stack
    // `load` gives it.
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("druppie-reload".into())
            .stack_size(PARSE_STACK)
            .spawn_scoped(scope, || read_again(prev, changed, options))
            .ok()?
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

fn read_again(prev: &mut Spec, changed: &[String], options: &LoadOptions) -> Option<()> {
    let mut ids = Vec::with_capacity(changed.len());
    for path in changed {
        ids.push(prev.files.iter().position(|f| f.path == *path)?);
        // A diagnostic about the file would have to be found again.
        if prev.diagnostics.0.iter().any(|d| d.location.path == *path) {
            return None;
        }
    }
    // What the files read again held goes back, as a whole load would
    // not have counted it; each takes its new size as it is read.
    let counted = |id: &FileId| (prev.files[*id].text.len() as u64).min(options.max_file_bytes);
    let bytes = Bytes::new(prev.bytes_left + ids.iter().map(counted).sum::<u64>());
    let mut read = Vec::with_capacity(changed.len());
    for (path, id) in changed.iter().zip(ids) {
        let disk = regular_file(&prev.root, path)?;
        let file = read_file(&prev.root, &disk, options.max_file_bytes, 0, &bytes).ok()?;
        let entry = if let Some(at) = prev.plans.iter().position(|p| p.file == id) {
            let plan = yaml::parse::<Plan>(&file, &file.text).ok()?;
            // Pins are read from the history with their own diagnostics.
            if !plan.blocks.is_empty() || !prev.plans[at].blocks.is_empty() {
                return None;
            }
            Entry::Plan(at, Plan { file: id, ..plan })
        } else if let Some(at) = prev.stacks.iter().position(|s| s.file == id) {
            let stack = yaml::parse::<Stack>(&file, &file.text).ok()?;
            Entry::Stack(at, Stack { file: id, ..stack })
        } else {
            return None;
        };
        read.push((id, file, entry));
    }
    for (id, file, entry) in read {
        prev.files[id] = file;
        match entry {
            Entry::Plan(at, plan) => {
                prev.plans[at] = plan;
                // Its own rules are checked again.
                if let Some(checked) = prev.plan_checks.get_mut(at) {
                    *checked = None;
                }
            }
            Entry::Stack(at, stack) => {
                prev.stacks[at] = stack;
                // A stack's plans read it.
                prev.plan_checks.clear();
            }
        }
    }
    prev.bytes_left = bytes.left();
    Some(())
}

enum Entry {
    Plan(usize, Plan),
    Stack(usize, Stack),
}

/// `path` under `root` on disk, when it and every directory above it
/// (below the root) are what the load's walk accepts: directories and a
/// regular file, no link.
fn regular_file(root: &Path, path: &str) -> Option<std::path::PathBuf> {
    let mut disk = root.to_path_buf();
    let parts: Vec<&str> = path.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() || *part == "." || *part == ".." {
            return None;
        }
        disk.push(part);
        let kind = std::fs::symlink_metadata(&disk).ok()?.file_type();
        let last = i + 1 == parts.len();
        if (last && !kind.is_file()) || (!last && !kind.is_dir()) {
            return None;
        }
    }
    Some(disk)
}

#[cfg(test)]
mod tests;
