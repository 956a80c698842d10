//! The `/_sim` control API: a loopback-only remote control for tests, benchmarks and the
//! desktop's demo mode. It reads counters and records, moves time, edits and deletes records
//! (with the webhooks WHOOP would send), fires arbitrary webhooks, and breaks things on purpose
//! (expired or revoked tokens, latency, 5xx, malformed bodies, token-endpoint faults, fewer
//! registered scopes, a sign-in as another member, faults of one record, lost and duplicated
//! webhooks, late and backdated records, expired paging tokens), and switches the shapes of
//! WHOOP's JSON (`shape.rs`). No authentication, by design.
//!
//! With several members (`--users`), reads and changes of records name the member with `user`
//! (`?user=K` on GETs, `"user": K` in bodies; member 1 when left out), and stats report each
//! member's share of the app's rate limit.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Duration;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::api::json_response;
use crate::faults::{FaultSettings, RecordFault, RecordFaultEntry};
use crate::members::Member;
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

/// The member a control request names (`user`, 1-based; member 1 when left out).
fn member_of(app: &AppState, user: Option<u32>) -> Result<u32, Rejected> {
    let n = app.members.count();
    match user {
        None => Ok(1),
        Some(k) if (1..=n).contains(&k) => Ok(k),
        Some(k) => Err(Rejected::bad(format!(
            "user {k} does not exist: members are 1 to {n}"
        ))),
    }
}

/// The `user` of a query string such as `?user=3`.
fn user_query(raw: Option<&str>) -> Result<Option<u32>, Rejected> {
    let pairs = url::form_urlencoded::parse(raw.unwrap_or("").as_bytes());
    for (key, value) in pairs {
        if key == "user" {
            return value
                .parse::<u32>()
                .map(Some)
                .map_err(|_| Rejected::bad("user must be a member number (1, 2, …)"));
        }
    }
    Ok(None)
}

fn record_counts(world: &crate::world::World) -> Value {
    let s = &world.store;
    json!({
        "cycle": s.cycles.len(),
        "sleep": s.sleeps.len(),
        "recovery": s.recoveries.len(),
        "workout": s.workouts().len(),
    })
}

/// One member in `/_sim/stats`.
fn member_stats(m: &Member, grants: usize, minute: u64, day: u64) -> Value {
    let usage = *crate::lock(&m.usage);
    let used_in = |(number, count): (u64, u64), current: u64| {
        if number == current && current > 0 {
            count
        } else {
            0
        }
    };
    let p = &m.identity.profile;
    json!({
        "user": m.index,
        "user_id": m.identity.user_id,
        "name": format!("{} {}", p.first_name, p.last_name),
        "email": p.email,
        "generated": m.generated().is_some(),
        "notified": !m.disconnected(),
        "grants": grants,
        "requests": usage.requests,
        "rate_limited": usage.rate_limited,
        "minute_used": used_in(usage.minute, minute),
        "day_used": used_in(usage.day, day),
        "records": m.generated().map(|w| record_counts(&crate::lock(w))),
    })
}

/// `GET /_sim/stats[?user=K]`: the app's counters (all members together), `records` of member
/// K (member 1 without `user`), the app's rate-limit windows, and per member (only K with
/// `user`) its requests, 429s and share of the current minute and day windows.
pub async fn stats(State(app): State<Arc<AppState>>, RawQuery(raw): RawQuery) -> Response {
    let k = match user_query(raw.as_deref()).and_then(|u| member_of(&app, u).map(|k| (u, k))) {
        Ok(k) => k,
        Err(rejected) => return rejected.into_response(),
    };
    let (asked, k) = k;
    app.sync();
    let records = record_counts(&crate::lock(app.member_world(k)));
    let (minute, day) = crate::lock(&app.limiter).view(std::time::Instant::now());
    let grants = crate::lock(&app.oauth).live_grants_by_member();
    let one = |m: &Member| {
        let live = grants.get(&m.index).copied().unwrap_or(0);
        member_stats(m, live, minute.number, day.number)
    };
    let members: Vec<Value> = match asked {
        Some(k) => vec![one(app.member(k))],
        None => app.members.iter().map(one).collect(),
    };
    let mut body = app.stats.to_json(records);
    body["users"] = json!(app.members.count());
    body["app"] = json!({
        "requests": app.stats.data_requests(),
        "rate_limited": body["rate_limited"],
        "minute": minute,
        "day": day,
        "generated": app.members.iter().filter(|m| m.generated().is_some()).count(),
    });
    body["members"] = json!(members);
    Json(body).into_response()
}

