//! `load`: spec repo tree -> [`Spec`] (raw, with source positions).
//!
//! Every file is read and parsed independently; a broken file becomes a
//! diagnostic and loading goes on, so one run reports every problem.

mod catalog;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::diag::{Diagnostic, Diagnostics, Location};
use super::model::{Block, Plan, Platform, Policy, Skill, Stack};
use super::source::{Bytes, FileId, SourceFile};
use super::walk::{self, Found};
use super::yaml;

/// What the spec repo holds, as written.
#[derive(Debug, Default)]
pub struct Spec {
    pub root: PathBuf,
    pub files: Vec<SourceFile>,
    pub blocks: Vec<Block>,
    pub skills: Vec<Skill>,
    pub platform: Option<Platform>,
    pub stacks: Vec<Stack>,
    pub plans: Vec<Plan>,
    /// Blocks as plans pin them, read from the spec repo's history: one
    /// per (block id, version) some plan pins.
    pub pinned: Vec<Block>,
    pub policies: Vec<Policy>,
    /// Directory names under `templates/` (to spot templates without a block).
    pub template_dirs: Vec<String>,
    /// Blocks with files under `templates/<id>/project/`: each of their
    /// components has a project repo.
    pub project_templates: BTreeSet<String>,
    /// (kind, name) of files that failed to parse but whose name could be
    /// read: references to them are not reported a second time.
    pub unparsed: BTreeSet<(Kind, String)>,
    /// `spec/platform.yaml` exists but did not parse (its error is in
    /// [`Spec::diagnostics`]): it is not reported missing as well.
    pub platform_unparsed: bool,
    /// Problems found while reading and parsing.
    pub diagnostics: Diagnostics,
    /// [`APPROVER_KEYS`], when the spec has it: the approvers' SSH keys.
    pub approver_keys: Option<FileId>,
    /// What [`LoadOptions::max_total_bytes`] leaves after the files
    /// listed ([`super::reload`] keeps to it as the load does).
    pub bytes_left: u64,
    /// What validation found by each plan's own rules, by plan: `None`
    /// (or missing) until validated, and again once the plan or any
    /// stack is read again ([`super::reload`]). The rest of the spec
    /// changes only in a whole load, which starts without.
    pub(crate) plan_checks: Vec<Option<Vec<super::diag::Diagnostic>>>,
}

/// The allowed-signers file (ssh-keygen format) mapping the principals
/// that `approvers` name to the keys that sign their merges in plain git.
pub const APPROVER_KEYS: &str = "spec/approvers.allowed_signers";

impl Spec {
    pub fn file(&self, id: FileId) -> &SourceFile {
        &self.files[id]
    }

    pub fn block(&self, id: &str) -> Option<&Block> {
        self.blocks.iter().find(|b| b.id() == id)
    }

    /// Block `id` as it was at `version`, when a plan pins it so and the
    /// spec repo's history has it.
    pub fn pinned(&self, id: &str, version: &str) -> Option<&Block> {
        self.pinned
            .iter()
            .find(|b| b.id() == id && b.meta.version.value == version)
    }

    /// The block `plan` uses for `id`: the version it pins, else (and
    /// when that pin did not resolve: its error is reported) the block
    /// as it is now.
    pub fn block_for(&self, plan: &Plan, id: &str) -> Option<&Block> {
        plan.blocks
            .get(id)
            .and_then(|version| self.pinned(id, &version.value))
            .or_else(|| self.block(id))
    }

    pub fn stack(&self, name: &str) -> Option<&Stack> {
        self.stacks.iter().find(|s| s.name.value == name)
    }
}

/// The kinds of named things a spec holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Block,
    Skill,
    Stack,
    Plan,
}

/// Settings of [`load`].
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Read only `bouwblokken/` and `skills/` (for catalog commands).
    pub catalog_only: bool,
    /// A spec file larger than this is rejected.
    pub max_file_bytes: u64,
    /// More spec files than this aborts the load.
    pub max_files: usize,
    /// More bytes in all spec files together (each counted up to
    /// `max_file_bytes`) than this aborts the load: what bounds the
    /// memory a spec can take, whatever its number of files.
    pub max_total_bytes: u64,
    /// Where pinned blocks are read from; `None`: the git repository
    /// holding the spec root, from its `HEAD`.
    pub history: Option<super::pins::History>,
}

