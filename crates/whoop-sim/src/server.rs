//! Wiring: the shared state of one simulator, its router, and the handle that keeps it running.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::AtomicU64;
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
use crate::oauth::OAuthState;
use crate::ratelimit::RateLimiter;
use crate::shape::ShapeState;
use crate::stats::Stats;
use crate::time::{SimClock, Ts};
use crate::webhooks::{DeliveryFaults, Webhooks};
use crate::world::{Changes, World};
use crate::{api, control, oauth};

pub struct AppState {
    pub config: SimConfig,
    pub clock: SimClock,
    pub world: Mutex<World>,
    pub oauth: Mutex<OAuthState>,
    pub limiter: Mutex<RateLimiter>,
    pub faults: Mutex<Faults>,
    pub latency_ms: AtomicU64,
    pub stats: Arc<Stats>,
    pub webhooks: Arc<Webhooks>,
    pub shapes: Mutex<ShapeState>,
}

impl AppState {
    /// Brings the timeline up to "now", sends the webhooks that implies, and returns "now".
    pub fn sync(&self) -> Ts {
        self.sync_changes().0
    }

    pub fn sync_changes(&self) -> (Ts, Changes) {
        let now = self.clock.now();
        let changes = crate::lock(&self.world).catch_up(now);
        self.webhooks.announce(&changes.notices);
        (now, changes)
    }
}

/// A running simulator. Dropping it (or calling `shutdown`) stops the server and any webhook
/// deliveries still in flight.
pub struct SimHandle {
    /// e.g. `http://127.0.0.1:34567`; WHOOP's paths go directly under it.
    pub base_url: String,
    pub addr: SocketAddr,
    pub user_id: i64,
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
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let mut local = listener.local_addr()?;
    let clock = SimClock::default();
    let mut world = World::new(
        config.seed,
        config.days,
        clock.now(),
        config.newest_night_pending,
    );
    world.upload_delay =
        chrono::Duration::milliseconds((config.upload_delay_hours * 3_600_000.0) as i64);
    world.backdated_workout_hours = config.backdated_workout_hours;
    let user_id = world.user_id();
    let stats = Arc::new(Stats::default());
    let webhooks = Arc::new(Webhooks::new(
        config.webhook_url.clone(),
        config.client_secret.clone(),
        user_id,
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
        world: Mutex::new(world),
        oauth: Mutex::new(OAuthState::new(&config)),
        limiter: Mutex::new(RateLimiter::new(
            config.rate_limit_minute,
            config.rate_limit_day,
        )),
        faults: Mutex::new(faults),
        latency_ms: AtomicU64::new(config.latency_ms),
        stats,
        webhooks,
        shapes: Mutex::new(ShapeState::new(config.shapes.clone())),
        config,
    });
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
    tracing::info!(base_url = %format!("http://{local}"), user_id, "whoop-sim listening");
    Ok(SimHandle {
        base_url: format!("http://{local}"),
        addr: local,
        user_id,
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
        .route("/_sim/webhook-faults", post(control::webhook_faults))
        .route("/_sim/record-faults", post(control::record_faults))
        .route("/_sim/late-records", post(control::late_records))
        .route("/_sim/log-workout", post(control::log_workout))
        .layer(middleware::from_fn(log_request))
        .with_state(app)
}
