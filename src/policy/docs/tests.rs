use super::*;

fn one(text: &str) -> Doc<'_> {
    let mut docs = parse(text).unwrap_or_else(|e| panic!("{text:?}: {e:?}"));
    assert_eq!(docs.len(), 1, "{text:?}");
    docs.remove(0)
}

#[test]
fn both_readers_give_the_same_documents() {
    let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n  ratio: 0.5\n  on: true\n  tags: [a, b]\n---\n- not a mapping\n";
    assert!(yaml_subset::parse_stream(text).is_some());
    let fast = parse(text).unwrap();
    let full = parse_full(text).unwrap();
    assert_eq!(fast.len(), 2);
    assert_eq!(full.len(), 2);
    for docs in [&fast, &full] {
        let d = &docs[0];
        assert_eq!(
            (
                d.api_version.as_str(),
                d.kind.as_str(),
                d.name.as_str(),
                d.mapping
            ),
            ("apps/v1", "Deployment", "web", true)
        );
        assert!(!docs[1].mapping);
    }
    let (fast, full) = (
        fast.into_iter().next().unwrap(),
        full.into_iter().next().unwrap(),
    );
    assert!(*fast.into_val() == *full.into_val());
}

#[test]
fn scalars_mean_the_same_with_or_without_an_anchor_in_the_file() {
    let body =
        "kind: K\nv: [Null, 1_000, no, 0x1F, 007, '1', -0, 1e3, TRUE, ~, 18446744073709551615]\n";
    let anchored = format!("{body}a: &x 1\nb: *x\n");
    assert!(yaml_subset::parse_stream(body).is_some());
    assert!(yaml_subset::parse_stream(&anchored).is_none());
    let plain = one(body).into_val();
    let with_anchor = one(&anchored).into_val();
    fn list<'a>(v: &'a (dyn Val + 'a)) -> &'a (dyn Val + 'a) {
        let map = v.downcast_ref::<CelMap<'_>>().expect("a map").inner();
        &*map[&CelMapKey::from("v")]
    }
    let (a, b) = (list(&*plain), list(&*with_anchor));
    assert!(*a == *b, "{a:?} != {b:?}");
    let items: Vec<String> = a
        .downcast_ref::<CelList<'_>>()
        .expect("a list")
        .inner()
        .iter()
        .map(|v| v.get_type().name().to_string())
        .collect();
    assert_eq!(
        items,
        [
            "null_type",
            "int",
            "string",
            "int",
            "double",
            "string",
            "int",
            "double",
            "bool",
            "null_type",
            "uint"
        ]
    );
}

#[test]
fn keys_are_strings_and_a_repeat_does_not_parse() {
    let d = one("1: a\ntrue: b\n~: c\n\"x\": d\n").into_val();
    let map = d.downcast_ref::<CelMap<'_>>().expect("a map").inner();
    for k in ["1", "true", "null", "x"] {
        assert!(map.contains_key(&CelMapKey::from(k)), "{k}");
    }
    let err = parse("1: a\n\"1\": b\n").unwrap_err();
    assert!(err.message.contains("duplicate"), "{err:?}");
    assert!(parse("a: 1\na: 2\n").is_err());
    assert!(parse("? [a]\n: b\n").is_err());
}

#[test]
fn invalid_yaml_is_an_error_with_a_line() {
    let err = parse("kind: x\nspec: [1\n").unwrap_err();
    assert!(err.line.is_some(), "{err:?}");
    assert!(parse("v: .inf\n").is_err());
}

#[test]
fn empty_and_null_documents_are_left_out_by_both_readers() {
    for text in [
        "",
        "# c\n",
        "---\n",
        "a: 1\n---\n",
        "---\n# c\n---\na: 1\n",
        "~\n---\na: 1\n",
    ] {
        let full = parse_full(text).unwrap().len();
        assert_eq!(parse(text).unwrap().len(), full, "{text:?}");
    }
}

/// A document's header, mapping flag and CEL value, to compare readers.
fn shown(docs: Vec<Doc<'_>>) -> Vec<(String, String, String, bool, String)> {
    docs.into_iter()
        .map(|d| {
            let head = (
                d.api_version.clone(),
                d.kind.clone(),
                d.name.clone(),
                d.mapping,
            );
            let val = d.into_val();
            (head.0, head.1, head.2, head.3, canonical(&*val))
        })
        .collect()
}

/// A CEL value as text with its types, maps sorted by key.
fn canonical(v: &dyn Val) -> String {
    if let Some(map) = v.downcast_ref::<CelMap<'_>>() {
        let mut entries: Vec<String> = map
            .inner()
            .iter()
            .map(|(k, v)| format!("{:?}: {}", k, canonical(&**v)))
            .collect();
        entries.sort();
        return format!("{{{}}}", entries.join(", "));
    }
    if let Some(list) = v.downcast_ref::<CelList<'_>>() {
        let items: Vec<String> = list.inner().iter().map(|v| canonical(&**v)).collect();
        return format!("[{}]", items.join(", "));
    }
    format!("{}:{v:?}", v.get_type().name())
}

#[test]
fn generated_streams_read_as_serde_saphyr_reads_them() {
    use crate::yaml_subset::tests::differential::{CASES, run};
    use proptest::prelude::*;
    let read = run(true, |yaml| {
        if yaml_subset::parse_stream(yaml).is_none() {
            return Ok(false);
        }
        let fast = parse(yaml).map_err(|e| TestCaseError::fail(format!("{yaml:?}: {e:?}")))?;
        let full = parse_full(yaml).map_err(|e| {
            TestCaseError::fail(format!(
                "the subset read {yaml:?}, serde-saphyr refused: {e:?}"
            ))
        })?;
        prop_assert_eq!(shown(fast), shown(full), "{:?}", yaml);
        Ok(true)
    });
    assert!(
        read > CASES as usize / 4,
        "the subset read {read} of {CASES}"
    );
}
