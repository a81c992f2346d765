//! Durable views (issue 11): each persisted view keeps a snapshot and a write-ahead log under
//! its data directory, so a restart serves the last content at once instead of waiting for
//! every agent to rescan.
//!
//! - [`wal`]: the log and its group commit; [`record`]: what is logged and how it is replayed;
//!   [`events`]: the compact form of a batch's events;
//! - [`store`]: one view's files, restore, snapshots and restore status;
//! - [`files`]: atomic replace, directory sync, quarantine of damaged files.
//!
//! The pipe consumer logs every write it applies to a persisted view (batches, control
//! operations), under the view's gate, before applying it; the ingest answer
//! waits until the record is durable. A snapshot takes the gate exclusively, so it sees a
//! state at a record boundary, and records the last sequence number it contains.

pub mod events;
pub mod files;
pub mod record;
pub mod resume;
pub mod store;
pub mod wal;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fustor_core::Now;
use fustor_core::config::ViewConfig;
use fustor_core::view::ViewDriver;

pub use store::{RestoreReport, RestoreStatus, StoreConfig, ViewStore};

/// A snapshot is also taken once the log outgrows [`log_limit`], whatever the interval: a
/// restart replays the log through the ordinary apply path (about 0.9M rows/s, 44–57 B/row)
/// but loads a snapshot in bulk about five times faster, so an unbounded log (a bulk load
/// between two intervals) would make the restart after a crash several times slower than
/// after a clean stop.
pub const MAX_LOG_BYTES: u64 = 512 << 20;
/// Below this the log is never the reason for a snapshot (small views, the first batches).
pub const MIN_LOG_BYTES: u64 = 64 << 20;

/// How much log a view may hold before a snapshot: a quarter of its last snapshot, within
/// [`MIN_LOG_BYTES`]..=[`MAX_LOG_BYTES`]. Replaying that much costs about as much as loading the
/// snapshot. While a view grows by bulk loads, at most four snapshots are taken below
/// 4 × `MIN_LOG_BYTES` and each later one is a quarter larger than the one before, so their
/// total stays a small multiple of the last.
pub fn log_limit(snapshot_bytes: u64) -> u64 {
    (snapshot_bytes / 4).clamp(MIN_LOG_BYTES, MAX_LOG_BYTES)
}

/// Persisted views by id.
pub type Stores = HashMap<String, Arc<ViewStore>>;

/// `$FUSTOR_HOME/fusion-data`, next to the configuration directory.
pub fn default_root(config_dir: &Path) -> PathBuf {
    config_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
        .join("fusion-data")
}

/// The directory of one view: `persist_dir`, else `<root>/<view id>` (the id escaped so that
/// it is one path component).
pub fn view_dir(root: &Path, id: &str, cfg: &ViewConfig) -> PathBuf {
    match &cfg.persist_dir {
        Some(d) => PathBuf::from(d),
        None => root.join(escape_component(id)),
    }
}

fn escape_component(id: &str) -> String {
    let mut s = String::with_capacity(id.len());
    for c in id.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') && !(s.is_empty() && c == '.')
        {
            s.push(c);
        } else {
            s.push_str(&format!("%{:02X}", c as u32));
        }
    }
    s
}

/// Stores for the persisted views among `views` (not opened yet).
pub fn build<'a>(
    root: &Path,
    views: impl Iterator<Item = (&'a String, &'a ViewConfig, &'a Arc<dyn ViewDriver>)>,
) -> Stores {
    let mut out = Stores::new();
    for (id, cfg, driver) in views {
        if !cfg.persisted() {
            continue;
        }
        if driver.persistence().is_none() {
            if cfg.persist == Some(true) {
                tracing::warn!(view = %id, driver = %cfg.driver, "persist: true, but this view driver cannot be persisted");
            }
            continue;
        }
        let sc = StoreConfig {
            dir: view_dir(root, id, cfg),
            snapshot_interval: fustor_core::time::duration_from_secs(
                cfg.persist_snapshot_interval_seconds,
            ),
            fsync: cfg.persist_fsync,
        };
        out.insert(id.clone(), Arc::new(ViewStore::new(id, driver.clone(), sc)));
    }
    out
}

/// Restores every store (before the ports open). A store whose directory cannot be used is
/// logged and stays closed: its view runs in memory only.
pub fn open_all(stores: &Stores) -> Vec<(String, RestoreReport)> {
    let now = Now::system();
    let mut out = Vec::new();
    for (id, s) in stores {
        match s.open(now) {
            Ok(r) => out.push((id.clone(), r)),
            Err(e) => tracing::error!(
                view = %id,
                dir = %s.dir().display().to_string().escape_debug(),
                error = %e,
                "view data directory unusable: the view is not persisted"
            ),
        }
    }
    out
}

/// Takes the snapshots that are due (periodic task, on the blocking pool).
pub fn snapshot_due(stores: &Stores) {
    for s in stores.values() {
        if s.due()
            && let Err(e) = s.snapshot(false)
        {
            tracing::error!(view = %s.view_id, error = %e, "view snapshot failed; the log is kept");
        }
    }
}

/// Final snapshots and closed logs (shutdown, reload).
pub fn close_all(stores: &Stores, snapshot: bool) {
    for s in stores.values() {
        s.close(snapshot);
    }
}

/// How often the scheduler looks for due snapshots.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);

#[cfg(test)]
mod limit_tests {
    use super::{MAX_LOG_BYTES, MIN_LOG_BYTES, log_limit};

    #[test]
    fn the_log_may_hold_a_quarter_of_the_snapshot_within_bounds() {
        assert_eq!(log_limit(0), MIN_LOG_BYTES);
        assert_eq!(log_limit(100 << 20), MIN_LOG_BYTES);
        // 10M files: a 440 MB snapshot lets 110 MB of log (≈2M rows) accumulate.
        assert_eq!(log_limit(440_000_000), 110_000_000);
        assert_eq!(log_limit(u64::MAX), MAX_LOG_BYTES);
    }
}
