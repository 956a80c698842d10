//! `vitaltrends`: VitalTrends without a window. Connect a WHOOP account, import its history into
//! the local SQLite file, see the status, export, disconnect. Every command is a thin call into
//! the `sync` engine, the same one the desktop app runs.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use url::Url;
use whoop::Secret;

mod api_cmd;
mod progress;
mod settings_cmd;

use config::{Choice, Mode};
use sync::{
    ConnectionState, Engine, EngineOptions, InsecureFileStore, KeychainStore, Notification,
    Notifier, SecretStore, Settings,
};

#[derive(Parser)]
#[command(
    name = "vitaltrends",
    version,
    about = "Own your WHOOP data: import it into a local SQLite file and keep it fresh",
    after_help = "How to connect comes from the settings file the desktop app uses too \
                  (`vitaltrends config show`; VITALTRENDS_CONFIG_DIR moves it). The flags and \
                  environment variables below override it, as do VITALTRENDS_MODE, \
                  VITALTRENDS_LOOPBACK_PORT and VITALTRENDS_WHOOP_CLIENT_SECRET (environment \
                  only, never a flag; `config set-secret` keeps it in the keychain instead)."
)]
struct Cli {
    /// Where the database (vitaltrends.db) lives. Default: the OS data directory.
    #[arg(long, env = "VITALTRENDS_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,

    /// WHOOP's base URL (a simulator's in tests and demos). Default: the settings file, else
    /// WHOOP's production API.
    #[arg(long, env = "VITALTRENDS_WHOOP_BASE_URL", global = true)]
    whoop_base_url: Option<String>,

    /// The WHOOP app's client id. Default: the settings file (own app) or the service's.
    #[arg(long, env = "VITALTRENDS_WHOOP_CLIENT_ID", global = true)]
    client_id: Option<String>,

    /// The relay that brokers tokens and delivers live updates.
    #[arg(long, env = "VITALTRENDS_RELAY_URL", global = true)]
    relay_url: Option<String>,

    /// Where tokens are kept: the OS keychain, or a plaintext file in the data directory for
    /// machines without a keychain (you choose it; there is no silent fallback).
    #[arg(long, env = "VITALTRENDS_SECRET_STORE", value_enum, default_value_t = SecretStoreKind::Keychain, global = true)]
    secret_store: SecretStoreKind,

    /// More log output on stderr (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum SecretStoreKind {
    Keychain,
    InsecureFile,
}

