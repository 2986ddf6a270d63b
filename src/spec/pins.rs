//! Pinned blocks: a plan that writes `blocks: {<id>: "<version>"}` uses
//! that block as it was at the newest commit (reachable from the spec's
//! commit) whose `bouwblokken/` file for it declared that version: its
//! frontmatter and its `templates/<id>/` and `templates/_partials/`
//! from that commit.
//!
//! History is read as hostile as the checkout is: through gix, without a
//! checkout and without following anything. A symbolic link, a submodule,
//! a name that is not UTF-8 or is empty, `.`, `..` or holds `/`, `\` or
//! NUL, a tree nested deeper than [`walk::MAX_DEPTH`], a template over
//! 1 MiB or a block file over the spec file limit refuses the pin with an
//! error at the pin. At most [`MAX_COMMITS`] commits are read, and each
//! version of a block file is parsed once. A spec with no pins reads no
//! history at all.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::diag::{Diagnostic, Location};
use super::load::Loader;
use super::model::{BlockMeta, Pinned};
use super::source::{FileId, source_file};
use super::walk::MAX_DEPTH;
use super::yaml::Str;
use super::{frontmatter, names, yaml};
use crate::git::history::{Bounded, EntryKind, Lookup, Reader, Walk};
use crate::git::{ObjectId, Repo};

/// A git repository and commit whose history pinned blocks are read
/// from, for a spec that is not a checkout of it (an exported revision).
#[derive(Debug, Clone)]
pub struct History {
    /// The repository (a work tree or a bare repository).
    pub repo: PathBuf,
    /// The commit the spec is at; pins resolve among its ancestors.
    pub commit: ObjectId,
    /// The spec root's directory in the repository (empty: its root).
    pub prefix: String,
}

/// Commits read, newest first, looking for a pinned version.
pub const MAX_COMMITS: usize = 50_000;
/// A template file larger than this is refused (as in a checkout).
const MAX_TEMPLATE_BYTES: u64 = 1024 * 1024;
/// Bytes of templates read from history in one load, all pins together.
const MAX_PINNED_BYTES: u64 = 256 * 1024 * 1024;

/// Where each pin of one (block, version) is written: (plan file, version).
type Sites = Vec<(FileId, Str)>;

/// Resolves every pin of a plan whose stack uses the pinned block; the
/// other pins are reported by `validate`. Each (block, version) is read
/// once; what fails is an error at each pin that asked for it.
pub(super) fn resolve(loader: &mut Loader<'_>) {
    let wanted = wanted(loader);
    if wanted.is_empty() {
        return;
    }
    let history = match open(&loader.spec.root, loader.options.history.as_ref()) {
        Ok(h) => h,
        Err(why) => {
            for sites in wanted.values() {
                report(loader, sites, &why, Some(NOT_GIT_HELP));
            }
            return;
        }
    };
    let found = match search(loader, &history, &wanted) {
        Ok(found) => found,
        Err(e) => {
            let why = format!(
                "cannot read the spec repo's history: {}",
                crate::error::chain(&e)
            );
            for sites in wanted.values() {
                report(loader, sites, &why, None);
            }
            return;
        }
    };
    let mut read_bytes = 0u64;
    for ((id, version), sites) in &wanted {
        let Some(at) = found.hits.get(&(id.clone(), version.clone())) else {
            let seen = found.versions.get(id).map_or_else(Vec::new, Clone::clone);
            let listed = if seen.is_empty() {
                format!("no version of `{id}` was found in the history")
            } else {
                format!(
                    "versions of `{id}` in the history (newest first): {}",
                    seen.join(", ")
                )
            };
            let more = if found.truncated {
                format!("; only the newest {MAX_COMMITS} commits were read")
            } else {
                String::new()
            };
            let why = format!("no commit of the spec repo has block `{id}` at version `{version}`");
            report(loader, sites, &why, Some(&format!("{listed}{more}")));
            continue;
        };
        if let Err(why) = pin(loader, &history, id, at, &mut read_bytes) {
            let short = &at.commit.to_string()[..12];
            let why = format!("block `{id}` version `{version}` (commit {short}): {why}");
            report(loader, sites, &why, None);
        }
    }
}

