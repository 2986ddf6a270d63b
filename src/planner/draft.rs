//! A draft: the plan (and, when no stack fits, the stack) a planner
//! proposes, as data. Every planner (the rules, a language model) answers
//! with one; nothing in it is trusted until [`super::check`] has run the
//! spec's own validation on the files it becomes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::spec::names;

/// Component -> input -> value.
pub type Inputs = BTreeMap<String, BTreeMap<String, Value>>;

/// A proposed spec change: one plan, and a new stack when none fits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Draft {
    pub plan: PlanDraft,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<StackDraft>,
}

/// `spec/plans/<name>.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanDraft {
    pub name: String,
    pub stack: String,
    pub owner: String,
    /// The request, verbatim: provenance for the reviewer.
    pub intent: String,
    pub environments: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: Inputs,
    /// Environment -> component -> input -> value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub overrides: BTreeMap<String, Inputs>,
}

/// `spec/stacks/<name>.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackDraft {
    pub name: String,
    pub description: String,
    pub components: BTreeMap<String, ComponentDraft>,
    /// Environment -> component -> input -> value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environments: BTreeMap<String, Inputs>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentDraft {
    pub block: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, Value>,
}

/// A draft names something that cannot become a file of the spec repo.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DraftError {
    #[error("the plan name {name:?} {why}")]
    PlanName { name: String, why: String },
    #[error("the stack name {name:?} {why}")]
    StackName { name: String, why: String },
    #[error("the plan uses stack {used:?} but the draft's new stack is {new:?}")]
    StackMismatch { used: String, new: String },
}

/// One file of the spec repo a draft writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct File {
    /// Relative to the spec root, with `/`.
    pub path: String,
    pub text: String,
}

impl Draft {
    /// The files this draft writes: `spec/plans/<name>.yaml`, and
    /// `spec/stacks/<name>.yaml` for a new stack. Names are checked
    /// first, so no path leaves those two directories.
    ///
    /// # Errors
    /// A name is not a DNS label, or the plan does not use the new stack.
    pub fn files(&self) -> Result<Vec<File>, DraftError> {
        names::dns_label(&self.plan.name).map_err(|e| DraftError::PlanName {
            name: self.plan.name.clone(),
            why: e.to_string(),
        })?;
        let mut files = vec![File {
            path: format!("spec/plans/{}.yaml", self.plan.name),
            text: self.plan.to_yaml(),
        }];
        if let Some(stack) = &self.stack {
            names::dns_label(&stack.name).map_err(|e| DraftError::StackName {
                name: stack.name.clone(),
                why: e.to_string(),
            })?;
            if stack.name != self.plan.stack {
                return Err(DraftError::StackMismatch {
                    used: self.plan.stack.clone(),
                    new: stack.name.clone(),
                });
            }
            files.push(File {
                path: format!("spec/stacks/{}.yaml", stack.name),
                text: stack.to_yaml(),
            });
        }
        Ok(files)
    }

    /// The blocks the draft's new stack instantiates (empty when it
    /// reuses a stack).
    pub fn new_blocks(&self) -> Vec<&str> {
        self.stack
            .iter()
            .flat_map(|s| s.components.values().map(|c| c.block.as_str()))
            .collect()
    }
}

impl PlanDraft {
    /// The plan file. Every string is written double-quoted (JSON's
    /// escaping, which YAML reads the same), so no value, whatever it
    /// holds, can add a key or end the document.
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        line(&mut out, 0, "name", &q(&self.name));
        line(&mut out, 0, "stack", &q(&self.stack));
        line(&mut out, 0, "owner", &q(&self.owner));
        line(
            &mut out,
            0,
            "intent",
            &Value::String(self.intent.clone()).to_string(),
        );
        let envs: Vec<String> = self.environments.iter().map(|e| q(e)).collect();
        line(
            &mut out,
            0,
            "environments",
            &format!("[{}]", envs.join(", ")),
        );
        if !self.inputs.is_empty() {
            out.push_str("inputs:\n");
            inputs(&mut out, 1, &self.inputs);
        }
        if !self.overrides.is_empty() {
            out.push_str("overrides:\n");
            for (env, values) in &self.overrides {
                out.push_str(&format!("  {}:\n", q(env)));
                inputs(&mut out, 2, values);
            }
        }
        out
    }
}

