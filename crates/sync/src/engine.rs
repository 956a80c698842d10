//! The engine: one per data directory. It owns the WHOOP client, the token manager and the store,
//! keeps the connection state, runs background jobs one at a time (import, catch-up, Force
//! Sync), and publishes what happens as events. The CLI and the desktop shell are thin callers.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use store::{Counts, RunOutcome, Store, SyncRun};
use tokio::sync::{broadcast, Notify, Semaphore};
use url::Url;
use whoop::oauth::{AuthorizationRequest, TokenClient};
use whoop::types::{format_timestamp, parse_timestamp};
use whoop::{Client, ClientConfig, Collection, Profile, Secret};

use crate::error::{Error, Result};
use crate::events::{
    thousands, Clock, EngineEvent, JobKind, Notification, NotificationKind, Notifier, Phase,
    Progress, Retry, SystemClock,
};
use crate::loopback::{parse_callback, CallbackOutcome, LoopbackListener};
use crate::quota::RelayQuota;
use crate::secrets::SecretStore;
use crate::settings::Settings;
use crate::state::ConnectionState;
use crate::tokens::TokenManager;

pub(crate) const IMPORT_COMPLETE_KEY: &str = "import_complete";
/// A catch-up the relay's gap made necessary, persisted before the gap is acknowledged:
/// `<since>#<nonce>`; the catch-up that covered it clears it, a restart queues it again.
pub(crate) const PENDING_CATCH_UP_KEY: &str = "pending_catch_up";
const LAST_SYNC_KEY: &str = "last_successful_sync_at";
const LAST_DATA_KEY: &str = "last_data_at";
/// Failed background jobs waiting for their retry (JSON list of `Retry`).
const RETRY_KEY: &str = "job_retry";

/// How long a started authorization stays valid (the person is in their browser).
pub const AUTHORIZATION_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// The timing rules of syncing. Real values by default; tests shrink them.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// How often the catch-up check runs.
    pub catch_up_every: Duration,
    /// Data is stale when nothing new arrived for this long.
    pub stale_after: chrono::Duration,
    /// What a stale check fetches. WHOOP filters collections on a record's start, so this
    /// reaches back a week: an activity logged for three days ago (or a strap that synced
    /// late) whose webhook was lost is still found, and a week still fits one page of 25
    /// per collection, so it costs no extra request.
    pub catch_up_window: chrono::Duration,
    /// Re-read this much before the last successful sync after a long absence or a gap:
    /// recovery listings filter on the sleep's time, and WHOOP re-scores recent days.
    pub offline_margin: chrono::Duration,
    /// Phase 1 of the import and the span of Force Sync.
    pub recent_span: chrono::Duration,
    /// WHOOP requests in flight at once.
    pub max_parallel_requests: usize,
    /// A relay event WHOOP failed on transiently is retried after this, doubling per attempt
    /// (up to an hour), while later events go on applying.
    pub event_retry_after: Duration,
    /// Waits before retrying a failed import or catch-up: the first failure waits the first,
    /// and so on; past the end the last repeats. A tray app runs for weeks, so it never gives up.
    pub retry_delays: Vec<Duration>,
    /// How often an idle engine looks whether a retry is due (it also wakes for new jobs).
    pub retry_check_every: Duration,
    /// Upper bound on one short relay request (ack, unregister) and on the wait for the event
    /// stream's response headers. A server that accepts and never answers must not hold
    /// Disconnect or the stream for the OS's TCP timeout.
    pub relay_request_timeout: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            catch_up_every: Duration::from_secs(6 * 3600),
            stale_after: chrono::Duration::hours(36),
            catch_up_window: chrono::Duration::days(7),
            offline_margin: chrono::Duration::days(3),
            recent_span: chrono::Duration::days(183),
            max_parallel_requests: 8,
            event_retry_after: Duration::from_secs(30),
            retry_delays: [1, 5, 15, 60]
                .into_iter()
                .map(|minutes| Duration::from_secs(minutes * 60))
                .collect(),
            retry_check_every: Duration::from_secs(15),
            relay_request_timeout: Duration::from_secs(15),
        }
    }
}

/// What the host plugs in.
pub struct EngineOptions {
    pub notifier: Arc<dyn Notifier>,
    pub clock: Arc<dyn Clock>,
    pub schedule: Schedule,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            notifier: Arc::new(crate::events::RecordingNotifier::default()),
            clock: Arc::new(SystemClock),
            schedule: Schedule::default(),
        }
    }
}

/// What a request for a background job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Enqueued {
    Queued,
    /// The same job is already waiting or running; nothing was added.
    AlreadyQueued,
}

/// A job waiting in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JobRequest {
    pub kind: JobKind,
    /// Catch-up only: fetch from here.
    pub since: Option<DateTime<Utc>>,
    /// Re-fetch only: the first and last local day.
    pub days: Option<(chrono::NaiveDate, chrono::NaiveDate)>,
}

#[derive(Default)]
struct JobQueue {
    queued: VecDeque<JobRequest>,
    running: Option<JobKind>,
    progress: Option<Progress>,
}

/// A loopback sign-in between its two halves: the listener the browser will be redirected to,
/// and the state the redirect must carry.
pub struct LoopbackSignIn {
    listener: LoopbackListener,
    state: String,
}

impl LoopbackSignIn {
    /// Waits for the browser's redirect (up to the sign-in's time limit) and returns the
    /// callback URL, for `Engine::complete_authorization` as with a deep link.
    pub async fn redirect(self) -> Result<Url> {
        self.redirect_within(AUTHORIZATION_TIMEOUT).await
    }

    /// As `redirect`, giving up after `limit` (a CLI that should not wait ten minutes).
    pub async fn redirect_within(self, limit: Duration) -> Result<Url> {
        self.listener.wait(&self.state, limit).await
    }

    /// The redirect URI this sign-in sent to WHOOP, which WHOOP must have registered exactly.
    pub fn redirect_uri(&self) -> &str {
        self.listener.redirect_uri()
    }
}

struct PendingAuthorization {
    request: AuthorizationRequest,
    created: std::time::Instant,
}

/// What a sync did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    pub kind: String,
    /// Records stored (inserted or changed) per collection.
    pub written: Counts,
    /// Records WHOOP returned that were already up to date.
    pub unchanged: u64,
    pub deleted: u64,
    pub skipped: u64,
    pub requests: u64,
    /// Catch-up: the start of the window it fetched.
    pub since: Option<DateTime<Utc>>,
}

/// Everything `status` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    #[serde(flatten)]
    pub connection: ConnectionState,
    pub authorizing: bool,
    pub running_job: Option<JobKind>,
    pub queued_jobs: Vec<JobKind>,
    pub progress: Option<Progress>,
    /// The relay's event stream is connected.
    pub live: bool,
    /// Whether live updates run, and if not, why.
    pub live_updates: crate::stream::LiveUpdates,
    /// What the person should read about live updates when they stopped; `None` otherwise.
    pub live_updates_message: Option<String>,
    /// Relay events that failed transiently and wait for another attempt.
    pub pending_events: u64,
    /// Relay events that could never be applied (an unreadable record or event).
    pub skipped_events: u64,
    /// The newest skipped events, newest first.
    pub last_skipped_events: Vec<store::SkippedEvent>,
    pub counts: Counts,
    pub newest_record: Option<DateTime<Utc>>,
    pub days_of_history: u64,
    pub import_complete: bool,
    pub last_successful_sync_at: Option<DateTime<Utc>>,
    pub last_sync: Option<SyncRun>,
    pub secret_store: String,
    /// A failed import or catch-up waiting to run again by itself (the import's first).
    pub retry: Option<Retry>,
    /// Why a running job waits: the VitalTrends service's share of WHOOP's quota is taken by
    /// other people's imports for the moment (`None` when not waiting).
    pub quota_wait: Option<String>,
}

