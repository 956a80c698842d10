//! The v2 data endpoints under `/developer`. Every request first passes `guard`, which does
//! what WHOOP's edge does before a handler runs: count it against the app's rate limit (and
//! put the `X-RateLimit-*` headers on whatever comes back), check the bearer token, and apply
//! injected faults and latency.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Serialize;
use uuid::Uuid;

use crate::faults::{error_body, truncate_json, RecordFault};
use crate::pagination::{encode_cursor, parse_list_query, select, Listable, NextToken, Page};
use crate::ratelimit::Verdict;
use crate::server::AppState;
use crate::shape::{Kind, Shapes};
use crate::stats::bump;
use crate::store::Store;
use crate::time::Ts;

/// Put on the request by `guard` for handlers that need to know whose token it was.
#[derive(Debug, Clone, Copy)]
pub struct Authorized {
    pub grant: u64,
    /// The member whose data the token reads.
    pub member: u32,
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn with_rate_headers(mut resp: Response, v: &Verdict) -> Response {
    let headers = resp.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&v.limit_header) {
        headers.insert("X-RateLimit-Limit", value);
    }
    headers.insert("X-RateLimit-Remaining", HeaderValue::from(v.remaining));
    headers.insert("X-RateLimit-Reset", HeaderValue::from(v.reset_secs));
    resp
}

/// Middleware for one data route; `key` is its name in `/_sim/stats`.
pub async fn guard(
    State((app, key)): State<(Arc<AppState>, &'static str)>,
    mut req: Request,
    next: Next,
) -> Response {
    app.stats.request(key);
    let verdict = crate::lock(&app.limiter).check(Instant::now());
    count_for_member(&app, req.headers(), &verdict);
    let resp = if !verdict.allowed {
        bump(&app.stats.rate_limited);
        (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"error":"too_many_requests"}"#,
        )
            .into_response()
    } else {
        let grant = bearer(req.headers())
            .and_then(|t| crate::lock(&app.oauth).authenticate(t, Instant::now()));
        match grant {
            None => {
                bump(&app.stats.unauthorized);
                (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, "Bearer")],
                )
                    .into_response()
            }
            Some(grant) if !crate::lock(&app.oauth).grant_allows(grant, key) => {
                // WHOOP's OpenAPI declares 401 for a token without the endpoint's scope.
                bump(&app.stats.unauthorized);
                (
                    StatusCode::UNAUTHORIZED,
                    [(
                        header::WWW_AUTHENTICATE,
                        "Bearer error=\"insufficient_scope\"",
                    )],
                )
                    .into_response()
            }
            Some(grant) => {
                let record_fault = crate::lock(&app.faults).take_record_fault(req.uri().path());
                let injected = match record_fault {
                    Some(RecordFault::ServerError) => Some(StatusCode::SERVICE_UNAVAILABLE),
                    Some(RecordFault::NotFound) => None,
                    _ => crate::lock(&app.faults).take_error(),
                };
                match injected {
                    _ if record_fault == Some(RecordFault::NotFound) => not_found(),
                    Some(status) => {
                        let (content_type, body) = error_body(status);
                        (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
                    }
                    None => {
                        let member = crate::lock(&app.oauth).member_of(grant);
                        req.extensions_mut().insert(Authorized { grant, member });
                        let resp = next.run(req).await;
                        match record_fault {
                            Some(RecordFault::Unreadable) => unreadable_record(resp).await,
                            fault => {
                                let forced = fault == Some(RecordFault::Malformed);
                                maybe_malform(&app, resp, forced).await
                            }
                        }
                    }
                }
            }
        }
    };
    let latency = app.latency_ms.load(Ordering::Relaxed);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    with_rate_headers(resp, &verdict)
}

/// Counts a request against the member its bearer token belongs to (the app's limit is
/// shared; this is only who used it).
fn count_for_member(app: &AppState, headers: &HeaderMap, verdict: &Verdict) {
    let Some(k) = bearer(headers).and_then(|t| crate::lock(&app.oauth).member_of_token(t)) else {
        return;
    };
    let Some(member) = app.members.get(k) else {
        return;
    };
    let mut guard = crate::lock(&member.usage);
    let usage = &mut *guard;
    usage.requests += 1;
    if !verdict.allowed {
        usage.rate_limited += 1;
        return;
    }
    for (window, number) in [
        (&mut usage.minute, verdict.minute_window),
        (&mut usage.day, verdict.day_window),
    ] {
        if window.0 != number {
            *window = (number, 0);
        }
        window.1 += 1;
    }
}

