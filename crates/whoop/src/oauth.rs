//! OAuth 2.0 with WHOOP: the authorization URL, and the code exchange and refresh requests.
//!
//! WHOOP is a confidential-client authorization-code flow: the client secret is needed for the
//! exchange and for every refresh. A desktop app must not ship that secret, so both requests can go
//! either straight to WHOOP (a person's own developer app, secret in their keychain) or to a token
//! broker (the relay) that adds the secret. PKCE (S256) is sent too: WHOOP does not document it,
//! but it is harmless there and the broker can rely on it.
//!
//! The `oauth2` crate builds the authorization URL, state and PKCE pair. The token requests are
//! plain form posts here because the broker variant has no secret and because the caller must be
//! able to tell `invalid_grant` (the person has to reconnect) from every other failure.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use oauth2::{AuthUrl, ClientId, CsrfToken, PkceCodeChallenge, RedirectUrl, Scope};
use serde::Deserialize;
use url::Url;

use crate::client::backoff_delay;
use crate::error::{Error, Result};
use crate::secret::Secret;

/// Read-only scopes for everything the app shows, plus `offline` for a refresh token.
pub const SCOPES: &[&str] = &[
    "read:recovery",
    "read:cycles",
    "read:workout",
    "read:sleep",
    "read:profile",
    "read:body_measurement",
    "offline",
];

/// WHOOP's authorization page below a base URL such as `https://api.prod.whoop.com`.
pub fn authorize_url(base_url: &Url) -> Result<Url> {
    join(base_url, "/oauth/oauth2/auth")
}

/// WHOOP's token endpoint below a base URL.
pub fn token_url(base_url: &Url) -> Result<Url> {
    join(base_url, "/oauth/oauth2/token")
}

fn join(base: &Url, path: &str) -> Result<Url> {
    let text = format!("{}{}", base.as_str().trim_end_matches('/'), path);
    Url::parse(&text).map_err(|e| Error::Config(format!("bad URL {text}: {e}")))
}

/// A started authorization: the URL to open in the browser and what the callback must match.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    pub url: Url,
    /// Random, at least 8 characters (WHOOP's minimum); compared exactly on the callback.
    pub state: String,
    pub pkce_verifier: Secret,
    pub redirect_uri: String,
}

pub fn authorization_request(
    authorize_url: &Url,
    client_id: &str,
    redirect_uri: &str,
) -> Result<AuthorizationRequest> {
    let redirect = RedirectUrl::new(redirect_uri.to_string())
        .map_err(|e| Error::Config(format!("redirect URI {redirect_uri}: {e}")))?;
    let client = oauth2::basic::BasicClient::new(ClientId::new(client_id.to_string()))
        .set_auth_uri(AuthUrl::from_url(authorize_url.clone()))
        .set_redirect_uri(redirect);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(CsrfToken::new_random)
        .set_pkce_challenge(challenge);
    for scope in SCOPES {
        request = request.add_scope(Scope::new((*scope).to_string()));
    }
    let (url, state) = request.url();
    Ok(AuthorizationRequest {
        url,
        state: state.secret().clone(),
        pkce_verifier: Secret::new(verifier.secret().clone()),
        redirect_uri: redirect_uri.to_string(),
    })
}

/// Where code exchanges and refreshes go.
#[derive(Debug, Clone)]
pub enum TokenEndpoint {
    /// Straight to WHOOP with the person's own client id and secret.
    Direct {
        token_url: Url,
        client_id: String,
        client_secret: Secret,
    },
    /// Through a broker that holds the secret: `POST {base}/oauth/whoop/token` and `/refresh`.
    Broker { base_url: Url },
}

/// WHOOP's token response. A broker may add a device credential for its event stream.
#[derive(Clone, Deserialize)]
pub struct TokenResponse {
    pub access_token: Secret,
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    #[serde(default = "default_expires_in")]
    pub expires_in: u64,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub token_type: String,
    #[serde(default)]
    pub device_credential: Option<Secret>,
}