/// What the card says while the relay's quota coordinator keeps this install waiting.
fn quota_wait_message(progress: &Progress) -> String {
    // A month counts as in once every collection has read back through it (`oldest_day` is only
    // how far the furthest one got).
    let recent_in = progress.recent_windows_done >= 1 || progress.phase == Phase::History;
    if recent_in {
        "Queued: many people are importing right now. Your last 30 days are in; older history \
         continues in the background."
            .into()
    } else {
        "Queued: many people are importing right now. Your newest days come first; the import \
         continues as soon as it is your turn."
            .into()
    }
}

pub struct Engine {
    pub(crate) settings: Settings,
    pub(crate) store: Store,
    pub(crate) client: Client,
    pub(crate) tokens: TokenManager,
    pub(crate) notifier: Arc<dyn Notifier>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) schedule: Schedule,
    /// For the relay (stream, acks, unregistering); WHOOP calls go through `client`.
    pub(crate) http: reqwest::Client,
    /// The relay's quota coordinator as the client asks it (service mode only).
    quota: Option<Arc<RelayQuota>>,
    events: broadcast::Sender<EngineEvent>,
    jobs: Mutex<JobQueue>,
    job_added: Notify,
    pending: Mutex<Option<PendingAuthorization>>,
    /// The other WHOOP member the last refused sign-in was for, so the shell can offer to
    /// switch to them (their grant was withdrawn; switching signs in again).
    refused_member: Mutex<Option<Member>>,
    live: AtomicBool,
    /// Bumped by Disconnect: a running job sees it and stops.
    generation: AtomicU64,
    requests_in_flight: Semaphore,
    state_transition: tokio::sync::Mutex<()>,
    /// Failed background jobs waiting for their retry; mirrored in the store's meta.
    retries: Mutex<Vec<PendingRetry>>,
}

/// A WHOOP member, as a switch between accounts names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    pub user_id: i64,
    pub name: String,
}

/// A retry and whether it has been handed to the queue already.
#[derive(Debug, Clone)]
struct PendingRetry {
    retry: Retry,
    queued: bool,
}

