//! What devices read: their own user's slice of the event log, in log order, as an SSE stream or
//! a long poll on `GET /v1/events`, plus acks and self-revocation. A device resumes from the cursor
//! it persisted; when that cursor cannot be trusted (another log, pruned past, malformed) it gets
//! an explicit gap first so the app knows to run a catch-up sync instead of silently missing data.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use futures_util::stream::{self, Stream};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::time::{Instant, MissedTickBehavior};

use crate::client_ip::ClientIp;
use crate::cursor::Cursor;
use crate::device::{authenticate, touch_interval};
use crate::error::{json_error, unavailable, Result};
use crate::licences;
use crate::metrics::OpenStream;
use crate::server::{now_ms, AppState};
use crate::storage::{Device, StoredEvent};
use crate::wake::Wakes;

/// Rows read per query; a device far behind gets its backlog in batches.
const BATCH: i64 = 200;
const MAX_WAIT_SECS: u64 = 30;
const DEFAULT_WAIT_SECS: u64 = 25;
const MAX_ACK_BODY: usize = 1024;

/// How many event reads (streams and long polls) each device has open, so one leaked or stolen
/// credential cannot hold an unbounded number of connections and tasks.
#[derive(Debug, Default)]
pub struct StreamSlots {
    open: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

/// One open read; frees its slot when dropped (the stream ended or the client went away).
pub struct StreamSlot {
    app: Arc<AppState>,
    device_id: String,
}

impl StreamSlots {
    pub fn take(app: &Arc<AppState>, device_id: &str) -> Option<StreamSlot> {
        let mut open = app
            .stream_slots
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let n = open.entry(device_id.to_string()).or_insert(0);
        if *n >= app.config.max_streams_per_device {
            return None;
        }
        *n += 1;
        Some(StreamSlot {
            app: Arc::clone(app),
            device_id: device_id.to_string(),
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self
            .app
            .stream_slots
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.device_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.device_id);
            }
        }
    }
}

/// Why a device must catch up instead of trusting its cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapReason {
    /// Not a cursor this relay issues.
    Malformed,
    /// From another log: the database was lost or replaced.
    OtherEpoch,
    /// Further than this log ever went: the database was restored from an older copy.
    AheadOfLog,
    /// Retention already removed events the device had not read.
    Retention,
}

impl GapReason {
    pub fn as_str(self) -> &'static str {
        match self {
            GapReason::Malformed => "malformed_cursor",
            GapReason::OtherEpoch => "log_replaced",
            GapReason::AheadOfLog => "log_restored",
            GapReason::Retention => "retention",
        }
    }
}

/// Where a read starts: after `after`, announcing a gap first if there is one.
#[derive(Debug, Clone, Copy)]
pub struct Start {
    pub after: i64,
    pub gap: Option<GapReason>,
}

/// Decides where a device's read starts from the cursor it sent (none = the retained log's start).
pub async fn resolve_start(app: &AppState, user_id: i64, raw: Option<&str>) -> Result<Start> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(Start {
            after: 0,
            gap: None,
        });
    };
    let position = app.storage.position(user_id).await?;
    let gap = match Cursor::parse(raw) {
        None => Some(GapReason::Malformed),
        Some(c) if c.epoch != app.epoch => Some(GapReason::OtherEpoch),
        Some(c) if c.seq > position.log_head => Some(GapReason::AheadOfLog),
        Some(c) if c.seq < position.pruned_through => Some(GapReason::Retention),
        Some(c) => {
            return Ok(Start {
                after: c.seq,
                gap: None,
            })
        }
    };
    // After a gap the device carries on from the head: what came before is covered by the
    // catch-up sync the gap triggers.
    Ok(Start {
        after: position.user_head,
        gap,
    })
}

#[derive(Debug, Default)]
struct EventsQuery {
    mode: Option<String>,
    cursor: Option<String>,
    wait_secs: Option<String>,
}

fn parse_query(raw: Option<&str>) -> EventsQuery {
    let mut q = EventsQuery::default();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        let slot = match k.as_ref() {
            "mode" => &mut q.mode,
            "cursor" => &mut q.cursor,
            "wait_secs" => &mut q.wait_secs,
            _ => continue,
        };
        slot.get_or_insert_with(|| v.into_owned());
    }
    q
}

