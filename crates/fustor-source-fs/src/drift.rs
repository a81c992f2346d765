//! Agent-side drift compensation (`consistency.md` §15) and the pre-scan that measures it
//! (`agent-runtime.md` §10.3).
//!
//! NFS mtimes are stamped by the server's clock, events by the agent's. The pre-scan finds the
//! "present" of the storage clock as the P99 of per-directory recursive mtimes (robust against a
//! few files with future timestamps) and expresses it as an offset to the agent clock.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use rustix::fs::FileType;
use rustix::io::Errno;

use crate::stat::{Meta, epoch_now};
use crate::walk::{Children, Flow, OpenDir, Task, Visitor, walk};

/// Offset (seconds) from the agent clock to the storage clock; 0 until a pre-scan ran.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Drift {
    pub seconds: f64,
}

impl Drift {
    pub fn new(seconds: f64) -> Self {
        Drift { seconds }
    }

    /// Event index for an agent-clock instant: `int((epoch + drift) × 1000)`.
    pub fn index_at(self, epoch: f64) -> i64 {
        ((epoch + self.seconds) * 1000.0) as i64
    }

    pub fn index_now(self) -> i64 {
        self.index_at(epoch_now())
    }

    /// A storage mtime expressed on the agent clock (watch priorities, §10.7).
    pub fn normalise(self, mtime: f64) -> f64 {
        mtime - self.seconds
    }
}

/// `max(0, floor(N × 0.99) − 1)` in IEEE double arithmetic, exactly as the reference computes it.
pub fn p99_index(n: usize) -> usize {
    let i = (n as f64 * 0.99).floor() as i64 - 1;
    usize::try_from(i).unwrap_or(0)
}

/// `drift = sorted[p99_index(N)] − agent_epoch`; zero without samples.
pub fn compute_drift(values: &mut [f64], agent_epoch: f64) -> Drift {
    if values.is_empty() {
        return Drift::default();
    }
    values.sort_by(f64::total_cmp);
    let stable = values[p99_index(values.len()).min(values.len() - 1)];
    Drift::new(stable - agent_epoch)
}

/// Result of the pre-scan.
#[derive(Debug, Clone, Default)]
pub struct PreScan {
    pub drift: Drift,
    /// Every directory with its recursive max mtime (storage clock), most recent first: the
    /// order in which watches are granted.
    pub dirs: Vec<(PathBuf, f64)>,
    /// Directories that could not be read.
    pub errors: usize,
}

/// `(id, parent id, directory, own max mtime)`.
type DirSample = (usize, Option<usize>, PathBuf, f64);

struct PreVisitor {
    out: Mutex<Vec<DirSample>>,
    errors: AtomicUsize,
}

impl Visitor for PreVisitor {
    type Local = Vec<DirSample>;

    fn local(&self) -> Self::Local {
        Vec::new()
    }