impl Engine {
    pub async fn open(
        settings: Settings,
        secrets: Arc<dyn SecretStore>,
        options: EngineOptions,
    ) -> Result<Arc<Self>> {
        settings.validate()?;
        let store = Store::open(&settings.database_path()).await?;
        // In service mode every install shares the relay's WHOOP app, whose quota the relay
        // hands out; otherwise the app is the person's own and headers pace it.
        let (events, _) = broadcast::channel(256);
        let quota = match &settings.relay_url {
            Some(relay) => Some(Arc::new(RelayQuota::new(
                relay,
                secrets.clone(),
                events.clone(),
            )?)),
            None => None,
        };
        let client_config = ClientConfig::new(settings.whoop_base_url.clone());
        let client = match &quota {
            Some(quota) => Client::with_budget(client_config, quota.clone())?,
            None => Client::new(client_config)?,
        };
        let token_client = settings
            .token_endpoint()
            .and_then(|endpoint| Ok(TokenClient::new(endpoint)?))
            .map_err(|e| e.to_string());
        let permits = options.schedule.max_parallel_requests.max(1);
        // Retries survive a restart (the card keeps saying what happens next).
        let retries = match store.get_meta(RETRY_KEY).await? {
            Some(json) => serde_json::from_str::<Vec<Retry>>(&json).unwrap_or_default(),
            None => Vec::new(),
        };
        Ok(Arc::new(Engine {
            tokens: TokenManager::new(
                token_client,
                &settings.whoop_base_url,
                secrets,
                &settings.data_dir,
            ),
            settings,
            store,
            client,
            notifier: options.notifier,
            clock: options.clock,
            schedule: options.schedule,
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                // A backstop for every relay request: no read waits longer than this. The event
                // stream's heartbeats come every 15 s and its own silence limit is shorter; short
                // requests also carry `relay_request_timeout` as a total bound.
                .read_timeout(Duration::from_secs(60))
                .build()
                .map_err(|e| Error::Config(format!("HTTP client: {e}")))?,
            quota,
            events,
            jobs: Mutex::new(JobQueue::default()),
            job_added: Notify::new(),
            pending: Mutex::new(None),
            refused_member: Mutex::new(None),
            live: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            requests_in_flight: Semaphore::new(permits),
            state_transition: tokio::sync::Mutex::new(()),
            retries: Mutex::new(
                retries
                    .into_iter()
                    .map(|retry| PendingRetry {
                        retry,
                        queued: false,
                    })
                    .collect(),
            ),
        }))
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn tokens(&self) -> &TokenManager {
        &self.tokens
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.events.subscribe()
    }

    pub(crate) fn emit(&self, event: EngineEvent) {
        // Nobody listening is fine: the CLI often has no subscriber.
        let _ = self.events.send(event);
    }

    pub async fn connection_state(&self) -> Result<ConnectionState> {
        ConnectionState::load(&self.store).await
    }

    async fn set_state(&self, state: ConnectionState) -> Result<()> {
        state.save(&self.store).await?;
        self.emit(EngineEvent::StateChanged {
            state: state.name().into(),
        });
        Ok(())
    }

    /// Whether the relay's event stream is connected (set by the stream client).
    pub fn set_live(&self, live: bool) {
        if self.live.swap(live, Ordering::SeqCst) != live {
            self.emit(EngineEvent::StateChanged {
                state: if live { "live" } else { "not_live" }.into(),
            });
        }
    }

    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::SeqCst)
    }

    // ---- Connecting ---------------------------------------------------------------------

    /// Starts an authorization for `redirect_uri` and remembers it as the one pending request
    /// (a new one replaces an older one). Returns the URL to open in the system browser.
    pub fn begin_authorization(&self, redirect_uri: &str) -> Result<Url> {
        let authorize = whoop::oauth::authorize_url(&self.settings.whoop_base_url)?;
        let request = whoop::oauth::authorization_request(
            &authorize,
            &self.settings.client_id,
            redirect_uri,
        )?;
        let url = request.url.clone();
        *self.pending.lock().unwrap_or_else(|e| e.into_inner()) = Some(PendingAuthorization {
            request,
            created: std::time::Instant::now(),
        });
        self.emit(EngineEvent::StateChanged {
            state: "authorizing".into(),
        });
        Ok(url)
    }

    pub fn cancel_authorization(&self) {
        let had = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .is_some();
        if had {
            self.emit(EngineEvent::StateChanged {
                state: "authorization_cancelled".into(),
            });
        }
    }

    /// Whether sync work is under way or waiting: a job running or queued, or a sign-in
    /// waiting for the browser (whose redirect only this process can complete).
    pub fn has_work(&self) -> bool {
        let busy = {
            let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
            jobs.running.is_some() || !jobs.queued.is_empty()
        };
        busy || self.is_authorizing()
    }

    pub fn is_authorizing(&self) -> bool {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|p| p.created.elapsed() < AUTHORIZATION_TIMEOUT)
    }

    /// Handles the redirect WHOOP sent back (deep link or loopback). Accepted only if it
    /// carries the state of the pending, unexpired authorization; the pending request is used up
    /// either way once the state matched, so a callback can never be replayed.
    pub async fn complete_authorization(&self, callback: &Url) -> Result<Profile> {
        let request = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let Some(current) = pending.as_ref() else {
                return Err(Error::UnexpectedCallback);
            };
            // Checked before taking it, so a forged link cannot cancel a real sign-in.
            let outcome = parse_callback(callback, &current.request.state)?;
            let current = pending.take().ok_or(Error::UnexpectedCallback)?;
            if current.created.elapsed() >= AUTHORIZATION_TIMEOUT {
                return Err(Error::AuthorizationTimedOut(
                    AUTHORIZATION_TIMEOUT.as_secs() / 60,
                ));
            }
            match outcome {
                CallbackOutcome::Denied => {
                    drop(pending);
                    self.emit(EngineEvent::StateChanged {
                        state: "authorization_denied".into(),
                    });
                    return Err(Error::AuthorizationDenied);
                }
                CallbackOutcome::Refused { error, description } => {
                    drop(pending);
                    self.emit(EngineEvent::StateChanged {
                        state: "authorization_refused".into(),
                    });
                    tracing::warn!(%error, "WHOOP refused the sign-in");
                    return Err(if error == "invalid_scope" {
                        Error::ScopeRefused { description }
                    } else {
                        Error::SignInRefused { error, description }
                    });
                }
                CallbackOutcome::Code(code) => (current.request, code),
            }
        };
        self.finish_authorization(&request.0, &request.1).await
    }

    async fn finish_authorization(
        &self,
        request: &AuthorizationRequest,
        code: &str,
    ) -> Result<Profile> {
        let previous = self.connection_state().await?;
        // The licence may have been entered by another process (`vitaltrends licence set`).
        self.tokens.load_licence_key().await?;
        let exchanged = self
            .tokens
            .token_client()?
            .exchange_code(code, &request.redirect_uri, &request.pkce_verifier)
            .await;
        let tokens = match exchanged {
            Ok(tokens) => tokens,
            Err(whoop::Error::Subscription { code }) => {
                return Err(self.sign_in_refused_by_subscription(&previous, code).await);
            }
            Err(e) => return Err(e.into()),
        };
        if matches!(
            self.tokens.token_client()?.endpoint(),
            whoop::oauth::TokenEndpoint::Broker { .. }
        ) && tokens.device_credential.is_none()
        {
            // The relay refreshes only for devices it bound, so these tokens would die within
            // the hour with no way to renew them. Withdrawn at WHOOP rather than kept: a new
            // sign-in gets a working pair.
            return Err(self.refuse_unbound_tokens(&tokens).await);
        }
        if let (Some(quota), Some(credential)) = (&self.quota, &tokens.device_credential) {
            // The relay bound this device during the exchange: the sign-in's own requests
            // already wait their turn with it.
            quota.use_credential(credential.clone());
        }
        // Whose grant is this? Asked with the new token before anything is stored, so signing
        // in as someone else cannot touch the current connection.
        let profile = self.client.profile(tokens.access_token.expose()).await?;
        if let Some((user_id, current_name)) = previous.user() {
            let holds_member = matches!(
                previous,
                ConnectionState::Connected { .. } | ConnectionState::ReconnectNeeded { .. }
            ) || self.store.counts().await?.total() > 0;
            if user_id != profile.record.user_id && holds_member {
                let current_name = current_name.to_string();
                return Err(self
                    .refuse_other_member(&tokens, &profile, current_name)
                    .await);
            }
        }
        self.tokens.store_authorized(&tokens).await?;
        if let Some(credential) = &tokens.device_credential {
            // The relay bound this device to the WHOOP member during the exchange.
            self.save_device_credential(credential).await?;
            self.store.delete_meta("relay_cursor").await?;
        }
        self.store.save_profile(&profile).await?;
        self.forget_refused_member();
        let name = format!("{} {}", profile.record.first_name, profile.record.last_name)
            .trim()
            .to_string();
        self.touch(LAST_DATA_KEY).await?;
        // The first import starts by itself; after a reconnect it resumes from its checkpoints.
        // Decided before the state changes and queued right after, with nothing to wait for in
        // between: a window reading the status on the state change sees the import queued,
        // never a connected card with nothing imported.
        let import_due = self.store.get_meta(IMPORT_COMPLETE_KEY).await?.is_none();
        self.set_state(ConnectionState::Connected {
            user_id: profile.record.user_id,
            name,
            connected_at: self.clock.now(),
        })
        .await?;
        if import_due {
            self.request_job(JobKind::Import);
        }
        Ok(profile.record)
    }

    /// The relay's code exchange returned tokens without a device credential (it could not
    /// bind the device in time): the grant is withdrawn at WHOOP and nothing is stored.
    async fn refuse_unbound_tokens(&self, tokens: &whoop::oauth::TokenResponse) -> Error {
        tracing::warn!("the relay returned tokens without binding this device; withdrawing them");
        let revoked = match self.client.revoke(tokens.access_token.expose()).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "could not withdraw the unbound grant at WHOOP");
                false
            }
        };
        Error::RelayDeviceNotBound { revoked }
    }

    /// A sign-in as a different WHOOP member than the one this data directory belongs to: the
    /// new grant is withdrawn at WHOOP (and its relay device forgotten), nothing of it is kept,
    /// and the stored tokens, device credential, cursor and connection state stay as they were.
    async fn refuse_other_member(
        &self,
        tokens: &whoop::oauth::TokenResponse,
        other: &whoop::types::Fetched<Profile>,
        current_name: String,
    ) -> Error {
        let other_name = format!("{} {}", other.record.first_name, other.record.last_name)
            .trim()
            .to_string();
        tracing::warn!("sign-in as another WHOOP member refused");
        *self
            .refused_member
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Member {
            user_id: other.record.user_id,
            name: other_name.clone(),
        });
        let revoked = match self.client.revoke(tokens.access_token.expose()).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "could not withdraw the other member's access at WHOOP");
                false
            }
        };
        if let Some(credential) = &tokens.device_credential {
            if let Err(e) = self.forget_device_at_relay(credential).await {
                tracing::info!(error = %e, "could not forget the other member's relay device");
            }
        }
        Error::OtherMember {
            current: current_name,
            other: other_name,
            revoked,
        }
    }

    /// The member of the last sign-in refused as someone else's (`Error::OtherMember`), until
    /// a sign-in succeeds or the offer to switch is dismissed.
    pub fn refused_member(&self) -> Option<Member> {
        self.refused_member
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn forget_refused_member(&self) {
        *self
            .refused_member
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The whole loopback flow: listen on 127.0.0.1, hand the URL to `open` (a browser, or a
    /// line on stdout), wait for the redirect, complete the authorization.
    pub async fn connect_loopback(&self, open: impl FnOnce(&Url)) -> Result<Profile> {
        let (url, sign_in) = self.begin_loopback_authorization().await?;
        open(&url);
        let callback = sign_in.redirect().await?;
        self.complete_authorization(&callback).await
    }

    /// The loopback flow's first half, for a caller that must return once the browser is open
    /// (the desktop's Connect button): listens on 127.0.0.1 and returns the consent URL. The
    /// caller then awaits `LoopbackSignIn::redirect` (which it may abandon, e.g. on Cancel) and
    /// hands the callback to `complete_authorization` (which it should not abandon midway).
    pub async fn begin_loopback_authorization(&self) -> Result<(Url, LoopbackSignIn)> {
        self.begin_loopback_authorization_on(0).await
    }

    /// As `begin_loopback_authorization`, on a fixed port (0: any free one). A WHOOP app that
    /// registered `http://127.0.0.1:PORT/oauth/whoop/callback` only accepts that exact port.
    pub async fn begin_loopback_authorization_on(
        &self,
        port: u16,
    ) -> Result<(Url, LoopbackSignIn)> {
        let listener = LoopbackListener::bind(port).await?;
        let url = self.begin_authorization(listener.redirect_uri())?;
        let state = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|p| p.request.state.clone())
            .ok_or(Error::UnexpectedCallback)?;
        Ok((url, LoopbackSignIn { listener, state }))
    }

    // ---- Calling WHOOP ------------------------------------------------------------------

    /// Runs a WHOOP call with a valid access token; on a 401, refreshes once and retries. A
    /// refused refresh moves the connection to "reconnection needed". At most
    /// `max_parallel_requests` calls are in flight at once.
    pub async fn with_token<T, F, Fut>(&self, call: F) -> Result<T>
    where
        F: Fn(Secret) -> Fut,
        Fut: Future<Output = whoop::Result<T>>,
    {
        let _permit = self
            .requests_in_flight
            .acquire()
            .await
            .map_err(|_| Error::Cancelled)?;
        let outcome = async {
            let token = self.tokens.access_token().await?;
            match call(token.clone()).await {
                Err(whoop::Error::Unauthorized) => {
                    let fresh = self.tokens.after_unauthorized(&token).await?;
                    Ok(call(fresh).await?)
                }
                other => Ok(other?),
            }
        }
        .await;
        match &outcome {
            Err(Error::ReconnectNeeded { reason }) => self.mark_reconnect_needed(reason).await?,
            Err(e) if is_subscription_ended(e) => self.mark_subscription_ended().await?,
            _ => {}
        }
        outcome
    }

    /// The relay refused a sign-in for want of a subscription (or a free device slot). Nothing
    /// changes for a connection that still works; otherwise the card says "Subscription
    /// required" until the person subscribes or enters a licence key and connects again.
    async fn sign_in_refused_by_subscription(
        &self,
        previous: &ConnectionState,
        code: String,
    ) -> Error {
        let error = Error::Whoop(whoop::Error::Subscription { code });
        if error.code() != whoop::error::SUBSCRIPTION_REQUIRED {
            return error;
        }
        let keep = matches!(
            previous,
            ConnectionState::Connected { .. } | ConnectionState::SubscriptionEnded { .. }
        );
        if !keep {
            let user = previous.user().map(|(id, name)| (id, name.to_string()));
            let state = ConnectionState::SubscriptionRequired {
                user_id: user.as_ref().map(|u| u.0),
                name: user.map(|u| u.1),
                since: self.clock.now(),
            };
            if let Err(e) = self.set_state(state).await {
                return e;
            }
        }
        error
    }

    /// A refresh or the event stream was refused because the subscription ended: nothing syncs
    /// until it is renewed; the history stays.
    pub(crate) async fn mark_subscription_ended(&self) -> Result<()> {
        let _guard = self.state_transition.lock().await;
        if let ConnectionState::Connected { user_id, name, .. } = self.connection_state().await? {
            tracing::warn!("the VitalTrends subscription has ended; syncing stops");
            self.set_state(ConnectionState::SubscriptionEnded {
                user_id,
                name,
                since: self.clock.now(),
            })
            .await?;
            self.set_live(false);
            self.notifier.notify(Notification {
                kind: NotificationKind::ReconnectNeeded,
                title: "VitalTrends subscription ended".into(),
                body: "Syncing has stopped; your history stays on this computer. Renew to \
                       resume."
                    .into(),
            });
        }
        Ok(())
    }

    // ---- Licence ------------------------------------------------------------------------

    /// Stores the person's licence key (a credential: in the secret store only, never in the
    /// database or logs) and uses it from now on. After a lapse, syncing resumes with it.
    pub async fn set_licence_key(&self, key: &str) -> Result<LicenceInfo> {
        let key = key.trim();
        let claims = licence::decode(key).map_err(|_| Error::InvalidLicence)?;
        let key = Secret::new(key.to_string());
        self.tokens.save_licence_key(&key).await?;
        // The event stream follows the licence the relay has on record for this device.
        self.move_device_to_licence(&key).await?;
        if let ConnectionState::SubscriptionEnded { user_id, name, .. } =
            self.connection_state().await?
        {
            // The relay decides at the next refresh; if it still refuses, the state comes back.
            self.set_state(ConnectionState::Connected {
                user_id,
                name,
                connected_at: self.clock.now(),
            })
            .await?;
            self.request_job(JobKind::CatchUp);
        }
        Ok(LicenceInfo::from_claims(&claims))
    }

    /// What the stored licence key says (read offline), and, when the relay can be asked with
    /// this device's credential, its current status and device count there.
    pub async fn licence_info(&self) -> Result<Option<LicenceInfo>> {
        let Some(key) = self.tokens.licence_key().await? else {
            return Ok(None);
        };
        let Ok(claims) = licence::decode(key.expose()) else {
            return Ok(None);
        };
        let mut info = LicenceInfo::from_claims(&claims);
        if let Some(remote) = self.licence_at_relay().await {
            if remote.licence_id == info.licence_id {
                info.relay = Some(remote);
            }
        }
        Ok(Some(info))
    }

    /// Tells the relay this device now uses `key` (`POST /v1/licence`). Nothing to do without a
    /// relay or a device credential; a relay that cannot be reached is asked again when syncing
    /// resumes. A refusal (not active, no free device) is the caller's error.
    async fn move_device_to_licence(&self, key: &Secret) -> Result<()> {
        if self.settings.relay_url.is_none() {
            return Ok(());
        }
        let Some(credential) = self.device_credential().await? else {
            return Ok(());
        };
        let answer = self
            .http
            .post(self.relay_url_for("/v1/licence")?)
            .bearer_auth(credential.expose())
            .form(&[(whoop::oauth::LICENCE_FIELD, key.expose())])
            .timeout(self.schedule.relay_request_timeout)
            .send()
            .await;
        let response = match answer {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(error = %e.without_url(), "could not tell the relay about the licence");
                return Ok(());
            }
        };
        let status = response.status().as_u16();
        if status == 402 || status == 403 {
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            if let Some(code) = body["code"].as_str() {
                return Err(Error::Whoop(whoop::Error::Subscription {
                    code: code.into(),
                }));
            }
        }
        Ok(())
    }

    /// `GET /v1/licence` with the device credential; `None` when there is no relay, no device,
    /// or no answer (the offline view is still right about plan and id).
    async fn licence_at_relay(&self) -> Option<RelayLicence> {
        self.settings.relay_url.as_ref()?;
        let credential = self.device_credential().await.ok()??;
        let url = self.relay_url_for("/v1/licence").ok()?;
        let resp = self
            .http
            .get(url)
            .bearer_auth(credential.expose())
            .timeout(self.schedule.relay_request_timeout)
            .send()
            .await
            .ok()?;
        if !resp.status().is_success() {
            return None;
        }
        resp.json::<RelayLicence>().await.ok()
    }

    /// After a renewal paid without a new key (the billing webhook renewed the same licence):
    /// when the relay reports this device's licence in service again, syncing resumes. `true`
    /// if it did. Asked at start and before a sync; costs one small relay request, only while
    /// the subscription is ended.
    pub async fn resume_if_renewed(&self) -> Result<bool> {
        if !matches!(
            self.connection_state().await?,
            ConnectionState::SubscriptionEnded { .. }
        ) {
            return Ok(false);
        }
        if let Some(key) = self.tokens.licence_key().await? {
            // In case the relay did not hear about a key entered while it was unreachable.
            if let Err(e) = self.move_device_to_licence(&key).await {
                tracing::info!(error = %e, "the relay refused the stored licence");
            }
        }
        let in_service = self
            .licence_at_relay()
            .await
            .is_some_and(|l| l.service_until > self.clock.now());
        if in_service {
            tracing::info!("the VitalTrends subscription is active again; syncing resumes");
            self.resume_subscription().await?;
        }
        Ok(in_service)
    }

    /// Try syncing again after a lapse, whatever the relay says (it decides at the next refresh).
    pub async fn resume_subscription(&self) -> Result<()> {
        if let ConnectionState::SubscriptionEnded { user_id, name, .. } =
            self.connection_state().await?
        {
            self.set_state(ConnectionState::Connected {
                user_id,
                name,
                connected_at: self.clock.now(),
            })
            .await?;
            self.request_job(JobKind::CatchUp);
        }
        Ok(())
    }

    async fn mark_reconnect_needed(&self, reason: &str) -> Result<()> {
        // Only the transition notifies: many calls failing together send one notification.
        let _guard = self.state_transition.lock().await;
        if let ConnectionState::Connected { user_id, name, .. } = self.connection_state().await? {
            // Another process may have refreshed or reconnected since this one found its tokens
            // unusable: then the stored pair is newer, and the connection is fine.
            if !self.tokens.still_unusable().await.unwrap_or(true) {
                return Ok(());
            }
            tracing::warn!(%reason, "WHOOP needs reconnecting");
            self.set_state(ConnectionState::ReconnectNeeded {
                user_id,
                name,
                reason: reason.to_string(),
                since: self.clock.now(),
            })
            .await?;
            self.notifier.notify(Notification {
                kind: NotificationKind::ReconnectNeeded,
                title: "WHOOP needs reconnecting".into(),
                body: format!("{reason}. Open VitalTrends and choose Reconnect; nothing is lost."),
            });
        }
        Ok(())
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Fails with `Cancelled` when Disconnect happened since `generation` was read.
    pub(crate) fn check_not_cancelled(&self, generation: u64) -> Result<()> {
        if self.generation() == generation {
            Ok(())
        } else {
            Err(Error::Cancelled)
        }
    }

    /// Fails unless WHOOP is connected and usable (not disconnected, not waiting for a reconnect).
    pub async fn ensure_syncable(&self) -> Result<()> {
        match self.connection_state().await? {
            ConnectionState::Connected { .. } => Ok(()),
            ConnectionState::ReconnectNeeded { reason, .. } => {
                Err(Error::ReconnectNeeded { reason })
            }
            ConnectionState::SubscriptionEnded { .. } => {
                Err(Error::Whoop(whoop::Error::Subscription {
                    code: whoop::error::SUBSCRIPTION_INACTIVE.into(),
                }))
            }
            _ => Err(Error::NotConnected),
        }
    }

    // ---- Bookkeeping --------------------------------------------------------------------

    pub(crate) async fn touch(&self, key: &str) -> Result<()> {
        let now = format_timestamp(&self.clock.now());
        self.store.set_meta(key, &now).await?;
        Ok(())
    }

    async fn meta_time(&self, key: &str) -> Result<Option<DateTime<Utc>>> {
        Ok(self
            .store
            .get_meta(key)
            .await?
            .as_deref()
            .and_then(parse_timestamp))
    }

    /// Records that new data arrived (any write that changed something).
    pub(crate) async fn data_arrived(&self, written: u64, deleted: u64) -> Result<()> {
        if written + deleted > 0 {
            self.touch(LAST_DATA_KEY).await?;
            self.emit(EngineEvent::DataChanged);
        }
        Ok(())
    }

    pub async fn last_successful_sync_at(&self) -> Result<Option<DateTime<Utc>>> {
        self.meta_time(LAST_SYNC_KEY).await
    }

    pub async fn last_data_at(&self) -> Result<Option<DateTime<Utc>>> {
        self.meta_time(LAST_DATA_KEY).await
    }

    pub async fn status(&self) -> Result<Status> {
        let (running_job, queued_jobs, progress) = {
            let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
            (
                jobs.running,
                jobs.queued.iter().map(|j| j.kind).collect(),
                jobs.progress.clone(),
            )
        };
        let live_updates = self.live_updates().await?;
        let issues = self.store.event_issue_summary(5).await?;
        let queued = self.quota.as_ref().is_some_and(|q| q.queued());
        let quota_wait = progress.as_ref().filter(|_| queued).map(quota_wait_message);
        Ok(Status {
            quota_wait,
            live_updates_message: live_updates.message().map(str::to_string),
            live_updates,
            pending_events: issues.pending,
            skipped_events: issues.skipped,
            last_skipped_events: issues.last_skipped,
            connection: self.connection_state().await?,
            authorizing: self.is_authorizing(),
            running_job,
            queued_jobs,
            progress,
            live: self.is_live(),
            counts: self.store.counts().await?,
            newest_record: self.store.newest_record_time().await?,
            days_of_history: self.store.days_of_history().await?,
            import_complete: self.store.get_meta(IMPORT_COMPLETE_KEY).await?.is_some(),
            last_successful_sync_at: self.last_successful_sync_at().await?,
            last_sync: self.store.last_sync_run(false).await?,
            secret_store: self.tokens.describe_store(),
            retry: self.current_retry(),
        })
    }

    // ---- Jobs ---------------------------------------------------------------------------

    /// Queues a background job. The same job already waiting or running makes this a no-op.
    pub fn request_job(&self, kind: JobKind) -> Enqueued {
        self.enqueue(JobRequest {
            kind,
            since: None,
            days: None,
        })
    }

    pub(crate) fn enqueue(&self, request: JobRequest) -> Enqueued {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(queued) = jobs.queued.iter_mut().find(|j| j.kind == request.kind) {
            // Two catch-ups waiting: one that reaches back far enough serves both.
            queued.since = match (queued.since, request.since) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            // Two re-fetches waiting: one over both ranges (and the days between) serves both.
            queued.days = match (queued.days, request.days) {
                (Some(a), Some(b)) => Some((a.0.min(b.0), a.1.max(b.1))),
                (a, b) => a.or(b),
            };
            return Enqueued::AlreadyQueued;
        }
        // A running re-fetch may cover other days than the one asked for: that one queues.
        if jobs.running == Some(request.kind)
            && !matches!(request.kind, JobKind::CatchUp | JobKind::Refetch)
        {
            return Enqueued::AlreadyQueued;
        }
        jobs.queued.push_back(request);
        drop(jobs);
        self.emit(EngineEvent::JobQueued { job: request.kind });
        self.job_added.notify_one();
        Enqueued::Queued
    }

    /// Force Sync: re-import the last six months as a queued background job.
    pub fn request_force_sync(&self) -> Enqueued {
        self.request_job(JobKind::ForceSync)
    }

    pub(crate) fn set_progress(&self, progress: Progress) {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).progress = Some(progress.clone());
        self.emit(EngineEvent::Progress(progress));
    }

    /// Processes queued jobs one at a time, for as long as the engine lives. The desktop and
    /// `vitaltrends run` spawn this once.
    pub async fn run_jobs(self: Arc<Self>) {
        loop {
            let next = {
                let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
                let next = jobs.queued.pop_front();
                jobs.running = next.map(|j| j.kind);
                next
            };
            match next {
                Some(request) => {
                    let result = self.run_job(request).await;
                    if let Err(e) = &result {
                        tracing::warn!(job = request.kind.as_str(), error = %e, "sync job failed");
                    }
                    if let Err(e) = self.after_background_job(request, &result).await {
                        tracing::warn!(error = %e, "could not record the job's retry");
                    }
                    {
                        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
                        jobs.running = None;
                        jobs.progress = None;
                    }
                    // JobFinished went out while the job still counted as running; say again
                    // that nothing runs now, so status readers do not keep showing it.
                    self.emit(EngineEvent::StateChanged {
                        state: "idle".into(),
                    });
                }
                None => self.wait_for_work().await,
            }
        }
    }

    /// Idle: waits for a new job, or until a failed job's retry is due and queues it.
    async fn wait_for_work(&self) {
        loop {
            let due_in = {
                let retries = self.retries.lock().unwrap_or_else(|e| e.into_inner());
                let now = self.clock.now();
                retries
                    .iter()
                    .filter(|p| !p.queued)
                    .map(|p| (p.retry.next_at - now).to_std().unwrap_or(Duration::ZERO))
                    .min()
            };
            match due_in {
                None => return self.job_added.notified().await,
                Some(wait) if wait.is_zero() => {
                    self.queue_retries(false);
                    return;
                }
                // Checked in steps: the clock can be moved (tests) or the machine can sleep.
                Some(wait) => {
                    let step = wait.min(self.schedule.retry_check_every);
                    if tokio::time::timeout(step, self.job_added.notified())
                        .await
                        .is_ok()
                    {
                        return;
                    }
                }
            }
        }
    }

    /// Queues the retries that are due (or all of them, for "Retry now"). Returns how many.
    fn queue_retries(&self, all: bool) -> Vec<Enqueued> {
        let due: Vec<JobRequest> = {
            let mut retries = self.retries.lock().unwrap_or_else(|e| e.into_inner());
            let now = self.clock.now();
            retries
                .iter_mut()
                .filter(|p| !p.queued && (all || p.retry.next_at <= now))
                .map(|p| {
                    p.queued = true;
                    JobRequest {
                        kind: p.retry.job,
                        since: p.retry.since,
                        days: None,
                    }
                })
                .collect()
        };
        due.into_iter()
            .map(|request| self.enqueue(request))
            .collect()
    }

    /// After a background job: a success clears its retry; a failure that may pass by itself
    /// (WHOOP down, rate limited, a network outage) schedules the next try with backoff; one
    /// that needs the person (Reconnect) or ended the connection (Disconnect) is not retried.
    async fn after_background_job(
        &self,
        request: JobRequest,
        result: &Result<SyncReport>,
    ) -> Result<()> {
        let error = match result {
            Ok(_) => return self.clear_retry(request.kind).await,
            Err(e) => e,
        };
        if let Error::ReconnectNeeded { .. } = error {
            // Nothing can succeed before the person reconnects; Reconnect restarts the import.
            return self.clear_all_retries().await;
        }
        if !retryable(error) || !matches!(request.kind, JobKind::Import | JobKind::CatchUp) {
            // Force Sync is the person's own request: its failure is reported, not repeated.
            return self.clear_retry(request.kind).await;
        }
        let retry = {
            let mut retries = self.retries.lock().unwrap_or_else(|e| e.into_inner());
            let attempt = retries
                .iter()
                .find(|p| p.retry.job == request.kind)
                .map_or(1, |p| p.retry.attempt.saturating_add(1));
            let delays = &self.schedule.retry_delays;
            let mut delay = delays
                .get(attempt as usize - 1)
                .or(delays.last())
                .copied()
                .unwrap_or(Duration::from_secs(60));
            if let Error::Whoop(whoop::Error::RateLimited { retry_after }) = error {
                delay = delay.max(*retry_after);
            }
            let now = self.clock.now();
            let next_at =
                now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::zero());
            let mut retry = Retry {
                job: request.kind,
                attempt,
                next_at,
                reason: error.code().to_string(),
                message: String::new(),
                since: request.since,
            };
            retry.message = retry_message(&retry, error_cause(error), now);
            retries.retain(|p| p.retry.job != request.kind);
            retries.push(PendingRetry {
                retry: retry.clone(),
                queued: false,
            });
            retry
        };
        tracing::info!(
            job = request.kind.as_str(),
            attempt = retry.attempt,
            next_at = %format_timestamp(&retry.next_at),
            "will retry the failed job"
        );
        self.save_retries().await?;
        self.emit(EngineEvent::RetryScheduled(retry));
        Ok(())
    }

    async fn clear_retry(&self, job: JobKind) -> Result<()> {
        let removed = {
            let mut retries = self.retries.lock().unwrap_or_else(|e| e.into_inner());
            let before = retries.len();
            retries.retain(|p| p.retry.job != job);
            retries.len() != before
        };
        if removed {
            self.save_retries().await?;
            self.emit(EngineEvent::RetryCleared { job });
        }
        Ok(())
    }

    async fn clear_all_retries(&self) -> Result<()> {
        let jobs: Vec<JobKind> = {
            let retries = self.retries.lock().unwrap_or_else(|e| e.into_inner());
            retries.iter().map(|p| p.retry.job).collect()
        };
        for job in jobs {
            self.clear_retry(job).await?;
        }
        Ok(())
    }

    async fn save_retries(&self) -> Result<()> {
        let list: Vec<Retry> = {
            let retries = self.retries.lock().unwrap_or_else(|e| e.into_inner());
            retries.iter().map(|p| p.retry.clone()).collect()
        };
        if list.is_empty() {
            self.store.delete_meta(RETRY_KEY).await?;
        } else {
            let json = serde_json::to_string(&list).map_err(|e| Error::Io(e.to_string()))?;
            self.store.set_meta(RETRY_KEY, &json).await?;
        }
        Ok(())
    }

    /// The retry the card shows: the import's if it has one, else the soonest; its message
    /// counts the minutes from now.
    fn current_retry(&self) -> Option<Retry> {
        let retries = self.retries.lock().unwrap_or_else(|e| e.into_inner());
        let pick = retries
            .iter()
            .find(|p| p.retry.job == JobKind::Import)
            .or_else(|| retries.iter().min_by_key(|p| p.retry.next_at))?;
        let mut retry = pick.retry.clone();
        let cause = retry
            .message
            .split_inclusive('.')
            .next()
            .unwrap_or_default()
            .to_string();
        retry.message = if pick.queued {
            format!("{cause} Retrying now.")
        } else {
            retry_message(&retry, &cause, self.clock.now())
        };
        Some(retry)
    }

    /// "Retry now" on the card or in the tray: runs the failed jobs at once instead of at their
    /// time. With nothing waiting for a retry, it syncs (the import until it is complete, then a
    /// catch-up).
    pub async fn retry_now(&self) -> Result<Enqueued> {
        self.ensure_syncable().await?;
        let queued = self.queue_retries(true);
        if !queued.is_empty() {
            self.emit(EngineEvent::StateChanged {
                state: "retrying".into(),
            });
            return Ok(if queued.contains(&Enqueued::Queued) {
                Enqueued::Queued
            } else {
                Enqueued::AlreadyQueued
            });
        }
        if self.store.get_meta(IMPORT_COMPLETE_KEY).await?.is_none() {
            return Ok(self.request_job(JobKind::Import));
        }
        let since = self.catch_up_start().await?;
        Ok(self.enqueue(JobRequest {
            kind: JobKind::CatchUp,
            since: Some(since),
            days: None,
        }))
    }

    /// Runs the sync a person asks for with `vitaltrends sync`: the import until it completed
    /// once, then a catch-up (reaching back further after a long absence).
    pub async fn sync_now(&self) -> Result<SyncReport> {
        self.resume_if_renewed().await?;
        let kind = if self.store.get_meta(IMPORT_COMPLETE_KEY).await?.is_some() {
            JobKind::CatchUp
        } else {
            JobKind::Import
        };
        let since = match kind {
            JobKind::CatchUp => Some(self.catch_up_start().await?),
            _ => None,
        };
        self.run_job(JobRequest {
            kind,
            since,
            days: None,
        })
        .await
    }

    /// Runs Force Sync now, in the caller's task (the CLI; the desktop queues it instead).
    pub async fn force_sync_now(&self) -> Result<SyncReport> {
        self.run_job(JobRequest {
            kind: JobKind::ForceSync,
            since: None,
            days: None,
        })
        .await
    }

    /// Runs one job now, recording it as a sync run, and notifying as the person expects.
    pub(crate) async fn run_job(&self, request: JobRequest) -> Result<SyncReport> {
        self.ensure_syncable().await?;
        let generation = self.generation();
        let run = self.store.start_sync_run(request.kind.as_str()).await?;
        let before = self.client.stats().requests;
        let result = match request.kind {
            JobKind::Import => self.import(generation).await,
            JobKind::CatchUp => {
                let since = match request.since {
                    Some(since) => since,
                    None => self.clock.now() - self.schedule.catch_up_window,
                };
                self.catch_up(since, generation).await
            }
            JobKind::ForceSync => self.force_sync(generation).await,
            JobKind::Refetch => match request.days {
                Some(days) => self.refetch(days, generation).await,
                None => Err(Error::Io("a re-fetch without its days".into())),
            },
        };
        let requests = self.client.stats().requests - before;
        let outcome = match &result {
            Ok(report) => RunOutcome {
                records_written: report.written.total(),
                records_deleted: report.deleted,
                records_skipped: report.skipped,
                requests,
                error: None,
            },
            Err(e) => RunOutcome {
                requests,
                error: Some(e.to_string()),
                ..Default::default()
            },
        };
        self.store.finish_sync_run(run, &outcome).await?;
        self.emit(EngineEvent::JobFinished {
            job: request.kind,
            written: result.as_ref().map(|r| r.written).unwrap_or_default(),
            deleted: outcome.records_deleted,
            since: result.as_ref().ok().and_then(|r| r.since),
            error: outcome.error.clone(),
        });
        let mut report = result?;
        self.touch(LAST_SYNC_KEY).await?;
        // However it ran (the queue, `vitaltrends sync`), a success ends the wait for a retry.
        self.clear_retry(request.kind).await?;
        report.kind = request.kind.as_str().into();
        report.requests = requests;
        match request.kind {
            JobKind::Import => {
                let days = self.store.days_of_history().await?;
                let counts = self.store.counts().await?;
                self.notifier.notify(Notification {
                    kind: NotificationKind::ImportFinished,
                    title: "WHOOP import finished".into(),
                    body: format!(
                        "{} days of history · {} records",
                        thousands(days),
                        thousands(counts.total())
                    ),
                });
            }
            JobKind::ForceSync => {
                let changed = report.written.total() + report.deleted;
                self.notifier.notify(Notification {
                    kind: NotificationKind::ForceSyncFinished,
                    title: "Force Sync finished".into(),
                    body: format!(
                        "{} record{} updated",
                        thousands(changed),
                        if changed == 1 { "" } else { "s" }
                    ),
                });
            }
            JobKind::CatchUp | JobKind::Refetch => {}
        }
        Ok(report)
    }

    // ---- Disconnecting --------------------------------------------------------------------

    /// Revokes access at WHOOP, forgets the tokens, stops every job, keeps the history.
    ///
    /// If WHOOP cannot be reached, the connection still stops here (no more syncing), the
    /// tokens are kept only to retry the revoke later, and the error says so: a revoke that did
    /// not happen is never reported as done.
    pub async fn disconnect(&self) -> Result<()> {
        let state = self.connection_state().await?;
        let Some((user_id, name)) = state.user().map(|(id, n)| (id, n.to_string())) else {
            return Err(Error::NotConnected);
        };
        self.generation.fetch_add(1, Ordering::SeqCst);
        {
            let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
            jobs.queued.clear();
        }
        self.clear_all_retries().await?;
        let already_pending = matches!(
            state,
            ConnectionState::Disconnected {
                revoke_pending: true,
                ..
            }
        );
        if let Err(e) = self.unregister_device().await {
            tracing::warn!(error = %e, "could not forget the relay device");
        }
        let revoked = self.revoke_at_whoop().await;
        let revoke_pending = revoked.is_err();
        if !revoke_pending || !already_pending {
            self.set_state(ConnectionState::Disconnected {
                user_id,
                name,
                disconnected_at: self.clock.now(),
                revoke_pending,
            })
            .await?;
        }
        self.set_live(false);
        revoked
    }

    async fn revoke_at_whoop(&self) -> Result<()> {
        if !self.tokens.has_tokens().await? {
            return Ok(());
        }
        let revoked = self
            .with_token(|token| async move { self.client.revoke(token.expose()).await })
            .await;
        match revoked {
            // The grant is already dead at WHOOP: there is nothing left to revoke.
            Ok(()) | Err(Error::ReconnectNeeded { .. }) | Err(Error::NotConnected) => {
                self.tokens.forget().await
            }
            // The relay will not renew access for a lapsed subscription, so it cannot be revoked
            // through it; the grant lapses at WHOOP unused.
            Err(e) if is_subscription_ended(&e) => self.tokens.forget().await,
            Err(e) => Err(Error::RevokePending(e.to_string())),
        }
    }

    /// Retries a revoke that failed earlier (called by the scheduler).
    pub async fn retry_pending_revoke(&self) -> Result<()> {
        if let ConnectionState::Disconnected {
            user_id,
            name,
            disconnected_at,
            revoke_pending: true,
        } = self.connection_state().await?
        {
            self.revoke_at_whoop().await?;
            self.set_state(ConnectionState::Disconnected {
                user_id,
                name,
                disconnected_at,
                revoke_pending: false,
            })
            .await?;
        }
        Ok(())
    }

    /// Deletes every WHOOP record of this data directory. Only while not connected, so a sync
    /// cannot refill it behind the person's back.
    pub async fn delete_local_data(&self) -> Result<()> {
        if let ConnectionState::Connected { .. }
        | ConnectionState::ReconnectNeeded { .. }
        | ConnectionState::SubscriptionEnded { .. } = self.connection_state().await?
        {
            return Err(Error::Config(
                "disconnect from WHOOP before deleting local data".into(),
            ));
        }
        self.store.delete_all_whoop_data().await?;
        for key in [
            IMPORT_COMPLETE_KEY,
            LAST_DATA_KEY,
            LAST_SYNC_KEY,
            crate::import::PLAN_KEY,
            PENDING_CATCH_UP_KEY,
        ] {
            self.store.delete_meta(key).await?;
        }
        self.set_state(ConnectionState::NotConnected).await?;
        self.emit(EngineEvent::DataChanged);
        Ok(())
    }

    // ---- Catch-up -----------------------------------------------------------------------

    /// Where a catch-up should start: the catch-up window (a week) normally, from the last
    /// successful sync minus a margin after a longer absence, and at least as far back as a
    /// gap that has not been caught up yet.
    pub async fn catch_up_start(&self) -> Result<DateTime<Utc>> {
        let now = self.clock.now();
        let floor = now - self.schedule.catch_up_window;
        let start = match self.last_successful_sync_at().await? {
            Some(last) if last < now - self.schedule.stale_after => {
                (last - self.schedule.offline_margin).min(floor)
            }
            _ => floor,
        };
        Ok(match self.pending_catch_up().await? {
            Some((since, _)) => start.min(since),
            None => start,
        })
    }

    /// The six-hourly check: queue a catch-up of the last week if nothing new arrived for 36
    /// hours (or live updates stopped for good).
    /// Fresh data makes no WHOOP call at all. Returns whether a catch-up was queued.
    ///
    /// It runs while the import is still incomplete too (failed and waiting for its retry, or
    /// interrupted): the recent days are what the person looks at. A catch-up replaces only its
    /// own window (adding, updating, and removing what WHOOP no longer lists there), so the
    /// import's checkpoints are untouched and it resumes where it stopped.
    pub async fn catch_up_tick(&self) -> Result<bool> {
        if self.ensure_syncable().await.is_err() {
            return Ok(false);
        }
        let now = self.clock.now();
        let stale = match self.last_data_at().await? {
            Some(at) => now - at > self.schedule.stale_after,
            None => true,
        };
        // The relay forgot this device: catch-up is all there is until the person reconnects.
        let stale = stale || self.device_unknown().await?;
        // A gap whose catch-up has not completed yet (it failed, say) is tried again.
        let gap = self.pending_catch_up().await?.map(|(since, _)| since);
        let stale = stale || gap.is_some();
        if stale {
            let window = now - self.schedule.catch_up_window;
            self.enqueue(JobRequest {
                kind: JobKind::CatchUp,
                since: Some(gap.map_or(window, |since| since.min(window))),
                days: None,
            });
        }
        Ok(stale)
    }

    /// At start: queue the import if it has not finished, or a catch-up reaching back to the
    /// last successful sync if the app was away longer than the staleness limit.
    pub async fn on_start(&self) -> Result<()> {
        self.resume_if_renewed().await?;
        if self.ensure_syncable().await.is_err() {
            return Ok(());
        }
        let pending_catch_up = self.pending_catch_up().await?;
        if self.store.get_meta(IMPORT_COMPLETE_KEY).await?.is_none() {
            self.request_job(JobKind::Import);
            if let Some((since, _)) = pending_catch_up {
                self.enqueue(JobRequest {
                    kind: JobKind::CatchUp,
                    since: Some(since),
                    days: None,
                });
            }
            return Ok(());
        }
        if let Some((since, _)) = pending_catch_up {
            // A gap was acknowledged but its catch-up never finished (the app was closed).
            self.enqueue(JobRequest {
                kind: JobKind::CatchUp,
                since: Some(since),
                days: None,
            });
        }
        let now = self.clock.now();
        if let Some(last) = self.last_successful_sync_at().await? {
            if last < now - self.schedule.stale_after {
                self.enqueue(JobRequest {
                    kind: JobKind::CatchUp,
                    since: Some(last - self.schedule.offline_margin),
                    days: None,
                });
            }
        }
        Ok(())
    }

    /// The relay lost events we may not have seen: catch up from the last successful sync.
    /// The need is persisted before this returns (and so before the gap is acknowledged), so a
    /// process that dies before the catch-up finished runs it at its next start.
    pub async fn on_gap(&self) -> Result<()> {
        let now = self.clock.now();
        let since = match self.last_successful_sync_at().await? {
            Some(last) => last - self.schedule.offline_margin,
            None => now - self.schedule.catch_up_window,
        };
        let mut since = since.min(now - self.schedule.catch_up_window);
        if let Some((earlier, _)) = self.pending_catch_up().await? {
            since = since.min(earlier);
        }
        // A fresh nonce every time: a catch-up already running must not clear a newer gap.
        let value = format!(
            "{}#{:016x}",
            format_timestamp(&since),
            rand::random::<u64>()
        );
        self.store.set_meta(PENDING_CATCH_UP_KEY, &value).await?;
        self.enqueue(JobRequest {
            kind: JobKind::CatchUp,
            since: Some(since),
            days: None,
        });
        Ok(())
    }

    /// The persisted catch-up a gap asked for: where it must start, and the stored value.
    pub(crate) async fn pending_catch_up(&self) -> Result<Option<(DateTime<Utc>, String)>> {
        let Some(value) = self.store.get_meta(PENDING_CATCH_UP_KEY).await? else {
            return Ok(None);
        };
        let since = value.split('#').next().and_then(parse_timestamp);
        Ok(Some(match since {
            Some(since) => (since, value),
            // Unreadable: catch up as after a long absence rather than not at all.
            None => (
                self.clock.now() - self.schedule.offline_margin - self.schedule.catch_up_window,
                value,
            ),
        }))
    }

    /// The scheduler loop: the catch-up check every `catch_up_every`, and pending revokes.
    pub async fn run_scheduler(self: Arc<Self>) {
        loop {
            tokio::time::sleep(self.schedule.catch_up_every).await;
            if let Err(e) = self.catch_up_tick().await {
                tracing::warn!(error = %e, "catch-up check failed");
            }
            if let Err(e) = self.retry_pending_revoke().await {
                tracing::info!(error = %e, "revoke still pending");
            }
        }
    }

    async fn catch_up(&self, since: DateTime<Utc>, generation: u64) -> Result<SyncReport> {
        // Read before fetching: a gap noted while this runs has a new value and stays.
        let pending_gap = self.pending_catch_up().await?;
        // Taken before the first fetch: what the live applier changes from here on is newer
        // than anything fetched, and the window replacement leaves it alone.
        let fetch_began = self.store.change_mark().await?;
        let (contents, skipped) =
            crate::import::fetch_whole_window(self, (Some(since), None), generation, None).await?;
        let skipped = skipped as u64;
        self.check_not_cancelled(generation)?;
        // WHOOP lists what the window holds now, so a record it no longer lists was deleted
        // there (its `*.deleted` webhook lost, as in a gap). Unless a record could not be read:
        // it would look deleted, so then the window is only added to.
        let outcome = if skipped == 0 {
            self.store
                .replace_window(since, &contents, fetch_began)
                .await?
        } else {
            let mut added = store::WindowOutcome::default();
            for (collection, counts) in [
                (
                    Collection::Cycle,
                    self.store.upsert(&contents.cycles).await?,
                ),
                (
                    Collection::Sleep,
                    self.store.upsert(&contents.sleeps).await?,
                ),
                (
                    Collection::Recovery,
                    self.store.upsert(&contents.recoveries).await?,
                ),
                (
                    Collection::Workout,
                    self.store.upsert(&contents.workouts).await?,
                ),
            ] {
                set_count(&mut added.written, collection, counts.written);
                added.unchanged += counts.unchanged;
            }
            added
        };
        let report = SyncReport {
            since: Some(since),
            written: outcome.written,
            unchanged: outcome.unchanged,
            deleted: outcome.deleted,
            skipped,
            ..Default::default()
        };
        self.data_arrived(report.written.total(), report.deleted)
            .await?;
        if let Some((gap_since, value)) = pending_gap {
            if since <= gap_since {
                self.store
                    .delete_meta_if(PENDING_CATCH_UP_KEY, &value)
                    .await?;
            }
        }
        Ok(report)
    }
}

