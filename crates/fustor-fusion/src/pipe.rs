//! A Fusion pipe: one bounded queue and one consumer thread per pipe.
//!
//! Different pipes never block each other. A full queue makes the HTTP handler wait (back
//! pressure toward the agent) instead of growing memory: the bound counts both batches and rows,
//! because a batch may hold one row or a hundred thousand. Views are applied on a dedicated
//! thread, never on the async executor. A drain is a barrier item travelling through the same
//! queue, so "everything before this point is applied" is an event, not a poll.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use fustor_core::view::{ViewContext, ViewDriver};
use fustor_core::{Event, FsRow, Now};
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

/// Counters exposed by `/api/v1/pipe/pipes` and `/metrics`.
#[derive(Debug, Default)]
pub struct PipeStats {
    pub events_received: AtomicU64,
    pub events_processed: AtomicU64,
    pub rows_applied: AtomicU64,
    pub rows_rejected: AtomicU64,
    pub sessions_created: AtomicU64,
    pub sessions_closed: AtomicU64,
    pub errors: AtomicU64,
    pub queued_batches: AtomicU64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PipeStatsView {
    pub events_received: u64,
    pub events_processed: u64,
    pub sessions_created: u64,
    pub sessions_closed: u64,
    pub errors: u64,
}

impl PipeStats {
    pub fn view(&self) -> PipeStatsView {
        PipeStatsView {
            events_received: self.events_received.load(Ordering::Relaxed),
            events_processed: self.events_processed.load(Ordering::Relaxed),
            sessions_created: self.sessions_created.load(Ordering::Relaxed),
            sessions_closed: self.sessions_closed.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}

/// A batch on its way to the views; `_permit` holds its share of the row budget until applied.
pub struct Batch {
    pub events: Vec<Event<FsRow>>,
    pub session_id: String,
    pub agent_id: Arc<str>,
    pub source_uri: Option<Arc<str>>,
    _permit: Option<OwnedSemaphorePermit>,
}

enum Item {
    Batch(Batch),
    Barrier(oneshot::Sender<()>),
}

#[derive(Debug, thiserror::Error)]
pub enum PipeError {
    #[error("pipe {0} is stopped")]
    Stopped(String),
    #[error("pipe {0} did not drain within {1:?}")]
    DrainTimeout(String, Duration),
}

pub struct FusionPipe {
    pub id: String,
    pub views: Vec<Arc<dyn ViewDriver>>,
    pub stats: Arc<PipeStats>,
    tx: mpsc::Sender<Item>,
    rows: Arc<Semaphore>,
    max_rows: usize,
}

impl FusionPipe {
    /// Starts the consumer thread. `queue_batches` and `queue_rows` bound the queue.
    pub fn start(
        id: &str,
        views: Vec<Arc<dyn ViewDriver>>,
        queue_batches: usize,
        queue_rows: usize,
    ) -> std::io::Result<Arc<Self>> {
        let (tx, mut rx) = mpsc::channel::<Item>(queue_batches.max(1));
        let stats = Arc::new(PipeStats::default());
        let pipe = Arc::new(FusionPipe {
            id: id.to_string(),
            views: views.clone(),
            stats: stats.clone(),
            tx,
            rows: Arc::new(Semaphore::new(queue_rows.max(1))),
            max_rows: queue_rows.max(1),
        });
        let pipe_id = id.to_string();
        std::thread::Builder::new()
            .name(format!("pipe-{id}"))
            .spawn(move || {
                while let Some(item) = rx.blocking_recv() {
                    match item {
                        Item::Batch(b) => apply(&pipe_id, &views, &stats, b),
                        Item::Barrier(done) => {
                            let _ = done.send(());
                        }
                    }
                }
                tracing::debug!(pipe = %pipe_id, "pipe consumer stopped");
            })?;
        Ok(pipe)
    }

    /// Queues a batch, waiting while the queue is full.
    pub async fn enqueue(
        &self,
        events: Vec<Event<FsRow>>,
        session_id: &str,
        agent_id: Arc<str>,
        source_uri: Option<Arc<str>>,
    ) -> Result<(), PipeError> {
        let rows: usize = events.iter().map(|e| e.rows.len()).sum();
        let want = u32::try_from(rows.clamp(1, self.max_rows)).unwrap_or(u32::MAX);
        let permit = self
            .rows
            .clone()
            .acquire_many_owned(want)
            .await
            .map_err(|_| PipeError::Stopped(self.id.clone()))?;
        self.stats
            .events_received
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        self.stats.queued_batches.fetch_add(1, Ordering::Relaxed);
        let batch = Batch {
            events,
            session_id: session_id.to_string(),
            agent_id,
            source_uri,
            _permit: Some(permit),
        };
        self.tx
            .send(Item::Batch(batch))
            .await
            .map_err(|_| PipeError::Stopped(self.id.clone()))
    }

    /// Waits until everything queued before this call has been applied.
    pub async fn drain(&self, timeout: Duration) -> Result<(), PipeError> {
        let (tx, rx) = oneshot::channel();
        let send = self.tx.send(Item::Barrier(tx));
        let wait = async {
            send.await
                .map_err(|_| PipeError::Stopped(self.id.clone()))?;
            rx.await.map_err(|_| PipeError::Stopped(self.id.clone()))
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| PipeError::DrainTimeout(self.id.clone(), timeout))?
    }

    pub fn queue_len(&self) -> u64 {
        self.stats.queued_batches.load(Ordering::Relaxed)
    }

    pub fn primary(&self) -> Option<&Arc<dyn ViewDriver>> {
        self.views.first()
    }
}

fn apply(pipe_id: &str, views: &[Arc<dyn ViewDriver>], stats: &PipeStats, b: Batch) {
    let ctx = ViewContext {
        pipe_id,
        session_id: &b.session_id,
        agent_id: &b.agent_id,
        source_uri: b.source_uri.as_deref(),
    };
    let now = Now::system();
    for view in views {
        let schema = view.target_schema();
        let report = if b
            .events
            .iter()
            .all(|e| schema.is_empty() || e.event_schema == schema)
        {
            view.apply(&b.events, &ctx, now)
        } else {
            let mine: Vec<Event<FsRow>> = b
                .events
                .iter()
                .filter(|e| schema.is_empty() || e.event_schema == schema)
                .cloned()
                .collect();
            view.apply(&mine, &ctx, now)
        };
        stats.rows_applied.fetch_add(report.rows, Ordering::Relaxed);
        stats
            .rows_rejected
            .fetch_add(report.rejected, Ordering::Relaxed);
    }
    stats
        .events_processed
        .fetch_add(b.events.len() as u64, Ordering::Relaxed);
    stats.queued_batches.fetch_sub(1, Ordering::Relaxed);
}
