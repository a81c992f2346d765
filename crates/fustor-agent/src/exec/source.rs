//! An exec source: the supervised driver process behind the [`Source`] contract.
//!
//! One supervisor thread per source runs the process, restarts it with backoff and pings it;
//! the process's reader thread routes each message: changes into the event bus (waiting while
//! the bus is full, so a flooding driver is back-pressured instead of dropping events), stream
//! rows to the snapshot/audit/scan iterator that asked for them, sentinel answers to their
//! caller.
//!
//! Changes missed while the driver was down are recovered on its next start: a driver with
//! positions resumes from the last acknowledged one; otherwise, or when it reports
//! `position_lost`, or when a stream was cut by the crash, the source resynchronises: an audit
//! if the driver has audits (deletes are found too), else its snapshot replayed into the change
//! stream.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fustor_core::config::SourceConfig;
use fustor_core::{Event, EventType, FsRow, MessageSource};
use fustor_source_fs::{AuditItem, MtimeCache, SentinelStatus, SentinelUpdate};
use parking_lot::{Condvar, Mutex};

use super::process::{DriverProcess, Writer};
use super::protocol::{
    DeclaredCapabilities, DriverHello, FromDriver, PROTOCOL_VERSION, Role, SentinelItem, ToDriver,
    event,
};
use super::supervisor::{DriverCore, Supervised, supervise};
use super::{ExecError, ExecParams};
use crate::bus::EventBus;
use crate::source::{
    AuditStream, Capabilities, SnapshotStream, Source, SourceCore, SourceDriver, SourceError,
    Supports,
};

/// Row batches buffered per stream between the driver and the pipe reading it.
const STREAM_BATCHES: usize = 8;

enum StreamMsg {
    Rows(Vec<FsRow>),
    End,
    Failed(String),
}

/// What the current run of the process has.
#[derive(Default)]
struct Run {
    writer: Option<Writer>,
    caps: DeclaredCapabilities,
    fields: Vec<String>,
    streams: HashMap<u64, SyncSender<StreamMsg>>,
    sentinels: HashMap<u64, SyncSender<Vec<SentinelItem>>>,
    /// Last acknowledged change position (kept across runs).
    position: Option<String>,
    /// The last problem (shown in the pipe status until the next clean handshake).
    problem: Option<String>,
    /// Missed changes must be recovered once the driver is back.
    resync: bool,
}

struct Shared {
    driver: DriverCore,
    uri: String,
    bus: Arc<EventBus>,
    up: AtomicBool,
    run: Mutex<Run>,
    changed: Condvar,
    next_id: AtomicU64,
    me: Weak<Shared>,
}

/// A running exec source.
pub struct ExecSource {
    core: SourceCore,
    shared: Arc<Shared>,
    supervisor: Mutex<Option<JoinHandle<()>>>,
}

impl ExecSource {
    /// Starts the supervisor and waits up to the handshake timeout for the first handshake, so
    /// that changes are captured when this returns (message-first). A driver that does not
    /// come up is not an error here: the source runs degraded and keeps restarting it.
    pub fn start(cfg: &SourceConfig, params: ExecParams) -> Result<Arc<ExecSource>, SourceError> {
        let driver = DriverCore::new(params).map_err(SourceError::from)?;
        let core = SourceCore::new(cfg);
        let shared = Arc::new_cyclic(|me| Shared {
            me: me.clone(),
            driver,
            uri: cfg.uri.clone(),
            bus: core.bus.clone(),
            up: AtomicBool::new(false),
            run: Mutex::new(Run::default()),
            changed: Condvar::new(),
            next_id: AtomicU64::new(1),
        });
        let s = shared.clone();
        let handle = std::thread::Builder::new()
            .name("exec-supervisor".into())
            .spawn(move || supervise(&s))
            .map_err(|e| SourceError::from(ExecError::Spawn(format!("thread: {e}"))))?;
        let src = Arc::new(ExecSource {
            core,
            shared,
            supervisor: Mutex::new(Some(handle)),
        });
        src.shared
            .wait_up(src.shared.driver.params.handshake_timeout());
        Ok(src)
    }

    /// The row fields the driver declared (empty before its first handshake).
    pub fn fields(&self) -> Vec<String> {
        self.shared.run.lock().fields.clone()
    }
}

