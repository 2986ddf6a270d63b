//! "Did you mean" candidates for unknown names.

/// Up to three known names close to `unknown`, nearest first.
pub fn candidates<'a>(unknown: &str, known: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let limit = (unknown.chars().count() / 3).max(2);
    let lower = unknown.to_lowercase();
    let mut scored: Vec<(usize, &str)> = known
        .into_iter()
        .filter(|k| *k != unknown)
        .filter_map(|k| {
            let d = strsim::levenshtein(&lower, &k.to_lowercase());
            let related = k.contains(unknown) || unknown.contains(k);
            (d <= limit || (related && !k.is_empty())).then_some((d, k))
        })
        .collect();
    scored.sort();
    scored.dedup();
    scored
        .into_iter()
        .take(3)
        .map(|(_, k)| k.to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_first() {
        let known = ["webapp-python", "static-site", "postgresql"];
        assert_eq!(candidates("webap-python", known), ["webapp-python"]);
        assert_eq!(candidates("postgres", known), ["postgresql"]);
        assert!(candidates("kafka", known).is_empty());
    }
}
