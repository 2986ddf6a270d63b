//! `policy`: [`Desired`] -> [`Finding`]s.
//!
//! The rules in `spec/policies/*.yaml` are CEL expressions (the language
//! of Kubernetes ValidatingAdmissionPolicy) over `object`, one rendered
//! YAML document. A policy applies to a document when every list in its
//! `match` is empty or holds the document's apiVersion, kind, environment
//! and plan. A rule that is false, or that fails to evaluate, is a finding
//! with the policy's severity; errors block apply.
//!
//! Every rendered `.yaml`/`.yml`/`.json` file is parsed whole, by one parser with
//! one set of scalar rules ([`docs`]), and the `apiVersion` and `kind` a
//! policy matches on are read from the parsed document: however a file
//! spells `kind: Deployment` (quoted or spaced keys, flow style, anchors,
//! a later document of a stream), the policies for Deployments see it. A
//! file that does not parse is an error finding naming its line. An
//! object with a top-level `items` sequence (`kind: List`, any `*List`)
//! is checked as itself and each item as its own object, as kustomize and
//! kubectl unwrap lists before they reach the cluster. Policies check
//! the rendered files, not what kustomize builds from them, so a rendered
//! kustomization that would transform objects or pull in unrendered ones
//! is an error finding ([`kustomize`]). A
//! [`Checker`] holds the compiled policies for one thread; `diff` runs one
//! on every core.

mod docs;
mod kustomize;

use serde::Serialize;

use crate::lock::LOCK_FILE;
use crate::render::{Desired, RepoKind, Target};
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
    /// 1-based line in the file, when the finding has one (a file that
    /// does not parse, an item of a list).
    pub line: Option<usize>,
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
    /// `file:line:col` of the rule.
    at: String,
}

/// The spec's policies, compiled, with a CEL context: one per thread (a
/// CEL context cannot be shared between threads).
pub struct Checker<'s> {
    compiled: Vec<Compiled<'s>>,
    root: cel::Context<'static, 'static>,
    /// Bytes one rule's evaluation may hold ([`crate::budget`]).
    memory: usize,
}