pub(crate) fn set_count(counts: &mut Counts, collection: Collection, value: u64) {
    match collection {
        Collection::Cycle => counts.cycle = value,
        Collection::Sleep => counts.sleep = value,
        Collection::Recovery => counts.recovery = value,
        Collection::Workout => counts.workout = value,
    }
}

pub(crate) fn add_counts(total: &mut Counts, part: &Counts) {
    total.cycle += part.cycle;
    total.sleep += part.sleep;
    total.recovery += part.recovery;
    total.workout += part.workout;
}

/// Whether a failed background job may succeed later without the person doing anything.
fn retryable(error: &Error) -> bool {
    if let Error::Whoop(whoop::Error::Subscription { .. }) = error {
        return false;
    }
    !matches!(
        error,
        Error::NotConnected
            | Error::ReconnectNeeded { .. }
            | Error::Cancelled
            | Error::Config(_)
            | Error::AuthorizationDenied
            | Error::UnexpectedCallback
            | Error::AuthorizationTimedOut(_)
            | Error::OtherMember { .. }
            | Error::ScopeRefused { .. }
            | Error::SignInRefused { .. }
            | Error::RevokePending(_)
    )
}

/// The relay refused a refresh because the subscription ended past its grace (or, for a
/// connection made before the gate was on, because no licence key is stored): syncing stops
/// until a key is entered or the subscription renewed; the history and the grant stay.
pub(crate) fn is_subscription_ended(error: &Error) -> bool {
    matches!(
        error.code(),
        whoop::error::SUBSCRIPTION_INACTIVE | whoop::error::SUBSCRIPTION_REQUIRED
    )
}

