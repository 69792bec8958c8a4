//! The search language, parsed and bounded before anything runs.
//!
//! `q` is words, `"phrases"` and prefixes (`foo*`), plus the filters
//! `from:USERNAME` and `in:ROOM` (`in:"a room name"` with spaces); every
//! part must match (AND). Words go through the index's [`analyzer`], so a
//! word the analyzer splits (`e-mail`) becomes a phrase. The limits keep
//! one query's work bounded: its length, its number of parts, the words in
//! a phrase, and (at search time) the words one prefix may stand for.

use std::fmt;

use base64::Engine;

use super::schema::analyzer;

/// Longest `q`, in characters.
pub const MAX_QUERY_CHARS: usize = 256;
/// Most words, phrases and prefixes in one query.
pub const MAX_PARTS: usize = 16;
/// Most words in one phrase.
pub const MAX_PHRASE_WORDS: usize = 8;
/// Most indexed words one prefix stands for (the first in alphabetical
/// order); a longer prefix narrows it.
pub const MAX_PREFIX_WORDS: usize = 64;

/// A parsed query: what must match, and the filters as written.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Query {
    pub parts: Vec<Part>,
    /// `from:` — a username.
    pub from: Option<String>,
    /// `in:` — a room name.
    pub room_name: Option<String>,
}

/// One thing every result contains, in the analyzer's normalized words.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Word(String),
    /// Two or more words in this order, next to each other.
    Phrase(Vec<String>),
    /// Any word starting with this.
    Prefix(String),
}

/// Why a query was refused; each names what to change.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    #[error("q must be 1 to {MAX_QUERY_CHARS} characters.")]
    Length,
    #[error("q has nothing to search for: give a word, a \"phrase\", a prefix* or from:/in:.")]
    Nothing,
    #[error("A phrase is missing its closing quote.")]
    OpenQuote,
    #[error("{0} needs a value, as in from:ann or in:general.")]
    EmptyFilter(&'static str),
    #[error("Give {0} at most once.")]
    RepeatedFilter(&'static str),
    #[error("A prefix needs letters or digits before the *.")]
    EmptyPrefix,
    #[error("A query may have at most {MAX_PARTS} words, phrases and prefixes.")]
    TooManyParts,
    #[error("A phrase may have at most {MAX_PHRASE_WORDS} words.")]
    LongPhrase,
}

impl Query {
    /// Parses `q` (already percent-decoded).
    pub fn parse(q: &str) -> Result<Query, QueryError> {
        let chars = q.chars().count();
        if chars == 0 || chars > MAX_QUERY_CHARS {
            return Err(QueryError::Length);
        }
        let mut query = Query::default();
        let mut rest = q.trim_start();
        while !rest.is_empty() {
            let (piece, after) = next_piece(rest)?;
            rest = after.trim_start();
            match piece {
                Piece::Phrase(text) => query.add_words(text, false)?,
                Piece::Filter(name, value) => {
                    let slot = if name == "from:" {
                        &mut query.from
                    } else {
                        &mut query.room_name
                    };
                    if value.is_empty() {
                        return Err(QueryError::EmptyFilter(name));
                    }
                    if slot.replace(value.to_string()).is_some() {
                        return Err(QueryError::RepeatedFilter(name));
                    }
                }
                Piece::Word(word) => match word.strip_suffix('*') {
                    Some(stem) => query.add_words(stem, true)?,
                    None => query.add_words(word, false)?,
                },
            }
        }
        if query.parts.is_empty() && query.from.is_none() && query.room_name.is_none() {
            return Err(QueryError::Nothing);
        }
        Ok(query)
    }

    /// Adds the words of `text`: one word, or a phrase of several; as a
    /// prefix, the last word is one.
    fn add_words(&mut self, text: &str, prefix: bool) -> Result<(), QueryError> {
        let mut words = words(text);
        let part = match (prefix, words.len()) {
            (true, 0) => return Err(QueryError::EmptyPrefix),
            (false, 0) => return Ok(()),
            (true, _) => {
                let last = words.pop().unwrap_or_default();
                if !words.is_empty() {
                    self.push(phrase_or_word(words)?)?;
                }
                Part::Prefix(last)
            }
            (false, _) => phrase_or_word(words)?,
        };
        self.push(part)
    }

    fn push(&mut self, part: Part) -> Result<(), QueryError> {
        if self.parts.len() == MAX_PARTS {
            return Err(QueryError::TooManyParts);
        }
        self.parts.push(part);
        Ok(())
    }
}

fn phrase_or_word(mut words: Vec<String>) -> Result<Part, QueryError> {
    if words.len() > MAX_PHRASE_WORDS {
        return Err(QueryError::LongPhrase);
    }
    Ok(if words.len() == 1 {
        Part::Word(words.remove(0))
    } else {
        Part::Phrase(words)
    })
}

/// The normalized words of `text`, as the index has them.
pub fn words(text: &str) -> Vec<String> {
    let mut analyzer = analyzer();
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while let Some(token) = stream.next() {
        out.push(token.text.clone());
    }
    out
}

enum Piece<'q> {
    Word(&'q str),
    Phrase(&'q str),
    Filter(&'static str, &'q str),
}

/// The next piece of `q` (which starts with no whitespace) and the rest.
fn next_piece(q: &str) -> Result<(Piece<'_>, &str), QueryError> {
    if let Some(inner) = q.strip_prefix('"') {
        let (text, rest) = quoted(inner)?;
        return Ok((Piece::Phrase(text), rest));
    }
    for name in ["from:", "in:"] {
        let Some(head) = q.get(..name.len()) else {
            continue;
        };
        if head.eq_ignore_ascii_case(name) {
            let value = &q[name.len()..];
            let (text, rest) = match value.strip_prefix('"') {
                Some(inner) => quoted(inner)?,
                None => split_word(value),
            };
            return Ok((Piece::Filter(name, text.trim()), rest));
        }
    }
    let (word, rest) = split_word(q);
    Ok((Piece::Word(word), rest))
}

fn quoted(inner: &str) -> Result<(&str, &str), QueryError> {
    let end = inner.find('"').ok_or(QueryError::OpenQuote)?;
    Ok((&inner[..end], &inner[end + 1..]))
}

fn split_word(q: &str) -> (&str, &str) {
    let end = q.find(char::is_whitespace).unwrap_or(q.len());
    (&q[..end], &q[end..])
}

/// Which results come first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Best match first (BM25), then newest.
    Relevance,
    /// Newest first.
    Recent,
}

/// Where the previous page ended: the sort key of its last result. The
/// next page is what ranks after it, so pages never repeat a message while
/// the index stands still.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cursor {
    pub order: Order,
    pub score: f32,
    pub at: u64,
    pub room_lo: u64,
    pub seq: u64,
}

