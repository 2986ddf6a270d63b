//! Writing objects as one pack and its index (version 2 of both, as `git
//! index-pack` writes them) into a repository's `objects/pack`, instead
//! of one file per object. An object may name an earlier object of the
//! same pack as its delta base: it is then stored as a git delta against
//! it, when that is much smaller; a tree that gained one entry, or a list
//! that gained one line, costs a few dozen bytes instead of its whole
//! size.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use gix::odb::pack::data::entry::Header;
use gix::zlib::stream::deflate::{Compress, FlushCompress};

use super::{Error, ObjectId, err};

/// One object to pack.
pub(crate) struct Object<'a> {
    pub id: ObjectId,
    pub kind: gix::objs::Kind,
    pub data: &'a [u8],
    /// An earlier object of the same pack (its index) this one is likely
    /// to share most of its bytes with: its previous version.
    pub base: Option<usize>,
}

/// A pack written: its files.
#[derive(Debug)]
pub(crate) struct Written {
    pub pack: PathBuf,
    pub index: PathBuf,
}

/// A delta is stored only when it is at most this fraction of the
/// object's size (1/DELTA_WORTH): otherwise the object is stored whole,
/// and reading it needs no base.
const DELTA_WORTH: usize = 2;

/// How objects are compressed: for speed rather than size, as git
/// compresses the objects it writes one file each
/// (`core.looseCompression`); a pack written here is pushed as it is.
const COMPRESSION: gix::zlib::Compression = gix::zlib::Compression::BEST_SPEED;

