//! The first import and Force Sync.
//!
//! The import reads each collection as one chain of pages, newest first, from today back to the
//! oldest record WHOOP has. Every request but a collection's last brings a full page of 25, so the
//! import costs the fewest requests the data allows (every install shares one WHOOP app quota),
//! and the dashboard fills from today backwards: the first page of each collection is today's.
//! The four chains run side by side. The first six months are "phase 1" only as far as progress
//! goes: the plan fixes where they end when the import begins, and the import reports months
//! done until every chain has passed that point.
//!
//! Every page is stored together with its checkpoint (the chain's next paging token), so a
//! killed process resumes exactly where it stopped: no page fetched twice, none skipped.
//!
//! Force Sync re-reads the last six months and makes the store match WHOOP there, deleting what
//! WHOOP no longer has only after the whole window was fetched. The live applier keeps running
//! meanwhile (a Force Sync can take minutes); the replacement leaves alone whatever it changed
//! after the fetch began, so neither a record created nor one deleted meanwhile is undone.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use store::{Checkpoint, ImportWindow, StoreRecord, WindowContents};
use whoop::types::format_timestamp;
use whoop::{Collection, Cycle, Page, PageQuery, Priority, Recovery, Sleep, Workout};

use crate::engine::{add_counts, set_count, Engine, SyncReport, IMPORT_COMPLETE_KEY};
use crate::error::{Error, Result};
use crate::events::{JobKind, Phase, Progress};

pub(crate) const PLAN_KEY: &str = "import_plan";

/// Phase 1 in the months progress counts (the UI says "3 of 6 months done").
const RECENT_MONTHS: u32 = 6;

/// Where an import's phase 1 ends, fixed when it begins. (Plans written by earlier versions also
/// list window boundaries; they are ignored.)
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ImportPlan {
    /// Phase 1 covers `[recent_start, now)`; phase 2 everything before.
    recent_start: DateTime<Utc>,
}

/// Each collection's chain of pages: the whole timeline, newest first.
const WHOLE_HISTORY: ImportWindow = ImportWindow {
    start: None,
    end: None,
};

/// The quota priority of an import page that continues back from `reached`: the last 30 days
/// first, then the rest of six months, then older history.
fn priority_of(reached: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Priority {
    match reached {
        None => Priority::Recent,
        Some(t) if t > now - chrono::Duration::days(30) => Priority::Recent,
        Some(t) if t > now - chrono::Duration::days(183) => Priority::Months,
        Some(_) => Priority::History,
    }
}

/// Shared progress of a job whose parts run concurrently; every update is published in order.
pub(crate) struct Tracker<'a> {
    engine: &'a Engine,
    progress: Mutex<Progress>,
    /// Import only: where phase 1 began, and how far back each chain has read so far (a chain
    /// that finished counts as all the way back).
    recent_start: Option<DateTime<Utc>>,
    reached: Mutex<HashMap<Collection, Option<DateTime<Utc>>>>,
    parts_total: u32,
    parts_done: Mutex<u32>,
}

impl<'a> Tracker<'a> {
    pub(crate) fn new(
        engine: &'a Engine,
        job: JobKind,
        windows: u32,
        parts_total: u32,
        records: u64,
    ) -> Self {
        Tracker {
            engine,
            progress: Mutex::new(Progress {
                job,
                phase: Phase::Recent,
                records,
                recent_windows_done: 0,
                recent_windows_total: windows,
                oldest_day: None,
                percent: Some(0),
            }),
            recent_start: None,
            reached: Mutex::new(HashMap::new()),
            parts_total: parts_total.max(1),
            parts_done: Mutex::new(0),
        }
    }

    /// An import's tracker: progress in months of phase 1, then the oldest day reached.
    fn import(engine: &'a Engine, plan: &ImportPlan, records: u64) -> Self {
        let mut tracker = Tracker::new(engine, JobKind::Import, RECENT_MONTHS, 1, records);
        tracker.recent_start = Some(plan.recent_start);
        tracker
    }

    pub(crate) fn update(&self, change: impl FnOnce(&mut Progress)) {
        let mut progress = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        change(&mut progress);
        // Published under the lock so concurrent parts cannot reorder the steps.
        self.engine.set_progress(progress.clone());
    }

