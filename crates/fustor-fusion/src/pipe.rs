//! A Fusion pipe: one bounded queue and one consumer thread per pipe.
//!
//! Different pipes never block each other. A full queue makes the HTTP handler wait (back
//! pressure toward the agent) instead of growing memory: the bound counts both batches and rows,
//! because a batch may hold one row or a hundred thousand. Views are applied on a dedicated
//! thread, never on the async executor.
//!
//! Every other write to a view (session start and close, audit start and end, reset, suspect
//! expiry and updates, snapshot end) is a [`Control`] item travelling through the same queue, so
//! the consumer is the views' only writer and "everything queued before this point is applied"
//! is an event of the queue, not a poll with a timeout.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use fustor_core::view::{ApplyReport, SuspectUpdate, ViewContext, ViewDriver};
use fustor_core::{Event, FsRow, Now};
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::persist::store::begin_all;
use crate::persist::wal::Wal;
use crate::persist::{Stores, record};
use fustor_core::wire::ResumePoint;

/// Log records a batch was written as: the answer waits until each is durable.
pub type Tickets = Vec<(Arc<Wal>, u64)>;

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

/// Fields in alphabetical order, the order of the `json!` map it replaced (`state::PipeDto`).
#[derive(Debug, Clone, Serialize)]
pub struct PipeStatsView {
    pub errors: u64,
    pub events_processed: u64,
    pub events_received: u64,
    pub sessions_closed: u64,
    pub sessions_created: u64,
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
    /// Told the log records of the batch, once written (persisted views only).
    ack: Option<oneshot::Sender<Tickets>>,
    /// The sender waits until the batch is fsynced, not only written (realtime batches).
    sync: bool,
    /// The task and agent bus position a realtime batch ends at (issue 11): recorded as the
    /// task's committed index in every persisted view it is applied to.
    at: Option<(Arc<str>, ResumePoint)>,
    _permit: Option<OwnedSemaphorePermit>,
}

/// The session a control item acts for, shared with its ingest route.
#[derive(Debug, Clone)]
pub struct SessionRef {
    pub session_id: String,
    pub agent_id: Arc<str>,
    pub source_uri: Option<Arc<str>>,
}

/// A write to views that is not a batch, executed by the consumer in queue order.
#[derive(Debug, Clone)]
pub enum Control {
    /// No effect: completes once everything queued before it is applied (snapshot end,
    /// shutdown, ordering against a second pipe of a shared view).
    Barrier,
    SessionStarted(SessionRef),
    SessionClosed {
        session: SessionRef,
        /// Whether no session of the election scope is left (V2).
        last: bool,
        /// A persisted view keeps its content when its last session *expires* (issue 11: an
        /// agent crash or a network cut), so that the agent resumes into it. A session its
        /// agent closed (a clean stop) and a reload keep the reference's reset (V2, S19).
        keep_persisted: bool,
    },
    AuditStart,
    AuditEnd,
    Reset,
    ExpireSuspects,
    UpdateSuspects(Arc<[SuspectUpdate]>),
}

impl Control {
    /// Runs the operation on `views`. Answers the number of audits that ended for
    /// [`Control::AuditEnd`], the number of views touched otherwise.
    pub fn run(&self, pipe_id: &str, views: &[Arc<dyn ViewDriver>], now: Now) -> usize {
        match self {
            Control::Barrier => 0,
            Control::SessionStarted(s) | Control::SessionClosed { session: s, .. } => {
                let vc = ViewContext {
                    pipe_id,
                    session_id: &s.session_id,
                    agent_id: &s.agent_id,
                    source_uri: s.source_uri.as_deref(),
                };
                for v in views {
                    match self {
                        Control::SessionClosed { last, .. } => v.session_closed(&vc, *last),
                        _ => v.session_started(&vc),
                    }
                }
                views.len()
            }
            Control::AuditStart => {
                views.iter().for_each(|v| v.audit_start(now));
                views.len()
            }
            Control::AuditEnd => views.iter().filter(|v| v.audit_end(now)).count(),
            Control::Reset => {
                views.iter().for_each(|v| v.reset());
                views.len()
            }
            Control::ExpireSuspects => {
                views.iter().for_each(|v| v.expire_suspects(now));
                views.len()
            }
            Control::UpdateSuspects(updates) => {
                views.iter().for_each(|v| {
                    v.update_suspects(updates, now);
                });
                views.len()
            }
        }
    }
}

/// A control item and the views it targets: those of this pipe, or (for a view fed by several
/// pipes) a view this consumer was chosen to write for all of them.
struct ControlItem {
    op: Control,
    views: Vec<Arc<dyn ViewDriver>>,
    done: oneshot::Sender<usize>,
}

enum Item {
    Batch(Batch),
    /// Boxed: control items are rare, and the queue's slots stay the size of a batch.
    Control(Box<ControlItem>),
}

