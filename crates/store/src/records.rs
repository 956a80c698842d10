//! Writing WHOOP records: upserts that never let an older `updated_at` overwrite a newer one, and
//! deletes by id.
//!
//! Every write takes a transaction, so a batch (a page, a webhook's set of fetches) lands whole or
//! not at all; a crash mid-write leaves the previous state.

use chrono::{DateTime, Utc};
use sqlx::{Sqlite, Transaction};
use whoop::types::format_timestamp;
use whoop::{Collection, CollectionRecord, Cycle, Fetched, Recovery, Sleep, Workout};

use crate::day::{cycle_day, local_date};
use crate::error::Result;

/// What a batch of upserts did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpsertCounts {
    /// Records inserted, or replaced by a newer (or same-time but different) version.
    pub written: u64,
    /// Records left alone: the store already had this version or a newer one.
    pub unchanged: u64,
}

impl std::ops::AddAssign for UpsertCounts {
    fn add_assign(&mut self, other: Self) {
        self.written += other.written;
        self.unchanged += other.unchanged;
    }
}

/// A WHOOP record type the store knows how to write.
pub trait StoreRecord: CollectionRecord {
    #[doc(hidden)]
    fn upsert(
        tx: &mut Transaction<'static, Sqlite>,
        item: &Fetched<Self>,
    ) -> impl std::future::Future<Output = Result<bool>> + Send;
}

fn ts(t: &DateTime<Utc>) -> String {
    format_timestamp(t)
}

impl StoreRecord for Cycle {
    async fn upsert(tx: &mut Transaction<'static, Sqlite>, item: &Fetched<Self>) -> Result<bool> {
        let c = &item.record;
        let s = c.score.as_ref();
        let result = sqlx::query(
            r#"INSERT INTO cycle (id, user_id, created_at, updated_at, start, "end", timezone_offset,
                 day, score_state, strain, kilojoule, average_heart_rate, max_heart_rate, raw)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(id) DO UPDATE SET
                 user_id = excluded.user_id, created_at = excluded.created_at,
                 updated_at = excluded.updated_at, start = excluded.start, "end" = excluded."end",
                 timezone_offset = excluded.timezone_offset, day = excluded.day,
                 score_state = excluded.score_state, strain = excluded.strain,
                 kilojoule = excluded.kilojoule, average_heart_rate = excluded.average_heart_rate,
                 max_heart_rate = excluded.max_heart_rate, raw = excluded.raw
               WHERE excluded.updated_at > cycle.updated_at
                  OR (excluded.updated_at = cycle.updated_at AND excluded.raw != cycle.raw)"#,
        )
        .bind(c.id)
        .bind(c.user_id)
        .bind(ts(&c.created_at))
        .bind(ts(&c.updated_at))
        .bind(ts(&c.start))
        .bind(c.end.as_ref().map(ts))
        .bind(&c.timezone_offset)
        .bind(cycle_day(c.start, &c.timezone_offset).to_string())
        .bind(c.score_state.as_str())
        .bind(s.map(|s| s.strain))
        .bind(s.map(|s| s.kilojoule))
        .bind(s.map(|s| s.average_heart_rate))
        .bind(s.map(|s| s.max_heart_rate))
        .bind(item.raw.to_string())
        .execute(&mut **tx)
        .await?;
        Ok(result.rows_affected() > 0)
    }
}

