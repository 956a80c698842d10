//! The WHOOP Developer API v2 as VitalTrends needs it: record types that survive WHOOP's
//! inconsistencies, an HTTP client that paces itself and retries, the OAuth requests, and webhook
//! signature verification.
//!
//! Nothing here knows about storage, sync state or the desktop; callers pass tokens in.

pub mod budget;
pub mod client;
pub mod error;
pub mod oauth;
pub mod secret;
pub mod types;
pub mod webhook;

pub use budget::{Budget, Priority};
pub use client::{Client, ClientConfig, PageQuery, RequestStats, PAGE_LIMIT, PRODUCTION_BASE_URL};
pub use error::{Error, Result};
pub use secret::Secret;
pub use types::{
    BodyMeasurement, Collection, CollectionRecord, Cycle, CycleScore, Fetched, Page, Profile,
    Recovery, RecoveryScore, ScoreState, SkippedRecord, Sleep, SleepNeeded, SleepScore,
    SleepStageSummary, Workout, WorkoutScore, ZoneDurations,
};
