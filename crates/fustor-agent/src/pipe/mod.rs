//! The AgentPipe runtime (`agent-runtime.md` §2–§9): one control loop per pipe plus its tasks
//! (heartbeat, message sync, snapshot, audit, sentinel, rescans, on-demand jobs).
//!
//! Ownership: the control loop alone owns the task handles. Tasks report what it must react to
//! (obsolete session, fatal error) through a channel tagged with the session id, so a late
//! report about an old session can never tear down a new one.

mod commands;
pub mod saved;
mod tasks;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use fustor_core::config::AgentPipeConfig;
use fustor_core::mapping::project_event;
use fustor_core::wire::{
    CommittedIndex, CreateSessionRequest, CreateSessionResponse, HeartbeatRequest, Role,
};
use fustor_core::{BatchKind, Event, EventBatch, FsRow};
use fustor_source_fs::MtimeCache;
use fustor_transport_http::{SendError, Sender};
use parking_lot::Mutex;
use serde_json::{Map, Value};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::backoff::Backoff;
use crate::bus::{RescanSet, Resume};
use crate::source::{self, Source};
use crate::state::{PipeState, PipeStatus};

pub use commands::{CommandOutcome, validate_config_yaml};

/// Events per batch (realtime) and per snapshot/audit/on-demand batch (wire §11).
pub const BATCH_EVENTS: usize = 100;
/// `control_loop_interval`.
const CONTROL_INTERVAL: Duration = Duration::from_secs(1);
/// Heartbeat interval before a session told us the timeout.
const DEFAULT_HEARTBEAT: f64 = 3.0;

/// What a pipe needs besides its sender and source.
#[derive(Debug, Clone)]
pub struct PipeSpec {
    pub id: String,
    pub agent_id: String,
    pub config: AgentPipeConfig,
    /// `$FUSTOR_HOME/agent-config`: source of config reports, target of `update_config`.
    pub config_dir: PathBuf,
    /// `$FUSTOR_HOME/agent-state`: where the pipe keeps what survives a restart ([`saved`]);
    /// `None`: nothing is kept.
    pub state_dir: Option<PathBuf>,
    /// Set when the agent is steered by Fusion's registry: every heartbeat reports its state.
    pub registry: Option<Arc<crate::steer::Steer>>,
}

impl PipeSpec {
    /// `agent_id:pipe_id` (wire §2).
    pub fn task_id(&self) -> String {
        format!("{}:{}", self.agent_id, self.id)
    }
}

/// Requests a pipe makes to the process that runs it (commands from Fusion).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppRequest {
    /// Hot reload (`reload_config`, `update_config`).
    Reload,
    /// `stop_pipe` for this pipe.
    StopPipe(String),
    /// From the registry (issue 15): new configuration versions and admin actions.
    Steer(SteerRequest),
}

/// What the registry asks of the whole agent; `action` is the admin action's id, whose
/// outcome the agent reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SteerRequest {
    ConfigChanged { version: i64, digest: String },
    Reload { action: i64 },
    StopPipe { pipe: String, action: i64 },
    StartPipe { pipe: String, action: Option<i64> },
    RestartPipe { pipe: String, action: Option<i64> },
}

/// Reports from tasks to the control loop.
#[derive(Debug)]
enum Ctl {
    /// HTTP 419 or equivalent for this session.
    Obsolete(String),
    /// A fatal task error for this session (drop it, back off, reconnect).
    Fatal(String, String),
    /// Something changed (role, task finished, rescan requested): run an iteration now.
    Wake,
}

#[derive(Debug)]
struct St {
    state: PipeState,
    session: Option<String>,
    role: Option<Role>,
    heartbeat_interval: f64,
    audit_interval: f64,
    sentinel_interval: f64,
    consecutive_errors: u32,
    initial_snapshot_done: bool,
    realtime_ready: bool,
    mtime_cache: Arc<MtimeCache>,
    pending_rescan: RescanSet,
    last_error: Option<String>,
    /// Fusion answered a committed index for this session: realtime batches tell it their
    /// position (issue 11).
    resume_supported: bool,
    /// `mtime_cache` was read from the agent state at start: the first session keeps it even
    /// though it snapshots, so the first audit lists only what changed.
    cache_from_disk: bool,
    /// The source's [`Source::positions_lost`] this pipe has handled.
    lost_seen: u64,
}

