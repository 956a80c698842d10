//! WHOOP's collection paging: `limit`, `start`, `end`, `nextToken` in, newest-first
//! `{"records", "next_token"}` out. The token is a position key (start time + id of the last
//! record served), not an offset, so records that appear while a client pages do not shift its
//! pages; it also remembers the `start`/`end` it was issued for, because WHOOP requires the
//! follow-up requests to repeat them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize, Serializer};

use crate::store::Store;
use crate::time::{parse_query_instant, Ts};

pub const DEFAULT_LIMIT: usize = 10;
pub const MAX_LIMIT: usize = 25;

/// Sort position: start time, then id as a tie-breaker. Pages run from high to low.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Key {
    pub ms: i64,
    /// The id as a number: a cycle's id, or a UUID's 128 bits, whose order is the order of
    /// its text (so pages are as they were when this was the id's text, without making a
    /// string per record per page).
    pub tie: u128,
}

/// Where a record sits for filtering (`lo`..=`hi`, in ms) and ordering.
pub struct Placement {
    pub key: Key,
    pub lo: i64,
    pub hi: i64,
}

pub trait Listable: Serialize {
    /// `None` hides the record (e.g. a recovery whose sleep is gone).
    fn placement(&self, store: &Store, now: Ts) -> Option<Placement>;
}

#[derive(Debug)]
pub struct ListQuery {
    pub limit: usize,
    pub start: Option<Ts>,
    pub end: Option<Ts>,
    pub after: Option<Key>,
    /// When the `nextToken` was issued (simulated ms) and in which paging generation, so an
    /// expired one can be refused.
    pub token_issued: Option<(i64, u64)>,
}

#[derive(Serialize, Deserialize)]
struct Cursor {
    c: String,
    k: Key,
    s: Option<i64>,
    e: Option<i64>,
    /// Issued at (simulated ms); tokens from before this field existed read as issued at 0.
    #[serde(default)]
    t: i64,
    /// Paging generation it was issued in (`/_sim/expire-paging-tokens` moves it on).
    #[serde(default)]
    g: u64,
}

/// Reads the query string of a collection request. Errors are the 400 message.
pub fn parse_list_query(raw: Option<&str>, collection: &str) -> Result<ListQuery, String> {
    let mut limit = None;
    let mut start = None;
    let mut end = None;
    let mut token = None;
    for (name, value) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        // The first occurrence wins, like most servers' query parsers.
        match name.as_ref() {
            "limit" if limit.is_none() => limit = Some(value.into_owned()),
            "start" if start.is_none() => start = Some(value.into_owned()),
            "end" if end.is_none() => end = Some(value.into_owned()),
            "nextToken" if token.is_none() => token = Some(value.into_owned()),
            _ => {}
        }
    }
    let limit = match limit {
        None => DEFAULT_LIMIT,
        Some(raw) => match raw.trim().parse::<i64>() {
            Ok(n) if n >= 1 => (n as u64).min(MAX_LIMIT as u64) as usize,
            _ => {
                return Err(format!(
                    "invalid limit {raw:?}: expected an integer from 1 to 25"
                ))
            }
        },
    };
    let parse_time = |name: &str, raw: Option<String>| -> Result<Option<Ts>, String> {
        match raw {
            None => Ok(None),
            Some(raw) => parse_query_instant(&raw)
                .map(Some)
                .ok_or_else(|| format!("invalid {name} {raw:?}: expected an ISO-8601 date-time")),
        }
    };
    let start = parse_time("start", start)?;
    let end = parse_time("end", end)?;
    let mut token_issued = None;
    let after = match token.filter(|t| !t.is_empty()) {
        None => None,
        Some(token) => {
            let cursor = decode_cursor(&token).ok_or("invalid nextToken")?;
            if cursor.c != collection {
                return Err("nextToken was issued for another collection".into());
            }
            if cursor.s != start.map(Ts::millis) || cursor.e != end.map(Ts::millis) {
                return Err(
                    "nextToken must be sent with the same start and end as the request that returned it"
                        .into(),
                );
            }
            token_issued = Some((cursor.t, cursor.g));
            Some(cursor.k)
        }
    };
    Ok(ListQuery {
        limit,
        start,
        end,
        after,
        token_issued,
    })
}

