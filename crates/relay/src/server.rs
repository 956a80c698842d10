//! Wiring: the shared state of one relay, its routes, the background tasks (retention, LISTEN),
//! and the handle that keeps it all running until dropped.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::RelayConfig;
use crate::error::{json_error, Error, Result};
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::storage::Storage;
use crate::wake::Waker;
use crate::{broker, events, intake, licences, retention, wake};

/// How long open requests get to finish once the relay is told to stop.
const DRAIN: Duration = Duration::from_secs(5);

pub struct AppState {
    pub config: RelayConfig,
    pub storage: Storage,
    /// The log's identity, part of every cursor.
    pub epoch: String,
    pub waker: Waker,
    pub metrics: Arc<Metrics>,
    pub webhook_limiter: RateLimiter,
    pub broker_limiter: RateLimiter,
    /// For the token broker's calls to WHOOP.
    pub http: reqwest::Client,
    /// Flips to `true` when the relay stops; open streams end on it.
    pub shutdown: watch::Receiver<bool>,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A running relay. Dropping it (or calling `shutdown`) stops the server and its background tasks.
pub struct RelayHandle {
    /// e.g. `http://127.0.0.1:34567`.
    pub base_url: String,
    pub addr: SocketAddr,
    /// `"sqlite"` or `"postgres"`.
    pub database: &'static str,
    stop: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
    state: Arc<AppState>,
}

impl RelayHandle {
    /// Stops accepting requests, ends open streams, waits for requests in flight (a few seconds
    /// at most) and closes the database.
    pub async fn shutdown(mut self) {
        self.stop_background();
        let _ = self.stop.send(true);
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    /// The log epoch every cursor of this relay carries.
    pub fn log_epoch(&self) -> &str {
        &self.state.epoch
    }

    /// The database connection pool is closed; from now on every request that needs the
    /// database gets a 503. For tests of the relay's behaviour when its database is gone.
    #[doc(hidden)]
    pub async fn close_database(&self) {
        self.state.storage.close().await;
    }

    fn stop_background(&mut self) {
        for task in self.background.drain(..) {
            task.abort();
        }
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        self.stop_background();
        // The server task sees this, drains, closes the pool and exits on its own.
        let _ = self.stop.send(true);
    }
}

/// Binds `config.listen`, opens and migrates the database, and serves in spawned tasks.
pub async fn start(config: RelayConfig) -> Result<RelayHandle> {
    config.validate()?;
    let storage = Storage::connect(&config.database_url).await?;
    let epoch = storage.log_epoch().await?;
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let mut local = listener.local_addr()?;
    if local.ip().is_unspecified() {
        local.set_ip(match local.ip() {
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        });
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .connect_timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("vitaltrends-relay/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Http(e.without_url().to_string()))?;
    let (stop, stopped) = watch::channel(false);
    let database = storage.kind();
    let state = Arc::new(AppState {
        webhook_limiter: RateLimiter::new(config.per_ip_per_minute, config.global_per_second),
        broker_limiter: RateLimiter::new(config.per_ip_per_minute, config.global_per_second),
        config,
        storage,
        epoch,
        waker: Waker::default(),
        metrics: Arc::new(Metrics::default()),
        http,
        shutdown: stopped.clone(),
    });

    let mut background = vec![tokio::spawn(retention::run(Arc::clone(&state)))];
    if let Storage::Postgres(pool) = &state.storage {
        background.push(tokio::spawn(wake::listen(
            pool.clone(),
            state.waker.clone(),
        )));
    }

    let app = router(Arc::clone(&state));
    let server_state = Arc::clone(&state);
    let server = tokio::spawn(async move {
        let mut graceful_stop = stopped.clone();
        let mut hard_stop = stopped;
        let serve = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = graceful_stop.wait_for(|stop| *stop).await;
        });
        tokio::select! {
            result = serve => {
                if let Err(err) = result {
                    tracing::error!(error = %err, "relay server stopped");
                }
            }
            // A client that keeps a request open past the drain does not keep the relay alive.
            _ = async {
                let _ = hard_stop.wait_for(|stop| *stop).await;
                tokio::time::sleep(DRAIN).await;
            } => {}
        }
        server_state.storage.close().await;
        tracing::info!("relay stopped");
    });

    let base_url = format!("http://{local}");
    tracing::info!(%base_url, database, "relay listening");
    Ok(RelayHandle {
        base_url,
        addr: local,
        database,
        stop,
        server: Some(server),
        background,
        state,
    })
}

/// Logs method, path and status only: query strings carry OAuth codes and cursors, headers carry
/// credentials and signatures, bodies carry tokens.
async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    // The path alone: no route here has parameters in its path, and the query is never logged.
    let path = req.uri().path().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    tracing::debug!(
        %method,
        %path,
        status = resp.status().as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    resp
}

async fn healthz(State(app): State<Arc<AppState>>) -> Response {
    match tokio::time::timeout(Duration::from_secs(3), app.storage.ping()).await {
        Ok(Ok(())) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"ok":true}"#,
        )
            .into_response(),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"ok":false}"#,
        )
            .into_response(),
    }
}

async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response()
}

async fn not_found() -> Response {
    json_error(StatusCode::NOT_FOUND, "not_found")
}

fn router(app: Arc<AppState>) -> Router {
    Router::new()
        .route("/webhooks/whoop", post(intake::receive))
        .route("/oauth/whoop/token", post(broker::exchange))
        .route("/oauth/whoop/refresh", post(broker::refresh))
        .route("/oauth/whoop/callback", get(broker::callback))
        .route("/v1/events", get(events::read))
        .route("/v1/events/ack", post(events::ack))
        .route("/v1/devices/self", delete(events::revoke_self))
        .route("/v1/licence", get(licences::status).post(licences::rebind))
        .route("/billing/webhook", post(licences::billing_webhook))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(middleware::from_fn(log_request))
        .with_state(app)
}