/// Everything the pipe's tasks share.
pub(crate) struct Shared<S> {
    spec: PipeSpec,
    task_id: String,
    sender: S,
    source: Arc<dyn Source>,
    backoff: Backoff,
    st: Mutex<St>,
    events_pushed: AtomicU64,
    /// Full snapshots started and sessions resumed without one: tests and operators check
    /// that a reconnect did not rescan the tree.
    snapshots_started: AtomicU64,
    resumes: AtomicU64,
    ctl_tx: mpsc::UnboundedSender<Ctl>,
    app_tx: Option<mpsc::UnboundedSender<AppRequest>>,
    /// Full audits and targeted rescans never interleave (one audit end each).
    audit_lock: tokio::sync::Mutex<()>,
    /// On-demand jobs: they survive role changes, not the pipe.
    jobs: Mutex<JoinSet<()>>,
}

impl<S: Sender> Shared<S> {
    fn ctl(&self, c: Ctl) {
        let _ = self.ctl_tx.send(c);
    }

    fn session(&self) -> Option<String> {
        self.st.lock().session.clone()
    }

    fn is_current(&self, sid: &str) -> bool {
        self.st.lock().session.as_deref() == Some(sid)
    }

    fn is_leader_of(&self, sid: &str) -> bool {
        let st = self.st.lock();
        st.session.as_deref() == Some(sid) && st.role.is_some_and(Role::is_leader)
    }

    fn update_state(&self, f: impl FnOnce(PipeState) -> PipeState) {
        let mut st = self.st.lock();
        st.state = f(st.state);
    }

    /// Counts an error and returns the backoff in seconds (§5).
    fn handle_error(&self, what: &str, err: &dyn std::fmt::Display) -> f64 {
        let mut st = self.st.lock();
        st.consecutive_errors = st.consecutive_errors.saturating_add(1);
        let n = st.consecutive_errors;
        st.last_error = Some(format!("{what}: {err}"));
        if n >= self.backoff.alert_after {
            if n == self.backoff.alert_after {
                tracing::error!(pipe = %self.spec.id, error = %err,
                    "CRITICAL: Max retries ({}) exceeded: {what}; the pipe keeps retrying",
                    self.backoff.alert_after);
            }
            st.state = st
                .state
                .with(PipeState::RUNNING)
                .with(PipeState::ERROR)
                .with(PipeState::RECONNECTING);
        } else {
            tracing::warn!(pipe = %self.spec.id, error = %err, consecutive = n,
                retry_in_s = self.backoff.after_error(n), "{what} failed");
        }
        self.backoff.after_error(n)
    }

    fn reset_errors(&self) {
        let mut st = self.st.lock();
        if st.consecutive_errors > 0 {
            tracing::info!(pipe = %self.spec.id, after = st.consecutive_errors, "RECOVERED");
            st.consecutive_errors = 0;
            st.state = st.state.without(PipeState::ERROR);
        }
    }

    /// Role from a session response or heartbeat (§7).
    fn apply_role(&self, sid: &str, role: Role) {
        let mut st = self.st.lock();
        if st.session.as_deref() != Some(sid) || st.role == Some(role) {
            return;
        }
        tracing::info!(pipe = %self.spec.id, from = ?st.role, to = %role, "role changed");
        st.role = Some(role);
        if role.is_leader() {
            // The next audit after an election lists everything.
            st.mtime_cache = Arc::default();
        }
        drop(st);
        self.ctl(Ctl::Wake);
    }

    /// `can_realtime`: consumption started and the source's watcher is alive.
    fn can_realtime(&self) -> bool {
        self.st.lock().realtime_ready && self.source.realtime_ok()
    }

