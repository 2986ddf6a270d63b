//! Ranked search over catalog entries: BM25F-style scoring, where the id,
//! name and capabilities weigh more than the description, and the
//! description more than the documentation body. An entry whose capability
//! (or id) equals the query exactly always ranks first; in a sentence,
//! each word that is exactly one of an entry's capabilities (or its id)
//! counts above any mention, so "a redis cache for permits" finds the
//! cache before a block whose documentation mentions permits.

use std::collections::HashMap;

/// What one entry offers to search.
pub struct Doc<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    /// Capabilities (blocks) or category (skills).
    pub tags: &'a [String],
    pub body: &'a str,
}

const K1: f64 = 1.2;
const B: f64 = 0.75;
const WEIGHT_ID: f64 = 3.0;
const WEIGHT_NAME: f64 = 3.0;
const WEIGHT_TAG: f64 = 3.0;
const WEIGHT_DESCRIPTION: f64 = 2.0;
const WEIGHT_BODY: f64 = 1.0;
/// Added for an exact capability or id match, above any BM25 score.
const EXACT_BONUS: f64 = 1000.0;
/// Added per word of the query that is exactly a capability or the id.
const WORD_BONUS: f64 = 100.0;

/// An inverted index over weighted term frequencies.
#[derive(Debug, Default)]
pub struct Index {
    /// Per entry: term -> weighted frequency.
    docs: Vec<HashMap<String, f64>>,
    lengths: Vec<f64>,
    exact: Vec<Vec<String>>,
    /// Per entry: the words of its capabilities and id, as tokens.
    exact_words: Vec<Vec<String>>,
    doc_freq: HashMap<String, usize>,
    avg_len: f64,
}

impl Index {
    pub fn new<'a>(docs: impl IntoIterator<Item = Doc<'a>>) -> Self {
        let mut index = Index {
            docs: Vec::new(),
            lengths: Vec::new(),
            exact: Vec::new(),
            exact_words: Vec::new(),
            doc_freq: HashMap::new(),
            avg_len: 0.0,
        };
        for doc in docs {
            let mut tf: HashMap<String, f64> = HashMap::new();
            let mut add = |text: &str, w: f64| {
                for t in tokens(text) {
                    *tf.entry(t).or_default() += w;
                }
            };
            add(doc.id, WEIGHT_ID);
            add(doc.name, WEIGHT_NAME);
            add(doc.description, WEIGHT_DESCRIPTION);
            for tag in doc.tags {
                add(tag, WEIGHT_TAG);
            }
            add(doc.body, WEIGHT_BODY);
            for term in tf.keys() {
                *index.doc_freq.entry(term.clone()).or_default() += 1;
            }
            index.lengths.push(tf.values().sum());
            index.docs.push(tf);
            let mut exact: Vec<String> = doc.tags.iter().map(|t| t.to_lowercase()).collect();
            exact.push(doc.id.to_lowercase());
            // A one-word capability (or id) as the tokenizer sees it.
            let words = exact
                .iter()
                .filter_map(|e| match tokens(e).as_slice() {
                    [one] => Some(one.clone()),
                    _ => None,
                })
                .collect();
            index.exact.push(exact);
            index.exact_words.push(words);
        }
        let n = index.docs.len().max(1) as f64;
        index.avg_len = index.lengths.iter().sum::<f64>() / n;
        index
    }

    /// Entries matching `query` (index, score), best first; ties by index.
    pub fn search(&self, query: &str) -> Vec<(usize, f64)> {
        let terms = tokens(query);
        let whole = query.trim().to_lowercase();
        let n = self.docs.len() as f64;
        let mut hits: Vec<(usize, f64)> = self
            .docs
            .iter()
            .enumerate()
            .filter_map(|(i, tf)| {
                let mut score = 0.0;
                for term in &terms {
                    let Some(f) = tf.get(term) else { continue };
                    let df = self.doc_freq.get(term).copied().unwrap_or(0) as f64;
                    let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
                    let norm = 1.0 - B + B * self.lengths[i] / self.avg_len.max(1e-9);
                    score += idf * f * (K1 + 1.0) / (f + K1 * norm);
                }
                if self.exact[i].contains(&whole) {
                    score += EXACT_BONUS;
                }
                let mut matched: Vec<&String> = terms
                    .iter()
                    .filter(|t| self.exact_words[i].contains(t))
                    .collect();
                matched.dedup();
                score += WORD_BONUS * matched.len() as f64;
                (score > 0.0).then_some((i, score))
            })
            .collect();
        hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        hits
    }
}

/// Lowercase alphanumeric words, with a light plural stem ("databases" ->
/// "database").
fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let w = w.to_lowercase();
            match w.strip_suffix('s') {
                Some(stem) if stem.len() > 3 && !stem.ends_with('s') => stem.to_owned(),
                _ => w,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc<'a>(id: &'a str, description: &'a str, tags: &'a [String], body: &'a str) -> Doc<'a> {
        Doc {
            id,
            name: id,
            description,
            tags,
            body,
        }
    }

    #[test]
    fn exact_capability_ranks_first() {
        let db = vec!["database".to_owned()];
        let none: Vec<String> = vec![];
        // The second entry mentions "database" far more often in its body.
        let body = "database database database database";
        let index = Index::new([
            doc("minio", "object storage", &none, body),
            doc("postgresql", "relational", &db, ""),
        ]);
        let hits = index.search("database");
        assert_eq!(hits[0].0, 1);
        assert_eq!(hits[1].0, 0);
    }

    #[test]
    fn a_word_of_a_sentence_that_is_a_capability_beats_a_mention() {
        let cache = vec!["cache".to_owned(), "key-value".to_owned()];
        let web = vec!["web".to_owned()];
        let index = Index::new([
            doc(
                "webapp",
                "a web app",
                &web,
                "the permits portal keeps a cache",
            ),
            doc("redis", "in-memory store", &cache, ""),
        ]);
        let hits = index.search("a redis cache for permits");
        assert_eq!(hits[0].0, 1, "{hits:?}");
    }

    #[test]
    fn field_weights_and_no_match() {
        let none: Vec<String> = vec![];
        let index = Index::new([
            doc("a", "cache for sessions", &none, ""),
            doc("b", "", &none, "a cache is mentioned once in passing"),
        ]);
        let hits = index.search("caches");
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), [0, 1]);
        assert!(index.search("kafka").is_empty());
    }
}
