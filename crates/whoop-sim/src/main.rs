//! The `whoop-sim` binary: parses flags, starts the simulator, prints one JSON line with its
//! address on stdout for whoever launched it, and runs until SIGINT or SIGTERM.

use std::io::{IsTerminal, Write};
use std::net::{IpAddr, SocketAddr};

use anyhow::Context;
use clap::Parser;
use whoop_sim::SimConfig;

#[derive(Parser, Debug)]
#[command(name = "whoop-sim", about = "A simulator of WHOOP's Developer API v2")]
struct Args {
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Days of history to generate (for each member).
    #[arg(long, default_value_t = 365)]
    days: u32,
    /// WHOOP members who may sign in to the one app (1 to 100,000). Each has their own history
    /// (derived from the seed and the member's number), tokens and webhooks (carrying their
    /// user_id); data endpoints answer with the data of the member the token belongs to, and
    /// the rate limits count all members together, as WHOOP's per-app limits do. Member 1 is
    /// the single user of --users 1. A member's history is generated when first needed (a
    /// sign-in, a data request, a dump). The consent page then lets one pick the member;
    /// `GET /_sim/dump?user=K` and `GET /_sim/stats[?user=K]` show members; control requests
    /// that make data or webhooks take `"user": K`; `POST /_sim/next-member {"user": K}`
    /// chooses who signs in next.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    users: u32,
    /// Generate every member's history at start rather than when first needed (start-up then
    /// takes a few milliseconds per member and year of history; memory is the same once every
    /// member has signed in).
    #[arg(long)]
    generate_all: bool,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Delay added to every data response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Skip the consent page and redirect with a code at once. With --users N, members sign in
    /// in turn: member 1 first, then 2, …, N, then 1 again.
    #[arg(long)]
    auto_approve: bool,
    /// Where to POST signed webhooks.
    #[arg(long)]
    webhook_url: Option<String>,
    #[arg(long, default_value = "vitaltrends-demo")]
    client_id: String,
    #[arg(
        long,
        env = "WHOOP_SIM_CLIENT_SECRET",
        default_value = "demo-secret",
        hide_env_values = true,
        hide_default_value = true
    )]
    client_secret: String,
    /// Access-token lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    token_ttl_secs: u64,
    /// Requests a minute for the whole app (every member and token together), as WHOOP counts.
    #[arg(long, default_value_t = 100)]
    rate_limit_minute: u32,
    /// Requests a day for the whole app (every member and token together).
    #[arg(long, default_value_t = 10_000)]
    rate_limit_day: u32,
    /// Shortens both rate-limit windows by this factor, for time-scaled benchmarks: 60 makes
    /// the "minute" last 1 s and the "day" 24 min of real time (the X-RateLimit-Limit header
    /// then says window=1 and window=1440). 1 is WHOOP's.
    #[arg(long, default_value_t = 1.0)]
    rate_window_scale: f64,
    /// Multiplies the webhook retry delays (60, 300, 600, 1200, 1440 s).
    #[arg(long, default_value_t = 1.0)]
    webhook_retry_scale: f64,
    /// Start with last night already scored (by default it is still being scored for 20 to 60
    /// minutes, as WHOOP usually is when someone first connects).
    #[arg(long)]
    newest_night_scored: bool,
    /// A registered redirect URI (repeatable). Without any, loopback and vitaltrends:// URIs are accepted.
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    /// Send `null` instead of leaving optional fields out, and for some fields clients tend to
    /// default (`nap`, `user_calibrating`, `sport_name`, `percent_recorded`, `zone_durations`,
    /// the profile's `email`, the body's `max_heart_rate`). Also `POST /_sim/shapes`.
    #[arg(long)]
    null_fields: bool,
    /// End the last page with `"next_token": ""`. Also `POST /_sim/shapes`.
    #[arg(long)]
    empty_last_token: bool,
    /// Write about half the records' times with a `+05:30` offset instead of `Z` (the same
    /// instants). Also `POST /_sim/shapes`.
    #[arg(long)]
    offset_timestamps: bool,
    /// Spell about half the workouts' sports "Functional Fitness" instead of
    /// `functional_fitness`. Also `POST /_sim/shapes`.
    #[arg(long)]
    mixed_sport_casing: bool,
    /// Answer 404 for the body measurement, as for a person who never entered it. Also
    /// `POST /_sim/shapes`.
    #[arg(long)]
    no_body_measurement: bool,
    /// Refuse (400) a `nextToken` older than this many seconds of simulated time. Also
    /// `POST /_sim/shapes`; `POST /_sim/expire-paging-tokens` expires every token issued so far.
    #[arg(long)]
    paging_token_max_age_secs: Option<u64>,
    /// Delay added to every token-endpoint answer, in milliseconds, after the request was acted
    /// on (a refresh already rotated). Also `POST /_sim/token-faults {"latency_ms": N}`.
    #[arg(long, default_value_t = 0)]
    token_latency_ms: u64,
    /// The first N token requests answer 500 before anything is looked at: nothing rotates, so
    /// sending the same request again is safe. Also `POST /_sim/token-faults {"fail_next": N}`.
    #[arg(long, default_value_t = 0)]
    token_fail: u64,
    /// The first N successful token requests rotate the refresh token (or spend the code) and
    /// then answer 500, as WHOOP may. Also `POST /_sim/token-faults {"fail_after_rotate_next": N}`.
    #[arg(long, default_value_t = 0)]
    token_fail_after_rotate: u64,
    /// The first N successful token requests rotate (or spend the code) and then cut the
    /// connection mid-answer. Also `POST /_sim/token-faults {"cut_after_rotate_next": N}`.
    #[arg(long, default_value_t = 0)]
    token_cut_after_rotate: u64,
    /// A scope the app is registered for (repeatable); asking for any other at sign-in gets
    /// `invalid_scope`. Without any, every scope is allowed. Also `POST /_sim/app-scopes
    /// {"scopes": [...] | null}`. Tokens always carry their granted scopes: an endpoint outside
    /// them answers 401.
    #[arg(long = "app-scope")]
    app_scopes: Vec<String>,
    /// The first N approved sign-ins are as a stranger, a WHOOP member outside --users (another
    /// user id and name on the profile endpoint; other endpoints answer with member 1's data);
    /// such a sign-in does not take a member's turn. Also `POST /_sim/other-member-logins {"count": N}`; grants are
    /// listed by `GET /_sim/grants`.
    #[arg(long, default_value_t = 0)]
    other_member_logins: u64,
    /// Share of webhooks never delivered, as when WHOOP gives up after its retries (0.0–1.0).
    /// Also `POST /_sim/webhook-faults {"drop_rate", "drop_next"}`.
    #[arg(long, default_value_t = 0.0)]
    webhook_drop_rate: f64,
    /// Share of webhooks delivered twice with the same trace_id (0.0–1.0). Also
    /// `POST /_sim/webhook-faults {"duplicate_rate", "duplicate_next"}`.
    #[arg(long, default_value_t = 0.0)]
    webhook_duplicate_rate: f64,
    /// Sleeps and workouts of days that start from now on are uploaded this many hours late, as
    /// by a strap that syncs hours after the fact. Also `POST /_sim/late-records
    /// {"upload_delay_hours"}`.
    #[arg(long, default_value_t = 0.0)]
    upload_delay_hours: f64,
    /// Each new day the person also logs an activity this many hours in the past; it appears
    /// and is announced now. Also `POST /_sim/late-records {"backdated_workout_hours"}`; one
    /// such activity at once: `POST /_sim/log-workout {"hours_ago"}`.
    #[arg(long)]
    backdated_workout_hours: Option<f64>,
    /// Requests naming this record fail: ID=KIND[:COUNT], KIND one of not_found, server_error,
    /// malformed, unreadable (served with a `start` that is not a time, in collection pages
    /// too, until cleared); for the next COUNT requests or for good (repeatable). Also
    /// `POST /_sim/record-faults {"id", "fault", "count"}`.
    #[arg(long = "record-fault")]
    record_faults: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let config = SimConfig {
        days: args.days,
        users: args.users,
        generate_all_at_start: args.generate_all,
        seed: args.seed,
        latency_ms: args.latency_ms,
        auto_approve: args.auto_approve,
        webhook_url: args.webhook_url,
        client_id: args.client_id,
        client_secret: args.client_secret,
        token_ttl_secs: args.token_ttl_secs,
        rate_limit_minute: args.rate_limit_minute,
        rate_limit_day: args.rate_limit_day,
        rate_window_scale: args.rate_window_scale,
        webhook_retry_scale: args.webhook_retry_scale,
        newest_night_pending: !args.newest_night_scored,
        redirect_uris: args.redirect_uris,
        shapes: whoop_sim::Shapes {
            null_fields: args.null_fields,
            empty_last_token: args.empty_last_token,
            offset_timestamps: args.offset_timestamps,
            mixed_sport_casing: args.mixed_sport_casing,
            no_body_measurement: args.no_body_measurement,
            paging_token_max_age_secs: args.paging_token_max_age_secs,
        },
        token_latency_ms: args.token_latency_ms,
        token_fail: args.token_fail,
        token_fail_after_rotate: args.token_fail_after_rotate,
        token_cut_after_rotate: args.token_cut_after_rotate,
        app_scopes: args.app_scopes,
        other_member_logins: args.other_member_logins,
        webhook_drop_rate: args.webhook_drop_rate,
        webhook_duplicate_rate: args.webhook_duplicate_rate,
        upload_delay_hours: args.upload_delay_hours,
        backdated_workout_hours: args.backdated_workout_hours,
        record_faults: args.record_faults,
    };
    let client_id = config.client_id.clone();
    let sim = whoop_sim::start(config, SocketAddr::new(args.host, args.port))
        .await
        .context("starting the simulator")?;
    let ready = serde_json::json!({
        "base_url": sim.base_url,
        "client_id": client_id,
        "user_id": sim.user_id,
        "users": sim.user_ids.len(),
    });
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{ready}").context("writing the ready line")?;
        out.flush().context("flushing stdout")?;
    }
    wait_for_shutdown().await;
    tracing::info!("shutting down");
    sim.shutdown();
    Ok(())
}

async fn wait_for_shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
