//! Settings of one simulator instance. Kept as a plain struct so in-process tests can build it
//! with `..Default::default()` and the binary can fill it from flags.

/// How a simulator instance behaves. `Default` gives a year of data for the demo client.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Days of history generated before the simulator's "now".
    pub days: u32,
    /// WHOOP members who may sign in to the app (1 to 100,000), each with their own history,
    /// tokens and webhooks; the rate limits count all of them together. Member 1 is the single
    /// user of earlier versions. Histories are generated on first use.
    pub users: u32,
    /// Generate every member's history at start instead of on first use (start-up then takes
    /// a few milliseconds per member and year of history).
    pub generate_all_at_start: bool,
    /// Seed of every generated value; the same seed gives the same data.
    pub seed: u64,
    /// Delay added to every data-endpoint response.
    pub latency_ms: u64,
    /// Skip the consent page: `GET /oauth/oauth2/auth` redirects with a code at once.
    pub auto_approve: bool,
    /// Where signed webhooks are POSTed; none are sent while this is `None`.
    pub webhook_url: Option<String>,
    /// The one registered OAuth client.
    pub client_id: String,
    /// Its secret: checked at the token endpoint and used as the webhook signing key.
    pub client_secret: String,
    /// Lifetime of access tokens, in seconds of real time.
    pub token_ttl_secs: u64,
    /// Requests allowed per 60-second window, shared by all tokens of the client.
    pub rate_limit_minute: u32,
    /// Requests allowed per 86,400-second window.
    pub rate_limit_day: u32,
    /// Shortens both rate-limit windows by this factor for time-scaled benchmarks (60: a
    /// "minute" of 1 s and a "day" of 24 min, in real time); 1.0 is WHOOP's.
    pub rate_window_scale: f64,
    /// Multiplies WHOOP's webhook retry delays (60 s … 1440 s); tests use small values.
    pub webhook_retry_scale: f64,
    /// Last night is still being scored at start (its sleep and recovery held pending for 20 to
    /// 60 minutes), as WHOOP usually is when someone first connects. The demo turns this off so
    /// a newcomer's first screen usually shows numbers.
    pub newest_night_pending: bool,
    /// Registered redirect URIs, matched exactly. Empty accepts any loopback
    /// `http://127.0.0.1:<port>/…` or `http://localhost:<port>/…` URI and any `vitaltrends://…` URI.
    pub redirect_uris: Vec<String>,
    /// Shapes of WHOOP's JSON to serve (nulls, offsets, sport spellings, expiring paging
    /// tokens…); none by default.
    pub shapes: crate::shape::Shapes,
    /// Delay added to every token-endpoint answer, after the request was acted on.
    pub token_latency_ms: u64,
    /// The first N token requests answer 500 before anything is looked at (nothing rotates).
    pub token_fail: u64,
    /// The first N successful token requests rotate (or spend the code), then answer 500.
    pub token_fail_after_rotate: u64,
    /// The first N successful token requests rotate (or spend the code), then cut the
    /// connection in the middle of the answer.
    pub token_cut_after_rotate: u64,
    /// The scopes the app is registered for; asking for any other at sign-in is refused with
    /// `invalid_scope`. Empty: every scope.
    pub app_scopes: Vec<String>,
    /// The first N approved sign-ins are as a second WHOOP member (another user id and name on
    /// the profile endpoint; data endpoints are not member-aware).
    pub other_member_logins: u64,
    /// Share of webhooks never delivered (lost after WHOOP's retries), 0.0–1.0.
    pub webhook_drop_rate: f64,
    /// Share of webhooks delivered twice with the same `trace_id`, 0.0–1.0.
    pub webhook_duplicate_rate: f64,
    /// Uploads (sleeps, workouts) of days that start from now on happen this many hours late:
    /// a strap that syncs hours after the fact.
    pub upload_delay_hours: f64,
    /// Each new day the person also logs an activity this many hours in the past; it appears
    /// and is announced now. `None`: off.
    pub backdated_workout_hours: Option<f64>,
    /// Requests naming one of these records fail: `(id, "not_found" | "server_error" |
    /// "malformed" | "unreadable", for the next N requests or until cleared)`, as
    /// `ID=KIND[:COUNT]`. An unreadable record is also unreadable in collection pages.
    pub record_faults: Vec<String>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            days: 365,
            users: 1,
            generate_all_at_start: false,
            seed: 1,
            latency_ms: 0,
            auto_approve: false,
            webhook_url: None,
            client_id: "vitaltrends-demo".to_string(),
            client_secret: "demo-secret".to_string(),
            token_ttl_secs: 3600,
            rate_limit_minute: 100,
            rate_limit_day: 10_000,
            rate_window_scale: 1.0,
            webhook_retry_scale: 1.0,
            newest_night_pending: true,
            redirect_uris: Vec::new(),
            shapes: crate::shape::Shapes::default(),
            token_latency_ms: 0,
            token_fail: 0,
            token_fail_after_rotate: 0,
            token_cut_after_rotate: 0,
            app_scopes: Vec::new(),
            other_member_logins: 0,
            webhook_drop_rate: 0.0,
            webhook_duplicate_rate: 0.0,
            upload_delay_hours: 0.0,
            backdated_workout_hours: None,
            record_faults: Vec::new(),
        }
    }
}
