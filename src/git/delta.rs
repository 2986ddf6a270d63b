//! Git deltas: an object as instructions that copy runs of another
//! object (its base) and insert the bytes the base lacks, as pack entries
//! store them. Runs are found as git's own encoder finds them: the base's
//! blocks are indexed, the target is scanned for a block the base has,
//! and every match is grown both ways as far as the bytes agree. A tree
//! that gained an entry and changed another costs a few dozen bytes.

/// The bytes of a block the base is indexed by.
const BLOCK: usize = 16;
/// The longest run one instruction copies.
const MAX_COPY: usize = 0xffff;
/// The most bytes one instruction inserts.
const MAX_INSERT: usize = 0x7f;

/// `target` as a delta against `base`; `None` when `base` is too large
/// for a delta to name an offset in it.
pub(crate) fn encode(base: &[u8], target: &[u8]) -> Option<Vec<u8>> {
    u32::try_from(base.len()).ok()?;
    let index = Index::of(base);
    let mut out = Vec::with_capacity(64);
    varint(base.len(), &mut out);
    varint(target.len(), &mut out);
    // Target bytes not yet copied or inserted start at `pending`.
    let mut pending = 0;
    let mut at = 0;
    while at + BLOCK <= target.len() {
        let Some(mut from) = index.find(base, &target[at..at + BLOCK]) else {
            at += 1;
            continue;
        };
        // Grow the match back over the pending bytes, then forward.
        while at > pending && from > 0 && base[from - 1] == target[at - 1] {
            at -= 1;
            from -= 1;
        }
        let len = base[from..]
            .iter()
            .zip(&target[at..])
            .take_while(|(a, b)| a == b)
            .count();
        insert(&target[pending..at], &mut out);
        copy(from, len, &mut out);
        at += len;
        pending = at;
    }
    insert(&target[pending..], &mut out);
    Some(out)
}

/// Where in the base each block starting at a multiple of [`BLOCK`] (and
/// the last block) is, by a hash of its bytes (a later block with the same hash replaces an
/// earlier one: a miss costs only a shorter match).
struct Index {
    slots: Vec<u32>,
    shift: u32,
}

impl Index {
    fn of(base: &[u8]) -> Index {
        let blocks = base.len() / BLOCK;
        let bits = (blocks * 2).next_power_of_two().trailing_zeros().max(4);
        let mut index = Index {
            slots: vec![u32::MAX; 1 << bits],
            shift: 64 - bits,
        };
        // The last block too, where it is not one of them: a suffix the
        // target shares is found whatever its length.
        let last = base.len().checked_sub(BLOCK).filter(|l| l % BLOCK != 0);
        for at in (0..blocks).map(|b| b * BLOCK).chain(last) {
            let slot = index.slot(&base[at..at + BLOCK]);
            index.slots[slot] = at as u32;
        }
        index
    }

