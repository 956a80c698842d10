//! Re-fetching a range of days: the completeness calendar's "Re-fetch these days" and
//! `vitaltrends refetch`. A queued job like Force Sync (two waiting re-fetches merge into one
//! over both ranges), but for that range only: it asks WHOOP for every record of the range and
//! replaces exactly what is stored there, the way Force Sync replaces the last six months.
//!
//! Days are local WHOOP days; WHOOP's queries are in UTC instants. The UTC window reaches two
//! days beyond each end, which covers every offset (−12 h to +14 h) and a cycle's day being the
//! date twelve hours after its start; the neighbouring records it also replaces are replaced by
//! WHOOP's own current versions, which is harmless.

use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::engine::{Engine, Enqueued, JobRequest, SyncReport};
use crate::error::{Error, Result};
use crate::events::JobKind;
use crate::import::{fetch_whole_window, Tracker};

/// The UTC window `[start, end)` whose records include every record of the local days
/// `from..=to`.
pub fn utc_window(from: NaiveDate, to: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = (from - Duration::days(2))
        .and_hms_opt(0, 0, 0)
        .expect("midnight");
    let end = (to + Duration::days(2))
        .and_hms_opt(0, 0, 0)
        .expect("midnight");
    (start.and_utc(), end.and_utc())
}

fn check_days(from: NaiveDate, to: NaiveDate) -> Result<()> {
    if from > to {
        return Err(Error::Io(format!(
            "the range starts ({from}) after it ends ({to})"
        )));
    }
    Ok(())
}

impl Engine {
    /// Queues a re-fetch of the local days `from..=to` (merged with one already waiting).
    pub fn request_refetch(&self, from: NaiveDate, to: NaiveDate) -> Result<Enqueued> {
        check_days(from, to)?;
        Ok(self.enqueue(JobRequest {
            kind: JobKind::Refetch,
            since: None,
            days: Some((from, to)),
        }))
    }

    /// Runs a re-fetch now, in the caller's task (the CLI; the desktop queues it).
    pub async fn refetch_now(&self, from: NaiveDate, to: NaiveDate) -> Result<SyncReport> {
        check_days(from, to)?;
        self.run_job(JobRequest {
            kind: JobKind::Refetch,
            since: None,
            days: Some((from, to)),
        })
        .await
    }

    pub(crate) async fn refetch(
        &self,
        (from, to): (NaiveDate, NaiveDate),
        generation: u64,
    ) -> Result<SyncReport> {
        let (start, end) = utc_window(from, to);
        // Taken before the first fetch, as Force Sync does: a live change after it is newer.
        let fetch_began = self.store().change_mark().await?;
        let tracker = Tracker::new(self, JobKind::Refetch, 1, 4, 0);
        tracker.update(|_| {});
        let (contents, skipped) =
            fetch_whole_window(self, (Some(start), Some(end)), generation, Some(&tracker)).await?;
        if skipped > 0 {
            // A record WHOOP sent but we could not read would look deleted: keep the days.
            return Err(Error::Io(format!(
                "{skipped} records of {from} to {to} could not be read; nothing was removed"
            )));
        }
        self.check_not_cancelled(generation)?;
        let outcome = self
            .store()
            .replace_range(start, Some(end), &contents, fetch_began)
            .await?;
        self.data_arrived(outcome.written.total(), outcome.deleted)
            .await?;
        tracing::info!(
            %from, %to,
            written = outcome.written.total(),
            deleted = outcome.deleted,
            "re-fetched a range of days"
        );
        Ok(SyncReport {
            written: outcome.written,
            unchanged: outcome.unchanged,
            deleted: outcome.deleted,
            since: Some(start),
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_covers_every_offset_of_the_days() {
        let day = NaiveDate::from_ymd_opt(2024, 3, 5).unwrap();
        let (start, end) = utc_window(day, day);
        // A cycle of the 5th in UTC+14 starts on the 4th before 10:00 UTC... and one in UTC−12
        // ends by the 6th at 12:00 UTC: both inside.
        assert!(start <= "2024-03-03T22:00:00Z".parse::<DateTime<Utc>>().unwrap());
        assert!(end >= "2024-03-06T12:00:00Z".parse::<DateTime<Utc>>().unwrap());
    }
}
