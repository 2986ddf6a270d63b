//! Typed values from the subset, as the spec parser (serde-saphyr, YAML 1.2
//! core schema) gives them, [`crate::spec::yaml::Spanned`] locations
//! included.
//!
//! A value of any type (`deserialize_any`) gets the plain scalar's
//! resolution ([`super::resolve`]); a typed request is answered only where
//! the spec parser's answer is certain (a plain integer for an integer, a
//! plain string for a string, ...). Anything else ends the read, and the
//! caller parses the file again with the spec parser.

use std::cell::Cell;
use std::fmt;

use serde::de::value::SeqDeserializer;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess,
    Visitor,
};

use super::resolve::{self, Scalar};
use super::{Node, Span, Style};
use crate::spec::yaml::SPANNED;

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

/// Reads every document of `text` (see [`super::parse_stream`]) into a
/// `T` each; `None` when any is outside the subset or not plainly a `T`.
pub fn from_stream<T: DeserializeOwned>(text: &str) -> Option<Vec<T>> {
    let nodes = super::parse_stream(text)?;
    let lines = Lines::new(text);
    nodes
        .iter()
        .map(|node| {
            T::deserialize(De {
                node,
                lines: &lines,
            })
            .ok()
        })
        .collect()
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

/// Line starts of the text, for locations (line, column and length in
/// characters, as the spec parser counts them).
struct Lines<'a> {
    text: &'a str,
    /// Byte offset of each line start.
    starts: Vec<usize>,
    /// Whether every character is one byte.
    ascii: bool,
    /// The last place asked for in a non-ASCII text: (line, byte offset,
    /// characters from the line start), so that asking for the places of a
    /// long line from left to right counts each character once.
    last: Cell<(usize, usize, usize)>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1));
        Lines {
            text,
            starts,
            ascii: text.is_ascii(),
            last: Cell::new((0, 0, 0)),
        }
    }

    /// `(line, column, len)` of a span.
    fn location(&self, span: Span) -> (u32, u32, u32) {
        let line = self.starts.partition_point(|&s| s <= span.start) - 1;
        let (column, len) = if self.ascii {
            (span.start - self.starts[line], span.len)
        } else {
            let (last_line, last_at, last_chars) = self.last.get();
            let (from, before) = if last_line == line && last_at <= span.start {
                (last_at, last_chars)
            } else {
                (self.starts[line], 0)
            };
            let column = before + self.text[from..span.start].chars().count();
            self.last.set((line, span.start, column));
            let len = self.text[span.start..span.start + span.len].chars().count();
            (column, len)
        };
        let narrow = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        (narrow(line + 1), narrow(column + 1), narrow(len))
    }
}

/// How the spec parser reads a plain scalar, where that is certain.
enum Plain<'s> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(&'s str),
    Unsure,
}

fn resolve(text: &str) -> Plain<'_> {
    match resolve::plain(text) {
        Ok(Scalar::Null) => Plain::Null,
        Ok(Scalar::Bool(b)) => Plain::Bool(b),
        Ok(Scalar::Int(n)) => Plain::Int(n),
        Ok(Scalar::UInt(n)) => Plain::UInt(n),
        Ok(Scalar::Float(f)) => Plain::Float(f),
        Ok(Scalar::Str(s)) => Plain::Str(s),
        Err(resolve::Refused) => Plain::Unsure,
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

    /// An integer for a signed type (the type's visitor refuses one out
    /// of its range).
    fn signed<'de, V: Visitor<'de>>(self, v: V) -> Result<V::Value, Bail> {
        match self.plain() {
            Plain::Int(n) => v.visit_i64(n),
            Plain::UInt(n) => v.visit_u64(n),
            _ => Err(Bail),
        }
    }

    /// An integer for an unsigned type: the spec parser refuses any
    /// written with a `-` (even `-0`).
    fn unsigned<'de, V: Visitor<'de>>(self, v: V) -> Result<V::Value, Bail> {
        match self.plain() {
            Plain::UInt(n) => v.visit_u64(n),
            _ => Err(Bail),
        }
    }

    /// A number as a float, read from its text as the spec parser does.
    fn float<'de, V: Visitor<'de>>(self, v: V) -> Result<V::Value, Bail> {
        match self.node {
            Node::Scalar(text, Style::Plain, _)
                if matches!(
                    resolve(text),
                    Plain::Int(_) | Plain::UInt(_) | Plain::Float(_)
                ) =>
            {
                v.visit_f64(text.parse().map_err(|_| Bail)?)
            }
            _ => Err(Bail),
        }
    }
}

macro_rules! numbers {
    ($how:ident: $($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Bail> {
            self.$how(v)
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
                Plain::UInt(n) => v.visit_u64(n),
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

    numbers! { signed: deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 }
    numbers! { unsigned: deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 }

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
        if name == SPANNED {
            v.visit_seq(Spanned { de: self, next: 0 })
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

/// A node handed to [`crate::spec::yaml::Spanned`]: the value, then its
/// `(line, column, len)` (no aliases here: where it is used is where it
/// is written).
struct Spanned<'n, 'a> {
    de: De<'n, 'a>,
    next: usize,
}

impl<'de> SeqAccess<'de> for Spanned<'_, '_> {
    type Error = Bail;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Bail> {
        self.next += 1;
        match self.next {
            1 => seed.deserialize(self.de).map(Some),
            2 => {
                let (line, column, len) = self.de.lines.location(self.de.node.span());
                let place = SeqDeserializer::<_, Bail>::new([line, column, len].into_iter());
                seed.deserialize(place).map(Some)
            }
            _ => Ok(None),
        }
    }
}
