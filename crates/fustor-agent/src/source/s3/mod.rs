//! The `s3` source driver: an S3 or S3-compatible bucket (MinIO, Ceph RGW, OSS) seen as a
//! file tree. Keys become paths (`/`-separated; their prefixes become the view's directories),
//! size and last-modified become the row's size and mtime.
//!
//! There is no change feed to subscribe to, so a poller thread lists the bucket every
//! `poll_interval_sec` and compares the listing with the previous one ([`state::diff`]). Its
//! first listing is the baseline: a snapshot waits for it, so every change after the
//! snapshot's listing started is found by a later poll (message-first, wire §7).
//!
//! Failures (unreachable endpoint, refused credentials, missing bucket) never stop the source:
//! they are logged, shown in the pipe status ([`Source::problem`]) and retried with backoff;
//! the baseline is kept, so the first listing after an outage reports everything that changed
//! during it.

mod params;
mod snapshot;
mod state;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fustor_core::config::SourceConfig;
use futures_util::StreamExt;
use object_store::ObjectStore;
use object_store::path::Path as KeyPath;
use parking_lot::{Condvar, Mutex};

use super::{Capabilities, SnapshotStream, Source, SourceCore, SourceDriver, SourceError};
use crate::backoff::Backoff;

pub use params::S3Params;
use state::Listing;

/// A running s3 source.
pub struct S3Source {
    core: SourceCore,
    shared: Arc<Shared>,
    poller: Mutex<Option<JoinHandle<()>>>,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
}

/// What the poller, the snapshots and the pipes share.
struct Shared {
    store: Arc<dyn ObjectStore>,
    prefix: Option<KeyPath>,
    bucket: String,
    rt: tokio::runtime::Handle,
    poll: Duration,
    backoff: Backoff,
    stop: AtomicBool,
    status: Mutex<Status>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Status {
    baseline: bool,
    error: Option<String>,
}

impl Shared {
    /// Lists every key under the prefix (object_store pages through `ListObjectsV2`).
    fn list_all(&self) -> Result<Listing, object_store::Error> {
        self.rt.block_on(async {
            let mut out = Listing::new();
            let mut stream = self.store.list(self.prefix.as_ref());
            while let Some(meta) = stream.next().await {
                let meta = meta?;
                if let Some(path) = state::view_path(self.prefix.as_ref(), &meta.location) {
                    out.insert(path, state::key_state(&meta));
                }
                if self.stop.load(Ordering::Relaxed) {
                    break;
                }
            }
            Ok(out)
        })
    }

    fn set_error(&self, what: &str, e: &object_store::Error) {
        let msg = format!("s3 {what} of bucket {:?}: {e}", self.bucket);
        self.status.lock().error = Some(msg);
    }

    fn clear_error(&self) {
        let mut st = self.status.lock();
        if st.error.take().is_some() {
            tracing::info!(bucket = ?self.bucket, "s3 listing works again");
        }
    }

    /// Sleeps `d` unless the source stops first; false when it stopped.
    fn sleep(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        let mut st = self.status.lock();
        while !self.stop.load(Ordering::SeqCst) {
            if self.changed.wait_until(&mut st, deadline).timed_out() {
                return !self.stop.load(Ordering::SeqCst);
            }
        }
        false
    }

