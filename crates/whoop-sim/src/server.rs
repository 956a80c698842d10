//! Wiring: the shared state of one simulator, its router, and the handle that keeps it running.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post, MethodRouter};
use axum::Router;
use tokio::sync::oneshot;

use crate::config::SimConfig;
use crate::faults::{parse_record_fault, Faults};
use crate::generate::side_rng;
use crate::members::{identities, LateSettings, Member, Members, MAX_USERS};
use crate::oauth::OAuthState;
use crate::ratelimit::RateLimiter;
use crate::shape::ShapeState;
use crate::stats::Stats;
use crate::time::{SimClock, Ts};
use crate::webhooks::{DeliveryFaults, Webhooks};
use crate::world::{Changes, World};
use crate::{api, control, oauth};

/// How often (real time) a data request also brings every other generated member up to now,
/// so their webhooks go out while anyone is using the simulator, at a bounded cost per request.
const FULL_SYNC_EVERY_MS: i64 = 1_000;

pub struct AppState {
    pub config: SimConfig,
    pub clock: SimClock,
    pub members: Members,
    /// Real time (ms) of the last time every generated member was brought up to now.
    last_full_sync_ms: AtomicI64,
    pub oauth: Mutex<OAuthState>,
    pub limiter: Mutex<RateLimiter>,
    pub faults: Mutex<Faults>,
    pub latency_ms: AtomicU64,
    pub stats: Arc<Stats>,
    pub webhooks: Arc<Webhooks>,
    pub shapes: Mutex<ShapeState>,
}

impl AppState {
    /// Brings every generated member's timeline up to "now", sends the webhooks that implies,
    /// and returns "now".
    pub fn sync(&self) -> Ts {
        self.sync_changes().0
    }

    /// `sync`, also returning each member's changes (members without changes left out).
    pub fn sync_changes(&self) -> (Ts, Vec<(u32, Changes)>) {
        let now = self.clock.now();
        self.last_full_sync_ms
            .store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
        let mut all = Vec::new();
        for member in self.members.iter() {
            if let Some(world) = member.generated() {
                let changes = crate::lock(world).catch_up(now);
                self.announce(member, &changes);
                if changes.added + changes.updated + changes.deleted > 0
                    || !changes.notices.is_empty()
                {
                    all.push((member.index, changes));
                }
            }
        }
        (now, all)
    }

    /// Brings member `k`'s timeline (generated now if need be) up to "now" and returns its
    /// world; at most once a second the other generated members are brought up too.
    pub fn sync_member(&self, k: u32) -> (Ts, &Mutex<World>) {
        let real = chrono::Utc::now().timestamp_millis();
        if self.members.count() > 1
            && real - self.last_full_sync_ms.load(Ordering::Relaxed) >= FULL_SYNC_EVERY_MS
        {
            self.sync();
        }
        let now = self.clock.now();
        let member = self.member(k);
        let world = self.members.world(member, now);
        let changes = crate::lock(world).catch_up(now);
        self.announce(member, &changes);
        (now, world)
    }

    /// Member `k`'s world, generated now if it was not yet (not brought up to now).
    pub fn member_world(&self, k: u32) -> &Mutex<World> {
        self.members.world(self.member(k), self.clock.now())
    }

    /// Member `k`; callers check `k` (control requests) or got it from a grant.
    pub fn member(&self, k: u32) -> &Member {
        self.members
            .get(k)
            .or_else(|| self.members.get(1))
            .expect("there is always member 1")
    }

    /// Sends a member's webhooks, unless the member has not authorized the app.
    pub fn announce(&self, member: &Member, changes: &Changes) {
        if !member.disconnected() {
            self.webhooks
                .announce(member.identity.user_id, &changes.notices);
        }
    }
}

/// A running simulator. Dropping it (or calling `shutdown`) stops the server and any webhook
/// deliveries still in flight.
pub struct SimHandle {
    /// e.g. `http://127.0.0.1:34567`; WHOOP's paths go directly under it.
    pub base_url: String,
    pub addr: SocketAddr,
    /// Member 1's WHOOP user id.
    pub user_id: i64,
    /// Every member's user id, member k at index k − 1 (`SimConfig::users` entries).
    pub user_ids: Vec<i64>,
    pub client_id: String,
    stop: Option<oneshot::Sender<()>>,
    state: Arc<AppState>,
}

