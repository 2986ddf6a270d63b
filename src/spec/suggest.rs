//! "Did you mean" candidates for unknown names.

/// Up to three known names close to `unknown`, nearest first.
pub fn candidates<'a>(unknown: &str, known: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let limit = (unknown.chars().count() / 3).max(2);
    let lower = unknown.to_lowercase();
    let mut scored: Vec<(usize, &str)> = known
        .into_iter()
        .filter(|k| *k != unknown)
        .filter_map(|k| {
            let d = distance(&lower, &k.to_lowercase());
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

/// Levenshtein distance over characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
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

    #[test]
    fn distance_counts_edits() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
    }
}
