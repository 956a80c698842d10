//! Deterministic, physiologically plausible data. One `DayPlan` per night: the main sleep that
//! opens cycle k, the day's naps and workouts, and the scores they will get. Plans come from one
//! seeded random stream consumed strictly in day order, so the same seed and start day give the
//! same history however the timeline is later replayed.

use chrono::{Duration, NaiveDate, NaiveTime};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use crate::model::{
    BodyMeasurement, CycleScore, Profile, RecoveryScore, SleepNeeded, SleepScore, StageSummary,
    WorkoutScore, ZoneDurations,
};
use crate::time::Ts;

const HOUR_MS: i64 = 3_600_000;
const MINUTE_MS: i64 = 60_000;

/// WHOOP stopped publishing v1 ids after this instant; only older records may carry them.
const V1_CUTOFF_MS: i64 = 1_756_684_800_000; // 2025-09-01T00:00:00Z

/// splitmix64: turns the seed into well-spread independent values (user id, side streams).
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A separate random stream for one purpose, so drawing from it never shifts the plan stream.
pub fn side_rng(seed: u64, purpose: u64, index: u64) -> StdRng {
    StdRng::seed_from_u64(mix(mix(seed ^ purpose.rotate_left(32)) ^ index))
}

pub fn user_id_for(seed: u64) -> i64 {
    10_000_000 + (mix(seed) % 89_999_999) as i64
}

