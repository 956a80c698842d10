//! The local REST API: the MCP tools' reads as read-only JSON endpoints under `/api/v1`, for the
//! person's own scripts. It listens on 127.0.0.1 only, answers only requests whose `Host` is a
//! loopback name (so a web page the browser opens cannot reach it through DNS rebinding: 403),
//! and only with the bearer token the person generated (401). The OpenAPI document at
//! `/api/v1/openapi.json` is generated from the same Rust types as the answers.

use std::net::{Ipv4Addr, SocketAddr};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::model::*;
use crate::{Error, Reader};

pub const PREFIX: &str = "/api/v1";

/// A new bearer token and its SHA-256 (hex), the only form that is kept.
pub fn new_token() -> (String, String) {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = format!("vt_{}", hex(&bytes));
    let hash = token_hash(&token);
    (token, hash)
}

/// Hex SHA-256 of a token.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Clone)]
struct AppState {
    reader: Reader,
    /// SHA-256 of the accepted token, as bytes.
    token_sha256: Vec<u8>,
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let mut response = (
        status,
        Json(ErrorBody {
            code: code.into(),
            message: message.into(),
        }),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"vitaltrends\""),
        );
    }
    response
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match &self {
            Error::BadRequest(m) => error(StatusCode::BAD_REQUEST, self.code(), m.clone()),
            Error::Store(e) => {
                tracing::error!(error = %e, "REST read failed");
                error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    self.code(),
                    self.to_string(),
                )
            }
        }
    }
}

/// Loopback names only: `localhost`, `127.0.0.1`, `[::1]`, with or without a port.
pub fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((inside, after)) if after.is_empty() || after.starts_with(':') => inside,
            _ => return false,
        }
    } else {
        host.split(':').next().unwrap_or("")
    };
    let port_ok = match host.rsplit_once(':') {
        Some((_, port)) if !host.ends_with(']') && name != "::1" => port.parse::<u16>().is_ok(),
        _ => true,
    };
    port_ok
        && matches!(
            name.to_ascii_lowercase().as_str(),
            "localhost" | "127.0.0.1" | "::1"
        )
}

async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !is_loopback_host(host) {
        return error(
            StatusCode::FORBIDDEN,
            "forbidden_host",
            "this API answers only requests addressed to 127.0.0.1 or localhost",
        );
    }
    // The API description is public on this computer so the app can link to it; the data is not.
    if request.uri().path() != format!("{PREFIX}/openapi.json") {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(|t| Sha256::digest(t.trim().as_bytes()).to_vec());
        let accepted = match presented {
            Some(hash) => {
                !state.token_sha256.is_empty() && bool::from(hash.ct_eq(&state.token_sha256))
            }
            None => false,
        };
        if !accepted {
            return error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a valid bearer token is required (Settings → AI & API)",
            );
        }
    }
    next.run(request).await
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, Error> {
    q.map(|Query(t)| t)
        .map_err(|e| Error::BadRequest(e.body_text()))
}

