//! `policy`: [`Desired`] -> [`Finding`]s.
//!
//! The rules in `spec/policies/*.yaml` are CEL expressions (the language
//! of Kubernetes ValidatingAdmissionPolicy) over `object`, one rendered
//! YAML document. A policy applies to a document when every list in its
//! `match` is empty or holds the document's apiVersion, kind, environment
//! and plan. A rule that is false, or that fails to evaluate, is a finding
//! with the policy's severity; errors block apply. A rendered `.yaml` file
//! that does not parse is an error finding too.
//!
//! Parsing is the expensive part, so a file is parsed only when a policy
//! may apply to it: every document's top-level `apiVersion:` and `kind:`
//! lines are read first, and a file whose documents no policy matches is
//! skipped. A document whose header cannot be read that way (flow style,
//! quoted keys) is always parsed. A [`Checker`] holds the compiled
//! policies for one thread; `diff` runs one on every core.

mod docs;

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

/// The spec's policies, compiled, with a CEL context: one per thread (a
/// CEL context cannot be shared between threads).
pub struct Checker<'s> {
    compiled: Vec<Compiled<'s>>,
    root: cel::Context<'static, 'static>,
}

impl<'s> Checker<'s> {
    pub fn new(v: &'s Validated) -> Checker<'s> {
        let compiled = v
            .spec
            .policies
            .iter()
            .filter_map(|policy| {
                let program = compile_rule(&policy.rule.value).ok()?;
                Some(Compiled { policy, program })
            })
            .collect();
        Checker {
            compiled,
            root: cel::Context::default(),
        }
    }

    /// Evaluates every policy on every rendered YAML document of `desired`.
    pub fn check(&self, desired: &Desired) -> Vec<Finding> {
        let mut findings = Vec::new();
        for target in desired.targets.values() {
            for (path, file) in &target.files {
                let yaml = path.ends_with(".yaml") || path.ends_with(".yml");
                if yaml && path.rsplit('/').next() != Some(LOCK_FILE) {
                    check_file(
                        &self.compiled,
                        &self.root,
                        target,
                        path,
                        &file.bytes,
                        &mut findings,
                    );
                }
            }
        }
        findings
    }
}

/// Whether a policy's `match` admits these values (an empty list admits
/// everything; `None` is a value no list holds).
fn admits(list: &[crate::spec::yaml::Str], actual: Option<&str>) -> bool {
    list.is_empty() || actual.is_some_and(|a| list.iter().any(|x| x.value == a))
}

/// The lines of `text` as [`str::lines`] gives them (a `\r` before a `\n`
/// dropped), found with one vectorized search instead of its per-line
/// pattern matching: every rendered YAML file is read this way.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let bytes = text.as_bytes();
    let mut ends = memchr::memchr_iter(b'\n', bytes);
    let mut start = 0;
    std::iter::from_fn(move || {
        let (line, next) = match ends.next() {
            Some(end) if bytes[..end].last() == Some(&b'\r') && end > start => {
                (&text[start..end - 1], end + 1)
            }
            Some(end) => (&text[start..end], end + 1),
            None if start < text.len() => (&text[start..], text.len()),
            None => return None,
        };
        start = next;
        Some(line)
    })
}

