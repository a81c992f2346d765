//! The `fs` source driver (`agent-runtime.md` §1, §10): one inotify reader, one producer thread
//! and one event bus per source signature, shared by every pipe of that source.
//!
//! Degraded mode: when the realtime reader fails (watch window violation, inotify error), the
//! source keeps serving scans, reports `realtime_ok() == false` (pipes then send
//! `can_realtime=false`), retries the reader with backoff and, once it is back, asks every
//! subscriber to rescan the whole tree for the changes made in between (§14 item 8 fixed:
//! realtime never stays dead).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fustor_core::config::SourceConfig;
use fustor_core::event::FS_FIELDS;
use fustor_core::{Event, EventType, FsRow, MessageSource};
use fustor_source_fs::{
    FilePattern, FsDriverParams, FsError, MtimeCache, Realtime, RealtimeConfig, RealtimeItem,
    Scanner, SentinelUpdate, row_for,
};
use parking_lot::{Mutex, RwLock};

use super::{
    AuditStream, Capabilities, SnapshotStream, Source, SourceCore, SourceDriver, SourceError,
    Supports,
};
use crate::backoff::Backoff;
use crate::bus::{EventBus, RescanSet};
use crate::rescan::targeted_audit;

/// A running fs source.
pub struct FsSource {
    core: SourceCore,
    root: PathBuf,
    params: FsDriverParams,
    pattern: FilePattern,
    message_only: bool,
    scanner: Arc<RwLock<Scanner>>,
    realtime_ok: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    producer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for FsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FsSource")
            .field("root", &self.root)
            .field("realtime_ok", &Source::realtime_ok(self))
            .finish_non_exhaustive()
    }
}

impl FsSource {
    /// Blocking: pre-scan (drift, watch priorities), realtime watches, producer thread. When
    /// this returns, changes are captured (message-first, wire §7).
    pub fn start(cfg: &SourceConfig, params: FsDriverParams) -> Result<Arc<FsSource>, SourceError> {
        let message_only = params.message_only();
        let pattern = FilePattern::new(&params.file_pattern)?;
        let mut scanner = Scanner::new(&cfg.uri, &params)?;
        let root = scanner.root().to_path_buf();
        let started = Instant::now();
        let pre = scanner.prescan();
        scanner.set_drift(pre.drift);
        tracing::info!(
            root = ?root,
            dirs = pre.dirs.len(),
            unreadable = pre.errors,
            drift_s = pre.drift.seconds,
            took_ms = started.elapsed().as_millis() as u64,
            "pre-scan done"
        );
        let rt = match Realtime::start(RealtimeConfig::new(&root, &params, pre.drift), Some(&pre)) {
            Ok(rt) => {
                scanner.set_watch_hook(rt.watch_hook());
                tracing::info!(root = ?root, watches = rt.watch_count(), "realtime watching");
                Some(rt)
            }
            Err(e) => {
                tracing::error!(root = ?root, error = %e,
                    "realtime watcher failed to start; degraded mode (audits only), will retry");
                None
            }
        };
        let src = Arc::new(FsSource {
            core: SourceCore::new(cfg),
            root,
            params,
            pattern,
            message_only,
            scanner: Arc::new(RwLock::new(scanner)),
            realtime_ok: Arc::new(AtomicBool::new(rt.is_some())),
            stop: Arc::new(AtomicBool::new(false)),
            producer: Mutex::new(None),
        });
        let producer = Producer {
            root: src.root.clone(),
            params: src.params.clone(),
            scanner: src.scanner.clone(),
            bus: src.core.bus.clone(),
            realtime_ok: src.realtime_ok.clone(),
            stop: src.stop.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("fs-producer".to_string())
            .spawn(move || producer.run(rt))
            .map_err(|e| SourceError::Fs(FsError::Thread(e)))?;
        *src.producer.lock() = Some(handle);
        Ok(src)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn pattern(&self) -> &FilePattern {
        &self.pattern
    }

    /// `startup_mode: message-only`: the snapshot sends nothing.
    pub fn message_only(&self) -> bool {
        self.message_only
    }

    /// A scanner with the current drift and watch hook.
    pub fn scanner(&self) -> Scanner {
        self.scanner.read().clone()
    }

    fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.producer.lock().take()
            && h.join().is_err()
        {
            tracing::error!("the fs producer thread panicked");
        }
    }
}

impl Drop for FsSource {
    fn drop(&mut self) {
        self.shutdown();
        tracing::info!(root = ?self.root, "source closed");
    }
}

/// Moves realtime items into the bus; restarts a failed reader.
struct Producer {
    root: PathBuf,
    params: FsDriverParams,
    scanner: Arc<RwLock<Scanner>>,
    bus: Arc<EventBus>,
    realtime_ok: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

const POLL: Duration = Duration::from_millis(200);

impl Producer {
    fn run(self, mut rt: Option<Realtime>) {
        let backoff = Backoff::default();
        let mut failures: u32 = u32::from(rt.is_none());
        let mut retry_at = Instant::now() + backoff.delay(failures);
        while !self.stop.load(Ordering::SeqCst) {
            let Some(reader) = &rt else {
                std::thread::sleep(POLL);
                if Instant::now() >= retry_at {
                    match self.restart() {
                        Ok(new) => {
                            rt = Some(new);
                            failures = 0;
                        }
                        Err(e) => {
                            failures = failures.saturating_add(1);
                            retry_at = Instant::now() + backoff.delay(failures);
                            tracing::warn!(root = ?self.root, error = %e,
                                retry_in_s = backoff.seconds(failures), "realtime restart failed");
                        }
                    }
                }
                continue;
            };
            match reader.recv_timeout(POLL) {
                Some(RealtimeItem::Event(e)) => {
                    self.bus.put(e);
                }
                Some(RealtimeItem::Rescan { path, .. }) => {
                    tracing::warn!(path = ?path, "realtime may have missed changes; rescan requested");
                    self.bus.mark_lost_all(&path, true);
                }
                Some(RealtimeItem::Error(e)) => {
                    tracing::error!(root = ?self.root, error = %e,
                        "realtime reader stopped; degraded mode (audits only), will retry");
                    self.degrade(&mut rt, &mut failures, &mut retry_at, &backoff);
                }
                None => {
                    if !reader.is_running() {
                        // Take what is still queued, then degrade.
                        while let Some(item) = reader.recv_timeout(Duration::ZERO) {
                            if let RealtimeItem::Event(e) = item {
                                self.bus.put(e);
                            }
                        }
                        tracing::error!(root = ?self.root, "realtime reader exited; degraded mode");
                        self.degrade(&mut rt, &mut failures, &mut retry_at, &backoff);
                    }
                }
            }
        }
    }

