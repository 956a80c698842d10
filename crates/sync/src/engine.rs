//! The engine: one per data directory. It ties the WHOOP client, the token manager and the store
//! together and exposes what a person can do: connect, sync, see the status, disconnect, delete
//! local data. The CLI and the desktop shell are thin callers of these functions.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use store::{Checkpoint, Counts, ImportWindow, RunOutcome, Store, StoreRecord, SyncRun};
use url::Url;
use whoop::oauth::{AuthorizationRequest, TokenClient};
use whoop::{
    Client, ClientConfig, Collection, Cycle, PageQuery, Profile, Recovery, Secret, Sleep, Workout,
};

use crate::error::{Error, Result};
use crate::loopback::{CallbackOutcome, LoopbackListener};
use crate::secrets::SecretStore;
use crate::settings::Settings;
use crate::state::ConnectionState;
use crate::tokens::TokenManager;

const IMPORT_COMPLETE_KEY: &str = "import_complete";

/// How long a started authorization stays valid (the person is in their browser).
pub const AUTHORIZATION_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// Records re-read before the newest one on an incremental sync: WHOOP re-scores recent days,
/// and recoveries are listed by their sleep's time.
const INCREMENTAL_MARGIN_DAYS: i64 = 3;

pub struct Engine {
    settings: Settings,
    store: Store,
    client: Client,
    tokens: TokenManager,
}

/// What a sync did, per collection and in total.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    pub kind: String,
    pub written: Counts,
    pub skipped: u64,
    pub requests: u64,
    pub pages: u64,
}

/// Everything `status` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    #[serde(flatten)]
    pub connection: ConnectionState,
    pub counts: Counts,
    pub newest_record: Option<DateTime<Utc>>,
    pub days_of_history: u64,
    pub import_complete: bool,
    pub last_sync: Option<SyncRun>,
    pub last_successful_sync: Option<SyncRun>,
    pub secret_store: String,
}

