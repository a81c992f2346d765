//! An exec sender: a supervised driver process as the far side of a pipe.
//!
//! Each call is one request with an id, answered by `session`, `ack` or `error` within the
//! reply timeout. While the driver is down (starting, restarting after a crash) calls fail as
//! connection errors, so the pipe backs off and retries exactly as with an unreachable Fusion.
//! The driver is always the leader's receiver: it has no election and no consistency engine
//! (no sentinel tasks; audit end is passed on).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use fustor_core::config::SenderConfig;
use fustor_core::wire::{
    CreateSessionRequest, CreateSessionResponse, HeartbeatRequest, HeartbeatResponse, Role,
    SentinelFeedback, SentinelTasks,
};
use fustor_transport_http::{
    AnySender, BoxFuture, DynSender, EncodedBatch, SendError, SenderDriver, SenderSupports,
};
use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::process::{DriverProcess, Writer};
use super::protocol::{self, DriverHello, FromDriver, PROTOCOL_VERSION, ToDriver};
use super::supervisor::{DriverCore, Supervised, supervise};
use super::{ExecError, ExecParams};

enum Reply {
    Session(String),
    Ack,
}

type Pending = oneshot::Sender<Result<Reply, String>>;

#[derive(Default)]
struct Run {
    writer: Option<Writer>,
    pending: HashMap<u64, Pending>,
    problem: Option<String>,
}

struct Shared {
    driver: DriverCore,
    uri: String,
    run: Mutex<Run>,
    next_id: AtomicU64,
}

/// Stops its supervisor when the last pipe holding it is gone.
#[derive(Debug)]
pub struct ExecSender {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecSender")
            .field("driver", &self.driver.name)
            .finish_non_exhaustive()
    }
}

impl Drop for ExecSender {
    /// Not joined: this may run on an async thread; the supervisor sends `shutdown` and
    /// reaps the process on its own.
    fn drop(&mut self) {
        self.shared.driver.stop.store(true, Ordering::SeqCst);
    }
}

impl ExecSender {
    pub fn start(cfg: &SenderConfig, params: ExecParams) -> Result<ExecSender, ExecError> {
        let driver = DriverCore::new(params)?;
        let shared = Arc::new(Shared {
            driver,
            uri: cfg.uri.clone(),
            run: Mutex::default(),
            next_id: AtomicU64::new(1),
        });
        let weak: Weak<Shared> = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("exec-sender".into())
            .spawn(move || {
                // Holds the shared state only while it runs; the sender's drop sets `stop`.
                if let Some(sh) = weak.upgrade() {
                    supervise(&sh);
                }
            })
            .map_err(|e| ExecError::Spawn(format!("thread: {e}")))?;
        Ok(ExecSender { shared })
    }

    fn conn(&self, message: String) -> SendError {
        SendError::Connection {
            url: self.shared.uri.clone(),
            message,
        }
    }