    fn slot(&self, block: &[u8]) -> usize {
        let (a, b) = block.split_at(8);
        let a = u64::from_le_bytes(a.try_into().expect("8 bytes"));
        let b = u64::from_le_bytes(b.try_into().expect("8 bytes"));
        let h = (a ^ b.rotate_left(29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (h >> self.shift) as usize
    }

    /// Where `block` is in `base`, if indexed.
    fn find(&self, base: &[u8], block: &[u8]) -> Option<usize> {
        let at = self.slots[self.slot(block)];
        let at = usize::try_from(at).ok().filter(|_| at != u32::MAX)?;
        (base[at..at + BLOCK] == *block).then_some(at)
    }
}

/// A size in a delta's header: seven bits a byte, least significant
/// first.
fn varint(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Instructions inserting `bytes`.
fn insert(bytes: &[u8], out: &mut Vec<u8>) {
    for chunk in bytes.chunks(MAX_INSERT) {
        out.push(chunk.len() as u8);
        out.extend_from_slice(chunk);
    }
}

/// Instructions copying `len` bytes of the base from `offset`: each names
/// only the non-zero bytes of its offset and size.
fn copy(mut offset: usize, mut len: usize, out: &mut Vec<u8>) {
    while len > 0 {
        let size = len.min(MAX_COPY);
        let at = out.len();
        out.push(0x80);
        for (i, byte) in (offset as u32).to_le_bytes().into_iter().enumerate() {
            if byte != 0 {
                out[at] |= 1 << i;
                out.push(byte);
            }
        }
        for (i, byte) in (size as u16).to_le_bytes().into_iter().enumerate() {
            if byte != 0 {
                out[at] |= 0x10 << i;
                out.push(byte);
            }
        }
        offset += size;
        len -= size;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Applies `delta` to `base` as git does (patch-delta.c).
    fn apply(base: &[u8], delta: &[u8]) -> Vec<u8> {
        let mut d = delta.iter().copied();
        let mut size = || {
            let (mut n, mut shift) = (0usize, 0);
            loop {
                let b = d.next().unwrap();
                n |= usize::from(b & 0x7f) << shift;
                shift += 7;
                if b & 0x80 == 0 {
                    return n;
                }
            }
        };
        assert_eq!(size(), base.len());
        let want = size();
        let rest: Vec<u8> = d.collect();
        let mut i = 0;
        let mut out = Vec::new();
        while i < rest.len() {
            let cmd = rest[i];
            i += 1;
            if cmd & 0x80 != 0 {
                let (mut offset, mut len) = (0usize, 0usize);
                for bit in 0..4 {
                    if cmd & (1 << bit) != 0 {
                        offset |= usize::from(rest[i]) << (8 * bit);
                        i += 1;
                    }
                }
                for bit in 0..3 {
                    if cmd & (0x10 << bit) != 0 {
                        len |= usize::from(rest[i]) << (8 * bit);
                        i += 1;
                    }
                }
                if len == 0 {
                    len = 0x10000;
                }
                out.extend_from_slice(&base[offset..offset + len]);
            } else {
                assert!(cmd != 0, "reserved instruction");
                out.extend_from_slice(&rest[i..i + usize::from(cmd)]);
                i += usize::from(cmd);
            }
        }
        assert_eq!(out.len(), want);
        out
    }

    #[test]
    fn a_delta_rebuilds_its_target() {
        // Bytes that do not repeat, as a tree's ids.
        let mut x = 1u64;
        let base: Vec<u8> = (0..200_000)
            .map(|_| {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                (x >> 56) as u8
            })
            .collect();
        let mut cases: Vec<Vec<u8>> = vec![Vec::new(), base.clone(), b"short".to_vec()];
        // An entry changed near the start and one added at the end, as a
        // directory's tree changes when a plan is added beside its list.
        let mut two = base.clone();
        two[40] ^= 0xff;
        two.extend_from_slice(&[9; 300]);
        cases.push(two.clone());
        // Moved runs, a long insert, bytes removed.
        let mut moved = base[120_000..].to_vec();
        moved.extend_from_slice(&[1; 1000]);
        moved.extend_from_slice(&base[..90_001]);
        cases.push(moved);
        for target in &cases {
            let d = encode(&base, target).unwrap();
            assert_eq!(&apply(&base, &d), target);
        }
        // Both edits cost little.
        let n = encode(&base, &two).unwrap().len();
        assert!(n < 350, "{n}");
    }

    #[test]
    fn the_common_prefix_and_suffix_are_copied() {
        let base = b"0123456789abcdef-XYZ-0123456789ABCDEF";
        let target = b"0123456789abcdef-Q-0123456789ABCDEF";
        let d = encode(base, target).unwrap();
        // Sizes 37 and 35; copy 0..17; insert "Q"; copy 20..37.
        assert_eq!(d, vec![37, 35, 0x90, 17, 1, b'Q', 0x91, 20, 17], "{d:x?}");
    }
}
