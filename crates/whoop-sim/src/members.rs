//! The WHOOP members who may sign in to the one simulated app (`--users N`). Member 1 is the
//! simulator's historical single user (same seed, same data as before there were members); member
//! k is derived from the seed and k alone, so the same seed always gives the same people.
//!
//! A member's history is generated on first use (a sign-in, a data request, a dump), not at
//! start: a thousand members start in the time of one, and members nobody signs in as cost a
//! few hundred bytes. A late-generated history is built as of the simulator's start and then
//! caught up to "now" silently, so it is the same whenever it is first needed.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use chrono::Duration;

use crate::generate::{body_for, mix, profile_for, user_id_for};
use crate::model::{BodyMeasurement, Profile};
use crate::time::Ts;
use crate::world::World;

/// Most members one simulator serves; user ids of the stranger (`/_sim/other-member-logins`)
/// sit a million above member 1's, and nobody needs more for a benchmark.
pub const MAX_USERS: u32 = 100_000;

/// Who member k is: fixed at start, cheap, and known without generating any history.
#[derive(Debug, Clone)]
pub struct Identity {
    pub seed: u64,
    pub user_id: i64,
    pub profile: Profile,
    pub body: BodyMeasurement,
}

/// The seed of member `k` (1-based). Member 1 keeps the simulator's seed.
pub fn member_seed(seed: u64, k: u32) -> u64 {
    if k == 1 {
        seed
    } else {
        mix(seed ^ mix(0x4D45_4D42_0000_0000 ^ u64::from(k)))
    }
}

// Disjoint from member 1's names (generate.rs) and from the stranger "Riley Other".
const FIRST: [&str; 40] = [
    "Aaliyah", "Bastian", "Camila", "Dmitri", "Esme", "Farid", "Greta", "Hugo", "Imani", "Jonas",
    "Kaia", "Leon", "Mira", "Nikolai", "Olivia", "Pablo", "Quinn", "Rosa", "Soren", "Talia",
    "Umar", "Vera", "Wes", "Ximena", "Yusuf", "Zara", "Amara", "Bruno", "Cyrus", "Dalia", "Emil",
    "Freya", "Gideon", "Hana", "Ivan", "Jade", "Kofi", "Lena", "Mateo", "Nadia",
];
const LAST: [&str; 40] = [
    "Abbott",
    "Bergstrom",
    "Castillo",
    "Dubois",
    "Eriksen",
    "Farouk",
    "Gallagher",
    "Horvat",
    "Ivanova",
    "Jensen",
    "Kaplan",
    "Larsen",
    "Mendes",
    "Novak",
    "Oyelaran",
    "Petrov",
    "Quint",
    "Ramos",
    "Schmidt",
    "Takahashi",
    "Ueda",
    "Vasquez",
    "Walsh",
    "Xu",
    "Yilmaz",
    "Zimmer",
    "Achebe",
    "Brandt",
    "Costa",
    "Delgado",
    "Engel",
    "Fontaine",
    "Grant",
    "Holm",
    "Iqbal",
    "Jaramillo",
    "Keller",
    "Lindgren",
    "Marsh",
    "Nakamura",
];

/// Member k's name: distinct for the first 1,600 members after member 1 (a stride through the
/// 40 × 40 names that visits every pair once); the email always carries k, so it is unique.
fn profile_of_member(seed: u64, k: u32, user_id: i64) -> Profile {
    let pairs = (FIRST.len() * LAST.len()) as u64;
    // 77 is coprime with 1,600, so k ↦ pair is one-to-one over a full turn.
    let pair = (mix(seed ^ 0x4E41_4D45) + u64::from(k - 2) * 77) % pairs;
    let first = FIRST[(pair % FIRST.len() as u64) as usize];
    let last = LAST[(pair / FIRST.len() as u64) as usize];
    Profile {
        user_id,
        email: format!(
            "{}.{}.{k}@example.com",
            first.to_lowercase(),
            last.to_lowercase()
        ),
        first_name: first.to_string(),
        last_name: last.to_string(),
    }
}

/// The identities of members 1..=n, with user ids distinct from each other and from `avoid`.
pub fn identities(seed: u64, n: u32, avoid: i64) -> Vec<Identity> {
    let mut taken: HashSet<i64> = HashSet::from([avoid]);
    (1..=n)
        .map(|k| {
            let member_seed = member_seed(seed, k);
            let mut user_id = user_id_for(member_seed);
            let mut redraw = member_seed;
            while k > 1 && taken.contains(&user_id) {
                redraw = mix(redraw);
                user_id = user_id_for(redraw);
            }
            taken.insert(user_id);
            let profile = if k == 1 {
                profile_for(seed, user_id)
            } else {
                profile_of_member(seed, k, user_id)
            };
            Identity {
                seed: member_seed,
                user_id,
                profile,
                body: body_for(member_seed),
            }
        })
        .collect()
}

