//! Where tokens live: `SecretStore`, with the OS keychain for normal use, an explicitly named
//! plaintext file for headless machines and tests, and memory for unit tests.
//!
//! There is no silent fallback: if the keychain is unavailable the caller gets an error that says
//! so and names the alternative, and the person chooses.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use whoop::Secret;

use crate::error::{Error, Result};

/// Named secrets. Implementations block (a keychain is a D-Bus or system call away), so async
/// callers use `spawn_blocking`.
pub trait SecretStore: Send + Sync + 'static {
    fn get(&self, name: &str) -> Result<Option<Secret>>;
    fn set(&self, name: &str, value: &Secret) -> Result<()>;
    fn delete(&self, name: &str) -> Result<()>;
    /// For status output: "OS keychain", "insecure file …", "memory".
    fn describe(&self) -> String;
}

/// The OS keychain (Secret Service on Linux, Keychain on macOS, Credential Manager on Windows).
pub struct KeychainStore {
    service: String,
}

impl KeychainStore {
    /// `profile` keeps separate data directories (and test runs) from sharing tokens.
    pub fn new(profile: &str) -> Self {
        KeychainStore {
            service: format!("VitalTrends ({profile})"),
        }
    }

    fn entry(&self, name: &str) -> Result<keyring::Entry> {
        keyring::Entry::new(&self.service, name).map_err(keychain_error)
    }
}

fn keychain_error(e: keyring::Error) -> Error {
    Error::Secrets(format!(
        "the OS keychain is not available ({e}). On a machine without one, set \
         VITALTRENDS_SECRET_STORE=insecure-file to keep tokens in a plaintext file in the data \
         directory instead"
    ))
}

impl SecretStore for KeychainStore {
    fn get(&self, name: &str) -> Result<Option<Secret>> {
        match self.entry(name)?.get_password() {
            Ok(value) => Ok(Some(Secret::new(value))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(keychain_error(e)),
        }
    }

    fn set(&self, name: &str, value: &Secret) -> Result<()> {
        self.entry(name)?
            .set_password(value.expose())
            .map_err(keychain_error)
    }

    fn delete(&self, name: &str) -> Result<()> {
        match self.entry(name)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(keychain_error(e)),
        }
    }

    fn describe(&self) -> String {
        "OS keychain".into()
    }
}

/// Secrets in a plaintext JSON file readable only by its owner. Chosen explicitly, never as a
/// fallback, and named so nobody mistakes it for protection.
///
/// Several processes may share the file (the desktop and a cron `vitaltrends sync`): each change
/// is a read-modify-write under an OS lock on a sibling lock file, written to a temporary file
/// with a name of its own (process id and a random suffix) and renamed over the original, so a
/// reader never sees half a file and two writers never share a temporary file.
pub struct InsecureFileStore {
    path: PathBuf,
    lock: Mutex<()>,
}

impl InsecureFileStore {
    pub const FILE_NAME: &'static str = "insecure-secrets.json";

    pub fn in_dir(dir: &Path) -> Self {
        InsecureFileStore {
            path: dir.join(Self::FILE_NAME),
            lock: Mutex::new(()),
        }
    }

    fn read(&self) -> Result<HashMap<String, String>> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::Secrets(format!("{} is not readable: {e}", self.path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HashMap::new()),
            Err(e) => Err(Error::Secrets(format!("{}: {e}", self.path.display()))),
        }
    }

    fn write(&self, map: &HashMap<String, String>) -> Result<()> {
        let io = |e: std::io::Error| Error::Secrets(format!("{}: {e}", self.path.display()));
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        // Write a sibling and rename it over, so a crash never leaves half a token file.
        let tmp = self.path.with_file_name(format!(
            "{}.{}.{:016x}.tmp",
            Self::FILE_NAME,
            std::process::id(),
            rand::random::<u64>()
        ));
        let body = serde_json::to_vec(map).map_err(|e| Error::Secrets(e.to_string()))?;
        {
            use std::io::Write;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(&tmp).map_err(io)?;
            let written = file.write_all(&body).and_then(|()| file.sync_all());
            if let Err(e) = written {
                let _ = std::fs::remove_file(&tmp);
                return Err(io(e));
            }
        }
        std::fs::rename(&tmp, &self.path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io(e)
        })
    }

    /// The exclusive OS lock that makes a read-modify-write whole across processes.
    fn lock_across_processes(&self) -> Result<std::fs::File> {
        lock_file(
            &self
                .path
                .with_file_name(format!("{}.lock", Self::FILE_NAME)),
        )
    }
}

