//! The records the simulated WHOOP currently holds, as it would serve them. Only the timeline
//! (`world`) and the control API change it; the API handlers read it.

use std::collections::BTreeMap;

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
    pub workouts: BTreeMap<Uuid, Workout>,
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
        }
    }

    /// The main (non-nap) sleep that opened a cycle.
    pub fn main_sleep_of(&self, cycle_id: i64) -> Option<&Sleep> {
        self.sleeps
            .values()
            .find(|s| s.cycle_id == cycle_id && !s.nap)
    }
}

/// Cycle ids are numbers; padding keeps their string tie-breaker in numeric order.
fn numeric_tie(id: i64) -> String {
    format!("{id:020}")
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
                tie: self.id.to_string(),
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
                tie: self.id.to_string(),
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
