//! The first import and Force Sync.
//!
//! The import runs in two phases. Phase 1 takes the last six months, split into windows of
//! about twenty days that every collection fetches in parallel, so the months a person looks at
//! first arrive in a few round trips. Phase 2 walks back from there, page by page, until WHOOP has
//! nothing older. The plan (where phase 1 starts, its windows) is fixed when the import begins and
//! persisted, and every page is stored together with its checkpoint, so a killed process resumes
//! exactly where it stopped: no page fetched twice, none skipped.
//!
//! Force Sync re-reads the last six months and makes the store match WHOOP there, deleting what
//! WHOOP no longer has only after the whole window was fetched. The live applier keeps running
//! meanwhile (a Force Sync can take minutes); the replacement leaves alone whatever it changed
//! after the fetch began, so neither a record created nor one deleted meanwhile is undone.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use chrono::{DateTime, NaiveDate, Utc};
use futures_util::future::try_join_all;
use serde::{Deserialize, Serialize};
use store::{Checkpoint, ImportWindow, StoreRecord, WindowContents};
use whoop::types::format_timestamp;
use whoop::{Collection, Cycle, Page, PageQuery, Recovery, Sleep, Workout};

use crate::engine::{add_counts, set_count, Engine, SyncReport, IMPORT_COMPLETE_KEY};
use crate::error::{Error, Result};
use crate::events::{JobKind, Phase, Progress};

pub(crate) const PLAN_KEY: &str = "import_plan";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ImportPlan {
    /// Phase 1 covers `[recent_start, now)`; phase 2 everything before.
    recent_start: DateTime<Utc>,
    /// Phase 1 window starts, oldest first; the last window is open-ended.
    boundaries: Vec<DateTime<Utc>>,
}

impl ImportPlan {
    /// Windows of equal width, at most `window` long: a short leftover window would cost every
    /// collection one more (mostly empty) request.
    fn new(now: DateTime<Utc>, span: chrono::Duration, window: chrono::Duration) -> Self {
        let recent_start = now - span;
        let window = window.max(chrono::Duration::hours(1));
        let count = (span.num_seconds() as f64 / window.num_seconds() as f64)
            .ceil()
            .max(1.0) as i32;
        let width = span / count;
        let boundaries = (0..count).map(|i| recent_start + width * i).collect();
        ImportPlan {
            recent_start,
            boundaries,
        }
    }

    fn recent_windows(&self) -> Vec<ImportWindow> {
        self.boundaries
            .iter()
            .enumerate()
            .map(|(i, start)| ImportWindow {
                start: Some(*start),
                end: self.boundaries.get(i + 1).copied(),
            })
            .collect()
    }

    fn history_window(&self) -> ImportWindow {
        ImportWindow {
            start: None,
            end: Some(self.recent_start),
        }
    }
}

/// Shared progress of a job whose parts run concurrently; every update is published in order.
pub(crate) struct Tracker<'a> {
    engine: &'a Engine,
    progress: Mutex<Progress>,
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
            parts_total: parts_total.max(1),
            parts_done: Mutex::new(0),
        }
    }

    pub(crate) fn update(&self, change: impl FnOnce(&mut Progress)) {
        let mut progress = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        change(&mut progress);
        // Published under the lock so concurrent parts cannot reorder the steps.
        self.engine.set_progress(progress.clone());
    }

    /// A page was stored; `stored` is how many records the store holds now.
    fn page(&self, stored: u64, oldest: Option<DateTime<Utc>>) {
        self.update(|p| {
            // Parts finish concurrently; a late, smaller count must not move the figure back.
            p.records = p.records.max(stored);
            if let Some(oldest) = oldest.map(|t| t.date_naive()) {
                p.oldest_day = Some(p.oldest_day.map_or(oldest, |d: NaiveDate| d.min(oldest)));
            }
        });
    }

    /// One (collection, window) part finished.
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

    fn enter_history(&self) {
        self.update(|p| {
            p.phase = Phase::History;
            p.recent_windows_done = p.recent_windows_total;
            p.percent = None;
        });
    }
}