#[derive(Debug, thiserror::Error)]
pub enum PipeError {
    #[error("pipe {0} is stopped")]
    Stopped(String),
    #[error("pipe {0} did not drain within {1:?}")]
    DrainTimeout(String, Duration),
    #[error("pipe {0}: control operation failed")]
    ControlFailed(String),
    #[error("{0}")]
    Persist(String),
}

pub struct FusionPipe {
    pub id: String,
    pub views: Vec<Arc<dyn ViewDriver>>,
    pub stats: Arc<PipeStats>,
    tx: mpsc::Sender<Item>,
    rows: Arc<Semaphore>,
    max_rows: usize,
    /// Whether a view of this pipe is persisted (its batches are acknowledged once durable).
    persisted: bool,
}

impl FusionPipe {
    /// Starts the consumer thread. `queue_batches` and `queue_rows` bound the queue.
    pub fn start(
        id: &str,
        views: Vec<Arc<dyn ViewDriver>>,
        queue_batches: usize,
        queue_rows: usize,
        stores: Arc<Stores>,
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
            persisted: views.iter().any(|v| stores.contains_key(v.id())),
        });
        let pipe_id = id.to_string();
        std::thread::Builder::new()
            .name(format!("pipe-{id}"))
            .spawn(move || {
                while let Some(item) = rx.blocking_recv() {
                    match item {
                        Item::Batch(b) => apply(&pipe_id, &views, &stats, &stores, b),
                        Item::Control(c) => run_control(&pipe_id, *c, &stores),
                    }
                }
                tracing::debug!(pipe = %pipe_id, "pipe consumer stopped");
            })?;
        Ok(pipe)
    }

    /// Queues a batch, waiting while the queue is full. For a pipe with persisted views,
    /// answers where to learn the batch's log records (see [`FusionPipe::durable`]).
    pub async fn enqueue(
        &self,
        events: Vec<Event<FsRow>>,
        session_id: &str,
        agent_id: Arc<str>,
        source_uri: Option<Arc<str>>,
        sync: bool,
    ) -> Result<Option<oneshot::Receiver<Tickets>>, PipeError> {
        self.enqueue_at(events, session_id, agent_id, source_uri, sync, None)
            .await
    }

    /// [`FusionPipe::enqueue`] of a realtime batch that says where it ends in its agent's
    /// numbering.
    pub async fn enqueue_at(
        &self,
        events: Vec<Event<FsRow>>,
        session_id: &str,
        agent_id: Arc<str>,
        source_uri: Option<Arc<str>>,
        sync: bool,
        at: Option<(Arc<str>, ResumePoint)>,
    ) -> Result<Option<oneshot::Receiver<Tickets>>, PipeError> {
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
        let (ack, rx) = if self.persisted {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let batch = Batch {
            events,
            session_id: session_id.to_string(),
            agent_id,
            source_uri,
            ack,
            sync,
            at,
            _permit: Some(permit),
        };
        self.tx
            .send(Item::Batch(batch))
            .await
            .map_err(|_| PipeError::Stopped(self.id.clone()))?;
        Ok(rx)
    }

    /// Waits until the log records of a batch queued by [`FusionPipe::enqueue`] are safe: see
    /// [`crate::persist::wal::Wal::durable`] for what `sync` asks.
    pub async fn durable(
        &self,
        rx: oneshot::Receiver<Tickets>,
        sync: bool,
    ) -> Result<(), PipeError> {
        let tickets = rx
            .await
            .map_err(|_| PipeError::ControlFailed(self.id.clone()))?;
        for (wal, seq) in tickets {
            wal.durable(seq, sync)
                .await
                .map_err(|e| PipeError::Persist(e.to_string()))?;
        }
        Ok(())
    }

    /// Queues `op` for every view of this pipe and waits until the consumer has run it.
    pub async fn control(&self, op: Control) -> Result<usize, PipeError> {
        self.control_on(op, self.views.clone()).await
    }

    /// Queues `op` for `views` (waiting while the queue is full, as a batch does) and waits
    /// until the consumer has run it after everything queued before.
    pub async fn control_on(
        &self,
        op: Control,
        views: Vec<Arc<dyn ViewDriver>>,
    ) -> Result<usize, PipeError> {
        let (done, rx) = oneshot::channel();
        self.tx
            .send(Item::Control(Box::new(ControlItem { op, views, done })))
            .await
            .map_err(|_| PipeError::Stopped(self.id.clone()))?;
        rx.await
            .map_err(|_| PipeError::ControlFailed(self.id.clone()))
    }

    /// Waits until everything queued before this call has been applied, at most `timeout`
    /// (shutdown only: it must not hang on a stuck view).
    pub async fn drain(&self, timeout: Duration) -> Result<(), PipeError> {
        tokio::time::timeout(timeout, self.control_on(Control::Barrier, Vec::new()))
            .await
            .map_err(|_| PipeError::DrainTimeout(self.id.clone(), timeout))?
            .map(|_| ())
    }

    pub fn queue_len(&self) -> u64 {
        self.stats.queued_batches.load(Ordering::Relaxed)
    }

    pub fn primary(&self) -> Option<&Arc<dyn ViewDriver>> {
        self.views.first()
    }
}