impl SimHandle {
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        // A graceful stop, not an abort: aborting the accept loop would leave keep-alive
        // connections it already spawned answering requests after the handle is gone.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.state.webhooks.abort_all();
    }
}

const PURPOSE_FAULTS: u64 = 0xFA17;
const PURPOSE_DELIVERY: u64 = 0xDE11;

/// Binds `addr` (port 0 picks a free port), generates the data and serves in a spawned task.
pub async fn start(config: SimConfig, addr: SocketAddr) -> std::io::Result<SimHandle> {
    let mut faults = Faults::new(side_rng(config.seed, PURPOSE_FAULTS, 0));
    for spec in &config.record_faults {
        let (id, entry) = parse_record_fault(spec).map_err(std::io::Error::other)?;
        faults.record_faults.insert(id, entry);
    }
    if !(1..=MAX_USERS).contains(&config.users) {
        return Err(std::io::Error::other(format!(
            "users must be between 1 and {MAX_USERS}, not {}",
            config.users
        )));
    }
    if !(config.rate_window_scale.is_finite() && config.rate_window_scale > 0.0) {
        return Err(std::io::Error::other(format!(
            "the rate window scale must be a positive number, not {}",
            config.rate_window_scale
        )));
    }
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let mut local = listener.local_addr()?;
    let clock = SimClock::default();
    let start_time = clock.now();
    let first_user_id = crate::generate::user_id_for(config.seed);
    let stranger = first_user_id + crate::api::STRANGER_OFFSET;
    let members = Members::new(
        identities(config.seed, config.users, stranger),
        config.days,
        start_time,
        config.newest_night_pending,
        LateSettings {
            upload_delay: chrono::Duration::milliseconds(
                (config.upload_delay_hours * 3_600_000.0) as i64,
            ),
            backdated_workout_hours: config.backdated_workout_hours,
        },
    );
    // Member 1 is generated at start, as the single user always was.
    if let Some(first) = members.get(1) {
        members.world(first, start_time);
    }
    let user_ids: Vec<i64> = members.iter().map(|m| m.identity.user_id).collect();
    let user_id = user_ids[0];
    let stats = Arc::new(Stats::default());
    let webhooks = Arc::new(Webhooks::new(
        config.webhook_url.clone(),
        config.client_secret.clone(),
        config.webhook_retry_scale,
        Arc::clone(&stats),
        {
            let mut delivery = DeliveryFaults::new(side_rng(config.seed, PURPOSE_DELIVERY, 0));
            delivery.drop_rate = config.webhook_drop_rate.clamp(0.0, 1.0);
            delivery.duplicate_rate = config.webhook_duplicate_rate.clamp(0.0, 1.0);
            delivery
        },
    )?);
    let state = Arc::new(AppState {
        clock,
        members,
        last_full_sync_ms: AtomicI64::new(0),
        oauth: Mutex::new(OAuthState::new(&config)),
        limiter: Mutex::new(RateLimiter::scaled(
            config.rate_limit_minute,
            config.rate_limit_day,
            config.rate_window_scale,
        )),
        faults: Mutex::new(faults),
        latency_ms: AtomicU64::new(config.latency_ms),
        stats,
        webhooks,
        shapes: Mutex::new(ShapeState::new(config.shapes.clone())),
        config,
    });
    if state.config.generate_all_at_start {
        let generating = Arc::clone(&state);
        tokio::task::spawn_blocking(move || {
            for m in generating.members.iter() {
                generating.members.world(m, start_time);
            }
        })
        .await
        .map_err(std::io::Error::other)?;
    }
    let app = router(Arc::clone(&state));
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        if let Err(err) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %err, "simulator server stopped");
        }
    });
    if local.ip().is_unspecified() {
        local.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    tracing::info!(base_url = %format!("http://{local}"), user_id, users = user_ids.len(), "whoop-sim listening");
    Ok(SimHandle {
        base_url: format!("http://{local}"),
        addr: local,
        user_id,
        user_ids,
        client_id: state.config.client_id.clone(),
        stop: Some(stop),
        state,
    })
}