impl StoreRecord for Sleep {
    async fn upsert(tx: &mut Transaction<'static, Sqlite>, item: &Fetched<Self>) -> Result<bool> {
        let r = &item.record;
        let s = r.score.as_ref();
        let st = s.map(|s| &s.stage_summary);
        let need = s.map(|s| &s.sleep_needed);
        // A nap's day is the date it happened; a main sleep starts the cycle whose day it shares.
        let day = if r.nap {
            local_date(r.start, &r.timezone_offset)
        } else {
            cycle_day(r.start, &r.timezone_offset)
        };
        let result = sqlx::query(
            r#"INSERT INTO sleep (id, cycle_id, v1_id, user_id, created_at, updated_at, start, "end",
                 timezone_offset, day, nap, score_state, respiratory_rate,
                 sleep_performance_percentage, sleep_consistency_percentage,
                 sleep_efficiency_percentage, total_in_bed_time_milli, total_awake_time_milli,
                 total_no_data_time_milli, total_light_sleep_time_milli,
                 total_slow_wave_sleep_time_milli, total_rem_sleep_time_milli, sleep_cycle_count,
                 disturbance_count, baseline_milli, need_from_sleep_debt_milli,
                 need_from_recent_strain_milli, need_from_recent_nap_milli, raw)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(id) DO UPDATE SET
                 cycle_id = excluded.cycle_id, v1_id = excluded.v1_id, user_id = excluded.user_id,
                 created_at = excluded.created_at, updated_at = excluded.updated_at,
                 start = excluded.start, "end" = excluded."end",
                 timezone_offset = excluded.timezone_offset, day = excluded.day,
                 nap = excluded.nap, score_state = excluded.score_state,
                 respiratory_rate = excluded.respiratory_rate,
                 sleep_performance_percentage = excluded.sleep_performance_percentage,
                 sleep_consistency_percentage = excluded.sleep_consistency_percentage,
                 sleep_efficiency_percentage = excluded.sleep_efficiency_percentage,
                 total_in_bed_time_milli = excluded.total_in_bed_time_milli,
                 total_awake_time_milli = excluded.total_awake_time_milli,
                 total_no_data_time_milli = excluded.total_no_data_time_milli,
                 total_light_sleep_time_milli = excluded.total_light_sleep_time_milli,
                 total_slow_wave_sleep_time_milli = excluded.total_slow_wave_sleep_time_milli,
                 total_rem_sleep_time_milli = excluded.total_rem_sleep_time_milli,
                 sleep_cycle_count = excluded.sleep_cycle_count,
                 disturbance_count = excluded.disturbance_count,
                 baseline_milli = excluded.baseline_milli,
                 need_from_sleep_debt_milli = excluded.need_from_sleep_debt_milli,
                 need_from_recent_strain_milli = excluded.need_from_recent_strain_milli,
                 need_from_recent_nap_milli = excluded.need_from_recent_nap_milli,
                 raw = excluded.raw
               WHERE excluded.updated_at > sleep.updated_at
                  OR (excluded.updated_at = sleep.updated_at AND excluded.raw != sleep.raw)"#,
        )
        .bind(&r.id)
        .bind(r.cycle_id)
        .bind(r.v1_id)
        .bind(r.user_id)
        .bind(ts(&r.created_at))
        .bind(ts(&r.updated_at))
        .bind(ts(&r.start))
        .bind(ts(&r.end))
        .bind(&r.timezone_offset)
        .bind(day.to_string())
        .bind(r.nap)
        .bind(r.score_state.as_str())
        .bind(s.and_then(|s| s.respiratory_rate))
        .bind(s.and_then(|s| s.sleep_performance_percentage))
        .bind(s.and_then(|s| s.sleep_consistency_percentage))
        .bind(s.and_then(|s| s.sleep_efficiency_percentage))
        .bind(st.map(|s| s.total_in_bed_time_milli))
        .bind(st.map(|s| s.total_awake_time_milli))
        .bind(st.map(|s| s.total_no_data_time_milli))
        .bind(st.map(|s| s.total_light_sleep_time_milli))
        .bind(st.map(|s| s.total_slow_wave_sleep_time_milli))
        .bind(st.map(|s| s.total_rem_sleep_time_milli))
        .bind(st.map(|s| s.sleep_cycle_count))
        .bind(st.map(|s| s.disturbance_count))
        .bind(need.map(|n| n.baseline_milli))
        .bind(need.map(|n| n.need_from_sleep_debt_milli))
        .bind(need.map(|n| n.need_from_recent_strain_milli))
        .bind(need.map(|n| n.need_from_recent_nap_milli))
        .bind(item.raw.to_string())
        .execute(&mut **tx)
        .await?;
        Ok(result.rows_affected() > 0)
    }
}

