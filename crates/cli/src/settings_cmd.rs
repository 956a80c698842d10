//! `vitaltrends config …`: reads and changes the settings file the desktop app reads too, and
//! keeps the own app's client secret in the OS keychain (from standard input, never a flag, so
//! it stays out of shell history and process listings).

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;

use clap::Subcommand;
use config::{Config, CLIENT_SECRET_NAME, KEYS};
use sync::SecretStore;
use whoop::Secret;

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Every setting with its value and where it comes from, and where the file is.
    Show,
    /// Set one setting: mode (service, own-app, demo), whoop.client_id, whoop.base_url,
    /// relay.url, loopback.port, desktop.keep_in_tray, desktop.start_at_login,
    /// desktop.notify_import, desktop.notify_force_sync, desktop.notify_reconnect, api.enabled,
    /// api.port, backup.scheduled, backup.folder, backup.keep.
    Set { key: String, value: String },
    /// Return one setting to its default.
    Unset { key: String },
    /// Store a secret setting read from standard input (only whoop.client_secret): it goes to
    /// the OS keychain, never to the settings file.
    SetSecret { key: String },
    /// Remove a secret setting from the keychain.
    UnsetSecret { key: String },
    /// Print the settings file's path.
    Path,
}

pub fn run(
    command: ConfigCommand,
    path: &Path,
    secrets: Arc<dyn SecretStore>,
) -> anyhow::Result<()> {
    match command {
        ConfigCommand::Show => show(path, secrets.as_ref()),
        ConfigCommand::Set { key, value } => {
            let mut config = Config::load(path)?;
            config.set(&key, &value)?;
            config.save(path)?;
            println!("{key} = {}", config.get(&key)?.unwrap_or_default());
            Ok(())
        }
        ConfigCommand::Unset { key } => {
            let mut config = Config::load(path)?;
            config.unset(&key)?;
            config.save(path)?;
            println!("{key} reset to its default");
            Ok(())
        }
        ConfigCommand::SetSecret { key } => {
            check_secret_key(&key)?;
            let secret = read_secret()?;
            secrets.set(CLIENT_SECRET_NAME, &secret)?;
            println!("{key} saved in {}", secrets.describe());
            Ok(())
        }
        ConfigCommand::UnsetSecret { key } => {
            check_secret_key(&key)?;
            secrets.delete(CLIENT_SECRET_NAME)?;
            println!("{key} removed from {}", secrets.describe());
            Ok(())
        }
        ConfigCommand::Path => {
            println!("{}", path.display());
            Ok(())
        }
    }
}

fn check_secret_key(key: &str) -> anyhow::Result<()> {
    if key != CLIENT_SECRET_NAME {
        anyhow::bail!("{key} is not a secret setting; the only one is {CLIENT_SECRET_NAME}");
    }
    Ok(())
}

/// One line from standard input; a prompt on stderr when a person is typing.
fn read_secret() -> anyhow::Result<Secret> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Paste the client secret of your WHOOP app, then press Enter: ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let value = line.trim();
    if value.is_empty() {
        anyhow::bail!("no secret on standard input; nothing was saved");
    }
    Ok(Secret::new(value.to_string()))
}

fn show(path: &Path, secrets: &dyn SecretStore) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    println!("# {}", path.display());
    let env_name = |key: &str| match key {
        "mode" => Some("VITALTRENDS_MODE"),
        "whoop.client_id" => Some("VITALTRENDS_WHOOP_CLIENT_ID"),
        "whoop.base_url" => Some("VITALTRENDS_WHOOP_BASE_URL"),
        "relay.url" => Some("VITALTRENDS_RELAY_URL"),
        "loopback.port" => Some("VITALTRENDS_LOOPBACK_PORT"),
        _ => None,
    };
    for key in KEYS {
        let from_env = env_name(key).and_then(|name| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .map(|v| (name, v))
        });
        match (from_env, config.get(key)?) {
            (Some((name, value)), _) => println!("{key} = {value}  # from {name}"),
            (None, Some(value)) => println!("{key} = {value}"),
            (None, None) => println!("{key} = (not set)"),
        }
    }
    let secret = match secrets.get(CLIENT_SECRET_NAME) {
        Ok(Some(_)) => format!("(set, in {})", secrets.describe()),
        Ok(None) => "(not set)".to_string(),
        Err(e) => format!("(unreadable: {e})"),
    };
    println!("{CLIENT_SECRET_NAME} = {secret}");
    let release = config::Release::of_this_build();
    if release.has_service() {
        println!(
            "# this build connects through the VitalTrends service unless mode says otherwise"
        );
    }
    Ok(())
}
