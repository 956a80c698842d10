//! Stream cursors: opaque to devices, but they name the log they came from (its epoch) and a
//! position in it (the sequence number), so a cursor from a lost or replaced log is recognised.

use std::fmt;

/// A position in one particular event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub epoch: String,
    pub seq: i64,
}

const VERSION: &str = "v1";

impl Cursor {
    pub fn new(epoch: &str, seq: i64) -> Cursor {
        Cursor {
            epoch: epoch.to_string(),
            seq,
        }
    }

    /// `None` for anything this relay could not have issued.
    pub fn parse(raw: &str) -> Option<Cursor> {
        let mut parts = raw.trim().split('.');
        let (version, epoch, seq) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || version != VERSION {
            return None;
        }
        let epoch_ok = !epoch.is_empty()
            && epoch.len() <= 64
            && epoch.bytes().all(|b| b.is_ascii_alphanumeric());
        // Only plain decimal digits: no sign, no leading '+', nothing `i64::from_str` would also take.
        let seq_ok = !seq.is_empty() && seq.len() <= 19 && seq.bytes().all(|b| b.is_ascii_digit());
        if !epoch_ok || !seq_ok {
            return None;
        }
        let seq: i64 = seq.parse().ok()?;
        Some(Cursor::new(epoch, seq))
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{VERSION}.{}.{}", self.epoch, self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let c = Cursor::new("0123abcd", 42);
        assert_eq!(c.to_string(), "v1.0123abcd.42");
        assert_eq!(Cursor::parse(&c.to_string()), Some(c));
        assert_eq!(Cursor::parse(" v1.e.0 "), Some(Cursor::new("e", 0)));
    }

    #[test]
    fn rejects_what_was_never_issued() {
        for raw in [
            "",
            "v1",
            "v1.e",
            "v1.e.",
            "v1..5",
            "v2.e.5",
            "v1.e.-5",
            "v1.e.+5",
            "v1.e.5.6",
            "v1.e-x.5",
            "v1.e.99999999999999999999",
            "v1.e.1e3",
        ] {
            assert_eq!(Cursor::parse(raw), None, "{raw:?}");
        }
    }
}