    /// A page of `collection` was stored: `written` records are new or changed, the page
    /// reaches back to `oldest`, and `finished` says it was the chain's last.
    fn page(
        &self,
        collection: Collection,
        written: u64,
        oldest: Option<DateTime<Utc>>,
        finished: bool,
    ) {
        let recent_done = self.recent_start.map(|recent_start| {
            let mut reached = self.reached.lock().unwrap_or_else(|e| e.into_inner());
            let entry = reached
                .entry(collection)
                .or_insert(Some(self.engine.clock.now()));
            // `None`: all the way back.
            *entry = match (*entry, oldest) {
                _ if finished => None,
                (None, _) => None,
                (Some(a), Some(b)) => Some(a.min(b)),
                (Some(a), None) => Some(a),
            };
            // Phase 1 is as far along as its slowest chain.
            let now = self.engine.clock.now();
            let span = (now - recent_start).num_seconds().max(1) as f64;
            let covered = Collection::ALL
                .iter()
                .map(|c| match reached.get(c) {
                    None => 0.0,
                    Some(None) => 1.0,
                    Some(Some(t)) => ((now - *t).num_seconds() as f64 / span).clamp(0.0, 1.0),
                })
                .fold(1.0, f64::min);
            covered
        });
        self.update(|p| {
            // A running total: the store is not counted again for every page.
            p.records += written;
            if let Some(oldest) = oldest.map(|t| t.date_naive()) {
                p.oldest_day = Some(p.oldest_day.map_or(oldest, |d: NaiveDate| d.min(oldest)));
            }
            if let Some(covered) = recent_done {
                if p.phase == Phase::Recent {
                    let months = (covered * f64::from(RECENT_MONTHS)).floor() as u32;
                    p.recent_windows_done = months.max(p.recent_windows_done);
                    p.percent = Some(((covered * 100.0) as u8).max(p.percent.unwrap_or(0)));
                    if covered >= 1.0 {
                        p.phase = Phase::History;
                        p.recent_windows_done = p.recent_windows_total;
                        p.percent = None;
                    }
                }
            }
        });
    }

    /// One part of a job finished (Force Sync counts its four collections).
    fn part_done(&self) {
        let done = {
            let mut done = self.parts_done.lock().unwrap_or_else(|e| e.into_inner());
            *done += 1;
            *done
        };
        let total = self.parts_total;
        self.update(|p| {
            if p.phase == Phase::Recent {
                p.recent_windows_done =
                    (done * p.recent_windows_total / total).max(p.recent_windows_done);
                p.percent = Some(((done * 100 / total).min(100)) as u8);
            }
        });
    }
}

impl Engine {
    pub(crate) async fn import(&self, generation: u64) -> Result<SyncReport> {
        let plan = self.import_plan().await?;
        // Records already imported by an earlier, interrupted run count towards progress.
        let resumed = self.store.counts().await?.total();
        let tracker = Tracker::import(self, &plan, resumed);
        tracker.update(|_| {});

        // Every collection's chain at once, with the profile beside them.
        let mut report = SyncReport::default();
        let (c, s, r, w, ()) = tokio::try_join!(
            self.import_chain::<Cycle>(generation, &tracker),
            self.import_chain::<Sleep>(generation, &tracker),
            self.import_chain::<Recovery>(generation, &tracker),
            self.import_chain::<Workout>(generation, &tracker),
            self.refresh_profile_and_body(),
        )?;
        for part in [c, s, r, w] {
            merge(&mut report, &part);
        }
        self.store.set_meta(IMPORT_COMPLETE_KEY, "1").await?;
        tracker.update(|p| {
            p.phase = Phase::History;
            p.recent_windows_done = p.recent_windows_total;
            p.percent = Some(100);
        });
        Ok(report)
    }

    async fn import_plan(&self) -> Result<ImportPlan> {
        if let Some(json) = self.store.get_meta(PLAN_KEY).await? {
            if let Ok(plan) = serde_json::from_str::<ImportPlan>(&json) {
                return Ok(plan);
            }
            tracing::warn!("unreadable import plan; starting a new one");
        }
        let plan = ImportPlan {
            recent_start: self.clock.now() - self.schedule.recent_span,
        };
        let json = serde_json::to_string(&plan).map_err(|e| Error::Io(e.to_string()))?;
        self.store.set_meta(PLAN_KEY, &json).await?;
        Ok(plan)
    }

