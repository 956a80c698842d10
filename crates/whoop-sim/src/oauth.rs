//! WHOOP's OAuth 2.0 server as it behaves in practice (it matches Ory Hydra/Fosite): an
//! authorization endpoint with a consent page, a token endpoint with client_secret_post
//! authentication, optional S256 PKCE, and rotating refresh tokens where replaying a spent one
//! revokes the whole chain. Token lifetimes use real time, not simulated time, because clients
//! schedule refreshes with their own clocks.
//!
//! Tokens carry the scopes granted, and a data endpoint outside them answers 401 (as WHOOP's
//! OpenAPI document declares). Switches (flags and `/_sim/...`) make it as unkind as WHOOP can
//! be: an app registered with fewer scopes (`invalid_scope` at sign-in), a token endpoint that
//! is slow, fails with a 5xx, or cuts the connection after it already rotated the refresh token
//! (or spent the code), and a sign-in as another WHOOP member.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::Rng;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::config::SimConfig;
use crate::server::AppState;
use crate::stats::bump;

const CODE_TTL: Duration = Duration::from_secs(600);

pub const SCOPES: [(&str, &str); 7] = [
    ("read:recovery", "Read Recovery data, including score, heart rate variability, and resting heart rate."),
    ("read:cycles", "Read cycles data, including day Strain and average heart rate during a physiological cycle."),
    ("read:workout", "Read workout data, including activity Strain and average heart rate."),
    ("read:sleep", "Read sleep data, including performance % and duration per sleep stage."),
    ("read:profile", "Read profile data, including name and email."),
    ("read:body_measurement", "Read body measurements, including height, weight, and max heart rate."),
    ("offline", "Stay connected when you are not using the app (refresh tokens)."),
];

const INVALID_GRANT: &str = "The provided authorization grant (e.g., authorization code, resource owner credentials) or refresh token is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.";
const INVALID_REQUEST: &str = "The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed.";
const INVALID_CLIENT: &str = "Client authentication failed (e.g., unknown client, no client authentication included, or unsupported authentication method).";
const REDIRECT_HINT: &str =
    "The 'redirect_uri' parameter does not match any of the OAuth 2.0 Client's pre-registered redirect urls.";

/// An authorization request waiting on the consent page.
struct PendingConsent {
    redirect_uri: String,
    scopes: Vec<String>,
    state: String,
    challenge: Option<String>,
    expires: Instant,
}

struct Code {
    redirect_uri: String,
    scopes: Vec<String>,
    challenge: Option<String>,
    expires: Instant,
    /// The grant the code was exchanged for; a second exchange attempt revokes it.
    exchanged_for: Option<u64>,
    other_member: bool,
    /// The member (1-based) who signed in.
    member: u32,
}

/// One authorization: the chain of tokens that rotation produces.
struct Grant {
    scopes: Vec<String>,
    revoked: bool,
    current_access: Option<String>,
    /// Signed in as the second simulated member (see `/_sim/other-member-logins`).
    other_member: bool,
    /// The member (1-based) whose data the grant reads; 1 for the stranger, whose data
    /// endpoints are not member-aware.
    member: u32,
}

/// A grant as `GET /_sim/grants` shows it.
#[derive(serde::Serialize)]
pub struct GrantView {
    pub id: u64,
    pub member: u32,
    pub other_member: bool,
    pub scopes: Vec<String>,
    pub revoked: bool,
}

/// Token-endpoint faults, set by flags or `POST /_sim/token-faults`.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct TokenFaults {
    /// Delay added to every token-endpoint answer, after the request was acted on.
    pub latency_ms: u64,
    /// The next N token requests fail with a 500 before anything is looked at (nothing rotates).
    pub fail_next: u64,
    /// The next N successful token requests rotate (or spend the code), then answer 500.
    pub fail_after_rotate_next: u64,
    /// The next N successful token requests rotate (or spend the code), then cut the connection
    /// in the middle of the answer.
    pub cut_after_rotate_next: u64,
}

