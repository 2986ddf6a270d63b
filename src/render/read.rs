//! Reading a block's template files: from the spec checkout through the
//! spec's checked walk, or from a pinned block's files read from history
//! when the spec was loaded.

use std::io::Read as _;
use std::path::Path;

use super::tree::Loading;
use crate::spec::diag::{Diagnostic, Location};
use crate::spec::model::Pinned;

/// A template file larger than this is not read.
const MAX_TEMPLATE_BYTES: u64 = 1024 * 1024;

/// The files of `templates/_partials/`: (path below it, bytes).
pub type Partials = Vec<(String, Vec<u8>)>;

/// Where a block's templates are read from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// The spec checkout at this root, through the spec's checked walk.
    Disk(&'a Path),
    /// A block a plan pins, read from the spec repo's history at load.
    Pinned(&'a Pinned),
}

impl Source<'_> {
    /// How its files are named in errors: `templates/…` in the checkout,
    /// `<commit>:templates/…` (git's notation) in history.
    pub(super) fn shown(&self, rel: &str) -> String {
        format!("{}templates/{rel}", self.prefix())
    }

    /// `""`, or `<commit>:` in history.
    pub(super) fn prefix(&self) -> String {
        match self {
            Source::Disk(_) => String::new(),
            Source::Pinned(p) => format!("{}:", &p.commit[..12]),
        }
    }
}

/// Files under `templates/<dir>`, as (path below it, bytes), in walk
/// order; listed by the spec's checked walk, so a symbolic link at any
/// level, a name that is not UTF-8 or a special file is an error.
pub(super) fn walk(
    source: Source<'_>,
    dir: &str,
    loading: &mut Loading<'_>,
) -> Result<Vec<(String, Vec<u8>)>, Box<Diagnostic>> {
    let root = match source {
        Source::Disk(root) => root,
        Source::Pinned(pinned) => {
            // Read, listed and checked when the spec was loaded.
            let prefix = format!("{dir}/");
            let mut out = Vec::new();
            for (path, bytes) in &pinned.files {
                if let Some(rel) = path.strip_prefix(&prefix) {
                    loading.hold(bytes.len(), &source.shown(path))?;
                    out.push((rel.to_owned(), bytes.clone()));
                }
            }
            return Ok(out);
        }
    };
    let base = format!("templates/{dir}");
    let mut unbounded = usize::MAX;
    let found = crate::spec::walk::walk(root, &base, &mut unbounded)
        .map_err(|e| Box::new(Diagnostic::error(e.to_string(), Location::file(&base))))?
        .into_result()
        .map_err(|refused| Box::new(refused.diagnostic()))?;
    let mut out = Vec::with_capacity(found.len());
    for file in found {
        let shown = || Location::file(&file.rel);
        let cannot = |e: std::io::Error| {
            Box::new(Diagnostic::error(
                format!("cannot read template: {e}"),
                shown(),
            ))
        };
        // Measured on the open file: what is held is what is read.
        let opened = std::fs::File::open(&file.disk).map_err(cannot)?;
        let len = opened.metadata().map_err(cannot)?.len();
        if len > MAX_TEMPLATE_BYTES {
            return Err(Box::new(Diagnostic::error(
                "template file is larger than 1 MiB",
                shown(),
            )));
        }
        let len = usize::try_from(len).expect("at most 1 MiB");
        loading.hold(len, &file.rel)?;
        let mut bytes = Vec::with_capacity(len + 1);
        opened
            .take(MAX_TEMPLATE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(cannot)?;
        if bytes.len() > len {
            // It grew while being read.
            return Err(Box::new(Diagnostic::error(
                "template file changed while it was read",
                shown(),
            )));
        }
        let rel = file.rel[base.len() + 1..].to_owned();
        out.push((rel, bytes));
    }
    Ok(out)
}