fn default_expires_in() -> u64 {
    3600
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct TokenClient {
    http: reqwest::Client,
    endpoint: TokenEndpoint,
    max_attempts: u32,
    /// The VitalTrends licence key, sent to a broker (never to WHOOP) with the code exchange and
    /// every refresh. Shared by clones, so the owner can set it when the person enters one.
    licence_key: Arc<RwLock<Option<Secret>>>,
}

/// How long a token request may take before its outcome counts as unknown. The relay's broker
/// keeps its whole work for one request (WHOOP's token endpoint, then binding the device) well
/// inside this (`relay::broker::BROKER_DEADLINE`, 25 s), so its answer always arrives in time.
pub const TOKEN_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

impl TokenClient {
    pub fn new(endpoint: TokenEndpoint) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(TOKEN_REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("VitalTrends/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(TokenClient {
            http,
            endpoint,
            max_attempts: 4,
            licence_key: Arc::default(),
        })
    }

    /// The licence key sent to the broker from now on (`None`: none).
    pub fn set_licence_key(&self, key: Option<Secret>) {
        *self.licence_key.write().unwrap_or_else(|e| e.into_inner()) = key;
    }

    pub fn endpoint(&self) -> &TokenEndpoint {
        &self.endpoint
    }

    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        pkce_verifier: &Secret,
    ) -> Result<TokenResponse> {
        let mut form = vec![
            ("grant_type", "authorization_code".to_string()),
            ("code", code.to_string()),
            ("redirect_uri", redirect_uri.to_string()),
            ("code_verifier", pkce_verifier.expose().to_string()),
        ];
        let url = self.target(&mut form, "/oauth/whoop/token")?;
        self.post(url, &form, false, None).await
    }

    /// Refreshes with `scope=offline`, as WHOOP documents. The answer carries a new refresh token:
    /// the one sent is spent from now on, so the caller must store the new one before using it.
    ///
    /// Through a broker, `device_credential` (what the broker handed out at the code exchange)
    /// goes along as `Authorization: Bearer`: the broker refreshes only for devices it bound.
    /// Without one nothing is sent and the answer is `DeviceUnknown`.
    pub async fn refresh(
        &self,
        refresh_token: &Secret,
        device_credential: Option<&Secret>,
    ) -> Result<TokenResponse> {
        let mut form = vec![
            ("grant_type", "refresh_token".to_string()),
            ("refresh_token", refresh_token.expose().to_string()),
            ("scope", "offline".to_string()),
        ];
        let url = self.target(&mut form, "/oauth/whoop/refresh")?;
        let bearer = match &self.endpoint {
            TokenEndpoint::Direct { .. } => None,
            TokenEndpoint::Broker { .. } => Some(device_credential.ok_or(Error::DeviceUnknown)?),
        };
        self.post(url, &form, true, bearer).await
    }

    /// Where a token request goes: WHOOP itself, with the client credentials added to the form,
    /// or the broker's `broker_path`, which adds them on its side.
    fn target(&self, form: &mut Vec<(&'static str, String)>, broker_path: &str) -> Result<Url> {
        match &self.endpoint {
            TokenEndpoint::Direct {
                token_url,
                client_id,
                client_secret,
            } => {
                form.push(("client_id", client_id.clone()));
                form.push(("client_secret", client_secret.expose().to_string()));
                Ok(token_url.clone())
            }
            TokenEndpoint::Broker { base_url } => {
                let key = self.licence_key.read().unwrap_or_else(|e| e.into_inner());
                if let Some(key) = key.as_ref() {
                    form.push((LICENCE_FIELD, key.expose().to_string()));
                }
                join(base_url, broker_path)
            }
        }
    }

    /// Sends a token request. Only a request that certainly never reached the server is sent
    /// again: a connection that could not be opened, or the broker saying it could not reach
    /// WHOOP (503 `whoop_unreachable`). Everything else that is not a clear answer (a timeout,
    /// a cut connection, a 5xx) may have rotated the refresh token or spent the code, so it is
    /// `TokenOutcomeUnknown` and never repeated: a replayed refresh token makes WHOOP revoke the
    /// whole grant.
    async fn post(
        &self,
        url: Url,
        form: &[(&str, String)],
        is_refresh: bool,
        bearer: Option<&Secret>,
    ) -> Result<TokenResponse> {
        let mut attempt = 1;
        loop {
            let mut request = self.http.post(url.clone()).form(form);
            if let Some(credential) = bearer {
                request = request.bearer_auth(credential.expose());
            }
            let not_sent = match request.send().await {
                Err(err) if err.is_connect() => "could not reach the token endpoint".to_string(),
                Err(err) => {
                    return Err(Error::TokenOutcomeUnknown {
                        detail: if err.is_timeout() {
                            "no answer in time".into()
                        } else {
                            "the connection was cut".into()
                        },
                    })
                }
                Ok(response) => {
                    let status = response.status();
                    let body = response
                        .bytes()
                        .await
                        .map_err(|_| Error::TokenOutcomeUnknown {
                            detail: "the answer was cut short".into(),
                        })?;
                    if status.is_success() {
                        return parse_token_response(&body);
                    }
                    if let Some(code) = subscription_refusal(status.as_u16(), &body) {
                        return Err(Error::Subscription { code });
                    }
                    if status.is_server_error() {
                        match broker_error(&body).as_deref() {
                            Some(BROKER_WHOOP_UNREACHABLE) => {
                                format!("the token broker could not reach WHOOP (HTTP {status})")
                            }
                            _ => {
                                return Err(Error::TokenOutcomeUnknown {
                                    detail: format!("HTTP {}", status.as_u16()),
                                })
                            }
                        }
                    } else if bearer.is_some()
                        && status.as_u16() == 401
                        && broker_error(&body).as_deref() == Some(BROKER_UNAUTHORIZED)
                    {
                        // The broker refused the device before asking WHOOP anything.
                        return Err(Error::DeviceUnknown);
                    } else {
                        return Err(classify_oauth_error(status.as_u16(), &body, is_refresh));
                    }
                }
            };
            if attempt >= self.max_attempts {
                return Err(Error::Unavailable {
                    attempts: attempt,
                    detail: not_sent,
                });
            }
            tokio::time::sleep(backoff_delay(
                Duration::from_millis(500),
                Duration::from_secs(8),
                attempt,
            ))
            .await;
            attempt += 1;
        }
    }
}

