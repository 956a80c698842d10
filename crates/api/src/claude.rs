//! Claude Desktop's side of "Use with Claude Desktop": where its config file is, the entry that
//! starts `vitaltrends mcp`, and merging that entry into the file without losing anything (the
//! other servers and keys stay, the old file is kept as a backup, a file that is not JSON is
//! left alone with an error).

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

/// The server's name in `mcpServers`.
pub const SERVER_NAME: &str = "vitaltrends";

/// Claude Desktop's folder: `~/Library/Application Support/Claude` on macOS, `%APPDATA%\Claude`
/// on Windows, `~/.config/Claude` on Linux (unofficial builds). Its presence is how we tell that
/// Claude Desktop is installed.
pub fn config_dir() -> Option<PathBuf> {
    dirs_config().map(|d| d.join("Claude"))
}

fn dirs_config() -> Option<PathBuf> {
    if cfg!(target_os = "macos") {
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join("Library/Application Support"))
    } else if cfg!(windows) {
        std::env::var_os("APPDATA").map(PathBuf::from)
    } else {
        std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
    }
}

pub fn config_file(dir: &Path) -> PathBuf {
    dir.join("claude_desktop_config.json")
}

/// The `mcpServers` entry: the CLI's absolute path and the data directory the app uses, so
/// Claude reads the same history the window shows.
pub fn entry(cli: &Path, data_dir: &Path) -> Value {
    json!({
        "command": cli.display().to_string(),
        "args": ["--data-dir", data_dir.display().to_string(), "mcp"],
    })
}

/// The snippet to paste into `claude_desktop_config.json` by hand.
pub fn snippet(entry: &Value) -> String {
    let mut servers = Map::new();
    servers.insert(SERVER_NAME.into(), entry.clone());
    serde_json::to_string_pretty(&json!({ "mcpServers": servers })).unwrap_or_default()
}

/// `existing` (the file's text, if any) with our entry set and everything else kept.
pub fn merged(existing: Option<&str>, entry: &Value) -> Result<String, String> {
    let mut root = match existing.map(str::trim) {
        None | Some("") => Map::new(),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err("it is not a JSON object".into()),
            Err(e) => return Err(format!("it is not valid JSON ({e})")),
        },
    };
    let servers = root
        .entry("mcpServers")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(servers) = servers else {
        return Err("its mcpServers is not an object".into());
    };
    servers.insert(SERVER_NAME.into(), entry.clone());
    serde_json::to_string_pretty(&Value::Object(root)).map_err(|e| e.to_string())
}

/// What `add` did.
#[derive(Debug, Clone, PartialEq)]
pub struct Added {
    pub file: PathBuf,
    /// The previous file, copied before writing; None when there was none.
    pub backup: Option<PathBuf>,
}

/// Merges the entry into Claude Desktop's config in `dir`: backs the old file up beside it,
/// writes through a temporary file and a rename. A file it cannot read as JSON is not touched.
pub fn add(dir: &Path, entry: &Value) -> Result<Added, String> {
    if !dir.is_dir() {
        return Err(format!(
            "Claude Desktop does not seem to be installed ({} does not exist)",
            dir.display()
        ));
    }
    let file = config_file(dir);
    let existing = match std::fs::read_to_string(&file) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
    };
    let text = merged(existing.as_deref(), entry)
        .map_err(|why| format!("{} was left as it is: {why}", file.display()))?;
    let backup = match &existing {
        Some(old) => {
            let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
            let backup = dir.join(format!("claude_desktop_config.json.{stamp}.bak"));
            std::fs::write(&backup, old)
                .map_err(|e| format!("cannot back up {}: {e}", file.display()))?;
            Some(backup)
        }
        None => None,
    };
    let tmp = dir.join(format!(
        ".claude_desktop_config.json.{}.tmp",
        std::process::id()
    ));
    std::fs::write(&tmp, text + "\n")
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &file).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", file.display())
    })?;
    Ok(Added { file, backup })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours() -> Value {
        entry(Path::new("/opt/vt/vitaltrends"), Path::new("/home/a/data"))
    }

    #[test]
    fn other_servers_and_keys_stay() {
        let old = r#"{"globalShortcut": "Ctrl+Space",
            "mcpServers": {"files": {"command": "npx", "args": ["fs"]},
                           "vitaltrends": {"command": "/old/path"}}}"#;
        let new: Value = serde_json::from_str(&merged(Some(old), &ours()).unwrap()).unwrap();
        assert_eq!(new["globalShortcut"], "Ctrl+Space");
        assert_eq!(new["mcpServers"]["files"]["command"], "npx");
        assert_eq!(new["mcpServers"]["vitaltrends"], ours());
        assert_eq!(new["mcpServers"]["vitaltrends"]["args"][2], "mcp");
    }

    #[test]
    fn a_file_that_is_not_json_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let file = config_file(dir.path());
        std::fs::write(&file, "{ not json").unwrap();
        let err = add(dir.path(), &ours()).unwrap_err();
        assert!(err.contains("left as it is"), "{err}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "{ not json");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn adding_backs_up_the_old_file_and_a_missing_folder_means_not_installed() {
        let dir = tempfile::tempdir().unwrap();
        let old = r#"{"mcpServers": {"files": {"command": "npx"}}}"#;
        std::fs::write(config_file(dir.path()), old).unwrap();
        let added = add(dir.path(), &ours()).unwrap();
        assert_eq!(std::fs::read_to_string(added.backup.unwrap()).unwrap(), old);
        let now: Value =
            serde_json::from_str(&std::fs::read_to_string(&added.file).unwrap()).unwrap();
        assert_eq!(now["mcpServers"]["files"]["command"], "npx");
        assert_eq!(now["mcpServers"]["vitaltrends"], ours());
        let err = add(&dir.path().join("nope"), &ours()).unwrap_err();
        assert!(err.contains("not seem to be installed"), "{err}");
    }
}
