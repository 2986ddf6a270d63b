//! The spec as written: building blocks, skills, platform, stacks, plans and
//! policies, each value carrying its position in the source.
//!
//! These types are what `load` produces; `validate` checks them and wraps
//! them in [`crate::spec::Validated`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::source::FileId;
use super::yaml::{OneOrMany, Spanned, SpannedMap, Str};

pub use super::catalog::Outputs;

/// Input values of one component: input name -> value.
pub type InputValues = SpannedMap<Spanned<Value>>;

/// A building block (bouwblok): catalog metadata, typed inputs, outputs.
#[derive(Debug, Clone)]
pub struct Block {
    pub file: FileId,
    pub meta: BlockMeta,
    /// Frontmatter keys druppie does not know, kept as catalog metadata.
    pub extra: BTreeMap<String, Value>,
    /// The Markdown documentation.
    pub docs: String,
    /// `templates/<id>` relative to the spec root, when that directory exists.
    pub templates: Option<PathBuf>,
    /// For a block a plan pins: the commit it was read from, with its
    /// templates; `None` for the block as it is now.
    pub pin: Option<Pinned>,
}

/// A block as it was at a past commit of the spec repo.
#[derive(Clone)]
pub struct Pinned {
    /// The commit (full hex id) the block and its templates were read from.
    pub commit: String,
    /// The files under `templates/<id>/` and `templates/_partials/` at
    /// that commit: (path below `templates/`, bytes), in path order.
    pub files: Vec<(String, Vec<u8>)>,
}

impl std::fmt::Debug for Pinned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pinned")
            .field("commit", &self.commit)
            .field("files", &self.files.len())
            .finish()
    }
}

impl Pinned {
    /// Whether the pinned templates have a `project/` part.
    pub fn has_project(&self, block: &str) -> bool {
        let prefix = format!("{block}/project/");
        self.files.iter().any(|(p, _)| p.starts_with(&prefix))
    }
}

impl Block {
    pub fn id(&self) -> &str {
        &self.meta.id.value
    }

    /// A block with templates can be instantiated in a stack.
    pub fn instantiable(&self) -> bool {
        self.templates.is_some()
    }
}

/// Known frontmatter of a block.
#[derive(Debug, Clone, Deserialize)]
pub struct BlockMeta {
    pub id: Str,
    pub name: Str,
    #[serde(rename = "type")]
    pub kind: Str,
    pub version: Str,
    pub description: Str,
    #[serde(default)]
    pub capabilities: Vec<Str>,
    #[serde(default)]
    pub auth_group: OneOrMany,
    #[serde(default)]
    pub requires: Vec<Str>,
    /// Typed inputs; the list form of Druppie catalogs (`inputs: [a, b]`)
    /// declares inputs of type `any`, not required.
    #[serde(default, deserialize_with = "super::catalog::inputs")]
    pub inputs: SpannedMap<InputDecl>,
    #[serde(default)]
    pub outputs: Outputs,
    #[serde(default)]
    pub ownership: Option<Ownership>,
    /// Documentation of a `.yaml` block (a `.md` block uses its body).
    #[serde(default)]
    pub docs: Option<String>,
}

/// Frontmatter keys [`BlockMeta`] reads; the rest goes to [`Block::extra`].
pub const BLOCK_KEYS: &[&str] = &[
    "id",
    "name",
    "type",
    "version",
    "description",
    "capabilities",
    "auth_group",
    "requires",
    "inputs",
    "outputs",
    "ownership",
    "docs",
];

/// The type of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InputType {
    String,
    Integer,
    Number,
    Boolean,
    List,
    Object,
    #[default]
    Any,
}

impl InputType {
    pub fn name(self) -> &'static str {
        match self {
            InputType::String => "string",
            InputType::Integer => "integer",
            InputType::Number => "number",
            InputType::Boolean => "boolean",
            InputType::List => "list",
            InputType::Object => "object",
            InputType::Any => "any",
        }
    }
}

/// A typed parameter of a block.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputDecl {
    #[serde(rename = "type", default)]
    pub kind: InputType,
    #[serde(default)]
    pub default: Option<Spanned<Value>>,
    #[serde(default)]
    pub required: bool,
    #[serde(rename = "enum", default)]
    pub allowed: Option<Spanned<Vec<Value>>>,
    #[serde(default)]
    pub minimum: Option<Spanned<f64>>,
    #[serde(default)]
    pub maximum: Option<Spanned<f64>>,
    #[serde(default)]
    pub pattern: Option<Str>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub secret: bool,
}

/// Who owns a rendered file after druppie first writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OwnershipMode {
    /// druppie keeps the file equal to the render; edits are drift.
    Managed,
    /// druppie writes it once; people own it, later changes are merged.
    Seeded,
}

/// Ownership settings of a block.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ownership {
    #[serde(default)]
    pub project: Option<OwnershipMode>,
    #[serde(default)]
    pub infra: Option<OwnershipMode>,
    /// Glob (relative to `templates/<id>/`) -> mode.
    #[serde(default)]
    pub paths: SpannedMap<OwnershipMode>,
}