/// A licence as the app shows it: what the key says (read offline), and the relay's view when
/// it could be asked.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LicenceInfo {
    pub licence_id: String,
    pub plan: String,
    /// Paid through, as issued (the relay's `active_until` is newer after a renewal).
    pub expires_at: DateTime<Utc>,
    pub max_devices: u32,
    pub relay: Option<RelayLicence>,
}

impl LicenceInfo {
    fn from_claims(c: &licence::Claims) -> LicenceInfo {
        LicenceInfo {
            licence_id: c.id.clone(),
            plan: c.plan.clone(),
            expires_at: DateTime::<Utc>::from_timestamp(c.expires_at, 0).unwrap_or_default(),
            max_devices: c.max_devices,
            relay: None,
        }
    }
}

/// The relay's `GET /v1/licence`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct RelayLicence {
    pub licence_id: String,
    pub plan: String,
    /// `active`, `cancelled` or `revoked`.
    pub status: String,
    pub active: bool,
    pub active_until: DateTime<Utc>,
    /// When refreshes and live updates stop (the end plus the grace period).
    pub service_until: DateTime<Utc>,
    pub max_devices: i64,
    pub devices: i64,
}

/// The first sentence of the card's retry line: what went wrong, in the person's words.
fn error_cause(error: &Error) -> &'static str {
    match error {
        Error::Whoop(whoop::Error::Unavailable { .. }) => "WHOOP is not answering.",
        Error::Whoop(whoop::Error::RateLimited { .. }) => "WHOOP asked VitalTrends to slow down.",
        Error::Whoop(_) => "WHOOP sent an answer VitalTrends could not use.",
        Error::Store(_) => "The local database could not be written.",
        _ => "The last sync did not finish.",
    }
}