    fn visit(
        &self,
        local: &mut Self::Local,
        task: &Task,
        dir: &OpenDir,
        ch: &mut Children,
    ) -> Flow {
        let mut m = dir.meta.mtime;
        for e in &dir.entries {
            if e.kind == FileType::Directory {
                ch.push(task, e.bytes());
                continue;
            }
            // No symlink following: a link's own mtime is what changed in this directory.
            match dir.stat_entry(&e.name, false) {
                Ok(st) => {
                    let meta = Meta::from_stat(&st);
                    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                        ch.push(task, e.bytes());
                    } else {
                        m = m.max(meta.mtime);
                    }
                }
                Err(e) if crate::stat::is_vanished(e) => {}
                Err(_) => {
                    self.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        local.push((task.id, task.parent, task.abs.clone(), m));
        ControlFlow::Continue(())
    }

    fn open_failed(&self, _: &mut Self::Local, _: &Task, err: Errno) -> Flow {
        if !crate::stat::is_vanished(err) {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        ControlFlow::Continue(())
    }

    fn idle(&self, local: &mut Self::Local) -> Flow {
        self.out.lock().append(local);
        ControlFlow::Continue(())
    }
}

/// Walks the whole tree once (no symlink following) and computes recursive mtimes and drift.
pub fn prescan(root: &Path, workers: usize) -> PreScan {
    let v = PreVisitor {
        out: Mutex::new(Vec::new()),
        errors: AtomicUsize::new(0),
    };
    let n = walk(root.to_path_buf(), "/".to_string(), workers, &v);
    let mut rows = v.out.into_inner();
    let mut rec = vec![f64::NEG_INFINITY; n];
    let mut parent = vec![None; n];
    for (id, p, _, m) in &rows {
        if let Some(slot) = rec.get_mut(*id) {
            *slot = *m;
            parent[*id] = *p;
        }
    }
    // Children have larger ids than their parents: one reverse pass folds the maxima upwards.
    for id in (0..n).rev() {
        let m = rec[id];
        if let Some(p) = parent[id]
            && m.is_finite()
            && let Some(pm) = rec.get_mut(p)
        {
            *pm = pm.max(m);
        }
    }
    for row in &mut rows {
        if let Some(m) = rec.get(row.0) {
            row.3 = *m;
        }
    }
    let mut values: Vec<f64> = rows.iter().map(|r| r.3).collect();
    let drift = compute_drift(&mut values, epoch_now());
    let mut dirs: Vec<(PathBuf, f64)> = rows.into_iter().map(|(_, _, p, m)| (p, m)).collect();
    dirs.sort_by(|a, b| b.1.total_cmp(&a.1));
    let errors = v.errors.into_inner();
    tracing::info!(root = ?root, dirs = dirs.len(), errors, drift = drift.seconds, "pre-scan done");
    PreScan {
        drift,
        dirs,
        errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{self, File, FileTimes};
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn p99_index_rule() {
        assert_eq!(p99_index(0), 0);
        assert_eq!(p99_index(1), 0);
        assert_eq!(p99_index(2), 0);
        assert_eq!(p99_index(11), 9);
        assert_eq!(p99_index(100), 98);
        assert_eq!(p99_index(1000), 989);
    }

    #[test]
    fn drift_uses_the_p99_value() {
        let mut v: Vec<f64> = (0..100).rev().map(|i| 1000.0 + i as f64).collect();
        let d = compute_drift(&mut v, 2000.0);
        assert_eq!(d.seconds, 1098.0 - 2000.0);
        assert_eq!(compute_drift(&mut [], 5.0), Drift::default());
        assert_eq!(Drift::new(-0.5).index_at(10.0), 9500);
        assert_eq!(Drift::new(2.0).normalise(10.0), 8.0);
    }

    fn set_mtime(p: &Path, secs: u64) {
        let t = UNIX_EPOCH + Duration::from_secs(secs);
        File::open(p)
            .unwrap()
            .set_times(FileTimes::new().set_modified(t))
            .unwrap();
    }

    #[test]
    fn recursive_mtimes_fold_bottom_up() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir_all(root.join("a/deep")).unwrap();
        fs::create_dir_all(root.join("b")).unwrap();
        fs::write(root.join("a/deep/f"), b"x").unwrap();
        set_mtime(&root.join("a/deep/f"), 5000);
        for d in ["a/deep", "a", "b", ""] {
            set_mtime(&root.join(d), 1000);
        }
        let pre = prescan(root, 2);
        assert_eq!(pre.errors, 0);
        let get = |rel: &str| {
            pre.dirs
                .iter()
                .find(|(p, _)| *p == root.join(rel))
                .unwrap()
                .1
        };
        assert_eq!(get("a/deep"), 5000.0);
        assert_eq!(get("a"), 5000.0);
        assert_eq!(get(""), 5000.0);
        assert_eq!(get("b"), 1000.0);
        assert_eq!(pre.dirs.len(), 4);
        assert_eq!(pre.dirs.last().unwrap().1, 1000.0);
        // N = 4 ⇒ idx 2 of [1000, 5000, 5000, 5000].
        let want = 5000.0 - epoch_now();
        assert!((pre.drift.seconds - want).abs() < 5.0);
    }
}
