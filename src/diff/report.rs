//! Showing change sets: unified diffs, the text report, the JSON report
//! with its ExecutionPlan view. Secret input values never appear: every
//! occurrence is masked.

use std::fmt::Write as _;

use serde::Serialize;
use similar::TextDiff;

use super::{Action, ChangeSet, ChangeSets, FileChange};
use crate::execution::ExecutionPlan;
use crate::policy::{Finding, counts};
use crate::render::RepoKind;
use crate::spec::model::{Severity, Trust};

/// Replaces secret values by a fixed mask.
#[derive(Debug, Clone, Default)]
pub struct Mask {
    secrets: Vec<String>,
}

const MASK: &str = "********";

impl Mask {
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Mask {
        let mut secrets: Vec<String> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        // Longest first, so a secret containing another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Mask { secrets }
    }

    pub fn apply(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        out
    }
}

/// A unified diff of one file change (`a/` live, `b/` new), masked.
pub fn unified(change: &FileChange, mask: &Mask) -> String {
    let old = change.old.as_deref().unwrap_or_default();
    let new = change.new.as_deref().unwrap_or_default();
    let a = if change.old.is_some() {
        format!("a/{}", change.path)
    } else {
        "/dev/null".to_owned()
    };
    let b = if change.new.is_some() {
        format!("b/{}", change.path)
    } else {
        "/dev/null".to_owned()
    };
    let (Some(old), Some(new)) = (text_of(old), text_of(new)) else {
        return format!("Binary files {a} and {b} differ\n");
    };
    let (old, new) = (mask.apply(old), mask.apply(new));
    let diff = TextDiff::from_lines(&old, &new);
    let mut out = diff
        .unified_diff()
        .context_radius(3)
        .header(&a, &b)
        .to_string();
    if out.is_empty() {
        // Same text once masked: say so rather than show nothing.
        let _ = writeln!(
            out,
            "--- {a}\n+++ {b}\n(differs only in masked secret values)"
        );
    }
    out
}

/// The bytes as text, unless they look binary.
fn text_of(bytes: &[u8]) -> Option<&str> {
    if bytes.contains(&0) {
        return None;
    }
    std::str::from_utf8(bytes).ok()
}

/// Totals over every change set.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Targets (a project repo, an environment of the infra repo) with at
    /// least one file change.
    pub repos: usize,
    pub create: usize,
    pub modify: usize,
    pub delete: usize,
    pub conflict: usize,
    pub drift: usize,
    pub errors: usize,
    pub warnings: usize,
}

impl Summary {
    pub fn of(changes: &ChangeSets) -> Summary {
        let mut s = Summary::default();
        let mut findings = Vec::new();
        let mut targets = std::collections::BTreeSet::new();
        for cs in changes.shown() {
            if !cs.files.is_empty() {
                targets.insert((&cs.repo, &cs.env));
            }
            s.create += cs.count(Action::Create);
            s.modify += cs.count(Action::Modify);
            s.delete += cs.count(Action::Delete);
            s.conflict += cs.count(Action::Conflict);
            s.drift += cs.count(Action::Drift);
            findings.extend(cs.findings.iter().cloned());
        }
        s.repos = targets.len();
        let (errors, warnings) = counts(&findings);
        s.errors = errors + changes.errors.len();
        s.warnings = warnings;
        s
    }

    pub fn changes(&self) -> usize {
        self.create + self.modify + self.delete + self.conflict + self.drift
    }

    /// `N repos, +a ~m -d, c conflicts, x drift, w warnings`.
    pub fn line(&self) -> String {
        let mut line = format!(
            "{} {}, {}, {} {}",
            self.repos,
            plural(self.repos, "repo"),
            counts_line([
                self.create,
                self.modify,
                self.delete,
                self.conflict,
                self.drift
            ]),
            self.warnings,
            plural(self.warnings, "warning"),
        );
        if self.errors > 0 {
            let _ = write!(line, ", {} {}", self.errors, plural(self.errors, "error"));
        }
        line
    }
}

/// `+create ~modify -delete, c conflicts, d drift`.
fn counts_line([create, modify, delete, conflict, drift]: [usize; 5]) -> String {
    format!(
        "+{create} ~{modify} -{delete}, {conflict} {}, {drift} drift",
        plural(conflict, "conflict")
    )
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        word.to_owned()
    } else {
        format!("{word}s")
    }
}

/// The text report. `color` adds ANSI colours.
pub fn text(changes: &ChangeSets, mask: &Mask, color: bool) -> String {
    render(changes, mask, color, true)
}

/// The text report without the diffs: per repo its fate, counts and the
/// files it changes, and the policy findings.
pub fn listing(changes: &ChangeSets, mask: &Mask, color: bool) -> String {
    render(changes, mask, color, false)
}

