//! Inotify event → fs event mapping (`agent-runtime.md` §10.6), with the improvements of
//! `pitfalls.md` item 2 (new directories are listed after their watch exists) and a move-in from
//! outside the tree reported as an upsert instead of being left to the audit.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::ops::ControlFlow;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

use fustor_core::{EventType, FsRow, MessageSource};
use inotify::EventMask;

use crate::batch::fs_event;
use crate::drift::Drift;
use crate::realtime::{RealtimeItem, Shared};
use crate::stat::{epoch_now, rel_path, stat_path};
use crate::walk::{Children, Flow, Kind, OpenDir, Task, Visitor, walk};
use crate::watcher::WatchOutcome;

/// An inotify event copied out of the read buffer.
#[derive(Debug, Clone)]
pub(crate) struct RawEvent {
    pub wd: i32,
    pub mask: EventMask,
    pub cookie: u32,
    pub name: Option<OsString>,
}

/// Everything an operation needs that can be shared with a (single-threaded) walk.
pub(crate) struct Ctx {
    root: PathBuf,
    shared: Arc<Shared>,
    tx: SyncSender<RealtimeItem>,
    drift: Drift,
}

impl Ctx {
    pub fn new(
        root: PathBuf,
        shared: Arc<Shared>,
        tx: SyncSender<RealtimeItem>,
        drift: Drift,
    ) -> Self {
        Ctx {
            root,
            shared,
            tx,
            drift,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn send(&self, item: RealtimeItem) -> Flow {
        match self.tx.send(item) {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(()),
        }
    }

    fn emit(&self, event_type: EventType, row: FsRow) -> Flow {
        let ev = fs_event(
            event_type,
            MessageSource::Realtime,
            vec![row],
            self.drift.index_now(),
            epoch_now(),
        );
        self.send(RealtimeItem::Event(ev))
    }

    fn delete(&self, rel: &str) -> Flow {
        self.emit(EventType::Delete, FsRow::delete(rel))
    }

    /// Upsert of the current state of `abs`; nothing if it vanished meanwhile. Continues with
    /// whether an event was sent.
    fn upsert(&self, abs: &Path, rel: &str, atomic: Option<bool>) -> ControlFlow<(), bool> {
        match stat_path(abs) {
            Ok(Some(m)) => {
                let mut row = m.row(rel.to_string());
                row.is_atomic_write = atomic;
                self.emit(EventType::Update, row)?;
                ControlFlow::Continue(true)
            }
            Ok(None) => ControlFlow::Continue(false),
            Err(e) => {
                tracing::warn!(path = ?abs, error = %e, "cannot stat; event dropped");
                ControlFlow::Continue(false)
            }
        }
    }

    fn rescan(&self, dir: &Path) -> Flow {
        let path = rel_path(&self.root, dir).unwrap_or_else(|| "/".to_string());
        self.send(RealtimeItem::Rescan {
            dir: dir.to_path_buf(),
            path,
        })
    }

    /// Schedules a watch; breaks only on a fatal violation (recorded for the reader) or when the
    /// consumer is gone.
    fn watch(&self, dir: &Path, ts: f64) -> ControlFlow<(), WatchOutcome> {
        let r = self.shared.mgr.lock().schedule(dir, ts, epoch_now());
        match r {
            Ok(WatchOutcome::NoSpace) => {
                self.rescan(dir)?;
                ControlFlow::Continue(WatchOutcome::NoSpace)
            }
            Ok(o) => ControlFlow::Continue(o),
            Err(e) => {
                self.shared.set_fatal(e);
                ControlFlow::Break(())
            }
        }
    }

    /// Marks `dir` and its ancestors up to the root as active now.
    fn touch_chain(&self, dir: &Path) -> Flow {
        let now = epoch_now();
        let mut cur = Some(dir);
        while let Some(d) = cur {
            if !d.starts_with(&self.root) {
                break;
            }
            self.watch(d, now)?;
            if d == self.root {
                break;
            }
            cur = d.parent();
        }
        ControlFlow::Continue(())
    }

    /// Watches every directory of a tree, without emitting rows (start-up without a pre-scan,
    /// or a root that (re)appeared, where a rescan follows).
    pub fn watch_tree(&self, dir: &Path) -> Flow {
        let rel = rel_path(&self.root, dir).unwrap_or_else(|| "/".to_string());
        let v = TreeWatcher {
            ctx: self,
            stopped: std::sync::atomic::AtomicBool::new(false),
        };
        walk(dir.to_path_buf(), rel, 1, &v);
        if v.stopped.into_inner() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    /// Lists a directory that has just been watched, recursively, watching each subdirectory
    /// before it is listed: whatever was created before a watch existed is found by the
    /// listing, whatever comes after produces events. With `moved_from`, each row is preceded
    /// by the delete of the path it had before the move.
    fn list_new(&self, dir: &Path, rel: &str, moved_from: Option<&str>) -> Flow {
        let v = Lister {
            ctx: self,
            new_prefix: rel,
            old_prefix: moved_from,
            stopped: std::sync::atomic::AtomicBool::new(false),
        };
        walk(dir.to_path_buf(), rel.to_string(), 1, &v);
        if v.stopped.into_inner() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

struct TreeWatcher<'a> {
    ctx: &'a Ctx,
    stopped: std::sync::atomic::AtomicBool,
}

impl Visitor for TreeWatcher<'_> {
    type Local = ();
    fn local(&self) {}
    fn visit(&self, _: &mut (), task: &Task, dir: &OpenDir, ch: &mut Children) -> Flow {
        if self
            .ctx
            .watch(&task.abs, self.ctx.drift.normalise(dir.meta.mtime))
            .is_break()
        {
            self.stopped
                .store(true, std::sync::atomic::Ordering::Relaxed);
            return ControlFlow::Break(());
        }
        for e in &dir.entries {
            if let Kind::Dir = dir.classify(task, e, false) {
                ch.push(task, e.bytes());
            }
        }
        ControlFlow::Continue(())
    }
}

struct Lister<'a> {
    ctx: &'a Ctx,
    new_prefix: &'a str,
    old_prefix: Option<&'a str>,
    stopped: std::sync::atomic::AtomicBool,
}

impl Lister<'_> {
    fn old_path(&self, new_rel: &str) -> Option<String> {
        let old = self.old_prefix?;
        let suffix = new_rel.strip_prefix(self.new_prefix)?;
        Some(format!("{old}{suffix}"))
    }

    fn row(&self, rel: String, row: FsRow) -> Flow {
        if let Some(old) = self.old_path(&rel) {
            self.ctx.delete(&old)?;
        }
        self.ctx.emit(EventType::Update, row)
    }

    fn run(&self, task: &Task, dir: &OpenDir, ch: &mut Children) -> Flow {
        // The starting directory's row was sent by the caller.
        if task.parent.is_some() {
            self.row(task.rel.clone(), dir.meta.row(task.rel.clone()))?;
        }
        for e in &dir.entries {
            match dir.classify(task, e, true) {
                Kind::Dir => {
                    let child = task.abs.join(OsStr::from_bytes(e.bytes()));
                    self.ctx.watch(&child, epoch_now())?;
                    ch.push(task, e.bytes());
                }
                Kind::Entry(m) => {
                    let rel = crate::stat::join_rel(&task.rel, e.bytes());
                    self.row(rel.clone(), m.row(rel))?;
                }
                Kind::Skip => {}
            }
        }
        ControlFlow::Continue(())
    }
}

impl Visitor for Lister<'_> {
    type Local = ();
    fn local(&self) {}
    fn visit(&self, _: &mut (), task: &Task, dir: &OpenDir, ch: &mut Children) -> Flow {
        let flow = self.run(task, dir, ch);
        if flow.is_break() {
            self.stopped
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        flow
    }
}

/// Per-reader state: the context plus the partial-write throttle.
pub(crate) struct Handler {
    ctx: Ctx,
    throttle_interval: Duration,
    throttle: HashMap<String, Instant>,
    last_prune: Instant,
    root_lost: bool,
}

const PRUNE_EVERY: Duration = Duration::from_secs(60);

impl Handler {
    pub fn new(ctx: Ctx, throttle_interval_sec: f64) -> Self {
        // Negative or NaN disables throttling; absurdly large values throttle forever.
        let throttle_interval =
            Duration::try_from_secs_f64(throttle_interval_sec.max(0.0)).unwrap_or(Duration::MAX);
        Handler {
            ctx,
            throttle_interval,
            throttle: HashMap::new(),
            last_prune: Instant::now(),
            root_lost: false,
        }
    }

