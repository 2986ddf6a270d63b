//! Filling a plan's inputs: from the request, the platform's project
//! image convention, else a question.

use serde_json::Value;

use super::{is_stop, one_line};
use crate::planner::Outline;
use crate::planner::Request;
use crate::planner::draft::{Inputs, StackDraft};
use crate::spec::Validated;
use crate::spec::model::{Block, Stack};

/// Inputs the plan sets: what the request says (an image reference,
/// `3 replicas`, `storage 20Gi`), and a required input the platform's
/// project image convention answers. A required input still without a
/// value becomes a question.
#[allow(clippy::too_many_arguments)]
pub(super) fn fill_inputs(
    v: &Validated,
    request: &Request,
    components: &[(String, &Block)],
    new_stack: Option<&StackDraft>,
    reused: Option<&Stack>,
    plan: Option<&str>,
    owner: Option<&str>,
    out: &mut Outline,
) -> Inputs {
    let mut inputs = Inputs::new();
    let tokens: Vec<&str> = request
        .text
        .split(|c: char| c.is_whitespace() || c == ',')
        .map(|t| t.trim_end_matches(['.', ';', ')']).trim_start_matches('('))
        .filter(|t| !t.is_empty())
        .collect();
    // An image reference: a path with a tag or a digest.
    let image = tokens
        .iter()
        .find(|t| t.contains('/') && (t.contains(':') || t.contains('@')) && !t.contains("://"));
    for (component, block) in components {
        let set_by_stack = |input: &str| {
            reused
                .and_then(|s| s.components.get(component))
                .is_some_and(|c| c.inputs.get(input).is_some())
                || new_stack
                    .and_then(|s| s.components.get(component))
                    .is_some_and(|c| c.inputs.contains_key(input))
        };
        for (input, decl) in block.meta.inputs.iter() {
            let input = input.value.as_str();
            if set_by_stack(input) {
                continue;
            }
            let pattern = decl
                .pattern
                .as_ref()
                .and_then(|p| crate::spec::validate::values::full_match(&p.value));
            // A value read from the request is a value, never a template
            // (which validation would only check once rendered).
            let fits = |value: &Value| {
                !crate::spec::validate::values::is_template(value)
                    && crate::spec::validate::values::check_value(decl, value, pattern.as_ref())
                        .is_ok()
            };
            let mut value = None;
            if input == "image"
                && let Some(img) = image
                && fits(&Value::String((*img).to_owned()))
                && !inputs.values().any(|m| m.get("image").is_some())
            {
                value = Some(Value::String((*img).to_owned()));
            }
            if value.is_none() {
                value = said(&tokens, input, |t| {
                    parse_as(decl.kind, t).filter(|v| fits(v))
                });
            }
            if value.is_none()
                && decl.required
                && decl.default.is_none()
                && input == "image"
                && let Some(v) = convention(v, plan, component, owner).filter(|x| fits(x))
            {
                out.notes.push(format!(
                    "`{component}.image` is the image its project repo's CI will publish, after `projects.image` in spec/platform.yaml: {}. Change it in the plan if the image lives elsewhere.",
                    v.as_str().unwrap_or_default()
                ));
                value = Some(v);
            }
            match value {
                Some(value) => {
                    inputs
                        .entry(component.clone())
                        .or_default()
                        .insert(input.to_owned(), value);
                }
                None if decl.required && decl.default.is_none() => {
                    out.questions.push(format!(
                        "What is `{component}.{input}` of {}{}?",
                        block.id(),
                        decl.description
                            .as_deref()
                            .map(|d| format!(" ({})", one_line(d)))
                            .unwrap_or_default()
                    ));
                }
                None => {}
            }
        }
    }
    inputs
}

/// A value the request gives `input` as `<value> <input>` or
/// `<input> <value>` (`3 replicas`, `storage 20Gi`).
pub(super) fn said(
    tokens: &[&str],
    input: &str,
    parse: impl Fn(&str) -> Option<Value>,
) -> Option<Value> {
    let names = [
        input.to_owned(),
        input.replace('_', "-"),
        format!("{input}s"),
    ];
    let is_name = |t: &str| {
        names.iter().any(|n| n.eq_ignore_ascii_case(t))
            || t.eq_ignore_ascii_case(input.trim_end_matches('s'))
    };
    for (i, t) in tokens.iter().enumerate() {
        if !is_name(t) {
            continue;
        }
        let around = [i.checked_sub(1), Some(i + 1)];
        for j in around.into_iter().flatten() {
            if let Some(v) = tokens.get(j).and_then(|t| parse(t)) {
                return Some(v);
            }
        }
    }
    None
}

/// `token` as a value of `kind`. A string is read only when it holds a
/// digit (`20Gi`, `512Mi`): a word next to an input's name is a name of
/// something else far more often than the value ("with a database").
pub(super) fn parse_as(kind: crate::spec::model::InputType, token: &str) -> Option<Value> {
    use crate::spec::model::InputType as T;
    if is_stop(&token.to_lowercase()) {
        return None;
    }
    match kind {
        T::Integer => token.parse::<i64>().ok().map(Value::from),
        T::Number => token
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number),
        T::Boolean => token.parse::<bool>().ok().map(Value::Bool),
        T::String if token.chars().any(|c| c.is_ascii_digit()) => {
            Some(Value::String(token.to_owned()))
        }
        _ => None,
    }
}

/// The platform's `projects.image` for a component, when it declares one.
pub(super) fn convention(
    v: &Validated,
    plan: Option<&str>,
    component: &str,
    owner: Option<&str>,
) -> Option<Value> {
    let projects = &v.spec.platform.as_ref()?.projects;
    let pattern = projects.image.as_ref()?;
    let (plan, owner) = (plan?, owner?);
    let repo = crate::spec::names::project_repo(&projects.naming.value, plan, component).ok()?;
    crate::spec::names::project_image(&pattern.value, owner, plan, component, &repo)
        .ok()
        .map(Value::String)
}
