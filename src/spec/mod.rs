//! The spec: loading (`load` -> [`Spec`]) and validation (`validate` ->
//! [`Validated`]), with diagnostics that point at the source. Loading
//! also reads the block versions plans pin from the spec repo's git
//! history (`pins`), checked as the checkout is.

pub mod catalog;
pub mod diag;
pub mod frontmatter;
pub mod glob;
pub mod load;
pub mod model;
pub mod names;
pub mod pins;
pub mod reload;
pub mod revision;
pub mod select;
pub mod shard;
pub mod source;
pub mod suggest;
pub mod validate;
pub mod walk;
pub mod yaml;

pub use diag::{Diagnostic, Diagnostics, Severity};
pub use load::{Kind, LoadError, LoadOptions, Spec, load};
pub use pins::History;
pub use reload::{reload, reload_or_load};
pub use select::{OpenError, Opened, Pick, Selection, open, open_loaded, select};
pub use shard::Shards;
pub use validate::{Validated, validate};

/// The directories that make up the spec (`druppie.toml` and the caches
/// beside them are not spec edits).
pub const SPEC_DIRS: [&str; 4] = ["bouwblokken", "skills", "templates", "spec"];

/// The spec files (under [`SPEC_DIRS`]) edited and not committed in the
/// checkout at `root`, as `git status --porcelain` names them.
///
/// # Errors
/// git cannot run, or `root` is not a git checkout.
pub fn uncommitted(root: &std::path::Path) -> std::io::Result<Vec<String>> {
    let out = std::process::Command::new("git")
        .args(["status", "--porcelain", "--"])
        .args(SPEC_DIRS)
        .current_dir(root)
        .output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.get(3..).unwrap_or(l).to_owned())
        .collect())
}
