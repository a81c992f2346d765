//! Agent-side senders (`agent-runtime.md` §1, `wire-protocol.md` §3–§8).
//!
//! A [`Sender`] is everything an agent pipe needs from the far side: sessions, heartbeats, event
//! batches, the audit end call and the sentinel exchange. Drivers are chosen by the sender's
//! `driver` key through a [`SenderDrivers`] table (filled in `fustor-agent/src/drivers.rs`);
//! two exist:
//!
//! * `fusion` ([`FusionSender`]): HTTP/1.1 with keep-alive to a Fusion receiver, `X-API-Key` on
//!   every request. Bodies are never compressed: the reference Fusion does not accept compressed
//!   request bodies and advertises nothing that would tell us otherwise.
//! * `echo` ([`EchoSender`]): logs a summary of every batch and answers as a leader with a fake
//!   session, so an agent can run without a Fusion (demos, CLI tests).
//!
//! Errors are classified ([`SendError`]) because the pipe reacts differently to each class: an
//! obsolete session is re-created at once, a connection error backs off, a 401 is a
//! configuration problem worth a clear message, a 413 makes the pipe split the batch.

mod drivers;
mod dynamic;
mod echo;
mod fusion;
mod tls;

use std::future::Future;

use fustor_core::EventBatch;
use fustor_core::wire::{
    CreateSessionRequest, CreateSessionResponse, HeartbeatRequest, HeartbeatResponse,
    SentinelFeedback, SentinelTasks,
};
use serde::Serialize;

pub use drivers::{SenderDriver, SenderDrivers, SenderSupports};
pub use dynamic::{BoxFuture, DynSender, EncodedBatch};
pub use echo::{EchoParams, EchoSender};
pub use fusion::{FusionParams, FusionSender};
pub use tls::TlsFiles;

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SendError {
    /// The receiver could not be reached or did not answer in time.
    #[error("cannot reach {url}: {message}")]
    Connection { url: String, message: String },
    /// HTTP 419, or a heartbeat answered 200 with `status:"error"`: the session is gone and a
    /// new one must be created.
    #[error("session obsolete: {0}")]
    SessionObsolete(String),
    /// HTTP 401: the key is missing or unknown to this receiver.
    #[error(
        "unauthorized (HTTP 401) at {url}: {detail}; check the sender's credential: its key must \
         be listed in the Fusion receiver's api_keys for this pipe"
    )]
    Unauthorized { url: String, detail: String },
    /// HTTP 413: the body is too large for the receiver.
    #[error("request body too large for {url} (HTTP 413)")]
    TooLarge { url: String },
    /// Any other non-success status.
    #[error("HTTP {status} from {url}: {body}")]
    Status {
        status: u16,
        url: String,
        body: String,
    },
    /// A success status with a body that is not what the protocol says.
    #[error("unexpected response from {url}: {message}")]
    Decode { url: String, message: String },
    /// A request body could not be encoded (never expected for the protocol's own types).
    #[error("cannot encode the request to {url}: {message}")]
    Encode { url: String, message: String },
    /// The sender cannot be built from its configuration.
    #[error("invalid sender configuration: {0}")]
    Config(String),
}

impl SendError {
    pub fn is_obsolete(&self) -> bool {
        matches!(self, SendError::SessionObsolete(_))
    }

    pub fn is_connection(&self) -> bool {
        matches!(self, SendError::Connection { .. })
    }
}

/// The far side of an agent pipe. Futures are `Send` so that pipe tasks can be spawned.
pub trait Sender: Send + Sync + 'static {
    /// `POST /api/v1/pipe/session/`.
    fn create_session(
        &self,
        req: &CreateSessionRequest,
    ) -> impl Future<Output = Result<CreateSessionResponse, SendError>> + Send;

    /// `POST /api/v1/pipe/session/{id}/heartbeat`. A 200 with `status:"error"` is reported as
    /// [`SendError::SessionObsolete`].
    fn heartbeat(
        &self,
        session_id: &str,
        req: &HeartbeatRequest,
    ) -> impl Future<Output = Result<HeartbeatResponse, SendError>> + Send;

    /// `POST /api/v1/pipe/ingest/{id}/events`.
    fn send_batch<R: Serialize + Sync>(
        &self,
        session_id: &str,
        batch: &EventBatch<R>,
    ) -> impl Future<Output = Result<(), SendError>> + Send;

    /// `DELETE /api/v1/pipe/session/{id}`.
    fn close_session(&self, session_id: &str)
    -> impl Future<Output = Result<(), SendError>> + Send;

    /// `POST /api/v1/pipe/consistency/audit/end`.
    fn audit_end(&self) -> impl Future<Output = Result<(), SendError>> + Send;

    /// `GET /api/v1/pipe/consistency/sentinel/tasks`.
    fn sentinel_tasks(&self) -> impl Future<Output = Result<SentinelTasks, SendError>> + Send;

    /// `POST /api/v1/pipe/consistency/sentinel/feedback`.
    fn sentinel_feedback(
        &self,
        feedback: &SentinelFeedback,
    ) -> impl Future<Output = Result<(), SendError>> + Send;

    /// The configured endpoint (used to derive the agent id).
    fn endpoint(&self) -> &str;
}

