//! Typed values from the subset, as the spec parser (serde-saphyr, YAML 1.2
//! booleans) gives them, `Spanned` locations included.
//!
//! Scalars are resolved conservatively: a plain scalar is a null, a
//! boolean, a decimal integer, a decimal fraction or a string only when
//! its spelling leaves no doubt; anything else (or any request this reader
//! is not sure to answer as the spec parser would) ends the read, and the
//! caller parses the file again with the spec parser.

use std::fmt;

use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess,
    Visitor,
};

use super::parser::plain_string;
use super::{Node, Span, Style};

/// Reads `text` into `T`; `None` when the text is outside the subset or
/// the value is not plainly a `T` (the spec parser then decides).
pub fn from_str<T: DeserializeOwned>(text: &str) -> Option<T> {
    let node = super::parse(text)?;
    let lines = Lines::new(text);
    T::deserialize(De {
        node: &node,
        lines: &lines,
    })
    .ok()
}

/// The read ended: outside the subset, or a type this reader leaves to
/// the spec parser.
#[derive(Debug)]
pub struct Bail;

impl fmt::Display for Bail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("left to the full YAML parser")
    }
}

impl std::error::Error for Bail {}

impl de::Error for Bail {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Bail
    }
}

/// Line starts of the text, for locations (line, column and offset in
/// characters, as the spec parser counts them).
struct Lines<'a> {
    text: &'a str,
    /// Byte offset of each line start.
    starts: Vec<usize>,
    /// Character offset of each line start (`None`: ASCII, same as bytes).
    chars: Option<Vec<usize>>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        let chars = (!text.is_ascii()).then(|| {
            let mut acc = 0;
            starts
                .iter()
                .enumerate()
                .map(|(n, &s)| {
                    if n > 0 {
                        acc += text[starts[n - 1]..s].chars().count();
                    }
                    acc
                })
                .collect()
        });
        Lines {
            text,
            starts,
            chars,
        }
    }

    fn location(&self, span: Span) -> Loc {
        let line = self.starts.partition_point(|&s| s <= span.start) - 1;
        let in_line = &self.text[self.starts[line]..span.start];
        let (column, offset, len) = match &self.chars {
            None => (in_line.len(), span.start, span.len),
            Some(chars) => {
                let column = in_line.chars().count();
                let len = self.text[span.start..span.start + span.len].chars().count();
                (column, chars[line] + column, len)
            }
        };
        Loc {
            line: line as u64 + 1,
            column: column as u64 + 1,
            offset: offset as u64,
            len: len as u64,
            byte_offset: span.start as u64,
            byte_len: span.len as u64,
        }
    }
}

/// A location as serde-saphyr's `Location` deserializes it.
#[derive(Clone, Copy)]
struct Loc {
    line: u64,
    column: u64,
    offset: u64,
    len: u64,
    byte_offset: u64,
    byte_len: u64,
}

/// Parts of a [`Loc`] handed to `Location`'s and `Span`'s deserializers.
enum Part {
    Num(u64),
    Pair(u64, u64),
    Location(Loc),
    Span(Loc),
}

impl<'de> IntoDeserializer<'de, Bail> for Part {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> Deserializer<'de> for Part {
    type Error = Bail;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Bail> {
        match self {
            Part::Num(n) => v.visit_u64(n),
            Part::Pair(a, b) => v.visit_seq(SeqDeserializer::new([a, b].into_iter())),
            Part::Location(l) => v.visit_map(MapDeserializer::new(
                [
                    ("line", Part::Num(l.line)),
                    ("column", Part::Num(l.column)),
                    ("span", Part::Span(l)),
                    ("source_id", Part::Num(0)),
                ]
                .into_iter(),
            )),
            Part::Span(l) => v.visit_map(MapDeserializer::new(
                [
                    ("offset", Part::Num(l.offset)),
                    ("len", Part::Num(l.len)),
                    ("byte_info", Part::Pair(l.byte_offset, l.byte_len)),
                ]
                .into_iter(),
            )),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// What `serde_saphyr::Spanned` asks for to read a value with its place.
const SPANNED_NAME: &str = "__yaml_spanned";
/// The first key of the map by which serde-saphyr hands `Spanned` a value
/// and its locations.
const SPANNED_MARKER: &str = "__serde_saphyr_private_spanned";

/// How the spec parser reads a plain scalar, where that is certain.
enum Plain<'s> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'s str),
    Unsure,
}

fn resolve(text: &str) -> Plain<'_> {
    match text {
        "" | "~" | "null" => return Plain::Null,
        "true" => return Plain::Bool(true),
        "false" => return Plain::Bool(false),
        _ => {}
    }
    if plain_string(text) {
        return Plain::Str(text);
    }
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = match digits.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (digits, None),
    };
    let decimal = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let canonical = decimal(whole) && (whole == "0" || !whole.starts_with('0'));
    match fraction {
        _ if !canonical || text == "-0" => Plain::Unsure,
        None => text.parse().map_or(Plain::Unsure, Plain::Int),
        Some(f) if decimal(f) => text.parse().map_or(Plain::Unsure, Plain::Float),
        Some(_) => Plain::Unsure,
    }
}

/// A node of the subset as a serde deserializer.
#[derive(Clone, Copy)]
struct De<'n, 'a> {
    node: &'n Node<'a>,
    lines: &'n Lines<'n>,
}

impl<'n, 'a> De<'n, 'a> {
    fn at(self, node: &'n Node<'a>) -> Self {
        De {
            node,
            lines: self.lines,
        }
    }