impl LoadOptions {
    /// Only the catalog (`bouwblokken/`, `skills/`): the catalog can be
    /// browsed while a plan elsewhere is broken.
    pub fn catalog() -> Self {
        LoadOptions {
            catalog_only: true,
            ..LoadOptions::default()
        }
    }
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            catalog_only: false,
            max_file_bytes: 1024 * 1024,
            // A platform of 10,000 plans has some 10,000 spec files of
            // about a kilobyte each.
            max_files: 100_000,
            max_total_bytes: 256 * 1024 * 1024,
            history: None,
        }
    }
}

/// Why a spec repo could not be loaded at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("spec directory `{}` does not exist or is not a directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error("spec repo `{}` has more than {limit} spec files; druppie stops here rather than exhaust memory", path.display())]
    TooManyFiles { path: PathBuf, limit: usize },
    #[error("spec repo `{}` holds more than {limit} bytes of spec files; druppie stops here rather than exhaust memory", path.display())]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("cannot start the spec loading thread")]
    Thread {
        #[source]
        source: std::io::Error,
    },
    #[error("cannot list `{}`", path.display())]
    Walk {
        path: PathBuf,
        #[source]
        source: walkdir::Error,
    },
}

impl LoadError {
    /// Whether reading again may succeed: listing and reading the
    /// directory may fail for a moment (a checkout being replaced, an I/O
    /// error); too many files stays too many.
    pub fn is_transient(&self) -> bool {
        !matches!(
            self,
            LoadError::TooManyFiles { .. } | LoadError::TooLarge { .. }
        )
    }
}

/// Stack for the parsing thread: deep (but allowed) YAML nesting recurses
/// in the parser, and callers may run on small-stack threads.
pub const PARSE_STACK: usize = 32 * 1024 * 1024;

/// Reads the spec repo at `root`.
///
/// Parsing runs on a thread of its own with a [`PARSE_STACK`]-sized stack,
/// so the nesting limit (256) is reached before the stack is, whatever
/// thread calls this.
///
/// # Errors
/// [`LoadError`] when the root is not a directory, cannot be listed, or holds
/// more files than [`LoadOptions::max_files`]. Problems with single files are
/// not errors here: they are in [`Spec::diagnostics`].
pub fn load(root: &Path, options: &LoadOptions) -> Result<Spec, LoadError> {
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("druppie-load".into())
            .stack_size(PARSE_STACK)
            .spawn_scoped(scope, || load_here(root, options))
            .map_err(|source| LoadError::Thread { source })?;
        handle
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

fn load_here(root: &Path, options: &LoadOptions) -> Result<Spec, LoadError> {
    if !root.is_dir() {
        return Err(LoadError::NotADirectory {
            path: root.to_owned(),
        });
    }
    let mut loader = Loader {
        spec: Spec {
            root: root.to_owned(),
            ..Spec::default()
        },
        options,
        budget: options.max_files,
        bytes: Bytes::new(options.max_total_bytes),
    };
    // Listed whole, so a link anywhere under templates/ is refused here,
    // by `validate`, and not only when a plan renders the block.
    let templates = loader.walk("templates")?;
    // Read when a plan renders them, counted now.
    loader.count_unread(templates.iter());
    loader.spec.template_dirs = templates
        .iter()
        .filter_map(|f| f.rel.split('/').nth(1))
        .filter(|n| !n.starts_with('_') && !n.starts_with('.'))
        .map(str::to_owned)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    loader.spec.project_templates = templates
        .iter()
        .filter_map(|f| {
            let mut parts = f.rel.split('/').skip(1);
            let block = parts.next()?;
            (parts.next() == Some("project") && parts.next().is_some()).then(|| block.to_owned())
        })
        .collect();
    for found in loader.list("bouwblokken", &["md", "yaml", "yml"])? {
        loader.block(&found.disk);
    }
    for found in loader.list("skills", &["md"])? {
        loader.skill(&found.disk);
    }
    if !options.catalog_only {
        let files = loader.walk("spec")?;
        let wanted = |dir: &str, f: &Found| {
            f.rel
                .strip_prefix(dir)
                .is_some_and(|rest| rest.starts_with('/'))
                && has_ext(&f.rel, &["yaml", "yml"])
        };
        let platform = ["spec/platform.yaml", "spec/platform.yml"]
            .into_iter()
            .find_map(|name| files.iter().find(|f| f.rel == name));
        let read = |f: &Found| {
            ["spec/stacks", "spec/plans", "spec/policies"]
                .iter()
                .any(|dir| wanted(dir, f))
                || f.rel == APPROVER_KEYS
                || platform.is_some_and(|p| p.rel == f.rel)
        };
        loader.count_unread(files.iter().filter(|f| !read(f)));
        if let Some(found) = platform {
            match loader.parse::<Platform>(&found.disk, None) {
                Some((id, p)) => loader.spec.platform = Some(Platform { file: id, ..p }),
                None => loader.spec.platform_unparsed = true,
            }
        }
        loader.approver_keys(&files);
        let paths = disk_paths(files.iter().filter(|f| wanted("spec/stacks", f)));
        for (id, s) in loader.parse_all::<Stack>(&paths, Some(Kind::Stack)) {
            loader.spec.stacks.push(Stack { file: id, ..s });
        }
        let paths = disk_paths(files.iter().filter(|f| wanted("spec/plans", f)));
        let plans = loader.parse_all::<Plan>(&paths, Some(Kind::Plan));
        loader.spec.plans.reserve(plans.len());
        for (id, p) in plans {
            loader.spec.plans.push(Plan { file: id, ..p });
        }
        let paths = disk_paths(files.iter().filter(|f| wanted("spec/policies", f)));
        for (id, p) in loader.parse_all::<Policy>(&paths, None) {
            loader.spec.policies.push(Policy { file: id, ..p });
        }
        super::pins::resolve(&mut loader);
    }
    if loader.bytes.over() {
        return Err(LoadError::TooLarge {
            path: loader.spec.root.clone(),
            limit: options.max_total_bytes,
        });
    }
    loader.spec.bytes_left = loader.bytes.left();
    Ok(loader.spec)
}

fn has_ext(path: &str, exts: &[&str]) -> bool {
    Path::new(path)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| exts.contains(&e))
}

