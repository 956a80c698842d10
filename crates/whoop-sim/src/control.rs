//! The `/_sim` control API: a loopback-only remote control for tests, benchmarks and the
//! desktop's demo mode. It reads counters and records, moves time, edits and deletes records
//! (with the webhooks WHOOP would send), fires arbitrary webhooks, and breaks things on purpose
//! (expired or revoked tokens, latency, 5xx, malformed bodies, expired paging tokens), and
//! switches the shapes of WHOOP's JSON (`shape.rs`). No authentication, by design.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Duration;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::api::json_response;
use crate::faults::FaultSettings;
use crate::model::{BodyMeasurement, Cycle, Profile, Recovery, Sleep, Workout};
use crate::pagination::newest_first;
use crate::server::AppState;
use crate::shape::{Kind, Shapes};
use crate::time::Ts;
use crate::world::{Changes, Notice, Target};

/// Longest single advance (ten years); more would only generate data nobody can page through.
const MAX_ADVANCE_HOURS: f64 = 24.0 * 3650.0;

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

/// A rejected control request; kept small (unlike `Response`) so it travels in `Result`s.
struct Rejected(StatusCode, String);

impl Rejected {
    fn bad(message: impl Into<String>) -> Rejected {
        Rejected(StatusCode::BAD_REQUEST, message.into())
    }
}

impl IntoResponse for Rejected {
    fn into_response(self) -> Response {
        error(self.0, self.1)
    }
}

/// Parses a JSON body; an empty body reads as `{}` so optional-only bodies can be omitted.
fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, Rejected> {
    let bytes: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(bytes).map_err(|e| Rejected::bad(format!("invalid JSON body: {e}")))
}

#[derive(Serialize)]
struct Summary<'a> {
    now: String,
    events: &'a [Notice],
    added: u64,
    updated: u64,
    deleted: u64,
}

fn summary(now: Ts, changes: &Changes) -> Response {
    json_response(&Summary {
        now: now.to_whoop(),
        events: &changes.notices,
        added: changes.added,
        updated: changes.updated,
        deleted: changes.deleted,
    })
}

/// `GET /_sim/stats`
pub async fn stats(State(app): State<Arc<AppState>>) -> Response {
    app.sync();
    let records = {
        let world = crate::lock(&app.world);
        let s = &world.store;
        json!({
            "cycle": s.cycles.len(),
            "sleep": s.sleeps.len(),
            "recovery": s.recoveries.len(),
            "workout": s.workouts.len(),
        })
    };
    Json(app.stats.to_json(records)).into_response()
}

/// `POST /_sim/reset-stats`
pub async fn reset_stats(State(app): State<Arc<AppState>>) -> Response {
    app.stats.reset();
    stats(State(app)).await
}

#[derive(Serialize)]
struct Dump {
    cycle: Vec<Value>,
    sleep: Vec<Value>,
    recovery: Vec<Value>,
    workout: Vec<Value>,
    profile: Value,
    /// `null` while the `no_body_measurement` shape makes the endpoint answer 404.
    body_measurement: Value,
}

/// `GET /_sim/dump`: every record exactly as the API serves it (in the shapes switched on),
/// newest first.
pub async fn dump(State(app): State<Arc<AppState>>) -> Response {
    let now = app.sync();
    let shapes = crate::lock(&app.shapes).shapes.clone();
    let world = crate::lock(&app.world);
    let s = &world.store;
    fn all<T: Serialize>(shapes: &Shapes, kind: Kind, records: Vec<&T>) -> Vec<Value> {
        records.iter().map(|r| shapes.to_json(kind, r)).collect()
    }
    let body_measurement = if shapes.no_body_measurement {
        Value::Null
    } else {
        shapes.to_json::<BodyMeasurement>(Kind::Body, &s.body)
    };
    json_response(&Dump {
        cycle: all::<Cycle>(
            &shapes,
            Kind::Cycle,
            newest_first(s.cycles.values(), s, now),
        ),
        sleep: all::<Sleep>(
            &shapes,
            Kind::Sleep,
            newest_first(s.sleeps.values(), s, now),
        ),
        recovery: all::<Recovery>(
            &shapes,
            Kind::Recovery,
            newest_first(s.recoveries.values(), s, now),
        ),
        workout: all::<Workout>(
            &shapes,
            Kind::Workout,
            newest_first(s.workouts.values(), s, now),
        ),
        profile: shapes.to_json::<Profile>(Kind::Profile, &s.profile),
        body_measurement,
    })
}