/// "WHOOP is not answering. Retrying in 5 minutes."
fn retry_message(retry: &Retry, cause: &str, now: DateTime<Utc>) -> String {
    let seconds = (retry.next_at - now).num_seconds().max(0);
    let when = if seconds == 0 {
        "now".to_string()
    } else if seconds < 3600 {
        let minutes = (seconds + 59) / 60;
        format!("in {minutes} minute{}", if minutes == 1 { "" } else { "s" })
    } else {
        let hours = (seconds + 3599) / 3600;
        format!("in {hours} hour{}", if hours == 1 { "" } else { "s" })
    };
    format!("{cause} Retrying {when}.")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(recent_windows_done: u32, oldest_day: &str) -> Progress {
        Progress {
            job: JobKind::Import,
            phase: Phase::Recent,
            records: 100,
            recent_windows_done,
            recent_windows_total: 6,
            oldest_day: oldest_day.parse().ok(),
            percent: None,
        }
    }

    #[test]
    fn the_queue_notice_says_30_days_are_in_only_once_every_collection_has_them() {
        // One chain far back, the others not yet through a month: not in.
        let partly = quota_wait_message(&progress(0, "2020-01-01"));
        assert!(partly.contains("Your newest days come first"), "{partly}");
        let month = quota_wait_message(&progress(1, "2026-10-01"));
        assert!(month.contains("Your last 30 days are in"), "{month}");
        let history = quota_wait_message(&Progress {
            phase: Phase::History,
            ..progress(0, "2020-01-01")
        });
        assert!(history.contains("Your last 30 days are in"), "{history}");
    }
}
