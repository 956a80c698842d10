//! The simulated timeline. Every generated day is a set of scheduled happenings (a cycle opens,
//! a sleep is uploaded, a workout is scored, …); the world applies them in time order up to the
//! simulator's "now", whether now moved because real time passed or because of
//! `/_sim/advance`. History is the same replay done silently at start, so the two can never
//! disagree. Edits and deletions (random ones while time advances, or asked for through the
//! control API) follow WHOOP's causality and report the webhooks they imply.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use rand::rngs::StdRng;
use rand::Rng;
use serde::Serialize;
use uuid::Uuid;

use crate::generate::{
    cycle_score, rescore_recovery, rescore_sleep, rescore_workout, running_cycle_score, side_rng,
    uuid_from, DayPlan, Generator,
};
use crate::model::{BodyMeasurement, Cycle, Profile, Recovery, Scoring, Sleep, Workout};
use crate::store::Store;
use crate::time::Ts;

const PURPOSE_CHAOS: u64 = 0xC4A05;
const PURPOSE_EDITS: u64 = 0xED17;
const PURPOSE_STARTUP: u64 = 0x57A27;

/// Something that happens at a known instant of a day plan.
#[derive(Debug, Clone, Copy)]
enum Happening {
    CycleOpens(usize),
    SleepUploaded { day: usize, nap: bool },
    SleepScored { day: usize, nap: bool },
    WorkoutUploaded { day: usize, index: usize },
    WorkoutScored { day: usize, index: usize },
}

/// One webhook-worthy change: `type` as WHOOP names it and the id it would carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

impl Notice {
    fn new(kind: &str, id: impl ToString) -> Notice {
        Notice {
            kind: kind.to_string(),
            id: id.to_string(),
        }
    }
}

/// What a step of the timeline (or a control call) did.
#[derive(Debug, Default)]
pub struct Changes {
    pub notices: Vec<Notice>,
    pub added: u64,
    pub updated: u64,
    pub deleted: u64,
    /// Notices are not even written down: the history built at start is told to nobody, and
    /// writing its tens of thousands of notices was an eighth of the time to build it.
    quiet: bool,
}

impl Changes {
    fn quiet(quiet: bool) -> Changes {
        Changes {
            quiet,
            ..Changes::default()
        }
    }

    fn notify(&mut self, kind: &str, id: impl ToString) {
        if !self.quiet {
            self.notices.push(Notice::new(kind, id));
        }
    }

    pub fn absorb(&mut self, other: Changes) {
        self.notices.extend(other.notices);
        self.added += other.added;
        self.updated += other.updated;
        self.deleted += other.deleted;
    }
}

/// A record the control API or the random editor can re-score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Sleep(Uuid),
    Workout(Uuid),
    Recovery(i64),
}

pub struct World {
    seed: u64,
    generator: Generator,
    /// Day plans by day; a plan is dropped (`None`) once everything in it happened and the
    /// next day's cycle opened, so a long history keeps one copy of its records, not two.
    plans: Vec<Option<Box<DayPlan>>>,
    /// Per day: happenings still due, plus one for the next day's cycle opening (which closes
    /// this day's cycle and needs its plan).
    outstanding: Vec<u16>,
    /// When the newest plan's main sleep starts.
    planned_until: Option<Ts>,
    scheduled_plans: usize,
    queue: BTreeMap<(i64, u64), Happening>,
    sequence: u64,
    edit_rng: StdRng,
    pub store: Store,
    /// Late records: uploads of days scheduled from now on happen this much later (a strap
    /// that syncs hours after the fact). Zero by default.
    pub upload_delay: Duration,
    /// Backdated records: each new day, the person also logs an activity this many hours in
    /// the past (it appears, and is announced, now). Off by default.
    pub backdated_workout_hours: Option<f64>,
}

impl World {
    /// Builds `days` of history ending at `now`, with no notices (nobody was listening yet).
    /// With `newest_night_pending`, last night is still being scored, as WHOOP usually is when
    /// someone first connects.
    pub fn new(
        seed: u64,
        user_id: i64,
        profile: Profile,
        body: BodyMeasurement,
        days: u32,
        now: Ts,
        newest_night_pending: bool,
    ) -> World {
        let first_day: NaiveDate = (now.0 - Duration::days(i64::from(days))).date_naive();
        let mut world = World {
            seed,
            generator: Generator::new(seed, days, first_day),
            plans: Vec::new(),
            outstanding: Vec::new(),
            planned_until: None,
            scheduled_plans: 0,
            queue: BTreeMap::new(),
            sequence: 0,
            edit_rng: side_rng(seed, PURPOSE_EDITS, 0),
            store: Store::new(user_id, profile, body),
            upload_delay: Duration::zero(),
            backdated_workout_hours: None,
        };
        world.plan_until(now);
        if newest_night_pending {
            world.hold_newest_sleep_pending(now);
        }
        world.schedule_new_plans();
        world.run_until(now, false);
        world.store.compact();
        world
    }