    /// Pages through one collection, newest first, from its checkpoint to the oldest record.
    /// Each page and the checkpoint after it are stored in one transaction.
    async fn import_chain<T: StoreRecord>(
        &self,
        generation: u64,
        tracker: &Tracker<'_>,
    ) -> Result<SyncReport> {
        let window = WHOLE_HISTORY;
        let collection = T::COLLECTION;
        let mut checkpoint = self
            .store
            .load_checkpoint(collection, &window)
            .await?
            .unwrap_or_else(|| Checkpoint::new(collection, window));
        let mut report = SyncReport::default();
        let mut restarted = false;
        // How far back this run has read: what the relay's quota coordinator ranks the next
        // page by (a resumed chain's first page counts as recent until it says otherwise).
        let mut reached: Option<DateTime<Utc>> = None;
        while !checkpoint.done {
            self.check_not_cancelled(generation)?;
            let query = PageQuery {
                start: window.start,
                end: window.end,
                next_token: checkpoint.next_token.clone(),
            };
            let client = self.client.with_priority(priority_of(reached, Utc::now()));
            let fetched = self
                .with_token(|token| {
                    let (query, client) = (query.clone(), client.clone());
                    async move { client.page::<T>(token.expose(), &query).await }
                })
                .await;
            let page = match fetched {
                // WHOOP's paging tokens expire: one saved before a long pause (a laptop closed
                // for days) is refused with a 400. Pages are upserts, so reading the window
                // again from its first page loses nothing; once per run, so a 400 that is not
                // about the token still fails the import instead of looping.
                Err(Error::Whoop(whoop::Error::Status { status: 400, .. }))
                    if query.next_token.is_some() && !restarted =>
                {
                    tracing::info!(
                        collection = %collection,
                        pages = checkpoint.pages,
                        "WHOOP refused a saved paging token; reading this window again"
                    );
                    restarted = true;
                    checkpoint.next_token = None;
                    continue;
                }
                other => other?,
            };
            self.check_not_cancelled(generation)?;
            report_skipped(&page);
            checkpoint.pages += 1;
            checkpoint.records += page.records.len() as u64;
            checkpoint.done = page.next_token.is_none();
            checkpoint.next_token = page.next_token.clone();
            let counts = self.store.apply_page(&page.records, &checkpoint).await?;
            let written = report.written_of(collection) + counts.written;
            set_count(&mut report.written, collection, written);
            report.unchanged += counts.unchanged;
            report.skipped += page.skipped.len() as u64;
            self.data_arrived(counts.written, 0).await?;
            // How far back this page reaches (a recovery has no start of its own; when WHOOP
            // last touched it is close enough for progress).
            let oldest = page
                .records
                .iter()
                .map(|r| r.record.start().unwrap_or_else(|| r.record.updated_at()))
                .min();
            reached = match (reached, oldest) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            tracker.page(collection, counts.written, oldest, checkpoint.done);
        }
        Ok(report)
    }

    async fn refresh_profile_and_body(&self) -> Result<()> {
        let profile = self
            .with_token(|token| async move { self.client.profile(token.expose()).await })
            .await?;
        self.store.save_profile(&profile).await?;
        let body = self
            .with_token(|token| async move { self.client.body_measurement(token.expose()).await })
            .await?;
        match body {
            Some(body) => {
                self.store
                    .save_body_measurement(profile.record.user_id, &body)
                    .await?
            }
            // 404: WHOOP has none (never entered, or removed); an old copy would be stale.
            None => self.store.delete_body_measurement().await?,
        }
        Ok(())
    }