async fn maybe_malform(app: &AppState, resp: Response, forced: bool) -> Response {
    if resp.status() != StatusCode::OK || !(forced || crate::lock(&app.faults).take_malformed()) {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    Response::from_parts(parts, Body::from(truncate_json(&bytes)))
}

/// A record's own answer with its `start` made unreadable (`RecordFault::Unreadable`).
async fn unreadable_record(resp: Response) -> Response {
    if resp.status() != StatusCode::OK {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let Ok(mut record) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    make_unreadable(&mut record);
    let bytes = serde_json::to_vec(&record).unwrap_or_default();
    let mut resp = Response::from_parts(parts, Body::from(bytes));
    resp.headers_mut().remove(header::CONTENT_LENGTH);
    resp
}

/// A time no client can read as one.
fn make_unreadable(record: &mut serde_json::Value) {
    record["start"] = serde_json::json!(20240305);
}

/// Whether a served record is one of `ids` (by its `id`; a recovery by its `sleep_id`).
fn is_one_of(record: &serde_json::Value, ids: &[String]) -> bool {
    let id = match record.get("id").or_else(|| record.get("sleep_id")) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => return false,
    };
    ids.contains(&id)
}

pub fn json_response<T: Serialize + ?Sized>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            bytes,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn bad_request(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(serde_json::json!({"error": "bad_request", "message": message})),
    )
        .into_response()
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({"error": "not_found", "message": "No resource found"})),
    )
        .into_response()
}

/// The shapes switched on, and the current paging generation.
fn shapes_of(app: &AppState) -> (Shapes, u64) {
    let state = crate::lock(&app.shapes);
    (state.shapes.clone(), state.paging_generation)
}

/// One record as JSON in the shapes switched on.
fn shaped<T: Serialize>(app: &AppState, kind: Kind, record: &T) -> Response {
    let (shapes, _) = shapes_of(app);
    json_response(&shapes.to_json(kind, record))
}

fn page_response<'a, T: Listable + 'a>(
    app: &AppState,
    collection: &str,
    items: impl Iterator<Item = &'a T>,
    store: &Store,
    now: Ts,
    raw_query: Option<&str>,
) -> Response {
    let q = match parse_list_query(raw_query, collection) {
        Ok(q) => q,
        Err(message) => return bad_request(&message),
    };
    if let Some((issued, generation)) = q.token_issued {
        if crate::lock(&app.shapes).token_expired(issued, generation, now.millis()) {
            return bad_request("nextToken has expired");
        }
    }
    let (shapes, generation) = shapes_of(app);
    let (records, next) = select(items, store, now, &q);
    let next_token = match next {
        Some(key) => NextToken::Token(encode_cursor(collection, key, &q, now, generation)),
        None if shapes.empty_last_token => NextToken::Empty,
        None => NextToken::last_page(records.len()),
    };
    let unreadable = crate::lock(&app.faults).unreadable_ids();
    let kind = Kind::of_collection(collection).filter(|_| shapes.reshapes_records());
    if kind.is_none() && unreadable.is_empty() {
        return json_response(&Page {
            records,
            next_token,
        });
    }
    let mut values: Vec<serde_json::Value> = records
        .iter()
        .map(|r| match kind {
            Some(kind) => shapes.to_json(kind, r),
            None => serde_json::to_value(r).unwrap_or_default(),
        })
        .collect();
    for record in values.iter_mut().filter(|v| is_one_of(v, &unreadable)) {
        make_unreadable(record);
    }
    json_response(&Page {
        records: values.iter().collect(),
        next_token,
    })
}

pub async fn cycle_collection(
    State(app): State<Arc<AppState>>,
    Extension(auth): Extension<Authorized>,
    RawQuery(raw): RawQuery,
) -> Response {
    let (now, world) = app.sync_member(auth.member);
    let world = crate::lock(world);
    let s = &world.store;
    page_response(&app, "cycle", s.cycles.values(), s, now, raw.as_deref())
}

pub async fn sleep_collection(
    State(app): State<Arc<AppState>>,
    Extension(auth): Extension<Authorized>,
    RawQuery(raw): RawQuery,
) -> Response {
    let (now, world) = app.sync_member(auth.member);
    let world = crate::lock(world);
    let s = &world.store;
    page_response(&app, "sleep", s.sleeps.values(), s, now, raw.as_deref())
}

pub async fn recovery_collection(
    State(app): State<Arc<AppState>>,
    Extension(auth): Extension<Authorized>,
    RawQuery(raw): RawQuery,
) -> Response {
    let (now, world) = app.sync_member(auth.member);
    let world = crate::lock(world);
    let s = &world.store;
    page_response(
        &app,
        "recovery",
        s.recoveries.values(),
        s,
        now,
        raw.as_deref(),
    )
}

pub async fn workout_collection(
    State(app): State<Arc<AppState>>,
    Extension(auth): Extension<Authorized>,
    RawQuery(raw): RawQuery,
) -> Response {
    let (now, world) = app.sync_member(auth.member);
    let world = crate::lock(world);
    let s = &world.store;
    page_response(
        &app,
        "workout",
        s.workouts().values(),
        s,
        now,
        raw.as_deref(),
    )
}

