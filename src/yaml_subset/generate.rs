//! Generated YAML documents for the differential tests: a fuzz-style
//! renderer that spends a string of random bytes on choices, so that
//! proptest can shrink a failing case by shrinking its bytes.
//!
//! Most choices write YAML of the subset (so that both readers have
//! something to agree on); the rest write what the subset must leave to
//! the full parser: anchors and aliases, tags, block scalars, multi-line
//! scalars, tabs, carriage returns, a byte order mark, document markers,
//! repeated keys, complex keys, deep nesting, and stray characters.

/// Plain scalars: every YAML 1.2 core type in its spellings, and strings
/// that look like them.
#[rustfmt::skip]
pub const PLAIN: &[&str] = &[
    "~", "null", "Null", "NULL", "nULL", "true", "True", "TRUE", "false", "FaLsE", "yes", "no",
    "on", "off", "y", "n", "Y", "0", "-0", "+0", "7", "-7", "+7", "007", "-007", "+007", "0x1F",
    "0X1f", "-0x10", "+0x10", "0o17", "0O17", "0o8", "0b101", "0x", "1_000", "1__0", "_1",
    "1_", "0x_1", "-1_0", "18446744073709551615", "18446744073709551616",
    "9223372036854775807", "9223372036854775808", "-9223372036854775808",
    "-9223372036854775809", "1.5", "-1.5", "+1.5", ".5", "-.5", "5.", "1e3", "1E3", "1e+3",
    "-1.5e-3", "1.0e", "1e-999", "inf", "-inf", "nan", "NaN", "infinity", "Infinity", "1.0.0",
    "1Gi", "100m", "0.5Gi", "-x", "x-", "+", ".", "..", "-.", "http://example.org/a#b", "a b",
    "a  b", "a#b", "x:y", "x::", "é", "ü ö", "😀", "Deployment", "apps/v1", "kind", "a'b",
    "a\"b", "%x", "x|y", "x>y", "x?", "-- x", "a\\b",
    // Scalars the subset leaves to the full parser (in some places).
    ".inf", "-.Inf", "+.INF", ".nan", ".NaN", "1e999", "-1e999", "@x", "`x", "-", "x]", "x}",
    "a,b", "a #b", "---x", "...x",
];

/// The plain scalars before this index are read by the subset anywhere.
const PLAIN_READ: usize = 95;

/// Scalars as a template might quote them, escapes included.
#[rustfmt::skip]
pub const QUOTED: &[&str] = &[
    "'kind'", "\"kind\"", "'Deployment'", "\"Deployment\"", "''", "\"\"", "'it''s'",
    "'a \"b\"'", "\"a \\\"b\\\"\"", "\"\\\\\"", "\"a\\nb\"", "\"\\t\"", "\"\\x41\"",
    "\"\\u00e9\"", "\"\\U0001F600\"", "\"\\/\"", "\"\\0\"", "'~'", "'null'", "\"true\"",
    "'1'", "\"0x1F\"", "'.inf'", "'#'", "'a: b'", "\"a # b\"", "'é'",
    // Scalars the subset leaves to the full parser.
    "\"\\q\"", "\"\\ \"", "\"\\e\"", "\"\\N\"", "\"\\_\"", "\"\\L\"", "\"\\x4\"",
    "\"\\ud800\"", "\"multi\n  line\"", "'multi\n\n  line'", "'open", "\"open", "'x''",
    "\"x\"y\"",
];

/// The quoted scalars before this index are read by the subset.
const QUOTED_READ: usize = 27;

/// Mapping keys: the ones policies match on, in every spelling, and the
/// ones that are not strings or not plain.
#[rustfmt::skip]
const KEYS: &[&str] = &[
    "kind", "apiVersion", "metadata", "name", "spec", "a", "b", "c", "replicas", "spaced key",
    "'kind'", "\"kind\"", "'apiVersion'", "\"a\\\"b\"", "'it''s'", "on", "yes", "no", "1Gi",
    "-x", ".x", "é", "\"\"", "''", "a:b", "x]",
    // Keys the subset leaves to the full parser.
    "1", "-1", "0x1F", "1.5", "true", "~", "null", "? x", "[a]", "{a: 1}", "*k", "&k kind",
    "!!str kind", "<<", "a b:", "#x",
];

/// The keys before this index are strings the subset reads.
const PLAIN_KEYS: usize = 26;

/// Separators between a key and its value.
const COLON: &[&str] = &[": ", ": ", ": ", " : ", ":  ", ":\t", ":", " :", "\t: "];