/// The top-level `apiVersion` and `kind` of every document (empty when
/// absent), read from lines alone; `None` when some document cannot be
/// read that way.
fn headers(text: &str) -> Option<Vec<(String, String)>> {
    let mut docs = Vec::new();
    let mut current: (Option<String>, Option<String>, bool) = (None, None, false);
    let mut finish = |doc: &mut (Option<String>, Option<String>, bool)| {
        let taken = std::mem::take(doc);
        if taken.2 {
            docs.push((taken.0.unwrap_or_default(), taken.1.unwrap_or_default()));
        }
        true
    };
    for line in lines(text) {
        if line == "---" || line.starts_with("--- ") || line == "..." {
            finish(&mut current);
            continue;
        }
        let Some(first) = line.chars().next() else {
            continue;
        };
        if first == '#' || first == ' ' || first == '\t' {
            continue;
        }
        current.2 = true;
        let value = |rest: &str| -> String {
            let v = rest.split(" #").next().unwrap_or("").trim();
            v.trim_matches(|c| c == '"' || c == '\'').to_owned()
        };
        if let Some(rest) = line.strip_prefix("apiVersion:") {
            current.0 = Some(value(rest));
        } else if let Some(rest) = line.strip_prefix("kind:") {
            current.1 = Some(value(rest));
        } else if !line.contains(':') || first == '{' || first == '[' || first == '"' {
            return None;
        }
    }
    finish(&mut current);
    Some(docs)
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
    let plan = target.plan_of(path);
    let env = target.env.as_deref();
    let compiled: Vec<&Compiled<'_>> = compiled
        .iter()
        .filter(|c| admits(&c.policy.matches.envs, env) && admits(&c.policy.matches.plans, plan))
        .collect();
    if compiled.is_empty() {
        return;
    }
    let text = String::from_utf8_lossy(bytes);
    if let Some(headers) = headers(&text) {
        let may_apply = headers.iter().any(|(api_version, kind)| {
            compiled.iter().any(|c| {
                admits(&c.policy.matches.api_versions, Some(api_version))
                    && admits(&c.policy.matches.kinds, Some(kind))
            })
        });
        if !may_apply {
            return;
        }
    }
    let docs = match docs::parse(&text) {
        Ok(docs) => docs,
        Err(e) => {
            let message = format!("rendered YAML does not parse: {e}");
            findings.push(finding("yaml", Severity::Error, 1, None, message));
            return;
        }
    };
    for (i, doc) in docs.into_iter().enumerate() {
        let Some(doc) = doc else {
            continue;
        };
        let (api_version, kind, name) = (&doc.api_version[..], &doc.kind[..], &doc.name[..]);
        let object = match (kind, name) {
            ("", _) => None,
            (kind, "") => Some(kind.to_owned()),
            (kind, name) => Some(format!("{kind}/{name}")),
        };
        let applicable: Vec<&&Compiled<'_>> = compiled
            .iter()
            .filter(|c| {
                let m = &c.policy.matches;
                admits(&m.api_versions, Some(api_version)) && admits(&m.kinds, Some(kind))
            })
            .collect();
        if applicable.is_empty() {
            continue;
        }
        let mut ctx = root.new_inner_scope();
        ctx.add_variable_as_val("object", doc.value);
        for c in applicable {
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
    fn lines_are_split_as_the_standard_library_splits_them() {
        for text in [
            "",
            "a",
            "a\n",
            "a\r\nb\r\n",
            "\r\n",
            "a\rb\n\n\nc\r",
            "\n\r\n x",
        ] {
            assert_eq!(
                lines(text).collect::<Vec<_>>(),
                text.lines().collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn headers_are_read_from_top_level_lines() {
        let two = "# c\napiVersion: v1\nkind: Service # svc\nmetadata:\n  kind: x\n---\napiVersion: \"apps/v1\"\nkind: Deployment\n";
        assert_eq!(
            headers(two).unwrap(),
            vec![
                ("v1".to_owned(), "Service".to_owned()),
                ("apps/v1".to_owned(), "Deployment".to_owned())
            ]
        );
        assert_eq!(
            headers("name: ci\non: push\n").unwrap(),
            vec![(String::new(), String::new())]
        );
        assert_eq!(headers("just text\n"), None);
        assert_eq!(headers("{\"kind\": \"Pod\"}\n"), None);
        assert_eq!(headers("# only a comment\n").unwrap(), vec![]);
    }

    #[test]
    fn a_syntax_error_has_a_position_in_the_rule() {
        let err = compile_rule("object.spec.replicas >\n  && true").unwrap_err();
        assert_eq!(err.line, 2, "{err:?}");
        assert!(err.col > 1, "{err:?}");
        assert!(compile_rule("has(object.spec) && object.spec.replicas <= 3").is_ok());
    }
}