    /// Applies everything due up to `now`, including random edits and deletions.
    pub fn catch_up(&mut self, now: Ts) -> Changes {
        self.plan_until(now);
        self.schedule_new_plans();
        self.run_until(now, true)
    }

    /// Plans days until one starts after `now`; each day's happenings come after its start,
    /// so everything due by `now` is then known.
    fn plan_until(&mut self, now: Ts) {
        while self.planned_until.is_none_or(|start| start <= now) {
            let plan = self.generator.next_plan();
            self.planned_until = Some(plan.main.start);
            self.plans.push(Some(Box::new(plan)));
        }
    }

    /// WHOOP is usually still scoring last night when someone first connects; keep the newest
    /// main sleep (and so its recovery) pending for a while after start.
    fn hold_newest_sleep_pending(&mut self, now: Ts) {
        let mut rng = side_rng(self.seed, PURPOSE_STARTUP, 0);
        if let Some(plan) = self
            .plans
            .iter_mut()
            .rev()
            .flatten()
            .find(|p| p.main.appear_at <= now)
        {
            if plan.main.score_at <= now {
                plan.main.score_at = now.plus_minutes(rng.gen_range(20.0..60.0));
            }
        }
    }

    fn schedule_new_plans(&mut self) {
        while self.scheduled_plans < self.plans.len() {
            let day = self.scheduled_plans;
            self.scheduled_plans += 1;
            let Some(plan) = self.plans[day].as_deref() else {
                continue;
            };
            let mut due = vec![
                (plan.main.start, Happening::CycleOpens(day)),
                (
                    plan.main.appear_at,
                    Happening::SleepUploaded { day, nap: false },
                ),
                (
                    plan.main.score_at,
                    Happening::SleepScored { day, nap: false },
                ),
            ];
            if let Some(nap) = &plan.nap {
                due.push((nap.appear_at, Happening::SleepUploaded { day, nap: true }));
                due.push((nap.score_at, Happening::SleepScored { day, nap: true }));
            }
            for (index, w) in plan.workouts.iter().enumerate() {
                due.push((w.appear_at, Happening::WorkoutUploaded { day, index }));
                due.push((w.score_at, Happening::WorkoutScored { day, index }));
            }
            self.outstanding.push(due.len() as u16 + 1);
            for (mut at, happening) in due {
                if !matches!(happening, Happening::CycleOpens(_)) {
                    at = at.plus(self.upload_delay);
                }
                self.sequence += 1;
                self.queue.insert((at.millis(), self.sequence), happening);
            }
        }
    }

    fn run_until(&mut self, now: Ts, live: bool) -> Changes {
        let mut changes = Changes::default();
        while let Some(entry) = self.queue.first_entry() {
            if entry.key().0 > now.millis() {
                break;
            }
            let ((at_ms, _), happening) = entry.remove_entry();
            let step = self.apply(happening, Ts::from_millis(at_ms), live);
            changes.absorb(step);
            match happening {
                Happening::CycleOpens(day) => {
                    self.happened(day);
                    if day > 0 {
                        self.happened(day - 1);
                    }
                }
                Happening::SleepUploaded { day, .. }
                | Happening::SleepScored { day, .. }
                | Happening::WorkoutUploaded { day, .. }
                | Happening::WorkoutScored { day, .. } => self.happened(day),
            }
        }
        changes
    }

