//! Applying WHOOP webhook events: make the store match WHOOP for the objects an event names.
//!
//! A webhook says only which object changed, so the applier fetches the current version from
//! WHOOP instead of trusting the event's order. That is what makes duplicates and out-of-order
//! pairs harmless: a `sleep.updated` that arrives after its `sleep.deleted` fetches the sleep, gets
//! a 404, and the sleep stays deleted. Cycles have no events of their own, so each event also
//! refreshes the cycles whose strain it changed.

use chrono::{DateTime, Utc};
use serde::Serialize;
use whoop::webhook::{EventKind, WebhookEvent};
use whoop::{Collection, Cycle, Fetched, PageQuery, Priority};

use crate::engine::Engine;
use crate::error::Result;

/// What applying one event changed locally.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Applied {
    pub written: u64,
    pub deleted: u64,
    /// The event type is not one the app uses (acknowledged and ignored).
    pub ignored: bool,
}

impl Engine {
    /// Makes the store match WHOOP for the object `event` names.
    pub async fn apply_event(&self, event: &WebhookEvent) -> Result<Applied> {
        self.ensure_syncable().await?;
        let Some(kind) = event.kind() else {
            tracing::debug!(kind = %event.kind, "ignoring an unknown webhook type");
            return Ok(Applied {
                ignored: true,
                ..Default::default()
            });
        };
        let mut applied = Applied::default();
        match kind {
            EventKind::SleepUpdated | EventKind::RecoveryUpdated => {
                // For recovery events the id is the sleep's UUID (v2), never a cycle id.
                self.refresh_sleep(&event.id, kind == EventKind::SleepUpdated, &mut applied)
                    .await?
            }
            EventKind::SleepDeleted => {
                let cycle = self.store.sleep_cycle_id(&event.id).await?;
                self.forget_sleep(&event.id, &mut applied).await?;
                if let Some(cycle) = cycle {
                    // Its cycle was scored with this sleep in it.
                    self.refresh_cycle(cycle, &mut applied).await?;
                }
            }
            EventKind::RecoveryDeleted => {
                if self.store.delete_recovery_for_sleep(&event.id).await? {
                    applied.deleted += 1;
                }
            }
            EventKind::WorkoutUpdated => self.refresh_workout(&event.id, &mut applied).await?,
            EventKind::WorkoutDeleted => {
                let start = self.store.workout_start(&event.id).await?;
                if self.store.delete(Collection::Workout, &event.id).await? {
                    applied.deleted += 1;
                }
                if let Some(start) = start {
                    // The day's strain no longer includes this workout.
                    self.refresh_cycles_at(start, &mut applied).await?;
                }
            }
        }
        self.data_arrived(applied.written, applied.deleted).await?;
        Ok(applied)
    }

    async fn refresh_sleep(
        &self,
        sleep_id: &str,
        refresh_previous_cycle: bool,
        applied: &mut Applied,
    ) -> Result<()> {
        let sleep = self
            .with_token(|t| async move {
                self.client
                    .with_priority(Priority::Live)
                    .sleep(t.expose(), sleep_id)
                    .await
            })
            .await?;
        let Some(sleep) = sleep else {
            // 404: WHOOP no longer has it; the recovery computed from it went with it.
            return self.forget_sleep(sleep_id, applied).await;
        };
        let cycle_id = sleep.record.cycle_id;
        applied.written += self
            .store
            .upsert(std::slice::from_ref(&sleep))
            .await?
            .written;

        let cycle = self
            .with_token(|t| async move {
                self.client
                    .with_priority(Priority::Live)
                    .cycle(t.expose(), cycle_id)
                    .await
            })
            .await?;
        let recovery = self
            .with_token(|t| async move {
                self.client
                    .with_priority(Priority::Live)
                    .recovery_for_cycle(t.expose(), cycle_id)
                    .await
            })
            .await?;
        if let Some(recovery) = recovery {
            applied.written += self.store.upsert(&[recovery]).await?.written;
        } else if !sleep.record.nap && self.store.delete_recovery_for_sleep(sleep_id).await? {
            // A main sleep whose cycle has no recovery (any more): a stale local one went.
            applied.deleted += 1;
        }
        if let Some(cycle) = cycle {
            let start = cycle.record.start;
            applied.written += self.store.upsert(&[cycle]).await?.written;
            if refresh_previous_cycle && !sleep.record.nap {
                // A new night ends the previous cycle: its day strain is final now.
                if let Some(previous) = self.store.cycle_before(start).await? {
                    self.refresh_cycle(previous, applied).await?;
                }
            }
        }
        Ok(())
    }

    async fn forget_sleep(&self, sleep_id: &str, applied: &mut Applied) -> Result<()> {
        if self.store.delete_recovery_for_sleep(sleep_id).await? {
            applied.deleted += 1;
        }
        if self.store.delete(Collection::Sleep, sleep_id).await? {
            applied.deleted += 1;
        }
        Ok(())
    }

    async fn refresh_cycle(&self, cycle_id: i64, applied: &mut Applied) -> Result<()> {
        let cycle = self
            .with_token(|t| async move {
                self.client
                    .with_priority(Priority::Live)
                    .cycle(t.expose(), cycle_id)
                    .await
            })
            .await?;
        match cycle {
            Some(cycle) => applied.written += self.store.upsert(&[cycle]).await?.written,
            None => {
                if self
                    .store
                    .delete(Collection::Cycle, &cycle_id.to_string())
                    .await?
                {
                    applied.deleted += 1;
                }
            }
        }
        Ok(())
    }

    async fn refresh_workout(&self, workout_id: &str, applied: &mut Applied) -> Result<()> {
        let workout = self
            .with_token(|t| async move {
                self.client
                    .with_priority(Priority::Live)
                    .workout(t.expose(), workout_id)
                    .await
            })
            .await?;
        let Some(workout) = workout else {
            if self.store.delete(Collection::Workout, workout_id).await? {
                applied.deleted += 1;
            }
            return Ok(());
        };
        let start = workout.record.start;
        applied.written += self.store.upsert(&[workout]).await?.written;
        self.refresh_cycles_at(start, applied).await
    }

    /// Refreshes the cycle running at `at` (the one a workout falls in): by id when the store
    /// knows it, otherwise by asking WHOOP for the cycles around that moment.
    async fn refresh_cycles_at(&self, at: DateTime<Utc>, applied: &mut Applied) -> Result<()> {
        if let Some(cycle_id) = self.store.cycle_at(at).await? {
            return self.refresh_cycle(cycle_id, applied).await;
        }
        let query = PageQuery {
            start: Some(at),
            end: Some(at + chrono::Duration::milliseconds(1)),
            next_token: None,
        };
        let page = self
            .with_token(|t| {
                let query = query.clone();
                async move {
                    self.client
                        .with_priority(Priority::Live)
                        .page::<Cycle>(t.expose(), &query)
                        .await
                }
            })
            .await?;
        let cycles: Vec<Fetched<Cycle>> = page.records;
        applied.written += self.store.upsert(&cycles).await?.written;
        Ok(())
    }
}