fn data(
    app: &Arc<AppState>,
    key: &'static str,
    route: MethodRouter<Arc<AppState>>,
) -> MethodRouter<Arc<AppState>> {
    route.layer(middleware::from_fn_with_state(
        (Arc::clone(app), key),
        api::guard,
    ))
}

/// Logs method, path and status only: query strings carry codes and states, bodies carry
/// secrets and tokens.
async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    tracing::debug!(%method, %path, status = resp.status().as_u16(), "request");
    resp
}

fn router(app: Arc<AppState>) -> Router {
    let v2 = "/developer/v2";
    Router::new()
        .route("/oauth/oauth2/auth", get(oauth::authorize))
        .route("/oauth/oauth2/auth/decision", post(oauth::decide))
        .route("/oauth/oauth2/token", post(oauth::token))
        .route(
            &format!("{v2}/cycle"),
            data(&app, "cycle.collection", get(api::cycle_collection)),
        )
        .route(
            &format!("{v2}/cycle/{{id}}"),
            data(&app, "cycle.by_id", get(api::cycle_by_id)),
        )
        .route(
            &format!("{v2}/cycle/{{id}}/recovery"),
            data(&app, "cycle.recovery", get(api::cycle_recovery)),
        )
        .route(
            &format!("{v2}/cycle/{{id}}/sleep"),
            data(&app, "cycle.sleep", get(api::cycle_sleep)),
        )
        .route(
            &format!("{v2}/recovery"),
            data(&app, "recovery.collection", get(api::recovery_collection)),
        )
        .route(
            &format!("{v2}/activity/sleep"),
            data(&app, "sleep.collection", get(api::sleep_collection)),
        )
        .route(
            &format!("{v2}/activity/sleep/{{id}}"),
            data(&app, "sleep.by_id", get(api::sleep_by_id)),
        )
        .route(
            &format!("{v2}/activity/workout"),
            data(&app, "workout.collection", get(api::workout_collection)),
        )
        .route(
            &format!("{v2}/activity/workout/{{id}}"),
            data(&app, "workout.by_id", get(api::workout_by_id)),
        )
        .route(
            &format!("{v2}/user/profile/basic"),
            data(&app, "profile", get(api::profile)),
        )
        .route(
            &format!("{v2}/user/measurement/body"),
            data(&app, "body_measurement", get(api::body_measurement)),
        )
        .route(
            &format!("{v2}/user/access"),
            data(&app, "revoke", delete(api::revoke_access)),
        )
        .route("/_sim/stats", get(control::stats))
        .route("/_sim/reset-stats", post(control::reset_stats))
        .route("/_sim/dump", get(control::dump))
        .route("/_sim/advance", post(control::advance))
        .route("/_sim/edit", post(control::edit))
        .route("/_sim/delete", post(control::delete))
        .route("/_sim/webhook", post(control::webhook))
        .route("/_sim/expire-tokens", post(control::expire_tokens))
        .route("/_sim/revoke", post(control::revoke))
        .route("/_sim/faults", post(control::faults))
        .route("/_sim/webhook-url", post(control::webhook_url))
        .route("/_sim/shapes", post(control::shapes))
        .route(
            "/_sim/expire-paging-tokens",
            post(control::expire_paging_tokens),
        )
        .route("/_sim/token-faults", post(control::token_faults))
        .route("/_sim/app-scopes", post(control::app_scopes))
        .route(
            "/_sim/other-member-logins",
            post(control::other_member_logins),
        )
        .route("/_sim/grants", get(control::grants))
        .route("/_sim/next-member", post(control::next_member))
        .route("/_sim/webhook-faults", post(control::webhook_faults))
        .route("/_sim/record-faults", post(control::record_faults))
        .route("/_sim/late-records", post(control::late_records))
        .route("/_sim/log-workout", post(control::log_workout))
        .layer(middleware::from_fn(log_request))
        .with_state(app)
}
