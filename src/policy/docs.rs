//! Rendered YAML files as CEL values, one per document.
//!
//! One meaning whatever the text: every file is read as the spec is read,
//! by serde-saphyr with [`crate::spec::yaml::options`] (YAML 1.2 core
//! schema: `no` is a string, `Null` is null, `1_000` is 1000), split into
//! documents by the parser. Files in the [`crate::yaml_subset`] are read
//! by it, faster and with the same values (its differential test holds it
//! to that); the rest by serde-saphyr, straight into CEL values.
//!
//! As CEL values (the object a Kubernetes admission policy sees): integers
//! are `int` (`uint` only past `int`'s range), other numbers `double`,
//! mapping keys strings (a key written as a number, boolean or null is its
//! canonical text; a collection as a key does not parse).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt,
};
use cel::common::value::Val;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::yaml_subset::resolve::{self, Scalar};
use crate::yaml_subset::{self, Node, Style};

/// One YAML document of a rendered file; its value may borrow the text.
pub struct Doc<'t> {
    /// The top-level `apiVersion`, `kind` and `metadata.name` when they are
    /// strings; empty otherwise.
    pub api_version: String,
    pub kind: String,
    pub name: String,
    /// Whether the document is a mapping (policies check only those).
    pub mapping: bool,
    /// 1-based index of the document in the file (an item of a list has
    /// its list's).
    pub document: usize,
    /// 1-based line where an item of a list starts, when the reader that
    /// read the file knows it (`None` for a document itself).
    pub line: Option<usize>,
    value: Value<'t>,
}

enum Value<'t> {
    Node(Node<'t>),
    Val(Box<dyn Val + 't>),
}

impl<'t> Doc<'t> {
    /// The document as a CEL value.
    pub fn into_val(self) -> Box<dyn Val + 't> {
        match self.value {
            Value::Node(node) => node_val(node),
            Value::Val(val) => val,
        }
    }
}

impl fmt::Debug for Doc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Doc")
            .field("api_version", &self.api_version)
            .field("kind", &self.kind)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A file that does not parse: the parser's message and, when it has one,
/// the 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: Option<usize>,
    pub message: String,
}

/// The documents of a file, in order (empty and null documents left out,
/// as the parser leaves them out), each followed by the items of its
/// top-level `items` sequence when it has one, depth first.
///
/// A list reaches the cluster as its items: kustomize inlines the items of
/// every `*List` kind (`List`, `DeploymentList`, ...), and `kubectl apply`
/// treats any object whose `items` is a sequence as a list. So an object
/// with a top-level `items` sequence is checked as itself and each of its
/// items as its own object, whatever its kind.
///
/// # Errors
/// The file is not valid YAML, breaks a parser limit (depth, alias
/// expansion), repeats a key, holds a non-finite number or a collection as
/// a key.
pub fn parse(text: &str) -> Result<Vec<Doc<'_>>, ParseError> {
    let docs = match yaml_subset::parse_stream(text) {
        Some(nodes) => nodes.into_iter().map(|n| from_node(n, None)).collect(),
        None => parse_full(text)?,
    };
    Ok(with_list_items(docs, text))
}

/// The documents themselves among `docs` (not the items of their
/// lists), as the fast reader read them; `None` when the full parser read
/// the file.
pub fn documents<'d, 't>(docs: &'d [Doc<'t>]) -> Option<Vec<&'d Node<'t>>> {
    docs.iter()
        .filter(|doc| doc.line.is_none())
        .map(|doc| match &doc.value {
            Value::Node(node) => Some(node),
            Value::Val(_) => None,
        })
        .collect()
}

/// `docs` numbered, each followed by its list items (a work list, not
/// recursion: nesting is as deep as the parser allows).
fn with_list_items<'t>(docs: Vec<Doc<'t>>, text: &str) -> Vec<Doc<'t>> {
    let mut lines = Lines::default();
    let mut out = Vec::with_capacity(docs.len());
    for (i, doc) in docs.into_iter().enumerate() {
        let mut stack = vec![Doc {
            document: i + 1,
            ..doc
        }];
        while let Some(doc) = stack.pop() {
            let items = doc.items(text, &mut lines);
            stack.extend(items.into_iter().rev().map(|item| Doc {
                document: doc.document,
                ..item
            }));
            out.push(doc);
        }
    }
    out
}

/// Line numbers of byte offsets, from a table built on first use (once
/// per file, so many items cost no more than one pass over the text).
#[derive(Default)]
struct Lines(Option<Vec<usize>>);

