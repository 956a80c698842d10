//! What the desktop's commands do, without a desktop around them: each function takes the
//! engine and returns the IPC type the webview receives. The Tauri layer (`app.rs`) only adapts
//! these; tests call them directly over a temporary database and the simulator.
//!
//! IPC types are generated into `ui/src/bindings/` by ts-rs (`cargo test -p vitaltrends-desktop`),
//! so the webview and the shell cannot drift apart.

use std::sync::Arc;

use chrono::{Duration, NaiveDate};
use serde::Serialize;
use sync::{ConnectionState, Engine, Enqueued, JobKind, Phase};
use ts_rs::TS;
use url::Url;

/// An error as the webview sees it: a stable code to branch on, and a plain sentence.
#[derive(Debug, Clone, Serialize, TS, PartialEq, Eq)]
#[ts(export, export_to = "../../ui/src/bindings/")]
pub struct IpcError {
    pub code: String,
    pub message: String,
}

impl From<sync::Error> for IpcError {
    fn from(e: sync::Error) -> Self {
        let message = match &e {
            sync::Error::Whoop(w) if w.is_transient() => {
                "WHOOP is not answering. VitalTrends will try again shortly.".to_string()
            }
            sync::Error::ReconnectNeeded { reason } => {
                format!("{} Choose Reconnect to continue.", sentence(reason))
            }
            other => sentence(&other.to_string()),
        };
        IpcError {
            code: e.code().to_string(),
            message,
        }
    }
}

/// Engine messages read as clauses ("you signed in to WHOOP as …"); a notice shows a sentence.
pub(crate) fn sentence(text: &str) -> String {
    let mut chars = text.trim().chars();
    let Some(first) = chars.next() else {
        return String::new();
    };
    let mut out: String = first.to_uppercase().chain(chars).collect();
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

impl From<store::Error> for IpcError {
    fn from(e: store::Error) -> Self {
        sync::Error::from(e).into()
    }
}

pub type IpcResult<T> = Result<T, IpcError>;

#[derive(Debug, Clone, Copy, Serialize, TS, PartialEq, Eq)]
#[ts(export, export_to = "../../ui/src/bindings/")]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStateKey {
    NotConnected,
    Authorizing,
    Importing,
    Connected,
    ReconnectNeeded,
    Disconnected,
    /// The VitalTrends service refused to connect without an active subscription.
    SubscriptionRequired,
    /// The subscription ended (past its grace period): nothing syncs; the history stays.
    SubscriptionEnded,
}

#[derive(Debug, Clone, Copy, Serialize, TS, PartialEq, Eq)]
#[ts(export, export_to = "../../ui/src/bindings/")]
#[serde(rename_all = "snake_case")]
pub enum JobKindKey {
    Import,
    CatchUp,
    ForceSync,
    Refetch,
}

impl From<JobKind> for JobKindKey {
    fn from(kind: JobKind) -> Self {
        match kind {
            JobKind::Import => JobKindKey::Import,
            JobKind::CatchUp => JobKindKey::CatchUp,
            JobKind::ForceSync => JobKindKey::ForceSync,
            JobKind::Refetch => JobKindKey::Refetch,
        }
    }
}

#[derive(Debug, Clone, Serialize, TS, PartialEq)]
#[ts(export, export_to = "../../ui/src/bindings/")]
pub struct JobProgress {
    pub kind: JobKindKey,
    #[ts(type = "\"recent\" | \"history\"")]
    pub phase: String,
    pub records: f64,
    pub recent_windows_done: f64,
    pub recent_windows_total: f64,
    pub oldest_day: Option<String>,
    pub percent: Option<f64>,
}

#[derive(Debug, Clone, Serialize, TS, PartialEq)]
#[ts(export, export_to = "../../ui/src/bindings/")]
pub struct LastJob {
    pub kind: JobKindKey,
    pub finished_at: String,
    pub written: f64,
    pub deleted: f64,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, TS, PartialEq)]
