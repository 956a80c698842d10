//! The records the simulated WHOOP currently holds, as it would serve them. Only the timeline
//! (`world`) and the control API change it; the API handlers read it.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use crate::model::{BodyMeasurement, Cycle, Profile, Recovery, Sleep, Workout};
use crate::pagination::{Key, Listable, Placement};
use crate::time::Ts;

#[derive(Debug)]
pub struct Store {
    pub user_id: i64,
    pub profile: Profile,
    pub body: BodyMeasurement,
    pub cycles: BTreeMap<i64, Cycle>,
    pub sleeps: BTreeMap<Uuid, Sleep>,
    /// Keyed by cycle id: WHOOP's recovery has no id of its own.
    pub recoveries: BTreeMap<i64, Recovery>,
    workouts: BTreeMap<Uuid, Workout>,
    /// (cycle id, workout id) of every workout: a cycle is re-scored from its workouts often,
    /// and a scan of every workout each time made a long history quadratic to build.
    workouts_by_cycle: BTreeSet<(i64, Uuid)>,
}

impl Store {
    pub fn new(user_id: i64, profile: Profile, body: BodyMeasurement) -> Store {
        Store {
            user_id,
            profile,
            body,
            cycles: BTreeMap::new(),
            sleeps: BTreeMap::new(),
            recoveries: BTreeMap::new(),
            workouts: BTreeMap::new(),
            workouts_by_cycle: BTreeSet::new(),
        }
    }

    /// Rebuilds the maps with full nodes. Built one insert at a time (a history is mostly
    /// appended in key order) a B-tree's nodes end up about half full, which for records of
    /// a few hundred bytes is a third of the memory; a bulk build from sorted entries packs
    /// them.
    pub fn compact(&mut self) {
        fn packed<K: Ord, V>(map: &mut BTreeMap<K, V>) {
            *map = std::mem::take(map).into_iter().collect();
        }
        packed(&mut self.cycles);
        packed(&mut self.sleeps);
        packed(&mut self.recoveries);
        packed(&mut self.workouts);
        self.workouts_by_cycle = std::mem::take(&mut self.workouts_by_cycle)
            .into_iter()
            .collect();
    }

    pub fn workouts(&self) -> &BTreeMap<Uuid, Workout> {
        &self.workouts
    }

    /// A workout to change; its cycle must stay the same.
    pub fn workout_mut(&mut self, id: &Uuid) -> Option<&mut Workout> {
        self.workouts.get_mut(id)
    }

    pub fn insert_workout(&mut self, w: Workout) {
        self.workouts_by_cycle.insert((w.cycle_id, w.id));
        if let Some(old) = self.workouts.insert(w.id, w) {
            if old.cycle_id != self.workouts[&old.id].cycle_id {
                self.workouts_by_cycle.remove(&(old.cycle_id, old.id));
            }
        }
    }

    pub fn remove_workout(&mut self, id: &Uuid) -> Option<Workout> {
        let w = self.workouts.remove(id)?;
        self.workouts_by_cycle.remove(&(w.cycle_id, w.id));
        Some(w)
    }

    /// The workouts that fall in a cycle.
    pub fn workouts_in(&self, cycle_id: i64) -> impl Iterator<Item = &Workout> {
        self.workouts_by_cycle
            .range((cycle_id, Uuid::nil())..=(cycle_id, Uuid::max()))
            .filter_map(|(_, id)| self.workouts.get(id))
    }

    /// The main (non-nap) sleep that opened a cycle: the one its recovery comes from (a main
    /// sleep and its recovery appear and go together).
    pub fn main_sleep_of(&self, cycle_id: i64) -> Option<&Sleep> {
        self.recoveries
            .get(&cycle_id)
            .and_then(|r| self.sleeps.get(&r.sleep_id))
            .filter(|s| !s.nap)
    }
}

/// Cycle ids are positive numbers; ordered as numbers.
fn numeric_tie(id: i64) -> u128 {
    id as u128
}

impl Listable for Cycle {
    fn placement(&self, _store: &Store, now: Ts) -> Option<Placement> {
        Some(Placement {
            key: Key {
                ms: self.start.millis(),
                tie: numeric_tie(self.id),
            },
            lo: self.start.millis(),
            // The open cycle is "still happening", so it reaches up to now.
            hi: self.end.unwrap_or(now).millis(),
        })
    }
}

impl Listable for Sleep {
    fn placement(&self, _store: &Store, _now: Ts) -> Option<Placement> {
        Some(Placement {
            key: Key {
                ms: self.start.millis(),
                tie: self.id.as_u128(),
            },
            lo: self.start.millis(),
            hi: self.end.millis(),
        })
    }
}

impl Listable for Workout {
    fn placement(&self, _store: &Store, _now: Ts) -> Option<Placement> {
        Some(Placement {
            key: Key {
                ms: self.start.millis(),
                tie: self.id.as_u128(),
            },
            lo: self.start.millis(),
            hi: self.end.millis(),
        })
    }
}

impl Listable for Recovery {
    // WHOOP filters and orders recoveries by the start of the sleep they come from.
    fn placement(&self, store: &Store, _now: Ts) -> Option<Placement> {
        let sleep_start = store.sleeps.get(&self.sleep_id)?.start.millis();
        Some(Placement {
            key: Key {
                ms: sleep_start,
                tie: numeric_tie(self.cycle_id),
            },
            lo: sleep_start,
            hi: sleep_start,
        })
    }
}