impl<'s> Checker<'s> {
    /// The spec's policies, each evaluation within `memory` bytes
    /// (`[render] max_template_memory`).
    pub fn new(v: &'s Validated, memory: usize) -> Checker<'s> {
        let compiled = v
            .spec
            .policies
            .iter()
            .filter_map(|policy| {
                let program = compile_rule(&policy.rule.value).ok()?;
                let file = v.spec.file(policy.file);
                let pos = file.pos(&policy.rule.referenced);
                let at = format!("{}:{}:{}", file.path, pos.line, pos.col);
                Some(Compiled {
                    policy,
                    program,
                    at,
                })
            })
            .collect();
        Checker {
            compiled,
            root: cel::Context::default(),
            memory,
        }
    }

    /// Evaluates every policy on every rendered YAML document of `desired`.
    pub fn check(&self, desired: &Desired) -> Vec<Finding> {
        let mut findings = Vec::new();
        for target in desired.targets.values() {
            for (path, file) in &target.files {
                // Every kustomization is read as YAML, whatever its name,
                // and checked as one there (`check_file`).
                if let Some(format) = Format::of(path, target.kind)
                    && path.rsplit('/').next() != Some(LOCK_FILE)
                {
                    self.check_file(format, target, path, &file.bytes, &mut findings);
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

/// The rendered files policies check, by extension (any case): YAML, and
/// JSON, which is YAML and which kustomize and kubectl read as manifests;
/// and a kustomization by any of its names ([`kustomize`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Yaml,
    Json,
}

impl Format {
    /// How a rendered file at `path` in a `kind` repo is read, if it is
    /// a manifest: YAML anywhere, JSON in the infra repo only, which Flux
    /// applies (a project repo's `tsconfig.json` or editor settings are
    /// JSON with comments, and no cluster reads them).
    fn of(path: &str, kind: RepoKind) -> Option<Format> {
        let name = path.rsplit('/').next().unwrap_or(path);
        if kustomize::is_kustomization(name) {
            return Some(Format::Yaml);
        }
        let ext = name.rsplit_once('.').map(|(_, ext)| ext)?;
        if ext.eq_ignore_ascii_case("yaml") || ext.eq_ignore_ascii_case("yml") {
            Some(Format::Yaml)
        } else if ext.eq_ignore_ascii_case("json") && kind == RepoKind::Infra {
            Some(Format::Json)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Format::Yaml => "YAML",
            Format::Json => "JSON",
        }
    }
}

impl Checker<'_> {
    fn check_file(
        &self,
        format: Format,
        target: &Target,
        path: &str,
        bytes: &[u8],
        findings: &mut Vec<Finding>,
    ) {
        let finding = |policy: &str, severity, document, line, object, message| Finding {
            policy: policy.to_owned(),
            severity,
            repo: target.repo.clone(),
            env: target.env.clone(),
            path: path.to_owned(),
            document,
            line,
            object,
            message,
        };
        let plan = target.plan_of(path);
        let env = target.env.as_deref();
        let (root, memory) = (&self.root, self.memory);
        let compiled: Vec<&Compiled<'_>> = self
            .compiled
            .iter()
            .filter(|c| {
                admits(&c.policy.matches.envs, env) && admits(&c.policy.matches.plans, plan)
            })
            .collect();
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                let line = 1 + bytes[..e.valid_up_to()]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count();
                let message = format!("rendered {} does not parse: not UTF-8", format.name());
                findings.push(finding(
                    "yaml",
                    Severity::Error,
                    1,
                    Some(line),
                    None,
                    message,
                ));
                return;
            }
        };
        let docs = match docs::parse(text) {
            Ok(docs) => docs,
            Err(e) => {
                let message = format!("rendered {} does not parse: {}", format.name(), e.message);
                findings.push(finding("yaml", Severity::Error, 1, e.line, None, message));
                return;
            }
        };
        if kustomize::is_kustomization(path)
            && let Some(message) = kustomize::check(target, path, text, &docs)
        {
            findings.push(finding(
                "kustomize",
                Severity::Error,
                1,
                None,
                None,
                message,
            ));
        }
        for doc in docs {
            if !doc.mapping {
                continue;
            }
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
            let (document, line) = (doc.document, doc.line);
            let mut ctx = root.new_inner_scope();
            ctx.add_variable_as_val("object", doc.into_val());
            for c in applicable {
                let what = format!(
                    "the policy `{}` on `{}:{path}`",
                    c.policy.name.value, target.repo
                );
                let result =
                    crate::budget::within(memory, &what, &c.at, || c.program.execute(&ctx));
                let message = match result {
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
                    document,
                    line,
                    object.clone(),
                    message,
                ));
            }
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
    fn json_is_a_manifest_in_the_infra_repo_only() {
        let of = |path, kind| Format::of(path, kind).map(Format::name);
        assert_eq!(of("apps/dev/p/x.JSON", RepoKind::Infra), Some("JSON"));
        assert_eq!(of("tsconfig.json", RepoKind::Project), None);
        assert_eq!(of("deploy/x.yml", RepoKind::Project), Some("YAML"));
        assert_eq!(
            of("apps/dev/p/kustomization.yaml", RepoKind::Infra),
            Some("YAML")
        );
        assert_eq!(of("README.md", RepoKind::Infra), None);
        // Every name kustomize reads is parsed, and so checked as a
        // kustomization, in either kind of repo.
        for name in ["Kustomization", "k/KUSTOMIZATION.YML", "kustomization.yml"] {
            for kind in [RepoKind::Infra, RepoKind::Project] {
                assert_eq!(of(name, kind), Some("YAML"), "{name}");
            }
        }
    }

    #[test]
    fn a_syntax_error_has_a_position_in_the_rule() {
        let err = compile_rule("object.spec.replicas >\n  && true").unwrap_err();
        assert_eq!(err.line, 2, "{err:?}");
        assert!(err.col > 1, "{err:?}");
        assert!(compile_rule("has(object.spec) && object.spec.replicas <= 3").is_ok());
    }
}