    pub fn ctx(&self) -> &Ctx {
        &self.ctx
    }

    /// True once after the root's own watch was dropped by the kernel (deleted, unmounted).
    pub fn take_root_lost(&mut self) -> bool {
        std::mem::take(&mut self.root_lost)
    }

    /// Handles one read's worth of events. Breaks when the consumer is gone or on a fatal error.
    pub fn process(&mut self, events: Vec<RawEvent>) -> Flow {
        let mut moved_to: HashMap<u32, usize> = HashMap::new();
        for (i, e) in events.iter().enumerate() {
            if e.mask.contains(EventMask::MOVED_TO) && e.cookie != 0 {
                moved_to.entry(e.cookie).or_insert(i);
            }
        }
        let mut consumed = vec![false; events.len()];
        for i in 0..events.len() {
            if consumed[i] {
                continue;
            }
            let e = &events[i];
            let pair = if e.mask.contains(EventMask::MOVED_FROM) {
                moved_to
                    .get(&e.cookie)
                    .copied()
                    .filter(|j| *j > i && !consumed[*j])
            } else {
                None
            };
            if let Some(j) = pair {
                consumed[j] = true;
            }
            self.one(e, pair.map(|j| &events[j]))?;
        }
        if self.last_prune.elapsed() >= PRUNE_EVERY {
            let keep = self.throttle_interval;
            self.throttle.retain(|_, t| t.elapsed() < keep);
            self.last_prune = Instant::now();
        }
        ControlFlow::Continue(())
    }