fn run_control(pipe_id: &str, c: ControlItem, stores: &Stores) {
    // A panicking view must not stop the consumer; the waiter learns of it by the dropped sender.
    let run = std::panic::AssertUnwindSafe(|| {
        run_logged(pipe_id, &c.op, &c.views, stores, Now::system())
    });
    match std::panic::catch_unwind(run) {
        Ok(n) => {
            let _ = c.done.send(n);
        }
        Err(_) => tracing::error!(pipe = %pipe_id, op = ?c.op, "control operation panicked"),
    }
}

/// Runs a control operation, logging it first for the persisted views among `views`.
pub fn run_logged(
    pipe_id: &str,
    op: &Control,
    views: &[Arc<dyn ViewDriver>],
    stores: &Stores,
    now: Now,
) -> usize {
    let held = begin_all(
        stores,
        views,
        |v| v.id(),
        !matches!(op, Control::ExpireSuspects),
    );
    // A persisted view outlives an expired last session (issue 11): no reset (V2), so that an
    // agent that comes back resumes from its committed index and queries keep their answers
    // meanwhile. `persist: false` keeps the reference's reset.
    let kept;
    let op = match op {
        Control::SessionClosed {
            session,
            last: true,
            keep_persisted: true,
        } if !held.is_empty() => {
            kept = Control::SessionClosed {
                session: session.clone(),
                last: false,
                keep_persisted: true,
            };
            for (store, _, _) in &held {
                store.kept();
            }
            &kept
        }
        _ => op,
    };
    if !held.is_empty()
        && let Some(r) = record::control(now, pipe_id, op)
    {
        for (_, _, log) in &held {
            log.wal.append(&[&r], false, false);
        }
    }
    let n = op.run(pipe_id, views, now);
    for (store, v, _) in &held {
        if record::empties(op, v.driver_name()) {
            store.emptied();
        }
    }
    drop(held);
    n
}

/// Applies events to one view, keeping only those of the view's schema.
pub fn apply_events(
    view: &Arc<dyn ViewDriver>,
    events: &[Event<FsRow>],
    ctx: &ViewContext<'_>,
    now: Now,
) -> ApplyReport {
    let schema = view.target_schema();
    if events
        .iter()
        .all(|e| schema.is_empty() || e.event_schema == schema)
    {
        view.apply(events, ctx, now)
    } else {
        let mine: Vec<Event<FsRow>> = events
            .iter()
            .filter(|e| schema.is_empty() || e.event_schema == schema)
            .cloned()
            .collect();
        view.apply(&mine, ctx, now)
    }
}

fn apply(
    pipe_id: &str,
    views: &[Arc<dyn ViewDriver>],
    stats: &PipeStats,
    stores: &Stores,
    mut b: Batch,
) {
    let ctx = ViewContext {
        pipe_id,
        session_id: &b.session_id,
        agent_id: &b.agent_id,
        source_uri: b.source_uri.as_deref(),
    };
    let now = Now::system();
    // Log first (every persisted view), acknowledge, then apply: the answer waits for the
    // disk, not for the views.
    let mut held = Vec::new();
    if !stores.is_empty() {
        held = begin_all(stores, views, |v| v.id(), true);
        let mut tickets = Tickets::new();
        if !held.is_empty() {
            let session = SessionRef {
                session_id: b.session_id.clone(),
                agent_id: b.agent_id.clone(),
                source_uri: b.source_uri.clone(),
            };
            let at = b.at.as_ref().map(|(task, p)| (&**task, p));
            let rec = record::batch(now, pipe_id, &session, &b.events, at);
            for (_, _, log) in &held {
                let seq = log.wal.append(&[&rec], b.ack.is_some(), b.sync);
                tickets.push((log.wal.clone(), seq));
            }
        }
        if let Some(ack) = b.ack.take() {
            let _ = ack.send(tickets);
        }
    }
    for view in views {
        let report = apply_events(view, &b.events, &ctx, now);
        stats.rows_applied.fetch_add(report.rows, Ordering::Relaxed);
        stats
            .rows_rejected
            .fetch_add(report.rejected, Ordering::Relaxed);
    }
    if let Some((task, point)) = &b.at {
        for (store, _, _) in &held {
            store.note_committed(pipe_id, task, point);
        }
    }
    drop(held);
    stats
        .events_processed
        .fetch_add(b.events.len() as u64, Ordering::Relaxed);
    stats.queued_batches.fetch_sub(1, Ordering::Relaxed);
}
