//! The catalog's files: building blocks (Markdown with YAML frontmatter,
//! or YAML) and skills (Markdown with frontmatter), read by the
//! [`Loader`].

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::Loader;
use crate::spec::diag::{Diagnostic, Location};
use crate::spec::frontmatter::{self, SplitError};
use crate::spec::load::Kind;
use crate::spec::model::{BLOCK_KEYS, Block, BlockMeta, SKILL_KEYS, Skill, SkillMeta};
use crate::spec::source::FileId;
use crate::spec::yaml::Spanned;
use crate::spec::{names, yaml};

impl Loader<'_> {
    /// Reads a Markdown file with frontmatter: (file, yaml, body).
    fn markdown(&mut self, path: &Path) -> Option<(FileId, String, String)> {
        let id = self.read(path, 1)?;
        let (yaml, body) = self.markdown_in(id)?;
        Some((id, yaml, body))
    }

    /// Splits the Markdown file `id` into (yaml, body).
    fn markdown_in(&mut self, id: FileId) -> Option<(String, String)> {
        let file = &self.spec.files[id];
        match frontmatter::split(&file.text) {
            Ok(s) => Some((s.yaml.to_owned(), s.body.to_owned())),
            Err(SplitError::NoFrontmatter) => {
                self.spec.diagnostics.push(
                    Diagnostic::warning(
                        "no frontmatter: treated as documentation, not loaded",
                        Location::file(file.path.clone()),
                    )
                    .with_help("start the file with a `---` line, the YAML metadata, and a closing `---` line"),
                );
                None
            }
            Err(SplitError::Unclosed) => {
                let pos = crate::spec::source::Pos {
                    line: 1,
                    col: 1,
                    len: 3,
                };
                self.spec.diagnostics.push(
                    Diagnostic::error("frontmatter is not closed", Location::new(file, pos))
                        .with_label("opened here")
                        .with_help("end the YAML frontmatter with a line holding only `---`"),
                );
                None
            }
        }
    }

    /// Parses `yaml` of file `id` twice: into the typed metadata, and into a
    /// map from which the keys druppie does not know are kept.
    fn frontmatter<T: serde::de::DeserializeOwned>(
        &mut self,
        id: FileId,
        yaml: &str,
        known: &[&str],
        kind: Kind,
    ) -> Option<(T, BTreeMap<String, Value>)> {
        let file = &self.spec.files[id];
        let parsed = yaml::parse::<T>(file, yaml).and_then(|meta| {
            Ok((
                meta,
                yaml::parse::<serde_json::Map<String, Value>>(file, yaml)?,
            ))
        });
        match parsed {
            Ok((meta, map)) => {
                let extra = map
                    .into_iter()
                    .filter(|(k, _)| !known.contains(&k.as_str()))
                    .collect();
                Some((meta, extra))
            }
            Err(d) => {
                self.spec.diagnostics.push(*d);
                self.remember_unparsed(id, kind, yaml, "id");
                None
            }
        }
    }

    pub(super) fn block(&mut self, path: &Path) {
        let is_md = path.extension().is_some_and(|e| e == "md");
        let Some(id) = self.read(path, u32::from(is_md)) else {
            return;
        };
        if let Some(block) = self.block_in(id, is_md) {
            self.spec.blocks.push(block);
        }
    }

    /// The block in file `id` (read already; `is_md`: Markdown with
    /// frontmatter, else YAML), its problems reported.
    pub(in crate::spec) fn block_in(&mut self, id: FileId, is_md: bool) -> Option<Block> {
        let (yaml, body) = if is_md {
            self.markdown_in(id)?
        } else {
            (self.spec.files[id].text.clone(), String::new())
        };
        let (meta, extra) = self.frontmatter::<BlockMeta>(id, &yaml, BLOCK_KEYS, Kind::Block)?;
        let block = &meta.id.value;
        let templates = (names::id(block).is_ok() && self.spec.template_dirs.contains(block))
            .then(|| Path::new("templates").join(block));
        let docs = if is_md {
            body
        } else {
            meta.docs.clone().unwrap_or_default()
        };
        Some(Block {
            file: id,
            meta,
            extra,
            docs,
            templates,
            pin: None,
        })
    }

    pub(super) fn skill(&mut self, path: &Path) {
        let Some((file, yaml, body)) = self.markdown(path) else {
            return;
        };
        let Some((meta, extra)) =
            self.frontmatter::<SkillMeta>(file, &yaml, SKILL_KEYS, Kind::Skill)
        else {
            return;
        };
        // Druppie catalogs name a skill by its file: `skills/<id>.md`.
        let (id, derived_id) = match &meta.id {
            Some(id) => (id.clone(), false),
            None => {
                let stem = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let id = Spanned::new(
                    stem,
                    crate::spec::yaml::Location::UNKNOWN,
                    crate::spec::yaml::Location::UNKNOWN,
                );
                (id, true)
            }
        };
        self.spec.skills.push(Skill {
            file,
            id,
            derived_id,
            meta,
            extra,
            body,
        });
    }
}