pub async fn cycle_by_id(
    State(app): State<Arc<AppState>>,
    Extension(auth): Extension<Authorized>,
    Path(raw): Path<String>,
) -> Response {
    let Ok(id) = raw.parse::<i64>() else {
        return bad_request("cycleId must be an integer");
    };
    let (_, world) = app.sync_member(auth.member);
    let world = crate::lock(world);
    world
        .store
        .cycles
        .get(&id)
        .map_or_else(not_found, |r| shaped(&app, Kind::Cycle, r))
}

pub async fn cycle_recovery(
    State(app): State<Arc<AppState>>,
    Extension(auth): Extension<Authorized>,
    Path(raw): Path<String>,
) -> Response {
    let Ok(id) = raw.parse::<i64>() else {
        return bad_request("cycleId must be an integer");
    };
    let (_, world) = app.sync_member(auth.member);
    let world = crate::lock(world);
    world
        .store
        .recoveries
        .get(&id)
        .map_or_else(not_found, |r| shaped(&app, Kind::Recovery, r))
}

pub async fn cycle_sleep(
    State(app): State<Arc<AppState>>,
    Extension(auth): Extension<Authorized>,
    Path(raw): Path<String>,
) -> Response {
    let Ok(id) = raw.parse::<i64>() else {
        return bad_request("cycleId must be an integer");
    };
    let (_, world) = app.sync_member(auth.member);
    let world = crate::lock(world);
    world
        .store
        .main_sleep_of(id)
        .map_or_else(not_found, |r| shaped(&app, Kind::Sleep, r))
}

pub async fn sleep_by_id(
    State(app): State<Arc<AppState>>,
    Extension(auth): Extension<Authorized>,
    Path(raw): Path<String>,
) -> Response {
    let Ok(id) = Uuid::parse_str(&raw) else {
        return bad_request("the id must be a UUID");
    };
    let (_, world) = app.sync_member(auth.member);
    let world = crate::lock(world);
    world
        .store
        .sleeps
        .get(&id)
        .map_or_else(not_found, |r| shaped(&app, Kind::Sleep, r))
}

pub async fn workout_by_id(
    State(app): State<Arc<AppState>>,
    Extension(auth): Extension<Authorized>,
    Path(raw): Path<String>,
) -> Response {
    let Ok(id) = Uuid::parse_str(&raw) else {
        return bad_request("the id must be a UUID");
    };
    let (_, world) = app.sync_member(auth.member);
    let world = crate::lock(world);
    world
        .store
        .workouts()
        .get(&id)
        .map_or_else(not_found, |r| shaped(&app, Kind::Workout, r))
}

pub async fn profile(
    State(app): State<Arc<AppState>>,
    Extension(auth): Extension<Authorized>,
) -> Response {
    let other = crate::lock(&app.oauth).is_other_member(auth.grant);
    let world = crate::lock(app.member_world(auth.member));
    if other {
        shaped(
            &app,
            Kind::Profile,
            &other_member_profile(&world.store.profile),
        )
    } else {
        shaped(&app, Kind::Profile, &world.store.profile)
    }
}

/// How far the stranger's user id is from member 1's.
pub const STRANGER_OFFSET: i64 = 1_000_000;

/// The stranger: who a sign-in switched by `/_sim/other-member-logins` is. Not one of the
/// app's members (`--users`): only the profile endpoint knows them; their data endpoints
/// answer with member 1's data.
pub fn other_member_profile(main: &crate::model::Profile) -> crate::model::Profile {
    crate::model::Profile {
        user_id: main.user_id + STRANGER_OFFSET,
        email: "riley.other@example.com".into(),
        first_name: "Riley".into(),
        last_name: "Other".into(),
    }
}

pub async fn body_measurement(
    State(app): State<Arc<AppState>>,
    Extension(auth): Extension<Authorized>,
) -> Response {
    if crate::lock(&app.shapes).shapes.no_body_measurement {
        // WHOOP's answer for a person who never entered their measurements.
        return not_found();
    }
    let world = crate::lock(app.member_world(auth.member));
    shaped(&app, Kind::Body, &world.store.body)
}

/// `DELETE /developer/v2/user/access`: the app disconnects itself.
pub async fn revoke_access(
    State(app): State<Arc<AppState>>,
    Extension(auth): Extension<Authorized>,
) -> Response {
    let other = {
        let mut oauth = crate::lock(&app.oauth);
        oauth.revoke_grant(auth.grant);
        oauth.is_other_member(auth.grant)
    };
    // WHOOP sends no more webhooks for a member who disconnected the app (the stranger has
    // none).
    if !other {
        app.member(auth.member).set_disconnected(true);
    }
    StatusCode::NO_CONTENT.into_response()
}
