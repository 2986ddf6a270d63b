//! YAML parsing with limits, and the spanned types the spec model is made of.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::diag::{self, Diagnostic};
use super::source::{Pos, SourceFile};

/// Nesting deeper than this is rejected.
pub const MAX_DEPTH: usize = 256;
/// Nodes a document may expand to, aliases included (an alias bomb hits this).
pub const MAX_NODES: usize = 250_000;

/// A string with its place in the source.
pub type Str = Spanned<String>;

/// Where a node is in the YAML text: line and column (1-based; 0 when
/// unknown) and the length of its span in characters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Location {
    line: u32,
    column: u32,
    len: u32,
}

impl Location {
    /// No place: a default value, not read from a file.
    pub const UNKNOWN: Location = Location {
        line: 0,
        column: 0,
        len: 0,
    };

    pub const fn new(line: u32, column: u32, len: u32) -> Self {
        Location { line, column, len }
    }

    pub fn line(&self) -> u64 {
        u64::from(self.line)
    }

    pub fn column(&self) -> u64 {
        u64::from(self.column)
    }

    /// The span's length in characters.
    pub fn len(&self) -> u64 {
        u64::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl From<&serde_saphyr::Location> for Location {
    fn from(l: &serde_saphyr::Location) -> Self {
        let narrow = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        Location::new(narrow(l.line()), narrow(l.column()), narrow(l.span().len()))
    }
}

/// A value with its place in the source: where it is used (`referenced`,
/// an alias's place for a value reached through one) and where it is
/// written (`defined`).
///
/// Read by serde-saphyr through its public `Spanned`, and by the fast
/// reader ([`crate::yaml_subset::de`]) through a protocol of druppie's own
/// ([`SPANNED`]), so neither depends on the other's private names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    pub value: T,
    pub referenced: Location,
    pub defined: Location,
}

impl<T> Spanned<T> {
    pub const fn new(value: T, referenced: Location, defined: Location) -> Self {
        Spanned {
            value,
            referenced,
            defined,
        }
    }
}

/// The newtype name by which [`Spanned`] asks a deserializer for a value
/// with its place. The fast reader answers with a sequence: the value,
/// then `(line, column, len)`; any other deserializer (serde-saphyr among
/// them) hands the newtype on, and serde-saphyr's `Spanned` reads it.
pub(crate) const SPANNED: &str = "druppie::spec::yaml::Spanned";

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SpannedVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for SpannedVisitor<T> {
            type Value = Spanned<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value with its place")
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Self::Value, D::Error> {
                let s = serde_saphyr::Spanned::<T>::deserialize(d)?;
                Ok(Spanned::new(
                    s.value,
                    (&s.referenced).into(),
                    (&s.defined).into(),
                ))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                use serde::de::Error;
                let value = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(0, &self))?;
                let (line, column, len): (u32, u32, u32) = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(1, &self))?;
                let at = Location::new(line, column, len);
                Ok(Spanned::new(value, at, at))
            }
        }
        d.deserialize_newtype_struct(SPANNED, SpannedVisitor(PhantomData))
    }
}

impl<T: Serialize> Serialize for Spanned<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(s)
    }
}

/// A YAML mapping that keeps its order and the position of every key.
#[derive(Debug, Clone)]
pub struct SpannedMap<V>(pub Vec<(Str, V)>);

impl<V> Default for SpannedMap<V> {
    fn default() -> Self {
        SpannedMap(Vec::new())
    }
}

impl<V> SpannedMap<V> {
    pub fn get(&self, key: &str) -> Option<&V> {
        self.0.iter().find(|(k, _)| k.value == key).map(|(_, v)| v)
    }

    pub fn get_entry(&self, key: &str) -> Option<(&Str, &V)> {
        self.0
            .iter()
            .find(|(k, _)| k.value == key)
            .map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.value.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Str, &V)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for SpannedMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
            type Value = SpannedMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(entry) = map.next_entry::<Str, V>()? {
                    entries.push(entry);
                }
                Ok(SpannedMap(entries))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(SpannedMap::default())
            }
        }
        d.deserialize_map(MapVisitor(PhantomData))
    }
}

impl<V: Serialize> Serialize for SpannedMap<V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (&k.value, v)))
    }
}