impl Drop for ExecSource {
    fn drop(&mut self) {
        self.shared.driver.stop.store(true, Ordering::SeqCst);
        self.shared.changed.notify_all();
        if let Some(h) = self.supervisor.lock().take()
            && h.join().is_err()
        {
            tracing::error!(driver = %self.shared.driver.name, "the exec supervisor panicked");
        }
        tracing::info!(driver = %self.shared.driver.name, "source closed");
    }
}

impl Shared {
    /// The writer of the running process, waiting up to `wait` for one.
    fn wait_up(&self, wait: Duration) -> Option<(Writer, DeclaredCapabilities)> {
        let deadline = Instant::now() + wait;
        let mut run = self.run.lock();
        loop {
            if let Some(w) = &run.writer {
                return Some((w.clone(), run.caps));
            }
            if self.driver.stop.load(Ordering::SeqCst)
                || self.changed.wait_until(&mut run, deadline).timed_out()
            {
                return run.writer.clone().map(|w| (w, run.caps));
            }
        }
    }

    /// Opens a row stream (`make` builds the request for the new id); `None` when the driver
    /// is down or lacks the capability.
    fn stream(
        &self,
        needs: impl Fn(&DeclaredCapabilities) -> bool,
        make: impl FnOnce(u64) -> ToDriver<'static>,
    ) -> Option<Receiver<StreamMsg>> {
        self.stream_with(needs, |id, w| w.send(&make(id)))
    }