impl StackDraft {
    /// The stack file, quoted as [`PlanDraft::to_yaml`] quotes.
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        line(&mut out, 0, "name", &q(&self.name));
        line(&mut out, 0, "description", &q(&self.description));
        out.push_str("components:\n");
        for (name, c) in &self.components {
            out.push_str(&format!("  {}:\n", q(name)));
            line(&mut out, 2, "block", &q(&c.block));
            if !c.inputs.is_empty() {
                out.push_str("    inputs:\n");
                for (input, value) in &c.inputs {
                    line(&mut out, 3, input, &scalar(value));
                }
            }
        }
        if !self.environments.is_empty() {
            out.push_str("environments:\n");
            for (env, values) in &self.environments {
                out.push_str(&format!("  {}:\n", q(env)));
                inputs(&mut out, 2, values);
            }
        }
        out
    }
}

fn inputs(out: &mut String, depth: usize, values: &Inputs) {
    let pad = "  ".repeat(depth);
    for (component, values) in values {
        out.push_str(&format!("{pad}{}:\n", q(component)));
        for (input, value) in values {
            line(out, depth + 1, input, &scalar(value));
        }
    }
}

fn line(out: &mut String, depth: usize, key: &str, value: &str) {
    out.push_str(&format!("{}{}: {value}\n", "  ".repeat(depth), q(key)));
}

/// `s` as a YAML scalar: plain when it is a word YAML reads as that
/// string (`webapp-db`, `team-x`), else double-quoted with JSON's
/// escaping, which YAML reads the same.
fn q(s: &str) -> String {
    const RESERVED: [&str; 11] = [
        "true", "false", "null", "yes", "no", "on", "off", "y", "n", "nan", "inf",
    ];
    let plain = s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && !RESERVED.contains(&s.to_ascii_lowercase().as_str());
    if plain {
        s.to_owned()
    } else {
        Value::String(s.to_owned()).to_string()
    }
}

/// A value on one line: a string as [`q`] writes it, anything else in
/// JSON, which is YAML's flow syntax.
fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => q(s),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> Draft {
        let mut inputs = Inputs::new();
        inputs.entry("app".into()).or_default().insert(
            "image".into(),
            Value::String("registry.example.org/x/y:0.1.0".into()),
        );
        Draft {
            plan: PlanDraft {
                name: "permit-portal".into(),
                stack: "webapp-db".into(),
                owner: "team-x".into(),
                intent: "a permit portal\nwith: \"a\" database # not a comment".into(),
                environments: vec!["dev".into(), "prod".into()],
                inputs,
                overrides: BTreeMap::new(),
            },
            stack: None,
        }
    }

    #[test]
    fn a_plan_file_reads_back_as_the_draft_says_whatever_the_intent_holds() {
        let d = draft();
        let files = d.files().expect("names are fine");
        assert_eq!(files[0].path, "spec/plans/permit-portal.yaml");
        let back: serde_json::Value =
            serde_saphyr::from_str(&files[0].text).expect("the file is YAML");
        assert_eq!(back["intent"], d.plan.intent.as_str());
        assert_eq!(back["environments"][1], "prod");
        assert_eq!(
            back["inputs"]["app"]["image"],
            "registry.example.org/x/y:0.1.0"
        );
        assert_eq!(back.as_object().map(|o| o.len()), Some(6));
    }

    #[test]
    fn a_name_that_is_a_path_never_becomes_a_file() {
        for name in ["../../etc/passwd", "a/b", "", "UPPER", "x.yaml"] {
            let mut d = draft();
            d.plan.name = name.into();
            assert!(
                matches!(d.files(), Err(DraftError::PlanName { .. })),
                "{name}"
            );
        }
        let mut d = draft();
        d.stack = Some(StackDraft {
            name: "../stack".into(),
            description: String::new(),
            components: BTreeMap::new(),
            environments: BTreeMap::new(),
        });
        assert!(matches!(d.files(), Err(DraftError::StackName { .. })));
    }
}