fn decode_cursor(token: &str) -> Option<Cursor> {
    let bytes = URL_SAFE_NO_PAD.decode(token.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub fn encode_cursor(
    collection: &str,
    key: Key,
    q: &ListQuery,
    issued: Ts,
    generation: u64,
) -> String {
    let cursor = Cursor {
        c: collection.to_string(),
        k: key,
        s: q.start.map(Ts::millis),
        e: q.end.map(Ts::millis),
        t: issued.millis(),
        g: generation,
    };
    // Serializing a struct of strings and integers cannot fail.
    let json = serde_json::to_vec(&cursor).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// The records of one page, newest first, and the key to continue from if more remain.
pub fn select<'a, T: Listable + 'a>(
    items: impl Iterator<Item = &'a T>,
    store: &Store,
    now: Ts,
    q: &ListQuery,
) -> (Vec<&'a T>, Option<Key>) {
    let lower = q.start.map(Ts::millis);
    let upper = q.end.unwrap_or(now).millis();
    let mut matching: Vec<(Key, &T)> = items
        .filter_map(|item| {
            let p = item.placement(store, now)?;
            let in_window = lower.is_none_or(|l| p.hi >= l) && p.lo < upper;
            let past_cursor = q.after.as_ref().is_none_or(|a| p.key < *a);
            (in_window && past_cursor).then_some((p.key, item))
        })
        .collect();
    matching.sort_by(|a, b| b.0.cmp(&a.0));
    let more = matching.len() > q.limit;
    matching.truncate(q.limit);
    let next = if more {
        matching.last().map(|(k, _)| k.clone())
    } else {
        None
    };
    (matching.into_iter().map(|(_, item)| item).collect(), next)
}

/// Every record, in the order the API pages them (for `/_sim/dump`).
pub fn newest_first<'a, T: Listable + 'a>(
    items: impl Iterator<Item = &'a T>,
    store: &Store,
    now: Ts,
) -> Vec<&'a T> {
    let mut keyed: Vec<(Key, &T)> = items
        .filter_map(|item| Some((item.placement(store, now)?.key, item)))
        .collect();
    keyed.sort_by(|a, b| b.0.cmp(&a.0));
    keyed.into_iter().map(|(_, item)| item).collect()
}

/// WHOOP's last page sometimes has no `next_token` and sometimes `"next_token": null`; the
/// simulator does both (deterministically) so clients must handle both, and `""` when the
/// `empty_last_token` shape is on.
pub enum NextToken {
    Omitted,
    Null,
    Empty,
    Token(String),
}

impl NextToken {
    pub fn is_omitted(&self) -> bool {
        matches!(self, NextToken::Omitted)
    }

    pub fn last_page(records_on_page: usize) -> NextToken {
        if records_on_page.is_multiple_of(2) {
            NextToken::Null
        } else {
            NextToken::Omitted
        }
    }
}

impl Serialize for NextToken {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            NextToken::Token(t) => s.serialize_str(t),
            NextToken::Empty => s.serialize_str(""),
            _ => s.serialize_none(),
        }
    }
}

#[derive(Serialize)]
pub struct Page<'a, T: Serialize> {
    pub records: Vec<&'a T>,
    #[serde(skip_serializing_if = "NextToken::is_omitted")]
    pub next_token: NextToken,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_rules() {
        assert_eq!(parse_list_query(None, "cycle").map(|q| q.limit), Ok(10));
        assert_eq!(
            parse_list_query(Some("limit=100"), "cycle").map(|q| q.limit),
            Ok(25)
        );
        assert_eq!(
            parse_list_query(Some("limit=3"), "cycle").map(|q| q.limit),
            Ok(3)
        );
        assert!(parse_list_query(Some("limit=0"), "cycle").is_err());
        assert!(parse_list_query(Some("limit=ten"), "cycle").is_err());
        assert!(parse_list_query(Some("limit=-4"), "cycle").is_err());
    }

    #[test]
    fn token_is_bound_to_collection_and_window() {
        let q = parse_list_query(Some("start=2025-01-01T00:00:00.000Z"), "sleep").expect("valid");
        let token = encode_cursor("sleep", Key { ms: 5, tie: 7 }, &q, Ts::from_millis(0), 0);
        // A UUID's 128 bits survive the token.
        let wide = Key {
            ms: 9,
            tie: u128::MAX - 1,
        };
        let wide_token = encode_cursor("sleep", wide.clone(), &q, Ts::from_millis(0), 0);
        let again = format!("start=2025-01-01T00:00:00Z&nextToken={wide_token}");
        assert_eq!(
            parse_list_query(Some(&again), "sleep").map(|q| q.after),
            Ok(Some(wide))
        );
        let ok = format!("start=2025-01-01T00:00:00Z&nextToken={token}");
        assert_eq!(
            parse_list_query(Some(&ok), "sleep").map(|q| q.after.map(|k| k.ms)),
            Ok(Some(5))
        );
        let moved = format!("start=2025-01-02T00:00:00Z&nextToken={token}");
        assert!(parse_list_query(Some(&moved), "sleep").is_err());
        let other = format!("start=2025-01-01T00:00:00Z&nextToken={token}");
        assert!(parse_list_query(Some(&other), "workout").is_err());
        assert!(parse_list_query(Some("nextToken=%%%"), "sleep").is_err());
    }
}