const NOT_GIT_HELP: &str = "a pinned version is read from the spec repo's git history: run druppie on a git checkout of the spec repo, or remove the pin";

/// The pins to resolve: (block id, version) -> where each is written.
fn wanted(loader: &Loader<'_>) -> BTreeMap<(String, String), Sites> {
    let spec = &loader.spec;
    let mut wanted: BTreeMap<(String, String), Sites> = BTreeMap::new();
    for plan in spec.plans.iter().filter(|p| !p.blocks.is_empty()) {
        let Some(stack) = spec.stack(&plan.stack.value) else {
            continue;
        };
        for (block, version) in plan.blocks.iter() {
            let used = stack
                .components
                .iter()
                .any(|(_, c)| c.block.value == block.value);
            if !used || names::id(&block.value).is_err() {
                continue;
            }
            wanted
                .entry((block.value.clone(), version.value.clone()))
                .or_default()
                .push((plan.file, version.clone()));
        }
    }
    wanted
}

fn report(loader: &mut Loader<'_>, sites: &Sites, why: &str, help: Option<&str>) {
    for (file, version) in sites {
        let f = loader.spec.file(*file);
        let d = Diagnostic::error(why, Location::new(f, f.pos(&version.referenced)));
        loader.spec.diagnostics.push(match help {
            Some(help) => d.with_help(help),
            None => d,
        });
    }
}

/// The repository, the commit and the spec's directory in it.
struct Opened {
    repo: Reader,
    commit: ObjectId,
    /// `""` or `dir/`.
    prefix: String,
}

impl Opened {
    fn path(&self, rel: &str) -> String {
        format!("{}{rel}", self.prefix)
    }
}

fn open(root: &Path, given: Option<&History>) -> Result<Opened, String> {
    let with_slash = |p: &str| {
        if p.is_empty() {
            String::new()
        } else {
            format!("{}/", p.trim_end_matches('/'))
        }
    };
    if let Some(h) = given {
        let repo = Repo::open(&h.repo)
            .ok()
            .flatten()
            .ok_or_else(|| format!("`{}` is not a git repository", h.repo.display()))?;
        return Ok(Opened {
            repo: repo.reader(),
            commit: h.commit,
            prefix: with_slash(&h.prefix),
        });
    }
    let not_git =
        || "the spec is not in a git repository, so a pinned version cannot be read".to_owned();
    let repo = Repo::discover(root).ok_or_else(not_git)?;
    let work: PathBuf = repo.work_dir().ok_or_else(not_git)?.to_owned();
    let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_owned());
    let rel = canonical(root)
        .strip_prefix(canonical(&work))
        .map(|r| super::source::slash_path(Path::new(""), r))
        .map_err(|_| not_git())?;
    let commit = repo.resolve("HEAD").map_err(|_| {
        "the spec repo has no commit yet, so a pinned version cannot be read".to_owned()
    })?;
    Ok(Opened {
        repo: repo.reader(),
        commit,
        prefix: with_slash(&rel),
    })
}

/// Where a pinned version was found.
struct Hit {
    commit: ObjectId,
    /// The block file, relative to the spec root.
    path: String,
    blob: ObjectId,
}

#[derive(Default)]
struct Found {
    hits: HashMap<(String, String), Hit>,
    /// Block id -> versions seen, newest first.
    versions: HashMap<String, Vec<String>>,
    truncated: bool,
}