/// `POST /_sim/reset-stats`: zeroes the counters (the app's and each member's); the
/// rate-limit windows keep describing reality.
pub async fn reset_stats(State(app): State<Arc<AppState>>) -> Response {
    app.stats.reset();
    for m in app.members.iter() {
        let mut usage = crate::lock(&m.usage);
        usage.requests = 0;
        usage.rate_limited = 0;
    }
    stats(State(app), RawQuery(None)).await
}

/// `POST /_sim/next-member {"user": K}`: the next sign-in (auto-approved, or the consent
/// page's preselected member) is member K; the ones after it follow in turn.
pub async fn next_member(State(app): State<Arc<AppState>>, body: Bytes) -> Response {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct NextMemberBody {
        user: u32,
    }
    let k = match parse::<NextMemberBody>(&body).and_then(|b| member_of(&app, Some(b.user))) {
        Ok(k) => k,
        Err(rejected) => return rejected.into_response(),
    };
    crate::lock(&app.oauth).set_next_member(k);
    let m = app.member(k);
    Json(json!({"user": k, "user_id": m.identity.user_id})).into_response()
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

/// `GET /_sim/dump[?user=K]`: every record of member K (member 1 without `user`) exactly as
/// the API serves it (in the shapes switched on), newest first.
pub async fn dump(State(app): State<Arc<AppState>>, RawQuery(raw): RawQuery) -> Response {
    let k = match user_query(raw.as_deref()).and_then(|u| member_of(&app, u)) {
        Ok(k) => k,
        Err(rejected) => return rejected.into_response(),
    };
    let (now, world) = app.sync_member(k);
    let shapes = crate::lock(&app.shapes).shapes.clone();
    let world = crate::lock(world);
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
            newest_first(s.workouts().values(), s, now),
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
    let (now, per_member) = app.sync_changes();
    if app.members.count() == 1 {
        let mut changes = Changes::default();
        for (_, c) in per_member {
            changes.absorb(c);
        }
        return summary(now, &changes);
    }
    // With several members each event says whose it is.
    let mut events = Vec::new();
    let (mut added, mut updated, mut deleted) = (0, 0, 0);
    for (k, c) in per_member {
        events.extend(
            c.notices
                .iter()
                .map(|n| json!({"type": n.kind, "id": n.id, "user": k})),
        );
        added += c.added;
        updated += c.updated;
        deleted += c.deleted;
    }
    json_response(&json!({
        "now": now.to_whoop(),
        "events": events,
        "added": added,
        "updated": updated,
        "deleted": deleted,
    }))
}

#[derive(Deserialize)]
struct TargetBody {
    collection: String,
    id: Value,
    /// The member whose record it is (1 when left out).
    user: Option<u32>,
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

/// A control body naming a record, checked: the record and its member.
fn target_and_member(app: &AppState, body: &Bytes) -> Result<(Target, u32), Rejected> {
    let body = parse::<TargetBody>(body)?;
    Ok((target_of(&body)?, member_of(app, body.user)?))
}

/// `POST /_sim/edit {"collection","id","user"?}`: re-score a record and its dependants.
pub async fn edit(State(app): State<Arc<AppState>>, body: Bytes) -> Response {
    let (target, k) = match target_and_member(&app, &body) {
        Ok(t) => t,
        Err(rejected) => return rejected.into_response(),
    };
    let (now, world) = app.sync_member(k);
    let changes = crate::lock(world).edit(target, now);
    match changes {
        Some(changes) => {
            app.announce(app.member(k), &changes);
            summary(now, &changes)
        }
        None => error(StatusCode::NOT_FOUND, "no such record"),
    }
}

/// `POST /_sim/delete {"collection","id","user"?}`: delete a sleep (with its recovery) or a
/// workout.
pub async fn delete(State(app): State<Arc<AppState>>, body: Bytes) -> Response {
    let (target, k) = match target_and_member(&app, &body) {
        Ok((Target::Recovery(_), _)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "recoveries are deleted by deleting their sleep",
            )
        }
        Ok(t) => t,
        Err(rejected) => return rejected.into_response(),
    };
    let (now, world) = app.sync_member(k);
    let changes = crate::lock(world).delete(target, now);
    match changes {
        Some(changes) => {
            app.announce(app.member(k), &changes);
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
    /// The member it is about (1 when left out).
    user: Option<u32>,
}

/// `POST /_sim/webhook {"type","id","user"?}`: one signed webhook about member `user`,
/// whatever it says.
pub async fn webhook(State(app): State<Arc<AppState>>, body: Bytes) -> Response {
    let req: WebhookBody = match parse(&body) {
        Ok(r) => r,
        Err(rejected) => return rejected.into_response(),
    };
    let k = match member_of(&app, req.user) {
        Ok(k) => k,
        Err(rejected) => return rejected.into_response(),
    };
    let id = match req.id {
        Value::String(s) => s,
        other => other.to_string(),
    };
    match app
        .webhooks
        .send(app.member(k).identity.user_id, &req.kind, &id)
    {
        Some(trace_id) => Json(json!({"trace_id": trace_id})).into_response(),
        None => error(StatusCode::CONFLICT, "no webhook URL is set"),
    }
}

/// `POST /_sim/expire-tokens`: every access token issued so far answers 401 from now on.
pub async fn expire_tokens(State(app): State<Arc<AppState>>) -> Response {
    crate::lock(&app.oauth).expire_all_access();
    Json(json!({"ok": true})).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    user: Option<u32>,
}

/// `POST /_sim/revoke [{"user": K}]`: member K revoked the app in the WHOOP app and every
/// grant of theirs dies; without `user`, every member did.
pub async fn revoke(State(app): State<Arc<AppState>>, body: Bytes) -> Response {
    let req: RevokeBody = match parse(&body) {
        Ok(r) => r,
        Err(rejected) => return rejected.into_response(),
    };
    match req.user {
        None => {
            crate::lock(&app.oauth).revoke_all();
            for m in app.members.iter() {
                m.set_disconnected(true);
            }
        }
        Some(_) => {
            let k = match member_of(&app, req.user) {
                Ok(k) => k,
                Err(rejected) => return rejected.into_response(),
            };
            crate::lock(&app.oauth).revoke_member(k);
            app.member(k).set_disconnected(true);
        }
    }
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFaultsBody {
    latency_ms: Option<u64>,
    fail_next: Option<u64>,
    fail_after_rotate_next: Option<u64>,
    cut_after_rotate_next: Option<u64>,
}

/// `POST /_sim/token-faults`: any subset of the token endpoint's faults; returns all of them.
pub async fn token_faults(State(app): State<Arc<AppState>>, body: Bytes) -> Response {
    let req: TokenFaultsBody = match parse(&body) {
        Ok(r) => r,
        Err(rejected) => return rejected.into_response(),
    };
    let mut oauth = crate::lock(&app.oauth);
    let f = &mut oauth.token_faults;
    if let Some(v) = req.latency_ms {
        f.latency_ms = v;
    }
    if let Some(v) = req.fail_next {
        f.fail_next = v;
    }
    if let Some(v) = req.fail_after_rotate_next {
        f.fail_after_rotate_next = v;
    }
    if let Some(v) = req.cut_after_rotate_next {
        f.cut_after_rotate_next = v;
    }
    json_response(&*f)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookFaultsBody {
    drop_rate: Option<f64>,
    drop_next: Option<u64>,
    duplicate_rate: Option<f64>,
    duplicate_next: Option<u64>,
}

/// `POST /_sim/webhook-faults`: webhooks lost for good or delivered twice (same `trace_id`), at
/// a rate or for the next N; any subset; returns all of them.
pub async fn webhook_faults(State(app): State<Arc<AppState>>, body: Bytes) -> Response {
    let req: WebhookFaultsBody = match parse(&body) {
        Ok(r) => r,
        Err(rejected) => return rejected.into_response(),
    };
    for rate in [req.drop_rate, req.duplicate_rate].into_iter().flatten() {
        if !(0.0..=1.0).contains(&rate) {
            return error(StatusCode::BAD_REQUEST, "rates must be between 0.0 and 1.0");
        }
    }
    let mut f = crate::lock(&app.webhooks.faults);
    if let Some(r) = req.drop_rate {
        f.drop_rate = r;
    }
    if let Some(n) = req.drop_next {
        f.drop_next = n;
    }
    if let Some(r) = req.duplicate_rate {
        f.duplicate_rate = r;
    }
    if let Some(n) = req.duplicate_next {
        f.duplicate_next = n;
    }
    json_response(&f.settings())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppScopesBody {
    scopes: Option<Vec<String>>,
}

/// `POST /_sim/app-scopes {"scopes": [...] | null}`: the scopes the app is registered for
/// (`null`: all). Sign-ins asking for more get `invalid_scope`.
pub async fn app_scopes(State(app): State<Arc<AppState>>, body: Bytes) -> Response {
    let req: AppScopesBody = match parse(&body) {
        Ok(r) => r,
        Err(rejected) => return rejected.into_response(),
    };
    crate::lock(&app.oauth).app_scopes = req.scopes.clone();
    Json(json!({"scopes": req.scopes})).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordFaultBody {
    id: Value,
    /// `null` clears the record's fault.
    fault: Option<RecordFault>,
    count: Option<u64>,
}

/// `POST /_sim/record-faults {"id", "fault": "not_found" | "server_error" | "malformed" |
/// "unreadable" | null, "count"?}`: requests naming the record fail that way, for the next
/// `count` requests or until cleared with `"fault": null` ("unreadable" also reaches the record
/// in collection pages, until cleared). Returns every record fault in force.
pub async fn record_faults(State(app): State<Arc<AppState>>, body: Bytes) -> Response {
    let req: RecordFaultBody = match parse(&body) {
        Ok(r) => r,
        Err(rejected) => return rejected.into_response(),
    };
    let id = match req.id {
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        _ => return error(StatusCode::BAD_REQUEST, "id must be a string or number"),
    };
    let mut f = crate::lock(&app.faults);
    match req.fault {
        Some(fault) => {
            f.record_faults.insert(
                id,
                RecordFaultEntry {
                    fault,
                    remaining: req.count.filter(|n| *n > 0),
                },
            );
        }
        None => {
            f.record_faults.remove(&id);
        }
    }
    Json(json!({ "record_faults": f.record_faults })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CountBody {
    count: u64,
}

/// `POST /_sim/other-member-logins {"count": N}`: the next N approved sign-ins are as a second
/// WHOOP member.
pub async fn other_member_logins(State(app): State<Arc<AppState>>, body: Bytes) -> Response {
    let req: CountBody = match parse(&body) {
        Ok(r) => r,
        Err(rejected) => return rejected.into_response(),
    };
    crate::lock(&app.oauth).other_member_logins = req.count;
    let other = crate::api::other_member_profile(&app.member(1).identity.profile);
    Json(json!({"count": req.count, "user_id": other.user_id})).into_response()
}

/// `GET /_sim/grants`: every grant issued, with its member, scopes and whether it is revoked.
pub async fn grants(State(app): State<Arc<AppState>>) -> Response {
    let views = crate::lock(&app.oauth).grant_views();
    json_response(&views)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LateRecordsBody {
    upload_delay_hours: Option<f64>,
    /// `null` (or absent) turns backdated activities off.
    #[serde(default)]
    backdated_workout_hours: Option<f64>,
    /// Only this member; every member (and members generated later) when left out.
    user: Option<u32>,
}

/// `POST /_sim/late-records {"upload_delay_hours"?, "backdated_workout_hours"?, "user"?}`:
/// uploads of days that start from now on happen this many hours late (a strap that syncs
/// late), and each new day the person logs an activity this many hours back (`null`: off).
/// Applies to member `user`, or to every member without it.
pub async fn late_records(State(app): State<Arc<AppState>>, body: Bytes) -> Response {
    let req: LateRecordsBody = match parse(&body) {
        Ok(r) => r,
        Err(rejected) => return rejected.into_response(),
    };
    let valid = |h: f64| (0.0..=MAX_ADVANCE_HOURS).contains(&h);
    if !req.upload_delay_hours.is_none_or(valid) || !req.backdated_workout_hours.is_none_or(valid) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("hours must be between 0 and {MAX_ADVANCE_HOURS}"),
        );
    }
    let only = match req.user {
        None => None,
        Some(_) => match member_of(&app, req.user) {
            Ok(k) => Some(k),
            Err(rejected) => return rejected.into_response(),
        },
    };
    app.sync();
    let change = |world: &mut crate::world::World| {
        if let Some(hours) = req.upload_delay_hours {
            world.upload_delay = Duration::milliseconds((hours * 3_600_000.0) as i64);
        }
        world.backdated_workout_hours = req.backdated_workout_hours;
    };
    let settings = match only {
        Some(k) => {
            let (_, world) = app.sync_member(k);
            let mut world = crate::lock(world);
            change(&mut world);
            crate::members::LateSettings {
                upload_delay: world.upload_delay,
                backdated_workout_hours: world.backdated_workout_hours,
            }
        }
        None => {
            let mut late = crate::lock(&app.members.late);
            if let Some(hours) = req.upload_delay_hours {
                late.upload_delay = Duration::milliseconds((hours * 3_600_000.0) as i64);
            }
            late.backdated_workout_hours = req.backdated_workout_hours;
            for m in app.members.iter() {
                if let Some(world) = m.generated() {
                    change(&mut crate::lock(world));
                }
            }
            *late
        }
    };
    Json(json!({
        "upload_delay_hours": settings.upload_delay.num_milliseconds() as f64 / 3_600_000.0,
        "backdated_workout_hours": settings.backdated_workout_hours,
    }))
    .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogWorkoutBody {
    hours_ago: f64,
    user: Option<u32>,
}

/// `POST /_sim/log-workout {"hours_ago","user"?}`: member `user` (1 when left out) logs an
/// activity now for a time in the past; it appears and its webhook goes out now (subject to
/// the webhook faults).
pub async fn log_workout(State(app): State<Arc<AppState>>, body: Bytes) -> Response {
    let req: LogWorkoutBody = match parse(&body) {
        Ok(r) => r,
        Err(rejected) => return rejected.into_response(),
    };
    if !(0.0..=MAX_ADVANCE_HOURS).contains(&req.hours_ago) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("hours_ago must be between 0 and {MAX_ADVANCE_HOURS}"),
        );
    }
    let k = match member_of(&app, req.user) {
        Ok(k) => k,
        Err(rejected) => return rejected.into_response(),
    };
    let (now, world) = app.sync_member(k);
    let changes = crate::lock(world).log_past_workout(now, req.hours_ago);
    match changes {
        Some(changes) => {
            app.announce(app.member(k), &changes);
            summary(now, &changes)
        }
        None => error(
            StatusCode::CONFLICT,
            "no workout to copy or no cycle at that time",
        ),
    }
}