/// Late and backdated records (`--upload-delay-hours`, `/_sim/late-records`): the settings a
/// member's world gets when it is generated.
#[derive(Debug, Clone, Copy, Default)]
pub struct LateSettings {
    pub upload_delay: Duration,
    pub backdated_workout_hours: Option<f64>,
}

impl LateSettings {
    pub fn apply(&self, world: &mut World) {
        world.upload_delay = self.upload_delay;
        world.backdated_workout_hours = self.backdated_workout_hours;
    }
}

/// Requests of one member, for `/_sim/stats`: counted when the bearer token is known, whether
/// or not it still works, so a member's 429s are theirs.
#[derive(Debug, Default, Clone, Copy)]
pub struct Usage {
    pub requests: u64,
    pub rate_limited: u64,
    /// (window number, requests counted in it) for the app's current minute and day windows.
    pub minute: (u64, u64),
    pub day: (u64, u64),
}

pub struct Member {
    /// 1-based.
    pub index: u32,
    pub identity: Identity,
    world: OnceLock<Mutex<World>>,
    /// WHOOP notifies an app about a member only while the member has it authorized. Member 1
    /// starts notified (the simulator's behaviour before there were members); the others from
    /// their first grant on.
    disconnected: AtomicBool,
    pub usage: Mutex<Usage>,
}

impl Member {
    pub fn disconnected(&self) -> bool {
        self.disconnected.load(Ordering::Relaxed)
    }

    pub fn set_disconnected(&self, disconnected: bool) {
        self.disconnected.store(disconnected, Ordering::Relaxed);
    }

    /// The world if it was generated already.
    pub fn generated(&self) -> Option<&Mutex<World>> {
        self.world.get()
    }
}

/// Everything needed to generate a member's history when it is first needed.
pub struct Members {
    list: Vec<Member>,
    days: u32,
    start: Ts,
    newest_night_pending: bool,
    /// Settings for worlds generated from now on (changed by `/_sim/late-records` without a
    /// member).
    pub late: Mutex<LateSettings>,
}

impl Members {
    pub fn new(
        identities: Vec<Identity>,
        days: u32,
        start: Ts,
        newest_night_pending: bool,
        late: LateSettings,
    ) -> Members {
        let list = identities
            .into_iter()
            .enumerate()
            .map(|(i, identity)| Member {
                index: i as u32 + 1,
                identity,
                world: OnceLock::new(),
                disconnected: AtomicBool::new(i > 0),
                usage: Mutex::new(Usage::default()),
            })
            .collect();
        Members {
            list,
            days,
            start,
            newest_night_pending,
            late: Mutex::new(late),
        }
    }

    pub fn count(&self) -> u32 {
        self.list.len() as u32
    }

    /// Member `k` (1-based), if there is one.
    pub fn get(&self, k: u32) -> Option<&Member> {
        k.checked_sub(1).and_then(|i| self.list.get(i as usize))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Member> {
        self.list.iter()
    }

    /// Member k's world, generated now if it was not yet: built as of the simulator's start,
    /// then brought up to `now` without notices (nobody was listening to a member nobody had
    /// asked about).
    pub fn world<'a>(&self, member: &'a Member, now: Ts) -> &'a Mutex<World> {
        member.world.get_or_init(|| {
            let id = &member.identity;
            let mut world = World::new(
                id.seed,
                id.user_id,
                id.profile.clone(),
                id.body.clone(),
                self.days,
                self.start,
                self.newest_night_pending,
            );
            crate::lock(&self.late).apply(&mut world);
            if now > self.start {
                world.catch_up(now);
            }
            Mutex::new(world)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_distinct_and_member_one_is_the_single_user() {
        let ids = identities(1, 2_000, 0);
        assert_eq!(ids[0].user_id, user_id_for(1));
        assert_eq!(ids[0].profile.email, profile_for(1, ids[0].user_id).email);
        let users: HashSet<i64> = ids.iter().map(|i| i.user_id).collect();
        let emails: HashSet<&str> = ids.iter().map(|i| i.profile.email.as_str()).collect();
        let names: HashSet<(String, String)> = ids[..1_601]
            .iter()
            .map(|i| (i.profile.first_name.clone(), i.profile.last_name.clone()))
            .collect();
        assert_eq!(users.len(), 2_000);
        assert_eq!(emails.len(), 2_000);
        assert_eq!(names.len(), 1_601);
        // The same seed gives the same people.
        assert_eq!(identities(1, 3, 0)[2].profile.email, ids[2].profile.email);
        assert_ne!(identities(2, 3, 0)[2].user_id, ids[2].user_id);
    }
}