/// Characters a stray mutation inserts.
const STRAY: &[&str] = &[
    "\t", "\r", "\u{feff}", "\u{85}", "\u{2028}", "#", " #", ":", ": ", "-", "- ", "?", "&a ",
    "*a", "!", "!!str ", "|", ">", "'", "\"", "[", "]", "{", "}", ",", "%", "@", "`", "\\", "\n",
    "\n---\n", "\n...\n", " ", "  ", "\u{0}", "\u{7f}", "é",
];

/// Random bytes spent on choices; when they run out every choice is the
/// first, which ends every list.
pub struct Choices<'a> {
    bytes: &'a [u8],
    at: usize,
    /// Whether choices outside the subset are made at all (three cases in
    /// four write only what the subset should read).
    tricky: bool,
}

impl<'a> Choices<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        let tricky = bytes.first().is_some_and(|b| b % 4 == 3);
        Choices {
            bytes,
            at: 1,
            tricky,
        }
    }

    /// Like [`Self::chance`] for a choice outside the subset.
    fn tricky(&mut self, percent: u8) -> bool {
        self.tricky && self.chance(percent)
    }

    fn byte(&mut self) -> u8 {
        let b = self.bytes.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    /// A number below `n`.
    fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n.max(1)
    }

    /// True with probability `percent` (when bytes remain).
    fn chance(&mut self, percent: u8) -> bool {
        self.at < self.bytes.len() && u16::from(self.byte()) * 100 < u16::from(percent) * 256
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len())]
    }

    fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }
}

/// A YAML text: one document, or a stream when `stream` is set.
pub fn text(c: &mut Choices<'_>, stream: bool) -> String {
    let mut out = String::new();
    if c.chance(10) {
        out.push_str("# head\n");
    }
    let docs = if stream { 1 + c.below(3) } else { 1 };
    for i in 0..docs {
        if i > 0 && c.done() {
            break;
        }
        if stream && (i > 0 || c.chance(20)) {
            out.push_str(if c.tricky(5) { "--- \n" } else { "---\n" });
            if c.chance(10) {
                continue;
            }
        }
        if c.tricky || c.chance(20) {
            block(c, &mut out, 0, 0);
        } else {
            map(c, &mut out, 0, 0);
        }
    }
    if c.chance(5) {
        out.push_str("# tail");
    }
    mutate(c, out)
}

