//! `policy`: [`Desired`] -> [`Finding`]s.
//!
//! The rules in `spec/policies/*.yaml` are CEL expressions (the language
//! of Kubernetes ValidatingAdmissionPolicy) over `object`, one rendered
//! YAML document. A policy applies to a document when every list in its
//! `match` is empty or holds the document's apiVersion, kind, environment
//! and plan. A rule that is false, or that fails to evaluate, is a finding
//! with the policy's severity; errors block apply. A rendered `.yaml` file
//! that does not parse is an error finding too.

use serde::Serialize;

use crate::lock::LOCK_FILE;
use crate::render::{Desired, Target};
use crate::spec::model::{Policy, Severity};
use crate::spec::validate::Validated;

/// A policy's verdict on one rendered document.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub policy: String,
    pub severity: Severity,
    pub repo: String,
    pub env: Option<String>,
    pub path: String,
    /// 1-based index of the document in a multi-document file.
    pub document: usize,
    /// `Kind/name` of the object, when it has them.
    pub object: Option<String>,
    pub message: String,
}

/// A rule that does not compile: the position is in the rule's text
/// (line 1-based, column 1-based).
#[derive(Debug, Clone)]
pub struct RuleError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// Compiles a CEL rule.
///
/// # Errors
/// The first syntax error, with its position in `rule`.
pub fn compile_rule(rule: &str) -> Result<cel::Program, RuleError> {
    cel::Program::compile(rule).map_err(|errs| {
        let first = errs.errors.first();
        RuleError {
            line: first.map_or(1, |e| e.pos.0.max(1) as usize),
            col: first.map_or(1, |e| e.pos.1.max(1) as usize),
            message: first.map_or_else(|| errs.to_string(), |e| e.msg.clone()),
        }
    })
}

struct Compiled<'s> {
    policy: &'s Policy,
    program: cel::Program,
}

/// Evaluates every policy on every rendered YAML document.
pub fn check(v: &Validated, desired: &Desired) -> Vec<Finding> {
    let compiled: Vec<Compiled<'_>> = v
        .spec
        .policies
        .iter()
        .filter_map(|policy| {
            let program = compile_rule(&policy.rule.value).ok()?;
            Some(Compiled { policy, program })
        })
        .collect();
    let root = cel::Context::default();
    let mut findings = Vec::new();
    for target in desired.targets.values() {
        for (path, file) in &target.files {
            let yaml = path.ends_with(".yaml") || path.ends_with(".yml");
            if !yaml || path.rsplit('/').next() == Some(LOCK_FILE) {
                continue;
            }
            check_file(&compiled, &root, target, path, &file.bytes, &mut findings);
        }
    }
    findings
}

fn check_file(
    compiled: &[Compiled<'_>],
    root: &cel::Context<'_, '_>,
    target: &Target,
    path: &str,
    bytes: &[u8],
    findings: &mut Vec<Finding>,
) {
    let finding = |policy: &str, severity, document, object, message| Finding {
        policy: policy.to_owned(),
        severity,
        repo: target.repo.clone(),
        env: target.env.clone(),
        path: path.to_owned(),
        document,
        object,
        message,
    };
    let text = String::from_utf8_lossy(bytes);
    let docs: Vec<serde_json::Value> = match serde_saphyr::from_multiple(&text) {
        Ok(docs) => docs,
        Err(e) => {
            let message = format!("rendered YAML does not parse: {e}");
            findings.push(finding("yaml", Severity::Error, 1, None, message));
            return;
        }
    };
    let plan = target.plan_of(path);
    for (i, doc) in docs.iter().enumerate() {
        let Some(obj) = doc.as_object() else {
            continue;
        };
        let field = |k: &str| obj.get(k).and_then(|v| v.as_str()).unwrap_or("");
        let (api_version, kind) = (field("apiVersion"), field("kind"));
        let name = doc
            .pointer("/metadata/name")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        let object = match (kind, name) {
            ("", _) => None,
            (kind, "") => Some(kind.to_owned()),
            (kind, name) => Some(format!("{kind}/{name}")),
        };
        let mut value = None;
        for c in compiled {
            let m = &c.policy.matches;
            let fits = |list: &[crate::spec::yaml::Str], actual: Option<&str>| {
                list.is_empty() || actual.is_some_and(|a| list.iter().any(|x| x.value == a))
            };
            if !(fits(&m.api_versions, Some(api_version))
                && fits(&m.kinds, Some(kind))
                && fits(&m.envs, target.env.as_deref())
                && fits(&m.plans, plan))
            {
                continue;
            }
            let value = value.get_or_insert_with(|| cel::to_value(doc).ok());
            let Some(value) = value.clone() else {
                continue;
            };
            let mut ctx = root.new_inner_scope();
            ctx.add_variable_from_value("object", value);
            let message = match c.program.execute(&ctx) {
                Ok(cel::Value::Bool(true)) => continue,
                Ok(cel::Value::Bool(false)) => c.policy.message.value.clone(),
                Ok(other) => format!(
                    "{} (the rule gave {other:?}, not a boolean)",
                    c.policy.message.value
                ),
                Err(e) => format!(
                    "{} (the rule could not be evaluated: {e})",
                    c.policy.message.value
                ),
            };
            findings.push(finding(
                &c.policy.name.value,
                c.policy.severity,
                i + 1,
                object.clone(),
                message,
            ));
        }
    }
}

/// Counts of (errors, warnings).
pub fn counts(findings: &[Finding]) -> (usize, usize) {
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    (errors, findings.len() - errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_syntax_error_has_a_position_in_the_rule() {
        let err = compile_rule("object.spec.replicas >\n  && true").unwrap_err();
        assert_eq!(err.line, 2, "{err:?}");
        assert!(err.col > 1, "{err:?}");
        assert!(compile_rule("has(object.spec) && object.spec.replicas <= 3").is_ok());
    }
}