/// Walks the history once, newest first, until every pin is found.
fn search(
    loader: &Loader<'_>,
    history: &Opened,
    wanted: &BTreeMap<(String, String), Sites>,
) -> Result<Found, crate::git::Error> {
    let spec = &loader.spec;
    let limit = loader.options.max_file_bytes;
    // Block id -> the files that may hold it: where it is now, and the
    // names a block file takes.
    let mut candidates: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (id, _) in wanted.keys() {
        candidates.entry(id.as_str()).or_insert_with(|| {
            let mut paths: Vec<String> = spec
                .block(id)
                .map(|b| spec.file(b.file).path.clone())
                .into_iter()
                .collect();
            for ext in ["md", "yaml", "yml"] {
                let p = format!("bouwblokken/{id}.{ext}");
                if !paths.contains(&p) {
                    paths.push(p);
                }
            }
            paths
        });
    }
    let mut found = Found::default();
    // Blob -> (id, version) of the block it holds, parsed once.
    let mut parsed: HashMap<ObjectId, Option<(String, String)>> = HashMap::new();
    let mut last_dir = None;
    let dir = history.path("bouwblokken");
    let truncated = history
        .repo
        .ancestors(history.commit, MAX_COMMITS, |commit| {
            // Nothing under bouwblokken/ changed: nothing new to see.
            let here = match history.repo.entry_at(commit, &dir)? {
                Lookup::Found(e) if e.kind == EntryKind::Tree => Some(e.id),
                _ => None,
            };
            if here.is_none() || here == last_dir {
                last_dir = here;
                return Ok(Walk::Next);
            }
            last_dir = here;
            for (id, paths) in &candidates {
                for path in paths {
                    let Lookup::Found(entry) =
                        history.repo.entry_at(commit, &history.path(path))?
                    else {
                        continue;
                    };
                    if entry.kind != EntryKind::Blob {
                        continue;
                    }
                    let meta = match parsed.get(&entry.id) {
                        Some(m) => m.clone(),
                        None => {
                            let m = read_version(&history.repo, entry.id, path, limit)?;
                            parsed.insert(entry.id, m.clone());
                            m
                        }
                    };
                    let Some((block, version)) = meta else {
                        continue;
                    };
                    if block != *id {
                        continue;
                    }
                    let seen = found.versions.entry(block.clone()).or_default();
                    if !seen.contains(&version) {
                        seen.push(version.clone());
                    }
                    let key = (block, version);
                    if wanted.contains_key(&key) && !found.hits.contains_key(&key) {
                        found.hits.insert(
                            key,
                            Hit {
                                commit,
                                path: path.clone(),
                                blob: entry.id,
                            },
                        );
                    }
                    break;
                }
            }
            Ok(if found.hits.len() == wanted.len() {
                Walk::Stop
            } else {
                Walk::Next
            })
        })?;
    found.truncated = truncated;
    Ok(found)
}

/// The id and version a historical block file declares, if it parses.
fn read_version(
    repo: &Reader,
    blob: ObjectId,
    path: &str,
    limit: u64,
) -> Result<Option<(String, String)>, crate::git::Error> {
    let Bounded::Bytes(bytes) = repo.blob_within(blob, limit)? else {
        return Ok(None);
    };
    let Ok(file) = source_file(path.to_owned(), Path::new(""), bytes, limit, 0) else {
        return Ok(None);
    };
    let yaml_text = if path.ends_with(".md") {
        match frontmatter::split(&file.text) {
            Ok(s) => s.yaml.to_owned(),
            Err(_) => return Ok(None),
        }
    } else {
        file.text.clone()
    };
    Ok(yaml::parse::<BlockMeta>(&file, &yaml_text)
        .ok()
        .map(|m| (m.id.value, m.version.value)))
}

/// Reads the block and its templates at `at` into [`super::Spec::pinned`].
fn pin(
    loader: &mut Loader<'_>,
    history: &Opened,
    id: &str,
    at: &Hit,
    read_bytes: &mut u64,
) -> Result<(), String> {
    let failed = |e: crate::git::Error| format!("cannot read it: {}", crate::error::chain(&e));
    let limit = loader.options.max_file_bytes;
    let bytes = match history.repo.blob_within(at.blob, limit).map_err(failed)? {
        Bounded::Bytes(b) => b,
        _ => return Err(format!("`{}` cannot be read", at.path)),
    };
    let mut files = Vec::new();
    for dir in [id, "_partials"] {
        read_tree(loader, history, at.commit, dir, read_bytes, &mut files)?;
    }
    let short = &at.commit.to_string()[..12];
    let is_md = at.path.ends_with(".md");
    let file = source_file(
        format!("{short}:{}", at.path),
        Path::new(""),
        bytes,
        limit,
        u32::from(is_md),
    )
    .map_err(|d| d.message.clone())?;
    loader.spec.files.push(file);
    let file_id = loader.spec.files.len() - 1;
    let Some(mut block) = loader.block_in(file_id, is_md) else {
        return Err(format!("`{}` does not parse at that commit", at.path));
    };
    let own = format!("{id}/");
    block.templates = files
        .iter()
        .any(|(p, _)| p.starts_with(&own))
        .then(|| Path::new("templates").join(id));
    block.pin = Some(Pinned {
        commit: at.commit.to_string(),
        files,
    });
    loader.spec.pinned.push(block);
    Ok(())
}