#[derive(Subcommand)]
enum Command {
    /// Connect a WHOOP account: authorize in the browser, the app receives the redirect on
    /// 127.0.0.1.
    Connect {
        /// Print the authorization URL on a line of its own instead of opening a browser.
        #[arg(long)]
        no_browser: bool,
        /// Listen for WHOOP's redirect on this 127.0.0.1 port for this sign-in (default: the
        /// settings' loopback.port). WHOOP must have exactly that redirect URI registered.
        #[arg(long)]
        port: Option<u16>,
        /// Stop waiting for the browser after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// The settings file shared with the desktop app, and the keychain's client secret.
    #[command(subcommand)]
    Config(settings_cmd::ConfigCommand),
    /// Import everything the account has (the first time), then catch up with what is new.
    Sync {
        /// Re-import the last six months from scratch, removing what WHOOP no longer has.
        #[arg(long)]
        force: bool,
    },
    /// Stay in the foreground as the desktop app does: finish the import, check for stale data
    /// every 6 hours, and run Force Syncs, until Ctrl-C.
    Run,
    /// Connection state, records per collection, newest record, last sync.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Export the local data: JSON in WHOOP's own shape, or one CSV or Parquet file per
    /// collection (columns in docs/EXPORT.md), for all time or a range of days.
    Export {
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// JSON: a file (default: stdout). CSV and Parquet: a directory (default:
        /// ./vitaltrends-export).
        #[arg(long)]
        out: Option<PathBuf>,
        /// First local WHOOP day to export (YYYY-MM-DD); default: the first there is.
        #[arg(long)]
        from: Option<chrono::NaiveDate>,
        /// Last local WHOOP day to export (YYYY-MM-DD), inclusive; default: the last there is.
        #[arg(long)]
        to: Option<chrono::NaiveDate>,
    },
    /// Write a consistent copy of the database to FILE (safe while syncing).
    Backup {
        #[arg(long)]
        out: PathBuf,
    },
    /// Replace the database with a backup, after checking it (integrity, schema version, that
    /// it is a VitalTrends database). The replaced database is kept beside it as
    /// vitaltrends.db.replaced-<time>. Quit the app first.
    Restore {
        file: PathBuf,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Rebuild the typed tables from the raw WHOOP JSON every record keeps, without calling
    /// WHOOP.
    Rebuild,
    /// Fetch a range of days from WHOOP again and replace exactly what is stored for them
    /// (repairs missing or stale days).
    Refetch {
        /// First local WHOOP day (YYYY-MM-DD).
        #[arg(long)]
        from: chrono::NaiveDate,
        /// Last local WHOOP day, inclusive.
        #[arg(long)]
        to: chrono::NaiveDate,
    },
    /// Revoke VitalTrends' access at WHOOP and forget the tokens; the history stays.
    Disconnect,
    /// Delete every WHOOP record kept locally (after disconnecting), or with --from and --to
    /// only those of that range of days.
    DeleteData {
        /// Confirm; without it nothing is deleted.
        #[arg(long)]
        yes: bool,
        /// First local WHOOP day to delete (YYYY-MM-DD); needs --to.
        #[arg(long, requires = "to")]
        from: Option<chrono::NaiveDate>,
        /// Last local WHOOP day to delete, inclusive; needs --from.
        #[arg(long, requires = "from")]
        to: Option<chrono::NaiveDate>,
    },
    /// The VitalTrends licence key the VitalTrends service's relay asks for when connecting.
    #[command(subcommand)]
    Licence(LicenceCommand),
    /// Serve the local history to an AI assistant over MCP on stdin/stdout (what Claude Desktop
    /// starts; see Settings → AI & API). Read-only: it opens the database read-only, works
    /// whether or not the app is running, and never calls WHOOP. Logs go to stderr.
    Mcp,
    /// Serve the local REST API (read-only, /api/v1, bearer token) on 127.0.0.1 until Ctrl-C,
    /// as the desktop app does while Settings → AI & API has it on. The token is the one from
    /// `vitaltrends api-token new` or the app; VITALTRENDS_API_TOKEN sets one instead.
    ServeApi {
        /// 127.0.0.1 port (default: the settings' api.port, 47621; 0 picks a free one).
        #[arg(long)]
        port: Option<u16>,
    },
    /// The REST API's bearer token.
    #[command(subcommand)]
    ApiToken(api_cmd::TokenCommand),
}

#[derive(Subcommand)]
enum LicenceCommand {
    /// Store a licence key (kept with the tokens, never in the database). Without KEY (or with
    /// `-`) it is read from stdin, which keeps it out of shell history and `ps`.
    Set { key: Option<String> },
    /// Plan, expiry and licence id (read from the key offline), and the relay's view of it
    /// when connected. Never prints the key.
    Show {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportFormat {
    Csv,
    Json,
    Parquet,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match e.downcast_ref::<sync::Error>() {
                Some(engine_error) => eprintln!("error ({}): {engine_error}", engine_error.code()),
                None => eprintln!("error: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config_path = config::default_path()?;
    if let Command::Config(command) = cli.command {
        return settings_cmd::run(
            command,
            &config_path,
            settings_secrets(cli.secret_store, &config_path),
        );
    }
    let data_dir = match cli.data_dir {
        Some(dir) => dir,
        None => dirs::data_dir()
            .ok_or_else(|| anyhow::anyhow!("no OS data directory; pass --data-dir"))?
            .join("VitalTrends"),
    };
    if let Command::Restore { file, yes } = &cli.command {
        return restore(&data_dir.join(sync::DATABASE_FILE), file, *yes).await;
    }
    // No engine for these: they only read the file, so they need no WHOOP app and no keychain,
    // and they never take the writer's place.
    let database = data_dir.join(sync::DATABASE_FILE);
    match cli.command {
        Command::Mcp => return api_cmd::mcp(&database).await,
        Command::ServeApi { port } => {
            return api_cmd::serve_api(&database, &config_path, port).await
        }
        Command::ApiToken(command) => return api_cmd::token(command, &config_path),
        _ => {}
    }
    let secrets: Arc<dyn SecretStore> = match cli.secret_store {
        SecretStoreKind::Keychain => Arc::new(KeychainStore::new(&data_dir.display().to_string())),
        SecretStoreKind::InsecureFile => {
            eprintln!(
                "warning: tokens are kept in a plaintext file ({}) because \
                 VITALTRENDS_SECRET_STORE=insecure-file",
                data_dir.join(InsecureFileStore::FILE_NAME).display()
            );
            Arc::new(InsecureFileStore::in_dir(&data_dir))
        }
    };
    // Flags stand for their environment variables, so they take the same place above the file.
    let flags: Vec<(&str, String)> = [
        ("VITALTRENDS_WHOOP_BASE_URL", cli.whoop_base_url),
        ("VITALTRENDS_WHOOP_CLIENT_ID", cli.client_id),
        ("VITALTRENDS_RELAY_URL", cli.relay_url),
    ]
    .into_iter()
    .filter_map(|(name, value)| Some((name, value?)))
    .collect();
    let file = config::Config::load(&config_path)?;
    let choice = config::resolve(
        &file,
        &config::Env::process_with(&flags),
        &config::Release::of_this_build(),
    )?;
    let connection = match choice {
        Choice::Whoop(connection) => Some(connection),
        Choice::Demo => anyhow::bail!(
            "the settings say demo mode, which only the desktop app has; choose a WHOOP \
             connection with `vitaltrends config set mode own-app` (or service)"
        ),
        Choice::Unchosen { .. } => None,
    };
    if connection.is_none() && matches!(cli.command, Command::Connect { .. }) {
        anyhow::bail!(
            "VitalTrends does not know which WHOOP app to use yet: run `vitaltrends config set \
             mode own-app` and `vitaltrends config set whoop.client_id ID` (and `config \
             set-secret whoop.client_secret`), or choose in the desktop app"
        );
    }
    let client_secret = match &connection {
        Some(c) if c.mode == Mode::OwnApp && c.relay_url.is_none() => {
            match &c.client_secret_from_env {
                Some(secret) => Some(Secret::new(secret.clone())),
                None => settings_secrets(cli.secret_store, &config_path)
                    .get(config::CLIENT_SECRET_NAME)?,
            }
        }
        _ => None,
    };
    let loopback_port = connection.as_ref().map_or(0, |c| c.loopback_port);
    let settings = match connection {
        Some(c) => Settings {
            data_dir,
            whoop_base_url: c.whoop_base_url,
            client_id: c.client_id,
            client_secret,
            relay_url: c.relay_url,
        },
        // Reading what is stored (status, export, disconnect) needs no WHOOP app.
        None => Settings {
            data_dir,
            whoop_base_url: Url::parse(whoop::PRODUCTION_BASE_URL)?,
            client_id: String::new(),
            client_secret: None,
            relay_url: None,
        },
    };
    let options = EngineOptions {
        notifier: Arc::new(PrintNotifier),
        ..EngineOptions::default()
    };
    let engine = Engine::open(settings, secrets, options).await?;

    match cli.command {
        Command::Connect {
            no_browser,
            port,
            timeout,
        } => {
            let port = port.unwrap_or(loopback_port);
            connect(&engine, no_browser, port, Duration::from_secs(timeout)).await
        }
        Command::Config(_) | Command::Mcp | Command::ServeApi { .. } | Command::ApiToken(_) => {
            unreachable!("handled before the engine opens")
        }
        Command::Sync { force } => sync(&engine, force).await,
        Command::Run => run_foreground(engine).await,
        Command::Status { json } => status(&engine, json).await,
        Command::Export {
            format,
            out,
            from,
            to,
        } => export(&engine, format, out, store::DayRange::new(from, to)?).await,
        Command::Backup { out } => {
            let info = engine.store().backup_to(&out).await?;
            println!(
                "Backed up {} records ({} to {}) to {}.",
                info.counts.total(),
                info.first_day.as_deref().unwrap_or("-"),
                info.last_day.as_deref().unwrap_or("-"),
                out.display()
            );
            Ok(())
        }
        Command::Restore { .. } => unreachable!("handled before the engine opens"),
        Command::Refetch { from, to } => {
            let report = engine.refetch_now(from, to).await?;
            println!(
                "Re-fetched {from} to {to}: {} records stored, {} unchanged, {} removed.",
                report.written.total(),
                report.unchanged,
                report.deleted
            );
            Ok(())
        }
        Command::Rebuild => {
            let started = Instant::now();
            let counts = engine.store().rebuild().await?;
            println!(
                "Rebuilt {} records from their raw JSON in {:.1} s (cycles {}, sleeps {}, recoveries {}, workouts {}).",
                counts.total(),
                started.elapsed().as_secs_f64(),
                counts.cycle,
                counts.sleep,
                counts.recovery,
                counts.workout
            );
            Ok(())
        }
        Command::Disconnect => {
            engine.disconnect().await?;
            println!("WHOOP access revoked.");
            println!(
                "Disconnected from WHOOP. Your history stays in {}.",
                engine.settings().database_path().display()
            );
            Ok(())
        }
        Command::Licence(LicenceCommand::Set { key }) => {
            let key = match key.filter(|k| k != "-") {
                Some(k) => k,
                None => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line
                }
            };
            let info = engine.set_licence_key(&key).await?;
            println!(
                "Licence saved: {} plan, {}, paid through {}.",
                info.plan,
                info.licence_id,
                info.expires_at.format("%Y-%m-%d")
            );
            Ok(())
        }
        Command::Licence(LicenceCommand::Show { json }) => licence_show(&engine, json).await,
        Command::DeleteData {
            yes,
            from: Some(from),
            to: Some(to),
        } => {
            if !yes {
                anyhow::bail!(
                    "this deletes every WHOOP record from {from} to {to} in {}; run again with \
                     --yes to confirm",
                    engine.settings().database_path().display()
                );
            }
            let n = engine
                .store()
                .delete_range(&store::DayRange::new(Some(from), Some(to))?)
                .await?;
            println!(
                "Deleted {} records from {from} to {to} (cycles {}, sleeps {}, recoveries {}, workouts {}).",
                n.total(),
                n.cycle,
                n.sleep,
                n.recovery,
                n.workout
            );
            Ok(())
        }
        Command::DeleteData { yes, .. } => {
            if !yes {
                anyhow::bail!(
                    "this deletes every WHOOP record in {}; run again with --yes to confirm",
                    engine.settings().database_path().display()
                );
            }
            engine.delete_local_data().await?;
            println!("Deleted the local WHOOP data.");
            Ok(())
        }
    }
}

async fn connect(
    engine: &Arc<Engine>,
    no_browser: bool,
    port: u16,
    limit: Duration,
) -> anyhow::Result<()> {
    let (url, sign_in) = engine.begin_loopback_authorization_on(port).await?;
    let redirect_uri = sign_in.redirect_uri().to_string();
    if no_browser || open_browser(&url).is_err() {
        println!("Open this URL in a browser to authorize VitalTrends:");
        println!("{url}");
    } else {
        println!("Finish authorizing in your browser…");
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let callback = match sign_in.redirect_within(limit).await {
        Ok(callback) => callback,
        Err(sync::Error::AuthorizationTimedOut(_)) => {
            engine.cancel_authorization();
            anyhow::bail!(
                "no answer from WHOOP after {} s. If WHOOP showed an error about the redirect, \
                 register exactly {redirect_uri} as a redirect URI of your WHOOP app (or \
                 choose the port you registered with --port or `config set loopback.port`)",
                limit.as_secs()
            );
        }
        Err(e) => return Err(e.into()),
    };
    let profile = engine.complete_authorization(&callback).await?;
    println!(
        "Connected as {} {} (WHOOP user {}). Run `vitaltrends sync` to import your history.",
        profile.first_name, profile.last_name, profile.user_id
    );
    Ok(())
}

/// Where settings-level secrets live: the keychain, or with `--secret-store insecure-file` a
/// plaintext file beside the settings file.
fn settings_secrets(kind: SecretStoreKind, config_path: &std::path::Path) -> Arc<dyn SecretStore> {
    match kind {
        SecretStoreKind::Keychain => Arc::new(KeychainStore::new(config::SECRETS_PROFILE)),
        SecretStoreKind::InsecureFile => Arc::new(InsecureFileStore::in_dir(
            config_path.parent().unwrap_or(std::path::Path::new(".")),
        )),
    }
}

fn open_browser(url: &Url) -> std::io::Result<()> {
    let mut command = if cfg!(target_os = "macos") {
        std::process::Command::new("open")
    } else if cfg!(windows) {
        let mut c = std::process::Command::new("cmd");
        c.args(["/C", "start", ""]);
        c
    } else {
        std::process::Command::new("xdg-open")
    };
    let status = command
        .arg(url.as_str())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other("browser opener failed"))
    }
}

async fn sync(engine: &Arc<Engine>, force: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let progress = progress::Display::start(engine.subscribe());
    let result = if force {
        engine.force_sync_now().await
    } else {
        engine.sync_now().await
    };
    progress.finish();
    let report = result?;
    let w = report.written;
    let what = match report.kind.as_str() {
        "import" => "Import",
        "force_sync" => "Force Sync",
        _ => "Catch-up",
    };
    println!(
        "{what} finished in {:.1} s: {} records stored (cycles {}, sleeps {}, recoveries {}, workouts {}), {} unchanged, {} removed, {} requests.",
        started.elapsed().as_secs_f64(),
        w.total(),
        w.cycle,
        w.sleep,
        w.recovery,
        w.workout,
        report.unchanged,
        report.deleted,
        report.requests
    );
    if report.skipped > 0 {
        println!(
            "{} records could not be read and were skipped (see the log with -v).",
            report.skipped
        );
    }
    Ok(())
}

async fn run_foreground(engine: Arc<Engine>) -> anyhow::Result<()> {
    engine.on_start().await?;
    let printer = progress::Display::lines(engine.subscribe());
    let jobs = tokio::spawn(engine.clone().run_jobs());
    let scheduler = tokio::spawn(engine.clone().run_scheduler());
    let stream = tokio::spawn(engine.clone().run_stream());
    println!("VitalTrends is running; Ctrl-C to stop.");
    tokio::signal::ctrl_c().await?;
    printer.finish();
    for task in [jobs, scheduler, stream] {
        task.abort();
    }
    println!("Stopped.");
    Ok(())
}

/// Notifications on stdout: the CLI has no notification service of its own.
struct PrintNotifier;

impl Notifier for PrintNotifier {
    fn notify(&self, notification: Notification) {
        progress::println(&format!(
            "notification: {} · {}",
            notification.title, notification.body
        ));
    }
}

async fn licence_show(engine: &Arc<Engine>, json: bool) -> anyhow::Result<()> {
    let info = engine.licence_info().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&info)?);
        return Ok(());
    }
    let Some(info) = info else {
        println!("No licence key stored. `vitaltrends licence set` stores one.");
        return Ok(());
    };
    println!("Licence: {}", info.licence_id);
    println!("Plan: {}", info.plan);
    println!("Paid through (as issued): {}", info.expires_at.to_rfc3339());
    println!("Devices allowed: {}", info.max_devices);
    if let Some(relay) = &info.relay {
        println!(
            "At the relay: {}, active until {}, {} of {} devices",
            relay.status,
            relay.active_until.to_rfc3339(),
            relay.devices,
            relay.max_devices
        );
    }
    Ok(())
}

async fn status(engine: &Arc<Engine>, json: bool) -> anyhow::Result<()> {
    let status = engine.status().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(());
    }
    let headline = match &status.connection {
        ConnectionState::NotConnected => "Not connected".to_string(),
        ConnectionState::Connected { name, .. } => format!("Connected as {name}"),
        ConnectionState::ReconnectNeeded { reason, .. } => format!("Reconnection needed: {reason}"),
        ConnectionState::SubscriptionRequired { .. } => "Subscription required: subscribe, or \
             `vitaltrends licence set` your licence key, then connect again"
            .to_string(),
        ConnectionState::SubscriptionEnded { .. } => format!(
            "Subscription ended · history kept ({} days); renew to sync again",
            status.days_of_history
        ),
        ConnectionState::Disconnected { .. } => {
            format!(
                "Not connected · history kept ({} days)",
                status.days_of_history
            )
        }
    };
    println!("{headline}");
    let c = status.counts;
    println!(
        "Records: {} cycles, {} sleeps, {} recoveries, {} workouts",
        c.cycle, c.sleep, c.recovery, c.workout
    );
    if let Some(newest) = status.newest_record {
        println!("Newest record: {}", newest.to_rfc3339());
    }
    match &status.last_successful_sync_at {
        Some(at) => println!("Last successful sync: {}", at.to_rfc3339()),
        None => println!("Last successful sync: never"),
    }
    if let Some(run) = &status.last_sync {
        if let Some(error) = &run.error {
            println!("Last {} failed: {error}", run.kind);
        }
    }
    if let Some(retry) = &status.retry {
        println!("{}", retry.message);
    }
    if !status.import_complete && c.total() > 0 {
        println!("The import has not finished; `vitaltrends sync` resumes it.");
    }
    if let Some(message) = &status.live_updates_message {
        println!("{message}");
    }
    if status.pending_events > 0 {
        println!(
            "Live updates waiting for WHOOP to answer: {} (retried automatically)",
            status.pending_events
        );
    }
    if status.skipped_events > 0 {
        let ids: Vec<String> = status
            .last_skipped_events
            .iter()
            .map(|s| format!("{} {}", s.kind, s.id))
            .collect();
        println!(
            "Live updates skipped (record could not be read): {}; newest: {}",
            status.skipped_events,
            ids.join(", ")
        );
    }
    println!("Tokens kept in: {}", status.secret_store);
    Ok(())
}

