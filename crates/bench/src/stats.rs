//! Small arithmetic the benchmarks' tables share.

/// Nearest-rank percentile (`p` from 0 to 1) of samples sorted ascending; None when there are
/// none.
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied()
}

/// Days in `years` of history, with a leap day every fourth year.
pub fn days_in_years(years: u32) -> u32 {
    years * 365 + years / 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&s, 0.5), Some(50));
        assert_eq!(percentile(&s, 0.99), Some(99));
        assert_eq!(percentile(&s, 1.0), Some(100));
        assert_eq!(percentile(&s, 0.0), Some(1));
        assert_eq!(percentile(&s[..1], 0.99), Some(1));
        assert_eq!(percentile::<u32>(&[], 0.5), None);
        assert_eq!(days_in_years(5), 1826);
    }
}