#[ts(export, export_to = "../../ui/src/bindings/")]
pub struct AppStatus {
    pub state: ConnectionStateKey,
    pub member_name: Option<String>,
    pub reason: Option<String>,
    pub last_synced_at: Option<String>,
    pub live: bool,
    pub demo: bool,
    pub days_of_history: f64,
    pub records: f64,
    pub job: Option<JobProgress>,
    pub queued: Vec<JobKindKey>,
    pub last_job: Option<LastJob>,
    pub revoke_pending: bool,
    pub import_complete: bool,
    /// A failed job waiting for its automatic retry.
    pub retry: Option<RetryNotice>,
    /// Why live updates stopped, when the person can do something about it (Reconnect).
    pub live_problem: Option<String>,
    /// How the app connects; `null` while nothing is chosen.
    pub mode: Option<crate::session::ModeKey>,
    /// Whether a relay delivers live updates (an own app without one catches up every 6 hours).
    pub has_relay: bool,
    /// Why the chosen connection cannot start (a bad settings file, no keychain).
    pub settings_problem: Option<String>,
    /// Whether WHOOP is reached through the VitalTrends service, which needs a subscription
    /// (Settings → Subscription is shown). Never in demo mode or with one's own WHOOP app.
    pub subscription: bool,
    /// The other WHOOP member a refused sign-in was for: the card offers to switch to them.
    pub switch_to: Option<String>,
    /// Why the running job waits for its turn at the VitalTrends service's WHOOP quota.
    pub quota_wait: Option<String>,
}

impl AppStatus {
    /// The status while no engine runs: nothing chosen yet, or the settings cannot be used.
    pub fn unconfigured(settings_problem: Option<String>) -> AppStatus {
        AppStatus {
            state: ConnectionStateKey::NotConnected,
            member_name: None,
            reason: None,
            last_synced_at: None,
            live: false,
            demo: false,
            days_of_history: 0.0,
            records: 0.0,
            job: None,
            queued: Vec::new(),
            last_job: None,
            revoke_pending: false,
            import_complete: false,
            retry: None,
            live_problem: None,
            mode: None,
            has_relay: false,
            settings_problem,
            subscription: false,
            switch_to: None,
            quota_wait: None,
        }
    }
}

/// "WHOOP is not answering." and when the engine tries again by itself.
#[derive(Debug, Clone, Serialize, TS, PartialEq)]
#[ts(export, export_to = "../../ui/src/bindings/")]
pub struct RetryNotice {
    pub job: JobKindKey,
    pub attempt: f64,
    pub next_at: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, TS, PartialEq, Eq)]
#[ts(export, export_to = "../../ui/src/bindings/")]
pub struct ForceSyncAnswer {
    pub queued: bool,
    pub message: String,
}

#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize, TS, PartialEq, Eq)]
#[ts(export, export_to = "../../ui/src/bindings/")]
pub enum RangeKey {
    #[serde(rename = "7d")]
    D7,
    #[serde(rename = "30d")]
    D30,
    #[serde(rename = "90d")]
    D90,
    #[serde(rename = "6m")]
    M6,
    #[serde(rename = "1y")]
    Y1,
    #[serde(rename = "all")]
    All,
}