/// The JSON every event is described with, on the stream and in long-poll answers.
#[derive(Debug, Serialize)]
struct EventJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
    #[serde(rename = "type")]
    kind: &'a str,
    id: &'a str,
    user_id: i64,
    trace_id: &'a str,
}

fn event_json<'a>(ev: &'a StoredEvent, cursor: Option<String>) -> EventJson<'a> {
    EventJson {
        cursor,
        kind: &ev.kind,
        id: &ev.object_id,
        user_id: ev.user_id,
        trace_id: &ev.trace_id,
    }
}

/// `GET /v1/events`: SSE by default, long poll with `mode=poll`.
pub async fn read(
    State(app): State<Arc<AppState>>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let device = match authenticate(&app, ip, &headers).await {
        Ok(d) => d,
        Err(resp) => return resp,
    };
    // A lapsed subscription (past its grace) ends the service; the app keeps its history.
    let licence_deadline = match licences::gate_device(&app, &device).await {
        Ok(d) => d,
        Err(resp) => return resp,
    };
    let q = parse_query(raw.as_deref());
    let poll = match q.mode.as_deref() {
        None | Some("") | Some("sse") => false,
        Some("poll") => true,
        Some(_) => return json_error(StatusCode::BAD_REQUEST, "invalid_mode"),
    };
    let wait = match q.wait_secs.as_deref().map(str::parse::<u64>) {
        None => DEFAULT_WAIT_SECS,
        Some(Ok(secs)) => secs.min(MAX_WAIT_SECS),
        Some(Err(_)) => return json_error(StatusCode::BAD_REQUEST, "invalid_wait_secs"),
    };
    // An EventSource that reconnects sends Last-Event-ID with the URL it started on, so the
    // header is the newer of the two.
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    let cursor = last_event_id.or(q.cursor.as_deref());
    // Subscribe before the first read so nothing committed in between goes unnoticed.
    let wakes = app.waker.subscribe(device.user_id);
    let start = match resolve_start(&app, device.user_id, cursor).await {
        Ok(s) => s,
        Err(err) => return unavailable(&err),
    };
    let Some(slot) = StreamSlots::take(&app, &device.id) else {
        return json_error(StatusCode::TOO_MANY_REQUESTS, "too_many_streams");
    };
    if poll {
        let resp = long_poll(app, device, start, wakes, Duration::from_secs(wait)).await;
        drop(slot);
        resp
    } else {
        sse(app, device, start, wakes, slot, licence_deadline)
    }
}

