//! Sentinel checks (`agent-runtime.md` §6.3): Fusion asks for the current state of suspect
//! files and the agent answers with a fresh `stat`.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use fustor_core::lossless::unescape;
use serde::{Deserialize, Serialize};

use crate::scan::Scanner;
use crate::stat::stat_path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SentinelStatus {
    Exists,
    Missing,
}

/// One entry of `{"type":"suspect_update","updates":[...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentinelUpdate {
    /// The path as Fusion sent it.
    pub path: String,
    /// `0.0` for a missing file.
    pub mtime: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    pub status: SentinelStatus,
}

/// View path → agent path; `..` is refused rather than resolved (it could leave the root).
fn under_root(root: &Path, view_path: &str) -> Option<PathBuf> {
    let raw = unescape(view_path);
    let start = raw.iter().position(|&b| b != b'/').unwrap_or(raw.len());
    let rel = Path::new(OsStr::from_bytes(&raw[start..]));
    if rel
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return None;
    }
    Some(root.join(rel))
}

fn check(root: &Path, view_path: &str) -> Option<SentinelUpdate> {
    let abs = under_root(root, view_path)?;
    match stat_path(&abs) {
        Ok(Some(m)) => Some(SentinelUpdate {
            path: view_path.to_string(),
            mtime: m.mtime,
            size: Some(m.size),
            status: SentinelStatus::Exists,
        }),
        Ok(None) => Some(SentinelUpdate {
            path: view_path.to_string(),
            mtime: 0.0,
            size: None,
            status: SentinelStatus::Missing,
        }),
        Err(e) => {
            tracing::debug!(path = ?abs, error = %e, "sentinel: cannot stat; omitted");
            None
        }
    }
}

impl Scanner {
    /// Stats each path in parallel (one `stat` each, so a slow NFS server is the bottleneck,
    /// not the CPU). Paths that cannot be judged are omitted; order follows the input.
    pub fn sentinel(&self, paths: &[String]) -> Vec<SentinelUpdate> {
        let workers = self.workers.min(paths.len()).max(1);
        if workers == 1 {
            return paths.iter().filter_map(|p| check(&self.root, p)).collect();
        }
        let chunk = paths.len().div_ceil(workers);
        let root = &self.root;
        std::thread::scope(|s| {
            let handles: Vec<_> = paths
                .chunks(chunk)
                .map(|part| {
                    s.spawn(move || {
                        part.iter()
                            .filter_map(|p| check(root, p))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::FsDriverParams;

    #[test]
    fn exists_missing_and_refused() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("d")).unwrap();
        std::fs::write(tmp.path().join("d/f"), b"abc").unwrap();
        let s = Scanner::new(tmp.path(), &FsDriverParams::default()).unwrap();
        let paths: Vec<String> = ["/d/f", "/d/none", "/../etc/passwd", "/d/f/x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let got = s.sentinel(&paths);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].status, SentinelStatus::Exists);
        assert_eq!(got[0].size, Some(3));
        assert!(got[0].mtime > 0.0);
        assert_eq!(
            got[1],
            SentinelUpdate {
                path: "/d/none".into(),
                mtime: 0.0,
                size: None,
                status: SentinelStatus::Missing
            }
        );
        // ENOTDIR counts as missing.
        assert_eq!(got[2].path, "/d/f/x");
        assert_eq!(got[2].status, SentinelStatus::Missing);
        let json = serde_json::to_string(&got[1]).unwrap();
        assert_eq!(json, r#"{"path":"/d/none","mtime":0.0,"status":"missing"}"#);
    }
}