    fn heartbeat_request(&self) -> HeartbeatRequest {
        let can_realtime = self.can_realtime();
        let st = self.st.lock();
        let mut status = Map::new();
        status.insert("agent_id".into(), self.spec.agent_id.clone().into());
        status.insert("pipe_id".into(), self.spec.id.clone().into());
        status.insert("state".into(), st.state.to_string().into());
        status.insert(
            "role".into(),
            st.role.map_or(Value::Null, |r| r.as_str().into()),
        );
        status.insert(
            "events_pushed".into(),
            self.events_pushed.load(Ordering::Relaxed).into(),
        );
        status.insert("is_realtime_ready".into(), can_realtime.into());
        // Health for Fusion's registry; the Python Fusion keeps `agent_status` unread.
        status.insert(
            "realtime_degraded".into(),
            (!self.source.realtime_ok()).into(),
        );
        status.insert(
            "initial_snapshot_done".into(),
            st.initial_snapshot_done.into(),
        );
        status.insert("consecutive_errors".into(), st.consecutive_errors.into());
        status.insert(
            "last_error".into(),
            st.last_error.clone().map_or(Value::Null, Value::from),
        );
        status.insert(
            "audit_running".into(),
            self.audit_lock.try_lock().is_err().into(),
        );
        drop(st);
        if let Some((used, limit)) = self.source.watch_budget() {
            status.insert("watches_used".into(), used.into());
            status.insert("watch_limit".into(), limit.into());
        }
        if let Some(steer) = &self.spec.registry
            && let Ok(v) = serde_json::to_value(steer.report())
        {
            status.insert(fustor_core::wire::REGISTRY_STATUS_KEY.into(), v);
        }
        HeartbeatRequest {
            can_realtime,
            agent_status: Some(status),
        }
    }

    fn status(&self) -> PipeStatus {
        let can_realtime = self.can_realtime();
        let st = self.st.lock();
        PipeStatus {
            id: self.spec.id.clone(),
            state: st.state.to_string(),
            role: st.role.map(|r| r.as_str().to_string()),
            session_id: st.session.clone(),
            events_pushed: self.events_pushed.load(Ordering::Relaxed),
            can_realtime,
            realtime_degraded: !self.source.realtime_ok(),
            initial_snapshot_done: st.initial_snapshot_done,
            consecutive_errors: st.consecutive_errors,
            last_error: st.last_error.clone(),
            source_problem: self.source.problem(),
            snapshots_started: self.snapshots_started.load(Ordering::Relaxed),
            resumes: self.resumes.load(Ordering::Relaxed),
        }
    }

