//! Senders implemented outside this crate (the agent's `exec` driver), behind a trait object.
//!
//! [`Sender::send_batch`] is generic over the row type, which a trait object cannot be; such a
//! sender receives the batch with its events already encoded as one JSON array. The built-in
//! senders keep their statically dispatched variants of [`crate::AnySender`].

use std::future::Future;
use std::pin::Pin;

use fustor_core::wire::{
    CreateSessionRequest, CreateSessionResponse, HeartbeatRequest, HeartbeatResponse,
    SentinelFeedback, SentinelTasks,
};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::SendError;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A batch whose events are encoded once, by [`crate::AnySender`].
#[derive(Debug, Clone, Copy)]
pub struct EncodedBatch<'a> {
    pub source_type: &'a str,
    pub is_end: bool,
    pub metadata: Option<&'a Map<String, Value>>,
    /// The JSON array of the events.
    pub events: &'a RawValue,
}

/// The object-safe form of [`crate::Sender`].
pub trait DynSender: Send + Sync + std::fmt::Debug + 'static {
    fn create_session<'a>(
        &'a self,
        req: &'a CreateSessionRequest,
    ) -> BoxFuture<'a, Result<CreateSessionResponse, SendError>>;

    fn heartbeat<'a>(
        &'a self,
        session_id: &'a str,
        req: &'a HeartbeatRequest,
    ) -> BoxFuture<'a, Result<HeartbeatResponse, SendError>>;

    fn send_encoded<'a>(
        &'a self,
        session_id: &'a str,
        batch: EncodedBatch<'a>,
    ) -> BoxFuture<'a, Result<(), SendError>>;

    fn close_session<'a>(&'a self, session_id: &'a str) -> BoxFuture<'a, Result<(), SendError>>;

    fn audit_end(&self) -> BoxFuture<'_, Result<(), SendError>>;

    fn sentinel_tasks(&self) -> BoxFuture<'_, Result<SentinelTasks, SendError>>;

    fn sentinel_feedback<'a>(
        &'a self,
        feedback: &'a SentinelFeedback,
    ) -> BoxFuture<'a, Result<(), SendError>>;

    fn endpoint(&self) -> &str;
}
