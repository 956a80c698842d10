//! `vitaltrends mcp`, `serve-api` and `api-token`: the person's history for AI assistants and
//! scripts, read-only, with no WHOOP app, engine or keychain involved.

use std::path::Path;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Make a new bearer token for the REST API and print it once. Only its SHA-256 is kept (in
    /// the settings file), so it cannot be shown again; the previous token stops working.
    New,
    /// Forget the token: the REST API accepts no request until a new one is made.
    Revoke,
}

pub async fn mcp(database: &Path) -> anyhow::Result<()> {
    let reader = api::open_reader(database).await?;
    api::mcp::serve_stdio(reader)
        .await
        .map_err(anyhow::Error::msg)
}

pub async fn serve_api(
    database: &Path,
    config_path: &Path,
    port: Option<u16>,
) -> anyhow::Result<()> {
    let settings = config::Config::load(config_path)?;
    // A token given in the environment (never a flag: `ps` shows flags) is for scripts that
    // start their own server; otherwise the one made in the app or with `api-token new`.
    let hash = match std::env::var("VITALTRENDS_API_TOKEN") {
        Ok(token) if !token.trim().is_empty() => Some(api::rest::token_hash(token.trim())),
        _ => settings.api.token_sha256.clone(),
    };
    let Some(hash) = hash else {
        anyhow::bail!(
            "the REST API has no token yet: make one with `vitaltrends api-token new` or in \
             Settings → AI & API"
        );
    };
    let reader = api::open_reader(database).await?;
    let listener = api::rest::bind(port.unwrap_or(settings.api.port))
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on 127.0.0.1: {e}"))?;
    let address = listener.local_addr()?;
    println!(
        "Serving the VitalTrends API on http://{address}{} (OpenAPI: http://{address}{}/openapi.json). Ctrl-C stops it.",
        api::rest::PREFIX,
        api::rest::PREFIX
    );
    api::rest::serve(listener, api::rest::router(reader, Some(&hash)), async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

pub fn token(command: TokenCommand, config_path: &Path) -> anyhow::Result<()> {
    let mut settings = config::Config::load(config_path)?;
    match command {
        TokenCommand::New => {
            let (token, hash) = api::rest::new_token();
            settings.api.token_sha256 = Some(hash);
            settings.save(config_path)?;
            println!("{token}");
            eprintln!(
                "This is the only time the token is shown; keep it in your script's secret store. \
                 Send it as `Authorization: Bearer <token>`."
            );
        }
        TokenCommand::Revoke => {
            settings.api.token_sha256 = None;
            settings.save(config_path)?;
            println!("API token revoked: the REST API accepts no request until a new one is made.");
        }
    }
    Ok(())
}
