//! The realtime reader: one thread owning an inotify instance, turning kernel events into
//! [`RealtimeItem`]s (`agent-runtime.md` §10.6).
//!
//! Output goes through a bounded channel. A slow consumer blocks the reader, the kernel queue
//! then overflows, and the overflow becomes a [`RealtimeItem::Rescan`] instead of a failed bus
//! (`pitfalls.md` item 3): changes are never dropped silently, realtime never stops for good.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fustor_core::{Event, FsRow};
use inotify::{EventMask, Inotify};
use parking_lot::Mutex;
use rustix::event::{PollFd, PollFlags, Timespec, poll};

use crate::drift::{Drift, PreScan};
use crate::error::FsError;
use crate::mapping::{Ctx, Handler, RawEvent};
use crate::params::{FsDriverParams, kernel_watch_limit};
use crate::stat::epoch_now;
use crate::watch::WatchHook;
use crate::watcher::WatchManager;

/// What the reader produces.
#[derive(Debug)]
pub enum RealtimeItem {
    /// One `realtime` event with one row.
    Event(Event<FsRow>),
    /// Changes below `dir` may have been missed (kernel queue overflow, no watch available, the
    /// root reappeared): the runtime should audit that directory (recursively).
    Rescan { dir: PathBuf, path: String },
    /// Fatal: the reader has stopped (e.g. a watch window violation).
    Error(FsError),
}

#[derive(Debug, Clone)]
pub struct RealtimeConfig {
    pub root: PathBuf,
    pub throttle_interval_sec: f64,
    pub min_monitoring_window_days: f64,
    pub watch_limit: usize,
    pub drift: Drift,
    /// Items buffered between the reader and the consumer.
    pub channel_capacity: usize,
}

impl RealtimeConfig {
    pub fn new(root: impl AsRef<Path>, params: &FsDriverParams, drift: Drift) -> Self {
        let root = root.as_ref();
        let root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
        RealtimeConfig {
            root: root.components().collect(),
            throttle_interval_sec: params.throttle_interval_sec,
            min_monitoring_window_days: params.min_monitoring_window_days,
            watch_limit: params.watch_limit.unwrap_or_else(kernel_watch_limit),
            drift,
            channel_capacity: 1000,
        }
    }
}

pub(crate) struct Shared {
    pub mgr: Mutex<WatchManager>,
    pub fatal: Mutex<Option<FsError>>,
    stop: AtomicBool,
}

impl Shared {
    pub fn set_fatal(&self, e: FsError) {
        tracing::error!(error = %e, "fs driver stops");
        let mut f = self.fatal.lock();
        if f.is_none() {
            *f = Some(e);
        }
    }
}

/// Lets scans feed directory activity into the watch set (§10.4).
struct Hook {
    shared: Arc<Shared>,
}

impl WatchHook for Hook {
    fn touch(&self, dir: &Path, ts: f64) {
        let r = self.shared.mgr.lock().schedule(dir, ts, epoch_now());
        if let Err(e) = r {
            self.shared.set_fatal(e);
        }
    }

    fn budget(&self) -> Option<(usize, usize)> {
        let mgr = self.shared.mgr.lock();
        Some((mgr.len(), mgr.limit()))
    }
}

/// A running realtime reader. Dropping it stops the thread and releases all watches.
pub struct Realtime {
    rx: Option<Receiver<RealtimeItem>>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Realtime {
    /// Sets up watches before returning, so that events happening after `start` returns are
    /// seen (message-first, wire §7): from the pre-scan, most recently active directories first,
    /// or, without one, for every directory of the tree. A missing root is waited for in the
    /// background (checked every second).
    pub fn start(cfg: RealtimeConfig, prescan: Option<&PreScan>) -> Result<Realtime, FsError> {
        let inotify = Inotify::init().map_err(FsError::Inotify)?;
        let mgr = WatchManager::new(
            cfg.root.clone(),
            inotify.watches(),
            cfg.watch_limit,
            cfg.min_monitoring_window_days,
        );
        let shared = Arc::new(Shared {
            mgr: Mutex::new(mgr),
            fatal: Mutex::new(None),
            stop: AtomicBool::new(false),
        });
        let (tx, rx) = sync_channel(cfg.channel_capacity.max(1));
        let ctx = Ctx::new(cfg.root.clone(), shared.clone(), tx.clone(), cfg.drift);
        let root_present = cfg.root.is_dir();
        if root_present {
            let now = epoch_now();
            match prescan {
                Some(pre) if !pre.dirs.is_empty() => {
                    let mut mgr = shared.mgr.lock();
                    for (dir, mtime) in &pre.dirs {
                        if mgr.len() >= mgr.limit() {
                            break;
                        }
                        mgr.schedule(dir, cfg.drift.normalise(*mtime), now)?;
                    }
                }
                _ => {
                    let _ = ctx.watch_tree(&cfg.root);
                }
            }
            if let Some(e) = shared.fatal.lock().take() {
                return Err(e);
            }
        }
        let handler = Handler::new(ctx, cfg.throttle_interval_sec);
        let sh = shared.clone();
        let thread = std::thread::Builder::new()
            .name("fs-inotify".to_string())
            .spawn(move || reader(inotify, handler, sh, tx, root_present))
            .map_err(FsError::Thread)?;
        Ok(Realtime {
            rx: Some(rx),
            shared,
            thread: Some(thread),
        })
    }

    /// For runtimes that multiplex with `select`-style loops.
    pub fn receiver(&self) -> Option<&Receiver<RealtimeItem>> {
        self.rx.as_ref()
    }

    /// `None` on timeout or once the reader has stopped and everything was consumed.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<RealtimeItem> {
        self.rx.as_ref()?.recv_timeout(timeout).ok()
    }

