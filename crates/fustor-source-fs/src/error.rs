//! Driver errors.
//!
//! Per-entry problems (vanished files, unreadable directories) are never errors: they are logged
//! and skipped where they happen (`agent-runtime.md` §13). What reaches this type is either a
//! configuration mistake or a condition that must stop the driver.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("invalid file_pattern {pattern:?}: {source}")]
    Pattern {
        pattern: String,
        #[source]
        source: globset::Error,
    },
    /// Fatal by design (§10.7): the watch set would have to drop coverage of a directory that was
    /// active within `min_monitoring_window_days`, and silently losing recent changes is worse
    /// than stopping.
    #[error(
        "watch window violation: dropping the watch on {path:?} (activity {age_days:.3} days ago) \
         would break the {window_days} day monitoring window"
    )]
    WatchWindowViolation {
        path: PathBuf,
        age_days: f64,
        window_days: f64,
    },
    #[error("inotify: {0}")]
    Inotify(#[source] io::Error),
    #[error("spawning a driver thread: {0}")]
    Thread(#[source] io::Error),
}
