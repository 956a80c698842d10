//! How one relay instance is set up. A plain struct so tests can build it with
//! `..Default::default()` and the binary can fill it from flags and environment variables.

use std::net::SocketAddr;
use std::time::Duration;

use ipnet::IpNet;
use url::Url;

use crate::error::{Error, Result};

/// WHOOP's production host; its OAuth and data paths go directly under it.
pub const WHOOP_PRODUCTION: &str = "https://api.prod.whoop.com";

#[derive(Clone)]
pub struct RelayConfig {
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// `sqlite://path` (created if missing) or `postgres://…`.
    pub database_url: String,
    /// WHOOP (or the simulator): `/oauth/oauth2/token` and `/developer/v2/…` go under it.
    pub whoop_base_url: Url,
    pub client_id: String,
    /// The current secret first; during a rotation the previous one after it. Webhooks signed
    /// with any of them are accepted; token requests use the first.
    pub client_secrets: Vec<String>,
    /// How far a webhook's timestamp may be from now. WHOOP retries a failed delivery five times
    /// over about an hour and does not say whether a retry carries a fresh timestamp; 65 minutes
    /// accepts a retry that kept the first one. Replays inside the window are harmless because
    /// intake dedupes on (trace_id, type, id) for as long as the event is retained.
    pub webhook_window: Duration,
    /// Comment lines on idle event streams, so proxies and clients see the connection alive.
    pub heartbeat: Duration,
    /// How long events and idle devices are kept.
    pub retention: Duration,
    /// Largest webhook body accepted; WHOOP's notices are about 150 bytes.
    pub max_body: usize,
    /// Webhook and token-broker requests per client IP per minute.
    pub per_ip_per_minute: u32,
    /// Webhook and token-broker requests per second over all clients.
    pub global_per_second: u32,
    /// How often the node reads the log's tail to wake the streams of users whose log grew
    /// without a wake-up (and how long a stream waits to retry a failed read). Wake-ups come
    /// from intake on this node and, on PostgreSQL, from other nodes' NOTIFYs, with a wake-all
    /// whenever the LISTEN connection is re-established; the backstop only covers a NOTIFY lost
    /// without the connection dropping. One query per period for the node, whatever the number
    /// of open streams.
    pub poll_backstop: Duration,
    /// Reverse proxies whose `X-Forwarded-For` is believed (see `client_ip`); empty: the TCP
    /// peer is the client.
    pub trusted_proxies: Vec<IpNet>,
    /// A connection must finish a request's headers within this (also when idle between
    /// kept-alive requests), or it is closed.
    pub header_read_timeout: Duration,
    /// A request body must arrive within this.
    pub body_read_timeout: Duration,
    /// Open client connections per listener; `None` sizes it from the open-file limit
    /// (`listen::default_max_connections`). Past it, new connections wait in the backlog.
    pub max_connections: Option<usize>,
    /// Event reads (streams and long polls) one device may have open at once.
    pub max_streams_per_device: usize,
    /// Failed device authentications per client IP per minute before it gets 429s.
    pub auth_failures_per_minute: u32,
    /// Who may read `/metrics` on the main listener.
    pub metrics: MetricsAccess,
    /// A second listener serving only `/metrics` and `/healthz`, without a token (for a
    /// loopback or private address the scraper reaches).
    pub metrics_listen: Option<SocketAddr>,
    /// The subscription gate: `None` (the library default, used by demo mode and tests) lets
    /// every device sign in; the binary turns it on unless told `--no-subscription-gate`.
    pub subscription_gate: Option<SubscriptionGate>,
    /// The shared secret of `POST /billing/webhook`; without one that route does not exist.
    pub billing_webhook_secret: Option<String>,
    /// The quota coordinator (`quota`): WHOOP's limits for this app, handed out to desktops by
    /// priority. None: `/v1/quota/lease` answers 404 and desktops pace themselves.
    pub quota: Option<crate::quota::QuotaConfig>,
}

/// Who may read `/metrics` on the main (public) listener.
#[derive(Clone, PartialEq, Eq)]
pub enum MetricsAccess {
    /// Anyone: the library's default, for relays run in-process on loopback (tests, benches, the
    /// desktop's demo). The binary never chooses it by itself.
    Open,
    /// Only with `Authorization: Bearer <token>`.
    Token(String),
    /// Not served there (404), as if the route did not exist: the binary's default.
    Off,
}

impl std::fmt::Debug for MetricsAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MetricsAccess::Open => "Open",
            MetricsAccess::Token(_) => "Token(..)",
            MetricsAccess::Off => "Off",
        })
    }
}

/// How the relay decides who may use the VitalTrends service.
#[derive(Clone, Debug)]
pub struct SubscriptionGate {
    /// Verifies licence keys. Only the public half is kept, even if a signing key was loaded.
    pub public_key: licence::PublicKey,
    /// How long refreshes and event streams keep working after a licence's end, so a late
    /// renewal payment does not cut anyone off.
    pub grace: Duration,
}