    /// Blocks until the poller has its baseline; false when the source stopped.
    fn wait_baseline(&self) -> bool {
        let mut st = self.status.lock();
        while !st.baseline {
            if self.stop.load(Ordering::SeqCst) {
                return false;
            }
            self.changed.wait_for(&mut st, Duration::from_millis(200));
        }
        true
    }
}

impl S3Source {
    pub fn start(cfg: &SourceConfig, params: S3Params) -> Result<Arc<S3Source>, SourceError> {
        let store = params.store(cfg)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("s3-io")
            .enable_all()
            .build()
            .map_err(|e| SourceError::Params(format!("s3 client runtime: {e}")))?;
        let shared = Arc::new(Shared {
            store,
            prefix: params.key_prefix(),
            bucket: params.bucket.clone(),
            rt: runtime.handle().clone(),
            poll: params.poll_interval(),
            backoff: Backoff {
                error_retry_interval: 1.0,
                multiplier: 2.0,
                max_seconds: 60.0,
                alert_after: u32::MAX,
            },
            stop: AtomicBool::new(false),
            status: Mutex::new(Status::default()),
            changed: Condvar::new(),
        });
        let src = Arc::new(S3Source {
            core: SourceCore::new(cfg),
            shared: shared.clone(),
            poller: Mutex::new(None),
            runtime: Mutex::new(Some(runtime)),
        });
        let bus = src.core.bus.clone();
        let handle = std::thread::Builder::new()
            .name("s3-poller".to_string())
            .spawn(move || poll_loop(&shared, &bus))
            .map_err(|e| SourceError::Params(format!("cannot start the s3 poller: {e}")))?;
        *src.poller.lock() = Some(handle);
        tracing::info!(bucket = ?params.bucket, prefix = ?params.prefix,
            poll_s = params.poll_interval_sec, "s3 source started");
        Ok(src)
    }
}

/// Baseline, then one listing per interval; each difference goes on the bus.
fn poll_loop(sh: &Shared, bus: &crate::bus::EventBus) {
    let mut known: Option<Listing> = None;
    let mut failures: u32 = 0;
    while !sh.stop.load(Ordering::SeqCst) {
        let started = Instant::now();
        let wait = match sh.list_all() {
            Ok(listing) => {
                if sh.stop.load(Ordering::SeqCst) {
                    break;
                }
                failures = 0;
                sh.clear_error();
                match &known {
                    None => {
                        tracing::info!(bucket = ?sh.bucket, keys = listing.len(),
                            took_ms = started.elapsed().as_millis() as u64, "s3 baseline listed");
                        sh.status.lock().baseline = true;
                        sh.changed.notify_all();
                    }
                    Some(old) => {
                        let events = state::diff(old, &listing);
                        if !events.is_empty() {
                            tracing::debug!(bucket = ?sh.bucket, events = events.len(), "s3 changes");
                        }
                        for e in events {
                            bus.put(e);
                        }
                    }
                }
                known = Some(listing);
                sh.poll
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                sh.set_error("listing", &e);
                tracing::error!(bucket = ?sh.bucket, error = %e, consecutive = failures,
                    retry_in_s = sh.backoff.seconds(failures), "s3 listing failed; retrying");
                sh.backoff
                    .delay(failures)
                    .min(sh.poll.max(Duration::from_secs(1)) * 4)
            }
        };
        if !sh.sleep(wait) {
            break;
        }
    }
}

impl Drop for S3Source {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.changed.notify_all();
        if let Some(h) = self.poller.lock().take()
            && h.join().is_err()
        {
            tracing::error!("the s3 poller thread panicked");
        }
        if let Some(rt) = self.runtime.lock().take() {
            rt.shutdown_background();
        }
        tracing::info!(bucket = ?self.shared.bucket, "source closed");
    }
}

impl Source for S3Source {
    fn driver(&self) -> &'static str {
        "s3"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    fn core(&self) -> &SourceCore {
        &self.core
    }

    /// Polling is this source's change stream: down while the listing fails or before the
    /// baseline.
    fn realtime_ok(&self) -> bool {
        let st = self.shared.status.lock();
        st.baseline && st.error.is_none()
    }

    fn snapshot(&self) -> SnapshotStream {
        Box::new(snapshot::Snapshot::new(self.shared.clone()))
    }

    fn problem(&self) -> Option<String> {
        self.shared.status.lock().error.clone()
    }
}

impl SourceDriver for S3Source {
    type Params = S3Params;

    fn open(cfg: &SourceConfig, params: S3Params) -> Result<Arc<dyn Source>, SourceError> {
        Ok(S3Source::start(cfg, params)?)
    }
}
