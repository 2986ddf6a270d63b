//! Keys of a mapping: which keys the subset takes, and a repeated key
//! found in linear time (compared while the mapping is small, hashed with
//! a per-process key once it grows).

use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault};

use super::{MAX_KEY, Out, R};
use crate::yaml_subset::resolve::{self, Scalar};
use crate::yaml_subset::{Node, Style};

/// A key the subset takes: a string (quoted, or plain and resolved as a
/// string) of an implicit key's length.
pub(super) fn check_key(key: &Node<'_>) -> R<()> {
    let Node::Scalar(text, style, span) = key else {
        return Err(Out);
    };
    // `<<` is a merge key to the full parser.
    let string = *style == Style::Quoted
        || (matches!(resolve::plain(text), Ok(Scalar::Str(_))) && text != "<<");
    if span.len > MAX_KEY || !string {
        return Err(Out);
    }
    Ok(())
}

/// Mappings up to this size are checked for a repeated key by comparing
/// keys; larger ones by hashing them.
const SCAN_KEYS: usize = 8;

/// The keys of one mapping so far, to find a repeated key in linear time.
#[derive(Default)]
pub(super) struct Keys {
    /// The hashes of every key (random per process: a spec author cannot
    /// choose colliding keys); filled once the mapping outgrows a scan.
    hashes: Option<HashSet<u64, BuildHasherDefault<Spread>>>,
}

impl Keys {
    /// Takes `key` (already [`check_key`]ed) unless a key with the same
    /// text is in `entries`. A hash that collides also ends the read: the
    /// full parser then decides.
    pub(super) fn take(&mut self, key: &Node<'_>, entries: &[(Node<'_>, Node<'_>)]) -> R<()> {
        let text = scalar_text(key);
        if entries.len() < SCAN_KEYS {
            let taken = entries.iter().any(|(k, _)| scalar_text(k) == text);
            return if taken { Err(Out) } else { Ok(()) };
        }
        let hashes = self.hashes.get_or_insert_with(|| {
            let mut set = HashSet::with_capacity_and_hasher(2 * SCAN_KEYS, Default::default());
            set.extend(entries.iter().map(|(k, _)| hash(scalar_text(k))));
            set
        });
        if hashes.insert(hash(text)) {
            Ok(())
        } else {
            Err(Out)
        }
    }
}

fn scalar_text<'n>(node: &'n Node<'_>) -> &'n str {
    match node {
        Node::Scalar(text, _, _) => text,
        _ => "",
    }
}

/// Hashes [`hash`] gave are keyed and uniform already: the set uses them
/// as they are.
#[derive(Default)]
struct Spread(u64);

impl std::hash::Hasher for Spread {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

fn hash(text: &str) -> u64 {
    static STATE: std::sync::LazyLock<std::hash::RandomState> =
        std::sync::LazyLock::new(std::hash::RandomState::new);
    STATE.hash_one(text)
}