impl RangeKey {
    fn days(self) -> Option<i64> {
        match self {
            RangeKey::D7 => Some(7),
            RangeKey::D30 => Some(30),
            RangeKey::D90 => Some(90),
            RangeKey::M6 => Some(183),
            RangeKey::Y1 => Some(365),
            RangeKey::All => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, TS, PartialEq)]
#[ts(export, export_to = "../../ui/src/bindings/")]
pub struct MetricToday {
    pub value: Option<f64>,
    pub pending: bool,
    /// WHOOP has the record but could not score it: no value will come.
    pub unscorable: bool,
    pub baseline: Option<f64>,
}

#[derive(Debug, Clone, Serialize, TS, PartialEq)]
#[ts(export, export_to = "../../ui/src/bindings/")]
pub struct SleepToday {
    pub pending: bool,
    /// WHOOP has the night but could not score it.
    pub unscorable: bool,
    pub performance: Option<f64>,
    pub hours_asleep: Option<f64>,
    pub hours_needed: Option<f64>,
    pub light_hours: Option<f64>,
    pub deep_hours: Option<f64>,
    pub rem_hours: Option<f64>,
    pub awake_hours: Option<f64>,
}

#[derive(Debug, Clone, Serialize, TS, PartialEq)]
#[ts(export, export_to = "../../ui/src/bindings/")]
pub struct Today {
    pub day: Option<String>,
    pub recovery: MetricToday,
    pub hrv: MetricToday,
    pub resting_hr: MetricToday,
    pub sleep: SleepToday,
    pub day_strain: MetricToday,
}

#[derive(Debug, Clone, Serialize, TS, PartialEq)]
#[ts(export, export_to = "../../ui/src/bindings/")]
pub struct Point {
    pub day: String,
    pub value: f64,
}

#[derive(Debug, Clone, Serialize, TS, PartialEq)]
#[ts(export, export_to = "../../ui/src/bindings/")]
pub struct SleepPoint {
    pub day: String,
    pub light: f64,
    pub deep: f64,
    pub rem: f64,
    pub awake: f64,
    pub need: Option<f64>,
}

#[derive(Debug, Clone, Serialize, TS, PartialEq)]
#[ts(export, export_to = "../../ui/src/bindings/")]
pub struct WorkoutRow {
    pub id: String,
    pub sport: String,
    pub start: String,
    pub timezone_offset: String,
    pub duration_min: f64,
    pub strain: Option<f64>,
    pub average_hr: Option<f64>,
    pub max_hr: Option<f64>,
    pub distance_m: Option<f64>,
    pub pending: bool,
}

#[derive(Debug, Clone, Serialize, TS, PartialEq)]
#[ts(export, export_to = "../../ui/src/bindings/")]
pub struct Series {
    pub recovery: Vec<Point>,
    pub hrv: Vec<Point>,
    pub resting_hr: Vec<Point>,
    pub sleep: Vec<SleepPoint>,
    pub day_strain: Vec<Point>,
    pub workout_strain: Vec<Point>,
}

#[derive(Debug, Clone, Serialize, TS, PartialEq)]
#[ts(export, export_to = "../../ui/src/bindings/")]
pub struct Dashboard {
    pub range: RangeKey,
    pub today: Today,
    pub series: Series,
    pub workouts: Vec<WorkoutRow>,
    pub has_data: bool,
    /// Days of the last week (the seven before today, from the first day of history on) with
    /// none of cycle, sleep or recovery stored; the dashboard links to the calendar for them.
    pub missing_days: Vec<String>,
}

/// The Connections card and status line in one value.
pub async fn status(engine: &Engine, demo: bool) -> IpcResult<AppStatus> {
    let status = engine.status().await?;
    let importing = status.running_job == Some(JobKind::Import)
        || (!status.import_complete && status.queued_jobs.contains(&JobKind::Import));
    let (state, reason, revoke_pending) = match &status.connection {
        ConnectionState::Connected { .. } if importing => {
            (ConnectionStateKey::Importing, None, false)
        }
        ConnectionState::Connected { .. } => (ConnectionStateKey::Connected, None, false),
        ConnectionState::ReconnectNeeded { reason, .. } => (
            ConnectionStateKey::ReconnectNeeded,
            Some(reason.clone()),
            false,
        ),
        _ if status.authorizing => (ConnectionStateKey::Authorizing, None, false),
        ConnectionState::Disconnected { revoke_pending, .. } => {
            (ConnectionStateKey::Disconnected, None, *revoke_pending)
        }
        ConnectionState::NotConnected => (ConnectionStateKey::NotConnected, None, false),
        ConnectionState::SubscriptionRequired { .. } => {
            (ConnectionStateKey::SubscriptionRequired, None, false)
        }
        ConnectionState::SubscriptionEnded { .. } => {
            (ConnectionStateKey::SubscriptionEnded, None, false)
        }
    };
    let state = match state {
        // Signing in again from "reconnection needed" or "disconnected" shows the browser step.
        ConnectionStateKey::ReconnectNeeded | ConnectionStateKey::Disconnected
            if status.authorizing =>
        {
            ConnectionStateKey::Authorizing
        }
        other => other,
    };
    let job = status.progress.as_ref().map(|p| JobProgress {
        kind: p.job.into(),
        phase: match p.phase {
            Phase::Recent => "recent".into(),
            Phase::History => "history".into(),
        },
        records: p.records as f64,
        recent_windows_done: p.recent_windows_done as f64,
        recent_windows_total: p.recent_windows_total as f64,
        oldest_day: p.oldest_day.map(|d| d.to_string()),
        percent: p.percent.map(f64::from),
    });
    let last_job = status.last_sync.as_ref().and_then(|run| {
        let kind = match run.kind.as_str() {
            "import" => JobKindKey::Import,
            "force_sync" => JobKindKey::ForceSync,
            "catch_up" => JobKindKey::CatchUp,
            _ => return None,
        };
        Some(LastJob {
            kind,
            finished_at: run.finished_at?.to_rfc3339(),
            written: run.records_written as f64,
            deleted: run.records_deleted as f64,
            error: run.error.clone(),
        })
    });
    Ok(AppStatus {
        state,
        member_name: status.connection.user().map(|(_, name)| name.to_string()),
        reason,
        last_synced_at: status.last_successful_sync_at.map(|t| t.to_rfc3339()),
        live: status.live,
        demo,
        days_of_history: status.days_of_history as f64,
        records: status.counts.total() as f64,
        job,
        queued: status.queued_jobs.iter().map(|k| (*k).into()).collect(),
        last_job,
        revoke_pending,
        import_complete: status.import_complete,
        retry: status.retry.as_ref().map(|retry| RetryNotice {
            job: retry.job.into(),
            attempt: f64::from(retry.attempt),
            next_at: retry.next_at.to_rfc3339(),
            // The webview counts down to `next_at` itself, so it takes the cause alone.
            message: retry
                .message
                .split(" Retrying")
                .next()
                .unwrap_or_default()
                .to_string(),
        }),
        live_problem: match status.live_updates {
            sync::LiveUpdates::DeviceUnknown => status.live_updates_message.clone(),
            _ => None,
        },
        mode: demo.then_some(crate::session::ModeKey::Demo),
        has_relay: engine.settings().relay_url.is_some(),
        settings_problem: None,
        subscription: uses_service(engine, demo),
        switch_to: None,
        quota_wait: status.quota_wait.clone(),
    })
}

/// The status of a running connection, with its mode.
pub async fn status_of(core: &Core) -> IpcResult<AppStatus> {
    let mut status = status(&core.engine, core.mode == config::Mode::Demo).await?;
    status.mode = Some(core.mode.into());
    // Only the VitalTrends service asks for a licence; an own app (even with its own relay)
    // and demo mode never do.
    status.subscription = matches!(status.mode, Some(crate::session::ModeKey::Service));
    status.switch_to = core.engine.refused_member().map(|member| member.name);
    Ok(status)
}

/// WHOOP through a relay's token broker (the VitalTrends service) rather than one's own app;
/// demo mode's in-process relay has no subscription gate.
fn uses_service(engine: &Engine, demo: bool) -> bool {
    !demo && engine.settings().relay_url.is_some()
}

/// A licence as Settings → Subscription shows it. The key itself never crosses to the webview.
#[derive(Debug, Clone, Serialize, TS, PartialEq)]
#[ts(export, export_to = "../../ui/src/bindings/")]
pub struct LicenceView {
    pub licence_id: String,
    pub plan: String,
    /// When it renews or ends: the service's date when it could be asked, else the key's.
    pub renews_at: String,
    /// `active`, `cancelled` or `revoked`, when the service could be asked.
    pub status: Option<String>,
    /// Devices signed in with it, when the service could be asked.
    pub devices: Option<f64>,
    pub max_devices: f64,
}

impl From<sync::LicenceInfo> for LicenceView {
    fn from(info: sync::LicenceInfo) -> Self {
        let relay = info.relay.as_ref();
        LicenceView {
            renews_at: relay
                .map(|r| r.active_until)
                .unwrap_or(info.expires_at)
                .to_rfc3339(),
            status: relay.map(|r| r.status.clone()),
            devices: relay.map(|r| r.devices as f64),
            max_devices: relay.map_or(f64::from(info.max_devices), |r| r.max_devices as f64),
            licence_id: info.licence_id,
            plan: info.plan,
        }
    }
}

/// The stored licence, if any (read offline, with the service's view when it answers).
pub async fn licence(engine: &Engine) -> IpcResult<Option<LicenceView>> {
    Ok(engine.licence_info().await?.map(LicenceView::from))
}

/// Stores a licence key in the secret store (never the database) and returns what it says.
/// After a lapse, syncing resumes with it.
pub async fn set_licence(engine: &Engine, key: &str) -> IpcResult<LicenceView> {
    engine.set_licence_key(key).await?;
    engine
        .licence_info()
        .await?
        .map(LicenceView::from)
        .ok_or_else(|| IpcError {
            code: "invalid_licence".into(),
            message: "That licence key could not be read.".into(),
        })
}

/// Where Subscribe and Renew go: `VITALTRENDS_PRICING_URL`, or VitalTrends' pricing page.
pub fn pricing_url() -> Url {
    std::env::var("VITALTRENDS_PRICING_URL")
        .ok()
        .and_then(|u| Url::parse(u.trim()).ok())
        .filter(|u| matches!(u.scheme(), "https" | "http"))
        .unwrap_or_else(|| Url::parse(DEFAULT_PRICING_URL).expect("the default parses"))
}

pub const DEFAULT_PRICING_URL: &str = "https://vitaltrends.app/pricing";

/// Retry now: runs the failed jobs that wait for their automatic retry at once.
pub async fn retry_now(engine: &Engine) -> IpcResult<()> {
    engine.retry_now().await?;
    Ok(())
}

/// Force Sync from the Connections card or the tray: one engine function for both.
pub fn force_sync(engine: &Engine) -> ForceSyncAnswer {
    match engine.request_force_sync() {
        Enqueued::Queued => ForceSyncAnswer {
            queued: true,
            message: "Force Sync queued".into(),
        },
        Enqueued::AlreadyQueued => ForceSyncAnswer {
            queued: false,
            message: "Force Sync is already running".into(),
        },
    }
}

/// The redirect URI of deep-link sign-ins.
pub const DEEP_LINK_CALLBACK: &str = "vitaltrends://oauth/whoop/callback";

/// Starts a sign-in; the caller opens the returned URL in the system browser.
pub fn begin_connect(engine: &Engine) -> IpcResult<Url> {
    Ok(engine.begin_authorization(DEEP_LINK_CALLBACK)?)
}

/// A `vitaltrends://` URL the OS handed to the app. Only the callback of a pending sign-in is
/// accepted; anything else is refused with a harmless, visible message.
pub async fn handle_deep_link(engine: &Engine, url: &str) -> IpcResult<String> {
    let parsed = Url::parse(url).map_err(|_| refused_link())?;
    let is_callback = parsed.scheme() == "vitaltrends"
        && parsed.host_str() == Some("oauth")
        && parsed.path() == "/whoop/callback";
    if !is_callback {
        return Err(refused_link());
    }
    complete_sign_in(engine, &parsed).await
}

/// Connect WHOOP where the `vitaltrends://` scheme could not be registered: the browser is sent
/// back to a one-off listener on 127.0.0.1 instead. Returns the consent URL to open and the
/// sign-in whose `redirect()` brings the callback for `complete_sign_in`, as a link would.
/// `port` is the own app's registered loopback port (0: any free one, where WHOOP's side is the
/// relay or the demo's simulator, which accept the app's own callback).
pub async fn begin_loopback_connect(
    engine: &Engine,
    port: u16,
) -> IpcResult<(Url, sync::LoopbackSignIn)> {
    Ok(engine.begin_loopback_authorization_on(port).await?)
}

/// Completes a sign-in from WHOOP's redirect, whether it came as a deep link or to the loopback
/// listener. A callback that matches no pending sign-in is refused.
pub async fn complete_sign_in(engine: &Engine, callback: &Url) -> IpcResult<String> {
    match engine.complete_authorization(callback).await {
        Ok(profile) => Ok(format!(
            "Connected as {} {}",
            profile.first_name, profile.last_name
        )),
        Err(sync::Error::UnexpectedCallback) => Err(refused_link()),
        Err(e) => Err(e.into()),
    }
}

fn refused_link() -> IpcError {
    IpcError {
        code: "unexpected_link".into(),
        message: "That link did not come from a sign-in VitalTrends started. Nothing was changed."
            .into(),
    }
}

pub async fn dashboard(engine: &Engine, range: RangeKey) -> IpcResult<Dashboard> {
    // The link to missing days is read beside the dashboard, not after it.
    let (
        store::Dashboard {
            today,
            days,
            workouts,
            ..
        },
        missing_days,
    ) = tokio::try_join!(
        async { Ok::<_, IpcError>(engine.store().dashboard(range.days(), 50).await?) },
        recently_missing(engine.store(), chrono::Local::now().date_naive()),
    )?;
    let points = |metric: store::Metric| -> Vec<Point> {
        store::values_of(&days, metric)
            .into_iter()
            .map(|v| Point {
                day: v.day.to_string(),
                value: v.value,
            })
            .collect()
    };
    let series = Series {
        recovery: points(store::Metric::Recovery),
        hrv: points(store::Metric::Hrv),
        resting_hr: points(store::Metric::RestingHeartRate),
        sleep: days
            .iter()
            .filter_map(|d| d.stages)
            .map(|s| SleepPoint {
                day: s.day.to_string(),
                light: s.light,
                deep: s.deep,
                rem: s.rem,
                awake: s.awake,
                need: s.need,
            })
            .collect(),
        day_strain: points(store::Metric::DayStrain),
        workout_strain: points(store::Metric::WorkoutStrain),
    };
    let workouts = workouts
        .into_iter()
        .map(|w| WorkoutRow {
            id: w.id,
            sport: w.sport,
            start: w.start.to_rfc3339(),
            timezone_offset: w.timezone_offset,
            duration_min: w.duration_min,
            strain: w.strain,
            average_hr: w.average_hr.map(|v| v as f64),
            max_hr: w.max_hr.map(|v| v as f64),
            distance_m: w.distance_m,
            pending: w.pending,
        })
        .collect();
    let metric = |m: store::MetricNow| MetricToday {
        value: m.value,
        pending: m.pending,
        unscorable: m.unscorable,
        baseline: m.baseline,
    };
    Ok(Dashboard {
        range,
        missing_days,
        has_data: today.day.is_some(),
        today: Today {
            day: today.day.map(|d: NaiveDate| d.to_string()),
            recovery: metric(today.recovery),
            hrv: metric(today.hrv),
            resting_hr: metric(today.resting_hr),
            sleep: SleepToday {
                pending: today.sleep.pending,
                unscorable: today.sleep.unscorable,
                performance: today.sleep.performance,
                hours_asleep: today.sleep.hours_asleep,
                hours_needed: today.sleep.hours_needed,
                light_hours: today.sleep.light_hours,
                deep_hours: today.sleep.deep_hours,
                rem_hours: today.sleep.rem_hours,
                awake_hours: today.sleep.awake_hours,
            },
            day_strain: metric(today.day_strain),
        },
        series,
        workouts,
    })
}

impl Dashboard {
    /// What the dashboard shows with nothing connected: no data, the empty state.
    pub fn empty(range: RangeKey) -> Dashboard {
        let metric = || MetricToday {
            value: None,
            pending: false,
            unscorable: false,
            baseline: None,
        };
        Dashboard {
            range,
            has_data: false,
            today: Today {
                day: None,
                recovery: metric(),
                hrv: metric(),
                resting_hr: metric(),
                sleep: SleepToday {
                    pending: false,
                    unscorable: false,
                    performance: None,
                    hours_asleep: None,
                    hours_needed: None,
                    light_hours: None,
                    deep_hours: None,
                    rem_hours: None,
                    awake_hours: None,
                },
                day_strain: metric(),
            },
            series: Series {
                recovery: Vec::new(),
                hrv: Vec::new(),
                resting_hr: Vec::new(),
                sleep: Vec::new(),
                day_strain: Vec::new(),
                workout_strain: Vec::new(),
            },
            workouts: Vec::new(),
            missing_days: Vec::new(),
        }
    }
}

/// How many days before today the dashboard looks for missing ones.
pub const RECENT_DAYS: i64 = 7;

/// The days among the `RECENT_DAYS` before `today` (today itself is still filling) that the
/// completeness calendar shows as missing. Days before the first day of history were never
/// there, so they are not missing.
pub async fn recently_missing(store: &store::Store, today: NaiveDate) -> IpcResult<Vec<String>> {
    let Some(first_day) = store.first_day().await? else {
        return Ok(Vec::new());
    };
    let from = (today - Duration::days(RECENT_DAYS)).max(first_day);
    let to = today - Duration::days(1);
    if to < from {
        return Ok(Vec::new());
    }
    Ok(store
        .completeness(from, to)
        .await?
        .into_iter()
        .filter(|d| d.state == store::Completeness::Missing)
        .map(|d| d.day.to_string())
        .collect())
}

/// A short message for the webview's notice area (`notice` event).
#[derive(Debug, Clone, Serialize, TS, PartialEq, Eq)]
#[ts(export, export_to = "../../ui/src/bindings/")]
pub struct Notice {
    #[ts(type = "\"info\" | \"error\"")]
    pub kind: String,
    pub message: String,
}

/// Which screen the `navigate` event asks the webview to show.
#[derive(Debug, Clone, Copy, Serialize, TS, PartialEq, Eq)]
#[ts(export, export_to = "../../ui/src/bindings/")]
#[serde(rename_all = "snake_case")]
pub enum NavigateTarget {
    Connections,
    Dashboard,
}

/// What a window that opens for a reason should show first: the screen a notification click or
/// a sign-in link leads to, and the notice that goes with it. An open window gets these as
/// `navigate` and `notice` events; a window created for the occasion reads them at start-up
/// (`window.__vtArrival`), since it is not listening yet when the events would go out.
#[derive(Debug, Clone, Default, Serialize, TS, PartialEq, Eq)]
#[ts(export, export_to = "../../ui/src/bindings/")]
pub struct Arrival {
    pub screen: Option<NavigateTarget>,
    pub notice: Option<Notice>,
}

/// The id an OS notification of this kind carries: one per kind, so a click says which it was.
pub fn notification_id(kind: sync::NotificationKind) -> i32 {
    match kind {
        sync::NotificationKind::ImportFinished => 1,
        sync::NotificationKind::ForceSyncFinished => 2,
        sync::NotificationKind::ReconnectNeeded => 3,
    }
}

/// Where clicking an OS notification takes the person: new data → the dashboard; WHOOP needs
/// reconnecting → the Connections screen, where Reconnect is.
pub fn notification_screen(id: i32) -> Option<NavigateTarget> {
    match id {
        1 | 2 => Some(NavigateTarget::Dashboard),
        3 => Some(NavigateTarget::Connections),
        _ => None,
    }
}

/// A running connection as the shell needs it: the engine and how it connects.
#[derive(Clone)]
pub struct Core {
    pub engine: Arc<Engine>,
    pub mode: config::Mode,
    /// The loopback port sign-ins redirect to when deep links are unavailable (0: any).
    pub loopback_port: u16,
}
