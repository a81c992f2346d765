//! Audit scan (`agent-runtime.md` §10.5) with the directory mtime cache (§6.2).
//!
//! Fusion deletes every child of a non-skipped audited directory that the audit did not report
//! (`consistency.md` §8 A3). A partial listing must therefore never be presented as a full one:
//! a directory whose listing failed midway, or which exists but cannot be opened, is reported as
//! `audit_skipped` (which protects its children) and gets no cache update, so the next audit
//! lists it again.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use fustor_core::{Event, EventType, FsRow, MessageSource};
use rustix::io::Errno;

use crate::batch::{BATCH_ROWS, fs_event};
use crate::pattern::FilePattern;
use crate::scan::Scanner;
use crate::stat::{epoch_now, join_rel, stat_path};
use crate::walk::{Children, Flow, Kind, OpenDir, Task, Visitor, walk};

/// `{absolute directory path: mtime}`, owned by the caller (process memory only).
pub type MtimeCache = HashMap<PathBuf, f64>;

/// Tolerance under which a directory counts as unchanged.
pub const SILENT_EPSILON: f64 = 1e-6;

/// Items in flight between audit workers and the consumer.
const ITEMS_IN_FLIGHT: usize = 256;

/// One audit output: an event and/or the cache entry it vouches for. The caller merges the
/// update once the event is on its way (§6.2).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditItem {
    pub event: Option<Event<FsRow>>,
    pub cache_update: Option<(PathBuf, f64)>,
}

/// The items of one audit pass; all events share the pass start index.
pub struct AuditStream {
    rx: Receiver<AuditItem>,
    index: i64,
}

impl AuditStream {
    pub fn index(&self) -> i64 {
        self.index
    }
}

impl Iterator for AuditStream {
    type Item = AuditItem;

    fn next(&mut self) -> Option<AuditItem> {
        self.rx.recv().ok()
    }
}

impl Scanner {
    /// Starts an audit pass. The cache is shared read-only with the workers; once the stream is
    /// exhausted they are gone, so `Arc::make_mut` on the caller's handle merges updates without
    /// copying.
    pub fn audit(&self, cache: Arc<MtimeCache>) -> AuditStream {
        let index = self.drift.index_now();
        let (tx, rx) = sync_channel(ITEMS_IN_FLIGHT);
        let v = AuditVisitor {
            tx,
            pattern: self.pattern.clone(),
            cache,
            index,
            timestamp: epoch_now(),
        };
        let root = self.root.clone();
        let workers = self.workers;
        let spawned = std::thread::Builder::new()
            .name("fs-audit".to_string())
            .spawn(move || {
                walk(root, "/".to_string(), workers, &v);
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot spawn the audit thread; the pass is empty");
        }
        AuditStream { rx, index }
    }
}

struct AuditVisitor {
    tx: SyncSender<AuditItem>,
    pattern: Arc<FilePattern>,
    cache: Arc<MtimeCache>,
    index: i64,
    timestamp: f64,
}

impl AuditVisitor {
    fn event(&self, rows: Vec<FsRow>) -> Event<FsRow> {
        fs_event(
            EventType::Update,
            MessageSource::Audit,
            rows,
            self.index,
            self.timestamp,
        )
    }

    fn send(&self, event: Option<Vec<FsRow>>, update: Option<(PathBuf, f64)>) -> Flow {
        let item = AuditItem {
            event: event.map(|rows| self.event(rows)),
            cache_update: update,
        };
        match self.tx.send(item) {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(()),
        }
    }
}

impl Visitor for AuditVisitor {
    type Local = ();

    fn local(&self) {}

    fn visit(&self, _: &mut (), task: &Task, dir: &OpenDir, ch: &mut Children) -> Flow {
        let mtime = dir.meta.mtime;
        let silent = self
            .cache
            .get(&task.abs)
            .is_some_and(|cached| (cached - mtime).abs() < SILENT_EPSILON);
        let mut row = dir.meta.row(task.rel.clone());
        if silent || !dir.complete {
            row.audit_skipped = Some(true);
            self.send(Some(vec![row]), None)?;
            for e in &dir.entries {
                if let Kind::Dir = dir.classify(task, e, false) {
                    ch.push(task, e.bytes());
                }
            }
            return ControlFlow::Continue(());
        }
        self.send(Some(vec![row]), None)?;
        let update = || Some((task.abs.clone(), mtime));
        let mut rows = Vec::new();
        let mut sent_update = false;
        for e in &dir.entries {
            let want = self.pattern.matches(e.bytes());
            match dir.classify(task, e, want) {
                Kind::Dir => ch.push(task, e.bytes()),
                Kind::Entry(m) => {
                    let mut r = m.row(join_rel(&task.rel, e.bytes()));
                    r.parent_path = Some(task.rel.clone());
                    r.parent_mtime = Some(mtime);
                    rows.push(r);
                    if rows.len() >= BATCH_ROWS {
                        self.send(Some(std::mem::take(&mut rows)), update())?;
                        sent_update = true;
                    }
                }
                Kind::Skip => {}
            }
        }
        if !rows.is_empty() {
            self.send(Some(rows), update())?;
        } else if !sent_update {
            self.send(None, update())?;
        }
        ControlFlow::Continue(())
    }

    fn open_failed(&self, _: &mut (), task: &Task, err: Errno) -> Flow {
        if task.parent.is_some()
            && (err == Errno::ACCESS || err == Errno::PERM)
            && let Ok(Some(m)) = stat_path(&task.abs)
        {
            let mut row = m.row(task.rel.clone());
            row.audit_skipped = Some(true);
            return self.send(Some(vec![row]), None);
        }
        ControlFlow::Continue(())
    }
}
