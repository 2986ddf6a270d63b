//! `.druppie-lock.yaml`: what druppie rendered into one location.
//!
//! Every rendered location (a project repo's root, or a plan's directory in
//! one environment of the infra repo) carries a lock recording the plan,
//! the components with their block ids and versions, the environment, the
//! spec commit when known, and for every file druppie wrote its git blob id
//! and ownership mode. It is druppie's only memory: from it `diff` knows
//! which files it owns, which a person edited since (drift), and which
//! blob is the base of a three-way merge.
//!
//! The file is written by druppie and read back with a YAML parser; its
//! text is deterministic (sorted paths, fixed key order) so the same render
//! gives the same bytes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::spec::model::OwnershipMode;

/// The lock's file name, in the location it describes.
pub const LOCK_FILE: &str = ".druppie-lock.yaml";

/// Format version written into every lock.
const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    pub format: u32,
    pub plan: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_commit: Option<String>,
    #[serde(default)]
    pub components: Vec<LockedComponent>,
    /// Path relative to the location -> what druppie wrote there.
    #[serde(default)]
    pub files: BTreeMap<String, LockedFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedComponent {
    pub name: String,
    pub block: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedFile {
    /// Git blob id (hex) of the bytes druppie rendered.
    pub blob: String,
    pub ownership: OwnershipMode,
}

impl Lock {
    pub fn new(plan: &str, environment: Option<&str>, spec_commit: Option<&str>) -> Lock {
        Lock {
            format: FORMAT,
            plan: plan.to_owned(),
            environment: environment.map(str::to_owned),
            spec_commit: spec_commit.map(str::to_owned),
            components: Vec::new(),
            files: BTreeMap::new(),
        }
    }

    /// The lock's text.
    pub fn to_yaml(&self) -> String {
        let mut out = String::from(
            "# Written by druppie: what it rendered here, for ownership and merges. Do not edit.\n",
        );
        let _ = writeln!(out, "format: {}", self.format);
        let _ = writeln!(out, "plan: {}", quote(&self.plan));
        if let Some(env) = &self.environment {
            let _ = writeln!(out, "environment: {}", quote(env));
        }
        if let Some(commit) = &self.spec_commit {
            let _ = writeln!(out, "spec_commit: {}", quote(commit));
        }
        out.push_str("components:");
        if self.components.is_empty() {
            out.push_str(" []");
        }
        out.push('\n');
        for c in &self.components {
            let _ = writeln!(
                out,
                "  - {{name: {}, block: {}, version: {}}}",
                quote(&c.name),
                quote(&c.block),
                quote(&c.version)
            );
        }
        out.push_str("files:");
        if self.files.is_empty() {
            out.push_str(" {}");
        }
        out.push('\n');
        for (path, f) in &self.files {
            let mode = match f.ownership {
                OwnershipMode::Managed => "managed",
                OwnershipMode::Seeded => "seeded",
            };
            let _ = writeln!(
                out,
                "  {}: {{blob: {}, ownership: {mode}}}",
                quote(path),
                f.blob
            );
        }
        out
    }

    /// Reads a lock's text.
    ///
    /// # Errors
    /// The text is not a lock (the message carries line and column).
    pub fn parse(text: &str) -> Result<Lock, LockParseError> {
        // The lock druppie writes is in the subset the fast reader takes
        // (and reads as the full parser does); anything else, and every
        // error, is the full parser's.
        let lock: Lock = match crate::yaml_subset::de::from_str(text) {
            Some(lock) => lock,
            None => serde_saphyr::from_str(text)?,
        };
        if lock.format != FORMAT {
            return Err(LockParseError::Format(lock.format));
        }
        Ok(lock)
    }

    /// Equal in everything but the spec commit: a spec change that renders
    /// the same files is not a change to this location.
    pub fn same_render(&self, other: &Lock) -> bool {
        Lock {
            spec_commit: None,
            ..self.clone()
        } == Lock {
            spec_commit: None,
            ..other.clone()
        }
    }
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// A lock file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum LockParseError {
    #[error(transparent)]
    Yaml(#[from] serde_saphyr::Error),
    #[error("lock format {0} is not supported (this druppie reads format {FORMAT})")]
    Format(u32),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Lock {
        let mut lock = Lock::new("permits", Some("dev"), Some("0123abcd"));
        lock.components.push(LockedComponent {
            name: "db".into(),
            block: "postgresql".into(),
            version: "1.0.0".into(),
        });
        lock.files.insert(
            "db/cluster.yaml".into(),
            LockedFile {
                blob: "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391".into(),
                ownership: OwnershipMode::Managed,
            },
        );
        lock.files.insert(
            "odd: name #1.yaml".into(),
            LockedFile {
                blob: "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391".into(),
                ownership: OwnershipMode::Seeded,
            },
        );
        lock
    }

    #[test]
    fn text_reads_back_to_the_same_lock() {
        let lock = sample();
        assert_eq!(Lock::parse(&lock.to_yaml()).unwrap(), lock);
        let empty = Lock::new("p", None, None);
        assert_eq!(Lock::parse(&empty.to_yaml()).unwrap(), empty);
    }

    #[test]
    fn a_written_lock_is_read_by_the_fast_reader() {
        let lock = sample();
        let fast: Option<Lock> = crate::yaml_subset::de::from_str(&lock.to_yaml());
        assert_eq!(fast, Some(lock));
        // A lock outside its subset (an anchor) is read by the full parser.
        let text = "format: 1\nplan: &p permits\nfiles: {}\n";
        assert_eq!(crate::yaml_subset::de::from_str::<Lock>(text), None);
        assert_eq!(Lock::parse(text).unwrap().plan, "permits");
    }

    #[test]
    fn a_new_spec_commit_alone_is_the_same_render() {
        let a = sample();
        let mut b = sample();
        b.spec_commit = Some("ffff".into());
        assert!(a.same_render(&b));
        b.files.clear();
        assert!(!a.same_render(&b));
    }

    #[test]
    fn garbage_and_future_formats_are_rejected_with_a_reason() {
        assert!(
            Lock::parse("plan: [")
                .unwrap_err()
                .to_string()
                .contains("line")
        );
        let future = sample().to_yaml().replace("format: 1", "format: 9");
        assert!(
            Lock::parse(&future)
                .unwrap_err()
                .to_string()
                .contains("format 9")
        );
    }
}