/// The broker's answer when it could not open a connection to WHOOP: nothing was sent, so the
/// request may be repeated. (`whoop_outcome_unknown`, 502, is the broker's unknown outcome.)
pub const BROKER_WHOOP_UNREACHABLE: &str = "whoop_unreachable";

/// The broker's 401 for a device credential it does not know (or none).
pub const BROKER_UNAUTHORIZED: &str = "unauthorized";

/// The broker's answer when WHOOP may have received the request but its answer was lost.
pub const BROKER_WHOOP_OUTCOME_UNKNOWN: &str = "whoop_outcome_unknown";

/// The broker's form field for the licence key.
pub const LICENCE_FIELD: &str = "licence_key";

/// The relay's subscription gate: 402 with `subscription_required` or `subscription_inactive`,
/// 403 with `device_limit`. WHOOP itself never answers 402.
fn subscription_refusal(status: u16, body: &[u8]) -> Option<String> {
    if status != 402 && status != 403 {
        return None;
    }
    let code = broker_error(body)?;
    match code.as_str() {
        crate::error::SUBSCRIPTION_REQUIRED | crate::error::SUBSCRIPTION_INACTIVE
            if status == 402 =>
        {
            Some(code)
        }
        crate::error::DEVICE_LIMIT if status == 403 => Some(code),
        _ => None,
    }
}

fn broker_error(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<OAuthErrorBody>(body)
        .ok()
        .map(|b| b.error)
        .filter(|e| !e.is_empty())
}

fn parse_token_response(body: &[u8]) -> Result<TokenResponse> {
    let parsed: TokenResponse = serde_json::from_slice(body).map_err(|e| Error::Decode {
        what: "token response".into(),
        detail: e.to_string(),
    })?;
    if parsed.access_token.expose().is_empty() {
        return Err(Error::Decode {
            what: "token response".into(),
            detail: "empty access_token".into(),
        });
    }
    Ok(parsed)
}

#[derive(Deserialize, Default)]
struct OAuthErrorBody {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
    #[serde(default)]
    error_hint: String,
}