    /// Absolute and reported path of an event's subject.
    fn locate(&self, e: &RawEvent) -> Option<(PathBuf, String)> {
        let name = e.name.as_ref()?;
        let dir = self.ctx.shared.mgr.lock().dir_of(e.wd)?.clone();
        let abs = dir.join(name);
        let rel = rel_path(&self.ctx.root, &abs)?;
        Some((abs, rel))
    }

    fn one(&mut self, e: &RawEvent, move_dest: Option<&RawEvent>) -> Flow {
        let m = e.mask;
        if m.contains(EventMask::Q_OVERFLOW) {
            tracing::warn!("inotify queue overflow; requesting a rescan of the root");
            let root = self.ctx.root.clone();
            return self.ctx.rescan(&root);
        }
        if m.contains(EventMask::IGNORED) {
            let forgotten = self.ctx.shared.mgr.lock().forget(e.wd);
            if forgotten.is_some_and(|p| p == self.ctx.root) {
                self.root_lost = true;
            }
            return ControlFlow::Continue(());
        }
        // Events about a watched directory itself (no name) are reported by its parent's watch.
        let Some((abs, rel)) = self.locate(e) else {
            if let Some(dest) = move_dest {
                // The source directory is unknown (stale watch): treat as a move-in.
                return self.one(dest, None);
            }
            return ControlFlow::Continue(());
        };
        let is_dir = m.contains(EventMask::ISDIR);
        if m.contains(EventMask::MOVED_FROM) {
            return match move_dest.and_then(|d| self.locate(d)) {
                Some((dabs, drel)) => self.moved(&abs, &rel, &dabs, &drel, is_dir),
                None => self.removed(&abs, &rel, is_dir),
            };
        }
        if m.contains(EventMask::MOVED_TO) {
            return self.moved_in(&abs, &rel, is_dir);
        }
        if m.contains(EventMask::CREATE) {
            // A file is reported when it is closed after writing.
            return if is_dir {
                self.created_dir(&abs, &rel)
            } else {
                ControlFlow::Continue(())
            };
        }
        if m.contains(EventMask::CLOSE_WRITE) {
            if is_dir {
                return ControlFlow::Continue(());
            }
            self.throttle.remove(&rel);
            self.ctx.upsert(&abs, &rel, Some(true))?;
            return self.touch_parent(&abs);
        }
        // An attribute change alone (chmod, chown) is no write in progress: reported at once,
        // not throttled, and for directories too, whose mode decides who may see what below
        // them (issue 14; `deviations.md`).
        if m.contains(EventMask::ATTRIB) && !m.contains(EventMask::MODIFY) {
            if is_dir {
                self.ctx.upsert(&abs, &rel, None)?;
                return self.ctx.touch_chain(&abs);
            }
            self.touch_parent(&abs)?;
            if self.ctx.upsert(&abs, &rel, Some(false))? {
                self.throttle.insert(rel, Instant::now());
            }
            return ControlFlow::Continue(());
        }
        if m.intersects(EventMask::MODIFY | EventMask::ATTRIB) {
            if is_dir {
                return self.ctx.touch_chain(&abs);
            }
            self.touch_parent(&abs)?;
            let now = Instant::now();
            let throttled = self
                .throttle
                .get(&rel)
                .is_some_and(|t| now.duration_since(*t) < self.throttle_interval);
            if throttled {
                return ControlFlow::Continue(());
            }
            if self.ctx.upsert(&abs, &rel, Some(false))? {
                self.throttle.insert(rel, now);
            }
            return ControlFlow::Continue(());
        }
        if m.contains(EventMask::DELETE) {
            return self.removed(&abs, &rel, is_dir);
        }
        ControlFlow::Continue(())
    }

