//! A block's templates, loaded once, rendered into a file tree.

use std::borrow::Cow;
use std::collections::{BTreeMap, btree_map};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use minijinja::Environment;

use super::File;
use super::read::{Partials, Source, walk};
use crate::lock::LOCK_FILE;
use crate::spec::Diagnostics;
use crate::spec::diag::{Diagnostic, Location};
use crate::spec::glob::ownership_of;
use crate::spec::model::{Ownership, OwnershipMode};
use crate::spec::names;
use crate::spec::source::{Pos, SourceFile};
use crate::template::{self, FileError, Limits, size};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Project,
    Infra,
}

impl Part {
    fn dir(self) -> &'static str {
        match self {
            Part::Project => "project",
            Part::Infra => "infra",
        }
    }
}

/// What a whole run has rendered so far, shared by the threads that
/// render its instances.
#[derive(Debug, Default)]
pub struct Tally {
    bytes: AtomicUsize,
    files: AtomicUsize,
    /// A run limit was passed: no thread renders any more.
    over: AtomicBool,
}

impl Tally {
    /// A run that holds `bytes` before it renders anything.
    pub fn holding(bytes: usize) -> Self {
        Tally {
            bytes: AtomicUsize::new(bytes),
            ..Tally::default()
        }
    }

    /// Counts `bytes` more that the run holds besides its files.
    pub fn hold(&self, bytes: usize) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn over(&self) -> bool {
        self.over.load(Ordering::Relaxed)
    }
}

/// What one instance (a plan in one environment) may still render: its
/// own totals against [`Limits`], and the run's [`Tally`].
pub struct Budget<'r> {
    pub limits: &'r Limits,
    pub run: &'r Tally,
    bytes: usize,
    files: usize,
    /// A limit was passed (and reported): nothing more is rendered.
    stopped: bool,
}

/// Which limit a file passed.
enum Passed {
    InstanceBytes,
    InstanceFiles,
    RunBytes,
    RunFiles,
}

impl<'r> Budget<'r> {
    pub fn new(limits: &'r Limits, run: &'r Tally) -> Self {
        Budget {
            limits,
            run,
            bytes: 0,
            files: 0,
            stopped: false,
        }
    }

    /// Whether rendering must stop (this instance or another passed a limit).
    pub fn stopped(&self) -> bool {
        self.stopped || self.run.over()
    }

    /// Counts one file of `bytes`; the limit it passes, if any. The run's
    /// limits are reported by the one thread that passes them.
    fn charge(&mut self, bytes: usize) -> Result<(), Option<Passed>> {
        self.bytes = self.bytes.saturating_add(bytes);
        self.files += 1;
        let passed = if self.bytes > self.limits.instance_bytes {
            Some(Passed::InstanceBytes)
        } else if self.files > self.limits.instance_files {
            Some(Passed::InstanceFiles)
        } else {
            None
        };
        if let Some(passed) = passed {
            self.stopped = true;
            return Err(Some(passed));
        }
        let before = self.run.bytes.fetch_add(bytes, Ordering::Relaxed);
        let files = self.run.files.fetch_add(1, Ordering::Relaxed);
        let passed = if before.saturating_add(bytes) > self.limits.run_bytes {
            Passed::RunBytes
        } else if files + 1 > self.limits.run_files {
            Passed::RunFiles
        } else {
            return Ok(());
        };
        self.stopped = true;
        let first = !self.run.over.swap(true, Ordering::Relaxed);
        Err(first.then_some(passed))
    }

    /// The error for a passed limit.
    fn passed(&self, passed: Passed, path: &str, origin: &str) -> (String, &'static str) {
        let l = self.limits;
        match passed {
            Passed::InstanceBytes => (
                format!(
                    "the files rendered for {origin} and its plan in that environment pass {} in all at `{path}` (`[render] max_instance_bytes`)",
                    size(l.instance_bytes)
                ),
                "max_instance_bytes",
            ),
            Passed::InstanceFiles => (
                format!(
                    "more than {} files rendered for {origin} and its plan in that environment, at `{path}` (`[render] max_instance_files`)",
                    l.instance_files
                ),
                "max_instance_files",
            ),
            Passed::RunBytes => (
                format!(
                    "the files rendered in this run pass {} in all at `{path}`, rendering {origin} (`[render] max_run_bytes`)",
                    size(l.run_bytes)
                ),
                "max_run_bytes",
            ),
            Passed::RunFiles => (
                format!(
                    "more than {} files rendered in this run, at `{path}`, rendering {origin} (`[render] max_run_files`)",
                    l.run_files
                ),
                "max_run_files",
            ),
        }
    }
}

