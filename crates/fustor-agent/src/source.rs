//! Shared sources (`agent-runtime.md` §1, §10): one `fs` driver per source signature, with one
//! inotify reader, one producer thread and one event bus, shared by every pipe of that source
//! and reference-counted (§14 item 9: closing one pipe must not stop the others' realtime).
//!
//! Degraded mode: when the realtime reader fails (watch window violation, inotify error), the
//! source keeps serving scans, reports `realtime_ok() == false` (pipes then send
//! `can_realtime=false`), retries the reader with backoff and, once it is back, asks every
//! subscriber to rescan the whole tree for the changes made in between (§14 item 8 fixed:
//! realtime never stays dead).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fustor_core::config::SourceConfig;
use fustor_source_fs::{
    FilePattern, FsDriverParams, FsError, Realtime, RealtimeConfig, RealtimeItem, Scanner,
};
use parking_lot::{Mutex, RwLock};

use crate::backoff::Backoff;
use crate::bus::EventBus;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("source driver {0:?} is not supported by this agent (only \"fs\")")]
    UnsupportedDriver(String),
    #[error("invalid fs driver_params: {0}")]
    Params(String),
    #[error("fs driver: {0}")]
    Fs(#[from] FsError),
    #[error("source start was interrupted")]
    Interrupted,
}

/// The identity under which pipes share a source: `(driver, uri, credential)`.
pub fn source_signature(cfg: &SourceConfig) -> String {
    let cred = serde_json::to_string(&cfg.credential).unwrap_or_default();
    format!("{}\u{0}{}\u{0}{}", cfg.driver, cfg.uri, cred)
}

/// `driver_params` of an fs source as the driver wants them.
pub fn fs_driver_params(cfg: &SourceConfig) -> Result<(FsDriverParams, bool), SourceError> {
    let p = cfg
        .fs_params()
        .map_err(|e| SourceError::Params(e.to_string()))?;
    let params = FsDriverParams {
        file_pattern: p.file_pattern.clone(),
        max_scan_workers: p.scan_workers(),
        throttle_interval_sec: p.throttle_interval_sec,
        min_monitoring_window_days: p.min_monitoring_window_days,
        watch_limit: None,
    };
    Ok((params, p.message_only()))
}

/// A running fs source.
pub struct FsSource {
    signature: String,
    uri: String,
    root: PathBuf,
    params: FsDriverParams,
    pattern: FilePattern,
    message_only: bool,
    scanner: Arc<RwLock<Scanner>>,
    bus: Arc<EventBus>,
    realtime_ok: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    producer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for FsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FsSource")
            .field("root", &self.root)
            .field("realtime_ok", &self.realtime_ok())
            .finish_non_exhaustive()
    }
}

impl FsSource {
    /// Blocking: pre-scan (drift, watch priorities), realtime watches, producer thread. When
    /// this returns, changes are captured (message-first, wire §7).
    pub fn open(cfg: &SourceConfig) -> Result<Arc<FsSource>, SourceError> {
        if cfg.driver != "fs" {
            return Err(SourceError::UnsupportedDriver(cfg.driver.clone()));
        }
        let (params, message_only) = fs_driver_params(cfg)?;
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
        let capacity = usize::try_from(cfg.max_queue_size).unwrap_or(usize::MAX);
        let src = Arc::new(FsSource {
            signature: source_signature(cfg),
            uri: cfg.uri.clone(),
            root,
            params,
            pattern,
            message_only,
            scanner: Arc::new(RwLock::new(scanner)),
            bus: Arc::new(EventBus::new(capacity)),
            realtime_ok: Arc::new(AtomicBool::new(rt.is_some())),
            stop: Arc::new(AtomicBool::new(false)),
            producer: Mutex::new(None),
        });
        let producer = Producer {
            root: src.root.clone(),
            params: src.params.clone(),
            scanner: src.scanner.clone(),
            bus: src.bus.clone(),
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

    pub fn signature(&self) -> &str {
        &self.signature
    }

    /// The configured `uri` (sent as `client_info.source_uri`).
    pub fn uri(&self) -> &str {
        &self.uri
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

    pub fn bus(&self) -> &Arc<EventBus> {
        &self.bus
    }

    /// False while the realtime reader is down (degraded mode).
    pub fn realtime_ok(&self) -> bool {
        self.realtime_ok.load(Ordering::SeqCst)
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

/// Sources by signature; a source lives while a pipe holds it.
#[derive(Default)]
pub struct SourceRegistry {
    map: tokio::sync::Mutex<HashMap<String, Weak<FsSource>>>,
}

impl SourceRegistry {
    pub fn new() -> Self {
        SourceRegistry::default()
    }

    /// The running source for this configuration, started (blocking work off the async
    /// threads) if no pipe holds one.
    pub async fn acquire(&self, cfg: &SourceConfig) -> Result<Arc<FsSource>, SourceError> {
        let sig = source_signature(cfg);
        let mut map = self.map.lock().await;
        if let Some(src) = map.get(&sig).and_then(Weak::upgrade) {
            return Ok(src);
        }
        let cfg = cfg.clone();
        let src = tokio::task::spawn_blocking(move || FsSource::open(&cfg))
            .await
            .map_err(|_| SourceError::Interrupted)??;
        map.retain(|_, w| w.strong_count() > 0);
        map.insert(sig, Arc::downgrade(&src));
        Ok(src)
    }

    /// Number of live sources.
    pub async fn live(&self) -> usize {
        self.map
            .lock()
            .await
            .values()
            .filter(|w| w.strong_count() > 0)
            .count()
    }
}

/// Drops a pipe's reference; the last one stops the source (joins threads, off the async
/// threads).
pub async fn release(src: Arc<FsSource>) {
    let _ = tokio::task::spawn_blocking(move || drop(src)).await;
}
