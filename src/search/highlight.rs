//! Where a query matches a message's text, for the client to mark.
//!
//! Ranges are in Unicode scalar values (Rust `char`s; JavaScript code
//! points, not UTF-16 units), start inclusive, end exclusive, sorted and
//! not overlapping. The text is cut with the index's own analyzer, so what
//! is marked is what matched: a whole word for a word or a prefix, the
//! span from first to last word for a phrase.

use super::query::{Part, Query};
use super::schema::analyzer;

/// The match ranges of `query` in `body`.
pub fn ranges(body: &str, query: &Query) -> Vec<[usize; 2]> {
    if query.parts.is_empty() {
        return Vec::new();
    }
    let mut analyzer = analyzer();
    let mut stream = analyzer.token_stream(body);
    let mut tokens: Vec<(String, usize, usize)> = Vec::new();
    while let Some(t) = stream.next() {
        tokens.push((t.text.clone(), t.offset_from, t.offset_to));
    }
    let mut bytes: Vec<(usize, usize)> = Vec::new();
    for (i, (text, from, to)) in tokens.iter().enumerate() {
        for part in &query.parts {
            match part {
                Part::Word(w) if w == text => bytes.push((*from, *to)),
                Part::Prefix(p) if text.starts_with(p.as_str()) => bytes.push((*from, *to)),
                Part::Phrase(words) => {
                    let run = tokens.get(i..i + words.len());
                    if run.is_some_and(|run| run.iter().zip(words).all(|(t, w)| &t.0 == w)) {
                        bytes.push((*from, tokens[i + words.len() - 1].2));
                    }
                }
                _ => {}
            }
        }
    }
    bytes.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(bytes.len());
    for (from, to) in bytes {
        match merged.last_mut() {
            Some(last) if from <= last.1 => last.1 = last.1.max(to),
            _ => merged.push((from, to)),
        }
    }
    merged
        .into_iter()
        .map(|(from, to)| [char_index(body, from), char_index(body, to)])
        .collect()
}

/// The char index of byte offset `at` (a char boundary, as the tokenizer
/// gives them).
fn char_index(body: &str, at: usize) -> usize {
    body.get(..at).map_or(0, |s| s.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marked(body: &str, q: &str) -> Vec<String> {
        let chars: Vec<char> = body.chars().collect();
        ranges(body, &Query::parse(q).unwrap())
            .into_iter()
            .map(|[a, b]| chars[a..b].iter().collect())
            .collect()
    }

    #[test]
    fn ranges_count_characters_not_bytes() {
        let body = "Ünïcode café: the CAFÉ ünïcode";
        assert_eq!(
            ranges(body, &Query::parse("café").unwrap()),
            vec![[8, 12], [18, 22]]
        );
        assert_eq!(marked(body, "cafe"), vec!["café", "CAFÉ"]);
        assert_eq!(marked(body, "unic*"), vec!["Ünïcode", "ünïcode"]);
    }

    #[test]
    fn a_phrase_is_marked_only_where_its_words_follow_each_other() {
        assert_eq!(
            marked("big cat, cat big, big  cat", "\"big cat\""),
            vec!["big cat", "big  cat"]
        );
        assert!(marked("big dog", "\"big cat\"").is_empty());
        assert!(marked("anything", "from:ann").is_empty());
    }
}