impl SecretStore for InsecureFileStore {
    fn get(&self, name: &str) -> Result<Option<Secret>> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        Ok(self.read()?.get(name).cloned().map(Secret::new))
    }

    fn set(&self, name: &str, value: &Secret) -> Result<()> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let _across = self.lock_across_processes()?;
        let mut map = self.read()?;
        map.insert(name.to_string(), value.expose().to_string());
        self.write(&map)
    }

    fn delete(&self, name: &str) -> Result<()> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let _across = self.lock_across_processes()?;
        let mut map = self.read()?;
        if map.remove(name).is_some() {
            self.write(&map)?;
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("insecure plaintext file {}", self.path.display())
    }
}

/// Waits for the exclusive OS lock on `path` (created if missing), held until the returned file
/// is dropped; the OS releases it if the process dies, so a crash never leaves it stuck.
pub(crate) fn lock_file(path: &Path) -> Result<std::fs::File> {
    let io = |e: std::io::Error| Error::Secrets(format!("lock {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(io)?;
    file.lock().map_err(io)?;
    Ok(file)
}

/// Secrets that vanish with the process. For tests.
#[derive(Default)]
pub struct MemoryStore {
    map: Mutex<HashMap<String, Secret>>,
}

impl SecretStore for MemoryStore {
    fn get(&self, name: &str) -> Result<Option<Secret>> {
        Ok(self
            .map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned())
    }

    fn set(&self, name: &str, value: &Secret) -> Result<()> {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), value.clone());
        Ok(())
    }

    fn delete(&self, name: &str) -> Result<()> {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        Ok(())
    }

    fn describe(&self) -> String {
        "memory".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_file_round_trips_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let store = InsecureFileStore::in_dir(dir.path());
        assert_eq!(store.get("tokens").unwrap(), None);
        store.set("tokens", &Secret::new("abc")).unwrap();
        store.set("other", &Secret::new("def")).unwrap();
        let reopened = InsecureFileStore::in_dir(dir.path());
        assert_eq!(reopened.get("tokens").unwrap().unwrap().expose(), "abc");
        reopened.delete("tokens").unwrap();
        assert_eq!(store.get("tokens").unwrap(), None);
        assert_eq!(store.get("other").unwrap().unwrap().expose(), "def");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(InsecureFileStore::FILE_NAME))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "readable by others: {mode:o}");
        }
    }

    #[test]
    fn writers_in_parallel_lose_nothing_and_leave_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        // Separate stores on one file stand for separate processes: only the OS lock and the
        // unique temporary names keep them apart.
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let path = dir.path().to_path_buf();
                std::thread::spawn(move || {
                    let store = InsecureFileStore::in_dir(&path);
                    for i in 0..20 {
                        store
                            .set(&format!("t{t}-{i}"), &Secret::new(format!("v{i}")))
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let store = InsecureFileStore::in_dir(dir.path());
        for t in 0..8 {
            for i in 0..20 {
                assert!(
                    store.get(&format!("t{t}-{i}")).unwrap().is_some(),
                    "t{t}-{i} lost"
                );
            }
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_an_empty_store() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(InsecureFileStore::FILE_NAME), b"{not json").unwrap();
        let store = InsecureFileStore::in_dir(dir.path());
        assert!(store.get("tokens").is_err());
    }
}
