//! The subset reader: one pass over the bytes, recursive descent over block
//! and flow nodes. Every unsupported construct ends the read (`Err(Out)`).

use std::borrow::Cow;

use super::{Node, Span, Style};

/// The text is outside the subset (or not valid YAML): use the full parser.
pub(super) struct Out;

type R<T> = Result<T, Out>;

mod keys;
mod scalar;

use keys::{Keys, check_key};

/// Nesting deeper than this is left to the full parser (with its limits).
const MAX_DEPTH: usize = 64;
/// Nodes past this are left to the full parser (with its budget).
const MAX_NODES: usize = 100_000;
/// Implicit keys are limited to 1024 characters in YAML.
const MAX_KEY: usize = 1000;

/// The document in `text[start..end]`, which holds no document markers.
pub(super) fn document(text: &str, start: usize, end: usize) -> Option<Node<'_>> {
    if !plain_text(&text[start..end]) {
        return None;
    }
    let mut p = Parser::new(text, start, end, false);
    let indent = p.next_line().ok()??;
    if indent != 0 {
        return None;
    }
    let (node, next) = p.block_node(0).ok()?;
    (next.is_none() && p.pos == end && !p.marker).then_some(node)
}

/// Every document of `text`, split where the parser meets a `---` line
/// (one before the first document is allowed). Empty documents are left
/// out, as the full parser leaves them out; `None` when a document is
/// outside the subset or a plain null.
pub(super) fn stream(text: &str) -> Option<Vec<Node<'_>>> {
    if !plain_text(text) {
        return None;
    }
    let mut p = Parser::new(text, 0, text.len(), true);
    let mut docs = Vec::new();
    loop {
        match p.next_line().ok()? {
            None if p.marker => {
                p.marker = false;
                p.pos = p.line_end(p.pos);
            }
            None => return Some(docs),
            Some(0) => {
                p.depth = 0;
                let (node, next) = p.block_node(0).ok()?;
                if next.is_some()
                    || matches!(&node, Node::Scalar(t, Style::Plain, _) if t.is_empty() || t == "~" || t.eq_ignore_ascii_case("null"))
                {
                    return None;
                }
                docs.push(node);
            }
            Some(_) => return None,
        }
    }
}

/// No tabs, carriage returns, control characters, byte order marks or
/// Unicode line separators: those are the full parser's.
fn plain_text(text: &str) -> bool {
    // Every byte of every file is checked: in blocks, without an early
    // exit inside one, so that the check is vectorized.
    let bytes = text.as_bytes();
    let (mut ascii, mut allowed) = (true, true);
    for block in bytes.chunks(64) {
        for &b in block {
            ascii &= b < 0x80;
            allowed &= (b >= 0x20 && b != 0x7f) | (b == b'\n');
        }
        if !allowed {
            return false;
        }
    }
    ascii
        || !text.chars().any(|c| {
            matches!(
                c,
                '\u{80}'
                    ..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
            )
        })
}

struct Parser<'a> {
    text: &'a str,
    b: &'a [u8],
    pos: usize,
    end: usize,
    depth: usize,
    nodes: usize,
    /// Whether a `---` line ends a document (else it ends the read).
    markers: bool,
    /// The position is at a `---` line that ended the document.
    marker: bool,
}

/// Characters that may not start a plain scalar.
fn indicator(c: u8) -> bool {
    matches!(
        c,
        b'-' | b'?'
            | b':'
            | b','
            | b'['
            | b']'
            | b'{'
            | b'}'
            | b'#'
            | b'&'
            | b'*'
            | b'!'
            | b'|'
            | b'>'
            | b'\''
            | b'"'
            | b'%'
            | b'@'
            | b'`'
    )
}