fn render(changes: &ChangeSets, mask: &Mask, color: bool, diffs: bool) -> String {
    let paint = |code: &str, s: &str| {
        if color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    };
    let mut out = String::new();
    let fates = fates(changes);
    for cs in changes.shown() {
        if cs.files.is_empty() && cs.notes.is_empty() {
            continue;
        }
        let mut head = header(cs);
        if let Some(fate) = fates.get(&(cs.repo.as_str(), cs.env.as_deref(), cs.plans.as_slice())) {
            let _ = write!(head, " · {fate}");
        }
        let _ = writeln!(out, "{}", paint("1", &head));
        let counts = [
            Action::Create,
            Action::Modify,
            Action::Delete,
            Action::Conflict,
            Action::Drift,
        ]
        .map(|a| cs.count(a));
        let _ = writeln!(out, "  {}", counts_line(counts));
        for change in &cs.files {
            let word = match change.action {
                Action::Create => paint("32", "create"),
                Action::Modify => paint("33", "modify"),
                Action::Delete => paint("31", "delete"),
                Action::Conflict => paint("1;31", "CONFLICT"),
                Action::Drift => paint("1;35", "DRIFT"),
            };
            let _ = write!(out, "{word} {}", change.path);
            if let Some(reason) = &change.reason {
                let _ = write!(out, " ({reason})");
            }
            out.push('\n');
            if !diffs {
                continue;
            }
            for line in unified(change, mask).lines() {
                let colored = if line.starts_with("+++") || line.starts_with("---") {
                    paint("1", line)
                } else if line.starts_with('+') {
                    paint("32", line)
                } else if line.starts_with('-') {
                    paint("31", line)
                } else if line.starts_with("@@") {
                    paint("36", line)
                } else {
                    line.to_owned()
                };
                let _ = writeln!(out, "{colored}");
            }
        }
        for note in &cs.notes {
            let _ = writeln!(
                out,
                "{} {}: {}",
                paint("1;34", "note:"),
                note.path,
                note.message
            );
        }
        out.push('\n');
    }
    let findings: Vec<&Finding> = changes.shown().flat_map(|cs| &cs.findings).collect();
    if !findings.is_empty() {
        let _ = writeln!(out, "{}", paint("1", "policy findings"));
        for f in findings {
            let word = match f.severity {
                Severity::Error => paint("1;31", "error"),
                Severity::Warning => paint("1;33", "warning"),
            };
            let env = f
                .env
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default();
            let object = f
                .object
                .as_deref()
                .map(|o| format!(" {o}"))
                .unwrap_or_default();
            let line = f.line.map(|l| format!(":{l}")).unwrap_or_default();
            let _ = writeln!(
                out,
                "{word}[{}]: {}{env}:{}{line}{object}: {}",
                f.policy,
                f.repo,
                f.path,
                mask.apply(&f.message)
            );
        }
        out.push('\n');
    }
    out
}

/// What `apply` does with each change set, as the ExecutionPlan decides
/// it, in a few words for its header.
fn fates(
    changes: &ChangeSets,
) -> std::collections::HashMap<(&str, Option<&str>, &[String]), String> {
    use crate::execution::Action;
    let plan = crate::execution::plan(changes, String::new());
    let mut out = std::collections::HashMap::new();
    for step in &plan.steps {
        let fate = match &step.action {
            Action::CreateRepo { .. } => continue,
            Action::Commit(c) => format!("→ commit to {}", c.target.branch),
            Action::PullRequest(p) if p.already => {
                format!("proposed on {}, waiting for a merge", p.target.branch)
            }
            Action::PullRequest(p) => match &p.promoted_from {
                Some(from) => format!("→ proposal {}, promoted from {from}", p.target.branch),
                None => format!("→ proposal {}", p.target.branch),
            },
            Action::Comment(h) => format!("held: {} pushed to {}", h.edited_by, h.target.branch),
            Action::Report(_) => "observe: not written".to_owned(),
            Action::Nothing(n) => match &n.waiting {
                Some(env) => format!("waiting: {env}"),
                None => n.reason.split(':').next().unwrap_or_default().to_owned(),
            },
        };
        // A commit step carries every plan committed in one push.
        let Some(target) = step.action.target() else {
            continue;
        };
        for cs in changes.shown().filter(|cs| {
            cs.repo == target.repo
                && cs.env == target.env
                && cs.plans.iter().all(|p| target.plans.contains(p))
        }) {
            out.entry((cs.repo.as_str(), cs.env.as_deref(), cs.plans.as_slice()))
                .or_insert_with(|| fate.clone());
        }
    }
    out
}

fn header(cs: &ChangeSet) -> String {
    let mut h = format!("{} ({}", cs.repo, kind_name(cs.kind));
    if let Some(env) = &cs.env {
        let _ = write!(h, ", {env}");
    }
    if let Some(trust) = cs.trust {
        let _ = write!(h, ", {}", trust_name(trust));
    }
    let _ = write!(h, ") {}", cs.source);
    if !cs.plans.is_empty() {
        let _ = write!(h, " · plans {}", cs.plans.join(", "));
    }
    h
}

fn kind_name(kind: RepoKind) -> &'static str {
    match kind {
        RepoKind::Project => "project",
        RepoKind::Infra => "infra",
    }
}