impl Engine {
    pub async fn open(settings: Settings, secrets: Arc<dyn SecretStore>) -> Result<Self> {
        let store = Store::open(&settings.database_path()).await?;
        let client = Client::new(ClientConfig::new(settings.whoop_base_url.clone()))?;
        let token_client = settings
            .token_endpoint()
            .and_then(|endpoint| Ok(TokenClient::new(endpoint)?))
            .map_err(|e| e.to_string());
        let tokens = TokenManager::new(token_client, secrets);
        Ok(Engine {
            settings,
            store,
            client,
            tokens,
        })
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

    pub async fn connection_state(&self) -> Result<ConnectionState> {
        ConnectionState::load(&self.store).await
    }

    /// Starts an authorization for `redirect_uri`: the URL to open and what the callback must
    /// carry.
    pub fn begin_authorization(&self, redirect_uri: &str) -> Result<AuthorizationRequest> {
        let authorize = whoop::oauth::authorize_url(&self.settings.whoop_base_url)?;
        Ok(whoop::oauth::authorization_request(
            &authorize,
            &self.settings.client_id,
            redirect_uri,
        )?)
    }

    /// Exchanges the code, stores the tokens, learns who the person is, and marks the
    /// connection as connected.
    pub async fn complete_authorization(
        &self,
        request: &AuthorizationRequest,
        code: &str,
    ) -> Result<Profile> {
        let tokens = self
            .tokens
            .token_client()?
            .exchange_code(code, &request.redirect_uri, &request.pkce_verifier)
            .await?;
        self.tokens.store_authorized(&tokens).await?;
        let profile = self
            .with_token(|token| async move { self.client.profile(token.expose()).await })
            .await?;
        self.store.save_profile(&profile).await?;
        let name = format!("{} {}", profile.record.first_name, profile.record.last_name)
            .trim()
            .to_string();
        ConnectionState::Connected {
            user_id: profile.record.user_id,
            name,
            connected_at: Utc::now(),
        }
        .save(&self.store)
        .await?;
        Ok(profile.record)
    }

    /// The whole loopback flow: listen on 127.0.0.1, hand the URL to `open` (a browser, or a
    /// line on stdout), wait for the redirect, complete the authorization.
    pub async fn connect_loopback(&self, open: impl FnOnce(&Url)) -> Result<Profile> {
        let listener = LoopbackListener::bind(0).await?;
        let request = self.begin_authorization(listener.redirect_uri())?;
        open(&request.url);
        match listener.wait(&request.state, AUTHORIZATION_TIMEOUT).await? {
            CallbackOutcome::Code(code) => self.complete_authorization(&request, &code).await,
            CallbackOutcome::Denied => Err(Error::AuthorizationDenied),
        }
    }

    /// Runs the appropriate sync: the full import until it has completed once, then an
    /// incremental sync from a few days before the newest record.
    pub async fn sync(&self) -> Result<SyncReport> {
        self.ensure_syncable().await?;
        let import_done = self.store.get_meta(IMPORT_COMPLETE_KEY).await?.is_some();
        let kind = if import_done { "incremental" } else { "import" };
        let run = self.store.start_sync_run(kind).await?;
        let requests_before = self.client.stats().requests;
        let result = if import_done {
            self.incremental().await
        } else {
            self.full_import().await
        };
        let requests = self.client.stats().requests - requests_before;
        let outcome = match &result {
            Ok(report) => RunOutcome {
                records_written: report.written.total(),
                records_skipped: report.skipped,
                requests,
                ..Default::default()
            },
            Err(e) => RunOutcome {
                requests,
                error: Some(e.to_string()),
                ..Default::default()
            },
        };
        self.store.finish_sync_run(run, &outcome).await?;
        let mut report = result?;
        report.kind = kind.into();
        report.requests = requests;
        Ok(report)
    }

    async fn ensure_syncable(&self) -> Result<()> {
        match self.connection_state().await? {
            ConnectionState::Connected { .. } => Ok(()),
            ConnectionState::ReconnectNeeded { reason, .. } => {
                Err(Error::ReconnectNeeded { reason })
            }
            _ => Err(Error::NotConnected),
        }
    }

    async fn full_import(&self) -> Result<SyncReport> {
        let window = ImportWindow::ALL;
        let (cycles, sleeps, recoveries, workouts, extras) = tokio::join!(
            self.import_collection::<Cycle>(window),
            self.import_collection::<Sleep>(window),
            self.import_collection::<Recovery>(window),
            self.import_collection::<Workout>(window),
            self.refresh_profile_and_body(),
        );
        extras?;
        let mut report = SyncReport::default();
        for (collection, result) in [
            (Collection::Cycle, cycles),
            (Collection::Sleep, sleeps),
            (Collection::Recovery, recoveries),
            (Collection::Workout, workouts),
        ] {
            let part = result?;
            set_count(
                &mut report.written,
                collection,
                part.written.get(collection),
            );
            report.skipped += part.skipped;
            report.pages += part.pages;
        }
        self.store.set_meta(IMPORT_COMPLETE_KEY, "1").await?;
        Ok(report)
    }

    /// Pages through one collection over `window`, resuming from its checkpoint. Each page and
    /// the checkpoint after it are written together, so a killed process neither repeats nor
    /// skips a page when it resumes.
    async fn import_collection<T: StoreRecord>(&self, window: ImportWindow) -> Result<SyncReport> {
        let collection = T::COLLECTION;
        let mut checkpoint = self
            .store
            .load_checkpoint(collection, &window)
            .await?
            .unwrap_or_else(|| Checkpoint::new(collection, window));
        let mut report = SyncReport::default();
        while !checkpoint.done {
            let query = PageQuery {
                start: window.start,
                end: window.end,
                next_token: checkpoint.next_token.clone(),
            };
            let page = self
                .with_token(|token| {
                    let query = query.clone();
                    async move { self.client.page::<T>(token.expose(), &query).await }
                })
                .await?;
            for skipped in &page.skipped {
                tracing::warn!(
                    collection = %collection,
                    id = skipped.id.as_deref().unwrap_or("unknown"),
                    reason = %skipped.reason,
                    "skipped a WHOOP record that could not be read"
                );
            }
            checkpoint.pages += 1;
            checkpoint.records += page.records.len() as u64;
            checkpoint.done = page.next_token.is_none();
            checkpoint.next_token = page.next_token;
            let counts = self.store.apply_page(&page.records, &checkpoint).await?;
            let written = report.written.get(collection) + counts.written + counts.stale;
            set_count(&mut report.written, collection, written);
            report.skipped += page.skipped.len() as u64;
            report.pages += 1;
        }
        Ok(report)
    }

    async fn incremental(&self) -> Result<SyncReport> {
        let since = self
            .store
            .newest_record_time()
            .await?
            .map(|t| t - chrono::Duration::days(INCREMENTAL_MARGIN_DAYS));
        let (c, s, r, w, extras) = tokio::join!(
            self.fetch_since::<Cycle>(since),
            self.fetch_since::<Sleep>(since),
            self.fetch_since::<Recovery>(since),
            self.fetch_since::<Workout>(since),
            self.refresh_profile_and_body(),
        );
        extras?;
        let mut report = SyncReport::default();
        for part in [c?, s?, r?, w?] {
            report.written.cycle += part.written.cycle;
            report.written.sleep += part.written.sleep;
            report.written.recovery += part.written.recovery;
            report.written.workout += part.written.workout;
            report.skipped += part.skipped;
            report.pages += part.pages;
        }
        Ok(report)
    }

    async fn fetch_since<T: StoreRecord>(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<SyncReport> {
        let page = self
            .with_token(|token| async move {
                self.client
                    .collect_all::<T>(token.expose(), since, None)
                    .await
            })
            .await?;
        let counts = self.store.upsert(&page.records).await?;
        let mut report = SyncReport::default();
        set_count(&mut report.written, T::COLLECTION, counts.written);
        report.skipped = page.skipped.len() as u64;
        Ok(report)
    }

    async fn refresh_profile_and_body(&self) -> Result<()> {
        let profile = self
            .with_token(|token| async move { self.client.profile(token.expose()).await })
            .await?;
        self.store.save_profile(&profile).await?;
        let body = self
            .with_token(|token| async move { self.client.body_measurement(token.expose()).await })
            .await?;
        if let Some(body) = body {
            self.store
                .save_body_measurement(profile.record.user_id, &body)
                .await?;
        }
        Ok(())
    }

    /// Runs a WHOOP call with a valid access token; on a 401, refreshes once and retries. A
    /// refused refresh moves the connection to "reconnection needed".
    pub async fn with_token<T, F, Fut>(&self, call: F) -> Result<T>
    where
        F: Fn(Secret) -> Fut,
        Fut: Future<Output = whoop::Result<T>>,
    {
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
        if let Err(Error::ReconnectNeeded { reason }) = &outcome {
            self.mark_reconnect_needed(reason).await?;
        }
        outcome
    }

    async fn mark_reconnect_needed(&self, reason: &str) -> Result<()> {
        let state = self.connection_state().await?;
        if let ConnectionState::Connected { user_id, name, .. } = state {
            tracing::warn!(%reason, "WHOOP needs reconnecting");
            ConnectionState::ReconnectNeeded {
                user_id,
                name,
                reason: reason.to_string(),
                since: Utc::now(),
            }
            .save(&self.store)
            .await?;
        }
        Ok(())
    }

    pub async fn status(&self) -> Result<Status> {
        let secret_store = self.tokens_description();
        Ok(Status {
            connection: self.connection_state().await?,
            counts: self.store.counts().await?,
            newest_record: self.store.newest_record_time().await?,
            days_of_history: self.store.days_of_history().await?,
            import_complete: self.store.get_meta(IMPORT_COMPLETE_KEY).await?.is_some(),
            last_sync: self.store.last_sync_run(false).await?,
            last_successful_sync: self.store.last_sync_run(true).await?,
            secret_store,
        })
    }

    fn tokens_description(&self) -> String {
        self.tokens.describe_store()
    }

    /// Revokes access at WHOOP, forgets the tokens, keeps the history. If WHOOP cannot be
    /// reached nothing changes and the error says so: a revoke that did not happen is never
    /// reported as done.
    pub async fn disconnect(&self) -> Result<()> {
        let state = self.connection_state().await?;
        let Some((user_id, name)) = state.user().map(|(id, n)| (id, n.to_string())) else {
            return Err(Error::NotConnected);
        };
        if self.tokens.has_tokens().await? {
            let revoked = self
                .with_token(|token| async move { self.client.revoke(token.expose()).await })
                .await;
            match revoked {
                Ok(()) => {}
                // The grant is already dead at WHOOP: there is nothing left to revoke.
                Err(Error::ReconnectNeeded { .. }) | Err(Error::NotConnected) => {}
                Err(e) => return Err(e),
            }
        }
        self.tokens.forget().await?;
        ConnectionState::Disconnected {
            user_id,
            name,
            disconnected_at: Utc::now(),
        }
        .save(&self.store)
        .await?;
        Ok(())
    }

    /// Deletes every WHOOP record of this data directory. Only while not connected, so a sync
    /// cannot refill it behind the person's back.
    pub async fn delete_local_data(&self) -> Result<()> {
        if let ConnectionState::Connected { .. } = self.connection_state().await? {
            return Err(Error::Config(
                "disconnect from WHOOP before deleting local data".into(),
            ));
        }
        self.store.delete_all_whoop_data().await?;
        self.store.delete_meta(IMPORT_COMPLETE_KEY).await?;
        ConnectionState::NotConnected.save(&self.store).await?;
        Ok(())
    }
}

fn set_count(counts: &mut Counts, collection: Collection, value: u64) {
    match collection {
        Collection::Cycle => counts.cycle = value,
        Collection::Sleep => counts.sleep = value,
        Collection::Recovery => counts.recovery = value,
        Collection::Workout => counts.workout = value,
    }
}
