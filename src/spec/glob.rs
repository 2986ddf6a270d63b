//! Path globs for ownership rules: `*` and `?` stay within one path
//! segment, `**` spans segments; everything else is literal.

use regex::Regex;

use crate::spec::model::{Ownership, OwnershipMode};

/// A compiled path glob.
#[derive(Debug, Clone)]
pub struct Glob(Regex);

impl Glob {
    pub fn new(pattern: &str) -> Glob {
        let mut re = String::from("^");
        let mut chars = pattern.chars().peekable();
        while let Some(ch) = chars.next() {
            match ch {
                '*' if chars.peek() == Some(&'*') => {
                    chars.next();
                    if chars.peek() == Some(&'/') {
                        chars.next();
                        re.push_str("(?:.*/)?");
                    } else {
                        re.push_str(".*");
                    }
                }
                '*' => re.push_str("[^/]*"),
                '?' => re.push_str("[^/]"),
                c => re.push_str(&regex::escape(&c.to_string())),
            }
        }
        re.push('$');
        Glob(Regex::new(&re).expect("an escaped glob is a valid regex"))
    }

    pub fn matches(&self, path: &str) -> bool {
        self.0.is_match(path)
    }
}

/// The mode of a template file, given as `<part>/<path below the part>`:
/// the last matching `paths` rule, else the part's default (`project/`
/// seeded, `infra/` managed) or the block's setting for the part. A rule
/// matches the path as written or with its `.j2` suffix removed.
pub fn ownership_of(ownership: Option<&Ownership>, path: &str) -> OwnershipMode {
    let project = path.starts_with("project/");
    let default = match (ownership, project) {
        (
            Some(Ownership {
                project: Some(m), ..
            }),
            true,
        ) => *m,
        (Some(Ownership { infra: Some(m), .. }), false) => *m,
        (_, true) => OwnershipMode::Seeded,
        (_, false) => OwnershipMode::Managed,
    };
    let stripped = path.strip_suffix(".j2").unwrap_or(path);
    ownership
        .into_iter()
        .flat_map(|o| o.paths.iter())
        .filter(|(glob, _)| {
            let g = Glob::new(&glob.value);
            g.matches(path) || g.matches(stripped)
        })
        .last()
        .map_or(default, |(_, mode)| *mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_stays_in_a_segment_and_double_star_crosses() {
        let g = Glob::new("project/.github/workflows/*");
        assert!(g.matches("project/.github/workflows/ci.yaml"));
        assert!(!g.matches("project/.github/workflows/sub/ci.yaml"));
        let g = Glob::new("infra/**/*.yaml");
        assert!(g.matches("infra/a.yaml"));
        assert!(g.matches("infra/x/y/a.yaml"));
        assert!(!g.matches("infra/a.yml"));
        assert!(Glob::new("project/a?.txt").matches("project/ab.txt"));
        assert!(!Glob::new("project/a.txt").matches("project/abtxt"));
    }

    #[test]
    fn modes_follow_part_defaults_block_settings_and_the_last_rule() {
        assert_eq!(
            ownership_of(None, "project/README.md.j2"),
            OwnershipMode::Seeded
        );
        assert_eq!(
            ownership_of(None, "infra/deploy.yaml.j2"),
            OwnershipMode::Managed
        );
        let o: Ownership = serde_saphyr::from_str(
            "infra: seeded\npaths:\n  \"project/**\": managed\n  \"project/README.md\": seeded\n",
        )
        .unwrap();
        assert_eq!(
            ownership_of(Some(&o), "infra/x.yaml"),
            OwnershipMode::Seeded
        );
        assert_eq!(
            ownership_of(Some(&o), "project/src/app.py"),
            OwnershipMode::Managed
        );
        assert_eq!(
            ownership_of(Some(&o), "project/README.md.j2"),
            OwnershipMode::Seeded
        );
    }
}
