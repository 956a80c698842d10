//! Fault injection for data endpoints, set through `POST /_sim/faults`: server errors and
//! malformed bodies at a rate (drawn from a seeded stream) or for the next N requests (exact,
//! for tests). Latency lives in `AppState` because it applies to every data response.
//!
//! Record faults (`POST /_sim/record-faults`, `--record-fault`) break the requests that name
//! one record, by id anywhere in the path: WHOOP answering 404 for it, failing with a 5xx, or
//! sending a body that does not parse, for the next N requests or until cleared.

use std::collections::HashMap;

use axum::http::StatusCode;
use rand::rngs::StdRng;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// How requests naming one record fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordFault {
    /// 404, as for a record WHOOP no longer has.
    NotFound,
    /// A 5xx, as when WHOOP is having trouble.
    ServerError,
    /// A 200 whose body is cut short.
    Malformed,
    /// The record is served, on its own endpoint and in every collection page, with a `start`
    /// that is not a time, so no client can read it (its neighbours on a page stay readable).
    /// Lasts until cleared: a COUNT counts only requests naming the record.
    Unreadable,
}

/// One record's fault and how many more requests it hits (`None`: until cleared).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RecordFaultEntry {
    pub fault: RecordFault,
    pub remaining: Option<u64>,
}

/// Parses `ID=KIND[:COUNT]` (KIND is not_found, server_error or malformed).
pub fn parse_record_fault(spec: &str) -> Result<(String, RecordFaultEntry), String> {
    let (id, rest) = spec
        .split_once('=')
        .ok_or_else(|| format!("{spec:?}: expected ID=KIND[:COUNT]"))?;
    let (kind, count) = match rest.split_once(':') {
        Some((kind, count)) => (
            kind,
            Some(
                count
                    .parse::<u64>()
                    .map_err(|_| format!("{spec:?}: COUNT must be a number"))?,
            ),
        ),
        None => (rest, None),
    };
    let fault: RecordFault = serde_json::from_value(serde_json::Value::String(kind.into()))
        .map_err(|_| {
            format!("{spec:?}: KIND must be not_found, server_error, malformed or unreadable")
        })?;
    Ok((
        id.trim().to_string(),
        RecordFaultEntry {
            fault,
            remaining: count,
        },
    ))
}

#[derive(Debug)]
pub struct Faults {
    pub error_rate: f64,
    pub malformed_rate: f64,
    pub fail_next: u64,
    pub malformed_next: u64,
    pub record_faults: HashMap<String, RecordFaultEntry>,
    rng: StdRng,
}

#[derive(Debug, Serialize)]
pub struct FaultSettings {
    pub latency_ms: u64,
    pub error_rate: f64,
    pub malformed_rate: f64,
    pub fail_next: u64,
    pub malformed_next: u64,
}

impl Faults {
    pub fn new(rng: StdRng) -> Faults {
        Faults {
            error_rate: 0.0,
            malformed_rate: 0.0,
            fail_next: 0,
            malformed_next: 0,
            record_faults: HashMap::new(),
            rng,
        }
    }

    /// The fault for a request whose path names a faulty record, if any (counting it down).
    pub fn take_record_fault(&mut self, path: &str) -> Option<RecordFault> {
        if self.record_faults.is_empty() {
            return None;
        }
        let id = path
            .split('/')
            .find(|segment| self.record_faults.contains_key(*segment))?
            .to_string();
        let entry = self.record_faults.get_mut(&id)?;
        let fault = entry.fault;
        if let Some(remaining) = &mut entry.remaining {
            *remaining = remaining.saturating_sub(1);
            if *remaining == 0 {
                self.record_faults.remove(&id);
            }
        }
        Some(fault)
    }

    /// The records served unreadable wherever they appear (`RecordFault::Unreadable`).
    pub fn unreadable_ids(&self) -> Vec<String> {
        self.record_faults
            .iter()
            .filter(|(_, e)| e.fault == RecordFault::Unreadable)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The 5xx this request should fail with, if any.
    pub fn take_error(&mut self) -> Option<StatusCode> {
        let fail = if self.fail_next > 0 {
            self.fail_next -= 1;
            true
        } else {
            self.error_rate > 0.0 && self.rng.gen_bool(self.error_rate.clamp(0.0, 1.0))
        };
        fail.then(|| match self.rng.gen_range(0..3) {
            0 => StatusCode::INTERNAL_SERVER_ERROR,
            1 => StatusCode::BAD_GATEWAY,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        })
    }

    /// Whether this successful body should be cut short.
    pub fn take_malformed(&mut self) -> bool {
        if self.malformed_next > 0 {
            self.malformed_next -= 1;
            return true;
        }
        self.malformed_rate > 0.0 && self.rng.gen_bool(self.malformed_rate.clamp(0.0, 1.0))
    }
}

/// The body a failing upstream tends to produce: JSON from the app, HTML from a proxy.
pub fn error_body(status: StatusCode) -> (&'static str, String) {
    match status {
        StatusCode::BAD_GATEWAY => (
            "text/html",
            "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
                .to_string(),
        ),
        StatusCode::SERVICE_UNAVAILABLE => (
            "text/plain",
            "Service Temporarily Unavailable".to_string(),
        ),
        _ => (
            "application/json",
            r#"{"error":"internal_error","message":"An unexpected error occurred"}"#.to_string(),
        ),
    }
}

/// Cuts a JSON body so it no longer parses.
pub fn truncate_json(body: &[u8]) -> Vec<u8> {
    let cut = (body.len() / 2).max(1).min(body.len());
    let mut out = body[..cut].to_vec();
    if out.is_empty() || serde_json::from_slice::<serde_json::Value>(&out).is_ok() {
        out = b"{\"records\":[{".to_vec();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn counters_are_exact() {
        let mut f = Faults::new(StdRng::seed_from_u64(1));
        assert!(f.take_error().is_none());
        f.fail_next = 2;
        assert!(f.take_error().is_some_and(|s| s.is_server_error()));
        assert!(f.take_error().is_some());
        assert!(f.take_error().is_none());
        f.malformed_next = 1;
        assert!(f.take_malformed());
        assert!(!f.take_malformed());
    }

    #[test]
    fn record_faults_match_path_segments_and_count_down() {
        let mut f = Faults::new(StdRng::seed_from_u64(1));
        let (id, entry) = parse_record_fault("abc=server_error:2").unwrap();
        f.record_faults.insert(id, entry);
        assert_eq!(
            f.take_record_fault("/developer/v2/activity/workout/abcd"),
            None
        );
        assert_eq!(
            f.take_record_fault("/developer/v2/activity/workout/abc"),
            Some(RecordFault::ServerError)
        );
        assert!(f
            .take_record_fault("/developer/v2/cycle/abc/recovery")
            .is_some());
        assert_eq!(
            f.take_record_fault("/developer/v2/activity/workout/abc"),
            None
        );
        assert!(parse_record_fault("abc=gone").is_err());
        assert_eq!(parse_record_fault("x=not_found").unwrap().1.remaining, None);
    }

    #[test]
    fn truncated_bodies_do_not_parse() {
        for body in [&b"{}"[..], b"{\"records\":[]}", b"[1]"] {
            let cut = truncate_json(body);
            assert!(serde_json::from_slice::<serde_json::Value>(&cut).is_err());
        }
    }
}