    fn degrade(
        &self,
        rt: &mut Option<Realtime>,
        failures: &mut u32,
        retry_at: &mut Instant,
        backoff: &Backoff,
    ) {
        self.realtime_ok.store(false, Ordering::SeqCst);
        *rt = None;
        *failures = failures.saturating_add(1);
        *retry_at = Instant::now() + backoff.delay(*failures);
    }

    fn restart(&self) -> Result<Realtime, FsError> {
        let pre = self.scanner.read().prescan();
        let rt = Realtime::start(
            RealtimeConfig::new(&self.root, &self.params, pre.drift),
            Some(&pre),
        )?;
        {
            let mut s = self.scanner.write();
            s.set_drift(pre.drift);
            s.set_watch_hook(rt.watch_hook());
        }
        self.realtime_ok.store(true, Ordering::SeqCst);
        // Whatever changed while the reader was down is only found by a rescan.
        self.bus.mark_lost_all("/", true);
        tracing::info!(root = ?self.root, watches = rt.watch_count(), "realtime restarted");
        Ok(rt)
    }
}

impl Source for FsSource {
    fn driver(&self) -> &'static str {
        "fs"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            audit: true,
            sentinel: true,
            on_demand: true,
        }
    }

    fn core(&self) -> &SourceCore {
        &self.core
    }

    fn realtime_ok(&self) -> bool {
        self.realtime_ok.load(Ordering::SeqCst)
    }

    fn watch_budget(&self) -> Option<(usize, usize)> {
        self.scanner.read().watch_budget()
    }

    fn snapshot(&self) -> SnapshotStream {
        if self.message_only {
            return Box::new(std::iter::empty());
        }
        Box::new(self.scanner().snapshot())
    }

    fn audit(&self, cache: Arc<MtimeCache>) -> Option<AuditStream> {
        Some(Box::new(self.scanner().audit(cache)))
    }

    /// The root row marked `audit_skipped`: it protects the root's children until the pass
    /// lists them.
    fn audit_start(&self) -> Option<Event<FsRow>> {
        let index = self.scanner().drift().index_now();
        let mut row = row_for(&self.root, &self.root).ok().flatten()?;
        row.audit_skipped = Some(true);
        let mut ev = Event::fs(EventType::Update, MessageSource::Audit, vec![row]);
        ev.index = index;
        Some(ev)
    }

    fn rescan(&self, set: &RescanSet, emit: &mut dyn FnMut(Event<FsRow>) -> bool) {
        let drift = self.scanner().drift();
        targeted_audit(&self.root, &self.pattern, drift, set, emit);
    }

    fn targeted_rescan(&self) -> bool {
        true
    }

    fn scan(&self, path: &str, recursive: bool) -> Option<SnapshotStream> {
        Some(Box::new(self.scanner().scan_path(path, recursive)))
    }

    fn sentinel(&self, paths: &[String]) -> Vec<SentinelUpdate> {
        self.scanner().sentinel(paths)
    }
}

impl SourceDriver for FsSource {
    type Params = FsDriverParams;

    const SUPPORTS: Supports = Supports {
        audit: true,
        sentinel: true,
        on_demand: true,
        ..Supports::STREAMS
    };

    fn open(cfg: &SourceConfig, params: FsDriverParams) -> Result<Arc<dyn Source>, SourceError> {
        Ok(FsSource::start(cfg, params)?)
    }

    /// The root must be a readable directory.
    fn test_connection(
        cfg: &SourceConfig,
        params: FsDriverParams,
    ) -> Result<Vec<String>, SourceError> {
        let scanner = Scanner::new(&cfg.uri, &params)?;
        // The running source waits for a missing root (an NFS mount not up yet); a test asks
        // whether it is there now.
        std::fs::read_dir(scanner.root()).map_err(|e| {
            SourceError::Unavailable(format!(
                "root {:?} is not a readable directory: {e}",
                cfg.uri
            ))
        })?;
        Ok(FS_FIELDS.iter().map(|f| f.to_string()).collect())
    }
}
