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
use crate::spec::names::path_problem;
use crate::spec::source::{Pos, SourceFile, slash_path};
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
    /// Path below `templates/<block>/<part>/`, as written (may hold `{{ }}`).
    rel: String,
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
        walk(&root.join("templates"), "_partials")
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
        let templates = root.join("templates");
        for (rel, bytes) in partials {
            set.add_source(format!("_partials/{rel}"), bytes.clone())?;
        }
        for part in [Part::Project, Part::Infra] {
            let base = format!("{block}/{}", part.dir());
            for (rel, bytes) in walk(&templates, &base)? {
                let mode = ownership_of(ownership, &format!("{}/{rel}", part.dir()));
                let entry = if let Some(stripped) = rel.strip_suffix(".j2") {
                    let name = format!("{base}/{rel}");
                    set.add_source(name.clone(), bytes)?;
                    Entry {
                        rel: stripped.to_owned(),
                        template: Some(name),
                        raw: Vec::new(),
                        mode,
                    }
                } else {
                    Entry {
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

    /// Renders one part into `files` under `prefix` (empty: the repo root).
    pub fn render_into(
        &self,
        part: Part,
        ctx: &minijinja::Value,
        prefix: &str,
        files: &mut BTreeMap<String, File>,
        diags: &mut Diagnostics,
    ) {
        let entries = match part {
            Part::Project => &self.project,
            Part::Infra => &self.infra,
        };
        for entry in entries {
            let source = || {
                let name = entry.template.as_deref().unwrap_or(&entry.rel);
                format!("templates/{name}")
            };
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
            let lock = path.rsplit('/').next() == Some(LOCK_FILE);
            if let Some(why) = path_problem(&path)
                .or_else(|| path.ends_with('/').then_some("ends with `/`"))
                .or_else(|| lock.then_some("is the lock file druppie writes itself"))
            {
                diags.push(Diagnostic::error(
                    format!("output path `{path}` {why}"),
                    Location::file(source()),
                ));
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

/// Files under `templates/<dir>`, as (path below it, bytes), sorted.
fn walk(templates: &Path, dir: &str) -> Result<Vec<(String, Vec<u8>)>, Box<Diagnostic>> {
    let base = templates.join(dir);
    if !base.is_dir() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(&base).sort_by_file_name() {
        let shown = |p: &Path| {
            format!(
                "templates/{dir}/{}",
                p.strip_prefix(&base).unwrap_or(p).display()
            )
        };
        let entry = entry.map_err(|e| {
            Box::new(Diagnostic::error(
                format!("cannot list templates: {e}"),
                Location::file(format!("templates/{dir}")),
            ))
        })?;
        let path = entry.path();
        if entry.path_is_symlink() {
            return Err(Box::new(
                Diagnostic::error("symbolic link in templates", Location::file(shown(path)))
                    .with_help("templates must be regular files inside the spec repo"),
            ));
        }
        if !entry.file_type().is_file() {
            continue;
        }
        let too_big = entry
            .metadata()
            .map(|m| m.len() > MAX_TEMPLATE_BYTES)
            .unwrap_or(false);
        if too_big {
            return Err(Box::new(Diagnostic::error(
                "template file is larger than 1 MiB",
                Location::file(shown(path)),
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| {
            Box::new(Diagnostic::error(
                format!("cannot read template: {e}"),
                Location::file(shown(path)),
            ))
        })?;
        out.push((slash_path(&base, path), bytes));
    }
    Ok(out)
}