    /// Sends events as batches of kind `kind` with field mapping applied. A 413 splits the
    /// batch (events, then rows) instead of retrying it forever; a single row that is still too
    /// large is dropped with an error. `is_end` and `metadata` go on the last batch actually
    /// sent: a resume position must not be claimed by the first half of a split batch.
    async fn send_events(
        &self,
        sid: &str,
        kind: BatchKind,
        events: Vec<Event<FsRow>>,
        is_end: bool,
        metadata: Option<Map<String, Value>>,
    ) -> Result<(), SendError> {
        let mut queue: VecDeque<Vec<Event<FsRow>>> = VecDeque::from([events]);
        while let Some(chunk) = queue.pop_front() {
            let last = queue.is_empty();
            let end = is_end && last;
            let meta = if last { metadata.clone() } else { None };
            match self.send_once(sid, &kind, &chunk, end, meta).await {
                Ok(()) => {}
                Err(SendError::TooLarge { url }) => {
                    if chunk.len() > 1 {
                        let mut first = chunk;
                        let second = first.split_off(first.len() / 2);
                        queue.push_front(second);
                        queue.push_front(first);
                    } else if let Some(ev) = chunk.into_iter().next() {
                        if ev.rows.len() > 1 {
                            let mut a = ev.clone();
                            let mut b = ev;
                            b.rows = a.rows.split_off(a.rows.len() / 2);
                            queue.push_front(vec![b]);
                            queue.push_front(vec![a]);
                        } else {
                            tracing::error!(pipe = %self.spec.id, url = %url,
                                path = ?ev.rows.first().and_then(|r| r.path.as_deref()),
                                "a single row is too large for Fusion; dropped");
                            if end {
                                queue.push_front(Vec::new());
                            }
                        }
                    } else {
                        return Err(SendError::TooLarge { url });
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn send_once(
        &self,
        sid: &str,
        kind: &BatchKind,
        events: &[Event<FsRow>],
        is_end: bool,
        metadata: Option<Map<String, Value>>,
    ) -> Result<(), SendError> {
        let rules = &self.spec.config.fields_mapping;
        if rules.is_empty() {
            let batch = EventBatch {
                session_id: None,
                events: events.to_vec(),
                source_type: kind.as_str().to_string(),
                is_end,
                metadata,
            };
            self.sender.send_batch(sid, &batch).await
        } else {
            let batch = EventBatch {
                session_id: None,
                events: events.iter().map(|e| project_event(e, rules)).collect(),
                source_type: kind.as_str().to_string(),
                is_end,
                metadata,
            };
            self.sender.send_batch(sid, &batch).await
        }
    }
}

/// Task handles of the current session; owned by the control loop.
#[derive(Default)]
struct Tasks {
    heartbeat: Option<JoinHandle<()>>,
    msync: Option<JoinHandle<()>>,
    snapshot: Option<JoinHandle<Result<(), SendError>>>,
    audit: Option<JoinHandle<()>>,
    sentinel: Option<JoinHandle<()>>,
    rescan: Option<JoinHandle<()>>,
}

fn running<T>(h: &Option<JoinHandle<T>>) -> bool {
    h.as_ref().is_some_and(|h| !h.is_finished())
}

fn abort<T>(h: &mut Option<JoinHandle<T>>) {
    if let Some(h) = h.take() {
        h.abort();
    }
}

impl Tasks {
    fn cancel_leader(&mut self) {
        abort(&mut self.snapshot);
        abort(&mut self.audit);
        abort(&mut self.sentinel);
    }

    fn cancel_all(&mut self) {
        self.cancel_leader();
        abort(&mut self.heartbeat);
        abort(&mut self.msync);
        abort(&mut self.rescan);
    }

    /// Cancels every task and waits until each one is gone (they hold the pipe's source, which
    /// the last holder closes), at most `limit` in all.
    async fn cancel_all_and_wait(&mut self, limit: Duration) {
        let mut handles: Vec<JoinHandle<()>> = Vec::new();
        for h in [
            self.heartbeat.take(),
            self.msync.take(),
            self.audit.take(),
            self.sentinel.take(),
            self.rescan.take(),
        ]
        .into_iter()
        .flatten()
        {
            h.abort();
            handles.push(h);
        }
        let snapshot = self.snapshot.take();
        if let Some(h) = &snapshot {
            h.abort();
        }
        let _ = tokio::time::timeout(limit, async move {
            for h in handles {
                let _ = h.await;
            }
            if let Some(h) = snapshot {
                let _ = h.await;
            }
        })
        .await;
    }
}

/// A running pipe.
pub struct Pipe<S: Sender> {
    shared: Arc<Shared<S>>,
    stop_tx: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl<S: Sender> Pipe<S> {
    /// Subscribes to the source's bus and starts the control loop (session creation happens
    /// there, after realtime capture is armed: message-first).
    pub fn start(
        spec: PipeSpec,
        sender: S,
        source: Arc<dyn Source>,
        app_tx: Option<mpsc::UnboundedSender<AppRequest>>,
    ) -> Pipe<S> {
        source.bus().subscribe(&spec.id);
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = watch::channel(false);
        let cfg = &spec.config;
        let st = St {
            state: PipeState::INITIALIZING,
            session: None,
            role: None,
            heartbeat_interval: DEFAULT_HEARTBEAT,
            audit_interval: cfg.audit_interval_sec,
            sentinel_interval: cfg.sentinel_interval_sec,
            consecutive_errors: 0,
            initial_snapshot_done: false,
            realtime_ready: false,
            mtime_cache: Arc::default(),
            pending_rescan: RescanSet::default(),
            last_error: None,
            resume_supported: false,
            cache_from_disk: false,
            lost_seen: source.positions_lost(),
        };
        let shared = Arc::new(Shared {
            task_id: spec.task_id(),
            backoff: Backoff::from_pipe(cfg),
            spec,
            sender,
            source,
            st: Mutex::new(st),
            events_pushed: AtomicU64::new(0),
            snapshots_started: AtomicU64::new(0),
            resumes: AtomicU64::new(0),
            ctl_tx,
            app_tx,
            audit_lock: tokio::sync::Mutex::new(()),
            jobs: Mutex::new(JoinSet::new()),
        });
        tracing::info!(pipe = %shared.spec.id, task_id = %shared.task_id, "pipe started");
        let task = tokio::spawn(control_loop(shared.clone(), ctl_rx, stop_rx));
        Pipe {
            shared,
            stop_tx,
            task: Some(task),
        }
    }

    pub fn id(&self) -> &str {
        &self.shared.spec.id
    }

    pub fn spec(&self) -> &PipeSpec {
        &self.shared.spec
    }

    pub fn source(&self) -> &Arc<dyn Source> {
        &self.shared.source
    }

    pub fn sender(&self) -> &S {
        &self.shared.sender
    }

    pub fn status(&self) -> PipeStatus {
        self.shared.status()
    }

    /// STOPPING → cancel tasks → `DELETE` the session → STOPPED; then releases the bus
    /// subscription and the source reference (the last one stops the source).
    pub async fn stop(mut self) -> PipeStatus {
        let _ = self.stop_tx.send(true);
        if let Some(t) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(10), t)
                .await
                .is_err()
        {
            tracing::warn!(pipe = %self.shared.spec.id, "pipe did not stop in time");
        }
        let mut jobs = std::mem::take(&mut *self.shared.jobs.lock());
        jobs.abort_all();
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while jobs.join_next().await.is_some() {}
        })
        .await;
        self.shared.source.bus().unsubscribe(&self.shared.spec.id);
        let status = self.shared.status();
        let src = self.shared.source.clone();
        drop(self);
        source::release(src).await;
        status
    }
}

impl<S: Sender> Drop for Pipe<S> {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

/// §3: never exits while running.
async fn control_loop<S: Sender>(
    sh: Arc<Shared<S>>,
    mut ctl_rx: mpsc::UnboundedReceiver<Ctl>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tasks = Tasks::default();
    restore_saved(&sh).await;
    sh.update_state(|_| PipeState::RUNNING);
    loop {
        if *stop.borrow() {
            break;
        }
        let pending = sh.st.lock().consecutive_errors;
        if pending > 0 && sleep_or_stop(sh.backoff.delay(pending), &mut stop).await {
            break;
        }
        let mut failed = false;
        if sh.session().is_none() {
            sh.update_state(|_| PipeState::RUNNING.with(PipeState::RECONNECTING));
            match create_session(&sh, &mut tasks).await {
                Ok(()) => {}
                Err(e) => {
                    sh.handle_error("session creation", &e);
                    failed = true;
                }
            }
        }
        if let Some(sid) = sh.session() {
            if let Err(e) = iteration(&sh, &sid, &mut tasks).await {
                failed = true;
                if e.is_obsolete() {
                    drop_session(&sh, &mut tasks, &sid);
                } else {
                    drop_session(&sh, &mut tasks, &sid);
                    sh.handle_error("snapshot", &e);
                    sh.update_state(|s| s.with(PipeState::ERROR).with(PipeState::RECONNECTING));
                }
            }
        } else {
            sh.update_state(|s| s.with(PipeState::RUNNING));
        }
        if !failed && pending > 0 && sh.st.lock().consecutive_errors == pending {
            sh.reset_errors();
        }
        // Wait for the next iteration, waking early on reports.
        let first = tokio::select! {
            c = ctl_rx.recv() => c,
            _ = tokio::time::sleep(CONTROL_INTERVAL) => None,
            _ = stop.changed() => None,
        };
        let mut reports: Vec<Ctl> = first.into_iter().collect();
        while let Ok(c) = ctl_rx.try_recv() {
            reports.push(c);
        }
        for c in reports {
            match c {
                Ctl::Obsolete(sid) if sh.is_current(&sid) => {
                    tracing::warn!(pipe = %sh.spec.id, session = %sid,
                        "session obsolete; reconnecting");
                    drop_session(&sh, &mut tasks, &sid);
                    if sleep_or_stop(Duration::from_millis(100), &mut stop).await {
                        break;
                    }
                }
                Ctl::Fatal(sid, msg) if sh.is_current(&sid) => {
                    drop_session(&sh, &mut tasks, &sid);
                    sh.handle_error("message sync", &msg);
                    sh.update_state(|s| s.with(PipeState::RUNNING).with(PipeState::ERROR));
                }
                _ => {}
            }
        }
    }
    // Stop (§13): cancel (wait ≤ 2 s), DELETE, STOPPED.
    sh.update_state(|_| PipeState::STOPPING);
    tasks.cancel_all_and_wait(Duration::from_secs(2)).await;
    save_state(&sh).await;
    if let Some(sid) = sh.session() {
        match tokio::time::timeout(Duration::from_secs(5), sh.sender.close_session(&sid)).await {
            Ok(Ok(())) => tracing::info!(pipe = %sh.spec.id, session = %sid, "session closed"),
            Ok(Err(e)) => {
                tracing::warn!(pipe = %sh.spec.id, error = %e, "closing the session failed")
            }
            Err(_) => tracing::warn!(pipe = %sh.spec.id, "closing the session timed out"),
        }
        let mut st = sh.st.lock();
        st.session = None;
        st.role = None;
    }
    sh.update_state(|_| PipeState::STOPPED);
    tracing::info!(pipe = %sh.spec.id, "pipe stopped");
}

/// Reads the pipe's saved state (audit cache) before the first session.
async fn restore_saved<S: Sender>(sh: &Arc<Shared<S>>) {
    let Some(dir) = sh.spec.state_dir.clone() else {
        return;
    };
    let (id, uri) = (sh.spec.id.clone(), sh.source.uri().to_string());
    let loaded = tokio::task::spawn_blocking(move || saved::load(&dir, &id, &uri))
        .await
        .ok()
        .flatten();
    if let Some((cache, meta)) = loaded {
        tracing::info!(pipe = %sh.spec.id, directories = cache.len(),
            previous_bus = %meta.bus_epoch, previous_position = meta.committed_seq,
            "audit cache restored from the agent state");
        let mut st = sh.st.lock();
        st.mtime_cache = Arc::new(cache);
        st.cache_from_disk = true;
    }
}

/// Writes the pipe's state (audit cache, bus position) off the async threads; a failure is
/// logged, never fatal.
pub(crate) async fn save_state<S: Sender>(sh: &Arc<Shared<S>>) {
    let Some(dir) = sh.spec.state_dir.clone() else {
        return;
    };
    let cache = sh.st.lock().mtime_cache.clone();
    let bus = sh.source.bus();
    let position = bus.position(&sh.spec.id);
    let epoch = bus.epoch().to_string();
    let (id, uri) = (sh.spec.id.clone(), sh.source.uri().to_string());
    let r = tokio::task::spawn_blocking(move || {
        let value = saved::SavedPipe::new(&uri, &epoch, position, &cache);
        saved::file(&dir, &id).save(&value)
    })
    .await;
    match r {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(pipe = %sh.spec.id, error = %e, "saving the pipe state failed")
        }
        Err(e) => tracing::warn!(pipe = %sh.spec.id, error = %e, "saving the pipe state failed"),
    }
}

/// §3.2: local only, no DELETE.
fn drop_session<S: Sender>(sh: &Shared<S>, tasks: &mut Tasks, sid: &str) {
    tasks.cancel_all();
    let mut st = sh.st.lock();
    if st.session.as_deref() != Some(sid) {
        return;
    }
    st.session = None;
    st.role = None;
    st.realtime_ready = false;
    st.initial_snapshot_done = false;
    st.resume_supported = false;
    st.state = st
        .state
        .without(PipeState::SNAPSHOT_SYNC)
        .without(PipeState::MESSAGE_SYNC)
        .without(PipeState::AUDIT_PHASE)
        .without(PipeState::PAUSED)
        .with(PipeState::RECONNECTING);
}

async fn create_session<S: Sender>(
    sh: &Arc<Shared<S>>,
    tasks: &mut Tasks,
) -> Result<(), SendError> {
    let mut client_info = Map::new();
    client_info.insert("source_uri".into(), sh.source.uri().into());
    // For Fusion's agent inventory (the Python Fusion ignores unknown `client_info` keys).
    client_info.insert("hostname".into(), crate::agent_id::hostname().into());
    client_info.insert("agent_version".into(), env!("CARGO_PKG_VERSION").into());
    let req = CreateSessionRequest {
        task_id: sh.task_id.clone(),
        client_info: Some(client_info),
        session_timeout_seconds: sh
            .spec
            .config
            .session_timeout_seconds
            .filter(|t| t.is_finite() && *t > 0.0)
            .map(|t| t.round() as i64),
        source_type: Some(sh.source.driver().to_string()),
    };
    let resp = sh.sender.create_session(&req).await?;
    on_session_created(sh, tasks, resp).await;
    Ok(())
}

/// §3.1.
async fn on_session_created<S: Sender>(
    sh: &Arc<Shared<S>>,
    tasks: &mut Tasks,
    resp: CreateSessionResponse,
) {
    let sid = resp.session_id.clone();
    let role = resp.role;
    let resumed = resume_decision(sh, resp.committed_index.as_ref());
    {
        let mut st = sh.st.lock();
        st.session = Some(sid.clone());
        st.role = Some(role);
        if resp.session_timeout_seconds > 0 {
            st.heartbeat_interval = (resp.session_timeout_seconds as f64 / 3.0).max(0.1);
        }
        // Fusion's values are authoritative but not trusted to be sane: clamp them.
        if let Some(a) = resp.audit_interval_sec {
            st.audit_interval = fustor_core::time::clamp_secs(a);
        }
        if let Some(s) = resp.sentinel_interval_sec {
            st.sentinel_interval = fustor_core::time::clamp_secs(s);
        }
        // A resumed session has nothing to snapshot: Fusion holds everything up to the
        // committed index and the bus replays the rest. Otherwise the audit starts over too.
        st.initial_snapshot_done = resumed;
        if !resumed && !st.cache_from_disk {
            st.mtime_cache = Arc::default();
        }
        st.cache_from_disk = false;
        st.resume_supported = resp.committed_index.is_some();
        st.realtime_ready = false;
        st.state = st.state.without(PipeState::RECONNECTING);
    }
    tracing::info!(pipe = %sh.spec.id, session = %sid, role = %role,
        timeout_s = resp.session_timeout_seconds, "session created");
    sh.reset_errors();
    tasks.heartbeat = Some(tokio::spawn(tasks::heartbeat_loop(sh.clone(), sid.clone())));
    commands::send_config_report(sh, &sid, "default.yaml").await;
}

/// Whether the new session continues from Fusion's committed index (issue 11) instead of a
/// full snapshot; positions the bus subscription when it does.
fn resume_decision<S: Sender>(sh: &Shared<S>, committed: Option<&CommittedIndex>) -> bool {
    let Some(c) = committed else {
        return false;
    };
    match sh
        .source
        .bus()
        .resume(&sh.spec.id, c.epoch.as_deref(), c.seq)
    {
        Resume::Replay { from, pending } => {
            let n = sh.resumes.fetch_add(1, Ordering::Relaxed) + 1;
            let rescan = sh.st.lock().pending_rescan.len();
            tracing::info!(pipe = %sh.spec.id, committed = from, replay = pending,
                rescan_dirs = rescan, resumes = n,
                "session resumed from Fusion's committed index: no snapshot");
            true
        }
        Resume::Snapshot => {
            tracing::info!(pipe = %sh.spec.id, committed = c.seq,
                same_bus = c.epoch.as_deref() == Some(sh.source.bus().epoch()),
                "Fusion's committed index cannot be continued from: full snapshot");
            false
        }
    }
}

/// Steps 3–4 of §3 for an existing session; an error is fatal for the session.
async fn iteration<S: Sender>(
    sh: &Arc<Shared<S>>,
    sid: &str,
    tasks: &mut Tasks,
) -> Result<(), SendError> {
    let leader = sh.is_leader_of(sid);
    position_lost(sh, tasks, leader);
    if leader {
        leader_sequence(sh, sid, tasks).await?;
    } else {
        tasks.cancel_leader();
        sh.update_state(|s| {
            s.with(PipeState::RUNNING)
                .with(PipeState::PAUSED)
                .without(PipeState::SNAPSHOT_SYNC)
                .without(PipeState::AUDIT_PHASE)
        });
    }
    if !running(&tasks.msync) {
        tasks.msync = Some(tokio::spawn(tasks::message_sync(
            sh.clone(),
            sid.to_string(),
        )));
    }
    let rescan_ready = {
        let st = sh.st.lock();
        !st.pending_rescan.is_empty() && (!leader || st.initial_snapshot_done)
    };
    if rescan_ready && !running(&tasks.rescan) {
        tasks.rescan = Some(tokio::spawn(tasks::rescan(
            sh.clone(),
            sid.to_string(),
            leader,
        )));
    }
    Ok(())
}

/// The source's change stream lost its position and restarted from the present: the leader
/// takes a new snapshot in the same session (one already running started before the loss and
/// is restarted); a follower sends no snapshots and only notes it.
fn position_lost<S: Sender>(sh: &Shared<S>, tasks: &mut Tasks, leader: bool) {
    let lost = sh.source.positions_lost();
    {
        let mut st = sh.st.lock();
        if st.lost_seen == lost {
            return;
        }
        st.lost_seen = lost;
        if leader {
            st.initial_snapshot_done = false;
        }
    }
    if leader {
        abort(&mut tasks.snapshot);
        sh.update_state(|s| s.without(PipeState::SNAPSHOT_SYNC));
        tracing::warn!(pipe = %sh.spec.id, losses = lost,
            "the source's change stream lost its position (needed_position_lost): new snapshot");
    }
}

/// §6, with exactly one snapshot per session (§14 item 10: completion is checked first).
async fn leader_sequence<S: Sender>(
    sh: &Arc<Shared<S>>,
    sid: &str,
    tasks: &mut Tasks,
) -> Result<(), SendError> {
    sh.update_state(|s| s.without(PipeState::PAUSED).with(PipeState::RUNNING));
    if tasks.snapshot.as_ref().is_some_and(|h| h.is_finished())
        && let Some(h) = tasks.snapshot.take()
    {
        match h.await {
            Ok(Ok(())) => {
                sh.st.lock().initial_snapshot_done = true;
                sh.update_state(|s| s.without(PipeState::SNAPSHOT_SYNC));
                tracing::info!(pipe = %sh.spec.id, "initial snapshot complete");
            }
            Ok(Err(e)) => {
                sh.update_state(|s| s.without(PipeState::SNAPSHOT_SYNC));
                return Err(e);
            }
            Err(_) => sh.update_state(|s| s.without(PipeState::SNAPSHOT_SYNC)),
        }
    }
    let (done, audit_iv, sentinel_iv) = {
        let st = sh.st.lock();
        (
            st.initial_snapshot_done,
            st.audit_interval,
            st.sentinel_interval,
        )
    };
    if !done && tasks.snapshot.is_none() {
        sh.update_state(|s| s.with(PipeState::SNAPSHOT_SYNC));
        tasks.snapshot = Some(tokio::spawn(tasks::snapshot(sh.clone(), sid.to_string())));
    }
    let can = sh.source.capabilities();
    if can.audit && audit_iv > 0.0 && !running(&tasks.audit) {
        tasks.audit = Some(tokio::spawn(tasks::audit_loop(sh.clone(), sid.to_string())));
    }
    if can.sentinel && sentinel_iv > 0.0 && !running(&tasks.sentinel) {
        tasks.sentinel = Some(tokio::spawn(tasks::sentinel_loop(
            sh.clone(),
            sid.to_string(),
        )));
    }
    Ok(())
}
