//! Snapshot and on-demand scans (`agent-runtime.md` §10.4, §10.8; wire §6.1).
//!
//! Workers produce row chunks into a bounded channel; the consumer re-batches them into events of
//! exactly [`BATCH_ROWS`] rows while iterating. When the consumer is slower than the file system
//! the workers block on the channel (back-pressure) instead of buffering the whole tree, and when
//! it drops the stream they stop at the next send.

use std::ffi::OsStr;
use std::ops::ControlFlow;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use fustor_core::lossless::unescape;
use fustor_core::{Event, EventType, FsRow, MessageSource};
use rustix::io::Errno;

use crate::batch::{BATCH_ROWS, fs_event};
use crate::drift::{Drift, PreScan, prescan};
use crate::error::FsError;
use crate::params::FsDriverParams;
use crate::pattern::FilePattern;
use crate::stat::{abs_of, epoch_now, join_rel, rel_path, stat_path};
use crate::walk::{Children, Flow, Kind, OpenDir, Task, Visitor, walk};
use crate::watch::WatchHook;

/// Row chunks in flight between workers and the consumer (≈1000 rows, the reference bridge).
const ROW_CHUNKS_IN_FLIGHT: usize = 10;

/// Scans one source root. Cheap to clone-share through `&self`; every scan runs on its own
/// threads.
#[derive(Clone)]
pub struct Scanner {
    pub(crate) root: PathBuf,
    pub(crate) pattern: Arc<FilePattern>,
    pub(crate) workers: usize,
    pub(crate) drift: Drift,
    pub(crate) hook: Option<Arc<dyn WatchHook>>,
}

impl std::fmt::Debug for Scanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scanner")
            .field("root", &self.root)
            .field("workers", &self.workers)
            .field("drift", &self.drift)
            .finish_non_exhaustive()
    }
}