/// The newest WHOOP day: recovery with band, HRV, resting HR, sleep, strain.
#[utoipa::path(get, path = "/api/v1/today", tag = "reads",
    responses((status = 200, body = Today), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
async fn today(State(s): State<AppState>) -> Result<Json<Today>, Error> {
    s.reader.today().await.map(Json)
}

/// One metric per day over a range, optionally with a rolling average.
#[utoipa::path(get, path = "/api/v1/series", tag = "reads", params(SeriesInput),
    responses((status = 200, body = Series), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
async fn series(
    State(s): State<AppState>,
    q: Result<Query<SeriesInput>, QueryRejection>,
) -> Result<Json<Series>, Error> {
    s.reader.series(&query(q)?).await.map(Json)
}

/// Statistics of a period against the one before.
#[utoipa::path(get, path = "/api/v1/summary", tag = "reads", params(SummaryInput),
    responses((status = 200, body = PeriodSummary), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
async fn summary(
    State(s): State<AppState>,
    q: Result<Query<SummaryInput>, QueryRejection>,
) -> Result<Json<PeriodSummary>, Error> {
    s.reader.summary(&query(q)?).await.map(Json)
}

/// Two periods side by side.
#[utoipa::path(get, path = "/api/v1/compare", tag = "reads", params(CompareInput),
    responses((status = 200, body = Comparison), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
async fn compare(
    State(s): State<AppState>,
    q: Result<Query<CompareInput>, QueryRejection>,
) -> Result<Json<Comparison>, Error> {
    s.reader.compare(&query(q)?).await.map(Json)
}

/// Pearson correlation between two daily metrics, optionally lagged.
#[utoipa::path(get, path = "/api/v1/correlate", tag = "reads", params(CorrelateInput),
    responses((status = 200, body = Correlation), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
async fn correlate(
    State(s): State<AppState>,
    q: Result<Query<CorrelateInput>, QueryRejection>,
) -> Result<Json<Correlation>, Error> {
    s.reader.correlate(&query(q)?).await.map(Json)
}

/// Workouts, newest first, filtered by sport, days and strain.
#[utoipa::path(get, path = "/api/v1/workouts", tag = "reads", params(WorkoutsInput),
    responses((status = 200, body = Workouts), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
async fn workouts(
    State(s): State<AppState>,
    q: Result<Query<WorkoutsInput>, QueryRejection>,
) -> Result<Json<Workouts>, Error> {
    s.reader.workouts(&query(q)?).await.map(Json)
}

/// One night's sleep and that day's naps.
#[utoipa::path(get, path = "/api/v1/sleep", tag = "reads", params(SleepInput),
    responses((status = 200, body = Night), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
async fn sleep(
    State(s): State<AppState>,
    q: Result<Query<SleepInput>, QueryRejection>,
) -> Result<Json<Night>, Error> {
    s.reader.sleep(&query(q)?).await.map(Json)
}

/// What is imported and how fresh it is.
#[utoipa::path(get, path = "/api/v1/status", tag = "reads",
    responses((status = 200, body = DataStatus), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
async fn status(State(s): State<AppState>) -> Result<Json<DataStatus>, Error> {
    s.reader.status().await.map(Json)
}

/// The WHOOP member this history belongs to.
#[utoipa::path(get, path = "/api/v1/profile", tag = "reads",
    responses((status = 200, body = ProfileAnswer), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
async fn profile(State(s): State<AppState>) -> Result<Json<ProfileAnswer>, Error> {
    s.reader.profile().await.map(Json)
}

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "VitalTrends local API",
        description = "Read-only access to the WHOOP history VitalTrends keeps on this computer. \
                       127.0.0.1 only; a bearer token from Settings → AI & API."
    ),
    paths(today, series, summary, compare, correlate, workouts, sleep, status, profile),
    components(schemas(ErrorBody)),
    modifiers(&BearerScheme)
)]
pub struct ApiDoc;

/// The OpenAPI document as served.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi())
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

/// The API's routes; every request passes the Host and token checks first.
pub fn router(reader: Reader, token_sha256_hex: Option<&str>) -> Router {
    let token_sha256 = token_sha256_hex
        .and_then(|h| {
            (h.len() == 64)
                .then(|| {
                    (0..32)
                        .map(|i| u8::from_str_radix(&h[i * 2..i * 2 + 2], 16).ok())
                        .collect::<Option<Vec<u8>>>()
                })
                .flatten()
        })
        .unwrap_or_default();
    let state = AppState {
        reader,
        token_sha256,
    };
    Router::new()
        .route(&format!("{PREFIX}/openapi.json"), get(openapi_json))
        .route(&format!("{PREFIX}/today"), get(today))
        .route(&format!("{PREFIX}/series"), get(series))
        .route(&format!("{PREFIX}/summary"), get(summary))
        .route(&format!("{PREFIX}/compare"), get(compare))
        .route(&format!("{PREFIX}/correlate"), get(correlate))
        .route(&format!("{PREFIX}/workouts"), get(workouts))
        .route(&format!("{PREFIX}/sleep"), get(sleep))
        .route(&format!("{PREFIX}/status"), get(status))
        .route(&format!("{PREFIX}/profile"), get(profile))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// Binds 127.0.0.1:`port` (0: any free port).
pub async fn bind(port: u16) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_names_pass() {
        for ok in [
            "127.0.0.1",
            "127.0.0.1:47621",
            "localhost:8080",
            "LOCALHOST",
            "[::1]:47621",
            "[::1]",
        ] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:47621",
            "127.0.0.1.evil.example",
            "localhost.evil.example:80",
            "",
            "[::2]:80",
            "127.0.0.1:notaport",
        ] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
    }

    #[test]
    fn tokens_are_new_each_time_and_kept_only_as_their_hash() {
        let (a, ha) = new_token();
        let (b, _) = new_token();
        assert_ne!(a, b);
        assert_eq!(ha, token_hash(&a));
        assert_eq!(ha.len(), 64);
        assert!(!ha.contains(&a[3..]));
    }

    #[test]
    fn every_answer_type_is_described() {
        let doc = serde_json::to_value(openapi()).unwrap();
        let today = &doc["paths"]["/api/v1/today"]["get"]["responses"]["200"]["content"]
            ["application/json"]["schema"];
        assert_eq!(today["$ref"], "#/components/schemas/Today");
        for name in [
            "Today",
            "Series",
            "PeriodSummary",
            "Comparison",
            "Correlation",
            "Workouts",
            "Night",
            "DataStatus",
            "ProfileAnswer",
            "ErrorBody",
            "Reading",
            "MetricName",
        ] {
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "{name} missing"
            );
        }
    }
}