    /// One more of a day's happenings is done; the plan goes with the last.
    fn happened(&mut self, day: usize) {
        if let Some(n) = self.outstanding.get_mut(day) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.plans[day] = None;
            }
        }
    }

    fn apply(&mut self, happening: Happening, at: Ts, live: bool) -> Changes {
        let mut ch = Changes::quiet(!live);
        let user_id = self.store.user_id;
        match happening {
            Happening::CycleOpens(day) => {
                if let Some(previous) = day
                    .checked_sub(1)
                    .and_then(|d| self.plans[d].as_deref())
                    .map(|p| p.cycle_id)
                {
                    if let Some(c) = self.store.cycles.get_mut(&previous) {
                        c.end = Some(at);
                        c.updated_at = at;
                        c.scoring = if c.base.unscorable {
                            Scoring::Unscorable
                        } else {
                            Scoring::Pending
                        };
                        ch.updated += 1;
                    }
                    self.rescore_cycle(previous, at);
                }
                let Some(plan) = self.plans[day].as_deref() else {
                    return ch;
                };
                let plan_cycle_id = plan.cycle_id;
                self.store.cycles.insert(
                    plan.cycle_id,
                    Cycle {
                        id: plan.cycle_id,
                        user_id,
                        created_at: at,
                        updated_at: at,
                        start: plan.main.start,
                        end: None,
                        timezone_offset: plan.timezone_offset,
                        scoring: Scoring::Pending,
                        base: plan.base.clone(),
                        adjust: 0.0,
                    },
                );
                ch.added += 1;
                self.rescore_cycle(plan_cycle_id, at);
                if live {
                    ch.absorb(self.random_changes(day, at));
                    if let Some(hours) = self.backdated_workout_hours {
                        if let Some(logged) = self.log_past_workout(at, hours) {
                            ch.absorb(logged);
                        }
                    }
                }
            }
            Happening::SleepUploaded { day, nap } => {
                let Some(plan) = self.plans[day].as_deref() else {
                    return ch;
                };
                let Some(sp) = (if nap {
                    plan.nap.as_ref()
                } else {
                    Some(&plan.main)
                }) else {
                    return ch;
                };
                self.store.sleeps.insert(
                    sp.id,
                    Sleep {
                        id: sp.id,
                        cycle_id: plan.cycle_id,
                        v1_id: sp.v1_id,
                        user_id,
                        created_at: at,
                        updated_at: at,
                        start: sp.start,
                        end: sp.end,
                        timezone_offset: plan.timezone_offset,
                        nap,
                        scoring: Scoring::Pending,
                    },
                );
                ch.added += 1;
                ch.notify("sleep.updated", sp.id);
                if !nap {
                    self.store.recoveries.insert(
                        plan.cycle_id,
                        Recovery {
                            cycle_id: plan.cycle_id,
                            sleep_id: sp.id,
                            user_id,
                            created_at: at,
                            updated_at: at,
                            scoring: Scoring::Pending,
                        },
                    );
                    ch.added += 1;
                    ch.notify("recovery.updated", sp.id);
                }
            }
            Happening::SleepScored { day, nap } => {
                let Some(plan) = self.plans[day].as_deref() else {
                    return ch;
                };
                let Some(sp) = (if nap {
                    plan.nap.as_ref()
                } else {
                    Some(&plan.main)
                }) else {
                    return ch;
                };
                // A sleep deleted before it was scored stays deleted.
                let Some(sleep) = self.store.sleeps.get_mut(&sp.id) else {
                    return ch;
                };
                sleep.scoring = match &sp.score {
                    Some(s) => Scoring::Scored(s.clone()),
                    None => Scoring::Unscorable,
                };
                sleep.updated_at = at;
                ch.updated += 1;
                ch.notify("sleep.updated", sp.id);
                if !nap {
                    if let Some(r) = self.store.recoveries.get_mut(&plan.cycle_id) {
                        r.scoring = match (&sp.score, &plan.recovery) {
                            (Some(_), Some(score)) => Scoring::Scored(score.clone()),
                            _ => Scoring::Unscorable,
                        };
                        r.updated_at = at;
                        ch.updated += 1;
                        ch.notify("recovery.updated", sp.id);
                    }
                }
            }
            Happening::WorkoutUploaded { day, index } => {
                let Some(plan) = self.plans[day].as_deref() else {
                    return ch;
                };
                let Some(wp) = plan.workouts.get(index) else {
                    return ch;
                };
                self.store.insert_workout(Workout {
                    id: wp.id,
                    v1_id: wp.v1_id,
                    user_id,
                    created_at: at,
                    updated_at: at,
                    start: wp.start,
                    end: wp.end,
                    timezone_offset: plan.timezone_offset,
                    sport_name: wp.sport_name,
                    scoring: Scoring::Pending,
                    sport_id: wp.sport_id,
                    cycle_id: plan.cycle_id,
                });
                ch.added += 1;
                ch.notify("workout.updated", wp.id);
            }
            Happening::WorkoutScored { day, index } => {
                let Some(plan) = self.plans[day].as_deref() else {
                    return ch;
                };
                let Some(wp) = plan.workouts.get(index) else {
                    return ch;
                };
                let cycle_id = plan.cycle_id;
                let Some(w) = self.store.workout_mut(&wp.id) else {
                    return ch;
                };
                w.scoring = match &wp.score {
                    Some(s) => Scoring::Scored(s.clone()),
                    None => Scoring::Unscorable,
                };
                w.updated_at = at;
                ch.updated += 1;
                ch.notify("workout.updated", wp.id);
                ch.updated += self.rescore_cycle(cycle_id, at);
            }
        }
        ch
    }

    /// Recomputes a cycle after something in it changed. Returns how many records changed.
    /// An open cycle is scored too, with its strain so far: WHOOP keeps scoring the current
    /// cycle while it is open.
    fn rescore_cycle(&mut self, cycle_id: i64, at: Ts) -> u64 {
        let workouts: Vec<_> = self
            .store
            .workouts_in(cycle_id)
            .filter_map(|w| match &w.scoring {
                Scoring::Scored(s) => Some(s.clone()),
                _ => None,
            })
            .collect();
        let Some(cycle) = self.store.cycles.get_mut(&cycle_id) else {
            return 0;
        };
        if matches!(cycle.scoring, Scoring::Unscorable) {
            return 0;
        }
        let base = &cycle.base;
        let refs: Vec<_> = workouts.iter().collect();
        let scoring = match cycle.end {
            Some(end) => {
                let hours = (end.millis() - cycle.start.millis()) as f64 / 3_600_000.0;
                Scoring::Scored(cycle_score(base, hours, &refs, cycle.adjust))
            }
            None if base.unscorable => Scoring::Pending,
            None => {
                let hours = ((at.millis() - cycle.start.millis()) as f64 / 3_600_000.0).max(0.0);
                Scoring::Scored(running_cycle_score(base, hours, &refs, cycle.adjust))
            }
        };
        cycle.scoring = scoring;
        cycle.updated_at = at;
        1
    }

    /// The day's share of user edits, re-scores and deletions while time moves on:
    /// about one edit and 0.3 deletions per day, among the last week's records.
    fn random_changes(&mut self, day: usize, at: Ts) -> Changes {
        let mut rng = side_rng(self.seed, PURPOSE_CHAOS, day as u64);
        let mut ch = Changes::default();
        let edits = match rng.gen_range(0..20) {
            0..=2 => 0,
            3..=17 => 1,
            _ => 2,
        };
        let week_ago = at.plus(Duration::days(-7));
        for _ in 0..edits {
            let candidates = self.edit_candidates(week_ago);
            if candidates.is_empty() {
                break;
            }
            let target = candidates[rng.gen_range(0..candidates.len())];
            if let Some(step) = self.edit_with(target, at, &mut rng) {
                ch.absorb(step);
            }
        }
        if rng.gen_bool(0.3) {
            let candidates = self.delete_candidates(week_ago);
            if !candidates.is_empty() {
                let target = candidates[rng.gen_range(0..candidates.len())];
                if let Some(step) = self.delete(target, at) {
                    ch.absorb(step);
                }
            }
        }
        ch
    }

    fn edit_candidates(&self, since: Ts) -> Vec<Target> {
        let sleeps = self
            .store
            .sleeps
            .values()
            .filter(|s| s.start >= since && s.scoring.is_scored())
            .map(|s| Target::Sleep(s.id));
        let workouts = self
            .store
            .workouts()
            .values()
            .filter(|w| w.start >= since && w.scoring.is_scored())
            .map(|w| Target::Workout(w.id));
        let recoveries = self
            .store
            .recoveries
            .values()
            .filter(|r| r.scoring.is_scored())
            .filter(|r| {
                self.store
                    .sleeps
                    .get(&r.sleep_id)
                    .is_some_and(|s| s.start >= since)
            })
            .map(|r| Target::Recovery(r.cycle_id));
        sleeps.chain(workouts).chain(recoveries).collect()
    }

    /// Only workouts and naps are deleted at random: a main sleep's deletion would take the
    /// day's recovery with it, which real users rarely do.
    fn delete_candidates(&self, since: Ts) -> Vec<Target> {
        let naps = self
            .store
            .sleeps
            .values()
            .filter(|s| s.nap && s.start >= since)
            .map(|s| Target::Sleep(s.id));
        let workouts = self
            .store
            .workouts()
            .values()
            .filter(|w| w.start >= since)
            .map(|w| Target::Workout(w.id));
        naps.chain(workouts).collect()
    }

    /// A re-score asked for through the control API. `None` if there is no such record.
    pub fn edit(&mut self, target: Target, at: Ts) -> Option<Changes> {
        // Cloned out and put back because `edit_with` needs `self` mutably as well.
        let mut rng = self.edit_rng.clone();
        let result = self.edit_with(target, at, &mut rng);
        self.edit_rng = rng;
        result
    }

    fn edit_with(&mut self, target: Target, at: Ts, rng: &mut StdRng) -> Option<Changes> {
        let mut ch = Changes::default();
        match target {
            Target::Sleep(id) => {
                let sleep = self.store.sleeps.get_mut(&id)?;
                if let Scoring::Scored(score) = &mut sleep.scoring {
                    rescore_sleep(score, rng);
                }
                sleep.updated_at = at;
                let (cycle_id, nap) = (sleep.cycle_id, sleep.nap);
                ch.updated += 1;
                ch.notices.push(Notice::new("sleep.updated", id));
                if !nap {
                    if let Some(r) = self.store.recoveries.get_mut(&cycle_id) {
                        if let Scoring::Scored(score) = &mut r.scoring {
                            rescore_recovery(score, rng);
                        }
                        r.updated_at = at;
                        ch.updated += 1;
                        ch.notices.push(Notice::new("recovery.updated", id));
                    }
                }
                if let Some(c) = self.store.cycles.get_mut(&cycle_id) {
                    let nudge: f64 = rng.gen_range(0.2..1.0);
                    c.adjust += if rng.gen_bool(0.5) { nudge } else { -nudge };
                }
                ch.updated += self.rescore_cycle(cycle_id, at);
            }
            Target::Workout(id) => {
                let w = self.store.workout_mut(&id)?;
                if let Scoring::Scored(score) = &mut w.scoring {
                    rescore_workout(score, rng);
                }
                w.updated_at = at;
                let cycle_id = w.cycle_id;
                ch.updated += 1;
                ch.notices.push(Notice::new("workout.updated", id));
                ch.updated += self.rescore_cycle(cycle_id, at);
            }
            Target::Recovery(cycle_id) => {
                let r = self.store.recoveries.get_mut(&cycle_id)?;
                if let Scoring::Scored(score) = &mut r.scoring {
                    rescore_recovery(score, rng);
                }
                r.updated_at = at;
                ch.updated += 1;
                // v2 recovery webhooks carry the sleep's UUID, not the cycle id.
                ch.notices.push(Notice::new("recovery.updated", r.sleep_id));
            }
        }
        Some(ch)
    }

    /// The person logs an activity now for a time `hours_ago` in the past (WHOOP's "add
    /// activity" for an earlier day): it is created and announced now, but starts back then,
    /// so a catch-up that filters on start times must reach that far back to see it. It copies
    /// the newest scored workout's sport, length and score. `None` when there is no workout to
    /// copy or no cycle at that time.
    pub fn log_past_workout(&mut self, now: Ts, hours_ago: f64) -> Option<Changes> {
        let start = now.plus(Duration::milliseconds(-(hours_ago * 3_600_000.0) as i64));
        let template = self
            .store
            .workouts()
            .values()
            .filter(|w| w.scoring.is_scored())
            .max_by_key(|w| w.start)?
            .clone();
        let length = template.end.millis() - template.start.millis();
        let end = Ts::from_millis((start.millis() + length).min(now.millis()));
        let cycle = self
            .store
            .cycles
            .values()
            .filter(|c| c.start <= start && c.end.is_none_or(|e| e > start))
            .max_by_key(|c| c.start)?;
        let (cycle_id, timezone_offset) = (cycle.id, cycle.timezone_offset);
        let id = uuid_from(&mut self.edit_rng);
        self.store.insert_workout(Workout {
            id,
            v1_id: None,
            created_at: now,
            updated_at: now,
            start,
            end,
            timezone_offset,
            cycle_id,
            ..template
        });
        let mut ch = Changes {
            added: 1,
            ..Changes::default()
        };
        ch.notices.push(Notice::new("workout.updated", id));
        ch.updated += self.rescore_cycle(cycle_id, now);
        Some(ch)
    }

    /// Deletes a sleep (and, for a main sleep, its recovery) or a workout.
    pub fn delete(&mut self, target: Target, at: Ts) -> Option<Changes> {
        let mut ch = Changes::default();
        let cycle_id = match target {
            Target::Sleep(id) => {
                let sleep = self.store.sleeps.remove(&id)?;
                ch.deleted += 1;
                ch.notices.push(Notice::new("sleep.deleted", id));
                if !sleep.nap
                    && self
                        .store
                        .recoveries
                        .get(&sleep.cycle_id)
                        .is_some_and(|r| r.sleep_id == id)
                {
                    self.store.recoveries.remove(&sleep.cycle_id);
                    ch.deleted += 1;
                    ch.notices.push(Notice::new("recovery.deleted", id));
                }
                sleep.cycle_id
            }
            Target::Workout(id) => {
                let w = self.store.remove_workout(&id)?;
                ch.deleted += 1;
                ch.notices.push(Notice::new("workout.deleted", id));
                w.cycle_id
            }
            Target::Recovery(_) => return None,
        };
        ch.updated += self.rescore_cycle(cycle_id, at);
        Some(ch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    /// The single user of seed `seed`, as the simulator's member 1.
    fn world(seed: u64, days: u32, now: Ts) -> World {
        let user_id = crate::generate::user_id_for(seed);
        World::new(
            seed,
            user_id,
            crate::generate::profile_for(seed, user_id),
            crate::generate::body_for(seed),
            days,
            now,
            true,
        )
    }

    #[test]
    fn the_current_cycle_gains_strain_as_the_day_goes_on() {
        // A fixed "now", so the current day (and whether it can be scored) is always the same.
        let now = Ts::from_millis(1_781_186_400_000); // 2026-06-11T14:00:00Z
        let mut world = world(11, 30, now);
        let open = |w: &World| {
            let c = w.store.cycles.values().find(|c| c.end.is_none()).cloned();
            c.expect("an open cycle")
        };
        let strain = |c: &Cycle| match &c.scoring {
            Scoring::Scored(s) => s.strain,
            other => panic!("the open cycle is not scored: {other:?}"),
        };
        let cycle = open(&world);
        let start = cycle.start.millis();
        world.rescore_cycle(cycle.id, Ts::from_millis(start + 3_600_000));
        let morning = strain(&open(&world));
        world.rescore_cycle(cycle.id, Ts::from_millis(start + 12 * 3_600_000));
        let evening = strain(&open(&world));
        assert!(morning < evening, "{morning} then {evening}");
        // Never more than the same hours would give the day once it is over.
        let closed = cycle_score(&cycle.base, 12.0, &[], cycle.adjust);
        assert!(evening <= closed.strain, "{evening} of {}", closed.strain);
    }

    #[test]
    fn history_relations_hold() {
        let now = Ts::new(Utc::now());
        let world = world(7, 60, now);
        let s = &world.store;
        assert!(s.cycles.len() >= 58, "cycles: {}", s.cycles.len());
        let open: Vec<_> = s.cycles.values().filter(|c| c.end.is_none()).collect();
        assert_eq!(open.len(), 1);
        // Scored as it goes, unless the day cannot be scored at all.
        if open[0].base.unscorable {
            assert!(matches!(open[0].scoring, Scoring::Pending));
        } else {
            assert!(matches!(open[0].scoring, Scoring::Scored(_)));
        }
        for r in s.recoveries.values() {
            let sleep = s.sleeps.get(&r.sleep_id).expect("recovery's sleep exists");
            assert!(!sleep.nap);
            assert_eq!(sleep.cycle_id, r.cycle_id);
        }
        let newest_main = s
            .sleeps
            .values()
            .filter(|x| !x.nap)
            .max_by_key(|x| x.start)
            .expect("a sleep");
        assert!(matches!(newest_main.scoring, Scoring::Pending));
        assert!(s.sleeps.values().any(|x| x.nap));
    }

    #[test]
    fn advancing_is_chunking_independent() {
        let now = Ts::new(Utc::now());
        let mut a = world(3, 20, now);
        let mut b = world(3, 20, now);
        a.catch_up(now.plus(Duration::hours(72)));
        for h in 1..=72 {
            b.catch_up(now.plus(Duration::hours(h)));
        }
        let dump = |w: &World| {
            serde_json::to_string(&(
                w.store.cycles.values().collect::<Vec<_>>(),
                w.store.sleeps.values().collect::<Vec<_>>(),
                w.store.workouts().values().collect::<Vec<_>>(),
                w.store.recoveries.values().collect::<Vec<_>>(),
            ))
            .expect("serializes")
        };
        assert_eq!(dump(&a), dump(&b));
    }
}