fn flow_indicator(c: u8) -> bool {
    matches!(c, b',' | b'[' | b']' | b'{' | b'}')
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, start: usize, end: usize, markers: bool) -> Self {
        Parser {
            text,
            b: text.as_bytes(),
            pos: start,
            end,
            depth: 0,
            nodes: 0,
            markers,
            marker: false,
        }
    }

    fn at(&self, i: usize) -> u8 {
        if i < self.end { self.b[i] } else { b'\n' }
    }

    fn cur(&self) -> u8 {
        self.at(self.pos)
    }

    fn count(&mut self) -> R<()> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(Out);
        }
        Ok(())
    }

    fn enter(&mut self) -> R<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Out);
        }
        Ok(())
    }

    /// From a line start: skips blank and comment lines; the indentation
    /// of the next content line (the position left at its start), or
    /// `None` at the end.
    fn next_line(&mut self) -> R<Option<usize>> {
        while self.pos < self.end {
            let start = self.pos;
            let mut i = start;
            while i < self.end && self.b[i] == b' ' {
                i += 1;
            }
            match self.at(i) {
                b'\n' if i < self.end => self.pos = i + 1,
                b'\n' => self.pos = self.end,
                b'#' => {
                    self.pos = self.line_end(i);
                }
                _ => {
                    let line = &self.b[start..self.end.min(start + 4)];
                    if i == start && (line.starts_with(b"---") || line.starts_with(b"...")) {
                        // Only a bare `---` line ends a document here.
                        if !self.markers || !matches!(line, b"---" | b"---\n") {
                            return Err(Out);
                        }
                        self.pos = start;
                        self.marker = true;
                        return Ok(None);
                    }
                    return Ok(Some(i - start));
                }
            }
        }
        Ok(None)
    }

    /// The position after the newline ending the line that holds `i`.
    fn line_end(&self, i: usize) -> usize {
        match self.b[i..self.end].iter().position(|&c| c == b'\n') {
            Some(n) => i + n + 1,
            None => self.end,
        }
    }

    /// After a node on its line: spaces, an optional comment, the newline;
    /// then blank lines. The next content line's indentation.
    fn finish_line(&mut self) -> R<Option<usize>> {
        let before = self.pos;
        while self.cur() == b' ' && self.pos < self.end {
            self.pos += 1;
        }
        match self.cur() {
            b'#' if self.pos > before => self.pos = self.line_end(self.pos),
            b'\n' => self.pos = (self.pos + 1).min(self.end),
            _ => return Err(Out),
        }
        self.next_line()
    }

    fn is_dash(&self, i: usize) -> bool {
        self.at(i) == b'-' && matches!(self.at(i + 1), b' ' | b'\n')
    }

    /// A block node starting at `self.pos`, at column `indent`. Leaves the
    /// position at the next content line; returns its indentation too.
    fn block_node(&mut self, indent: usize) -> R<(Node<'a>, Option<usize>)> {
        if self.is_dash(self.pos) {
            return self.block_seq(indent, false);
        }
        match self.cur() {
            b'[' | b'{' => {
                let node = self.flow_node(indent as isize - 1)?;
                let next = self.finish_line()?;
                Ok((node, next))
            }
            _ => {
                let (key, colon) = self.block_scalar()?;
                if colon {
                    self.block_map(indent, key)
                } else {
                    let next = self.finish_line()?;
                    Ok((key, next))
                }
            }
        }
    }

    /// A scalar in block context, and whether a `:` indicator follows (the
    /// position is then at the colon).
    fn block_scalar(&mut self) -> R<(Node<'a>, bool)> {
        self.count()?;
        let node = match self.cur() {
            b'"' | b'\'' => self.quoted()?,
            _ => self.plain(false)?,
        };
        let mut i = self.pos;
        while self.at(i) == b' ' && i < self.end {
            i += 1;
        }
        let colon = self.at(i) == b':' && matches!(self.at(i + 1), b' ' | b'\n');
        if colon {
            self.pos = i;
        }
        Ok((node, colon))
    }

    /// A block mapping whose first key (at column `indent`) is read; the
    /// position is at its colon.
    fn block_map(&mut self, indent: usize, first: Node<'a>) -> R<(Node<'a>, Option<usize>)> {
        self.enter()?;
        let span = Span {
            start: first.span().start,
            len: 0,
        };
        let mut entries: Vec<(Node<'a>, Node<'a>)> = Vec::new();
        let mut keys = Keys::default();
        let mut key = first;
        let next = loop {
            check_key(&key)?;
            keys.take(&key, &entries)?;
            let colon = self.pos;
            self.pos += 1;
            while self.cur() == b' ' && self.pos < self.end {
                self.pos += 1;
            }
            let (value, next) = match self.cur() {
                b'\n' | b'#' => {
                    self.pos = colon + 1;
                    let next = self.finish_line()?;
                    match next {
                        Some(m) if m > indent => {
                            self.pos += m;
                            self.block_node(m)?
                        }
                        Some(m) if m == indent && self.is_dash(self.pos + m) => {
                            self.pos += m;
                            self.block_seq(indent, true)?
                        }
                        _ => {
                            self.count()?;
                            let empty = Span {
                                start: colon,
                                len: 0,
                            };
                            (Node::Scalar(Cow::Borrowed(""), Style::Plain, empty), next)
                        }
                    }
                }
                _ => {
                    let value = self.inline_value(indent)?;
                    (value, self.finish_line()?)
                }
            };
            entries.push((key, value));
            match next {
                Some(m) if m == indent && !self.is_dash(self.pos + m) => {
                    self.pos += m;
                    let (k, colon) = self.block_scalar()?;
                    if !colon {
                        return Err(Out);
                    }
                    key = k;
                }
                Some(m) if m > indent => return Err(Out),
                _ => break next,
            }
        };
        self.depth -= 1;
        Ok((Node::Map(entries, span), next))
    }

    /// A mapping value on its key's line.
    fn inline_value(&mut self, indent: usize) -> R<Node<'a>> {
        match self.cur() {
            b'[' | b'{' => self.flow_node(indent as isize),
            _ => {
                let (node, colon) = self.block_scalar()?;
                if colon {
                    return Err(Out);
                }
                Ok(node)
            }
        }
    }

    /// A block sequence at column `indent`, the position at its first `-`.
    /// An indentless sequence (a mapping value at the key's column) is
    /// located at its first item, as the full parser does.
    fn block_seq(&mut self, indent: usize, indentless: bool) -> R<(Node<'a>, Option<usize>)> {
        self.enter()?;
        self.count()?;
        let mut span = Span {
            start: self.pos,
            len: 0,
        };
        let mut items = Vec::new();
        let next = loop {
            let dash = self.pos;
            self.pos += 1;
            while self.cur() == b' ' && self.pos < self.end {
                self.pos += 1;
            }
            let (item, next) = match self.cur() {
                b'\n' | b'#' if indentless => return Err(Out),
                b'\n' | b'#' => {
                    self.pos = dash + 1;
                    match self.finish_line()? {
                        Some(m) if m > indent => {
                            self.pos += m;
                            self.block_node(m)?
                        }
                        _ => return Err(Out),
                    }
                }
                _ => {
                    let column = self.column(self.pos);
                    self.block_node(column)?
                }
            };
            if indentless && items.is_empty() {
                span.start = item.span().start;
            }
            items.push(item);
            match next {
                Some(m) if m == indent && self.is_dash(self.pos + m) => self.pos += m,
                Some(m) if m > indent => return Err(Out),
                _ => break next,
            }
        };
        self.depth -= 1;
        Ok((Node::Seq(items, span), next))
    }

    /// The column (0-based, in bytes) of position `i`.
    fn column(&self, i: usize) -> usize {
        i - self.b[..i]
            .iter()
            .rposition(|&c| c == b'\n')
            .map_or(0, |n| n + 1)
    }

    /// Skips spaces, newlines and comments inside a flow collection; lines
    /// must be indented past `min` (the enclosing block's column).
    fn flow_space(&mut self, min: isize) -> R<()> {
        loop {
            match self.cur() {
                b' ' if self.pos < self.end => self.pos += 1,
                b'\n' if self.pos < self.end => {
                    self.pos += 1;
                    let start = self.pos;
                    while self.cur() == b' ' && self.pos < self.end {
                        self.pos += 1;
                    }
                    let content = !matches!(self.cur(), b'\n' | b'#');
                    if content && (self.pos - start) as isize <= min {
                        return Err(Out);
                    }
                    let line = &self.b[start..self.end.min(start + 3)];
                    if line == b"---" || line == b"..." {
                        return Err(Out);
                    }
                }
                b'#' if self.pos < self.end && matches!(self.b[self.pos - 1], b' ' | b'\n') => {
                    let end = self.line_end(self.pos);
                    self.pos = if end > self.pos && self.b[end - 1] == b'\n' {
                        end - 1
                    } else {
                        end
                    };
                }
                _ => return Ok(()),
            }
        }
    }

    /// A flow collection or scalar inside one.
    fn flow_node(&mut self, min: isize) -> R<Node<'a>> {
        self.count()?;
        match self.cur() {
            b'[' => {
                self.enter()?;
                let span = Span {
                    start: self.pos,
                    len: 1,
                };
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.flow_space(min)?;
                    if self.cur() == b']' {
                        break;
                    }
                    items.push(self.flow_node(min)?);
                    self.flow_space(min)?;
                    match self.cur() {
                        b',' => self.pos += 1,
                        b']' => break,
                        _ => return Err(Out),
                    }
                }
                self.pos += 1;
                self.depth -= 1;
                Ok(Node::Seq(items, span))
            }
            b'{' => {
                self.enter()?;
                let span = Span {
                    start: self.pos,
                    len: 1,
                };
                self.pos += 1;
                let mut entries = Vec::new();
                let mut keys = Keys::default();
                loop {
                    self.flow_space(min)?;
                    if self.cur() == b'}' {
                        break;
                    }
                    let key = match self.cur() {
                        b'"' | b'\'' => self.quoted()?,
                        _ => self.plain(true)?,
                    };
                    check_key(&key)?;
                    keys.take(&key, &entries)?;
                    let quoted = matches!(key, Node::Scalar(_, Style::Quoted, _));
                    if self.cur() != b':'
                        || !(quoted || matches!(self.at(self.pos + 1), b' ' | b'\n'))
                    {
                        return Err(Out);
                    }
                    self.pos += 1;
                    self.flow_space(min)?;
                    if matches!(self.cur(), b',' | b'}') {
                        return Err(Out);
                    }
                    let value = self.flow_node(min)?;
                    entries.push((key, value));
                    self.flow_space(min)?;
                    match self.cur() {
                        b',' => self.pos += 1,
                        b'}' => break,
                        _ => return Err(Out),
                    }
                }
                self.pos += 1;
                self.depth -= 1;
                Ok(Node::Map(entries, span))
            }
            b'"' | b'\'' => self.quoted(),
            _ => self.plain(true),
        }
    }
}