async fn export(
    engine: &Arc<Engine>,
    format: ExportFormat,
    out: Option<PathBuf>,
    range: store::DayRange,
) -> anyhow::Result<()> {
    let format = match format {
        ExportFormat::Csv => store::ExportFormat::Csv,
        ExportFormat::Json => store::ExportFormat::Json,
        ExportFormat::Parquet => store::ExportFormat::Parquet,
    };
    let quiet = |_: store::ExportProgress| {};
    if let (store::ExportFormat::Json, None) = (format, &out) {
        let json = engine.store().export_json_range(&range, &quiet).await?;
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(());
    }
    let out = out.unwrap_or_else(|| PathBuf::from("vitaltrends-export"));
    for file in engine
        .store()
        .export_to(format, &out, &range, &quiet)
        .await?
    {
        println!("Wrote {}", file.display());
    }
    Ok(())
}

/// Restores a backup after the person confirms (or `--yes`); the engine is not open, so the
/// file can be swapped.
async fn restore(
    database: &std::path::Path,
    file: &std::path::Path,
    yes: bool,
) -> anyhow::Result<()> {
    let info = store::check_backup(file).await?;
    println!(
        "{} holds {} records ({} cycles, {} sleeps, {} recoveries, {} workouts) from {} to {}.",
        file.display(),
        info.counts.total(),
        info.counts.cycle,
        info.counts.sleep,
        info.counts.recovery,
        info.counts.workout,
        info.first_day.as_deref().unwrap_or("-"),
        info.last_day.as_deref().unwrap_or("-"),
    );
    if !yes {
        use std::io::{IsTerminal, Write};
        if !std::io::stdin().is_terminal() {
            anyhow::bail!(
                "restoring replaces {}; run again with --yes to confirm",
                database.display()
            );
        }
        print!(
            "Replace {} with it? The current one is kept aside. [y/N] ",
            database.display()
        );
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            println!("Nothing restored.");
            return Ok(());
        }
    }
    let outcome = store::restore_backup(database, file).await?;
    println!("Restored {} into {}.", file.display(), database.display());
    if let Some(aside) = outcome.kept_aside {
        println!("The replaced database is kept as {}.", aside.display());
    }
    Ok(())
}
