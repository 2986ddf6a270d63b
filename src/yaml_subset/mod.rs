//! A fast reader for the YAML most files are written in, with the full
//! parser (serde-saphyr) behind it for everything else.
//!
//! The subset: block mappings and sequences indented with spaces, flow
//! collections (JSON included), and single-line scalars: plain, single- or
//! double-quoted. A document holding anything else — anchors, aliases,
//! tags, block scalars, multi-line scalars, tabs, carriage returns, a byte
//! order mark, complex or non-string keys, repeated keys, directives,
//! deep nesting — is not read here: [`parse`] gives `None` and the caller
//! uses the full parser, whose values and error messages are the
//! reference.
//!
//! # Guarantees
//! Whatever this reader accepts, the full parser accepts too and reads the
//! same way: the same documents, the same values (plain scalars resolve by
//! [`resolve`], the full parser's YAML 1.2 core schema) and the same
//! locations. A differential test (`tests::differential`) checks this on
//! thousands of generated documents on every test run. Reading takes time
//! linear in the text (repeated keys are found by hashing).

pub mod de;
mod parser;
pub mod resolve;

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

/// Reads every document of a stream, split at `---` lines by the parser
/// (a `---` before the first document is allowed, empty documents are left
/// out as the full parser leaves them out); `None` when any document is
/// outside the subset.
pub fn parse_stream(text: &str) -> Option<Vec<Node<'_>>> {
    parser::stream(text)
}

#[cfg(test)]
pub(crate) mod generate;
#[cfg(test)]
pub(crate) mod tests;
