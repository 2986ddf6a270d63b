//! The subset reads exactly as serde-saphyr does: on generated documents,
//! whenever the subset reads a value, serde-saphyr reads the same value
//! with the same locations (and whenever serde-saphyr refuses a text, the
//! subset leaves it alone).

use std::fmt::Debug;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::spec::yaml::{Spanned, SpannedMap, options};
use crate::yaml_subset::de::from_str;
use crate::yaml_subset::generate::{Choices, PLAIN, QUOTED, text};

/// Cases per property on every test run.
pub const CASES: u32 = 3000;

/// Runs `check` on `CASES` generated texts; returns how many the subset
/// read.
pub fn run(stream: bool, check: impl Fn(&str) -> Result<bool, TestCaseError>) -> usize {
    let read = AtomicUsize::new(0);
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&proptest::collection::vec(any::<u8>(), 0..600), |bytes| {
            let yaml = text(&mut Choices::new(&bytes), stream);
            if check(&yaml)? {
                read.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    read.into_inner()
}

/// Whether the subset read `yaml` as `T`; fails when serde-saphyr reads it
/// differently or refuses it.
fn same<T: DeserializeOwned + Debug>(yaml: &str) -> Result<bool, TestCaseError> {
    let Some(fast) = from_str::<T>(yaml) else {
        return Ok(false);
    };
    let full: T = serde_saphyr::from_str_with_options(yaml, options()).map_err(|e| {
        TestCaseError::fail(format!(
            "the subset read {yaml:?} as {fast:?}, serde-saphyr refused: {e}"
        ))
    })?;
    prop_assert_eq!(format!("{fast:?}"), format!("{full:?}"), "{:?}", yaml);
    Ok(true)
}

#[derive(serde::Deserialize, Debug)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Typed {
    kind: Option<Spanned<String>>,
    name: Option<String>,
    replicas: Option<u32>,
    a: Option<i64>,
    b: Option<f64>,
    c: Option<bool>,
    spec: Option<Vec<Spanned<String>>>,
    metadata: Option<SpannedMap<Spanned<Value>>>,
    #[serde(rename = "apiVersion")]
    api_version: Option<Trust>,
}

#[derive(serde::Deserialize, Debug)]
#[serde(rename_all = "lowercase")]
enum Trust {
    Observe,
    Deploy,
}

#[test]
fn generated_documents_read_as_serde_saphyr_reads_them() {
    let read = run(false, |yaml| {
        let any = same::<Spanned<Value>>(yaml)?;
        let map = same::<SpannedMap<Spanned<Value>>>(yaml)?;
        let typed = same::<Typed>(yaml)?;
        Ok(any || map || typed)
    });
    // The property says nothing unless the subset reads a good share.
    assert!(
        read > CASES as usize / 4,
        "the subset read {read} of {CASES}"
    );
}

#[test]
fn every_plain_and_quoted_scalar_reads_as_serde_saphyr_reads_it() {
    for scalar in PLAIN.iter().chain(QUOTED) {
        for yaml in [
            format!("{scalar}\n"),
            format!("k: {scalar}\n"),
            format!("- {scalar}\n"),
            format!("[{scalar}]\n"),
            format!("{{k: {scalar}}}\n"),
            format!("{scalar}: v\n"),
        ] {
            same::<Spanned<Value>>(&yaml).unwrap_or_else(|e| panic!("{e}"));
            same::<Value>(&yaml).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

#[test]
fn generated_streams_read_as_serde_saphyr_reads_them() {
    let read = run(true, |yaml| {
        let Some(fast) = crate::yaml_subset::de::from_stream::<Value>(yaml) else {
            return Ok(false);
        };
        let full: Vec<Value> =
            serde_saphyr::from_multiple_with_options(yaml, options()).map_err(|e| {
                TestCaseError::fail(format!(
                    "the subset read {yaml:?} as {fast:?}, serde-saphyr refused: {e}"
                ))
            })?;
        prop_assert_eq!(fast, full, "{:?}", yaml);
        Ok(true)
    });
    assert!(
        read > CASES as usize / 4,
        "the subset read {read} of {CASES}"
    );
}