impl Engine {
    pub(crate) async fn import(&self, generation: u64) -> Result<SyncReport> {
        let plan = self.import_plan().await?;
        let recent = plan.recent_windows();
        let history = plan.history_window();

        // Records already imported by an earlier, interrupted run count towards progress.
        let resumed = self.store.counts().await?.total();
        let parts = (recent.len() * Collection::ALL.len()) as u32;
        let tracker = Tracker::new(self, JobKind::Import, recent.len() as u32, parts, resumed);
        tracker.update(|_| {});

        // Phase 1: every collection and window at once (the engine caps requests in flight).
        let mut report = SyncReport::default();
        let profile = self.refresh_profile_and_body();
        let mut phase1: Vec<Pin<Box<dyn Future<Output = Result<SyncReport>> + Send + '_>>> =
            Vec::new();
        for window in &recent {
            phase1.push(Box::pin(
                self.import_part::<Cycle>(*window, generation, &tracker),
            ));
            phase1.push(Box::pin(
                self.import_part::<Sleep>(*window, generation, &tracker),
            ));
            phase1.push(Box::pin(
                self.import_part::<Recovery>(*window, generation, &tracker),
            ));
            phase1.push(Box::pin(
                self.import_part::<Workout>(*window, generation, &tracker),
            ));
        }
        let (parts, ()) = tokio::try_join!(try_join_all(phase1), profile)?;
        for part in parts {
            merge(&mut report, &part);
        }

        // Phase 2: older history, each collection walking back on its own.
        tracker.enter_history();
        let (c, s, r, w) = tokio::try_join!(
            self.import_part::<Cycle>(history, generation, &tracker),
            self.import_part::<Sleep>(history, generation, &tracker),
            self.import_part::<Recovery>(history, generation, &tracker),
            self.import_part::<Workout>(history, generation, &tracker),
        )?;
        for part in [c, s, r, w] {
            merge(&mut report, &part);
        }
        self.store.set_meta(IMPORT_COMPLETE_KEY, "1").await?;
        tracker.update(|p| p.percent = Some(100));
        Ok(report)
    }

    async fn import_plan(&self) -> Result<ImportPlan> {
        if let Some(json) = self.store.get_meta(PLAN_KEY).await? {
            if let Ok(plan) = serde_json::from_str::<ImportPlan>(&json) {
                return Ok(plan);
            }
            tracing::warn!("unreadable import plan; starting a new one");
        }
        let plan = ImportPlan::new(
            self.clock.now(),
            self.schedule.recent_span,
            self.schedule.recent_window,
        );
        let json = serde_json::to_string(&plan).map_err(|e| Error::Io(e.to_string()))?;
        self.store.set_meta(PLAN_KEY, &json).await?;
        Ok(plan)
    }

    /// Pages through one collection over one window from its checkpoint. Each page and the
    /// checkpoint after it are stored in one transaction.
    async fn import_part<T: StoreRecord>(
        &self,
        window: ImportWindow,
        generation: u64,
        tracker: &Tracker<'_>,
    ) -> Result<SyncReport> {
        let collection = T::COLLECTION;
        let mut checkpoint = self
            .store
            .load_checkpoint(collection, &window)
            .await?
            .unwrap_or_else(|| Checkpoint::new(collection, window));
        let mut report = SyncReport::default();
        let mut restarted = false;
        while !checkpoint.done {
            self.check_not_cancelled(generation)?;
            let query = PageQuery {
                start: window.start,
                end: window.end,
                next_token: checkpoint.next_token.clone(),
            };
            let fetched = self
                .with_token(|token| {
                    let query = query.clone();
                    async move { self.client.page::<T>(token.expose(), &query).await }
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
            let oldest = page.records.iter().filter_map(|r| r.record.start()).min();
            tracker.page(self.store.counts().await?.total(), oldest);
        }
        if window.start.is_some() {
            tracker.part_done();
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
        let (cycles, sleeps, recoveries, workouts) = tokio::try_join!(
            counted(
                &tracker,
                fetch_window::<Cycle>(self, Some(start), generation)
            ),
            counted(
                &tracker,
                fetch_window::<Sleep>(self, Some(start), generation)
            ),
            counted(
                &tracker,
                fetch_window::<Recovery>(self, Some(start), generation)
            ),
            counted(
                &tracker,
                fetch_window::<Workout>(self, Some(start), generation)
            ),
        )?;
        let skipped = cycles.skipped.len()
            + sleeps.skipped.len()
            + recoveries.skipped.len()
            + workouts.skipped.len();
        if skipped > 0 {
            // A record WHOOP sent but we could not read would look deleted: keep the window.
            return Err(Error::Io(format!(
                "{skipped} records in the last six months could not be read; nothing was removed"
            )));
        }
        self.check_not_cancelled(generation)?;
        let contents = WindowContents {
            cycles: cycles.records,
            sleeps: sleeps.records,
            recoveries: recoveries.records,
            workouts: workouts.records,
        };
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

/// Every page of one collection from `since` to now.
pub(crate) async fn fetch_window<T: StoreRecord>(
    engine: &Engine,
    since: Option<DateTime<Utc>>,
    generation: u64,
) -> Result<Page<T>> {
    fetch_between(engine, since, None, generation).await
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
