//! One store per WHOOP member inside a connection's data directory.
//!
//! The data directory holds the store of the member in use (`vitaltrends.db`, as always). When
//! the person switches to another WHOOP account, the current member's store is set aside under
//! `members/<user id>/` and the other member's store, if one was set aside before, comes back.
//! Records of two members are therefore never in one file, and nothing is deleted by a switch.
//!
//! The engine using the directory must be closed while its files move.

use std::io;
use std::path::{Path, PathBuf};

/// The files that make up a store: the database and SQLite's write-ahead log and index.
const STORE_FILES: [&str; 3] = ["vitaltrends.db", "vitaltrends.db-wal", "vitaltrends.db-shm"];

/// Where a member's store waits while another member's is in use.
pub fn set_aside_dir(data_dir: &Path, user_id: i64) -> PathBuf {
    data_dir.join("members").join(user_id.to_string())
}

/// Moves the store in use to `members/<user_id>/`. Refuses if a store is already set aside for
/// that member (it would be overwritten); does nothing if there is no store.
pub fn set_aside(data_dir: &Path, user_id: i64) -> io::Result<()> {
    let target = set_aside_dir(data_dir, user_id);
    if target.join(STORE_FILES[0]).exists() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} already holds a store for this member", target.display()),
        ));
    }
    std::fs::create_dir_all(&target)?;
    move_store(data_dir, &target)
}

/// Brings `user_id`'s set-aside store back into use, if there is one. The data directory must
/// hold no store (set the current one aside first). Returns whether a store came back.
pub fn bring_back(data_dir: &Path, user_id: i64) -> io::Result<bool> {
    let source = set_aside_dir(data_dir, user_id);
    if !source.join(STORE_FILES[0]).exists() {
        return Ok(false);
    }
    if data_dir.join(STORE_FILES[0]).exists() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} still holds a store in use", data_dir.display()),
        ));
    }
    move_store(&source, data_dir)?;
    // Empty now; a leftover directory would only confuse someone looking at the folder.
    let _ = std::fs::remove_dir(&source);
    Ok(true)
}

/// The members whose stores are set aside, by user id.
pub fn set_aside_members(data_dir: &Path) -> Vec<i64> {
    let Ok(entries) = std::fs::read_dir(data_dir.join("members")) else {
        return Vec::new();
    };
    let mut ids: Vec<i64> = entries
        .flatten()
        .filter(|e| e.path().join(STORE_FILES[0]).exists())
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    ids.sort_unstable();
    ids
}

/// Moves the database first and its companions after: a crash in between leaves a database
/// whose log SQLite has already folded in (the engine closed it cleanly), never a log without
/// its database.
fn move_store(from: &Path, to: &Path) -> io::Result<()> {
    for name in STORE_FILES {
        match std::fs::rename(from.join(name), to.join(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn a_member_set_aside_comes_back_and_the_other_goes_aside() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path();
        write(data, "vitaltrends.db", "alex");
        write(data, "vitaltrends.db-wal", "alex-log");

        set_aside(data, 1).unwrap();
        assert!(!data.join("vitaltrends.db").exists());
        assert!(
            !bring_back(data, 2).unwrap(),
            "nothing set aside for member 2"
        );
        write(data, "vitaltrends.db", "riley");
        assert_eq!(set_aside_members(data), vec![1]);

        set_aside(data, 2).unwrap();
        assert!(bring_back(data, 1).unwrap());
        assert_eq!(
            std::fs::read_to_string(data.join("vitaltrends.db")).unwrap(),
            "alex"
        );
        assert_eq!(
            std::fs::read_to_string(data.join("vitaltrends.db-wal")).unwrap(),
            "alex-log"
        );
        assert_eq!(set_aside_members(data), vec![2]);
    }

    #[test]
    fn nothing_is_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path();
        write(data, "vitaltrends.db", "alex");
        write(&set_aside_dir(data, 1), "vitaltrends.db", "older alex");
        assert!(set_aside(data, 1).is_err());
        assert_eq!(
            std::fs::read_to_string(data.join("vitaltrends.db")).unwrap(),
            "alex"
        );
        assert!(bring_back(data, 1).is_err(), "a store is in use");
    }
}