/// The help for a limit passed: how to raise it.
fn raise(key: &str) -> String {
    format!(
        "templates that render very large or very many files; nothing was written. If that is intended, raise `{key}` in the `[render]` section of druppie.toml"
    )
}

/// One file of a template tree.
struct Entry {
    /// The template file, relative to the spec root.
    file: String,
    /// Path below `templates/<block>/<part>/`, as written (may hold `{{ }}`).
    rel: String,
    /// `rel` holds no expression and passes [`output_path_problem`]: its
    /// rendered path needs no check beyond its length (the prefix, made
    /// of validated names, passed `validate`).
    fixed_ok: bool,
    /// The minijinja template name (`<block>/<part>/<rel>`) for `.j2` files.
    template: Option<String>,
    /// Bytes of a file copied as is.
    raw: Vec<u8>,
    mode: OwnershipMode,
}

/// The templates of one block, in an environment that holds only them and
/// `templates/_partials/`.
pub struct TemplateSet {
    env: Environment<'static>,
    project: Vec<Entry>,
    infra: Vec<Entry>,
    sources: BTreeMap<String, String>,
    /// `""`, or `<commit>:` for a pinned block's templates (in errors).
    shown_prefix: String,
}

/// What the templates of one run hold once read and compiled (their text,
/// and what compiling keeps: minijinja folds constant expressions such as
/// `'x' * 50000000` while compiling), counted against
/// `[render] max_run_bytes` with what the run renders.
pub struct Loading<'l> {
    pub limits: &'l Limits,
    pub held: usize,
}

impl Loading<'_> {
    /// Counts `bytes` more, held for `file`.
    pub(super) fn hold(&mut self, bytes: usize, file: &str) -> Result<(), Box<Diagnostic>> {
        self.held = self.held.saturating_add(bytes);
        if self.held <= self.limits.run_bytes {
            return Ok(());
        }
        Err(Box::new(
            Diagnostic::error(
                format!(
                    "the templates of this run, read and compiled, pass {} in all at `{file}` (`[render] max_run_bytes`)",
                    size(self.limits.run_bytes)
                ),
                Location::file(file),
            )
            .with_help(raise("max_run_bytes")),
        ))
    }
}

impl TemplateSet {
    /// Reads `templates/_partials/**`, shared by every block's set.
    ///
    /// # Errors
    /// As for [`TemplateSet::load`].
    pub fn partials(
        source: Source<'_>,
        loading: &mut Loading<'_>,
    ) -> Result<Partials, Box<Diagnostic>> {
        walk(source, "_partials", loading)
    }

    /// Reads `templates/<block>/{project,infra}/**` and adds `partials`;
    /// each file gets its mode from the block's `ownership`.
    ///
    /// # Errors
    /// An unreadable or oversized file, a symbolic link, non-UTF-8 template
    /// text, or a template syntax error.
    pub fn load(
        source: Source<'_>,
        block: &str,
        ownership: Option<&Ownership>,
        partials: &Partials,
        loading: &mut Loading<'_>,
    ) -> Result<Self, Box<Diagnostic>> {
        let mut set = TemplateSet {
            env: template::environment(),
            project: Vec::new(),
            infra: Vec::new(),
            sources: BTreeMap::new(),
            shown_prefix: source.prefix(),
        };
        for (rel, bytes) in partials {
            set.add_source(format!("_partials/{rel}"), bytes.clone(), loading)?;
        }
        for part in [Part::Project, Part::Infra] {
            let base = format!("{block}/{}", part.dir());
            for (rel, bytes) in walk(source, &base, loading)? {
                let mode = ownership_of(ownership, &format!("{}/{rel}", part.dir()));
                let entry = if let Some(stripped) = rel.strip_suffix(".j2") {
                    let name = format!("{base}/{rel}");
                    set.add_source(name.clone(), bytes, loading)?;
                    Entry {
                        file: source.shown(&name),
                        fixed_ok: fixed_ok(stripped),
                        rel: stripped.to_owned(),
                        template: Some(name),
                        raw: Vec::new(),
                        mode,
                    }
                } else {
                    Entry {
                        file: source.shown(&format!("{base}/{rel}")),
                        fixed_ok: fixed_ok(&rel),
                        rel,
                        template: None,
                        raw: bytes,
                        mode,
                    }
                };
                match part {
                    Part::Project => set.project.push(entry),
                    Part::Infra => set.infra.push(entry),
                }
            }
        }
        Ok(set)
    }