pub fn uuid_from(rng: &mut StdRng) -> Uuid {
    let bytes: [u8; 16] = rng.gen();
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

pub fn round_to(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

fn normal(rng: &mut StdRng, mean: f64, sd: f64) -> f64 {
    // Box–Muller; `1 - u` keeps the logarithm finite.
    let u1: f64 = 1.0 - rng.gen::<f64>();
    let u2: f64 = rng.gen();
    mean + sd * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn minutes(rng: &mut StdRng, lo: f64, hi: f64) -> Duration {
    Duration::milliseconds((rng.gen_range(lo..hi) * MINUTE_MS as f64) as i64)
}

pub fn profile_for(seed: u64, user_id: i64) -> Profile {
    const FIRST: [&str; 12] = [
        "Avery", "Jordan", "Maya", "Lucas", "Priya", "Noah", "Elena", "Samuel", "Chloe", "Diego",
        "Hannah", "Kenji",
    ];
    const LAST: [&str; 12] = [
        "Fischer",
        "Okafor",
        "Lindqvist",
        "Moreau",
        "Tanaka",
        "Alvarez",
        "Brennan",
        "Kowalski",
        "Haddad",
        "Nguyen",
        "Sørensen",
        "Rossi",
    ];
    let h = mix(seed ^ 0x5EED_0F4A);
    let first = FIRST[(h % FIRST.len() as u64) as usize];
    let last = LAST[((h >> 16) % LAST.len() as u64) as usize];
    let email_last: String = last
        .chars()
        .map(|c| if c == 'ø' { 'o' } else { c })
        .collect();
    Profile {
        user_id,
        email: format!(
            "{}.{}@example.com",
            first.to_lowercase(),
            email_last.to_lowercase()
        ),
        first_name: first.to_string(),
        last_name: last.to_string(),
    }
}

pub fn body_for(seed: u64) -> BodyMeasurement {
    let mut rng = side_rng(seed, 0xB0D4, 0);
    BodyMeasurement {
        height_meter: round_to(rng.gen_range(1.58..1.96), 4),
        weight_kilogram: round_to(rng.gen_range(55.0..98.0), 4),
        max_heart_rate: rng.gen_range(178..201),
    }
}

/// Values of a day that do not depend on which workouts survive edits and deletions.
#[derive(Debug, Clone)]
pub struct DayBase {
    pub strain: f64,
    pub kj_per_hour: f64,
    pub avg_hr: f64,
    pub max_hr: i32,
    pub unscorable: bool,
}

#[derive(Debug, Clone)]
pub struct SleepPlan {
    pub id: Uuid,
    pub v1_id: Option<i64>,
    pub start: Ts,
    pub end: Ts,
    pub appear_at: Ts,
    pub score_at: Ts,
    /// `None` means the sleep ends UNSCORABLE.
    pub score: Option<SleepScore>,
}

#[derive(Debug, Clone)]
pub struct WorkoutPlan {
    pub id: Uuid,
    pub v1_id: Option<i64>,
    pub sport_name: &'static str,
    pub sport_id: Option<i32>,
    pub start: Ts,
    pub end: Ts,
    pub appear_at: Ts,
    pub score_at: Ts,
    pub score: Option<WorkoutScore>,
}

#[derive(Debug, Clone)]
pub struct DayPlan {
    pub timezone_offset: &'static str,
    pub cycle_id: i64,
    pub main: SleepPlan,
    /// `None` means UNSCORABLE.
    pub recovery: Option<RecoveryScore>,
    pub nap: Option<SleepPlan>,
    pub workouts: Vec<WorkoutPlan>,
    pub base: DayBase,
}

/// When a main sleep happens, drawn a day ahead because day k's activities must end before
/// sleep k+1 starts.
#[derive(Debug, Clone)]
struct Timing {
    start: Ts,
    end: Ts,
    offset_secs: i32,
}

/// Running physiological state carried from one day to the next.
#[derive(Debug, Clone)]
struct Carry {
    prev_strain: f64,
    prev_deficit_ms: i64,
    prev_nap_ms: i64,
    consistency: f64,
    form: f64,
}

struct Sport {
    name: &'static str,
    v1_id: i32,
    weight: u32,
    minutes: (f64, f64),
    intensity: (f64, f64),
    speed_mps: Option<(f64, f64)>,
}

const SPORTS: [Sport; 10] = [
    Sport {
        name: "running",
        v1_id: 0,
        weight: 25,
        minutes: (25.0, 75.0),
        intensity: (0.5, 0.9),
        speed_mps: Some((2.5, 3.9)),
    },
    Sport {
        name: "cycling",
        v1_id: 1,
        weight: 15,
        minutes: (40.0, 150.0),
        intensity: (0.4, 0.8),
        speed_mps: Some((5.5, 9.0)),
    },
    Sport {
        name: "weightlifting",
        v1_id: 45,
        weight: 15,
        minutes: (35.0, 80.0),
        intensity: (0.25, 0.55),
        speed_mps: None,
    },
    Sport {
        name: "functional_fitness",
        v1_id: 48,
        weight: 10,
        minutes: (30.0, 60.0),
        intensity: (0.5, 0.85),
        speed_mps: None,
    },
    Sport {
        name: "walking",
        v1_id: 63,
        weight: 10,
        minutes: (20.0, 90.0),
        intensity: (0.05, 0.3),
        speed_mps: None,
    },
    Sport {
        name: "yoga",
        v1_id: 44,
        weight: 8,
        minutes: (30.0, 75.0),
        intensity: (0.05, 0.25),
        speed_mps: None,
    },
    Sport {
        name: "hiit",
        v1_id: 96,
        weight: 7,
        minutes: (20.0, 45.0),
        intensity: (0.65, 0.95),
        speed_mps: None,
    },
    Sport {
        name: "swimming",
        v1_id: 33,
        weight: 4,
        minutes: (25.0, 60.0),
        intensity: (0.45, 0.8),
        speed_mps: None,
    },
    Sport {
        name: "tennis",
        v1_id: 34,
        weight: 4,
        minutes: (45.0, 120.0),
        intensity: (0.4, 0.75),
        speed_mps: None,
    },
    Sport {
        name: "rowing",
        v1_id: 18,
        weight: 2,
        minutes: (20.0, 60.0),
        intensity: (0.5, 0.85),
        speed_mps: None,
    },
];

/// Produces day plans in order from a seed and the first day of history.
pub struct Generator {
    rng: StdRng,
    history_days: u32,
    first_day: NaiveDate,
    hrv_base: f64,
    rhr_base: f64,
    need_base_ms: i64,
    max_hr: i32,
    carry: Carry,
    next_timing: Option<Timing>,
    next_k: usize,
    next_cycle_id: i64,
    next_v1_sleep: i64,
    next_v1_workout: i64,
}

impl Generator {
    /// `first_day` is the local date of the evening on which the first main sleep starts.
    pub fn new(seed: u64, history_days: u32, first_day: NaiveDate) -> Generator {
        let mut rng = StdRng::seed_from_u64(seed);
        let hrv_base = rng.gen_range(40.0..78.0);
        let rhr_base = rng.gen_range(48.0..58.0);
        let need_base_ms = rng.gen_range(27_000_000..30_600_000); // 7.5 h – 8.5 h
        let max_hr = body_for(seed).max_heart_rate;
        let next_cycle_id = 600_000_000 + (mix(seed ^ 0xC1C1E) % 200_000_000) as i64;
        let next_v1_sleep = 900_000_000 + (mix(seed ^ 0x51EE9) % 50_000_000) as i64;
        let next_v1_workout = 1_100_000_000 + (mix(seed ^ 0x3042) % 50_000_000) as i64;
        Generator {
            rng,
            history_days,
            first_day,
            hrv_base,
            rhr_base,
            need_base_ms,
            max_hr,
            carry: Carry {
                prev_strain: 9.0,
                prev_deficit_ms: 0,
                prev_nap_ms: 0,
                consistency: 75.0,
                form: 0.0,
            },
            next_timing: None,
            next_k: 0,
            next_cycle_id,
            next_v1_sleep,
            next_v1_workout,
        }
    }

    /// Mostly at home (UTC−5), with a trip to Europe and one to the US west coast.
    fn offset_secs(&self, k: usize) -> i32 {
        let days = self.history_days as usize;
        let europe_from = days * 3 / 10;
        let europe_len = (days / 8).clamp(1, 12);
        let west_from = days * 62 / 100;
        let west_len = (days / 12).clamp(1, 9);
        if k >= europe_from && k < europe_from + europe_len && k < days {
            3600
        } else if k >= west_from && k < west_from + west_len && k < days {
            -8 * 3600
        } else {
            -5 * 3600
        }
    }

    fn local_to_utc(offset_secs: i32, date: NaiveDate, minutes_after_midnight: f64) -> Ts {
        let midnight = date.and_time(NaiveTime::MIN).and_utc();
        let local_ms = midnight.timestamp_millis() + (minutes_after_midnight * 60_000.0) as i64;
        Ts::from_millis(local_ms - i64::from(offset_secs) * 1000)
    }

    fn local_date(offset_secs: i32, at: Ts) -> NaiveDate {
        (at.0 + Duration::seconds(i64::from(offset_secs))).date_naive()
    }

    fn draw_timing(&mut self, k: usize) -> Timing {
        let offset_secs = self.offset_secs(k);
        let date = self.first_day + Duration::days(k as i64);
        // Onset between 22:30 and 00:30 local.
        let onset_minutes = 22.5 * 60.0 + self.rng.gen_range(0.0..120.0);
        let start = Self::local_to_utc(offset_secs, date, onset_minutes);
        let hours = normal(&mut self.rng, 7.6, 0.65).clamp(6.0, 9.0);
        let end = start.plus_minutes(hours * 60.0);
        Timing {
            start,
            end,
            offset_secs,
        }
    }

    fn v1_sleep_id(&mut self, start: Ts) -> Option<i64> {
        if start.millis() < V1_CUTOFF_MS && self.rng.gen_bool(0.6) {
            self.next_v1_sleep += self.rng.gen_range(1_000..30_000);
            Some(self.next_v1_sleep)
        } else {
            None
        }
    }

    /// The plan for the next day. Plans must be taken in order; each call consumes the stream.
    pub fn next_plan(&mut self) -> DayPlan {
        let k = self.next_k;
        self.next_k += 1;
        let timing = match self.next_timing.take() {
            Some(t) => t,
            None => self.draw_timing(k),
        };
        let next = self.draw_timing(k + 1);
        self.next_timing = Some(next.clone());

        self.next_cycle_id += self.rng.gen_range(1_500..40_000);
        let cycle_id = self.next_cycle_id;
        let offset_secs = timing.offset_secs;
        let timezone_offset = offset_text(offset_secs);

        // Slow "form" drift and weekly rhythm make trends look like trends, not noise.
        self.carry.form =
            (self.carry.form * 0.9 + normal(&mut self.rng, 0.0, 4.0)).clamp(-15.0, 15.0);

        let main = self.main_sleep(k, &timing);
        let performance = main
            .score
            .as_ref()
            .map(|s| asleep_ms(&s.stage_summary) as f64 / need_ms(&s.sleep_needed) as f64 * 100.0)
            .unwrap_or(80.0);
        let recovery = self.recovery(k, performance);

        // The day between waking and the next night: morning workout, maybe a nap, evening workout.
        let latest_end = next.start.plus_minutes(-95.0);
        let wake_date = Self::local_date(offset_secs, timing.end);
        let mut cursor = timing.end.plus(minutes(&mut self.rng, 40.0, 120.0));
        let n_workouts = match self.rng.gen_range(0..10) {
            0..=2 => 0,
            3..=7 => 1,
            _ => 2,
        };
        let morning = n_workouts == 2 || (n_workouts == 1 && self.rng.gen_bool(0.4));
        let evening = n_workouts == 2 || (n_workouts == 1 && !morning);
        let mut workouts = Vec::new();
        if morning {
            if let Some(w) = self.workout(cursor, latest_end) {
                cursor = w.end.plus(minutes(&mut self.rng, 60.0, 180.0));
                workouts.push(w);
            }
        }
        let mut nap = None;
        if self.rng.gen_range(0..8) == 0 {
            let earliest = Self::local_to_utc(
                offset_secs,
                wake_date,
                13.0 * 60.0 + self.rng.gen_range(0.0..150.0),
            );
            let start = cursor.max(earliest);
            let length = self.rng.gen_range(20.0..90.0);
            let end = start.plus_minutes(length);
            if end <= latest_end {
                nap = Some(self.nap(k, start, end));
                cursor = end.plus_minutes(60.0);
            }
        }
        if evening {
            let earliest = Self::local_to_utc(
                offset_secs,
                wake_date,
                17.0 * 60.0 + self.rng.gen_range(0.0..150.0),
            );
            if let Some(w) = self.workout(cursor.max(earliest), latest_end) {
                workouts.push(w);
            }
        }

        let base = DayBase {
            strain: self.rng.gen_range(4.5..10.5),
            kj_per_hour: self.rng.gen_range(290.0..400.0),
            avg_hr: self.rhr_base + self.rng.gen_range(10.0..20.0),
            max_hr: self.rng.gen_range(110..140),
            unscorable: self.rng.gen_bool(0.01),
        };
        let scores: Vec<&WorkoutScore> = workouts.iter().filter_map(|w| w.score.as_ref()).collect();
        let hours = (next.start.millis() - timing.start.millis()) as f64 / HOUR_MS as f64;
        self.carry.prev_strain = cycle_score(&base, hours, &scores, 0.0).strain;
        self.carry.prev_nap_ms = nap
            .as_ref()
            .and_then(|n| n.score.as_ref())
            .map(|s| asleep_ms(&s.stage_summary))
            .unwrap_or(0);

        DayPlan {
            timezone_offset,
            cycle_id,
            main,
            recovery,
            nap,
            workouts,
            base,
        }
    }

    fn main_sleep(&mut self, k: usize, timing: &Timing) -> SleepPlan {
        let id = uuid_from(&mut self.rng);
        let v1_id = self.v1_sleep_id(timing.start);
        let appear_at = timing.end.plus(minutes(&mut self.rng, 10.0, 45.0));
        let score_at = appear_at.plus(minutes(&mut self.rng, 15.0, 75.0));
        let in_bed = timing.end.millis() - timing.start.millis();
        let need = SleepNeeded {
            baseline_milli: self.need_base_ms,
            need_from_sleep_debt_milli: (self.carry.prev_deficit_ms / 2).clamp(0, 2 * HOUR_MS),
            need_from_recent_strain_milli: ((self.carry.prev_strain - 8.0).max(0.0)
                * 3.0
                * MINUTE_MS as f64) as i64,
            need_from_recent_nap_milli: -((self.carry.prev_nap_ms as f64 * 0.6) as i64),
        };
        let stages = self.stages(in_bed, true);
        let asleep = asleep_ms(&stages);
        self.carry.prev_deficit_ms = (need_ms(&need) - asleep).max(0);
        self.carry.consistency = (self.carry.consistency * 0.7
            + normal(&mut self.rng, 78.0, 10.0) * 0.3)
            .clamp(35.0, 98.0);
        let performance = (asleep as f64 / need_ms(&need) as f64 * 100.0).min(100.0);
        let score = SleepScore {
            respiratory_rate: round_to(normal(&mut self.rng, 15.2, 0.7).clamp(12.5, 18.0), 6),
            // A new user: WHOOP cannot compute sleep need or consistency for the first nights.
            sleep_performance_percentage: (k >= 2).then(|| performance.round()),
            sleep_consistency_percentage: (k >= 4).then(|| self.carry.consistency.round()),
            sleep_efficiency_percentage: round_to(asleep as f64 / in_bed as f64 * 100.0, 6),
            stage_summary: stages,
            sleep_needed: need,
        };
        let unscorable = self.rng.gen_bool(0.015);
        SleepPlan {
            id,
            v1_id,
            start: timing.start,
            end: timing.end,
            appear_at,
            score_at,
            score: (!unscorable).then_some(score),
        }
    }

    fn nap(&mut self, k: usize, start: Ts, end: Ts) -> SleepPlan {
        let id = uuid_from(&mut self.rng);
        let v1_id = self.v1_sleep_id(start);
        let appear_at = end.plus(minutes(&mut self.rng, 5.0, 30.0));
        let score_at = appear_at.plus(minutes(&mut self.rng, 5.0, 40.0));
        let in_bed = end.millis() - start.millis();
        let stages = self.stages(in_bed, false);
        let asleep = asleep_ms(&stages);
        let need = SleepNeeded {
            baseline_milli: self.need_base_ms,
            need_from_sleep_debt_milli: (self.carry.prev_deficit_ms / 2).clamp(0, 2 * HOUR_MS),
            need_from_recent_strain_milli: 0,
            need_from_recent_nap_milli: 0,
        };
        let score = SleepScore {
            respiratory_rate: round_to(normal(&mut self.rng, 15.0, 0.7).clamp(12.5, 18.0), 6),
            sleep_performance_percentage: (k >= 2)
                .then(|| (asleep as f64 / need_ms(&need) as f64 * 100.0).round()),
            sleep_consistency_percentage: None,
            sleep_efficiency_percentage: round_to(asleep as f64 / in_bed as f64 * 100.0, 6),
            stage_summary: stages,
            sleep_needed: need,
        };
        let unscorable = self.rng.gen_bool(0.02);
        SleepPlan {
            id,
            v1_id,
            start,
            end,
            appear_at,
            score_at,
            score: (!unscorable).then_some(score),
        }
    }

    fn stages(&mut self, in_bed: i64, main: bool) -> StageSummary {
        let awake = (in_bed as f64 * self.rng.gen_range(0.04..0.12)) as i64;
        let no_data = if self.rng.gen_bool(0.1) {
            (in_bed as f64 * self.rng.gen_range(0.0..0.05)) as i64
        } else {
            0
        };
        let asleep = in_bed - awake - no_data;
        let light = (asleep as f64 * self.rng.gen_range(0.47..0.57)) as i64;
        let sws = (asleep as f64 * self.rng.gen_range(0.15..0.24)) as i64;
        let rem = asleep - light - sws;
        let cycles = ((asleep as f64 / (90.0 * MINUTE_MS as f64)).round() as i32
            + self.rng.gen_range(-1..=1))
        .max(if main { 2 } else { 0 });
        StageSummary {
            total_in_bed_time_milli: in_bed,
            total_awake_time_milli: awake,
            total_no_data_time_milli: no_data,
            total_light_sleep_time_milli: light,
            total_slow_wave_sleep_time_milli: sws,
            total_rem_sleep_time_milli: rem,
            sleep_cycle_count: cycles,
            disturbance_count: if main {
                self.rng.gen_range(2..19)
            } else {
                self.rng.gen_range(0..4)
            },
        }
    }

    fn recovery(&mut self, k: usize, sleep_performance: f64) -> Option<RecoveryScore> {
        let raw = 64.0 + 0.4 * (sleep_performance - 85.0) - 1.6 * (self.carry.prev_strain - 10.0)
            + self.carry.form
            + normal(&mut self.rng, 0.0, 17.0);
        let score = raw.round().clamp(1.0, 99.0);
        let hrv = (self.hrv_base * (0.6 + 0.7 * score / 100.0) * self.rng.gen_range(0.93..1.07))
            .clamp(25.0, 120.0);
        let rhr = (self.rhr_base + (55.0 - score) * 0.1 + normal(&mut self.rng, 0.0, 1.5))
            .round()
            .clamp(42.0, 70.0);
        // Older straps (WHOOP 3.0) measured neither; the user upgraded early in the history.
        let has_sensors =
            k as f64 >= f64::from(self.history_days) * 0.15 && !self.rng.gen_bool(0.03);
        let spo2 = round_to(self.rng.gen_range(94.5..99.2), 4);
        let skin = round_to(self.rng.gen_range(33.2..35.2), 4);
        let unscorable = self.rng.gen_bool(0.01);
        (!unscorable).then(|| RecoveryScore {
            user_calibrating: k < 4,
            recovery_score: score,
            resting_heart_rate: rhr,
            hrv_rmssd_milli: round_to(hrv, 6),
            spo2_percentage: has_sensors.then_some(spo2),
            skin_temp_celsius: has_sensors.then_some(skin),
        })
    }

    fn workout(&mut self, start: Ts, latest_end: Ts) -> Option<WorkoutPlan> {
        let total: u32 = SPORTS.iter().map(|s| s.weight).sum();
        let mut pick = self.rng.gen_range(0..total);
        let sport = SPORTS
            .iter()
            .find(|s| {
                if pick < s.weight {
                    true
                } else {
                    pick -= s.weight;
                    false
                }
            })
            .unwrap_or(&SPORTS[0]);
        let minutes_long = self.rng.gen_range(sport.minutes.0..sport.minutes.1);
        let end = start.plus_minutes(minutes_long);
        let id = uuid_from(&mut self.rng);
        let intensity = self.rng.gen_range(sport.intensity.0..sport.intensity.1);
        let score = self.workout_score(sport, minutes_long, intensity);
        let appear_at = end.plus(minutes(&mut self.rng, 5.0, 30.0));
        let score_at = appear_at.plus(minutes(&mut self.rng, 5.0, 40.0));
        let unscorable = self.rng.gen_bool(0.015);
        if end > latest_end {
            return None;
        }
        let (v1_id, sport_id) = if start.millis() < V1_CUTOFF_MS && self.rng.gen_bool(0.6) {
            self.next_v1_workout += self.rng.gen_range(1_000..30_000);
            (Some(self.next_v1_workout), Some(sport.v1_id))
        } else {
            (None, None)
        };
        Some(WorkoutPlan {
            id,
            v1_id,
            sport_name: sport.name,
            sport_id,
            start,
            end,
            appear_at,
            score_at,
            score: (!unscorable).then_some(score),
        })
    }

    fn workout_score(&mut self, sport: &Sport, minutes_long: f64, intensity: f64) -> WorkoutScore {
        let load = (0.65 * intensity + 0.35 * (minutes_long / 120.0)).clamp(0.0, 1.0);
        let strain = (4.0 + 14.0 * load + normal(&mut self.rng, 0.0, 0.6)).clamp(4.0, 18.0);
        let max_hr_cap = self.max_hr - 3;
        let avg = ((95.0 + 70.0 * intensity + normal(&mut self.rng, 0.0, 4.0)) as i32)
            .clamp(85, max_hr_cap - 12);
        let max = (avg + 12 + (30.0 * intensity) as i32 + self.rng.gen_range(0..8)).min(max_hr_cap);
        let kilojoule = minutes_long * (14.0 + 38.0 * intensity) * self.rng.gen_range(0.9..1.1);
        let percent_recorded = if self.rng.gen_bool(0.8) {
            100.0
        } else {
            round_to(self.rng.gen_range(85.0..99.9), 4)
        };
        let recorded_ms = (minutes_long * MINUTE_MS as f64 * percent_recorded / 100.0) as i64;
        let zone_durations = self.zones(recorded_ms, intensity);
        let (distance, gain, change) = match sport.speed_mps {
            Some((lo, hi)) if self.rng.gen_bool(0.9) => {
                let speed = self.rng.gen_range(lo..hi);
                (
                    Some(round_to(speed * minutes_long * 60.0, 3)),
                    Some(round_to(
                        self.rng.gen_range(0.0..25.0) * minutes_long / 10.0,
                        3,
                    )),
                    Some(round_to(self.rng.gen_range(-30.0..30.0), 3)),
                )
            }
            _ => (None, None, None),
        };
        WorkoutScore {
            strain: round_to(strain, 6),
            average_heart_rate: avg,
            max_heart_rate: max,
            kilojoule: round_to(kilojoule, 4),
            percent_recorded,
            distance_meter: distance,
            altitude_gain_meter: gain,
            altitude_change_meter: change,
            zone_durations,
        }
    }

    fn zones(&mut self, total_ms: i64, intensity: f64) -> ZoneDurations {
        let center = 1.0 + 3.5 * intensity;
        let weights: Vec<f64> = (0..6)
            .map(|z| {
                let d = z as f64 - center;
                (-d * d / 1.5).exp() * self.rng.gen_range(0.7..1.3)
            })
            .collect();
        let sum: f64 = weights.iter().sum();
        let mut parts: Vec<i64> = weights
            .iter()
            .map(|w| (w / sum * total_ms as f64) as i64)
            .collect();
        let assigned: i64 = parts.iter().sum();
        // Rounding leftovers go to the busiest zone so the zones add up to the recorded time.
        if let Some((i, _)) = parts.iter().enumerate().max_by_key(|(_, v)| **v) {
            parts[i] += total_ms - assigned;
        }
        ZoneDurations {
            zone_zero_milli: parts[0],
            zone_one_milli: parts[1],
            zone_two_milli: parts[2],
            zone_three_milli: parts[3],
            zone_four_milli: parts[4],
            zone_five_milli: parts[5],
        }
    }
}

/// The `±hh:mm` text of an offset, shared by every record with that offset: a handful of
/// offsets occur, and a string per record would cost more than the record's numbers.
pub fn offset_text(secs: i32) -> &'static str {
    static TEXTS: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<i32, &'static str>>,
    > = std::sync::OnceLock::new();
    let texts = TEXTS.get_or_init(Default::default);
    crate::lock(texts)
        .entry(secs)
        .or_insert_with(|| Box::leak(format_offset(secs).into_boxed_str()))
}

pub fn format_offset(secs: i32) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let abs = secs.unsigned_abs();
    format!("{sign}{:02}:{:02}", abs / 3600, (abs % 3600) / 60)
}

pub fn asleep_ms(s: &StageSummary) -> i64 {
    s.total_light_sleep_time_milli
        + s.total_slow_wave_sleep_time_milli
        + s.total_rem_sleep_time_milli
}

pub fn need_ms(n: &SleepNeeded) -> i64 {
    (n.baseline_milli
        + n.need_from_sleep_debt_milli
        + n.need_from_recent_strain_milli
        + n.need_from_recent_nap_milli)
        .max(1)
}

/// A closed cycle's score from the day's fixed part plus the workouts that still exist, so
/// editing or deleting a workout moves the day strain the way it would at WHOOP.
pub fn cycle_score(
    base: &DayBase,
    hours: f64,
    workouts: &[&WorkoutScore],
    adjust: f64,
) -> CycleScore {
    let mut strain = base.strain;
    let mut hardest: f64 = 0.0;
    let mut kilojoule = base.kj_per_hour * hours;
    let mut max_hr = base.max_hr;
    for w in workouts {
        strain += (w.strain - 3.0).max(0.0) * 0.45;
        hardest = hardest.max(w.strain);
        kilojoule += w.kilojoule;
        max_hr = max_hr.max(w.max_heart_rate);
    }
    let strain = (strain.max(hardest + 0.3) + adjust * 0.1).clamp(4.0, 20.0);
    CycleScore {
        strain: round_to(strain, 6),
        kilojoule: round_to(kilojoule + adjust * 40.0, 4),
        average_heart_rate: (base.avg_hr + (strain - 8.0) * 0.9).round() as i32,
        max_heart_rate: max_hr,
    }
}

/// The current cycle's score so far: WHOOP keeps scoring an open cycle, so its strain and
/// energy grow through the day. The day's baseline strain builds over about 16 waking hours;
/// a workout counts in full as soon as it is scored.
pub fn running_cycle_score(
    base: &DayBase,
    hours: f64,
    workouts: &[&WorkoutScore],
    adjust: f64,
) -> CycleScore {
    let full = cycle_score(base, hours, workouts, adjust);
    let so_far = (hours / 16.0).clamp(0.05, 1.0);
    let hardest = workouts.iter().map(|w| w.strain + 0.3).fold(0.0, f64::max);
    let strain = (full.strain * so_far).max(hardest).min(full.strain);
    CycleScore {
        strain: round_to(strain, 6),
        ..full
    }
}

/// Small deterministic changes that a re-score (user edit, algorithm update) makes.
pub fn rescore_sleep(score: &mut SleepScore, rng: &mut StdRng) {
    let s = &mut score.stage_summary;
    let asleep = asleep_ms(s);
    let shift = (asleep as f64 * rng.gen_range(-0.04..0.04)) as i64;
    s.total_light_sleep_time_milli = (s.total_light_sleep_time_milli + shift).max(0);
    s.total_awake_time_milli = (s.total_awake_time_milli - shift).max(0);
    s.disturbance_count = (s.disturbance_count + rng.gen_range(-2..=2)).max(0);
    let asleep = asleep_ms(s);
    if let Some(p) = score.sleep_performance_percentage.as_mut() {
        *p = (asleep as f64 / need_ms(&score.sleep_needed) as f64 * 100.0)
            .min(100.0)
            .round();
    }
    score.sleep_efficiency_percentage = round_to(
        asleep as f64 / s.total_in_bed_time_milli.max(1) as f64 * 100.0,
        6,
    );
    score.respiratory_rate = round_to(score.respiratory_rate + rng.gen_range(-0.3..0.3), 6);
}

pub fn rescore_recovery(score: &mut RecoveryScore, rng: &mut StdRng) {
    let mut delta = rng.gen_range(-6.0_f64..6.0).round();
    if delta == 0.0 {
        delta = 1.0;
    }
    score.recovery_score = (score.recovery_score + delta).clamp(1.0, 99.0);
    score.hrv_rmssd_milli = round_to(
        (score.hrv_rmssd_milli * (1.0 + delta / 200.0)).clamp(25.0, 120.0),
        6,
    );
    score.resting_heart_rate = (score.resting_heart_rate - delta.signum()).clamp(42.0, 70.0);
}

pub fn rescore_workout(score: &mut WorkoutScore, rng: &mut StdRng) {
    score.strain = round_to(
        (score.strain + rng.gen_range(-0.6..0.6)).clamp(4.0, 18.0),
        6,
    );
    score.kilojoule = round_to(score.kilojoule * rng.gen_range(0.95..1.05), 4);
    score.average_heart_rate += rng.gen_range(-2..=2);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day0() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 3, 1).unwrap_or_default()
    }

    #[test]
    fn plans_are_deterministic_and_ordered() {
        let mut a = Generator::new(42, 60, day0());
        let mut b = Generator::new(42, 60, day0());
        let mut prev_start = None;
        for k in 0..60 {
            let pa = a.next_plan();
            let pb = b.next_plan();
            assert_eq!(pa.main.id, pb.main.id);
            assert_eq!(pa.main.start, pb.main.start);
            let hours = (pa.main.end.millis() - pa.main.start.millis()) as f64 / HOUR_MS as f64;
            assert!((6.0..=9.0).contains(&hours));
            if let Some(p) = prev_start {
                assert!(pa.main.start > p);
            }
            for w in &pa.workouts {
                assert!(w.start > pa.main.end);
                if let Some(s) = &w.score {
                    assert!((4.0..=18.0).contains(&s.strain));
                }
            }
            if let Some(r) = &pa.recovery {
                assert!((1.0..=99.0).contains(&r.recovery_score));
                assert!((25.0..=120.0).contains(&r.hrv_rmssd_milli));
                assert!((42.0..=70.0).contains(&r.resting_heart_rate));
                assert_eq!(r.user_calibrating, k < 4);
            }
            prev_start = Some(pa.main.start);
        }
    }

    #[test]
    fn offsets_format() {
        assert_eq!(format_offset(-5 * 3600), "-05:00");
        assert_eq!(format_offset(3600), "+01:00");
        assert_eq!(format_offset(0), "+00:00");
    }
}