/// A skill: a persona or instructions for the planner and agents.
#[derive(Debug, Clone)]
pub struct Skill {
    pub file: FileId,
    /// `meta.id`, or the file name without `.md` when the frontmatter
    /// has none (as in Druppie catalogs).
    pub id: Str,
    /// Whether [`Skill::id`] came from the file name.
    pub derived_id: bool,
    pub meta: SkillMeta,
    pub extra: BTreeMap<String, Value>,
    pub body: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SkillMeta {
    #[serde(default)]
    pub id: Option<Str>,
    pub name: Str,
    pub description: Str,
    #[serde(rename = "type", default)]
    pub kind: Option<Str>,
    #[serde(default)]
    pub category: Option<Str>,
    #[serde(default)]
    pub version: Option<Str>,
}

pub const SKILL_KEYS: &[&str] = &["id", "name", "description", "type", "category", "version"];

/// `spec/platform.yaml`: the logical platform.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Platform {
    #[serde(skip)]
    pub file: FileId,
    #[serde(default)]
    pub infra: InfraRepo,
    #[serde(default)]
    pub projects: Projects,
    pub environments: SpannedMap<Environment>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfraRepo {
    #[serde(default = "default_infra_repo")]
    pub repo: Str,
    #[serde(default = "default_branch")]
    pub branch: Str,
}

impl Default for InfraRepo {
    fn default() -> Self {
        InfraRepo {
            repo: default_infra_repo(),
            branch: default_branch(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Projects {
    #[serde(default = "default_naming")]
    pub naming: Str,
    #[serde(default = "default_branch")]
    pub branch: Str,
    /// The image a project repo's CI publishes for its first release,
    /// as a pattern over `{{ owner }}`, `{{ plan }}`, `{{ component }}`
    /// and `{{ repo }}`: the planner fills a block's required `image`
    /// input with it.
    #[serde(default)]
    pub image: Option<Str>,
}

impl Default for Projects {
    fn default() -> Self {
        Projects {
            naming: default_naming(),
            branch: default_branch(),
            image: None,
        }
    }
}

/// A value written nowhere: a default.
fn unwritten(value: &str) -> Str {
    Spanned::new(
        value.to_owned(),
        super::yaml::Location::UNKNOWN,
        super::yaml::Location::UNKNOWN,
    )
}

fn default_infra_repo() -> Str {
    unwritten("infra")
}
fn default_branch() -> Str {
    unwritten("main")
}
fn default_naming() -> Str {
    unwritten("{{ plan }}-{{ component }}")
}

/// How much druppie may do in an environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trust {
    /// Compute and report diffs only.
    Observe,
    /// Push a branch and open a pull request; a merge is the approval.
    Propose,
    /// Commit straight to the default branch.
    Deploy,
}

impl Trust {
    /// The level's name, as platform.yaml spells it.
    pub fn name(self) -> &'static str {
        match self {
            Trust::Observe => "observe",
            Trust::Propose => "propose",
            Trust::Deploy => "deploy",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    pub trust: Trust,
    /// Infra path prefix: plans render under `<path>/<plan>/<component>/`.
    pub path: Str,
    /// Namespace pattern, e.g. `{{ plan }}-dev`.
    #[serde(default = "default_namespace")]
    pub namespace: Str,
    #[serde(default)]
    pub approvers: Vec<Str>,
    /// A change is live here only once verified: Flux reports its
    /// Kustomization Ready at druppie's commit and the health URLs
    /// answer (a `verified` event on the trail, which the daemon with a
    /// cluster records). Promotion past this environment waits for it.
    #[serde(default)]
    pub verify: bool,
}

fn default_namespace() -> Str {
    unwritten("{{ plan }}-{{ env }}")
}

/// `spec/stacks/*.yaml`: building blocks composed and wired together.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stack {
    #[serde(skip)]
    pub file: FileId,
    pub name: Str,
    #[serde(default)]
    pub description: Option<String>,
    pub components: SpannedMap<Component>,
    /// env -> component -> input overrides.
    #[serde(default)]
    pub environments: SpannedMap<SpannedMap<InputValues>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    pub block: Str,
    #[serde(default)]
    pub inputs: InputValues,
}

/// `spec/plans/*.yaml`: a stack instantiated for a project.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    #[serde(skip)]
    pub file: FileId,
    pub name: Str,
    pub stack: Str,
    pub owner: Str,
    #[serde(default)]
    pub intent: Option<String>,
    pub environments: Vec<Str>,
    /// component -> inputs.
    #[serde(default)]
    pub inputs: SpannedMap<InputValues>,
    /// env -> component -> inputs.
    #[serde(default)]
    pub overrides: SpannedMap<SpannedMap<InputValues>>,
    /// env -> how a change reaches it: after it is live in the
    /// environment before (the default), or `parallel`.
    #[serde(default)]
    pub promote: SpannedMap<Promote>,
    /// Block id -> the version this plan uses, read from the spec repo's
    /// history; a block not listed is used as it is now.
    #[serde(default)]
    pub blocks: SpannedMap<Str>,
    /// Plans whose Flux `Kustomization` must be Ready before this plan's
    /// is applied, in every environment both deploy to.
    #[serde(default)]
    pub depends_on: Vec<Str>,
}

/// How a plan's change reaches one of its environments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Promote {
    /// Once it is live in the environment before (platform.yaml's order).
    After,
    /// Regardless of the environments before: they are independent.
    Parallel,
}

/// `spec/policies/*.yaml`: a rule checked on rendered output.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(skip)]
    pub file: FileId,
    pub name: Str,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(rename = "match", default)]
    pub matches: PolicyMatch,
    pub rule: Str,
    pub severity: Severity,
    pub message: Str,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicyMatch {
    #[serde(default)]
    pub api_versions: Vec<Str>,
    #[serde(default)]
    pub kinds: Vec<Str>,
    #[serde(default)]
    pub envs: Vec<Str>,
    #[serde(default)]
    pub plans: Vec<Str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}