    pub fn has_infra(&self) -> bool {
        !self.infra.is_empty()
    }

    pub fn has_project(&self) -> bool {
        !self.project.is_empty()
    }

    /// Compiles a template within the template memory, and counts what
    /// it holds afterwards in `loading`.
    fn add_source(
        &mut self,
        name: String,
        bytes: Vec<u8>,
        loading: &mut Loading<'_>,
    ) -> Result<(), Box<Diagnostic>> {
        let file = format!("{}templates/{name}", self.shown_prefix);
        let text = String::from_utf8(bytes).map_err(|_| {
            Box::new(Diagnostic::error(
                "template is not valid UTF-8",
                Location::file(&file),
            ))
        })?;
        let len = text.len();
        let what = format!("compiling the template `{file}`");
        let (compiled, kept) =
            crate::budget::within(loading.limits.template_memory, &what, &file, || {
                self.sources.insert(name.clone(), text.clone());
                let compiled = self.env.add_template_owned(name, text);
                (compiled, crate::budget::used())
            });
        if let Err(e) = compiled {
            return Err(Box::new(self.at_engine_location(&e, template::message(&e))));
        }
        loading.hold(len.saturating_add(kept), &file)
    }

    /// Renders one part into `files` under `prefix` (empty: the repo
    /// root). Every output path is checked as git checks a tree entry
    /// ([`names::repo_path`]) before anything is rendered into it;
    /// `origin` says what is rendered ("plan `p`, component `c`,
    /// environment `e`") for the errors. Each evaluation runs within
    /// `budget`'s template memory, each file within its size, and the
    /// files together within the instance's and the run's totals; past
    /// one, rendering stops with an error naming the template and limit.
    #[allow(clippy::too_many_arguments)]
    pub fn render_into(
        &self,
        part: Part,
        ctx: &minijinja::Value,
        prefix: &str,
        origin: &dyn Fn() -> String,
        files: &mut BTreeMap<String, File>,
        budget: &mut Budget<'_>,
        diags: &mut Diagnostics,
    ) {
        let entries = match part {
            Part::Project => &self.project,
            Part::Infra => &self.infra,
        };
        let limits = budget.limits;
        // What is rendered, said once for every file's budget and error.
        let origin = &origin();
        for entry in entries {
            if budget.stopped() {
                return;
            }
            let source = || entry.file.clone();
            let rel = if template::is_template(&entry.rel) {
                let what = format!("the path of `{}` for {}", entry.file, origin);
                let rendered =
                    crate::budget::within(limits.template_memory, &what, &entry.file, || {
                        self.env.render_str(&entry.rel, ctx)
                    });
                match rendered {
                    Ok(p) => Cow::Owned(p),
                    Err(e) => {
                        diags.push(Diagnostic::error(
                            format!(
                                "cannot render the path `{}`: {} (rendering {})",
                                entry.rel,
                                template::message(&e),
                                origin
                            ),
                            Location::file(source()),
                        ));
                        continue;
                    }
                }
            } else {
                Cow::Borrowed(entry.rel.as_str())
            };
            let path = if prefix.is_empty() {
                rel.into_owned()
            } else {
                format!("{prefix}/{rel}")
            };
            let checked = entry.fixed_ok && path.len() <= names::paths::MAX_PATH_BYTES;
            if let Some(why) = (!checked).then(|| output_path_problem(&path)).flatten() {
                diags.push(
                    Diagnostic::error(
                        format!(
                            "output path `{}` {why} (rendering {})",
                            path.escape_debug(),
                            origin
                        ),
                        Location::file(source()),
                    )
                    .with_help(
                        "rendered paths are checked as git checks tree entries, with NTFS, HFS+ and Windows protection on; rename the template or fix the expression in its path",
                    ),
                );
                continue;
            }
            let rendered = match &entry.template {
                None if entry.raw.len() > limits.file_bytes => Err(FileError::TooLarge {
                    limit: limits.file_bytes,
                }),
                None => Ok(entry.raw.clone()),
                Some(name) => {
                    let template = self
                        .env
                        .get_template(name)
                        .expect("every template named by an entry was added");
                    let what = format!("the template `{}` for {}", entry.file, origin);
                    template::render_file(&template, ctx, limits, &what, &entry.file)
                }
            };
            let bytes = match rendered {
                Ok(bytes) => bytes,
                Err(FileError::Engine(e)) => {
                    diags.push(self.located(&e, ctx, origin));
                    continue;
                }
                Err(FileError::TooLarge { limit }) => {
                    diags.push(
                        Diagnostic::error(
                            format!(
                                "rendered `{path}` is larger than {} (`[render] max_file_bytes`), rendering {}",
                                size(limit),
                                origin
                            ),
                            Location::file(source()),
                        )
                        .with_help(raise("max_file_bytes")),
                    );
                    continue;
                }
            };
            if let Err(passed) = budget.charge(bytes.len()) {
                if let Some(passed) = passed {
                    let (message, key) = budget.passed(passed, &path, origin);
                    diags.push(
                        Diagnostic::error(message, Location::file(source())).with_help(raise(key)),
                    );
                }
                return;
            }
            let file = File {
                bytes,
                mode: entry.mode,
            };
            match files.entry(path) {
                btree_map::Entry::Vacant(slot) => {
                    slot.insert(file);
                }
                btree_map::Entry::Occupied(mut slot) => {
                    diags.push(Diagnostic::error(
                        format!("two templates write `{}`", slot.key()),
                        Location::file(source()),
                    ));
                    slot.insert(file);
                }
            }
        }
    }

