//! Ingestion effects beyond queuing rows: snapshot and audit ends.

use crate::pipe::Control;
use crate::state::{Fusion, PipeEntry};

impl Fusion {
    /// Snapshot end of the leader: once the batches before it are applied, the views of the
    /// pipe are ready for queries. A follower's end is ignored.
    pub async fn snapshot_end(&self, pipe: &PipeEntry, session: &str) {
        if !self.sessions.is_leader(session) {
            tracing::warn!(session, pipe = %pipe.id, "snapshot end from a follower ignored");
            return;
        }
        if let Err(e) = pipe.pipe.control_on(Control::Barrier, Vec::new()).await {
            tracing::warn!(error = %e, "marking the snapshot complete without a full drain");
        }
        if self.sessions.snapshot_complete(session) {
            tracing::info!(session, pipe = %pipe.id, "snapshot complete: views ready");
        }
    }
}