/// A string or a list of strings (`auth_group: admins` or `auth_group: [a, b]`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(untagged)]
pub enum OneOrMany {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::None => Vec::new(),
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// Parser options for every YAML druppie reads: depth and node budgets,
/// YAML 1.2 booleans.
pub fn options() -> serde_saphyr::Options {
    let mut opts = serde_saphyr::Options::default();
    let mut budget = opts.budget.clone().unwrap_or_default();
    budget.max_depth = MAX_DEPTH;
    budget.max_nodes = MAX_NODES;
    opts.budget = Some(budget);
    // YAML 1.2 booleans: `no` stays the string "no" (the Norway problem).
    opts.strict_booleans = true;
    opts.with_snippet = false;
    opts
}

/// Parses the YAML part of `file` into `T`: with the fast subset reader
/// when the text and value allow ([`crate::yaml_subset::de`]), else with
/// serde-saphyr, which reports every error.
///
/// # Errors
/// A located diagnostic for a syntax error, a type mismatch, an unknown
/// field, a duplicate key, or a breached limit (depth, alias expansion).
pub fn parse<T: DeserializeOwned>(file: &SourceFile, yaml: &str) -> Result<T, Box<Diagnostic>> {
    if let Some(value) = crate::yaml_subset::de::from_str(yaml) {
        return Ok(value);
    }
    serde_saphyr::from_str_with_options(yaml, options()).map_err(|e| Box::new(to_diag(file, &e)))
}

fn to_diag(file: &SourceFile, err: &serde_saphyr::Error) -> Diagnostic {
    let pos = err
        .location()
        .map(|l| file.pos(&Location::from(&l)))
        .unwrap_or_default();
    let pos = Pos {
        len: pos.len.min(1),
        ..pos
    };
    let message = bare_message(&err.without_snippet().to_string());
    let hint = if message.contains("budget breached") {
        Some("the document nests too deep or expands too many aliases; flatten it")
    } else if message.contains("recursion limit") {
        Some("nesting is limited to 256 levels")
    } else {
        None
    };
    let d = Diagnostic::error(
        format!("invalid YAML: {message}"),
        diag::Location::new(file, pos),
    );
    match hint {
        Some(h) => d.with_help(h),
        None => d,
    }
}

/// Strips the parser's own "line X column Y:" prefix and " at line X,
/// column Y" suffix: the diagnostic prints the location itself.
pub(crate) fn bare_message(raw: &str) -> String {
    let first = raw.lines().next().unwrap_or(raw).trim();
    let mut msg = first.strip_prefix("error: ").unwrap_or(first);
    if let Some(rest) = msg.strip_prefix("line ")
        && let Some(idx) = rest.find(": ")
        && rest[..idx].contains(" column ")
    {
        msg = &rest[idx + 2..];
    }
    if let Some(idx) = msg.rfind(" at line ")
        && msg[idx..].contains(", column ")
    {
        msg = &msg[..idx];
    }
    about_the_file(msg)
}

/// The parser's message as a sentence about the file: serde-saphyr ends
/// some messages with advice to programs that call it (an option to set,
/// a Rust type to use), which the author of the file cannot follow.
fn about_the_file(msg: &str) -> String {
    const DUPLICATE: &str = "duplicate mapping key";
    if let Some(rest) = msg.strip_prefix(DUPLICATE)
        && rest.contains("DuplicateKeyPolicy")
    {
        let key = rest
            .strip_prefix(": ")
            .and_then(|r| r.rsplit_once(", set DuplicateKeyPolicy"))
            .map(|(key, _)| key);
        return match key {
            Some(key) => format!("the key `{key}` appears twice in one mapping"),
            None => "a key appears twice in one mapping".to_owned(),
        };
    }
    if msg.starts_with("!!binary scalar is not valid UTF-8") {
        return "a `!!binary` value that is not UTF-8 text where text is expected".to_owned();
    }
    if msg.starts_with("cannot deserialize null into string") {
        return "a null value where text is expected".to_owned();
    }
    if msg.starts_with("invalid char: cannot deserialize null") {
        return "a null value where one character is expected".to_owned();
    }
    if msg.starts_with("multiple YAML documents detected") {
        return "more than one YAML document where one is expected".to_owned();
    }
    // Any other advice to callers ("...; use Option<String>",
    // "..., set ... in Options") is cut where it starts.
    for marker in ["; use ", ", set ", ". If you "] {
        if let Some(idx) = msg.find(marker)
            && ["Options", "Option<", "Cow<", "String"]
                .iter()
                .any(|rust| msg[idx..].contains(rust))
        {
            return msg[..idx].to_owned();
        }
    }
    msg.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> SourceFile {
        SourceFile {
            path: "t.yaml".into(),
            disk_path: "t.yaml".into(),
            text: text.into(),
            yaml_line_offset: 0,
        }
    }

    fn err_of(text: &str) -> Diagnostic {
        let f = file(text);
        *parse::<serde_json::Value>(&f, text).expect_err("must fail")
    }

    #[test]
    fn message_loses_parser_location_prefix() {
        assert_eq!(
            bare_message("error: line 4 column 5: unknown field `blok`"),
            "unknown field `blok`"
        );
        assert_eq!(
            bare_message("unexpected end of input at line 1, column 1"),
            "unexpected end of input"
        );
    }

    #[test]
    fn parser_advice_to_programs_becomes_a_sentence_about_the_file() {
        assert_eq!(
            bare_message(
                "line 6 column 3: duplicate mapping key: repo, set DuplicateKeyPolicy in Options if acceptable"
            ),
            "the key `repo` appears twice in one mapping"
        );
        assert_eq!(
            bare_message("duplicate mapping key, set DuplicateKeyPolicy in Options if acceptable"),
            "a key appears twice in one mapping"
        );
        assert_eq!(
            bare_message(
                "!!binary scalar is not valid UTF-8 so cannot be stored into string. If you just use !!binary for documentation/annotation, set ignore_binary_tag_for_string in Options"
            ),
            "a `!!binary` value that is not UTF-8 text where text is expected"
        );
        assert_eq!(
            bare_message("cannot deserialize null into string; use Option<String>"),
            "a null value where text is expected"
        );
        assert_eq!(
            bare_message("a new message; use Option<char> instead"),
            "a new message"
        );
        assert_eq!(
            bare_message("unknown field `a; use b`, expected one of `c`"),
            "unknown field `a; use b`, expected one of `c`"
        );
        let e = err_of("a: 1\nb: 2\na: 3\n");
        assert!(e.message.contains("the key `a` appears twice"), "{e:?}");
        assert!(!e.message.contains("Options"), "{e:?}");
    }

    #[test]
    fn alias_bomb_is_rejected_with_location() {
        let mut doc = String::from("a: &a [x,x,x,x,x,x,x,x,x,x]\n");
        for (i, name) in ["b", "c", "d", "e", "f", "g", "h"].iter().enumerate() {
            let prev = ["a", "b", "c", "d", "e", "f", "g"][i];
            let refs = vec![format!("*{prev}"); 10].join(",");
            doc.push_str(&format!("{name}: &{name} [{refs}]\n"));
        }
        let d = err_of(&doc);
        assert!(d.message.contains("budget breached"), "{}", d.message);
        assert!(d.location.pos.line > 1);
    }

    #[test]
    fn nesting_over_256_is_an_error_and_250_is_fine() {
        // `load` parses on a thread with a large stack; so does this test.
        std::thread::Builder::new()
            .stack_size(32 * 1024 * 1024)
            .spawn(|| {
                let deep = "[".repeat(300) + &"]".repeat(300);
                let d = err_of(&deep);
                assert_eq!(d.location.pos.line, 1);
                let ok = "[".repeat(250) + &"]".repeat(250);
                let f = file(&ok);
                assert!(parse::<serde_json::Value>(&f, &ok).is_ok());
            })
            .expect("spawn")
            .join()
            .expect("no panic");
    }

    #[test]
    fn yaml_1_2_booleans() {
        let f = file("a: no\nb: true\n");
        let v: serde_json::Value = parse(&f, "a: no\nb: true\n").expect("valid");
        assert_eq!(v["a"], "no");
        assert_eq!(v["b"], true);
    }

    #[test]
    fn spanned_map_keeps_order_and_key_positions() {
        let text = "zeta: 1\nalpha: 2\n";
        let m: SpannedMap<u32> = parse(&file(text), text).expect("valid");
        let keys: Vec<_> = m.keys().collect();
        assert_eq!(keys, ["zeta", "alpha"]);
        assert_eq!(m.0[1].0.referenced.line(), 2);
    }
}
