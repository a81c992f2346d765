//! What a pipe keeps across its agent's restarts (issue 11): the audit's directory mtimes, so
//! that the first audit after a restart lists only the directories that changed, and the bus
//! position it had reached (reported in the log; a restarted agent has a new bus and sends a
//! full snapshot anyway).
//!
//! Saved after every audit pass that updated the cache and when the pipe stops, in
//! `$FUSTOR_HOME/agent-state/pipe-<id>.state` ([`crate::statefile`]).

use std::path::{Path, PathBuf};

use fustor_source_fs::MtimeCache;
use serde::{Deserialize, Serialize};

use crate::statefile::StateFile;

const KIND: &str = "pipe";
const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedPipe {
    /// The source the cache describes: a pipe moved to another tree starts without it.
    pub source_uri: String,
    pub bus_epoch: String,
    pub committed_seq: u64,
    pub saved_at: f64,
    /// Directory (any bytes, in the lossless escaped form) → mtime seen by the last audit.
    pub mtimes: Vec<(String, f64)>,
}

pub fn file(state_dir: &Path, pipe_id: &str) -> StateFile {
    StateFile::new(state_dir, &format!("pipe-{pipe_id}"), KIND, VERSION)
}

impl SavedPipe {
    pub fn new(source_uri: &str, bus_epoch: &str, committed_seq: u64, cache: &MtimeCache) -> Self {
        use std::os::unix::ffi::OsStrExt;
        SavedPipe {
            source_uri: source_uri.to_string(),
            bus_epoch: bus_epoch.to_string(),
            committed_seq,
            saved_at: fustor_core::Now::system().epoch,
            mtimes: cache
                .iter()
                .map(|(p, m)| {
                    (
                        fustor_core::lossless::escape(p.as_os_str().as_bytes()).into_owned(),
                        *m,
                    )
                })
                .collect(),
        }
    }

    pub fn cache(&self) -> MtimeCache {
        use std::os::unix::ffi::OsStrExt;
        self.mtimes
            .iter()
            .map(|(p, m)| {
                let bytes = fustor_core::lossless::unescape(p);
                (PathBuf::from(std::ffi::OsStr::from_bytes(&bytes)), *m)
            })
            .collect()
    }
}

/// The saved cache of `pipe_id` if it belongs to `source_uri` (blocking).
pub fn load(state_dir: &Path, pipe_id: &str, source_uri: &str) -> Option<(MtimeCache, SavedPipe)> {
    let saved: SavedPipe = file(state_dir, pipe_id).load_or_warn()?;
    if saved.source_uri != source_uri {
        tracing::info!(pipe = %pipe_id, "saved pipe state is for another source; ignored");
        return None;
    }
    Some((saved.cache(), saved))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_round_trips_any_name_bytes() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let mut cache = MtimeCache::new();
        cache.insert(PathBuf::from("/r/a"), 1.5);
        cache.insert(
            PathBuf::from(std::ffi::OsStr::from_bytes(b"/r/caf\xe9")),
            2.25,
        );
        let saved = SavedPipe::new("/r", "e1", 7, &cache);
        file(dir.path(), "p/1").save(&saved).unwrap();
        let (back, meta) = load(dir.path(), "p/1", "/r").unwrap();
        assert_eq!(back, cache);
        assert_eq!((meta.bus_epoch.as_str(), meta.committed_seq), ("e1", 7));
        assert!(load(dir.path(), "p/1", "/elsewhere").is_none());
    }
}