    pub(crate) async fn force_sync(&self, generation: u64) -> Result<SyncReport> {
        let start = self.clock.now() - self.schedule.recent_span;
        // Taken before the first fetch: what the live applier changes from here on is newer than
        // anything fetched, and the window replacement leaves it alone.
        let fetch_began = self.store.change_mark().await?;
        let tracker = Tracker::new(self, JobKind::ForceSync, 1, 4, 0);
        tracker.update(|_| {});
        let (contents, skipped) =
            fetch_whole_window(self, (Some(start), None), generation, Some(&tracker)).await?;
        if skipped > 0 {
            // A record WHOOP sent but we could not read would look deleted: keep the window.
            return Err(Error::Io(format!(
                "{skipped} records in the last six months could not be read; nothing was removed"
            )));
        }
        self.check_not_cancelled(generation)?;
        let outcome = self
            .store
            .replace_window(start, &contents, fetch_began)
            .await?;
        self.data_arrived(outcome.written.total(), outcome.deleted)
            .await?;
        tracing::info!(
            since = %format_timestamp(&start),
            written = outcome.written.total(),
            deleted = outcome.deleted,
            "Force Sync replaced the last six months"
        );
        let report = SyncReport {
            written: outcome.written,
            unchanged: outcome.unchanged,
            deleted: outcome.deleted,
            since: Some(start),
            ..Default::default()
        };
        Ok(report)
    }
}

/// Every page of one collection from `since` until `until` (or now).
pub(crate) async fn fetch_between<T: StoreRecord>(
    engine: &Engine,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    generation: u64,
) -> Result<Page<T>> {
    let mut all = Page {
        records: Vec::new(),
        skipped: Vec::new(),
        next_token: None,
    };
    let mut query = PageQuery {
        start: since,
        end: until,
        next_token: None,
    };
    loop {
        engine.check_not_cancelled(generation)?;
        let page = engine
            .with_token(|token| {
                let query = query.clone();
                async move { engine.client.page::<T>(token.expose(), &query).await }
            })
            .await?;
        report_skipped(&page);
        all.records.extend(page.records);
        all.skipped.extend(page.skipped);
        match page.next_token {
            Some(token) => query.next_token = Some(token),
            None => return Ok(all),
        }
    }
}

/// Marks one part of a tracked job done when `part` finishes.
pub(crate) async fn counted<T>(
    tracker: &Tracker<'_>,
    part: impl Future<Output = Result<T>>,
) -> Result<T> {
    let result = part.await;
    tracker.part_done();
    result
}

/// The four collections of `[start, end)` (`end` open: until now) as WHOOP lists them now, and
/// how many of its records could not be read: a window with any such record is not complete
/// enough to remove what it lacks. With a tracker, each collection counts as a part done.
pub(crate) async fn fetch_whole_window(
    engine: &Engine,
    (start, end): (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    generation: u64,
    tracker: Option<&Tracker<'_>>,
) -> Result<(WindowContents, usize)> {
    async fn part<T>(
        tracker: Option<&Tracker<'_>>,
        fetch: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        match tracker {
            Some(tracker) => counted(tracker, fetch).await,
            None => fetch.await,
        }
    }
    let (cycles, sleeps, recoveries, workouts) = tokio::try_join!(
        part(
            tracker,
            fetch_between::<Cycle>(engine, start, end, generation)
        ),
        part(
            tracker,
            fetch_between::<Sleep>(engine, start, end, generation)
        ),
        part(
            tracker,
            fetch_between::<Recovery>(engine, start, end, generation)
        ),
        part(
            tracker,
            fetch_between::<Workout>(engine, start, end, generation)
        ),
    )?;
    let skipped = cycles.skipped.len()
        + sleeps.skipped.len()
        + recoveries.skipped.len()
        + workouts.skipped.len();
    let contents = WindowContents {
        cycles: cycles.records,
        sleeps: sleeps.records,
        recoveries: recoveries.records,
        workouts: workouts.records,
    };
    Ok((contents, skipped))
}

fn report_skipped<T>(page: &Page<T>) {
    for skipped in &page.skipped {
        tracing::warn!(
            collection = %skipped.collection,
            id = skipped.id.as_deref().unwrap_or("unknown"),
            reason = %skipped.reason,
            "skipped a WHOOP record that could not be read"
        );
    }
}

fn merge(total: &mut SyncReport, part: &SyncReport) {
    add_counts(&mut total.written, &part.written);
    total.unchanged += part.unchanged;
    total.skipped += part.skipped;
    total.deleted += part.deleted;
}

impl SyncReport {
    fn written_of(&self, collection: Collection) -> u64 {
        self.written.get(collection)
    }
}