fn trust_name(trust: Trust) -> &'static str {
    match trust {
        Trust::Observe => "observe",
        Trust::Propose => "propose",
        Trust::Deploy => "deploy",
    }
}

/// The `--json` report.
/// The change sets as a comment on a forge or in a git note: `heading`,
/// the summary line, then the text report in a `diff` block, cut to
/// about `limit` bytes with a pointer to `druppie diff`.
pub fn comment(heading: &str, changes: &ChangeSets, mask: &Mask, limit: usize) -> String {
    let mut body = text(changes, mask, false);
    // A fence longer than any run of backticks in the text.
    let run = body.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(run.max(2) + 1);
    let head = format!(
        "{heading}\n\n{}\n\n{fence}diff\n",
        Summary::of(changes).line()
    );
    let room = limit.saturating_sub(head.len() + 2 * fence.len() + 100);
    if body.len() > room {
        let cut = body.floor_char_boundary(room);
        let rest = body.len() - cut;
        body.truncate(cut);
        body.push_str(&format!(
            "\n[… {rest} more bytes: run `druppie diff` for the whole change]\n"
        ));
    }
    format!("{head}{body}{fence}\n")
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub changes: Vec<JsonChangeSet>,
    pub findings: Vec<Finding>,
    pub summary: Summary,
    pub execution_plan: ExecutionPlan,
}

#[derive(Debug, Serialize)]
pub struct JsonChangeSet {
    pub repo: String,
    pub kind: RepoKind,
    pub env: Option<String>,
    pub plans: Vec<String>,
    pub base: Option<String>,
    /// The digest of what this change set renders there
    /// ([`super::freight_digest`]): what `druppie status` shows as live
    /// once it is.
    pub render_digest: String,
    pub files: Vec<JsonFile>,
    pub notes: Vec<super::Note>,
}

#[derive(Debug, Serialize)]
pub struct JsonFile {
    pub path: String,
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub diff: String,
}

/// What the run reconciles, for the ExecutionPlan.
pub fn intent(valid: &crate::spec::Validated, plan: Option<&str>) -> String {
    let plans: Vec<&crate::spec::model::Plan> = valid
        .spec
        .plans
        .iter()
        .filter(|p| plan.is_none_or(|n| p.name.value == n))
        .collect();
    match plans.as_slice() {
        [one] => one
            .intent
            .clone()
            .unwrap_or_else(|| format!("bring plan {} in line with the spec", one.name.value)),
        many => format!(
            "bring {} plans in line with the spec: {}",
            many.len(),
            many.iter()
                .map(|p| p.name.value.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Builds the JSON report around `execution_plan`, the plan of
/// `changes`.
pub fn json(changes: &ChangeSets, mask: &Mask, execution_plan: ExecutionPlan) -> Report {
    let summary = Summary::of(changes);
    let shown: Vec<&ChangeSet> = changes
        .shown()
        .filter(|cs| !cs.files.is_empty() || !cs.notes.is_empty())
        .collect();
    // Every file's unified diff: on every core (a first apply's dry run
    // holds every file of the platform).
    let sets: Vec<JsonChangeSet> = crate::par::map(&shown, |cs| JsonChangeSet {
        repo: cs.repo.clone(),
        kind: cs.kind,
        env: cs.env.clone(),
        plans: cs.plans.clone(),
        base: cs.base.clone(),
        render_digest: cs.render_digest.clone(),
        files: cs
            .files
            .iter()
            .map(|f| JsonFile {
                path: f.path.clone(),
                action: f.action,
                reason: f.reason.clone(),
                diff: unified(f, mask),
            })
            .collect(),
        notes: cs.notes.clone(),
    });
    let findings: Vec<Finding> = changes
        .shown()
        .flat_map(|cs| cs.findings.iter().cloned())
        .map(|mut f| {
            f.message = mask.apply(&f.message);
            f
        })
        .collect();
    Report {
        changes: sets,
        findings,
        summary,
        execution_plan,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(old: Option<&str>, new: Option<&str>) -> FileChange {
        FileChange {
            path: "a/b.yaml".into(),
            action: Action::Modify,
            old: old.map(|s| s.as_bytes().to_vec()),
            new: new.map(|s| s.as_bytes().to_vec()),
            reason: None,
        }
    }

    #[test]
    fn diffs_are_unified_and_mask_secrets() {
        let mask = Mask::new(["hunter22".to_owned()]);
        let d = unified(
            &change(Some("a: 1\npw: x\n"), Some("a: 1\npw: hunter22\n")),
            &mask,
        );
        assert!(d.starts_with("--- a/a/b.yaml\n+++ b/a/b.yaml\n@@"), "{d}");
        assert!(d.contains("+pw: ********\n"), "{d}");
        assert!(!d.contains("hunter22"));
        let created = unified(&change(None, Some("x\n")), &mask);
        assert!(
            created.starts_with("--- /dev/null\n+++ b/a/b.yaml\n"),
            "{created}"
        );
        let bin = unified(&change(Some("a\0"), Some("b\0")), &mask);
        assert_eq!(bin, "Binary files a/a/b.yaml and b/a/b.yaml differ\n");
    }
}