#[derive(Deserialize)]
struct AdvanceBody {
    hours: f64,
}

/// `POST /_sim/advance {"hours": N}`
pub async fn advance(State(app): State<Arc<AppState>>, body: Bytes) -> Response {
    let req: AdvanceBody = match parse(&body) {
        Ok(r) => r,
        Err(rejected) => return rejected.into_response(),
    };
    if !(0.0..=MAX_ADVANCE_HOURS).contains(&req.hours) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("hours must be between 0 and {MAX_ADVANCE_HOURS}"),
        );
    }
    // Bring the world up to the old "now" first so only the advance's own changes are reported.
    app.sync();
    app.clock
        .advance(Duration::milliseconds((req.hours * 3_600_000.0) as i64));
    let (now, changes) = app.sync_changes();
    summary(now, &changes)
}

#[derive(Deserialize)]
struct TargetBody {
    collection: String,
    id: Value,
}

fn target_of(body: &TargetBody) -> Result<Target, Rejected> {
    let id = match &body.id {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err(Rejected::bad("id must be a string or number")),
    };
    let uuid = || Uuid::parse_str(&id).map_err(|_| Rejected::bad("id must be a UUID"));
    match body.collection.as_str() {
        "sleep" => uuid().map(Target::Sleep),
        "workout" => uuid().map(Target::Workout),
        "recovery" => id
            .parse::<i64>()
            .map(Target::Recovery)
            .map_err(|_| Rejected::bad("a recovery is identified by its cycle id (an integer)")),
        other => Err(Rejected::bad(format!(
            "unknown collection {other:?}: expected sleep, workout or recovery"
        ))),
    }
}

/// `POST /_sim/edit {"collection","id"}`: re-score a record and its dependants.
pub async fn edit(State(app): State<Arc<AppState>>, body: Bytes) -> Response {
    let target = match parse::<TargetBody>(&body).and_then(|b| target_of(&b)) {
        Ok(t) => t,
        Err(rejected) => return rejected.into_response(),
    };
    let now = app.sync();
    let changes = crate::lock(&app.world).edit(target, now);
    match changes {
        Some(changes) => {
            app.webhooks.announce(&changes.notices);
            summary(now, &changes)
        }
        None => error(StatusCode::NOT_FOUND, "no such record"),
    }
}

/// `POST /_sim/delete {"collection","id"}`: delete a sleep (with its recovery) or a workout.
pub async fn delete(State(app): State<Arc<AppState>>, body: Bytes) -> Response {
    let target = match parse::<TargetBody>(&body).and_then(|b| target_of(&b)) {
        Ok(Target::Recovery(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "recoveries are deleted by deleting their sleep",
            )
        }
        Ok(t) => t,
        Err(rejected) => return rejected.into_response(),
    };
    let now = app.sync();
    let changes = crate::lock(&app.world).delete(target, now);
    match changes {
        Some(changes) => {
            app.webhooks.announce(&changes.notices);
            summary(now, &changes)
        }
        None => error(StatusCode::NOT_FOUND, "no such record"),
    }
}

#[derive(Deserialize)]
struct WebhookBody {
    #[serde(rename = "type")]
    kind: String,
    id: Value,
}

/// `POST /_sim/webhook {"type","id"}`: one signed webhook, whatever it says.
pub async fn webhook(State(app): State<Arc<AppState>>, body: Bytes) -> Response {
    let req: WebhookBody = match parse(&body) {
        Ok(r) => r,
        Err(rejected) => return rejected.into_response(),
    };
    let id = match req.id {
        Value::String(s) => s,
        other => other.to_string(),
    };
    match app.webhooks.send(&req.kind, &id) {
        Some(trace_id) => Json(json!({"trace_id": trace_id})).into_response(),
        None => error(StatusCode::CONFLICT, "no webhook URL is set"),
    }
}

/// `POST /_sim/expire-tokens`: every access token issued so far answers 401 from now on.
pub async fn expire_tokens(State(app): State<Arc<AppState>>) -> Response {
    crate::lock(&app.oauth).expire_all_access();
    Json(json!({"ok": true})).into_response()
}