impl Lines {
    fn of(&mut self, text: &str, offset: usize) -> usize {
        let newlines = self.0.get_or_insert_with(|| {
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i)
                .collect()
        });
        1 + newlines.partition_point(|&n| n < offset)
    }
}

/// [`parse`] by serde-saphyr alone.
fn parse_full(text: &str) -> Result<Vec<Doc<'_>>, ParseError> {
    let docs: Vec<CelDoc<'_>> =
        serde_saphyr::from_multiple_with_options(text, crate::spec::yaml::options()).map_err(
            |e| ParseError {
                line: e
                    .location()
                    .and_then(|l| usize::try_from(l.line()).ok())
                    .filter(|&l| l > 0),
                message: crate::spec::yaml::bare_message(&e.without_snippet().to_string()),
            },
        )?;
    Ok(docs.into_iter().map(|d| from_val(d.0)).collect())
}

impl<'t> Doc<'t> {
    /// The items of the document's top-level `items` sequence, each as a
    /// document (numbered 0 until the caller numbers them).
    fn items(&self, text: &str, lines: &mut Lines) -> Vec<Doc<'t>> {
        match &self.value {
            Value::Node(Node::Map(entries, _)) => match get(entries, "items") {
                Some(Node::Seq(items, _)) => items
                    .iter()
                    .map(|item| {
                        let line = lines.of(text, item.span().start);
                        from_node(item.clone(), Some(line))
                    })
                    .collect(),
                _ => Vec::new(),
            },
            Value::Node(_) => Vec::new(),
            Value::Val(val) => val
                .downcast_ref::<CelMap<'_>>()
                .and_then(|map| map.inner().get(&CelMapKey::from("items")))
                .and_then(|items| items.downcast_ref::<CelList<'_>>())
                .map(|list| list.inner().iter().cloned().map(from_val).collect())
                .unwrap_or_default(),
        }
    }
}

fn from_node(node: Node<'_>, line: Option<usize>) -> Doc<'_> {
    let (mut api_version, mut kind, mut name) = (String::new(), String::new(), String::new());
    let mapping = matches!(node, Node::Map(..));
    if let Node::Map(entries, _) = &node {
        api_version = string_at(entries, "apiVersion");
        kind = string_at(entries, "kind");
        if let Some(Node::Map(meta, _)) = get(entries, "metadata") {
            name = string_at(meta, "name");
        }
    }
    Doc {
        api_version,
        kind,
        name,
        mapping,
        document: 0,
        line,
        value: Value::Node(node),
    }
}

/// The value of key `k` (keys of the subset are strings).
fn get<'n, 'a>(entries: &'n [(Node<'a>, Node<'a>)], k: &str) -> Option<&'n Node<'a>> {
    entries
        .iter()
        .find(|(key, _)| matches!(key, Node::Scalar(text, _, _) if text == k))
        .map(|(_, v)| v)
}

/// The string value of key `k`; empty when absent or not a string.
fn string_at(entries: &[(Node<'_>, Node<'_>)], k: &str) -> String {
    get(entries, k)
        .and_then(string)
        .map(Cow::into_owned)
        .unwrap_or_default()
}

/// A scalar's value when it is a string: quoted, or plain and read as a
/// string (not a number, boolean or null).
pub fn string<'a>(node: &Node<'a>) -> Option<Cow<'a, str>> {
    match node {
        Node::Scalar(text, Style::Quoted, _) => Some(text.clone()),
        Node::Scalar(text, Style::Plain, _) => match resolve::plain(text) {
            Ok(Scalar::Str(_)) => Some(text.clone()),
            _ => None,
        },
        _ => None,
    }
}