    /// A diagnostic at the template and line the engine names, saying
    /// what was rendered (`origin`); an undefined value is named, with
    /// the defined names nearest to it.
    fn located(&self, err: &minijinja::Error, ctx: &minijinja::Value, origin: &str) -> Diagnostic {
        match template::undefined_help(err, ctx) {
            Some((expr, help)) => {
                let message = format!("undefined value `{expr}` (rendering {origin})");
                self.at_engine_location(err, message).with_help(help)
            }
            None => {
                let message = format!("{} (rendering {origin})", template::message(err));
                self.at_engine_location(err, message)
            }
        }
    }

    /// `message` at the template and line the engine names.
    fn at_engine_location(&self, err: &minijinja::Error, message: String) -> Diagnostic {
        let Some(name) = err.name() else {
            return Diagnostic::error(message, Location::file("templates/"));
        };
        let path = format!("{}templates/{name}", self.shown_prefix);
        let Some(text) = self.sources.get(name) else {
            return Diagnostic::error(message, Location::file(path));
        };
        let file = SourceFile {
            path,
            disk_path: Default::default(),
            text: text.clone(),
            yaml_line_offset: 0,
        };
        let pos = match (err.range(), err.line()) {
            (Some(range), _) => Pos::at_offset(text, range.start, range.len()),
            (None, Some(line)) => Pos {
                line: line as u32,
                col: 1,
                len: 0,
            },
            _ => Pos::default(),
        };
        Diagnostic::error(message, Location::new(&file, pos))
    }
}

/// Whether a template path is fixed (no expression) and fine as it is.
fn fixed_ok(rel: &str) -> bool {
    !template::is_template(rel) && output_path_problem(rel).is_none()
}

/// Why a rendered path may not be written, or `None`.
fn output_path_problem(path: &str) -> Option<String> {
    if path.ends_with('/') {
        return Some("ends with `/`".to_owned());
    }
    if let Err(e) = names::repo_path(path) {
        return Some(e.to_string());
    }
    (path.rsplit('/').next() == Some(LOCK_FILE))
        .then(|| "is the lock file druppie writes itself".to_owned())
}