/// What happens to an answer that already rotated.
enum AfterRotate {
    Fail,
    Cut,
}

struct AccessToken {
    grant: u64,
    expires: Instant,
    epoch: u64,
}

struct RefreshToken {
    grant: u64,
    used: bool,
}

/// Everything the authorization server remembers.
#[derive(Default)]
pub struct OAuthState {
    pub token_faults: TokenFaults,
    /// The scopes the app is registered for; `None` allows every scope.
    pub app_scopes: Option<Vec<String>>,
    /// The next N approved sign-ins are as the second simulated member.
    pub other_member_logins: u64,
    /// How many members may sign in (`--users`).
    users: u32,
    /// Who the next sign-in is (1-based) unless the consent page names someone: members sign
    /// in turn, wrapping from N back to 1.
    next_member: u32,
    pending: HashMap<String, PendingConsent>,
    codes: HashMap<String, Code>,
    grants: HashMap<u64, Grant>,
    access: HashMap<String, AccessToken>,
    refresh: HashMap<String, RefreshToken>,
    next_grant: u64,
    /// Bumped by `/_sim/expire-tokens`: access tokens from an earlier epoch are expired.
    epoch: u64,
}

pub struct Issued {
    access_token: String,
    refresh_token: Option<String>,
    scope: String,
}

impl OAuthState {
    pub fn new(config: &SimConfig) -> OAuthState {
        OAuthState {
            token_faults: TokenFaults {
                latency_ms: config.token_latency_ms,
                fail_next: config.token_fail,
                fail_after_rotate_next: config.token_fail_after_rotate,
                cut_after_rotate_next: config.token_cut_after_rotate,
            },
            app_scopes: (!config.app_scopes.is_empty()).then(|| config.app_scopes.clone()),
            other_member_logins: config.other_member_logins,
            users: config.users.max(1),
            next_member: 1,
            ..OAuthState::default()
        }
    }

    /// Whether a grant's scopes allow a data endpoint (its `/_sim/stats` key). WHOOP's
    /// OpenAPI lists no scope for `cycle/{id}/sleep`; either sleep or cycles is accepted there.
    pub fn grant_allows(&self, grant: u64, endpoint: &str) -> bool {
        let needed: &[&str] = match endpoint {
            "cycle.collection" | "cycle.by_id" => &["read:cycles"],
            "cycle.recovery" | "recovery.collection" => &["read:recovery"],
            "cycle.sleep" => &["read:cycles", "read:sleep"],
            "sleep.collection" | "sleep.by_id" => &["read:sleep"],
            "workout.collection" | "workout.by_id" => &["read:workout"],
            "profile" => &["read:profile"],
            "body_measurement" => &["read:body_measurement"],
            _ => return true,
        };
        self.grants
            .get(&grant)
            .is_some_and(|g| g.scopes.iter().any(|s| needed.contains(&s.as_str())))
    }

    /// Whether a grant was signed in as the second simulated member.
    pub fn is_other_member(&self, grant: u64) -> bool {
        self.grants.get(&grant).is_some_and(|g| g.other_member)
    }

    /// The member whose data a grant reads.
    pub fn member_of(&self, grant: u64) -> u32 {
        self.grants.get(&grant).map_or(1, |g| g.member)
    }

    /// The member an access token was issued to, whether or not it still works: a request is
    /// counted against its member even when it is refused.
    pub fn member_of_token(&self, token: &str) -> Option<u32> {
        let at = self.access.get(token)?;
        self.grants.get(&at.grant).map(|g| g.member)
    }

    /// Who the next sign-in is unless the consent page names someone else.
    pub fn next_member(&self) -> u32 {
        self.next_member
    }

    /// Sets who the next sign-in is (`/_sim/next-member`); `k` must be a member.
    pub fn set_next_member(&mut self, k: u32) {
        self.next_member = k.clamp(1, self.users);
    }