fn from_val(val: Box<dyn Val + '_>) -> Doc<'_> {
    let (mut api_version, mut kind, mut name) = (String::new(), String::new(), String::new());
    let map = val.downcast_ref::<CelMap<'_>>().map(CelMap::inner);
    if let Some(map) = map {
        let field = |m: &HashMap<CelMapKey<'_>, Box<dyn Val + '_>>, k: &str| {
            m.get(&CelMapKey::from(k))
                .and_then(|v| v.downcast_ref::<CelString<'_>>())
                .map(|s| s.inner().to_owned())
                .unwrap_or_default()
        };
        api_version = field(map, "apiVersion");
        kind = field(map, "kind");
        if let Some(meta) = map
            .get(&CelMapKey::from("metadata"))
            .and_then(|m| m.downcast_ref::<CelMap<'_>>())
        {
            name = field(meta.inner(), "name");
        }
    }
    Doc {
        api_version,
        kind,
        name,
        mapping: map.is_some(),
        document: 0,
        line: None,
        value: Value::Val(val),
    }
}

/// A plain scalar as a CEL value; a string borrows the text.
fn plain_val(text: Cow<'_, str>) -> Box<dyn Val + '_> {
    match resolve::plain(&text) {
        Ok(Scalar::Null) => Box::new(CelNull),
        Ok(Scalar::Bool(b)) => Box::new(CelBool::from(b)),
        Ok(Scalar::Int(n)) => Box::new(CelInt::from(n)),
        Ok(Scalar::UInt(n)) => uint_val(n),
        Ok(Scalar::Float(f)) => Box::new(CelDouble::from(f)),
        Ok(Scalar::Str(_)) => Box::new(CelString::from(text)),
        Err(resolve::Refused) => {
            unreachable!("the subset reader leaves non-finite numbers to serde-saphyr")
        }
    }
}

/// An integer read without a sign: `int` when it fits, else `uint`.
fn uint_val(n: u64) -> Box<dyn Val + 'static> {
    match i64::try_from(n) {
        Ok(i) => Box::new(CelInt::from(i)),
        Err(_) => Box::new(CelUInt::from(n)),
    }
}

/// A node of the subset as a CEL value; strings borrow the text.
fn node_val(node: Node<'_>) -> Box<dyn Val + '_> {
    match node {
        Node::Seq(items, _) => Box::new(CelList::from(
            items.into_iter().map(node_val).collect::<Vec<_>>(),
        )),
        Node::Map(entries, _) => {
            let mut map = HashMap::with_capacity(entries.len());
            map.extend(entries.into_iter().map(|(k, v)| {
                let key = match k {
                    Node::Scalar(text, _, _) => text,
                    _ => unreachable!("the subset reads only scalar keys"),
                };
                (CelMapKey::String(CelString::from(key)), node_val(v))
            }));
            Box::new(CelMap::from(map))
        }
        Node::Scalar(text, Style::Quoted, _) => Box::new(CelString::from(text)),
        Node::Scalar(text, Style::Plain, _) => plain_val(text),
    }
}

/// A document read by serde-saphyr, as a CEL value.
struct CelDoc<'de>(Box<dyn Val + 'de>);

impl<'de> de::Deserialize<'de> for CelDoc<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValVisitor).map(CelDoc)
    }
}

struct ValVisitor;

impl<'de> DeserializeSeed<'de> for ValVisitor {
    type Value = Box<dyn Val + 'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValVisitor {
    type Value = Box<dyn Val + 'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Box::new(CelNull))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Box::new(CelNull))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
        Ok(Box::new(CelBool::from(b)))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
        Ok(Box::new(CelInt::from(n)))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
        Ok(uint_val(n))
    }

    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Self::Value, E> {
        Ok(Box::new(CelDouble::from(f)))
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Box::new(CelString::from(s)))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Box::new(CelString::from(s.to_owned())))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
        Ok(Box::new(CelString::from(s)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element_seed(ValVisitor)? {
            items.push(item);
        }
        Ok(Box::new(CelList::from(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = HashMap::with_capacity(map.size_hint().unwrap_or(0).min(1024));
        while let Some(key) = map.next_key_seed(KeyVisitor)? {
            let shown = key.to_string();
            let value = map.next_value_seed(ValVisitor)?;
            if entries
                .insert(CelMapKey::String(CelString::from(key)), value)
                .is_some()
            {
                return Err(de::Error::custom(format_args!("duplicate key `{shown}`")));
            }
        }
        Ok(Box::new(CelMap::from(entries)))
    }
}

/// A mapping key as a string: a number, boolean or null by its canonical
/// text, as Kubernetes turns YAML into JSON.
struct KeyVisitor;

impl<'de> DeserializeSeed<'de> for KeyVisitor {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a scalar mapping key")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed("null"))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed("null"))
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
        Ok(Cow::Owned(b.to_string()))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
        Ok(Cow::Owned(n.to_string()))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
        Ok(Cow::Owned(n.to_string()))
    }

    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Self::Value, E> {
        Ok(Cow::Owned(f.to_string()))
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(s))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s.to_owned()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s))
    }
}

#[cfg(test)]
mod tests;
