//! The watch set bound to an inotify instance: keeps kernel watches, the LRU set and the
//! descriptor ↔ path maps consistent (`agent-runtime.md` §10.7).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use inotify::{WatchDescriptor, WatchMask, Watches};
use rustix::io::Errno;

use crate::error::FsError;
use crate::watch::{Scheduled, WatchSet};

/// The events of the §10.6 table. `ONLYDIR` makes a race where a directory was replaced by a
/// file fail instead of watching the file; `EXCL_UNLINK` stops events for unlinked children.
pub(crate) fn watch_mask() -> WatchMask {
    WatchMask::CREATE
        | WatchMask::MODIFY
        | WatchMask::ATTRIB
        | WatchMask::CLOSE_WRITE
        | WatchMask::DELETE
        | WatchMask::MOVED_FROM
        | WatchMask::MOVED_TO
        | WatchMask::ONLYDIR
        | WatchMask::EXCL_UNLINK
}

/// Result of scheduling a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WatchOutcome {
    /// A kernel watch was added.
    Added,
    /// It was watched already (its activity time may have been raised).
    Present,
    /// Not watched: the set is full of more recent directories, or the path cannot be watched.
    Skipped,
    /// Not watched because the kernel ran out of watches: changes below it will be missed, so
    /// the caller requests a rescan.
    NoSpace,
}

pub(crate) struct WatchManager {
    root: PathBuf,
    set: WatchSet,
    watches: Watches,
    by_wd: HashMap<i32, PathBuf>,
    by_path: HashMap<PathBuf, WatchDescriptor>,
}

impl WatchManager {
    pub fn new(root: PathBuf, watches: Watches, limit: usize, window_days: f64) -> Self {
        WatchManager {
            root,
            set: WatchSet::new(limit, window_days),
            watches,
            by_wd: HashMap::new(),
            by_path: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn limit(&self) -> usize {
        self.set.limit()
    }

    pub fn is_watched(&self, path: &Path) -> bool {
        self.by_path.contains_key(path)
    }

    pub fn dir_of(&self, wd: i32) -> Option<&PathBuf> {
        self.by_wd.get(&wd)
    }

    /// Records activity of `dir` at `ts` and makes sure it is watched if it deserves it.
    /// Errors only with the fatal window violation.
    pub fn schedule(&mut self, dir: &Path, ts: f64, now: f64) -> Result<WatchOutcome, FsError> {
        if !dir.starts_with(&self.root) {
            return Ok(WatchOutcome::Skipped);
        }
        let mut no_space = false;
        for _attempt in 0..4 {
            let evicted = match self.set.schedule(dir, ts, now)? {
                Scheduled::Raised | Scheduled::Unchanged => return Ok(WatchOutcome::Present),
                Scheduled::Skipped if no_space => return Ok(WatchOutcome::NoSpace),
                Scheduled::Skipped => return Ok(WatchOutcome::Skipped),
                Scheduled::Added { evicted } => evicted,
            };
            if !evicted.is_empty() {
                tracing::info!(count = evicted.len(), first = ?evicted[0], "evicting cold watches");
            }
            for p in &evicted {
                self.drop_kernel_watch(p);
            }
            // The root may be a symlink (`/data -> /mnt/nfs`); nothing below it is followed.
            let mask = if dir == self.root {
                watch_mask()
            } else {
                watch_mask() | WatchMask::DONT_FOLLOW
            };
            match self.watches.add(dir, mask) {
                Ok(wd) => {
                    self.record(dir, wd);
                    return Ok(WatchOutcome::Added);
                }
                Err(e) => {
                    self.set.remove(dir);
                    let errno = e.raw_os_error().map(Errno::from_raw_os_error);
                    if errno == Some(Errno::NOSPC) {
                        let age_days = (now - ts) / 86_400.0;
                        if age_days < self.set.window_days() {
                            return Err(FsError::WatchWindowViolation {
                                path: dir.to_path_buf(),
                                age_days,
                                window_days: self.set.window_days(),
                            });
                        }
                        let lowered = self.set.len();
                        tracing::warn!(dir = ?dir, limit = lowered,
                            "inotify watch limit reached; lowering the watch limit");
                        self.set.set_limit(lowered);
                        no_space = true;
                        continue;
                    }
                    let expected = [
                        Errno::NOENT,
                        Errno::NOTDIR,
                        Errno::ACCESS,
                        Errno::INVAL,
                        Errno::LOOP,
                    ];
                    let vanished = errno.is_some_and(|e| expected.contains(&e));
                    if vanished {
                        tracing::debug!(dir = ?dir, error = %e, "cannot watch directory; skipped");
                    } else {
                        tracing::warn!(dir = ?dir, error = %e, "cannot watch directory; skipped");
                    }
                    return Ok(WatchOutcome::Skipped);
                }
            }
        }
        Ok(if no_space {
            WatchOutcome::NoSpace
        } else {
            WatchOutcome::Skipped
        })
    }

    fn record(&mut self, dir: &Path, wd: WatchDescriptor) {
        let id = wd.get_watch_descriptor_id();
        // The kernel hands out one descriptor per inode: if this inode was known under another
        // path (it was moved and we have not seen the event yet), the old path is stale.
        if let Some(old) = self.by_wd.insert(id, dir.to_path_buf())
            && old != dir
        {
            self.by_path.remove(&old);
            self.set.remove(&old);
        }
        self.by_path.insert(dir.to_path_buf(), wd);
    }

    fn drop_kernel_watch(&mut self, path: &Path) {
        if let Some(wd) = self.by_path.remove(path) {
            self.by_wd.remove(&wd.get_watch_descriptor_id());
            // EINVAL when the kernel already dropped it (directory deleted): nothing to do.
            let _ = self.watches.remove(wd);
        }
    }

    /// Stops watching `dir` and everything below it.
    pub fn unwatch_subtree(&mut self, dir: &Path) {
        for p in self.set.remove_subtree(dir) {
            self.drop_kernel_watch(&p);
        }
    }

    /// `IN_IGNORED`: the kernel dropped the watch. Returns the path it had.
    pub fn forget(&mut self, wd: i32) -> Option<PathBuf> {
        let path = self.by_wd.remove(&wd)?;
        if self
            .by_path
            .get(&path)
            .is_some_and(|w| w.get_watch_descriptor_id() == wd)
        {
            self.by_path.remove(&path);
            self.set.remove(&path);
        }
        Some(path)
    }
}