    fn plain(self) -> Plain<'n> {
        match self.node {
            Node::Scalar(text, Style::Plain, _) => resolve(text),
            _ => Plain::Unsure,
        }
    }

    /// A scalar that is plainly a string.
    fn string(self) -> Result<&'n str, Bail> {
        match self.node {
            Node::Scalar(text, Style::Quoted, _) => Ok(text),
            _ => match self.plain() {
                Plain::Str(s) => Ok(s),
                _ => Err(Bail),
            },
        }
    }

    fn number<'de, V: Visitor<'de>>(self, v: V) -> Result<V::Value, Bail> {
        match self.plain() {
            Plain::Int(n) => v.visit_i64(n),
            _ => Err(Bail),
        }
    }

    /// A number as a float, read from its text as the spec parser does.
    fn float<'de, V: Visitor<'de>>(self, v: V) -> Result<V::Value, Bail> {
        match self.node {
            Node::Scalar(text, Style::Plain, _)
                if matches!(resolve(text), Plain::Int(_) | Plain::Float(_)) =>
            {
                v.visit_f64(text.parse().map_err(|_| Bail)?)
            }
            _ => Err(Bail),
        }
    }
}

macro_rules! numbers {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Bail> {
            self.number(v)
        }
    )*};
}

macro_rules! refused {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Bail> {
            Err(Bail)
        }
    )*};
}

impl<'de> Deserializer<'de> for De<'_, '_> {
    type Error = Bail;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Bail> {
        match self.node {
            Node::Scalar(text, Style::Quoted, _) => v.visit_str(text.as_ref()),
            Node::Scalar(..) => match self.plain() {
                Plain::Null => v.visit_unit(),
                Plain::Bool(b) => v.visit_bool(b),
                Plain::Int(n) => v.visit_i64(n),
                Plain::Float(f) => v.visit_f64(f),
                Plain::Str(s) => v.visit_str(s),
                Plain::Unsure => Err(Bail),
            },
            Node::Seq(items, _) => v.visit_seq(Items {
                de: self,
                items: items.iter(),
            }),
            Node::Map(entries, _) => v.visit_map(Entries {
                de: self,
                entries: entries.iter(),
                value: None,
            }),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Bail> {
        match self.plain() {
            Plain::Bool(b) => v.visit_bool(b),
            _ => Err(Bail),
        }
    }

    numbers! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
    }

    refused! {
        deserialize_i128 deserialize_u128 deserialize_char deserialize_bytes
        deserialize_byte_buf
    }

    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Bail> {
        self.float(v)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Bail> {
        self.float(v)
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Bail> {
        v.visit_str(self.string()?)
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Bail> {
        v.visit_str(self.string()?)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Bail> {
        v.visit_str(self.string()?)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Bail> {
        match self.plain() {
            Plain::Null => v.visit_none(),
            _ => v.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Bail> {
        match self.plain() {
            Plain::Null => v.visit_unit(),
            _ => Err(Bail),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, Bail> {
        self.deserialize_unit(v)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, Bail> {
        if name == SPANNED_NAME {
            v.visit_newtype_struct(Spanned(self))
        } else {
            v.visit_newtype_struct(self)
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Bail> {
        match self.node {
            Node::Seq(..) => self.deserialize_any(v),
            _ => Err(Bail),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, _v: V) -> Result<V::Value, Bail> {
        Err(Bail)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        _v: V,
    ) -> Result<V::Value, Bail> {
        Err(Bail)
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Bail> {
        match self.node {
            Node::Map(..) => self.deserialize_any(v),
            _ => Err(Bail),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Bail> {
        self.deserialize_map(v)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Bail> {
        v.visit_enum(self.string()?.into_deserializer())
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Bail> {
        v.visit_unit()
    }
}

struct Items<'n, 'a, I> {
    de: De<'n, 'a>,
    items: I,
}

impl<'de, 'n, 'a: 'n, I: ExactSizeIterator<Item = &'n Node<'a>>> SeqAccess<'de>
    for Items<'n, 'a, I>
{
    type Error = Bail;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Bail> {
        match self.items.next() {
            Some(node) => seed.deserialize(self.de.at(node)).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct Entries<'n, 'a, I> {
    de: De<'n, 'a>,
    entries: I,
    value: Option<&'n Node<'a>>,
}

impl<'de, 'n, 'a: 'n, I> MapAccess<'de> for Entries<'n, 'a, I>
where
    I: ExactSizeIterator<Item = &'n (Node<'a>, Node<'a>)>,
{
    type Error = Bail;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Bail> {
        match self.entries.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(self.de.at(key)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Bail> {
        let node = self.value.take().ok_or(Bail)?;
        seed.deserialize(self.de.at(node))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// A node handed to `serde_saphyr::Spanned`: the marker, the value, and
/// its location as both `referenced` and `defined` (no aliases here).
struct Spanned<'n, 'a>(De<'n, 'a>);

impl<'de> Deserializer<'de> for Spanned<'_, '_> {
    type Error = Bail;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Bail> {
        let loc = self.0.lines.location(self.0.node.span());
        v.visit_map(SpannedFields {
            de: self.0,
            loc,
            next: 0,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

struct SpannedFields<'n, 'a> {
    de: De<'n, 'a>,
    loc: Loc,
    next: usize,
}

const SPANNED_KEYS: [&str; 4] = [SPANNED_MARKER, "value", "referenced", "defined"];

impl<'de> MapAccess<'de> for SpannedFields<'_, '_> {
    type Error = Bail;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Bail> {
        match SPANNED_KEYS.get(self.next) {
            Some(key) => seed.deserialize(key.into_deserializer()).map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Bail> {
        self.next += 1;
        match self.next {
            1 => seed.deserialize(().into_deserializer()),
            2 => seed.deserialize(self.de),
            _ => seed.deserialize(Part::Location(self.loc)),
        }
    }
}