/// The default grace period: two weeks.
pub const DEFAULT_LICENCE_GRACE: Duration = Duration::from_secs(14 * 24 * 3600);

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: "sqlite://relay.db".to_string(),
            whoop_base_url: Url::parse(WHOOP_PRODUCTION).expect("the production URL parses"),
            client_id: String::new(),
            client_secrets: Vec::new(),
            webhook_window: Duration::from_secs(65 * 60),
            heartbeat: Duration::from_secs(15),
            retention: Duration::from_secs(7 * 24 * 3600),
            max_body: 4096,
            per_ip_per_minute: 600,
            global_per_second: 200,
            poll_backstop: Duration::from_secs(15),
            trusted_proxies: Vec::new(),
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            max_connections: None,
            max_streams_per_device: 4,
            auth_failures_per_minute: 30,
            metrics: MetricsAccess::Open,
            metrics_listen: None,
            subscription_gate: None,
            billing_webhook_secret: None,
            quota: None,
        }
    }
}

impl std::fmt::Debug for RelayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secrets and the database URL (which may hold a password) stay out of logs.
        f.debug_struct("RelayConfig")
            .field("listen", &self.listen)
            .field("whoop_base_url", &self.whoop_base_url.as_str())
            .field("client_id", &self.client_id)
            .field("client_secrets", &self.client_secrets.len())
            .field("webhook_window", &self.webhook_window)
            .field("heartbeat", &self.heartbeat)
            .field("retention", &self.retention)
            .field("max_body", &self.max_body)
            .field("per_ip_per_minute", &self.per_ip_per_minute)
            .field("global_per_second", &self.global_per_second)
            .field("poll_backstop", &self.poll_backstop)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("body_read_timeout", &self.body_read_timeout)
            .field("max_connections", &self.max_connections)
            .field("max_streams_per_device", &self.max_streams_per_device)
            .field("auth_failures_per_minute", &self.auth_failures_per_minute)
            .field("metrics", &self.metrics)
            .field("metrics_listen", &self.metrics_listen)
            .field("subscription_gate", &self.subscription_gate)
            .field(
                "billing_webhook_secret",
                &self.billing_webhook_secret.is_some(),
            )
            .finish_non_exhaustive()
    }
}

impl RelayConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |msg: &str| Err(Error::Config(msg.to_string()));
        if self.client_id.trim().is_empty() {
            return bad("the WHOOP client id is empty");
        }
        if self.client_secrets.is_empty() || self.client_secrets.iter().any(|s| s.is_empty()) {
            return bad("a WHOOP client secret is missing or empty");
        }
        if !matches!(self.whoop_base_url.scheme(), "http" | "https") {
            return bad("the WHOOP base URL must be http(s)");
        }
        // Dedupe is what makes replays inside the window harmless, and it only remembers what
        // retention keeps.
        if self.webhook_window > self.retention {
            return bad("the webhook window must not be longer than retention");
        }
        if self.heartbeat.is_zero() || self.poll_backstop.is_zero() || self.retention.is_zero() {
            return bad("heartbeat, poll backstop and retention must be positive");
        }
        if self.max_body == 0 || self.per_ip_per_minute == 0 || self.global_per_second == 0 {
            return bad("max body and rate limits must be positive");
        }
        if self.header_read_timeout.is_zero()
            || self.body_read_timeout.is_zero()
            || self.max_connections == Some(0)
            || self.max_streams_per_device == 0
            || self.auth_failures_per_minute == 0
        {
            return bad("timeouts, connection, stream and authentication limits must be positive");
        }
        if matches!(&self.metrics, MetricsAccess::Token(t) if t.trim().len() < 16) {
            return bad("the metrics token must be at least 16 characters");
        }
        if self
            .billing_webhook_secret
            .as_ref()
            .is_some_and(|s| s.trim().is_empty())
        {
            return bad("the billing webhook secret is empty");
        }
        Ok(())
    }

    /// `{whoop_base_url}{path}` without doubling or dropping a slash.
    pub(crate) fn whoop_url(&self, path: &str) -> String {
        format!(
            "{}{}",
            self.whoop_base_url.as_str().trim_end_matches('/'),
            path
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_sane() {
        let c = RelayConfig::default();
        assert_eq!(c.whoop_base_url.as_str(), "https://api.prod.whoop.com/");
        assert_eq!(
            c.whoop_url("/oauth/oauth2/token"),
            "https://api.prod.whoop.com/oauth/oauth2/token"
        );
        assert_eq!(c.webhook_window, Duration::from_secs(3900));
        assert!(c.validate().is_err(), "no client id or secret yet");
        let ok = RelayConfig {
            client_id: "id".into(),
            client_secrets: vec!["s".into()],
            ..RelayConfig::default()
        };
        assert!(ok.validate().is_ok());
        let debug = format!(
            "{:?}",
            RelayConfig {
                client_secrets: vec!["very-secret".into()],
                metrics: MetricsAccess::Token("metrics-token-0123456789".into()),
                ..ok
            }
        );
        assert!(!debug.contains("very-secret"));
        assert!(!debug.contains("metrics-token"));
        let short_token = RelayConfig {
            client_id: "id".into(),
            client_secrets: vec!["s".into()],
            metrics: MetricsAccess::Token("short".into()),
            ..RelayConfig::default()
        };
        assert!(short_token.validate().is_err());
    }
}