/// Writes `objects` as one pack and its index into `dir` (a repository's
/// `objects/pack`), the pack first, each under a temporary name and then
/// renamed, so a reader never sees an index without its pack.
///
/// # Errors
/// An object names a base that does not come before it, or a file
/// cannot be written.
pub(crate) fn write(dir: &Path, objects: &[Object<'_>]) -> Result<Written, Error> {
    if let Some((i, _)) = objects
        .iter()
        .enumerate()
        .find(|(i, o)| o.base.is_some_and(|b| b >= *i))
    {
        return Err(Error::new(format!(
            "pack entry {i} names a delta base that does not come before it"
        )));
    }
    // Deltas and compression, on every core; offsets in order after.
    let compressor = || Compress::new(COMPRESSION);
    let bodies = crate::par::map_init(objects, None, compressor, |c, o| body(c, objects, o));
    let count =
        u32::try_from(objects.len()).map_err(|_| Error::new("too many objects for one pack"))?;
    let mut pack =
        Vec::with_capacity(12 + bodies.iter().map(|b| b.compressed.len() + 8).sum::<usize>());
    pack.extend_from_slice(b"PACK");
    pack.extend_from_slice(&2u32.to_be_bytes());
    pack.extend_from_slice(&count.to_be_bytes());
    let mut entries = Vec::with_capacity(objects.len());
    let mut offsets = Vec::with_capacity(objects.len());
    for (o, b) in objects.iter().zip(&bodies) {
        let offset = pack.len() as u64;
        let header = match b.delta_of {
            Some(base) => Header::OfsDelta {
                base_distance: offset - offsets[base],
            },
            None => match o.kind {
                gix::objs::Kind::Blob => Header::Blob,
                gix::objs::Kind::Tree => Header::Tree,
                gix::objs::Kind::Commit => Header::Commit,
                gix::objs::Kind::Tag => Header::Tag,
            },
        };
        header
            .write_to(b.size as u64, &mut pack)
            .expect("writing to memory");
        pack.extend_from_slice(&b.compressed);
        let crc = crc32fast::hash(&pack[offset as usize..]);
        offsets.push(offset);
        entries.push((o.id, crc, offset));
    }
    let checksum = sha1(&pack);
    pack.extend_from_slice(checksum.as_slice());
    let index = index(&mut entries, checksum);
    let name = format!("pack-{checksum}");
    let written = Written {
        pack: dir.join(format!("{name}.pack")),
        index: dir.join(format!("{name}.idx")),
    };
    persist(dir, &pack, &written.pack)?;
    persist(dir, &index, &written.index)?;
    Ok(written)
}

/// An entry's bytes after its header: the object or its delta,
/// compressed, and the size before compression.
struct Body {
    delta_of: Option<usize>,
    size: usize,
    compressed: Vec<u8>,
}

fn body(compressor: &mut Compress, objects: &[Object<'_>], o: &Object<'_>) -> Body {
    let delta = o
        .base
        .and_then(|b| super::delta::encode(objects[b].data, o.data).map(|d| (b, d)))
        .filter(|(_, d)| d.len() * DELTA_WORTH <= o.data.len());
    let (delta_of, bytes) = match &delta {
        Some((b, d)) => (Some(*b), d.as_slice()),
        None => (None, o.data),
    };
    Body {
        delta_of,
        size: bytes.len(),
        compressed: compress(compressor, bytes),
    }
}

/// `bytes` as a zlib stream, through a compressor that is reset for
/// each object rather than made anew (which costs more than compressing
/// a small object).
fn compress(compressor: &mut Compress, bytes: &[u8]) -> Vec<u8> {
    compressor.reset();
    let start = compressor.total_in();
    // Room for incompressible bytes: stored blocks add a few bytes each.
    let mut out = vec![0; bytes.len() + bytes.len() / 1000 + 64];
    let mut used = 0;
    loop {
        let read = (compressor.total_in() - start) as usize;
        let before = compressor.total_out();
        let status = compressor
            .compress(&bytes[read..], &mut out[used..], FlushCompress::Finish)
            .expect("compressing into memory");
        used += (compressor.total_out() - before) as usize;
        if status == gix::zlib::Status::StreamEnd {
            out.truncate(used);
            return out;
        }
        out.resize(out.len() * 2, 0);
    }
}

/// A pack index, version 2, of `entries` (id, CRC-32 of the packed
/// entry, offset): sorted ids with a fan-out table, their CRCs and
/// offsets (past 2 GiB in a table of 64-bit ones), the pack's checksum
/// and the index's own.
fn index(entries: &mut [(ObjectId, u32, u64)], pack: ObjectId) -> Vec<u8> {
    entries.sort_unstable_by_key(|e| e.0);
    let mut out = Vec::with_capacity(8 + 256 * 4 + entries.len() * 28 + 40);
    out.extend_from_slice(b"\xfftOc");
    out.extend_from_slice(&2u32.to_be_bytes());
    let mut fanout = [0u32; 256];
    for (id, _, _) in entries.iter() {
        fanout[usize::from(id.as_slice()[0])] += 1;
    }
    let mut total = 0;
    for n in fanout {
        total += n;
        out.extend_from_slice(&total.to_be_bytes());
    }
    for (id, _, _) in entries.iter() {
        out.extend_from_slice(id.as_slice());
    }
    for (_, crc, _) in entries.iter() {
        out.extend_from_slice(&crc.to_be_bytes());
    }
    let mut large = Vec::new();
    for (_, _, offset) in entries.iter() {
        let small = match u32::try_from(*offset) {
            Ok(o) if o < 0x8000_0000 => o,
            _ => {
                large.push(*offset);
                0x8000_0000 | (large.len() as u32 - 1)
            }
        };
        out.extend_from_slice(&small.to_be_bytes());
    }
    for offset in large {
        out.extend_from_slice(&offset.to_be_bytes());
    }
    out.extend_from_slice(pack.as_slice());
    let own = sha1(&out);
    out.extend_from_slice(own.as_slice());
    out
}

fn sha1(bytes: &[u8]) -> ObjectId {
    let mut hasher = gix::hash::hasher(gix::hash::Kind::Sha1);
    hasher.update(bytes);
    hasher.try_finalize().expect("SHA-1 of bytes in memory")
}

/// Writes `bytes` to a temporary file in `dir`, then renames it to `to`.
fn persist(dir: &Path, bytes: &[u8], to: &Path) -> Result<(), Error> {
    let what = || format!("cannot write {}", to.display());
    let mut file = tempfile::Builder::new()
        .prefix("tmp_pack_")
        .tempfile_in(dir)
        .map_err(|e| err(what(), e))?;
    file.write_all(bytes).map_err(|e| err(what(), e))?;
    // Read-only, as git leaves its packs.
    std::fs::set_permissions(
        file.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o444),
    )
    .map_err(|e| err(what(), e))?;
    file.persist(to).map_err(|e| err(what(), e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    fn id(kind: gix::objs::Kind, data: &[u8]) -> ObjectId {
        gix::objs::compute_hash(gix::hash::Kind::Sha1, kind, data).unwrap()
    }

    /// A list growing by a line a version, each version a delta of the
    /// one before, and a version that shares nothing with its base.
    fn versions() -> Vec<(ObjectId, Vec<u8>, Option<usize>)> {
        let mut out: Vec<(ObjectId, Vec<u8>, Option<usize>)> = Vec::new();
        let mut text = String::from("resources:\n");
        for i in 0..20 {
            text.push_str(&format!("  - ./base-{i:03}\n"));
        }
        for i in 0..40 {
            // Inserted in the middle: a prefix and a suffix to copy.
            let at = text[..text.len() / 2].rfind('\n').map_or(0, |p| p + 1);
            text.insert_str(at, &format!("  - ./plan-{i:03}\n"));
            let bytes = text.clone().into_bytes();
            let base = out.len().checked_sub(1);
            out.push((id(gix::objs::Kind::Blob, &bytes), bytes, base));
        }
        // Large enough for copies past 64 KiB and long inserts.
        let mut big: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        out.push((id(gix::objs::Kind::Blob, &big), big.clone(), None));
        big.splice(100_000..100_000, vec![7u8; 300]);
        let base = out.len() - 1;
        out.push((id(gix::objs::Kind::Blob, &big), big, Some(base)));
        // Bytes zlib cannot make smaller.
        let mut x = 1u64;
        let noise: Vec<u8> = (0..100_000)
            .map(|_| {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                (x >> 56) as u8
            })
            .collect();
        out.push((id(gix::objs::Kind::Blob, &noise), noise, None));
        let other = b"nothing in common".to_vec();
        out.push((id(gix::objs::Kind::Blob, &other), other, Some(0)));
        out
    }

    #[test]
    fn git_reads_every_object_and_indexes_the_pack_as_written() {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "-q", "--bare", "r.git"]);
        let repo = dir.path().join("r.git");
        let objects = versions();
        let list: Vec<Object<'_>> = objects
            .iter()
            .map(|(id, data, base)| Object {
                id: *id,
                kind: gix::objs::Kind::Blob,
                data,
                base: *base,
            })
            .collect();
        let written = write(&repo.join("objects/pack"), &list).unwrap();

        // git's own index of the pack is byte for byte the one written.
        let ours = std::fs::read(&written.index).unwrap();
        let theirs = dir.path().join("theirs.idx");
        git(
            dir.path(),
            &[
                "index-pack",
                "-o",
                theirs.to_str().unwrap(),
                written.pack.to_str().unwrap(),
            ],
        );
        assert_eq!(ours, std::fs::read(&theirs).unwrap());
        let verified = git(
            &repo,
            &["verify-pack", "-v", written.index.to_str().unwrap()],
        );
        // The growing list is stored as deltas, chained; the unrelated
        // blob whole.
        let chained = verified
            .lines()
            .find(|l| l.starts_with("chain length = 39:"));
        assert!(chained.is_some(), "{verified}");
        let whole = verified
            .lines()
            .find(|l| l.starts_with(&objects[43].0.to_string()))
            .unwrap();
        assert_eq!(whole.split_whitespace().count(), 5, "{whole}");
        for (id, data, _) in &objects {
            let out = Command::new("git")
                .args(["cat-file", "blob", &id.to_string()])
                .current_dir(&repo)
                .output()
                .unwrap();
            assert!(out.status.success());
            assert_eq!(&out.stdout, data, "{id}");
        }
        git(&repo, &["fsck", "--strict", "--no-dangling"]);
    }

    #[test]
    fn a_base_after_its_delta_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = Object {
            id: id(gix::objs::Kind::Blob, b"a"),
            kind: gix::objs::Kind::Blob,
            data: b"a",
            base: Some(0),
        };
        assert!(write(dir.path(), &[a]).is_err());
    }
}
