//! The `echo` sender: logs what would be sent and plays a Fusion that always elects us leader.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use fustor_core::EventBatch;
use fustor_core::config::{DriverParams, KeyShape, SenderConfig};
use fustor_core::wire::{
    CreateSessionRequest, CreateSessionResponse, HeartbeatRequest, HeartbeatResponse, Role,
    SentinelFeedback, SentinelTasks,
};
use serde::{Deserialize, Serialize};

use crate::{AnySender, SendError, Sender, SenderDriver};

/// Counts are shared between clones so that tests and status output can read them.
#[derive(Debug, Clone, Default)]
pub struct EchoSender {
    uri: String,
    stats: Arc<EchoStats>,
}

#[derive(Debug, Default)]
pub struct EchoStats {
    pub sessions: AtomicU64,
    pub batches: AtomicU64,
    pub events: AtomicU64,
    pub heartbeats: AtomicU64,
}

/// The echo sender takes no parameters; whatever `driver_params` holds is ignored unchecked.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EchoParams {}

impl DriverParams for EchoParams {
    const KEYS: &'static KeyShape = &KeyShape::Any;
}

impl SenderDriver for EchoSender {
    type Params = EchoParams;

    fn build(cfg: &SenderConfig, _params: EchoParams) -> Result<AnySender, SendError> {
        Ok(AnySender::Echo(EchoSender::new(&cfg.uri)))
    }
}

impl EchoSender {
    pub fn new(uri: &str) -> Self {
        EchoSender {
            uri: uri.to_string(),
            stats: Arc::default(),
        }
    }

    pub fn stats(&self) -> &EchoStats {
        &self.stats
    }
}

impl Sender for EchoSender {
    async fn create_session(
        &self,
        req: &CreateSessionRequest,
    ) -> Result<CreateSessionResponse, SendError> {
        let n = self.stats.sessions.fetch_add(1, Ordering::Relaxed) + 1;
        let session_id = format!("echo-{}", uuid::Uuid::new_v4());
        tracing::info!(task_id = %req.task_id, session_id = %session_id, n, "echo: session created (leader)");
        Ok(CreateSessionResponse {
            session_id,
            role: Role::Leader,
            is_leader: None,
            session_timeout_seconds: req.session_timeout_seconds.unwrap_or(30),
            audit_interval_sec: None,
            sentinel_interval_sec: None,
            message: Some("echo session".to_string()),
            lossless_names: true,
            committed_index: None,
        })
    }

    async fn heartbeat(
        &self,
        session_id: &str,
        req: &HeartbeatRequest,
    ) -> Result<HeartbeatResponse, SendError> {
        self.stats.heartbeats.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            session_id,
            can_realtime = req.can_realtime,
            "echo: heartbeat"
        );
        Ok(HeartbeatResponse {
            status: "ok".to_string(),
            role: Some(Role::Leader),
            message: None,
            is_leader: None,
            can_realtime: None,
            commands: Vec::new(),
        })
    }

    async fn send_batch<R: Serialize + Sync>(
        &self,
        session_id: &str,
        batch: &EventBatch<R>,
    ) -> Result<(), SendError> {
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        self.stats
            .events
            .fetch_add(batch.events.len() as u64, Ordering::Relaxed);
        let rows: usize = batch.events.iter().map(|e| e.rows.len()).sum();
        tracing::info!(
            session_id,
            source_type = %batch.source_type,
            events = batch.events.len(),
            rows,
            is_end = batch.is_end,
            has_metadata = batch.metadata.is_some(),
            "echo: batch"
        );
        Ok(())
    }

    async fn close_session(&self, session_id: &str) -> Result<(), SendError> {
        tracing::info!(session_id, "echo: session closed");
        Ok(())
    }

    async fn audit_end(&self) -> Result<(), SendError> {
        tracing::info!("echo: audit end");
        Ok(())
    }

    async fn sentinel_tasks(&self) -> Result<SentinelTasks, SendError> {
        Ok(SentinelTasks::default())
    }

    async fn sentinel_feedback(&self, feedback: &SentinelFeedback) -> Result<(), SendError> {
        tracing::info!(updates = feedback.updates.len(), "echo: sentinel feedback");
        Ok(())
    }

    fn endpoint(&self) -> &str {
        &self.uri
    }
}