    /// A handle for [`Scanner::set_watch_hook`](crate::Scanner::set_watch_hook).
    pub fn watch_hook(&self) -> Arc<dyn WatchHook> {
        Arc::new(Hook {
            shared: self.shared.clone(),
        })
    }

    pub fn watch_count(&self) -> usize {
        self.shared.mgr.lock().len()
    }

    pub fn watch_limit(&self) -> usize {
        self.shared.mgr.lock().limit()
    }

    pub fn is_watched(&self, dir: &Path) -> bool {
        self.shared.mgr.lock().is_watched(dir)
    }

    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops the reader and waits for it (at most one poll interval plus the event in hand).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Unblocks a reader waiting on a full channel.
        self.rx = None;
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("the inotify reader thread panicked");
        }
    }
}

impl Drop for Realtime {
    fn drop(&mut self) {
        self.shutdown();
    }
}

const POLL_INTERVAL: Duration = Duration::from_millis(200);
const EVENT_BUFFER: usize = 256 * 1024;

fn reader(
    mut inotify: Inotify,
    mut handler: Handler,
    shared: Arc<Shared>,
    tx: SyncSender<RealtimeItem>,
    mut root_present: bool,
) {
    let mut buf = vec![0u8; EVENT_BUFFER];
    let root = handler.ctx().root().to_path_buf();
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        if !root_present {
            if !wait_for_root(&root, &shared) {
                return;
            }
            root_present = true;
            let _ = handler.ctx().watch_tree(&root);
            let rescan = RealtimeItem::Rescan {
                dir: root.clone(),
                path: "/".to_string(),
            };
            if tx.send(rescan).is_err() {
                return;
            }
        }
        if let Some(e) = shared.fatal.lock().take() {
            let _ = tx.send(RealtimeItem::Error(e));
            return;
        }
        let mut events = match read_batch(&mut inotify, &mut buf, POLL_INTERVAL) {
            Ok(ev) => ev,
            Err(e) => {
                tracing::error!(error = %e, "reading inotify events failed; realtime stops");
                let _ = tx.send(RealtimeItem::Error(FsError::Inotify(e)));
                return;
            }
        };
        if events.is_empty() {
            continue;
        }
        // A rename queues MOVED_FROM and MOVED_TO back to back; if the read ended between them,
        // fetch the rest so the pair is not mistaken for a delete and a move-in.
        for _ in 0..4 {
            if !events
                .last()
                .is_some_and(|e| e.mask.contains(EventMask::MOVED_FROM))
            {
                break;
            }
            match read_batch(&mut inotify, &mut buf, Duration::from_millis(5)) {
                Ok(more) if !more.is_empty() => events.extend(more),
                _ => break,
            }
        }
        let flow = handler.process(events);
        if handler.take_root_lost() {
            root_present = root.is_dir();
            if root_present {
                let _ = handler.ctx().watch_tree(&root);
                let rescan = RealtimeItem::Rescan {
                    dir: root.clone(),
                    path: "/".to_string(),
                };
                if tx.send(rescan).is_err() {
                    return;
                }
            } else {
                tracing::warn!(root = ?root, "the source root disappeared; waiting for it");
            }
        }
        if flow.is_break() {
            if let Some(e) = shared.fatal.lock().take() {
                let _ = tx.send(RealtimeItem::Error(e));
            }
            return;
        }
    }
}

/// Returns false when asked to stop while waiting.
fn wait_for_root(root: &Path, shared: &Shared) -> bool {
    let mut last_warning: Option<Instant> = None;
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return false;
        }
        if root.is_dir() {
            tracing::info!(root = ?root, "source root is present; watching it");
            return true;
        }
        if last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
            tracing::warn!(root = ?root, "source root does not exist; retrying every second");
            last_warning = Some(Instant::now());
        }
        // Sleep in short steps so that `stop` stays responsive.
        for _ in 0..5 {
            if shared.stop.load(Ordering::SeqCst) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Waits up to `timeout` for events and returns them owned (empty on timeout).
fn read_batch(
    inotify: &mut Inotify,
    buf: &mut [u8],
    timeout: Duration,
) -> io::Result<Vec<RawEvent>> {
    let ts = Timespec {
        tv_sec: timeout.as_secs() as _,
        tv_nsec: timeout.subsec_nanos() as _,
    };
    let mut fds = [PollFd::new(&*inotify, PollFlags::IN)];
    match poll(&mut fds, Some(&ts)) {
        Ok(0) => return Ok(Vec::new()),
        Ok(_) => {}
        Err(rustix::io::Errno::INTR) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    }
    match inotify.read_events(buf) {
        Ok(events) => Ok(events
            .map(|e| RawEvent {
                wd: e.wd.get_watch_descriptor_id(),
                mask: e.mask,
                cookie: e.cookie,
                name: e.name.map(|n| n.to_os_string()),
            })
            .collect()),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) =>
        {
            Ok(Vec::new())
        }
        Err(e) => Err(e),
    }
}
