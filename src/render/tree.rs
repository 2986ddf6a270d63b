//! A block's templates, loaded once, rendered into a file tree.

use std::borrow::Cow;
use std::collections::{BTreeMap, btree_map};
use std::path::Path;

use minijinja::Environment;

use super::File;
use crate::lock::LOCK_FILE;
use crate::spec::Diagnostics;
use crate::spec::diag::{Diagnostic, Location};
use crate::spec::glob::ownership_of;
use crate::spec::model::{Ownership, OwnershipMode};
use crate::spec::names;
use crate::spec::source::{Pos, SourceFile};
use crate::template;

/// A rendered file larger than this is an error.
pub const MAX_OUTPUT_BYTES: usize = 4 * 1024 * 1024;
/// A template file larger than this is not read.
const MAX_TEMPLATE_BYTES: u64 = 1024 * 1024;

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

/// The files of `templates/_partials/`: (path below it, bytes).
pub type Partials = Vec<(String, Vec<u8>)>;

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
}

impl TemplateSet {
    /// Reads `templates/_partials/**`, shared by every block's set.
    ///
    /// # Errors
    /// As for [`TemplateSet::load`].
    pub fn partials(root: &Path) -> Result<Partials, Box<Diagnostic>> {
        walk(root, "_partials")
    }

    /// Reads `templates/<block>/{project,infra}/**` and adds `partials`;
    /// each file gets its mode from the block's `ownership`.
    ///
    /// # Errors
    /// An unreadable or oversized file, a symbolic link, non-UTF-8 template
    /// text, or a template syntax error.
    pub fn load(
        root: &Path,
        block: &str,
        ownership: Option<&Ownership>,
        partials: &Partials,
    ) -> Result<Self, Box<Diagnostic>> {
        let mut set = TemplateSet {
            env: template::environment(),
            project: Vec::new(),
            infra: Vec::new(),
            sources: BTreeMap::new(),
        };
        for (rel, bytes) in partials {
            set.add_source(format!("_partials/{rel}"), bytes.clone())?;
        }
        for part in [Part::Project, Part::Infra] {
            let base = format!("{block}/{}", part.dir());
            for (rel, bytes) in walk(root, &base)? {
                let mode = ownership_of(ownership, &format!("{}/{rel}", part.dir()));
                let entry = if let Some(stripped) = rel.strip_suffix(".j2") {
                    let name = format!("{base}/{rel}");
                    set.add_source(name.clone(), bytes)?;
                    Entry {
                        file: format!("templates/{name}"),
                        fixed_ok: fixed_ok(stripped),
                        rel: stripped.to_owned(),
                        template: Some(name),
                        raw: Vec::new(),
                        mode,
                    }
                } else {
                    Entry {
                        file: format!("templates/{base}/{rel}"),
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

    fn add_source(&mut self, name: String, bytes: Vec<u8>) -> Result<(), Box<Diagnostic>> {
        let text = String::from_utf8(bytes).map_err(|_| {
            Box::new(Diagnostic::error(
                "template is not valid UTF-8",
                Location::file(format!("templates/{name}")),
            ))
        })?;
        self.sources.insert(name.clone(), text.clone());
        if let Err(e) = self.env.add_template_owned(name, text) {
            return Err(Box::new(self.located(&e)));
        }
        Ok(())
    }

    /// Renders one part into `files` under `prefix` (empty: the repo
    /// root). Every output path is checked as git checks a tree entry
    /// ([`names::repo_path`]) before anything is rendered into it;
    /// `origin` says what is rendered ("plan `p`, component `c`,
    /// environment `e`") for the errors.
    pub fn render_into(
        &self,
        part: Part,
        ctx: &minijinja::Value,
        prefix: &str,
        origin: &dyn Fn() -> String,
        files: &mut BTreeMap<String, File>,
        diags: &mut Diagnostics,
    ) {
        let entries = match part {
            Part::Project => &self.project,
            Part::Infra => &self.infra,
        };
        for entry in entries {
            let source = || entry.file.clone();
            let rel = if template::is_template(&entry.rel) {
                match self.env.render_str(&entry.rel, ctx) {
                    Ok(p) => Cow::Owned(p),
                    Err(e) => {
                        diags.push(Diagnostic::error(
                            format!(
                                "cannot render the path `{}`: {}",
                                entry.rel,
                                template::message(&e)
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
                            origin()
                        ),
                        Location::file(source()),
                    )
                    .with_help(
                        "rendered paths are checked as git checks tree entries, with NTFS, HFS+ and Windows protection on; rename the template or fix the expression in its path",
                    ),
                );
                continue;
            }
            let bytes = match &entry.template {
                None => entry.raw.clone(),
                Some(name) => {
                    let rendered = self.env.get_template(name).and_then(|t| t.render(ctx));
                    match rendered {
                        Ok(text) => {
                            // The engine's buffer has room to spare; a
                            // render keeps thousands of these.
                            let mut bytes = text.into_bytes();
                            bytes.shrink_to_fit();
                            bytes
                        }
                        Err(e) => {
                            diags.push(self.located(&e));
                            continue;
                        }
                    }
                }
            };
            if bytes.len() > MAX_OUTPUT_BYTES {
                diags.push(Diagnostic::error(
                    format!(
                        "rendered `{path}` is larger than {} MiB",
                        MAX_OUTPUT_BYTES / (1024 * 1024)
                    ),
                    Location::file(source()),
                ));
                continue;
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

    /// A diagnostic at the template and line the engine names.
    fn located(&self, err: &minijinja::Error) -> Diagnostic {
        let message = template::message(err);
        let Some(name) = err.name() else {
            return Diagnostic::error(message, Location::file("templates/"));
        };
        let path = format!("templates/{name}");
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

/// Files under `templates/<dir>`, as (path below it, bytes), in walk
/// order; listed by the spec's checked walk, so a symbolic link at any
/// level, a name that is not UTF-8 or a special file is an error.
fn walk(root: &Path, dir: &str) -> Result<Vec<(String, Vec<u8>)>, Box<Diagnostic>> {
    let base = format!("templates/{dir}");
    let mut unbounded = usize::MAX;
    let found = crate::spec::walk::walk(root, &base, &mut unbounded)
        .map_err(|e| Box::new(Diagnostic::error(e.to_string(), Location::file(&base))))?
        .into_result()
        .map_err(|refused| Box::new(refused.diagnostic()))?;
    let mut out = Vec::with_capacity(found.len());
    for file in found {
        let shown = || Location::file(&file.rel);
        if file.len > MAX_TEMPLATE_BYTES {
            return Err(Box::new(Diagnostic::error(
                "template file is larger than 1 MiB",
                shown(),
            )));
        }
        let bytes = std::fs::read(&file.disk).map_err(|e| {
            Box::new(Diagnostic::error(
                format!("cannot read template: {e}"),
                shown(),
            ))
        })?;
        let rel = file.rel[base.len() + 1..].to_owned();
        out.push((rel, bytes));
    }
    Ok(out)
}
