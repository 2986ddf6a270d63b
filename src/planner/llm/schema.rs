//! The answer the model must give, as a JSON schema (structured output,
//! `response_format: json_schema`) and as the type it is parsed into:
//! a [`Draft`] (or none), and the choices, questions and notes around it.
//! The schema asks; the parser decides (`deny_unknown_fields` throughout).

use serde::Deserialize;
use serde_json::{Value, json};

use crate::planner::Draft;

/// The model's answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelAnswer {
    pub draft: Option<Draft>,
    #[serde(default)]
    pub choices: Vec<ModelChoice>,
    #[serde(default)]
    pub questions: Vec<String>,
    #[serde(default)]
    pub notes: Vec<String>,
}

/// A block the model chose, and why.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelChoice {
    pub component: String,
    pub block: String,
    pub why: String,
}

/// The name the answer's schema goes by.
pub const NAME: &str = "druppie_plan_draft";

/// Component -> input -> value.
fn inputs() -> Value {
    json!({
        "type": "object",
        "description": "component name -> input name -> value; only inputs that differ from the block's defaults",
        "additionalProperties": {
            "type": "object",
            "additionalProperties": {}
        }
    })
}

/// The schema of [`Draft`].
pub fn draft() -> Value {
    let strings = json!({"type": "array", "items": {"type": "string"}});
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["plan", "stack"],
        "properties": {
            "plan": {
                "type": "object",
                "description": "spec/plans/<name>.yaml",
                "additionalProperties": false,
                "required": ["name", "stack", "owner", "intent", "environments", "inputs", "overrides"],
                "properties": {
                    "name": {"type": "string", "description": "a DNS label: [a-z0-9-], at most 63 characters"},
                    "stack": {"type": "string", "description": "an existing stack, or the new stack's name"},
                    "owner": {"type": "string", "description": "the owning team, e.g. team-permits"},
                    "intent": {"type": "string", "description": "the request, verbatim, on one line"},
                    "environments": strings,
                    "inputs": inputs(),
                    "overrides": {
                        "type": "object",
                        "description": "environment -> component -> input -> value",
                        "additionalProperties": inputs()
                    }
                }
            },
            "stack": {
                "description": "a new stack, only when no existing stack fits; else null",
                "anyOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["name", "description", "components", "environments"],
                        "properties": {
                            "name": {"type": "string"},
                            "description": {"type": "string"},
                            "components": {
                                "type": "object",
                                "description": "component name -> the block it instantiates and its inputs",
                                "additionalProperties": {
                                    "type": "object",
                                    "additionalProperties": false,
                                    "required": ["block", "inputs"],
                                    "properties": {
                                        "block": {"type": "string"},
                                        "inputs": {"type": "object", "additionalProperties": {}}
                                    }
                                }
                            },
                            "environments": {
                                "type": "object",
                                "description": "environment -> component -> input -> value",
                                "additionalProperties": inputs()
                            }
                        }
                    }
                ]
            }
        }
    })
}

/// The schema of [`ModelAnswer`].
pub fn answer() -> Value {
    let strings = json!({"type": "array", "items": {"type": "string"}});
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["draft", "choices", "questions", "notes"],
        "properties": {
            "draft": {"anyOf": [{"type": "null"}, draft()]},
            "choices": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["component", "block", "why"],
                    "properties": {
                        "component": {"type": "string"},
                        "block": {"type": "string"},
                        "why": {"type": "string"}
                    }
                }
            },
            "questions": strings,
            "notes": strings
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_that_follows_the_schema_parses_and_one_with_more_does_not() {
        let text = r#"{"draft": {"plan": {"name": "permits", "stack": "webapp-db",
            "owner": "team-x", "intent": "a permit portal", "environments": ["dev"],
            "inputs": {"app": {"image": "r/x:1.0.0"}}, "overrides": {}}, "stack": null},
            "choices": [{"component": "app", "block": "webapp-python", "why": "web"}],
            "questions": [], "notes": []}"#;
        let a: ModelAnswer = serde_json::from_str(text).expect("parses");
        assert_eq!(a.draft.expect("a draft").plan.stack, "webapp-db");
        let more = text.replace(r#""questions": []"#, r#""questions": [], "files": {}"#);
        assert!(serde_json::from_str::<ModelAnswer>(&more).is_err());
        let deeper = text.replace(r#""owner""#, r#""path": "../x", "owner""#);
        assert!(serde_json::from_str::<ModelAnswer>(&deeper).is_err());
    }

    #[test]
    fn the_schema_names_every_field_of_the_draft() {
        let s = draft();
        let plan: Vec<&str> = s["properties"]["plan"]["required"]
            .as_array()
            .expect("required")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(
            plan,
            [
                "name",
                "stack",
                "owner",
                "intent",
                "environments",
                "inputs",
                "overrides"
            ]
        );
    }
}