    /// Revokes every grant of member `k`; returns how many were live.
    pub fn revoke_member(&mut self, k: u32) -> usize {
        let mut n = 0;
        for g in self.grants.values_mut().filter(|g| g.member == k) {
            n += usize::from(!g.revoked);
            g.revoked = true;
        }
        n
    }

    /// Live (not revoked) grants per member, for `/_sim/stats`; the stranger's are left out.
    pub fn live_grants_by_member(&self) -> HashMap<u32, usize> {
        let mut counts = HashMap::new();
        for g in self
            .grants
            .values()
            .filter(|g| !g.revoked && !g.other_member)
        {
            *counts.entry(g.member).or_insert(0) += 1;
        }
        counts
    }

    pub fn grant_views(&self) -> Vec<GrantView> {
        let mut views: Vec<GrantView> = self
            .grants
            .iter()
            .map(|(id, g)| GrantView {
                id: *id,
                member: g.member,
                other_member: g.other_member,
                scopes: g.scopes.clone(),
                revoked: g.revoked,
            })
            .collect();
        views.sort_by_key(|v| v.id);
        views
    }

    fn take_after_rotate(&mut self) -> Option<AfterRotate> {
        let f = &mut self.token_faults;
        if f.fail_after_rotate_next > 0 {
            f.fail_after_rotate_next -= 1;
            Some(AfterRotate::Fail)
        } else if f.cut_after_rotate_next > 0 {
            f.cut_after_rotate_next -= 1;
            Some(AfterRotate::Cut)
        } else {
            None
        }
    }

    /// The grant behind a bearer token, if the token still works.
    pub fn authenticate(&self, token: &str, now: Instant) -> Option<u64> {
        let at = self.access.get(token)?;
        let grant = self.grants.get(&at.grant)?;
        let current = grant.current_access.as_deref() == Some(token);
        (current && !grant.revoked && now < at.expires && at.epoch == self.epoch)
            .then_some(at.grant)
    }

    pub fn revoke_grant(&mut self, grant: u64) {
        if let Some(g) = self.grants.get_mut(&grant) {
            g.revoked = true;
        }
    }

    pub fn revoke_all(&mut self) {
        for g in self.grants.values_mut() {
            g.revoked = true;
        }
    }

    pub fn expire_all_access(&mut self) {
        self.epoch += 1;
    }

    fn new_grant(&mut self, scopes: Vec<String>, other_member: bool, member: u32) -> u64 {
        self.next_grant += 1;
        self.grants.insert(
            self.next_grant,
            Grant {
                scopes,
                revoked: false,
                current_access: None,
                other_member,
                member,
            },
        );
        self.next_grant
    }

    /// Issues the next access (and, with `offline`, refresh) token of a grant; any earlier
    /// access token of the grant stops working.
    fn issue(&mut self, grant_id: u64, ttl: Duration, now: Instant) -> Option<Issued> {
        let epoch = self.epoch;
        let grant = self.grants.get_mut(&grant_id)?;
        let access_token = random_token("ory_at_");
        grant.current_access = Some(access_token.clone());
        let offline = grant.scopes.iter().any(|s| s == "offline");
        let scope = grant.scopes.join(" ");
        self.access.insert(
            access_token.clone(),
            AccessToken {
                grant: grant_id,
                expires: now + ttl,
                epoch,
            },
        );
        let refresh_token = offline.then(|| random_token("ory_rt_"));
        if let Some(rt) = &refresh_token {
            self.refresh.insert(
                rt.clone(),
                RefreshToken {
                    grant: grant_id,
                    used: false,
                },
            );
        }
        Some(Issued {
            access_token,
            refresh_token,
            scope,
        })
    }
}