/// `POST /_sim/revoke`: the user revoked the app in the WHOOP app; every grant dies.
pub async fn revoke(State(app): State<Arc<AppState>>) -> Response {
    crate::lock(&app.oauth).revoke_all();
    app.webhooks.set_disconnected(true);
    Json(json!({"ok": true})).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultsBody {
    latency_ms: Option<u64>,
    error_rate: Option<f64>,
    malformed_rate: Option<f64>,
    fail_next: Option<u64>,
    malformed_next: Option<u64>,
}

/// `POST /_sim/faults`: any subset of the fault settings; returns all of them.
pub async fn faults(State(app): State<Arc<AppState>>, body: Bytes) -> Response {
    let req: FaultsBody = match parse(&body) {
        Ok(r) => r,
        Err(rejected) => return rejected.into_response(),
    };
    for rate in [req.error_rate, req.malformed_rate].into_iter().flatten() {
        if !(0.0..=1.0).contains(&rate) {
            return error(StatusCode::BAD_REQUEST, "rates must be between 0.0 and 1.0");
        }
    }
    if let Some(ms) = req.latency_ms {
        app.latency_ms.store(ms, Ordering::Relaxed);
    }
    let mut f = crate::lock(&app.faults);
    if let Some(r) = req.error_rate {
        f.error_rate = r;
    }
    if let Some(r) = req.malformed_rate {
        f.malformed_rate = r;
    }
    if let Some(n) = req.fail_next {
        f.fail_next = n;
    }
    if let Some(n) = req.malformed_next {
        f.malformed_next = n;
    }
    json_response(&FaultSettings {
        latency_ms: app.latency_ms.load(Ordering::Relaxed),
        error_rate: f.error_rate,
        malformed_rate: f.malformed_rate,
        fail_next: f.fail_next,
        malformed_next: f.malformed_next,
    })
}

#[derive(Deserialize)]
struct WebhookUrlBody {
    url: Option<String>,
}

/// `POST /_sim/webhook-url {"url": "..." | null}`
pub async fn webhook_url(State(app): State<Arc<AppState>>, body: Bytes) -> Response {
    let req: WebhookUrlBody = match parse(&body) {
        Ok(r) => r,
        Err(rejected) => return rejected.into_response(),
    };
    if let Some(url) = &req.url {
        let valid = url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
        if !valid {
            return error(
                StatusCode::BAD_REQUEST,
                "url must be an http(s) URL or null",
            );
        }
    }
    app.webhooks.set_url(req.url.clone());
    Json(json!({"url": req.url})).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShapesBody {
    null_fields: Option<bool>,
    empty_last_token: Option<bool>,
    offset_timestamps: Option<bool>,
    mixed_sport_casing: Option<bool>,
    no_body_measurement: Option<bool>,
    /// A number sets the limit; `null` removes it; leaving it out keeps it.
    #[serde(default, deserialize_with = "present")]
    paging_token_max_age_secs: Option<Option<u64>>,
}

/// Tells "sent as null" (Some(None)) from "left out" (None).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u64>>, D::Error> {
    Ok(Some(Option::<u64>::deserialize(d)?))
}

/// `POST /_sim/shapes`: switches any subset of the JSON shapes (see `Shapes`); returns all.
pub async fn shapes(State(app): State<Arc<AppState>>, body: Bytes) -> Response {
    let req: ShapesBody = match parse(&body) {
        Ok(r) => r,
        Err(rejected) => return rejected.into_response(),
    };
    let mut state = crate::lock(&app.shapes);
    let s = &mut state.shapes;
    let switches = [
        (req.null_fields, &mut s.null_fields),
        (req.empty_last_token, &mut s.empty_last_token),
        (req.offset_timestamps, &mut s.offset_timestamps),
        (req.mixed_sport_casing, &mut s.mixed_sport_casing),
        (req.no_body_measurement, &mut s.no_body_measurement),
    ];
    for (wanted, switch) in switches {
        if let Some(on) = wanted {
            *switch = on;
        }
    }
    if let Some(max_age) = req.paging_token_max_age_secs {
        s.paging_token_max_age_secs = max_age;
    }
    json_response(&state.shapes)
}

/// `POST /_sim/expire-paging-tokens`: every `nextToken` handed out so far is refused with 400
/// from now on, as WHOOP does with one kept for days.
pub async fn expire_paging_tokens(State(app): State<Arc<AppState>>) -> Response {
    let generation = {
        let mut state = crate::lock(&app.shapes);
        state.paging_generation += 1;
        state.paging_generation
    };
    Json(json!({"ok": true, "paging_generation": generation})).into_response()
}
