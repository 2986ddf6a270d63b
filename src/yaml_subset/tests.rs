use serde_json::Value;

use super::de::from_str;
use super::{parse, parse_stream};
use crate::spec::yaml::{Spanned, SpannedMap, options};

pub(crate) mod differential;

/// Documents of the subset, each exercising one construct.
const IN_SUBSET: &[&str] = &[
    "# comment\nplain: hello world  # trailing\n\"dq\": \"a\\\"b é \\u00e9\\x41\\n\"\n'sq': 'it''s'\n",
    "num: 42\nneg: -7\nfrac: 0.5\nzero: 0\nneg_frac: -12.25\nword: e5\n",
    "nul:\ntilde: ~\nnull_word: null\nbool: true\nother: false\n",
    "list:\n  - a\n  - b: 1\n    c: 2\n  -   \"q\"\nindentless:\n- x\n- - z\n- {k: 1}\nafter: 1\n",
    "map:\n  k: v\n  deeper:\n    x: [1, \"two\", {a: b}]\n\n   # indented comment\n  e :  \n",
    "flow: [ ]\nempty: {  }\nurl: http://example.org/a#b\nspaced key: v\n",
    "{\"name\": \"svc\", \"n\": 2, \"ok\": false, \"xs\": [{\"a\": [1, 2.5]}], \"s\": \"caf\u{e9}\"}",
    "multi: [a,\n  b, # note\n  c]\nnext: {x: 1,\n  z: 2}\n",
    "ké: ü\nkey: \"ü\u{1F600}\"\nlast: ü\n",
    "- top\n- level: seq\n  of: maps\n-\n  nested: on the next line\n",
    "just a scalar\n",
];

#[test]
fn the_subset_reads_as_the_spec_parser_does() {
    for doc in IN_SUBSET {
        assert!(parse(doc).is_some(), "in the subset: {doc:?}");
        let fast: Option<Spanned<Value>> = from_str(doc);
        let full: Spanned<Value> = serde_saphyr::from_str_with_options(doc, options())
            .unwrap_or_else(|e| panic!("{doc:?}: {e}"));
        let fast = fast.unwrap_or_else(|| panic!("read: {doc:?}"));
        assert_eq!(format!("{fast:?}"), format!("{full:?}"), "{doc:?}");
        if doc.contains(": ") && !doc.starts_with('-') {
            let fast: SpannedMap<Spanned<Value>> = from_str(doc).expect("read");
            let full: SpannedMap<Spanned<Value>> =
                serde_saphyr::from_str_with_options(doc, options()).expect("valid");
            assert_eq!(format!("{fast:?}"), format!("{full:?}"), "{doc:?}");
        }
    }
}

#[test]
fn a_value_the_reader_is_unsure_of_is_left_to_the_spec_parser() {
    // Numbers the spec parser refuses.
    assert!(from_str::<Value>("v: .inf\n").is_none());
    assert!(from_str::<Value>("v: 1e999\n").is_none());
    // A typed request the spec parser might answer differently.
    assert!(from_str::<u32>("-0\n").is_none());
    assert!(from_str::<String>("'x'\n").is_some());
    assert!(from_str::<bool>("\"true\"\n").is_none());
    // A string field given a number, an unknown field: the spec parser
    // reports these with their place.
    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct S {
        #[allow(dead_code)]
        name: String,
    }
    assert!(from_str::<S>("name: 12\n").is_none());
    assert!(from_str::<S>("name: x\nother: 1\n").is_none());
    assert!(from_str::<S>("name: x\n").is_some());
}

#[test]
fn everything_else_is_left_to_the_full_parser() {
    let outside = [
        "a: &x 1\nb: *x\n",
        "a: !!str 1\n",
        "a: |\n  text\n",
        "a: >-\n  text\n",
        "a:\n\tb: 1\n",
        "a: 1\r\n",
        "a: 1\na: 2\n",
        "a: 1\n\"a\": 2\n",
        "a: two\n  lines\n",
        "a: \"two\n  lines\"\n",
        "a:\n  b: 1\n c: 2\n",
        "a: b: c\n",
        "? complex\n: key\n",
        "%YAML 1.2\n---\na: 1\n",
        "---\na: 1\n",
        "a: 1\n...\n",
        "a: [1,\n2]\nb: 1\n",
        "a: [1, 2\n",
        "a: {b}\n",
        "a: [b: 1]\n",
        "a: 'open\n",
        "true: 1\n",
        "1: one\n",
        "a: .inf\n",
        "  indented: top\n",
        "",
        "# only a comment\n",
        "a: \"\\q\"\n",
        "- \n- x\n",
        "a: b #c\n  d: 1\n",
        "a: x\u{2028}y\n",
    ];
    for doc in outside {
        assert!(parse(doc).is_none(), "outside the subset: {doc:?}");
    }
}

#[test]
fn streams_split_at_document_markers() {
    let docs = parse_stream("---\na: 1\n---\n- b\n").expect("in the subset");
    assert_eq!(docs.len(), 2);
    let docs = parse_stream("a: 1\n---\n# only a comment\n---\n").expect("in the subset");
    assert_eq!(docs.len(), 1, "empty documents are left out");
    assert!(parse_stream("a: 1\n--- # c\nb: 2\n").is_none());
    assert!(parse_stream("a: 1\n---\n~\n").is_none(), "a null document");
    assert!(parse_stream("a: [1,\n---\n]\n").is_none());
}

#[test]
fn a_plan_reads_as_the_spec_parser_reads_it() {
    let plan = "name: web\nstack: service # the stack\nowner: team-a\nenvironments: [dev, prod]\n\
                inputs:\n  app:\n    image: \"registry/app\"\n    replicas: 2\n    ports:\n    - {name: http, port: 8080}\n\
                overrides:\n  prod:\n    app: {replicas: 3}\n";
    let fast: crate::spec::model::Plan = from_str(plan).expect("in the subset");
    let full: crate::spec::model::Plan =
        serde_saphyr::from_str_with_options(plan, options()).expect("valid");
    assert_eq!(format!("{fast:?}"), format!("{full:?}"));
}

/// The fastest of three runs of `f`.
fn fastest(f: impl Fn()) -> std::time::Duration {
    (0..3)
        .map(|_| {
            let start = std::time::Instant::now();
            f();
            start.elapsed()
        })
        .min()
        .expect("three runs")
}

#[test]
fn reading_takes_linear_time_in_the_number_of_keys() {
    let mapping = |n: usize, flow: bool, ascii: bool| -> String {
        let e = if ascii { "e" } else { "é" };
        let keys = (0..n).map(|i| format!("key-{e}{i}: {i}"));
        if flow {
            format!("{{{}}}\n", keys.collect::<Vec<_>>().join(", "))
        } else {
            keys.map(|k| k + "\n").collect()
        }
    };
    for (flow, ascii) in [(false, true), (true, true), (false, false), (true, false)] {
        let (small, large) = (mapping(4_000, flow, ascii), mapping(32_000, flow, ascii));
        let read = || {
            let v: SpannedMap<Spanned<Value>> = from_str(&large).expect("in the subset");
            assert_eq!(v.len(), 32_000);
        };
        read();
        let t_small = fastest(|| {
            from_str::<SpannedMap<Spanned<Value>>>(&small).expect("in the subset");
        });
        let t_large = fastest(read);
        // Eight times the keys: linear is about 8 times the time, a
        // quadratic check 64 times.
        let ratio = t_large.as_secs_f64() / t_small.as_secs_f64();
        assert!(
            ratio < 20.0,
            "flow {flow}: {t_small:?} -> {t_large:?} ({ratio:.1}x)"
        );
    }
}