fn random_token(prefix: &str) -> String {
    let bytes: [u8; 32] = rand::thread_rng().gen();
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// With no registered list, any loopback HTTP URI with a port or any `vitaltrends://` URI is
/// accepted (the desktop app's two redirect styles); otherwise only exact matches.
pub fn redirect_allowed(config: &SimConfig, uri: &str) -> bool {
    if !config.redirect_uris.is_empty() {
        return config.redirect_uris.iter().any(|r| r == uri);
    }
    let Ok(parsed) = url::Url::parse(uri) else {
        return false;
    };
    if parsed.fragment().is_some() {
        return false;
    }
    match parsed.scheme() {
        "vitaltrends" => true,
        "http" => {
            let loopback = matches!(parsed.host_str(), Some("127.0.0.1") | Some("localhost"));
            // `Url` drops a port equal to the scheme default, so check the raw authority too.
            let has_port = parsed.port().is_some()
                || uri
                    .split("://")
                    .nth(1)
                    .and_then(|rest| rest.split(['/', '?']).next())
                    .is_some_and(|authority| authority.contains(':'));
            loopback && has_port
        }
        _ => false,
    }
}

/// `uri` exactly as registered, with form-encoded parameters appended to its query.
pub fn append_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let encoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let separator = if !uri.contains('?') {
        "?"
    } else if uri.ends_with('?') || uri.ends_with('&') {
        ""
    } else {
        "&"
    };
    format!("{uri}{separator}{encoded}")
}

fn redirect(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => {
            let mut resp = StatusCode::FOUND.into_response();
            resp.headers_mut().insert(header::LOCATION, value);
            resp
        }
        Err(_) => page_error(
            &HeaderMap::new(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            INVALID_REQUEST,
            Some("The redirect_uri contains characters that cannot be sent in a redirect."),
        ),
    }
}

fn redirect_error(uri: &str, error: &str, description: &str, state: Option<&str>) -> Response {
    let mut pairs = vec![("error", error), ("error_description", description)];
    if let Some(state) = state {
        pairs.push(("state", state));
    }
    redirect(&append_query(uri, &pairs))
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// An error the browser cannot be redirected with: HTML for browsers, JSON for everyone else.
fn page_error(
    headers: &HeaderMap,
    status: StatusCode,
    error: &str,
    description: &str,
    hint: Option<&str>,
) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if wants_html {
        let body = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>WHOOP authorization error</title>\
             <style>{STYLE}</style></head><body><main class=\"card\"><h1>Authorization failed</h1>\
             <p><code>{}</code></p><p>{}</p>{}</main></body></html>",
            escape_html(error),
            escape_html(description),
            hint.map(|h| format!("<p class=\"hint\">{}</p>", escape_html(h)))
                .unwrap_or_default()
        );
        (status, Html(body)).into_response()
    } else {
        let mut body = json!({"error": error, "error_description": description});
        if let Some(h) = hint {
            body["error_hint"] = json!(h);
        }
        (status, Json(body)).into_response()
    }
}

const STYLE: &str = "body{margin:0;font-family:-apple-system,Segoe UI,Roboto,sans-serif;background:#0b0d0f;color:#e8eaed;display:flex;min-height:100vh;align-items:center;justify-content:center}\
.card{background:#16191d;border:1px solid #2a2f35;border-radius:14px;padding:32px 36px;max-width:440px;box-shadow:0 10px 40px rgba(0,0,0,.4)}\
h1{font-size:20px;margin:0 0 6px}.brand{letter-spacing:.3em;font-weight:800;font-size:13px;color:#9aa0a6;margin-bottom:18px}\
ul{padding-left:18px;line-height:1.5}li{margin:8px 0}li b{color:#fff}.sub{color:#9aa0a6;font-size:14px}\
.hint{color:#f6a;font-size:14px}code{color:#ffb4a2}\
.buttons{display:flex;gap:12px;margin-top:24px}button{flex:1;padding:12px;border-radius:10px;border:0;font-size:15px;font-weight:600;cursor:pointer}\
.allow{background:#1fd17a;color:#08140e}.deny{background:#2a2f35;color:#e8eaed}\
select{width:100%;padding:10px;border-radius:8px;background:#0b0d0f;color:#e8eaed;border:1px solid #2a2f35;font-size:14px}";

fn query_params(raw: Option<&str>) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        map.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    map
}