async fn long_poll(
    app: Arc<AppState>,
    device: Device,
    start: Start,
    mut wakes: Wakes,
    wait: Duration,
) -> Response {
    let _open = OpenStream::new(&app.metrics);
    let deadline = Instant::now() + wait;
    let mut shutdown = app.shutdown.clone();
    let events = loop {
        let events = match app
            .storage
            .events_after(device.user_id, start.after, BATCH)
            .await
        {
            Ok(e) => e,
            Err(err) => return unavailable(&err),
        };
        // A gap is news in itself: answer at once so the app can start catching up.
        if !events.is_empty() || start.gap.is_some() || Instant::now() >= deadline {
            break events;
        }
        // Wait for a reason to read again (only this user's wake-ups reach here).
        let keep_waiting = tokio::select! {
            _ = tokio::time::sleep_until(deadline) => true,
            _ = wakes.woken() => {
                crate::metrics::bump(&app.metrics.stream_wakeups);
                true
            }
            _ = stopped(&mut shutdown) => false,
        };
        if !keep_waiting {
            break Vec::new();
        }
    };
    let now = now_ms();
    let list: Vec<EventJson> = events
        .iter()
        .map(|ev| {
            app.metrics.delivered(now - ev.received_at_ms);
            event_json(ev, Some(Cursor::new(&app.epoch, ev.seq).to_string()))
        })
        .collect();
    let mut body = json!({ "events": list, "gap": start.gap.is_some() });
    if let Some(reason) = start.gap {
        body["head"] = json!(Cursor::new(&app.epoch, start.after).to_string());
        body["reason"] = json!(reason.as_str());
    }
    let mut resp = Json(body).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Resolves once the relay is stopping (or its handle is gone).
async fn stopped(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Resolves at `at`, or never without one.
async fn retry(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// One stream's state between items.
struct StreamState {
    app: Arc<AppState>,
    device: Device,
    after: i64,
    pending: VecDeque<(Event, Option<i64>)>,
    need_read: bool,
    /// After a failed read: when to try again (no wake-up may come to prompt it).
    retry_at: Option<Instant>,
    wakes: Wakes,
    heartbeat: tokio::time::Interval,
    shutdown: tokio::sync::watch::Receiver<bool>,
    last_touch: Instant,
    /// When the device's licence (plus grace) ends, if the gate is on; re-read now and then.
    licence_deadline: Option<i64>,
    licence_checked: Instant,
    /// The last item was sent; the stream ends next.
    ending: bool,
    _open: OpenStream,
    _slot: StreamSlot,
}

enum Step {
    Yield(Event, Option<i64>),
    End,
}

impl StreamState {
    async fn step(&mut self) -> Step {
        loop {
            if let Some((event, received_at)) = self.pending.pop_front() {
                return Step::Yield(event, received_at);
            }
            if self.ending {
                return Step::End;
            }
            if self.need_read {
                // Boxed, like the checks below: an idle stream's future then only holds the
                // wait, not the largest database call's state (10,000 idle streams × that).
                Box::pin(self.read()).await;
                continue;
            }
            let retry_at = self.retry_at;
            let heartbeat_due = tokio::select! {
                _ = stopped(&mut self.shutdown) => return Step::End,
                _ = self.wakes.woken() => {
                    crate::metrics::bump(&self.app.metrics.stream_wakeups);
                    self.need_read = true;
                    false
                }
                _ = retry(retry_at) => {
                    self.need_read = true;
                    false
                }
                _ = self.heartbeat.tick() => true,
            };
            if heartbeat_due {
                if !Box::pin(self.still_authorised()).await {
                    return Step::End;
                }
                if !Box::pin(self.licence_still_active()).await {
                    // Say why before closing; reconnecting gets the same answer as a 402.
                    self.ending = true;
                    let data = json!({ "code": licences::SUBSCRIPTION_INACTIVE }).to_string();
                    let event = Event::default().event("subscription_inactive").data(data);
                    return Step::Yield(event, None);
                }
                return Step::Yield(Event::default().comment("heartbeat"), None);
            }
        }
    }

    async fn read(&mut self) {
        match self
            .app
            .storage
            .events_after(self.device.user_id, self.after, BATCH)
            .await
        {
            Ok(events) => {
                self.retry_at = None;
                self.need_read = events.len() as i64 == BATCH;
                for ev in &events {
                    let cursor = Cursor::new(&self.app.epoch, ev.seq).to_string();
                    let data = serde_json::to_string(&event_json(ev, None))
                        .unwrap_or_else(|_| "{}".to_string());
                    let event = Event::default().id(cursor).event("whoop").data(data);
                    self.pending.push_back((event, Some(ev.received_at_ms)));
                    self.after = ev.seq;
                }
            }
            Err(err) => {
                // Keep the stream (and its cursor) and try again a backstop period later; a
                // database blip should not make every device reconnect at once.
                tracing::warn!(error = %err, "stream read failed");
                self.need_read = false;
                self.retry_at = Some(Instant::now() + self.app.config.poll_backstop);
            }
        }
    }

    /// Whether the device's licence still covers it: past the deadline seen when the stream
    /// opened, or every `licences::stream_recheck`, the licence is read again (a renewal moves the
    /// deadline on, a revocation brings it forward).
    async fn licence_still_active(&mut self) -> bool {
        let Some(deadline) = self.licence_deadline else {
            return true;
        };
        let now = now_ms();
        if now < deadline && self.licence_checked.elapsed() < licences::stream_recheck(&self.app) {
            return true;
        }
        self.licence_checked = Instant::now();
        match licences::device_deadline(&self.app, &self.device).await {
            Ok(Some(d)) => {
                self.licence_deadline = Some(d);
                now < d
            }
            Ok(None) => false,
            // A database error is not proof of a lapse; keep the old deadline.
            Err(_) => now < deadline,
        }
    }

    /// Refreshes `last_seen_at` now and then, and notices a revoked device.
    async fn still_authorised(&mut self) -> bool {
        if self.last_touch.elapsed() < touch_interval(self.app.config.retention) {
            return true;
        }
        self.last_touch = Instant::now();
        // A database error is not proof of revocation; the stream carries on.
        self.app
            .storage
            .touch_device(&self.device.id, now_ms())
            .await
            .unwrap_or(true)
    }
}

fn sse(
    app: Arc<AppState>,
    device: Device,
    start: Start,
    wakes: Wakes,
    slot: StreamSlot,
    licence_deadline: Option<i64>,
) -> Response {
    let mut pending = VecDeque::new();
    if let Some(reason) = start.gap {
        let gap = Event::default()
            .id(Cursor::new(&app.epoch, start.after).to_string())
            .event("gap")
            .data(json!({ "reason": reason.as_str() }).to_string());
        pending.push_back((gap, None));
    }
    let now = Instant::now();
    let mut heartbeat = tokio::time::interval_at(now + app.config.heartbeat, app.config.heartbeat);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let state = StreamState {
        _open: OpenStream::new(&app.metrics),
        _slot: slot,
        shutdown: app.shutdown.clone(),
        app,
        device,
        after: start.after,
        pending,
        need_read: true,
        retry_at: None,
        wakes,
        heartbeat,
        last_touch: now,
        licence_deadline,
        licence_checked: now,
        ending: false,
    };
    let mut resp = Sse::new(event_stream(state)).into_response();
    // Reverse proxies (nginx) would otherwise buffer the stream.
    resp.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

fn event_stream(state: StreamState) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(state, |mut state| async move {
        match state.step().await {
            Step::Yield(event, received_at) => {
                if let Some(received_at) = received_at {
                    state.app.metrics.delivered(now_ms() - received_at);
                }
                Some((Ok(event), state))
            }
            Step::End => None,
        }
    })
}

#[derive(Deserialize)]
struct AckBody {
    cursor: String,
}

/// `POST /v1/events/ack {"cursor"}`: how far the device has durably applied.
pub async fn ack(
    State(app): State<Arc<AppState>>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let device = match authenticate(&app, ip, &headers).await {
        Ok(d) => d,
        Err(resp) => return resp,
    };
    let bytes = match crate::server::read_body(&app, body, MAX_ACK_BODY).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let Ok(parsed) = serde_json::from_slice::<AckBody>(&bytes) else {
        return json_error(StatusCode::BAD_REQUEST, "invalid_body");
    };
    let Some(cursor) = Cursor::parse(&parsed.cursor) else {
        return json_error(StatusCode::BAD_REQUEST, "invalid_cursor");
    };
    if cursor.epoch != app.epoch {
        return json_error(StatusCode::BAD_REQUEST, "cursor_from_another_log");
    }
    match owns_position(&app, device.user_id, cursor.seq).await {
        Ok(true) => {}
        Ok(false) => return json_error(StatusCode::FORBIDDEN, "not_your_cursor"),
        Err(err) => return unavailable(&err),
    }
    match app.storage.ack(&device.id, cursor.seq, now_ms()).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => crate::device::unauthorized(),
        Err(err) => unavailable(&err),
    }
}

/// A device may ack the start, one of its user's events, or a position retention has passed
/// (which is where its gap cursors point).
async fn owns_position(app: &AppState, user_id: i64, seq: i64) -> Result<bool> {
    if seq == 0 {
        return Ok(true);
    }
    if app.storage.is_users_event(user_id, seq).await? {
        return Ok(true);
    }
    let position = app.storage.position(user_id).await?;
    Ok(seq <= position.pruned_through || seq == position.user_head)
}

/// `DELETE /v1/devices/self`: the app disconnects; its credential stops working at once.
pub async fn revoke_self(
    State(app): State<Arc<AppState>>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
) -> Response {
    let device = match authenticate(&app, ip, &headers).await {
        Ok(d) => d,
        Err(resp) => return resp,
    };
    match app.storage.revoke_device(&device.id).await {
        Ok(()) => {
            tracing::info!(device = %device.id, "device revoked");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(err) => unavailable(&err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_takes_first_value_and_ignores_others() {
        let q = parse_query(Some(
            "mode=poll&cursor=v1.e.5&cursor=v1.e.9&x=1&wait_secs=3",
        ));
        assert_eq!(q.mode.as_deref(), Some("poll"));
        assert_eq!(q.cursor.as_deref(), Some("v1.e.5"));
        assert_eq!(q.wait_secs.as_deref(), Some("3"));
        let empty = parse_query(None);
        assert!(empty.mode.is_none() && empty.cursor.is_none());
    }
}