fn disk_paths<'f>(files: impl Iterator<Item = &'f Found>) -> Vec<PathBuf> {
    files.map(|f| f.disk.clone()).collect()
}

pub(super) struct Loader<'a> {
    pub(super) spec: Spec,
    pub(super) options: &'a LoadOptions,
    /// Files that may still be listed before the load stops.
    pub(super) budget: usize,
    /// Bytes the files read and listed so far leave.
    pub(super) bytes: Bytes,
}

impl Loader<'_> {
    /// Every regular file under `dir` (see [`walk::walk`]); each symbolic
    /// link, non-UTF-8 name or special file is an error diagnostic naming
    /// it.
    fn walk(&mut self, dir: &str) -> Result<Vec<Found>, LoadError> {
        let walked = walk::walk(&self.spec.root, dir, &mut self.budget).map_err(|_| {
            LoadError::TooManyFiles {
                path: self.spec.root.clone(),
                limit: self.options.max_files,
            }
        })?;
        for refused in &walked.refused {
            self.spec.diagnostics.push(refused.diagnostic());
        }
        Ok(walked.files)
    }

    /// Files under `dir` with one of `exts`, sorted by path (the others
    /// are counted, as they are not read).
    fn list(&mut self, dir: &str, exts: &[&str]) -> Result<Vec<Found>, LoadError> {
        let mut files = self.walk(dir)?;
        self.count_unread(files.iter().filter(|f| !has_ext(&f.rel, exts)));
        files.retain(|f| has_ext(&f.rel, exts));
        Ok(files)
    }

    /// Counts listed files that the load does not read against
    /// [`LoadOptions::max_total_bytes`]; the others are counted as read.
    fn count_unread<'f>(&self, files: impl Iterator<Item = &'f Found>) {
        super::source::count_unread(files, self.options.max_file_bytes, &self.bytes);
    }

    /// Reads [`APPROVER_KEYS`] when it is there (a regular file: the walk
    /// refused a link in its place), checking every line as ssh-keygen
    /// reads it.
    fn approver_keys(&mut self, files: &[Found]) {
        let Some(found) = files.iter().find(|f| f.rel == APPROVER_KEYS) else {
            return;
        };
        let Some(id) = self.read(&found.disk, 0) else {
            return;
        };
        let file = &self.spec.files[id];
        if let Err(e) = crate::git::sign::check(&file.text, APPROVER_KEYS) {
            let at = super::source::offset_of(&file.text, e.line, 1);
            let len = file.text[at..].find('\n').unwrap_or(file.text.len() - at);
            let pos = super::source::Pos::at_offset(&file.text, at, len);
            self.spec.diagnostics.push(
                Diagnostic::error(e.why, Location::new(file, pos))
                    .with_help("each line: principals [options] key, as ssh-keygen(1) ALLOWED SIGNERS describes; ssh-keygen stops reading at a bad line"),
            );
        }
        self.spec.approver_keys = Some(id);
    }

    /// Reads a file into [`Spec::files`], enforcing the size limit.
    fn read(&mut self, path: &Path, yaml_line_offset: u32) -> Option<FileId> {
        match super::source::read_file(
            &self.spec.root,
            path,
            self.options.max_file_bytes,
            yaml_line_offset,
            &self.bytes,
        ) {
            Ok(file) => {
                self.spec.files.push(file);
                Some(self.spec.files.len() - 1)
            }
            Err(d) => {
                self.spec.diagnostics.push(*d);
                None
            }
        }
    }

    fn parse<T: serde::de::DeserializeOwned + Send>(
        &mut self,
        path: &Path,
        kind: Option<Kind>,
    ) -> Option<(FileId, T)> {
        self.parse_all(std::slice::from_ref(&path.to_owned()), kind)
            .pop()
    }

    /// Reads and parses files, in order, on every core (each thread has a
    /// [`PARSE_STACK`] stack). A file that fails is reported and left out;
    /// for `kind`, its name is remembered so that references to it do not
    /// cascade into more errors.
    fn parse_all<T: serde::de::DeserializeOwned + Send>(
        &mut self,
        paths: &[PathBuf],
        kind: Option<Kind>,
    ) -> Vec<(FileId, T)> {
        let started = std::time::Instant::now();
        let (root, limit, bytes) = (&self.spec.root, self.options.max_file_bytes, &self.bytes);
        let results = crate::par::map_init(
            paths,
            Some(PARSE_STACK),
            || (),
            |(), path| -> Result<_, Box<Diagnostic>> {
                let file = super::source::read_file(root, path, limit, 0, bytes)?;
                let parsed = yaml::parse::<T>(&file, &file.text);
                Ok((file, parsed))
            },
        );
        tracing::trace!(elapsed = ?started.elapsed(), files = paths.len(), "read and parsed");
        let mut out = Vec::with_capacity(paths.len());
        self.spec.files.reserve(paths.len());
        for result in results {
            let (file, parsed) = match result {
                Ok(read) => read,
                Err(d) => {
                    self.spec.diagnostics.push(*d);
                    continue;
                }
            };
            self.spec.files.push(file);
            let id = self.spec.files.len() - 1;
            match parsed {
                Ok(v) => out.push((id, v)),
                Err(d) => {
                    self.spec.diagnostics.push(*d);
                    if let Some(kind) = kind {
                        let text = self.spec.files[id].text.clone();
                        self.remember_unparsed(id, kind, &text, "name");
                    }
                }
            }
        }
        out
    }

    /// Reads `key` leniently from a file that failed to parse: as YAML if
    /// it still parses as a mapping, else from a top-level `key: value` line.
    fn remember_unparsed(&mut self, id: FileId, kind: Kind, yaml: &str, key: &str) {
        let file = &self.spec.files[id];
        let name = match yaml::parse::<serde_json::Map<String, Value>>(file, yaml) {
            Ok(map) => map.get(key).and_then(Value::as_str).map(str::to_owned),
            Err(_) => yaml.lines().find_map(|line| {
                let value = line.strip_prefix(key)?.strip_prefix(':')?.trim();
                let value = value.trim_matches(|c| c == '"' || c == '\'');
                (!value.is_empty()).then(|| value.to_owned())
            }),
        };
        if let Some(name) = name {
            self.spec.unparsed.insert((kind, name));
        }
    }
}
