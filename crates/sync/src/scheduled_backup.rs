//! Scheduled backups: once a day, a consistent copy of the store into a folder the person chose,
//! keeping the newest N. The copy is the store's online backup (`Store::backup_to`, `VACUUM
//! INTO`), so it runs while sync writes.
//!
//! The folder itself is the schedule's memory: scheduled copies are named
//! `vitaltrends-scheduled-<UTC time>.db`, so "when was the last one" is the newest name there and
//! pruning removes the oldest names beyond N. Nothing to keep in step in the database or the
//! settings file, a copy that was deleted by hand is simply not counted, and files of any other
//! name in the folder (the person's own backups) are never touched.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use store::Store;

use crate::Result;

/// How often a scheduled backup is made.
pub const EVERY: TimeDelta = TimeDelta::hours(24);

const PREFIX: &str = "vitaltrends-scheduled-";
const SUFFIX: &str = ".db";
const STAMP: &str = "%Y%m%dT%H%M%SZ";

/// The file name of a scheduled backup made at `at`.
pub fn file_name(at: DateTime<Utc>) -> String {
    format!("{PREFIX}{}{SUFFIX}", at.format(STAMP))
}

/// The scheduled backups in `folder`, oldest first (none when the folder is missing).
pub fn backups_in(folder: &Path) -> Vec<(DateTime<Utc>, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut found: Vec<(DateTime<Utc>, PathBuf)> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let stamp = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
            let at = NaiveDateTime::parse_from_str(stamp, STAMP).ok()?.and_utc();
            entry
                .file_type()
                .ok()?
                .is_file()
                .then(|| (at, entry.path()))
        })
        .collect();
    found.sort();
    found
}

/// When the newest scheduled backup in `folder` was made.
pub fn last_backup(folder: &Path) -> Option<DateTime<Utc>> {
    backups_in(folder).last().map(|(at, _)| *at)
}

/// Whether a scheduled backup is due at `now`: none yet, or the newest is a day old. A newest
/// one dated in the future (a clock set back) does not hold the schedule up for long: it counts
/// as made now.
pub fn is_due(folder: &Path, now: DateTime<Utc>) -> bool {
    last_backup(folder).is_none_or(|last| now - last.min(now) >= EVERY)
}

/// What `back_up_if_due` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledBackup {
    pub path: PathBuf,
    /// Older scheduled backups removed to keep `keep`.
    pub removed: Vec<PathBuf>,
}

/// Backs `store` up into `folder` if a backup is due at `now`, then removes the oldest
/// scheduled backups beyond `keep` (at least one is always kept). `None`: not due.
pub async fn back_up_if_due(
    store: &Store,
    folder: &Path,
    keep: usize,
    now: DateTime<Utc>,
) -> Result<Option<ScheduledBackup>> {
    if !is_due(folder, now) {
        return Ok(None);
    }
    let path = folder.join(file_name(now));
    store.backup_to(&path).await?;
    let removed = prune(folder, keep.max(1));
    Ok(Some(ScheduledBackup { path, removed }))
}

/// Removes the oldest scheduled backups in `folder` beyond the newest `keep`.
pub fn prune(folder: &Path, keep: usize) -> Vec<PathBuf> {
    let all = backups_in(folder);
    let extra = all.len().saturating_sub(keep);
    let mut removed = Vec::new();
    for (_, path) in all.into_iter().take(extra) {
        match std::fs::remove_file(&path) {
            Ok(()) => removed.push(path),
            Err(e) => {
                tracing::warn!(error = %e, path = %path.display(), "could not remove an old scheduled backup")
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[tokio::test]
    async fn a_backup_a_day_the_newest_n_kept_other_files_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("vitaltrends.db"))
            .await
            .unwrap();
        let folder = dir.path().join("backups");
        std::fs::create_dir_all(&folder).unwrap();
        let mine = folder.join("my-own-backup.db");
        std::fs::write(&mine, b"the person's own file").unwrap();
        assert!(is_due(&folder, at("2026-01-01T08:00:00Z")));
        assert_eq!(last_backup(&folder), None);

        let first = back_up_if_due(&store, &folder, 3, at("2026-01-01T08:00:00Z"))
            .await
            .unwrap()
            .expect("due with none yet");
        assert!(first
            .path
            .ends_with("vitaltrends-scheduled-20260101T080000Z.db"));
        assert!(store::check_backup(&first.path).await.is_ok());
        // Not again within the day.
        assert_eq!(
            back_up_if_due(&store, &folder, 3, at("2026-01-02T07:59:59Z"))
                .await
                .unwrap(),
            None
        );
        assert_eq!(last_backup(&folder), Some(at("2026-01-01T08:00:00Z")));

        // Five days on: three kept, the oldest two removed.
        let mut made = vec![first.path.clone()];
        for day in 2..=5 {
            let now = at(&format!("2026-01-0{day}T09:00:00Z"));
            let done = back_up_if_due(&store, &folder, 3, now)
                .await
                .unwrap()
                .unwrap();
            made.push(done.path);
        }
        let kept: Vec<PathBuf> = backups_in(&folder).into_iter().map(|(_, p)| p).collect();
        assert_eq!(kept, made[2..].to_vec());
        assert!(mine.exists(), "files of other names are never touched");
        assert_eq!(last_backup(&folder), Some(at("2026-01-05T09:00:00Z")));
    }

    #[test]
    fn a_missing_folder_has_no_backups_and_one_is_due() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("nowhere");
        assert!(backups_in(&folder).is_empty());
        assert!(is_due(&folder, Utc::now()));
    }
}
