//! The binlog position a mysql source has delivered up to, kept in
//! `$FUSTOR_HOME/agent-state/mysql-<id>.json` so an agent restart resumes the change stream
//! instead of taking a new snapshot. Written by atomic replace (temp file, fsync, rename): a
//! crash leaves the old or the new position, never a torn one.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

static STATE_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Called once by the agent with `$FUSTOR_HOME/agent-state`.
pub fn set_state_dir(dir: PathBuf) {
    let _ = STATE_DIR.set(dir);
}

pub fn state_dir() -> Option<&'static Path> {
    STATE_DIR.get().map(PathBuf::as_path)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinlogPos {
    pub file: String,
    pub pos: u64,
    /// Written by a clean stop, which closed the session: Fusion resets a view when its last
    /// session ends (`consistency.md` §10 V2), so the next start must snapshot again. A
    /// position without it was left by a crash, whose session outlives the agent by the
    /// session timeout and keeps the view.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub clean: bool,
}

/// The file of one source (by its signature, hashed: names stay short and plain).
pub fn file_for(signature: &str) -> Option<PathBuf> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in signature.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    state_dir().map(|d| d.join(format!("mysql-{h:016x}.json")))
}

pub fn load(path: &Path) -> Option<BinlogPos> {
    let text = std::fs::read_to_string(path).ok()?;
    match serde_json::from_str(&text) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!(file = ?path, error = %e, "unreadable binlog position; a snapshot follows");
            None
        }
    }
}

pub fn save(path: &Path, pos: &BinlogPos) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec(pos).map_err(std::io::Error::other)?)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}