/// The sender a pipe runs with, selected by the configured `driver`. An enum rather than a
/// boxed trait object: [`Sender::send_batch`] is generic over the row type, and the batch path
/// stays statically dispatched. A sender driver defined in another crate (the agent's `exec`)
/// is a [`DynSender`] and receives its batches encoded.
#[derive(Debug, Clone)]
pub enum AnySender {
    Fusion(FusionSender),
    Echo(EchoSender),
    Dyn(std::sync::Arc<dyn DynSender>),
}

impl Sender for AnySender {
    async fn create_session(
        &self,
        req: &CreateSessionRequest,
    ) -> Result<CreateSessionResponse, SendError> {
        match self {
            AnySender::Fusion(s) => s.create_session(req).await,
            AnySender::Echo(s) => s.create_session(req).await,
            AnySender::Dyn(s) => s.create_session(req).await,
        }
    }

    async fn heartbeat(
        &self,
        session_id: &str,
        req: &HeartbeatRequest,
    ) -> Result<HeartbeatResponse, SendError> {
        match self {
            AnySender::Fusion(s) => s.heartbeat(session_id, req).await,
            AnySender::Echo(s) => s.heartbeat(session_id, req).await,
            AnySender::Dyn(s) => s.heartbeat(session_id, req).await,
        }
    }

    async fn send_batch<R: Serialize + Sync>(
        &self,
        session_id: &str,
        batch: &EventBatch<R>,
    ) -> Result<(), SendError> {
        match self {
            AnySender::Fusion(s) => s.send_batch(session_id, batch).await,
            AnySender::Echo(s) => s.send_batch(session_id, batch).await,
            AnySender::Dyn(s) => {
                let events = serde_json::value::to_raw_value(&batch.events).map_err(|e| {
                    SendError::Encode {
                        url: s.endpoint().to_string(),
                        message: e.to_string(),
                    }
                })?;
                let encoded = EncodedBatch {
                    source_type: &batch.source_type,
                    is_end: batch.is_end,
                    metadata: batch.metadata.as_ref(),
                    events: &events,
                };
                s.send_encoded(session_id, encoded).await
            }
        }
    }

    async fn close_session(&self, session_id: &str) -> Result<(), SendError> {
        match self {
            AnySender::Fusion(s) => s.close_session(session_id).await,
            AnySender::Echo(s) => s.close_session(session_id).await,
            AnySender::Dyn(s) => s.close_session(session_id).await,
        }
    }

    async fn audit_end(&self) -> Result<(), SendError> {
        match self {
            AnySender::Fusion(s) => s.audit_end().await,
            AnySender::Echo(s) => s.audit_end().await,
            AnySender::Dyn(s) => s.audit_end().await,
        }
    }

    async fn sentinel_tasks(&self) -> Result<SentinelTasks, SendError> {
        match self {
            AnySender::Fusion(s) => s.sentinel_tasks().await,
            AnySender::Echo(s) => s.sentinel_tasks().await,
            AnySender::Dyn(s) => s.sentinel_tasks().await,
        }
    }

    async fn sentinel_feedback(&self, feedback: &SentinelFeedback) -> Result<(), SendError> {
        match self {
            AnySender::Fusion(s) => s.sentinel_feedback(feedback).await,
            AnySender::Echo(s) => s.sentinel_feedback(feedback).await,
            AnySender::Dyn(s) => s.sentinel_feedback(feedback).await,
        }
    }

    fn endpoint(&self) -> &str {
        match self {
            AnySender::Fusion(s) => s.endpoint(),
            AnySender::Echo(s) => s.endpoint(),
            AnySender::Dyn(s) => s.endpoint(),
        }
    }
}