/// A cursor that this server did not make, or made for the other order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the cursor is not one this search returned")]
pub struct BadCursor;

impl Cursor {
    /// Opaque to clients: base64url of `v1.ORDER.SCORE.AT.ROOM.SEQ`.
    pub fn encode(&self) -> String {
        let order = match self.order {
            Order::Relevance => 'r',
            Order::Recent => 't',
        };
        let text = format!(
            "v1.{order}.{:08x}.{}.{:x}.{}",
            self.score.to_bits(),
            self.at,
            self.room_lo,
            self.seq
        );
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
    }

    pub fn decode(text: &str, order: Order) -> Result<Cursor, BadCursor> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| BadCursor)?;
        let text = String::from_utf8(bytes).map_err(|_| BadCursor)?;
        let fields: Vec<&str> = text.split('.').collect();
        let [v, o, score, at, room_lo, seq] = fields.as_slice() else {
            return Err(BadCursor);
        };
        let found = match *o {
            "r" => Order::Relevance,
            "t" => Order::Recent,
            _ => return Err(BadCursor),
        };
        if *v != "v1" || found != order {
            return Err(BadCursor);
        }
        let score = f32::from_bits(u32::from_str_radix(score, 16).map_err(|_| BadCursor)?);
        if !score.is_finite() {
            return Err(BadCursor);
        }
        Ok(Cursor {
            order,
            score,
            at: at.parse().map_err(|_| BadCursor)?,
            room_lo: u64::from_str_radix(room_lo, 16).map_err(|_| BadCursor)?,
            seq: seq.parse().map_err(|_| BadCursor)?,
        })
    }
}

impl fmt::Display for Order {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Order::Relevance => "relevance",
            Order::Recent => "recent",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Part {
        Part::Word(s.into())
    }

    #[test]
    fn words_phrases_prefixes_and_filters() {
        let q = Query::parse(r#"Hello "big  Café" wor* from:ann in:"the lounge""#).unwrap();
        assert_eq!(
            q.parts,
            vec![
                w("hello"),
                Part::Phrase(vec!["big".into(), "cafe".into()]),
                Part::Prefix("wor".into())
            ]
        );
        assert_eq!(q.from.as_deref(), Some("ann"));
        assert_eq!(q.room_name.as_deref(), Some("the lounge"));
        assert_eq!(
            Query::parse("e-mail").unwrap().parts,
            vec![Part::Phrase(vec!["e".into(), "mail".into()])]
        );
        assert_eq!(
            Query::parse("IN:general").unwrap().room_name.as_deref(),
            Some("general")
        );
    }

    #[test]
    fn bad_queries_are_refused_with_a_reason() {
        assert_eq!(Query::parse(""), Err(QueryError::Length));
        assert_eq!(Query::parse(&"a".repeat(257)), Err(QueryError::Length));
        assert_eq!(Query::parse("   "), Err(QueryError::Nothing));
        assert_eq!(Query::parse("?!"), Err(QueryError::Nothing));
        assert_eq!(Query::parse("\"open"), Err(QueryError::OpenQuote));
        assert_eq!(Query::parse("from:"), Err(QueryError::EmptyFilter("from:")));
        assert_eq!(
            Query::parse("in:a in:b"),
            Err(QueryError::RepeatedFilter("in:"))
        );
        assert_eq!(Query::parse("*"), Err(QueryError::EmptyPrefix));
        assert_eq!(
            Query::parse(&"a ".repeat(17)),
            Err(QueryError::TooManyParts)
        );
        assert_eq!(
            Query::parse("\"a b c d e f g h i\""),
            Err(QueryError::LongPhrase)
        );
    }

    #[test]
    fn a_cursor_round_trips_and_refuses_anything_else() {
        let c = Cursor {
            order: Order::Relevance,
            score: 1.25,
            at: 1_700_000_000_000,
            room_lo: u64::MAX,
            seq: 42,
        };
        assert_eq!(Cursor::decode(&c.encode(), Order::Relevance), Ok(c));
        assert_eq!(Cursor::decode(&c.encode(), Order::Recent), Err(BadCursor));
        assert_eq!(Cursor::decode("nonsense", Order::Relevance), Err(BadCursor));
        assert_eq!(Cursor::decode("", Order::Relevance), Err(BadCursor));
    }
}