impl Scanner {
    /// The root is made absolute lexically (symlinks in it are kept: mtime cache and watch
    /// paths are agent paths as configured).
    pub fn new(root: impl AsRef<Path>, params: &FsDriverParams) -> Result<Self, FsError> {
        let root = root.as_ref();
        let root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
        let root: PathBuf = root.components().collect();
        Ok(Scanner {
            root,
            pattern: Arc::new(FilePattern::new(&params.file_pattern)?),
            workers: params.max_scan_workers.max(1),
            drift: Drift::default(),
            hook: None,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn drift(&self) -> Drift {
        self.drift
    }

    pub fn set_drift(&mut self, drift: Drift) {
        self.drift = drift;
    }

    /// Scans report directory activity here (the realtime watch set).
    pub fn set_watch_hook(&mut self, hook: Arc<dyn WatchHook>) {
        self.hook = Some(hook);
    }

    /// Watches in use and the limit of the realtime watcher this scanner reports to.
    pub fn watch_budget(&self) -> Option<(usize, usize)> {
        self.hook.as_ref()?.budget()
    }

    /// Pre-scan (§10.3); the caller stores `drift` with [`set_drift`](Self::set_drift) and
    /// hands the directories to the realtime watcher.
    pub fn prescan(&self) -> PreScan {
        prescan(&self.root, self.workers)
    }

    /// Full snapshot; a missing or unreadable root yields an empty stream.
    pub fn snapshot(&self) -> RowStream {
        self.stream(
            self.root.clone(),
            "/".to_string(),
            MessageSource::Snapshot,
            self.workers,
        )
    }

    /// On-demand scan of a view path (`/data`) or an agent path under the root. Paths outside
    /// the root (also through `..` or symlinks) or missing on disk yield an empty stream.
    pub fn scan_path(&self, path: &str, recursive: bool) -> RowStream {
        let source = MessageSource::OnDemandJob;
        let index = self.drift.index_now();
        let Some((abs, rel)) = self.resolve(path) else {
            tracing::info!(path = ?path, "on-demand scan: path is outside the root or missing");
            return RowStream::from_rows(Vec::new(), source, index);
        };
        let meta = match stat_path(&abs) {
            Ok(Some(m)) => m,
            Ok(None) => return RowStream::from_rows(Vec::new(), source, index),
            Err(e) => {
                tracing::warn!(path = ?abs, error = %e, "on-demand scan: cannot stat");
                return RowStream::from_rows(Vec::new(), source, index);
            }
        };
        if !meta.is_dir || !recursive {
            return RowStream::from_rows(vec![meta.row(rel)], source, index);
        }
        self.stream(abs, rel, source, (self.workers / 2).max(1))
    }

    /// Maps a requested path to `(absolute path, reported path)` under the root.
    pub(crate) fn resolve(&self, path: &str) -> Option<(PathBuf, String)> {
        let raw = unescape(path);
        let p = Path::new(OsStr::from_bytes(&raw));
        let joined = if p.starts_with(&self.root) {
            p.to_path_buf()
        } else {
            abs_of(&self.root, path)
        };
        if joined.components().any(|c| c == Component::ParentDir) {
            return None;
        }
        let abs: PathBuf = joined.components().collect();
        let rel = rel_path(&self.root, &abs)?;
        // A symlink inside the root must not lead the scan outside of it.
        let real = std::fs::canonicalize(&abs).ok()?;
        let real_root = std::fs::canonicalize(&self.root).ok()?;
        if !real.starts_with(&real_root) {
            return None;
        }
        Some((abs, rel))
    }

    fn stream(
        &self,
        start: PathBuf,
        rel: String,
        source: MessageSource,
        workers: usize,
    ) -> RowStream {
        let index = self.drift.index_now();
        let (tx, rx) = sync_channel(ROW_CHUNKS_IN_FLIGHT);
        let v = SnapshotVisitor {
            tx,
            pattern: self.pattern.clone(),
            drift: self.drift,
            hook: self.hook.clone(),
        };
        let spawned = std::thread::Builder::new()
            .name("fs-scan".to_string())
            .spawn(move || {
                walk(start, rel, workers, &v);
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot spawn a scan thread; the scan is empty");
            return RowStream::from_rows(Vec::new(), source, index);
        }
        RowStream {
            rx: Some(rx),
            buf: Vec::new(),
            source,
            index,
            timestamp: epoch_now(),
        }
    }
}

/// Events of one snapshot or on-demand pass: `update` events of exactly [`BATCH_ROWS`] rows
/// (the last one smaller), all sharing the pass start index.
pub struct RowStream {
    rx: Option<Receiver<Vec<FsRow>>>,
    buf: Vec<FsRow>,
    source: MessageSource,
    index: i64,
    timestamp: f64,
}

impl RowStream {
    fn from_rows(rows: Vec<FsRow>, source: MessageSource, index: i64) -> Self {
        RowStream {
            rx: None,
            buf: rows,
            source,
            index,
            timestamp: epoch_now(),
        }
    }

    /// The index every event of this pass carries.
    pub fn index(&self) -> i64 {
        self.index
    }

    fn event(&self, rows: Vec<FsRow>) -> Event<FsRow> {
        fs_event(
            EventType::Update,
            self.source,
            rows,
            self.index,
            self.timestamp,
        )
    }
}

impl Iterator for RowStream {
    type Item = Event<FsRow>;

    fn next(&mut self) -> Option<Event<FsRow>> {
        loop {
            if self.buf.len() >= BATCH_ROWS {
                let rows: Vec<FsRow> = self.buf.drain(..BATCH_ROWS).collect();
                return Some(self.event(rows));
            }
            let received = match &self.rx {
                Some(rx) => rx.recv().ok(),
                None => None,
            };
            match received {
                Some(chunk) => self.buf.extend(chunk),
                None => {
                    self.rx = None;
                    if self.buf.is_empty() {
                        return None;
                    }
                    let rows = std::mem::take(&mut self.buf);
                    return Some(self.event(rows));
                }
            }
        }
    }
}

struct SnapshotVisitor {
    tx: SyncSender<Vec<FsRow>>,
    pattern: Arc<FilePattern>,
    drift: Drift,
    hook: Option<Arc<dyn WatchHook>>,
}

impl SnapshotVisitor {
    fn flush(&self, local: &mut Vec<FsRow>) -> Flow {
        if local.is_empty() {
            return ControlFlow::Continue(());
        }
        match self.tx.send(std::mem::take(local)) {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(()),
        }
    }
}

impl Visitor for SnapshotVisitor {
    type Local = Vec<FsRow>;

    fn local(&self) -> Vec<FsRow> {
        Vec::with_capacity(BATCH_ROWS)
    }

    fn visit(&self, local: &mut Vec<FsRow>, task: &Task, dir: &OpenDir, ch: &mut Children) -> Flow {
        local.push(dir.meta.row(task.rel.clone()));
        let mut max_mtime = dir.meta.mtime;
        for e in &dir.entries {
            let want = self.pattern.matches(e.bytes());
            match dir.classify(task, e, want) {
                Kind::Dir => ch.push(task, e.bytes()),
                Kind::Entry(m) => {
                    max_mtime = max_mtime.max(m.mtime);
                    local.push(m.row(join_rel(&task.rel, e.bytes())));
                    if local.len() >= BATCH_ROWS {
                        self.flush(local)?;
                    }
                }
                Kind::Skip => {}
            }
        }
        if let Some(h) = &self.hook {
            h.touch(&task.abs, self.drift.normalise(max_mtime));
        }
        ControlFlow::Continue(())
    }

    fn open_failed(&self, local: &mut Vec<FsRow>, task: &Task, err: Errno) -> Flow {
        // An existing but unreadable subdirectory is still reported; the root is not (§6.1).
        if task.parent.is_some()
            && (err == Errno::ACCESS || err == Errno::PERM)
            && let Ok(Some(m)) = stat_path(&task.abs)
        {
            local.push(m.row(task.rel.clone()));
        }
        ControlFlow::Continue(())
    }

    fn idle(&self, local: &mut Vec<FsRow>) -> Flow {
        self.flush(local)
    }
}