/// Reads `templates/<dir>/**` at `commit` into `files` (paths below
/// `templates/`), refusing what a checkout would not hold as plain files.
fn read_tree(
    loader: &mut Loader<'_>,
    history: &Opened,
    commit: ObjectId,
    dir: &str,
    read_bytes: &mut u64,
    files: &mut Vec<(String, Vec<u8>)>,
) -> Result<(), String> {
    let failed =
        |e: crate::git::Error| format!("cannot read its templates: {}", crate::error::chain(&e));
    let base = format!("templates/{dir}");
    let tree = match history
        .repo
        .entry_at(commit, &history.path(&base))
        .map_err(failed)?
    {
        Lookup::Missing => return Ok(()),
        Lookup::Link(at) => {
            let at = at.strip_prefix(&history.prefix).unwrap_or(&at);
            return Err(symlink(at));
        }
        Lookup::Found(e) if e.kind == EntryKind::Tree => e.id,
        Lookup::Found(_) => return Err(format!("`{base}` is not a directory")),
    };
    // `templates/<dir>` is two directories below the spec root.
    let listing = history
        .repo
        .entries_below(tree, MAX_DEPTH.saturating_sub(2), loader.budget)
        .map_err(failed)?;
    if let Some(deep) = &listing.too_deep {
        return Err(format!(
            "`{base}/{}` is nested deeper than {MAX_DEPTH} directories",
            String::from_utf8_lossy(deep)
        ));
    }
    if listing.over {
        return Err(format!(
            "its templates hold more than {} files",
            loader.options.max_files
        ));
    }
    for entry in listing.entries {
        let shown = format!("{base}/{}", String::from_utf8_lossy(&entry.path));
        let Ok(rel) = String::from_utf8(entry.path) else {
            return Err(format!("`{shown}` has a name that is not valid UTF-8"));
        };
        if let Some(bad) = rel.split('/').find(|s| !plain_segment(s)) {
            return Err(format!(
                "`{}` has the name `{}`, which no checkout can hold",
                shown.escape_debug(),
                bad.escape_debug()
            ));
        }
        match entry.kind {
            EntryKind::Blob => {}
            EntryKind::Link => return Err(symlink(&shown)),
            EntryKind::Commit | EntryKind::Tree => {
                return Err(format!(
                    "`{shown}` is neither a regular file nor a directory"
                ));
            }
        }
        loader.budget = loader.budget.checked_sub(1).ok_or_else(|| {
            format!(
                "its templates take the spec past {} files",
                loader.options.max_files
            )
        })?;
        let bytes = match history
            .repo
            .blob_within(entry.id, MAX_TEMPLATE_BYTES)
            .map_err(failed)?
        {
            Bounded::Bytes(b) => b,
            Bounded::TooLarge(_) => return Err(format!("`{shown}` is larger than 1 MiB")),
            Bounded::Missing => return Err(format!("`{shown}` is missing from the repository")),
        };
        *read_bytes += bytes.len() as u64;
        if *read_bytes > MAX_PINNED_BYTES {
            return Err(format!(
                "the templates of pinned blocks pass {} MiB in all at `{shown}`",
                MAX_PINNED_BYTES / 1024 / 1024
            ));
        }
        files.push((format!("{dir}/{rel}"), bytes));
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(())
}

fn symlink(at: &str) -> String {
    format!(
        "`{at}` is a symbolic link: a spec repo may hold no symbolic links, in its history either"
    )
}

/// A name a checkout writes as a plain file or directory name.
fn plain_segment(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\\', '\0'])
}

#[cfg(test)]
mod tests {
    use super::plain_segment;

    #[test]
    fn only_plain_names_pass() {
        assert!(plain_segment("deployment.yaml.j2"));
        for bad in ["", ".", "..", "a\\b", "a\0b"] {
            assert!(!plain_segment(bad), "{bad:?}");
        }
    }
}
