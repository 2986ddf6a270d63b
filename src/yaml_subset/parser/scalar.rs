//! Scalars on one line: plain (block or flow context), single- or
//! double-quoted with their escapes.

use std::borrow::Cow;

use super::{Out, Parser, R, flow_indicator, indicator};
use crate::yaml_subset::{Node, Span, Style, resolve};

impl<'a> Parser<'a> {
    /// A plain scalar on one line: in flow context it also ends at flow
    /// indicators.
    pub(super) fn plain(&mut self, flow: bool) -> R<Node<'a>> {
        let start = self.pos;
        let first = self.cur();
        let next = self.at(start + 1);
        let dash_ok =
            first == b'-' && next != b' ' && next != b'\n' && !(flow && flow_indicator(next));
        if self.pos >= self.end || first == b' ' || (indicator(first) && !dash_ok) {
            return Err(Out);
        }
        let stop = if flow {
            self.plain_end_flow(start)
        } else {
            self.plain_end_block(start)
        };
        let mut last = stop;
        while last > start && self.b[last - 1] == b' ' {
            last -= 1;
        }
        self.pos = last;
        let text = &self.text[start..last];
        // A number the full parser refuses (`.inf`, `1e999`) is its to report
        // (a number starts with a digit, a sign or a dot).
        let numeric = first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'.');
        if numeric && resolve::plain(text).is_err() {
            return Err(Out);
        }
        let span = Span {
            start,
            len: last - start,
        };
        Ok(Node::Scalar(Cow::Borrowed(text), Style::Plain, span))
    }

    /// Where a plain scalar in block context that starts at `start` ends:
    /// a newline, a comment (` #`) or a `:` indicator (found with a
    /// vectorized search).
    fn plain_end_block(&self, start: usize) -> usize {
        let mut from = start;
        while let Some(n) = memchr::memchr3(b'\n', b'#', b':', &self.b[from..self.end]) {
            let j = from + n;
            let stop = match self.b[j] {
                b'\n' => true,
                b'#' => self.b[j - 1] == b' ',
                _ => matches!(self.at(j + 1), b' ' | b'\n'),
            };
            if stop {
                return j;
            }
            from = j + 1;
        }
        self.end
    }

    /// Where a plain scalar in flow context that starts at `start` ends:
    /// also at a flow indicator, or a `:` before one.
    fn plain_end_flow(&self, start: usize) -> usize {
        for j in start..self.end {
            let stop = match self.b[j] {
                b'\n' => true,
                b'#' => self.b[j - 1] == b' ',
                b':' => matches!(self.at(j + 1), b' ' | b'\n') || flow_indicator(self.at(j + 1)),
                c => flow_indicator(c),
            };
            if stop {
                return j;
            }
        }
        self.end
    }

    /// A single- or double-quoted scalar on one line.
    pub(super) fn quoted(&mut self) -> R<Node<'a>> {
        let start = self.pos;
        let quote = self.b[start];
        let mut i = start + 1;
        let mut owned: Option<String> = None;
        let mut from = i;
        loop {
            // The next quote, backslash (double quotes only) or newline.
            let rest = &self.b[i..self.end];
            let found = if quote == b'"' {
                memchr::memchr3(b'"', b'\\', b'\n', rest)
            } else {
                memchr::memchr2(b'\'', b'\n', rest)
            };
            let Some(n) = found else {
                return Err(Out);
            };
            i += n;
            let c = self.b[i];
            if c == b'\n' {
                return Err(Out);
            }
            if c == quote {
                if quote == b'\'' && self.at(i + 1) == b'\'' && i + 1 < self.end {
                    let s = owned.get_or_insert_with(String::new);
                    s.push_str(&self.text[from..=i]);
                    i += 2;
                    from = i;
                    continue;
                }
                break;
            }
            let s = owned.get_or_insert_with(String::new);
            s.push_str(&self.text[from..i]);
            i = self.escape(i, s)?;
            from = i;
        }
        let value = match owned {
            Some(mut s) => {
                s.push_str(&self.text[from..i]);
                Cow::Owned(s)
            }
            None => Cow::Borrowed(&self.text[start + 1..i]),
        };
        self.pos = i + 1;
        let span = Span {
            start,
            len: self.pos - start,
        };
        Ok(Node::Scalar(value, Style::Quoted, span))
    }

    /// The escape at `i` (a backslash) appended to `out`; the position
    /// after it.
    fn escape(&self, i: usize, out: &mut String) -> R<usize> {
        let simple = match self.at(i + 1) {
            b'\\' => '\\',
            b'"' => '"',
            b'/' => '/',
            b'n' => '\n',
            b't' => '\t',
            b'r' => '\r',
            b'0' => '\0',
            b'x' => return self.hex(i + 2, 2, out),
            b'u' => return self.hex(i + 2, 4, out),
            b'U' => return self.hex(i + 2, 8, out),
            _ => return Err(Out),
        };
        out.push(simple);
        Ok(i + 2)
    }

    fn hex(&self, from: usize, digits: usize, out: &mut String) -> R<usize> {
        let to = from + digits;
        if to > self.end {
            return Err(Out);
        }
        let text = std::str::from_utf8(&self.b[from..to]).map_err(|_| Out)?;
        if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Out);
        }
        let code = u32::from_str_radix(text, 16).map_err(|_| Out)?;
        out.push(char::from_u32(code).ok_or(Out)?);
        Ok(to)
    }
}