/// Text-level mutations, as a fuzzer makes them.
fn mutate(c: &mut Choices<'_>, mut out: String) -> String {
    if !c.tricky {
        return out;
    }
    while c.chance(12) {
        let at = c.below(out.len() + 1);
        let at = (0..=at)
            .rev()
            .find(|&i| out.is_char_boundary(i))
            .unwrap_or(0);
        out.insert_str(at, c.pick(STRAY));
    }
    if c.chance(4) {
        out = out.replace('\n', "\r\n");
    }
    if c.chance(3) {
        out.insert(0, '\u{feff}');
    }
    if c.chance(5) {
        out.pop();
    }
    out
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn scalar(c: &mut Choices<'_>) -> String {
    if !c.tricky {
        return if c.chance(70) {
            c.pick(&PLAIN[..PLAIN_READ]).to_owned()
        } else {
            c.pick(&QUOTED[..QUOTED_READ]).to_owned()
        };
    }
    match c.below(20) {
        0..=11 => c.pick(PLAIN).to_owned(),
        12..=16 => c.pick(QUOTED).to_owned(),
        17 => format!("&a{} {}", c.below(3), c.pick(PLAIN)),
        18 => format!("*a{}", c.below(3)),
        _ => {
            let tag = c.pick(&["str", "int", "float", "bool", "null", "binary"]);
            format!("!!{tag} {}", c.pick(PLAIN))
        }
    }
}

/// A block node at column `col` whose first line starts where `out` ends
/// (the indentation of that line already written), ending with a newline.
fn block(c: &mut Choices<'_>, out: &mut String, col: usize, depth: usize) {
    let deep = depth > if c.tricky { 6 } else { 3 } && !c.tricky(3);
    match c.below(10) {
        _ if deep || c.done() => {
            out.push_str(&scalar(c));
            out.push('\n');
        }
        0..=4 => map(c, out, col, depth),
        5..=6 => seq(c, out, col, depth),
        7 => {
            flow(c, out, depth);
            out.push('\n');
        }
        8 if c.tricky => block_scalar(c, out, col),
        _ => {
            out.push_str(&scalar(c));
            if c.chance(20) {
                out.push_str(" # note");
            }
            out.push('\n');
        }
    }
}

fn map(c: &mut Choices<'_>, out: &mut String, col: usize, depth: usize) {
    let entries = 1 + c.below(5);
    let mut keys: Vec<String> = Vec::new();
    for i in 0..entries {
        if i > 0 {
            if c.chance(8) {
                indent(out, col + c.below(3));
                out.push_str("# comment\n");
            }
            if c.chance(5) {
                out.push('\n');
            }
            indent(out, col);
        }
        let mut key = if !keys.is_empty() && c.tricky(4) {
            keys[c.below(keys.len())].clone()
        } else if c.tricky {
            c.pick(KEYS).to_owned()
        } else {
            c.pick(&KEYS[..PLAIN_KEYS]).to_owned()
        };
        let bare = |k: &str| k.trim_matches(['\'', '"']).to_owned();
        if !c.tricky && keys.iter().any(|k| bare(k) == bare(&key)) {
            key = format!("k{i}");
        }
        out.push_str(&key);
        keys.push(key);
        out.push_str(c.pick(if c.tricky { COLON } else { &COLON[..5] }));
        match c.below(8) {
            0..=3 if !c.done() => {
                out.push_str(&scalar(c));
                if c.chance(10) {
                    out.push_str(" # c");
                }
                out.push('\n');
            }
            4 => {
                flow(c, out, depth + 1);
                out.push('\n');
            }
            5 if c.tricky => block_scalar(c, out, col),
            6 if c.chance(50) => {
                // An indentless sequence: its dashes at the key's column.
                out.push('\n');
                let items = 1 + c.below(3);
                for _ in 0..items {
                    indent(out, col);
                    out.push_str("- ");
                    block(c, out, col + 2, depth + 1);
                }
            }
            _ => {
                if c.chance(10) {
                    out.push_str(" # c");
                }
                out.push('\n');
                if c.chance(15) {
                    continue;
                }
                let inner = col + 1 + c.below(4);
                indent(out, inner);
                block(c, out, inner, depth + 1);
            }
        }
    }
}

fn seq(c: &mut Choices<'_>, out: &mut String, col: usize, depth: usize) {
    let items = 1 + c.below(4);
    for i in 0..items {
        if i > 0 {
            indent(out, col);
        }
        out.push('-');
        if c.chance(10) {
            out.push('\n');
            let inner = col + 1 + c.below(3);
            indent(out, inner);
            block(c, out, inner, depth + 1);
        } else {
            let gap = 1 + c.below(2);
            indent(out, gap);
            block(c, out, col + 1 + gap, depth + 1);
        }
    }
}

fn flow(c: &mut Choices<'_>, out: &mut String, depth: usize) {
    if depth > 8 || c.done() {
        out.push_str(c.pick(&["[]", "{}", "[ ]", "{ }"]));
        return;
    }
    let mapping = c.chance(50);
    out.push(if mapping { '{' } else { '[' });
    let items = c.below(4);
    let mut keys: Vec<&str> = Vec::new();
    for i in 0..items {
        if i > 0 {
            out.push_str(c.pick(&[", ", ",", " , ", ",\n  ", ", # c\n  "]));
        }
        if mapping {
            let key = if c.tricky {
                c.pick(KEYS)
            } else {
                c.pick(&KEYS[..PLAIN_KEYS])
            };
            let bare = |k: &str| k.trim_matches(['\'', '"']).to_owned();
            if !c.tricky && keys.iter().any(|k| bare(k) == bare(key)) {
                out.push_str(&format!("f{i}"));
            } else {
                out.push_str(key);
            }
            keys.push(key);
            out.push_str(c.pick(&[": ", ":", " : ", ":\n  "]));
        }
        if c.chance(25) {
            flow(c, out, depth + 1);
        } else {
            out.push_str(&scalar(c));
        }
    }
    if c.tricky(10) {
        out.push(',');
    }
    out.push(if mapping { '}' } else { ']' });
}

fn block_scalar(c: &mut Choices<'_>, out: &mut String, col: usize) {
    out.push_str(c.pick(&["|", ">", "|-", ">+", "|2"]));
    out.push('\n');
    for _ in 0..1 + c.below(3) {
        indent(out, col + 2);
        out.push_str(c.pick(&["text", "kind: Deployment", "# not a comment", "---"]));
        out.push('\n');
    }
}