/// `GET /oauth/oauth2/auth`
pub async fn authorize(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    app.stats.request("auth");
    let q = query_params(raw.as_deref());
    let config = &app.config;
    if q.get("client_id") != Some(&config.client_id) {
        return page_error(
            &headers,
            StatusCode::BAD_REQUEST,
            "invalid_client",
            INVALID_CLIENT,
            Some("The requested OAuth 2.0 Client does not exist."),
        );
    }
    let Some(redirect_uri) = q
        .get("redirect_uri")
        .filter(|u| redirect_allowed(config, u))
    else {
        return page_error(
            &headers,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            INVALID_REQUEST,
            Some(REDIRECT_HINT),
        );
    };
    let state = q.get("state").map(String::as_str);
    if q.get("response_type").map(String::as_str) != Some("code") {
        return redirect_error(
            redirect_uri,
            "unsupported_response_type",
            "The authorization server does not support obtaining a token using this method.",
            state,
        );
    }
    let Some(state) = state.filter(|s| s.chars().count() >= 8) else {
        return redirect_error(
            redirect_uri,
            "invalid_state",
            "The state is missing or does not have enough characters and is therefore considered too weak.",
            state,
        );
    };
    let scopes: Vec<String> = q
        .get("scope")
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    if let Some(unknown) = scopes
        .iter()
        .find(|s| !SCOPES.iter().any(|(name, _)| name == s))
    {
        return redirect_error(
            redirect_uri,
            "invalid_scope",
            &format!("The requested scope is invalid, unknown, or malformed. The OAuth 2.0 Client is not allowed to request scope '{unknown}'."),
            Some(state),
        );
    }
    let not_registered = {
        let oauth = crate::lock(&app.oauth);
        oauth
            .app_scopes
            .as_ref()
            .and_then(|registered| scopes.iter().find(|s| !registered.contains(s)).cloned())
    };
    if let Some(scope) = not_registered {
        return redirect_error(
            redirect_uri,
            "invalid_scope",
            &format!("The requested scope is invalid, unknown, or malformed. The OAuth 2.0 Client is not allowed to request scope '{scope}'."),
            Some(state),
        );
    }
    let challenge = q.get("code_challenge").filter(|c| !c.is_empty()).cloned();
    if challenge.is_some() && q.get("code_challenge_method").map(String::as_str) != Some("S256") {
        return redirect_error(
            redirect_uri,
            "invalid_request",
            "The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed. Only the S256 code_challenge_method is supported.",
            Some(state),
        );
    }
    let pending = PendingConsent {
        redirect_uri: redirect_uri.clone(),
        scopes,
        state: state.to_string(),
        challenge,
        expires: Instant::now() + CODE_TTL,
    };
    if config.auto_approve {
        return approve(&app, pending, None).await;
    }
    let id = random_token("");
    let scope_items: String = pending
        .scopes
        .iter()
        .map(|s| {
            let text = SCOPES
                .iter()
                .find(|(name, _)| name == s)
                .map(|(_, text)| *text)
                .unwrap_or("");
            format!(
                "<li><b>{}</b><br><span class=\"sub\">{}</span></li>",
                escape_html(s),
                escape_html(text)
            )
        })
        .collect();
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>Authorize {client} – WHOOP</title><style>{STYLE}</style></head><body><main class=\"card\">\
         <div class=\"brand\">WHOOP</div><h1>{client} wants to access your WHOOP account</h1>\
         <p class=\"sub\">Simulated consent page. {client} will be able to:</p><ul>{scope_items}</ul>\
         <form method=\"post\" action=\"/oauth/oauth2/auth/decision\">\
         <input type=\"hidden\" name=\"consent\" value=\"{id}\">{members}\
         <div class=\"buttons\"><button class=\"deny\" name=\"decision\" value=\"deny\" type=\"submit\">Deny</button>\
         <button class=\"allow\" name=\"decision\" value=\"allow\" type=\"submit\">Authorize</button></div>\
         </form></main></body></html>",
        client = escape_html(&config.client_id),
        members = member_picker(&app),
    );
    {
        let mut oauth = crate::lock(&app.oauth);
        let now = Instant::now();
        oauth.pending.retain(|_, p| p.expires > now);
        oauth.pending.insert(id, pending);
    }
    let mut resp = Html(body).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// With more than one member (`--users`), a list to sign in as one of them; the member whose
