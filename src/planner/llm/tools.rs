//! The tools the model may call (function calling), answered from the
//! spec as it is at the base commit: search the catalog, read a block,
//! list stacks and plans, and validate a draft (which [`super::session`]
//! answers, since it checks drafts). Every answer is JSON text, cut to
//! a size the model can take.

use async_openai::types::chat::{ChatCompletionTool, ChatCompletionTools, FunctionObject};
use serde_json::{Value, json};

use crate::registry::{BlockEntry, Registry};
use crate::spec::Validated;

pub const SEARCH_BLOCKS: &str = "search_blocks";
pub const READ_BLOCK: &str = "read_block";
pub const LIST_STACKS_AND_PLANS: &str = "list_stacks_and_plans";
pub const VALIDATE_DRAFT: &str = "validate_draft";

/// The most bytes one tool answer holds.
pub const MAX_ANSWER: usize = 16_000;
/// The most blocks a search answers with.
const HITS: usize = 8;
/// The most bytes of a block's documentation `read_block` gives.
const MAX_DOCS: usize = 8_000;

fn tool(name: &str, description: &str, parameters: Value) -> ChatCompletionTools {
    ChatCompletionTools::Function(ChatCompletionTool {
        function: FunctionObject {
            name: name.to_owned(),
            description: Some(description.to_owned()),
            parameters: Some(parameters),
            strict: None,
        },
    })
}

/// The tools, as the request declares them.
pub fn definitions() -> Vec<ChatCompletionTools> {
    vec![
        tool(
            SEARCH_BLOCKS,
            "Search the catalog of building blocks by capability or words (e.g. \"database\"); best first.",
            json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["query"],
                "properties": {"query": {"type": "string"}}
            }),
        ),
        tool(
            READ_BLOCK,
            "Read one building block: its catalog entry, its documentation and its inputs (type, default, required, enum, minimum, maximum, pattern).",
            json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["id"],
                "properties": {"id": {"type": "string", "description": "the block's id"}}
            }),
        ),
        tool(
            LIST_STACKS_AND_PLANS,
            "List the platform's environments, the stacks (their components and blocks) and the plans (their stack, owner and environments).",
            json!({"type": "object", "additionalProperties": false, "properties": {}}),
        ),
        tool(
            VALIDATE_DRAFT,
            "Check a draft as druppie will: spec validation, policies and the preview of what merging it does. Answers with the diagnostics, or that it checks out.",
            json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["draft"],
                "properties": {"draft": super::schema::draft()}
            }),
        ),
    ]
}

/// `search_blocks`.
pub fn search_blocks(registry: &Registry, args: &Value) -> Result<Value, String> {
    let query = string(args, "query")?;
    let hits: Vec<Value> = registry
        .search_blocks(query)
        .into_iter()
        .take(HITS)
        .map(entry)
        .collect();
    Ok(json!({"query": query, "blocks": hits}))
}

/// `read_block`.
pub fn read_block(v: &Validated, registry: &Registry, args: &Value) -> Result<Value, String> {
    let id = string(args, "id")?;
    let (Some(found), Some(block)) = (
        registry.blocks.iter().find(|b| b.id == id),
        v.spec.block(id),
    ) else {
        return Err(format!(
            "there is no block `{id}`: search_blocks finds the catalog's blocks"
        ));
    };
    let mut inputs = serde_json::Map::new();
    for (name, decl) in block.meta.inputs.iter() {
        let mut d = serde_json::Map::new();
        d.insert("type".into(), json!(decl.kind.name()));
        d.insert("required".into(), json!(decl.required));
        if let Some(x) = &decl.default {
            d.insert("default".into(), x.value.clone());
        }
        if let Some(x) = &decl.allowed {
            d.insert("enum".into(), json!(x.value));
        }
        if let Some(x) = &decl.minimum {
            d.insert("minimum".into(), json!(x.value));
        }
        if let Some(x) = &decl.maximum {
            d.insert("maximum".into(), json!(x.value));
        }
        if let Some(x) = &decl.pattern {
            d.insert("pattern".into(), json!(x.value));
        }
        if let Some(x) = &decl.description {
            d.insert("description".into(), json!(x));
        }
        if decl.secret {
            d.insert("secret".into(), json!(true));
        }
        inputs.insert(name.value.clone(), Value::Object(d));
    }
    let mut out = entry(found);
    out["inputs"] = Value::Object(inputs);
    out["docs"] = json!(cut(&found.docs, MAX_DOCS));
    Ok(out)
}

/// `list_stacks_and_plans`.
pub fn list_stacks_and_plans(v: &Validated) -> Value {
    let spec = &v.spec;
    let environments: Vec<Value> = spec
        .platform
        .iter()
        .flat_map(|p| p.environments.iter())
        .map(|(name, env)| json!({"name": name.value, "trust": env.trust}))
        .collect();
    let stacks: Vec<Value> = spec
        .stacks
        .iter()
        .map(|s| {
            let components: serde_json::Map<String, Value> = s
                .components
                .iter()
                .map(|(c, comp)| (c.value.clone(), json!(comp.block.value)))
                .collect();
            json!({
                "name": s.name.value,
                "description": s.description,
                "components": components,
            })
        })
        .collect();
    let plans: Vec<Value> = spec
        .plans
        .iter()
        .map(|p| {
            json!({
                "name": p.name.value,
                "stack": p.stack.value,
                "owner": p.owner.value,
                "environments": p.environments.iter().map(|e| e.value.clone()).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({"environments": environments, "stacks": stacks, "plans": plans})
}

fn entry(b: &BlockEntry) -> Value {
    json!({
        "id": b.id,
        "name": b.name,
        "type": b.kind,
        "version": b.version,
        "description": b.description,
        "capabilities": b.capabilities,
        "requires": b.requires,
        "inputs": b.inputs,
        "outputs": b.outputs,
        "instantiable": b.instantiable,
    })
}

fn string<'a>(args: &'a Value, key: &str) -> Result<&'a str, String> {
    args.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("the arguments need a string `{key}`"))
}

/// `text` cut at `max` bytes (on a character boundary), marked when cut.
pub fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… (cut)", &text[..end])
}
