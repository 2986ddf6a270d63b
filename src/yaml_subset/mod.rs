//! A fast reader for the YAML most files are written in, with a full
//! parser behind it for everything else.
//!
//! The subset: block mappings and sequences indented with spaces, flow
//! collections (JSON included), and single-line scalars: plain, single- or
//! double-quoted. A document holding anything else — anchors, aliases,
//! tags, block scalars, multi-line scalars, tabs, complex keys, duplicate
//! keys, directives, deep nesting — is not read here: [`parse`] gives
//! `None` and the caller uses the full parser, whose values and error
//! messages stay the reference. Whatever this reader accepts, the full
//! parsers accept too and read the same way (tested against both).
//!
//! Scalars are kept as written (with their style); each reader resolves
//! them the way the parser it stands in for does: [`de`] like the spec
//! parser (serde-saphyr, YAML 1.2 booleans), `policy` like yaml-rust2.

pub mod de;
mod parser;

pub use parser::plain_string;

/// A byte range of the text: where a node starts and how far its span
/// reaches (0 for a block collection, 1 for a flow collection's bracket,
/// the whole scalar with its quotes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub len: usize,
}

/// How a scalar was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    Quoted,
}

/// A node of a document.
#[derive(Debug, Clone, PartialEq)]
pub enum Node<'a> {
    /// A scalar's value (unescaped; an absent value is an empty plain one).
    Scalar(std::borrow::Cow<'a, str>, Style, Span),
    Seq(Vec<Node<'a>>, Span),
    Map(Vec<(Node<'a>, Node<'a>)>, Span),
}

impl Node<'_> {
    pub fn span(&self) -> Span {
        match self {
            Node::Scalar(_, _, s) | Node::Seq(_, s) | Node::Map(_, s) => *s,
        }
    }
}

/// Reads a single document (no `---` or `...` lines); `None` when the text
/// is outside the subset or not a document.
pub fn parse(text: &str) -> Option<Node<'_>> {
    parser::document(text, 0, text.len())
}

/// Reads every document of a stream separated by `---` lines (a `---`
/// before the first document is allowed); `None` when any document is
/// outside the subset or empty.
pub fn parse_stream(text: &str) -> Option<Vec<Node<'_>>> {
    let bytes = text.as_bytes();
    let mut docs = Vec::new();
    let mut start = 0;
    for at in memchr::memmem::find_iter(bytes, b"---") {
        let end = at + 3;
        let own_line =
            (at == 0 || bytes[at - 1] == b'\n') && bytes.get(end).is_none_or(|&b| b == b'\n');
        if !own_line {
            continue;
        }
        if !(start == 0 && parser::blank(&text[..at])) {
            docs.push(parser::document(text, start, at)?);
        }
        start = (end + 1).min(text.len());
    }
    docs.push(parser::document(text, start, text.len())?);
    Some(docs)
}

#[cfg(test)]
mod tests;