/// `invalid_grant` means the person must authorize again; so does any other 400/401 to a refresh
/// that is not our own misconfiguration (`invalid_client`).
fn classify_oauth_error(status: u16, body: &[u8], is_refresh: bool) -> Error {
    let parsed: OAuthErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let mut description = parsed.error_description;
    if !parsed.error_hint.is_empty() {
        description = format!("{description} ({})", parsed.error_hint);
    }
    let error = if parsed.error.is_empty() {
        format!("http_{status}")
    } else {
        parsed.error
    };
    let grant_dead = error == "invalid_grant"
        || (is_refresh
            && (status == 400 || status == 401)
            && error != "invalid_client"
            && error != "invalid_request");
    if grant_dead {
        Error::InvalidGrant { error, description }
    } else {
        Error::OAuth {
            status,
            error,
            description,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_url_asks_for_read_scopes_offline_and_pkce() {
        let base = Url::parse("https://api.prod.whoop.com").unwrap();
        let req = authorization_request(
            &authorize_url(&base).unwrap(),
            "client-1",
            "http://127.0.0.1:4567/oauth/whoop/callback",
        )
        .unwrap();
        assert!(req.state.len() >= 8);
        let pairs: std::collections::HashMap<_, _> = req.url.query_pairs().into_owned().collect();
        assert_eq!(req.url.path(), "/oauth/oauth2/auth");
        assert_eq!(pairs["response_type"], "code");
        assert_eq!(pairs["client_id"], "client-1");
        assert_eq!(pairs["state"], req.state);
        assert_eq!(pairs["code_challenge_method"], "S256");
        assert_eq!(
            pairs["redirect_uri"],
            "http://127.0.0.1:4567/oauth/whoop/callback"
        );
        let scopes: Vec<&str> = pairs["scope"].split(' ').collect();
        assert!(scopes.contains(&"offline"));
        assert!(scopes
            .iter()
            .all(|s| *s == "offline" || s.starts_with("read:")));
        // Two requests never share a state or verifier.
        let again =
            authorization_request(&authorize_url(&base).unwrap(), "c", "http://127.0.0.1:1/x")
                .unwrap();
        assert_ne!(again.state, req.state);
        assert_ne!(again.pkce_verifier.expose(), req.pkce_verifier.expose());
    }

    #[test]
    fn oauth_errors_are_classified() {
        let body = br#"{"error":"invalid_grant","error_description":"spent"}"#;
        assert!(matches!(
            classify_oauth_error(400, body, true),
            Error::InvalidGrant { .. }
        ));
        assert!(matches!(
            classify_oauth_error(400, body, false),
            Error::InvalidGrant { .. }
        ));
        let client = br#"{"error":"invalid_client"}"#;
        assert!(matches!(
            classify_oauth_error(401, client, true),
            Error::OAuth { status: 401, .. }
        ));
        // A refresh refused without a readable body still means the grant is gone.
        assert!(matches!(
            classify_oauth_error(401, b"nope", true),
            Error::InvalidGrant { .. }
        ));
    }

    #[test]
    fn subscription_refusals_are_recognised() {
        let body = |code: &str| format!(r#"{{"error":"{code}","code":"{code}"}}"#).into_bytes();
        assert_eq!(
            subscription_refusal(402, &body("subscription_required")).as_deref(),
            Some("subscription_required")
        );
        assert_eq!(
            subscription_refusal(402, &body("subscription_inactive")).as_deref(),
            Some("subscription_inactive")
        );
        assert_eq!(
            subscription_refusal(403, &body("device_limit")).as_deref(),
            Some("device_limit")
        );
        assert_eq!(subscription_refusal(403, &body("forbidden")), None);
        assert_eq!(
            subscription_refusal(400, &body("subscription_required")),
            None
        );
        let err = Error::Subscription {
            code: "subscription_inactive".into(),
        };
        assert_eq!(err.code(), "subscription_inactive");
        assert!(err.to_string().contains("history stays"));
    }

    #[test]
    fn token_response_debug_hides_tokens() {
        let parsed: TokenResponse = serde_json::from_str(
            r#"{"access_token":"AT-123","refresh_token":"RT-456","expires_in":3600,"scope":"offline","token_type":"bearer"}"#,
        )
        .unwrap();
        let shown = format!("{parsed:?}");
        assert!(!shown.contains("AT-123") && !shown.contains("RT-456"));
        assert_eq!(parsed.refresh_token.unwrap().expose(), "RT-456");
    }
}