    /// The writer of the running driver, waiting up to the handshake timeout for one.
    async fn writer(&self) -> Result<Writer, SendError> {
        let deadline = Instant::now() + self.shared.driver.params.handshake_timeout();
        loop {
            let (w, problem) = {
                let run = self.shared.run.lock();
                (run.writer.clone(), run.problem.clone())
            };
            if let Some(w) = w {
                return Ok(w);
            }
            if Instant::now() >= deadline {
                return Err(self.conn(format!(
                    "exec driver not running: {}",
                    problem.unwrap_or_else(|| "starting".into())
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn request<'m>(
        &self,
        make: impl FnOnce(u64) -> ToDriver<'m>,
    ) -> Result<Reply, SendError> {
        let writer = self.writer().await?;
        let sh = &self.shared;
        let id = sh.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        sh.run.lock().pending.insert(id, tx);
        if let Err(e) = writer.send(&make(id)) {
            sh.run.lock().pending.remove(&id);
            return Err(self.conn(e.to_string()));
        }
        let timeout = sh.driver.params.reply_timeout();
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(Ok(reply))) => Ok(reply),
            Ok(Ok(Err(message))) => Err(self.conn(format!("exec driver error: {message}"))),
            Ok(Err(_)) => Err(self.conn("the exec driver stopped".into())),
            Err(_) => {
                sh.run.lock().pending.remove(&id);
                Err(self.conn(format!("no reply within {:.1} s", timeout.as_secs_f64())))
            }
        }
    }

    async fn ack<'m>(&self, make: impl FnOnce(u64) -> ToDriver<'m>) -> Result<(), SendError> {
        match self.request(make).await? {
            Reply::Ack => Ok(()),
            Reply::Session(_) => {
                Err(self.conn("a session reply to a request that is not one".into()))
            }
        }
    }
}

impl Supervised for Shared {
    fn driver(&self) -> &DriverCore {
        &self.driver
    }

    fn send_hello(&self, proc: &DriverProcess) -> Result<(), ExecError> {
        proc.send(&ToDriver::Hello {
            protocol: PROTOCOL_VERSION,
            role: protocol::Role::Sender,
            uri: &self.uri,
            config: &self.driver.params.config,
            start_position: None,
        })
    }

    fn on_message(&self, msg: FromDriver) -> Result<bool, String> {
        let (id, reply) = match msg {
            FromDriver::Session { id, session_id } => (id, Ok(Reply::Session(session_id))),
            FromDriver::Ack { id } => (id, Ok(Reply::Ack)),
            FromDriver::Error {
                fatal: true,
                message,
                ..
            } => {
                let shown: String = message.chars().take(500).collect();
                return Err(format!("fatal driver error: {}", shown.escape_debug()));
            }
            FromDriver::Error {
                id: Some(id),
                message,
                ..
            } => {
                let shown: String = message.chars().take(500).collect();
                (id, Err(shown.escape_debug().to_string()))
            }
            FromDriver::Error { message, .. } => {
                let shown: String = message.chars().take(500).collect();
                tracing::warn!(driver = %self.driver.name, error = %shown.escape_debug(), "exec driver error");
                return Ok(true);
            }
            FromDriver::Pong { .. } | FromDriver::Hello(_) => return Ok(true),
            _ => return Err("a source message from a sender driver".into()),
        };
        if let Some(tx) = self.run.lock().pending.remove(&id) {
            let _ = tx.send(reply);
        }
        Ok(true)
    }

    fn on_up(&self, writer: Writer, _hello: DriverHello, _first: bool) {
        let mut run = self.run.lock();
        run.writer = Some(writer);
        run.problem = None;
    }

    fn on_down(&self) -> String {
        let mut run = self.run.lock();
        run.writer = None;
        // Dropping the reply channels fails the calls in flight.
        run.pending.clear();
        String::new()
    }

    fn report(&self, problem: String) {
        tracing::error!(driver = %self.driver.name, problem = %problem, "exec driver problem");
        self.run.lock().problem = Some(problem);
    }
}

impl DynSender for ExecSender {
    fn create_session<'a>(
        &'a self,
        req: &'a CreateSessionRequest,
    ) -> BoxFuture<'a, Result<CreateSessionResponse, SendError>> {
        Box::pin(async move {
            let reply = self
                .request(|id| ToDriver::OpenSession {
                    id,
                    task_id: &req.task_id,
                })
                .await?;
            let Reply::Session(session_id) = reply else {
                return Err(self.conn("an ack where a session was expected".into()));
            };
            Ok(CreateSessionResponse {
                session_id,
                role: Role::Leader,
                is_leader: None,
                session_timeout_seconds: req.session_timeout_seconds.unwrap_or(30),
                audit_interval_sec: None,
                sentinel_interval_sec: None,
                message: Some("exec session".into()),
                lossless_names: true,
                // An exec sender keeps no index: every session starts with a snapshot.
                committed_index: None,
            })
        })
    }

    /// Answered here while the driver runs (its liveness is the supervisor's pings).
    fn heartbeat<'a>(
        &'a self,
        _session_id: &'a str,
        _req: &'a HeartbeatRequest,
    ) -> BoxFuture<'a, Result<HeartbeatResponse, SendError>> {
        Box::pin(async move {
            self.writer().await?;
            Ok(HeartbeatResponse {
                status: "ok".into(),
                role: Some(Role::Leader),
                message: None,
                is_leader: None,
                can_realtime: None,
                commands: Vec::new(),
            })
        })
    }

    fn send_encoded<'a>(
        &'a self,
        session_id: &'a str,
        batch: EncodedBatch<'a>,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            self.ack(|id| ToDriver::Batch {
                id,
                session_id,
                source_type: batch.source_type,
                is_end: batch.is_end,
                metadata: batch.metadata,
                events: batch.events,
            })
            .await
        })
    }

    fn close_session<'a>(&'a self, session_id: &'a str) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            self.ack(|id| ToDriver::CloseSession { id, session_id })
                .await
        })
    }

    fn audit_end(&self) -> BoxFuture<'_, Result<(), SendError>> {
        Box::pin(async move { self.ack(|id| ToDriver::AuditEnd { id }).await })
    }

    fn sentinel_tasks(&self) -> BoxFuture<'_, Result<SentinelTasks, SendError>> {
        Box::pin(async { Ok(SentinelTasks::default()) })
    }

    fn sentinel_feedback<'a>(
        &'a self,
        _feedback: &'a SentinelFeedback,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async { Ok(()) })
    }

    fn endpoint(&self) -> &str {
        &self.shared.uri
    }
}

impl SenderDriver for ExecSender {
    type Params = ExecParams;

    const SUPPORTS: SenderSupports = SenderSupports {
        declared_by_driver: true,
        ..SenderSupports::LOCAL
    };

    fn build(cfg: &SenderConfig, params: ExecParams) -> Result<AnySender, SendError> {
        let s = ExecSender::start(cfg, params).map_err(|e| SendError::Config(e.to_string()))?;
        Ok(AnySender::Dyn(Arc::new(s)))
    }
}