impl StoreRecord for Recovery {
    async fn upsert(tx: &mut Transaction<'static, Sqlite>, item: &Fetched<Self>) -> Result<bool> {
        let r = &item.record;
        let updated_at = ts(&r.updated_at);
        // `sleep_id` is unique: if WHOOP moved this sleep's recovery to another cycle, the older
        // row gives way; if the other row is newer, this one is the stale one.
        sqlx::query(
            "DELETE FROM recovery WHERE sleep_id = ? AND cycle_id != ? AND updated_at <= ?",
        )
        .bind(&r.sleep_id)
        .bind(r.cycle_id)
        .bind(&updated_at)
        .execute(&mut **tx)
        .await?;
        let newer_elsewhere: Option<i64> = sqlx::query_scalar(
            "SELECT cycle_id FROM recovery WHERE sleep_id = ? AND cycle_id != ?",
        )
        .bind(&r.sleep_id)
        .bind(r.cycle_id)
        .fetch_optional(&mut **tx)
        .await?;
        if newer_elsewhere.is_some() {
            return Ok(false);
        }
        let s = r.score.as_ref();
        let result = sqlx::query(
            r#"INSERT INTO recovery (cycle_id, sleep_id, user_id, created_at, updated_at,
                 score_state, user_calibrating, recovery_score, resting_heart_rate,
                 hrv_rmssd_milli, spo2_percentage, skin_temp_celsius, raw)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(cycle_id) DO UPDATE SET
                 sleep_id = excluded.sleep_id, user_id = excluded.user_id,
                 created_at = excluded.created_at, updated_at = excluded.updated_at,
                 score_state = excluded.score_state, user_calibrating = excluded.user_calibrating,
                 recovery_score = excluded.recovery_score,
                 resting_heart_rate = excluded.resting_heart_rate,
                 hrv_rmssd_milli = excluded.hrv_rmssd_milli,
                 spo2_percentage = excluded.spo2_percentage,
                 skin_temp_celsius = excluded.skin_temp_celsius, raw = excluded.raw
               WHERE excluded.updated_at > recovery.updated_at
                  OR (excluded.updated_at = recovery.updated_at AND excluded.raw != recovery.raw)"#,
        )
        .bind(r.cycle_id)
        .bind(&r.sleep_id)
        .bind(r.user_id)
        .bind(ts(&r.created_at))
        .bind(&updated_at)
        .bind(r.score_state.as_str())
        .bind(s.map(|s| s.user_calibrating))
        .bind(s.map(|s| s.recovery_score))
        .bind(s.map(|s| s.resting_heart_rate))
        .bind(s.map(|s| s.hrv_rmssd_milli))
        .bind(s.and_then(|s| s.spo2_percentage))
        .bind(s.and_then(|s| s.skin_temp_celsius))
        .bind(item.raw.to_string())
        .execute(&mut **tx)
        .await?;
        Ok(result.rows_affected() > 0)
    }
}

