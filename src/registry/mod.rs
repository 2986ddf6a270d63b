//! The registry: building blocks and skills as a searchable catalog.

mod search;

use serde::Serialize;

use crate::spec::Spec;

pub use search::Index;

/// A building block as the catalog shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BlockEntry {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub version: String,
    pub description: String,
    pub capabilities: Vec<String>,
    pub requires: Vec<String>,
    pub auth_group: Vec<String>,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub instantiable: bool,
    /// The block's file, relative to the spec root.
    pub path: String,
    #[serde(skip)]
    pub docs: String,
    /// Each input's type, whether it is required, its default (not for
    /// a secret input) and its description, in the block's order.
    #[serde(skip)]
    pub input_docs: Vec<InputDoc>,
}

/// One input of a block, as its catalog page documents it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct InputDoc {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub required: bool,
    pub secret: bool,
    /// The default as JSON; `None` without one, or for a secret input.
    pub default: Option<String>,
    pub description: Option<String>,
}

/// A skill as the catalog shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SkillEntry {
    pub id: String,
    pub name: String,
    pub category: Option<String>,
    pub description: String,
    pub version: Option<String>,
    pub path: String,
    #[serde(skip)]
    pub body: String,
}

/// Every block and skill of a spec, sorted by id, with their search
/// indexes built once (a search reads them; a block's documentation
/// can be a megabyte).
#[derive(Debug, Clone, Default)]
pub struct Registry {
    pub blocks: Vec<BlockEntry>,
    pub skills: Vec<SkillEntry>,
    block_index: std::sync::Arc<Index>,
    skill_index: std::sync::Arc<Index>,
}

impl Registry {
    pub fn new(spec: &Spec) -> Self {
        let mut blocks: Vec<BlockEntry> = spec
            .blocks
            .iter()
            .map(|b| {
                let m = &b.meta;
                BlockEntry {
                    id: m.id.value.clone(),
                    name: m.name.value.clone(),
                    kind: m.kind.value.clone(),
                    version: m.version.value.clone(),
                    description: m.description.value.clone(),
                    capabilities: m.capabilities.iter().map(|c| c.value.clone()).collect(),
                    requires: m.requires.iter().map(|c| c.value.clone()).collect(),
                    auth_group: m.auth_group.to_vec(),
                    inputs: m.inputs.keys().map(str::to_owned).collect(),
                    outputs: m.outputs.names().map(str::to_owned).collect(),
                    instantiable: b.instantiable(),
                    path: spec.file(b.file).path.clone(),
                    docs: b.docs.clone(),
                    input_docs: m
                        .inputs
                        .0
                        .iter()
                        .map(|(name, d)| InputDoc {
                            name: name.value.clone(),
                            kind: d.kind.name(),
                            required: d.required,
                            secret: d.secret,
                            default: d
                                .default
                                .as_ref()
                                .filter(|_| !d.secret)
                                .map(|v| serde_json::to_string(&v.value).unwrap_or_default()),
                            description: d.description.clone(),
                        })
                        .collect(),
                }
            })
            .collect();
        blocks.sort_by(|a, b| a.id.cmp(&b.id));
        let mut skills: Vec<SkillEntry> = spec
            .skills
            .iter()
            .map(|s| SkillEntry {
                id: s.id.value.clone(),
                name: s.meta.name.value.clone(),
                category: s.meta.category.as_ref().map(|c| c.value.clone()),
                description: s.meta.description.value.clone(),
                version: s.meta.version.as_ref().map(|v| v.value.clone()),
                path: spec.file(s.file).path.clone(),
                body: s.body.clone(),
            })
            .collect();
        skills.sort_by(|a, b| a.id.cmp(&b.id));
        let block_index = Index::new(blocks.iter().map(|b| search::Doc {
            id: &b.id,
            name: &b.name,
            description: &b.description,
            tags: &b.capabilities,
            body: &b.docs,
        }));
        let tags: Vec<Vec<String>> = skills
            .iter()
            .map(|s| s.category.iter().cloned().collect())
            .collect();
        let skill_index = Index::new(skills.iter().zip(&tags).map(|(s, t)| search::Doc {
            id: &s.id,
            name: &s.name,
            description: &s.description,
            tags: t,
            body: &s.body,
        }));
        Registry {
            blocks,
            skills,
            block_index: std::sync::Arc::new(block_index),
            skill_index: std::sync::Arc::new(skill_index),
        }
    }

    /// Blocks matching `query`, best first. An empty query lists all.
    pub fn search_blocks(&self, query: &str) -> Vec<&BlockEntry> {
        if query.trim().is_empty() {
            return self.blocks.iter().collect();
        }
        self.block_index
            .search(query)
            .into_iter()
            .map(|(i, _)| &self.blocks[i])
            .collect()
    }

    /// Skills matching `query`, best first. An empty query lists all.
    pub fn search_skills(&self, query: &str) -> Vec<&SkillEntry> {
        if query.trim().is_empty() {
            return self.skills.iter().collect();
        }
        self.skill_index
            .search(query)
            .into_iter()
            .map(|(i, _)| &self.skills[i])
            .collect()
    }
}