/// turn it is comes preselected, so clicking Authorize again and again signs members in turn.
fn member_picker(app: &AppState) -> String {
    if app.members.count() < 2 {
        return String::new();
    }
    let next = crate::lock(&app.oauth).next_member();
    let options: String = app
        .members
        .iter()
        .map(|m| {
            let p = &m.identity.profile;
            format!(
                "<option value=\"{k}\"{selected}>{k} · {} {} ({})</option>",
                escape_html(&p.first_name),
                escape_html(&p.last_name),
                escape_html(&p.email),
                k = m.index,
                selected = if m.index == next { " selected" } else { "" },
            )
        })
        .collect();
    format!(
        "<p class=\"sub\"><label for=\"member\">Sign in as</label></p>\
         <select id=\"member\" name=\"member\">{options}</select>"
    )
}

/// Issues a code and redirects back to the app. `chosen` is the member picked on the consent
/// page; without one it is the member whose turn it is.
async fn approve(app: &Arc<AppState>, pending: PendingConsent, chosen: Option<u32>) -> Response {
    let code = random_token("ory_ac_");
    let scope = pending.scopes.join(" ");
    let member = {
        let mut oauth = crate::lock(&app.oauth);
        let now = Instant::now();
        oauth.codes.retain(|_, c| c.expires > now);
        let other_member = oauth.other_member_logins > 0;
        // The stranger does not take a member's turn.
        let member = if other_member {
            oauth.other_member_logins -= 1;
            1
        } else {
            let member = chosen.unwrap_or(oauth.next_member);
            oauth.next_member = member % oauth.users + 1;
            member
        };
        oauth.codes.insert(
            code.clone(),
            Code {
                redirect_uri: pending.redirect_uri.clone(),
                scopes: pending.scopes,
                challenge: pending.challenge,
                expires: pending.expires.max(now + CODE_TTL),
                exchanged_for: None,
                other_member,
                member,
            },
        );
        member
    };
    // Generate the member's history now, so nothing that happens after the sign-in is missed;
    // off the async workers, since years of history take milliseconds to build.
    let generating = Arc::clone(app);
    let _ = tokio::task::spawn_blocking(move || {
        generating.member_world(member);
    })
    .await;
    redirect(&append_query(
        &pending.redirect_uri,
        &[
            ("code", &code),
            ("scope", &scope),
            ("state", &pending.state),
        ],
    ))
}

/// `POST /oauth/oauth2/auth/decision`: the consent page's Authorize / Deny buttons.
pub async fn decide(State(app): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let form = query_params(std::str::from_utf8(&body).ok());
    let pending = form
        .get("consent")
        .and_then(|id| crate::lock(&app.oauth).pending.remove(id))
        .filter(|p| p.expires > Instant::now());
    let Some(pending) = pending else {
        return page_error(
            &headers,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The consent request is unknown, was already answered, or has expired.",
            None,
        );
    };
    if form.get("decision").map(String::as_str) == Some("allow") {
        let chosen = match form.get("member") {
            None => None,
            Some(raw) => match raw.parse::<u32>() {
                Ok(k) if app.members.get(k).is_some() => Some(k),
                _ => {
                    return page_error(
                        &headers,
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        INVALID_REQUEST,
                        Some(&format!(
                            "member must be a number from 1 to {}",
                            app.members.count()
                        )),
                    )
                }
            },
        };
        approve(&app, pending, chosen).await
    } else {
        redirect_error(
            &pending.redirect_uri,
            "access_denied",
            "The resource owner or authorization server denied the request.",
            Some(&pending.state),
        )
    }
}