    fn stream_with(
        &self,
        needs: impl Fn(&DeclaredCapabilities) -> bool,
        send: impl FnOnce(u64, &Writer) -> Result<(), ExecError>,
    ) -> Option<Receiver<StreamMsg>> {
        let (writer, caps) = self.wait_up(self.driver.params.handshake_timeout())?;
        if !needs(&caps) {
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = sync_channel(STREAM_BATCHES);
        self.run.lock().streams.insert(id, tx);
        if let Err(e) = send(id, &writer) {
            self.run.lock().streams.remove(&id);
            tracing::warn!(driver = %self.driver.name, error = %e, "stream request not sent");
            return None;
        }
        Some(rx)
    }

    /// Puts a change on the bus, waiting while the bus is full (back-pressure on the driver).
    fn put_change(&self, ev: Event<FsRow>) {
        let cap = self.bus.capacity();
        loop {
            let st = self.bus.stats();
            if st.buffered < cap.saturating_mul(st.rings.max(1))
                || self.driver.stop.load(Ordering::SeqCst)
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.bus.put(ev);
    }

    /// Routes one message of the running process (on its reader thread).
    fn route(&self, msg: FromDriver) -> Result<bool, String> {
        match msg {
            FromDriver::Rows { id, rows } => {
                let tx = self.run.lock().streams.get(&id).cloned();
                if let Some(tx) = tx
                    && tx.send(StreamMsg::Rows(rows)).is_err()
                {
                    self.run.lock().streams.remove(&id);
                }
            }
            FromDriver::End { id } => {
                if let Some(tx) = self.run.lock().streams.remove(&id) {
                    let _ = tx.send(StreamMsg::End);
                }
            }
            FromDriver::Change {
                event_type,
                rows,
                position,
            } => {
                if rows.iter().any(|r| r.path.is_none()) {
                    return Err("a change row without path".into());
                }
                self.put_change(event(event_type, MessageSource::Realtime, rows));
                if let Some(p) = position {
                    let w = {
                        let mut run = self.run.lock();
                        run.position = Some(p.clone());
                        run.writer.clone()
                    };
                    if let Some(w) = w {
                        // A full stdin queue is caught by the ping check.
                        let _ = w.send(&ToDriver::Ack { position: &p });
                    }
                }
            }
            FromDriver::PositionLost { reason } => {
                tracing::warn!(driver = %self.driver.name, reason = ?reason,
                    "exec driver lost its position; resynchronising");
                self.run.lock().resync = true;
            }
            FromDriver::SentinelResult { id, items } => {
                if let Some(tx) = self.run.lock().sentinels.remove(&id) {
                    let _ = tx.try_send(items);
                }
            }
            FromDriver::Error { id, message, fatal } => {
                let shown: String = message.chars().take(500).collect();
                if fatal {
                    return Err(format!("fatal driver error: {}", shown.escape_debug()));
                }
                tracing::warn!(driver = %self.driver.name, request = ?id, error = %shown.escape_debug(),
                    "exec driver error");
                let mut run = self.run.lock();
                if let Some(id) = id {
                    if let Some(tx) = run.streams.remove(&id) {
                        let _ = tx.try_send(StreamMsg::Failed(shown));
                    }
                    run.sentinels.remove(&id);
                } else {
                    run.problem = Some(format!("driver error: {}", shown.escape_debug()));
                }
            }
            FromDriver::Session { .. } | FromDriver::Ack { .. } => {
                return Err("a sender message from a source driver".into());
            }
            FromDriver::Hello(_) | FromDriver::Pong { .. } => {}
        }
        Ok(true)
    }
}

impl Supervised for Shared {
    fn driver(&self) -> &DriverCore {
        &self.driver
    }

    fn send_hello(&self, proc: &DriverProcess) -> Result<(), ExecError> {
        let start_position = self.run.lock().position.clone();
        proc.send(&ToDriver::Hello {
            protocol: PROTOCOL_VERSION,
            role: Role::Source,
            uri: &self.uri,
            config: &self.driver.params.config,
            start_position: start_position.as_deref(),
        })
    }

    fn on_message(&self, msg: FromDriver) -> Result<bool, String> {
        self.route(msg)
    }

    fn on_up(&self, writer: Writer, hello: DriverHello, first: bool) {
        let resync = {
            let mut run = self.run.lock();
            run.writer = Some(writer);
            run.caps = hello.capabilities;
            run.fields = hello.fields;
            run.problem = None;
            std::mem::take(&mut run.resync) && !first
        };
        self.up.store(true, Ordering::SeqCst);
        self.changed.notify_all();
        if resync && let Some(me) = self.me.upgrade() {
            start_resync(&me);
        }
    }

    fn on_down(&self) -> String {
        self.up.store(false, Ordering::SeqCst);
        let cut = {
            let mut run = self.run.lock();
            run.writer = None;
            let cut = !run.streams.is_empty();
            run.streams.clear();
            run.sentinels.clear();
            // Changes made while the driver is down are recovered after the restart.
            if !run.caps.positions || cut {
                run.resync = true;
            }
            cut
        };
        self.changed.notify_all();
        if cut {
            " (a stream was cut)".into()
        } else {
            String::new()
        }
    }

    fn report(&self, problem: String) {
        tracing::error!(driver = %self.driver.name, problem = %problem, "exec driver problem");
        self.run.lock().problem = Some(problem);
    }
}

/// Recovers the changes missed while the driver was down (see the module doc).
fn start_resync(sh: &Arc<Shared>) {
    let caps = sh.run.lock().caps;
    if caps.audit {
        tracing::info!(driver = %sh.driver.name, "resync: audit requested");
        sh.bus.mark_lost_all("/", true);
        return;
    }
    if !caps.snapshot {
        tracing::warn!(driver = %sh.driver.name, "resync impossible: the driver has neither audit nor snapshot");
        return;
    }
    let sh = sh.clone();
    let spawned = std::thread::Builder::new()
        .name("exec-resync".into())
        .spawn(move || {
            let Some(rx) = sh.stream(|c| c.snapshot, |id| ToDriver::Snapshot { id }) else {
                return;
            };
            let mut rows = 0usize;
            for ev in Rows::new(rx, MessageSource::Realtime, sh.driver.name.clone()) {
                rows += ev.rows.len();
                sh.put_change(ev);
            }
            tracing::info!(driver = %sh.driver.name, rows, "resync: snapshot replayed as changes");
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "resync thread not started");
    }
}

/// The events of one stream, ending at `end`, at an error or when the run ends.
struct Rows {
    rx: Receiver<StreamMsg>,
    source: MessageSource,
    name: String,
    done: bool,
}

impl Rows {
    fn new(rx: Receiver<StreamMsg>, source: MessageSource, name: String) -> Self {
        Rows {
            rx,
            source,
            name,
            done: false,
        }
    }
}

impl Iterator for Rows {
    type Item = Event<FsRow>;

    fn next(&mut self) -> Option<Event<FsRow>> {
        while !self.done {
            match self.rx.recv() {
                Ok(StreamMsg::Rows(rows)) if rows.is_empty() => {}
                Ok(StreamMsg::Rows(rows)) => {
                    return Some(event(EventType::Update, self.source, rows));
                }
                Ok(StreamMsg::End) => self.done = true,
                Ok(StreamMsg::Failed(why)) => {
                    tracing::warn!(driver = %self.name, error = %why.escape_debug(), "stream failed");
                    self.done = true;
                }
                Err(_) => {
                    tracing::warn!(driver = %self.name, "stream cut: the driver stopped");
                    self.done = true;
                }
            }
        }
        None
    }
}

impl Source for ExecSource {
    fn driver(&self) -> &'static str {
        "exec"
    }

    fn capabilities(&self) -> Capabilities {
        let c = self.shared.run.lock().caps;
        Capabilities {
            audit: c.audit,
            sentinel: c.sentinel,
            on_demand: c.on_demand,
        }
    }

    fn core(&self) -> &SourceCore {
        &self.core
    }

    fn realtime_ok(&self) -> bool {
        self.shared.up.load(Ordering::SeqCst) && self.shared.run.lock().caps.changes
    }

    fn problem(&self) -> Option<String> {
        self.shared.run.lock().problem.clone()
    }

    fn snapshot(&self) -> SnapshotStream {
        match self
            .shared
            .stream(|c| c.snapshot, |id| ToDriver::Snapshot { id })
        {
            Some(rx) => Box::new(Rows::new(
                rx,
                MessageSource::Snapshot,
                self.shared.driver.name.clone(),
            )),
            None => {
                if !self.shared.up.load(Ordering::SeqCst) {
                    // Down now: its rows come through the change stream once it is back.
                    self.shared.run.lock().resync = true;
                }
                Box::new(std::iter::empty())
            }
        }
    }

    fn audit(&self, _cache: Arc<MtimeCache>) -> Option<AuditStream> {
        let rx = self
            .shared
            .stream(|c| c.audit, |id| ToDriver::Audit { id })?;
        let rows = Rows::new(rx, MessageSource::Audit, self.shared.driver.name.clone());
        Some(Box::new(rows.map(|ev| AuditItem {
            event: Some(ev),
            cache_update: None,
        })))
    }

    fn scan(&self, path: &str, recursive: bool) -> Option<SnapshotStream> {
        let path = path.to_string();
        let rx = self.shared.stream_with(
            |c| c.on_demand,
            |id, w| {
                w.send(&ToDriver::Scan {
                    id,
                    path: &path,
                    recursive,
                })
            },
        )?;
        Some(Box::new(Rows::new(
            rx,
            MessageSource::OnDemandJob,
            self.shared.driver.name.clone(),
        )))
    }

    fn sentinel(&self, paths: &[String]) -> Vec<SentinelUpdate> {
        let sh = &self.shared;
        let Some((writer, caps)) = sh.wait_up(Duration::ZERO) else {
            return Vec::new();
        };
        if !caps.sentinel {
            return Vec::new();
        }
        let id = sh.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = sync_channel(1);
        sh.run.lock().sentinels.insert(id, tx);
        if writer.send(&ToDriver::Sentinel { id, paths }).is_err() {
            sh.run.lock().sentinels.remove(&id);
            return Vec::new();
        }
        let items = rx
            .recv_timeout(sh.driver.params.reply_timeout())
            .unwrap_or_default();
        sh.run.lock().sentinels.remove(&id);
        items
            .into_iter()
            .map(|i| SentinelUpdate {
                path: i.path,
                mtime: if i.exists {
                    i.mtime.unwrap_or(0.0)
                } else {
                    0.0
                },
                size: i.size,
                status: if i.exists {
                    SentinelStatus::Exists
                } else {
                    SentinelStatus::Missing
                },
            })
            .collect()
    }
}

impl SourceDriver for ExecSource {
    type Params = ExecParams;

    const SUPPORTS: Supports = Supports::DECLARED_BY_DRIVER;

    fn open(cfg: &SourceConfig, params: ExecParams) -> Result<Arc<dyn Source>, SourceError> {
        Ok(ExecSource::start(cfg, params)?)
    }

    /// Starts the executable, checks its handshake and stops it; returns its declared fields.
    fn test_connection(cfg: &SourceConfig, params: ExecParams) -> Result<Vec<String>, SourceError> {
        let src = ExecSource::start(cfg, params)?;
        if !src.shared.up.load(Ordering::SeqCst) {
            let why = src.problem().unwrap_or_else(|| "no handshake".to_string());
            return Err(SourceError::from(ExecError::Driver(why)));
        }
        Ok(src.fields())
    }
}