    fn touch_parent(&self, abs: &Path) -> Flow {
        match abs.parent() {
            Some(p) => self.ctx.touch_chain(p),
            None => ControlFlow::Continue(()),
        }
    }

    /// IN_CREATE of a directory, or one moved in from outside the tree.
    fn created_dir(&mut self, abs: &Path, rel: &str) -> Flow {
        if !self.ctx.upsert(abs, rel, None)? {
            return ControlFlow::Continue(());
        }
        // Watch first, then list (pitfalls.md item 2).
        self.ctx.touch_chain(abs)?;
        self.ctx.list_new(abs, rel, None)
    }

    fn moved_in(&mut self, abs: &Path, rel: &str, is_dir: bool) -> Flow {
        if is_dir {
            return self.created_dir(abs, rel);
        }
        self.throttle.remove(rel);
        self.ctx.upsert(abs, rel, None)?;
        self.touch_parent(abs)
    }

    /// IN_DELETE, or IN_MOVED_FROM whose destination is outside the tree.
    fn removed(&mut self, abs: &Path, rel: &str, is_dir: bool) -> Flow {
        self.throttle.remove(rel);
        self.ctx.delete(rel)?;
        if is_dir {
            // A directory moved out keeps its watches (they follow the inode): drop them, or its
            // later events would be reported under a path that no longer exists.
            self.ctx.shared.mgr.lock().unwatch_subtree(abs);
        }
        self.touch_parent(abs)
    }

    fn moved(
        &mut self,
        src: &Path,
        src_rel: &str,
        dst: &Path,
        dst_rel: &str,
        is_dir: bool,
    ) -> Flow {
        self.throttle.remove(src_rel);
        self.ctx.delete(src_rel)?;
        if !is_dir {
            self.ctx.upsert(dst, dst_rel, None)?;
            self.touch_parent(src)?;
            return self.touch_parent(dst);
        }
        self.ctx.shared.mgr.lock().unwatch_subtree(src);
        // Unlike the reference, the moved directory's own row is sent too: Fusion would otherwise
        // only know it as an implicit parent without metadata.
        self.ctx.upsert(dst, dst_rel, None)?;
        self.touch_parent(src)?;
        self.ctx.touch_chain(dst)?;
        self.ctx.list_new(dst, dst_rel, Some(src_rel))
    }
}