fn token_error(status: StatusCode, error: &str, description: &str, hint: Option<&str>) -> Response {
    let mut body = json!({"error": error, "error_description": description});
    if let Some(h) = hint {
        body["error_hint"] = json!(h);
    }
    let mut resp = (status, Json(body)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn invalid_grant(hint: &str) -> Response {
    token_error(
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        INVALID_GRANT,
        Some(hint),
    )
}

fn missing(param: &str) -> Response {
    token_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        INVALID_REQUEST,
        Some(&format!("The '{param}' parameter is missing.")),
    )
}

/// RFC 7636: BASE64URL(SHA256(verifier)) must equal the challenge.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge
}

/// An answer that starts like a token response and then breaks off, the way a connection cut
/// by a proxy or a restart looks to a client.
fn cut_answer() -> Response {
    let parts: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::from_static(b"{\"access_token\":\"ory_at_")),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "simulated cut connection",
        )),
    ];
    let mut resp = axum::body::Body::from_stream(futures_util::stream::iter(parts)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn server_error() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({"error": "server_error", "error_description": "The authorization server encountered an unexpected condition that prevented it from fulfilling the request."})),
    )
        .into_response()
}

/// `POST /oauth/oauth2/token`
pub async fn token(State(app): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    app.stats.request("token");
    let (fail_first, latency) = {
        let mut oauth = crate::lock(&app.oauth);
        let f = &mut oauth.token_faults;
        let fail = f.fail_next > 0;
        if fail {
            f.fail_next -= 1;
        }
        (fail, f.latency_ms)
    };
    let resp = if fail_first {
        server_error()
    } else {
        token_answer(&app, &headers, &body)
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    resp
}

fn token_answer(app: &AppState, headers: &HeaderMap, body: &Bytes) -> Response {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !is_form {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            INVALID_REQUEST,
            Some("The POST body can not be empty and must be sent as application/x-www-form-urlencoded."),
        );
    }
    let form = query_params(std::str::from_utf8(body).ok());
    let config = &app.config;
    let client_ok = form.get("client_id") == Some(&config.client_id)
        && form.get("client_secret") == Some(&config.client_secret);
    if !client_ok {
        return token_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            INVALID_CLIENT,
            None,
        );
    }
    let ttl = Duration::from_secs(config.token_ttl_secs);
    let now = Instant::now();
    let issued = match form.get("grant_type").map(String::as_str) {
        None => return missing("grant_type"),
        Some("authorization_code") => {
            let Some(code) = form.get("code") else {
                return missing("code");
            };
            let mut oauth = crate::lock(&app.oauth);
            let Some(entry) = oauth.codes.get_mut(code) else {
                return invalid_grant("The authorization code is unknown.");
            };
            if let Some(grant) = entry.exchanged_for {
                // RFC 6749 §4.1.2: a reused code revokes what it was exchanged for.
                oauth.revoke_grant(grant);
                return invalid_grant("The authorization code has already been used.");
            }
            if entry.expires <= now {
                return invalid_grant("The authorization code has expired.");
            }
            if form.get("redirect_uri") != Some(&entry.redirect_uri) {
                return invalid_grant(
                    "The 'redirect_uri' from this request does not match the one from the authorize request.",
                );
            }
            if let Some(challenge) = &entry.challenge {
                let Some(verifier) = form.get("code_verifier") else {
                    return invalid_grant("The PKCE code verifier must be at least 43 characters.");
                };
                if !(43..=128).contains(&verifier.len()) {
                    return invalid_grant(
                        "The PKCE code verifier must be between 43 and 128 characters.",
                    );
                }
                if !pkce_matches(verifier, challenge) {
                    return invalid_grant(
                        "The PKCE code challenge did not match the code verifier.",
                    );
                }
            }
            let scopes = entry.scopes.clone();
            let other_member = entry.other_member;
            let member = entry.member;
            let grant = oauth.new_grant(scopes, other_member, member);
            if let Some(entry) = oauth.codes.get_mut(code) {
                entry.exchanged_for = Some(grant);
            }
            let Some(issued) = oauth.issue(grant, ttl, now) else {
                return invalid_grant("The grant disappeared.");
            };
            // A fresh authorization reconnects the user: WHOOP notifies the app again.
            if !other_member {
                if let Some(m) = app.members.get(member) {
                    m.set_disconnected(false);
                }
            }
            issued
        }
        Some("refresh_token") => {
            let Some(presented) = form.get("refresh_token") else {
                return missing("refresh_token");
            };
            let mut oauth = crate::lock(&app.oauth);
            let Some(rt) = oauth.refresh.get_mut(presented) else {
                return invalid_grant("The refresh token is unknown.");
            };
            let grant_id = rt.grant;
            let replay = rt.used;
            rt.used = true;
            let Some(grant) = oauth.grants.get_mut(&grant_id) else {
                return invalid_grant("The refresh token is unknown.");
            };
            if grant.revoked {
                return invalid_grant("The refresh token has been revoked.");
            }
            if replay {
                // Fosite's default: a replayed refresh token means it leaked; kill the chain.
                grant.revoked = true;
                bump(&app.stats.refresh_replays);
                return invalid_grant(
                    "The refresh token was already used; the token chain has been revoked.",
                );
            }
            if let Some(requested) = form.get("scope") {
                if let Some(extra) = requested
                    .split_whitespace()
                    .find(|s| !grant.scopes.iter().any(|g| g == s))
                {
                    return token_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_scope",
                        "The requested scope is invalid, unknown, or malformed.",
                        Some(&format!("The requested scope '{extra}' was not granted.")),
                    );
                }
            }
            let Some(issued) = oauth.issue(grant_id, ttl, now) else {
                return invalid_grant("The refresh token is unknown.");
            };
            bump(&app.stats.refreshes);
            issued
        }
        Some(_) => {
            return token_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "The authorization grant type is not supported by the authorization server.",
                None,
            )
        }
    };
    bump(&app.stats.tokens_issued);
    match crate::lock(&app.oauth).take_after_rotate() {
        Some(AfterRotate::Fail) => return server_error(),
        Some(AfterRotate::Cut) => return cut_answer(),
        None => {}
    }
    let mut body = json!({
        "access_token": issued.access_token,
        "expires_in": config.token_ttl_secs,
        "scope": issued.scope,
        "token_type": "bearer",
    });
    if let Some(rt) = issued.refresh_token {
        body["refresh_token"] = json!(rt);
    }
    let mut resp = Json(body).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_rules() {
        let open = SimConfig::default();
        assert!(redirect_allowed(
            &open,
            "http://127.0.0.1:8765/oauth/whoop/callback"
        ));
        assert!(redirect_allowed(&open, "http://localhost:80/cb"));
        assert!(redirect_allowed(
            &open,
            "vitaltrends://oauth/whoop/callback"
        ));
        assert!(!redirect_allowed(&open, "http://127.0.0.1/cb"));
        assert!(!redirect_allowed(&open, "https://evil.example/cb"));
        assert!(!redirect_allowed(&open, "http://127.0.0.1:1/cb#frag"));
        let strict = SimConfig {
            redirect_uris: vec!["https://app.example/cb".into()],
            ..SimConfig::default()
        };
        assert!(redirect_allowed(&strict, "https://app.example/cb"));
        assert!(!redirect_allowed(&strict, "https://app.example/cb/"));
    }

    #[test]
    fn query_is_appended_exactly() {
        assert_eq!(
            append_query("vitaltrends://cb", &[("a", "1 2")]),
            "vitaltrends://cb?a=1+2"
        );
        assert_eq!(
            append_query("http://h:1/cb?x=y", &[("a", "b")]),
            "http://h:1/cb?x=y&a=b"
        );
        assert_eq!(
            append_query("http://h:1/cb?", &[("a", "&")]),
            "http://h:1/cb?a=%26"
        );
    }

    #[test]
    fn pkce_rfc_example() {
        // RFC 7636 appendix B.
        assert!(pkce_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
    }
}
