//! The person's local "WHOOP day" for a record.
//!
//! WHOOP's records carry UTC times plus the `timezone_offset` in force when they were recorded.
//! A cycle starts when the person falls asleep, usually late in the evening before the day it
//! describes, so a cycle's day is the local date twelve hours after it started: a 23:10 onset on
//! the 4th and a 00:40 onset on the 5th both describe the 5th, and two cycles do not collapse onto
//! one date in negative offsets (whoop-api.md §3.6). Workouts and naps happen within the day, so
//! theirs is simply the local date they started.

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, Utc};

/// Parses `+hh:mm`, `-hh:mm`, `+hhmm`, `+hh` or `Z`. Unreadable offsets count as UTC.
pub fn parse_offset(offset: &str) -> FixedOffset {
    let utc = FixedOffset::east_opt(0).expect("zero offset is valid");
    let s = offset.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("z") {
        return utc;
    }
    let (sign, rest) = match s.as_bytes()[0] {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return utc,
    };
    let digits: String = rest.chars().filter(|c| c.is_ascii_digit()).collect();
    let (hours, minutes) = match digits.len() {
        1 | 2 => (digits.parse::<i32>().unwrap_or(0), 0),
        4 => (
            digits[..2].parse::<i32>().unwrap_or(0),
            digits[2..].parse::<i32>().unwrap_or(0),
        ),
        _ => return utc,
    };
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60)).unwrap_or(utc)
}

pub fn local_date(t: DateTime<Utc>, offset: &str) -> NaiveDate {
    t.with_timezone(&parse_offset(offset)).date_naive()
}

/// The day a cycle (or a main sleep, which starts its cycle) describes.
pub fn cycle_day(start: DateTime<Utc>, offset: &str) -> NaiveDate {
    local_date(start + Duration::hours(12), offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("-05:00").local_minus_utc(), -5 * 3600);
        assert_eq!(parse_offset("+05:30").local_minus_utc(), 5 * 3600 + 1800);
        assert_eq!(parse_offset("+0100").local_minus_utc(), 3600);
        assert_eq!(parse_offset("Z").local_minus_utc(), 0);
        assert_eq!(parse_offset("garbage").local_minus_utc(), 0);
    }

    #[test]
    fn late_and_early_onsets_describe_the_next_morning() {
        // 23:10 and 00:40 local (-05:00) onsets on consecutive nights land on consecutive days.
        let a = cycle_day(t("2024-03-05T04:10:00Z"), "-05:00");
        let b = cycle_day(t("2024-03-06T05:40:00Z"), "-05:00");
        assert_eq!(a, NaiveDate::from_ymd_opt(2024, 3, 5).unwrap());
        assert_eq!(b, NaiveDate::from_ymd_opt(2024, 3, 6).unwrap());
        // A workout at 18:00 local belongs to that date.
        let w = local_date(t("2024-03-05T23:00:00Z"), "-05:00");
        assert_eq!(w, NaiveDate::from_ymd_opt(2024, 3, 5).unwrap());
    }
}
