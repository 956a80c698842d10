//! Simulated time and WHOOP's timestamp format. The simulator's "now" is the real clock plus
//! whatever `/_sim/advance` added, and every instant is kept at millisecond precision because
//! that is what WHOOP's JSON carries (so a parsed-and-reformatted instant compares equal).

use std::sync::Mutex;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::{Serialize, Serializer};

/// An instant as WHOOP writes it: UTC, milliseconds, `Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ts(pub DateTime<Utc>);

impl Ts {
    /// Drops sub-millisecond precision so values survive a JSON round trip unchanged.
    pub fn new(dt: DateTime<Utc>) -> Ts {
        Ts::from_millis(dt.timestamp_millis())
    }

    pub fn from_millis(ms: i64) -> Ts {
        Ts(Utc
            .timestamp_millis_opt(ms)
            .single()
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH))
    }

    pub fn millis(self) -> i64 {
        self.0.timestamp_millis()
    }

    pub fn plus(self, d: Duration) -> Ts {
        Ts::new(self.0 + d)
    }

    pub fn plus_minutes(self, minutes: f64) -> Ts {
        Ts::from_millis(self.millis() + (minutes * 60_000.0).round() as i64)
    }

    pub fn to_whoop(self) -> String {
        self.0.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    }
}

impl Serialize for Ts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_whoop())
    }
}

/// Parses a `start`/`end` query value. WHOOP documents ISO-8601 instants and says values
/// without a zone are UTC; a bare date is read as its UTC midnight.
pub fn parse_query_instant(raw: &str) -> Option<Ts> {
    let raw = raw.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(raw) {
        return Some(Ts::new(dt.with_timezone(&Utc)));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(raw, fmt) {
            return Some(Ts::new(naive.and_utc()));
        }
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|naive| Ts::new(naive.and_utc()))
}

/// Real time shifted by the total of every `/_sim/advance`.
#[derive(Debug, Default)]
pub struct SimClock {
    advanced_ms: Mutex<i64>,
}

impl SimClock {
    pub fn now(&self) -> Ts {
        let offset = *crate::lock(&self.advanced_ms);
        Ts::from_millis(Utc::now().timestamp_millis() + offset)
    }

    /// Moves simulated time forward and returns the new "now".
    pub fn advance(&self, by: Duration) -> Ts {
        {
            let mut offset = crate::lock(&self.advanced_ms);
            *offset = offset.saturating_add(by.num_milliseconds());
        }
        self.now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_millis_and_z() {
        let ts = parse_query_instant("2025-01-02T03:04:05.678+00:00").expect("valid");
        assert_eq!(ts.to_whoop(), "2025-01-02T03:04:05.678Z");
    }

    #[test]
    fn zoneless_is_utc_and_offsets_convert() {
        let a = parse_query_instant("2025-01-02T03:04:05").expect("valid");
        let b = parse_query_instant("2025-01-02T04:04:05+01:00").expect("valid");
        assert_eq!(a, b);
        assert_eq!(a.to_whoop(), "2025-01-02T03:04:05.000Z");
        assert!(parse_query_instant("2025-13-02").is_none());
        assert!(parse_query_instant("yesterday").is_none());
    }
}