impl StoreRecord for Workout {
    async fn upsert(tx: &mut Transaction<'static, Sqlite>, item: &Fetched<Self>) -> Result<bool> {
        let w = &item.record;
        let s = w.score.as_ref();
        let z = s.map(|s| &s.zone_durations);
        let result = sqlx::query(
            r#"INSERT INTO workout (id, v1_id, sport_id, user_id, created_at, updated_at, start,
                 "end", timezone_offset, day, sport_name, score_state, strain, average_heart_rate,
                 max_heart_rate, kilojoule, percent_recorded, distance_meter, altitude_gain_meter,
                 altitude_change_meter, zone_zero_milli, zone_one_milli, zone_two_milli,
                 zone_three_milli, zone_four_milli, zone_five_milli, raw)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(id) DO UPDATE SET
                 v1_id = excluded.v1_id, sport_id = excluded.sport_id, user_id = excluded.user_id,
                 created_at = excluded.created_at, updated_at = excluded.updated_at,
                 start = excluded.start, "end" = excluded."end",
                 timezone_offset = excluded.timezone_offset, day = excluded.day,
                 sport_name = excluded.sport_name, score_state = excluded.score_state,
                 strain = excluded.strain, average_heart_rate = excluded.average_heart_rate,
                 max_heart_rate = excluded.max_heart_rate, kilojoule = excluded.kilojoule,
                 percent_recorded = excluded.percent_recorded,
                 distance_meter = excluded.distance_meter,
                 altitude_gain_meter = excluded.altitude_gain_meter,
                 altitude_change_meter = excluded.altitude_change_meter,
                 zone_zero_milli = excluded.zone_zero_milli, zone_one_milli = excluded.zone_one_milli,
                 zone_two_milli = excluded.zone_two_milli,
                 zone_three_milli = excluded.zone_three_milli,
                 zone_four_milli = excluded.zone_four_milli,
                 zone_five_milli = excluded.zone_five_milli, raw = excluded.raw
               WHERE excluded.updated_at > workout.updated_at
                  OR (excluded.updated_at = workout.updated_at AND excluded.raw != workout.raw)"#,
        )
        .bind(&w.id)
        .bind(w.v1_id)
        .bind(w.sport_id)
        .bind(w.user_id)
        .bind(ts(&w.created_at))
        .bind(ts(&w.updated_at))
        .bind(ts(&w.start))
        .bind(ts(&w.end))
        .bind(&w.timezone_offset)
        .bind(local_date(w.start, &w.timezone_offset).to_string())
        // One spelling per sport, so the dashboard and exports group "Functional Fitness" and
        // `functional_fitness` together; the raw JSON keeps WHOOP's spelling.
        .bind(whoop::types::normalize_sport_name(&w.sport_name))
        .bind(w.score_state.as_str())
        .bind(s.map(|s| s.strain))
        .bind(s.map(|s| s.average_heart_rate))
        .bind(s.map(|s| s.max_heart_rate))
        .bind(s.map(|s| s.kilojoule))
        .bind(s.map(|s| s.percent_recorded))
        .bind(s.and_then(|s| s.distance_meter))
        .bind(s.and_then(|s| s.altitude_gain_meter))
        .bind(s.and_then(|s| s.altitude_change_meter))
        .bind(z.map(|z| z.zone_zero_milli))
        .bind(z.map(|z| z.zone_one_milli))
        .bind(z.map(|z| z.zone_two_milli))
        .bind(z.map(|z| z.zone_three_milli))
        .bind(z.map(|z| z.zone_four_milli))
        .bind(z.map(|z| z.zone_five_milli))
        .bind(item.raw.to_string())
        .execute(&mut **tx)
        .await?;
        Ok(result.rows_affected() > 0)
    }
}

pub(crate) async fn upsert_all<T: StoreRecord>(
    tx: &mut Transaction<'static, Sqlite>,
    items: &[Fetched<T>],
) -> Result<UpsertCounts> {
    let mut counts = UpsertCounts::default();
    for item in items {
        if T::upsert(tx, item).await? {
            counts.written += 1;
        } else {
            counts.unchanged += 1;
        }
    }
    Ok(counts)
}

/// The table and key column of a collection. Only these fixed names ever reach SQL text.
pub(crate) fn table_of(collection: Collection) -> (&'static str, &'static str) {
    match collection {
        Collection::Cycle => ("cycle", "id"),
        Collection::Sleep => ("sleep", "id"),
        Collection::Recovery => ("recovery", "cycle_id"),
        Collection::Workout => ("workout", "id"),
    }
}
