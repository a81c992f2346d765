//! Ingestion: validation, lineage, routing to the pipe queue, job completions, config reports,
//! snapshot and audit ends.

use fustor_core::wire::ResumePoint;
use fustor_core::{BatchKind, Event, EventBatch, FsRow, Now, normalize_path};
use serde_json::Value;

use super::ServiceError;
use crate::limits::{Limits, MAX_ID_BYTES};
use crate::pipe::Control;
use crate::state::{Fusion, IngestRoute, PipeEntry};

/// What an accepted batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// A job completion notice: nothing was queued.
    JobComplete,
    /// `count` events were accepted (queued, or stored for a config report).
    Accepted { count: usize },
}

/// Refuses a batch over the row or event bounds (an event with `rows: []` still costs memory),
/// a hostile path, or an oversized pipe id in event metadata.
pub fn check_batch(batch: &EventBatch, limits: &Limits) -> Result<(), ServiceError> {
    let (max_rows, max_events) = (limits.max_rows_per_batch, limits.max_events_per_batch);
    if batch.events.len() > max_events {
        return Err(ServiceError::TooLarge(format!(
            "batch holds {} events; the limit is {max_events}",
            batch.events.len()
        )));
    }
    let rows: usize = batch.events.iter().map(|e| e.rows.len()).sum();
    if rows > max_rows {
        return Err(ServiceError::TooLarge(format!(
            "batch holds {rows} rows; the limit is {max_rows}"
        )));
    }
    for (i, ev) in batch.events.iter().enumerate() {
        if ev
            .metadata
            .get("pipe_id")
            .and_then(Value::as_str)
            .is_some_and(|p| p.len() > MAX_ID_BYTES)
        {
            let loc = ["body", "events", &i.to_string(), "metadata", "pipe_id"];
            return Err(ServiceError::invalid(
                &loc,
                format!("longer than {MAX_ID_BYTES} bytes"),
            ));
        }
        for (j, row) in ev.rows.iter().enumerate() {
            for (field, value) in [("path", &row.path), ("parent_path", &row.parent_path)] {
                if let Some(p) = value.as_deref()
                    && let Err(e) = normalize_path(p)
                {
                    let loc = [
                        "body",
                        "events",
                        &i.to_string(),
                        "rows",
                        &j.to_string(),
                        field,
                    ];
                    return Err(ServiceError::invalid(&loc, e.to_string()));
                }
            }
        }
    }
    Ok(())
}

/// Fusion, not the agent, says who sent an event (lineage, `consistency.md` §3): a lineage the
/// agent wrote into an event is dropped, and the session's travels once with the batch
/// ([`fustor_core::view::ViewContext`]) instead of being copied into every event. Events without
/// rows change nothing and are dropped too.
pub(crate) fn own_lineage(events: Vec<Event<FsRow>>) -> Vec<Event<FsRow>> {
    let mut events: Vec<Event<FsRow>> = events.into_iter().filter(|e| !e.rows.is_empty()).collect();
    for ev in &mut events {
        ev.metadata.remove("agent_id");
        ev.metadata.remove("source_uri");
    }
    events
}

impl Fusion {
    /// Applies a validated batch of session `session` (already checked to belong to the
    /// caller's pipe): job completions and config reports are recorded, rows are queued with
    /// the session's lineage, and an end marker runs the snapshot or audit end after them.
    ///
    /// For a pipe with persisted views the answer waits until the batch is durable.
    pub async fn ingest(
        &self,
        session: &str,
        route: &IngestRoute,
        batch: EventBatch,
    ) -> Result<Ingested, ServiceError> {
        let generation = self.current();
        let pipe = generation
            .pipes
            .get(&route.pipe_id)
            .cloned()
            .ok_or_else(|| ServiceError::Internal("Failed to process events".into()))?;
        let count = batch.events.len();
        let kind = batch.kind();
        let has_meta = batch.metadata.as_ref().is_some_and(|m| !m.is_empty());
        match kind {
            BatchKind::JobComplete | BatchKind::OnDemandJob if has_meta => {
                let meta = batch.metadata.unwrap_or_default();
                if let Some(path) = meta.get("scan_path").and_then(Value::as_str) {
                    let job_id = meta.get("job_id").and_then(Value::as_str);
                    self.jobs.complete(
                        session,
                        path,
                        job_id,
                        &|s| self.sessions.get(s).is_some(),
                        Now::system().epoch,
                    );
                }
                return Ok(Ingested::JobComplete);
            }
            BatchKind::ConfigReport => {
                if let Some(yaml) = batch
                    .metadata
                    .as_ref()
                    .and_then(|m| m.get("config_yaml"))
                    .and_then(Value::as_str)
                {
                    self.sessions.set_config_report(session, yaml.to_string());
                }
                return Ok(Ingested::Accepted { count });
            }
            _ => {}
        }
        // A realtime batch may say where it ends in its agent's numbering, and the last batch
        // of a snapshot up to where the snapshot covers it (issue 11).
        let positioned =
            kind == BatchKind::Message || (kind == BatchKind::Snapshot && batch.is_end);
        let at = positioned
            .then(|| ResumePoint::from_metadata(batch.metadata.as_ref()))
            .flatten()
            .map(|p| (route.task_id.clone(), p));
        let events = own_lineage(batch.events);
        // Realtime rows are answered once fsynced (with `persist_fsync`); snapshot and audit
        // rows once written to the OS: they survive a crash of Fusion, the log is fsynced within
        // a second anyway, and an agent sends them again when its session is lost. Waiting for
        // an fsync per snapshot batch cut the initial load to a third on this disk.
        let sync = kind == BatchKind::Message;
        let mut durable = None;
        if !events.is_empty() || at.is_some() {
            durable = pipe
                .pipe
                .enqueue_at(
                    events,
                    session,
                    route.agent_id.clone(),
                    route.source_uri.clone(),
                    sync,
                    at,
                )
                .await
                .map_err(|e| ServiceError::Internal(e.to_string()))?;
        }
        if batch.is_end {
            match kind {
                BatchKind::Snapshot => self.snapshot_end(&pipe, session).await,
                BatchKind::Audit => {
                    let ended = self.write_pipe(&pipe, Control::AuditEnd).await;
                    if ended > 0 {
                        self.reconciled(&pipe);
                    }
                }
                _ => {}
            }
        }
        if let Some(rx) = durable {
            pipe.pipe
                .durable(rx, sync)
                .await
                .map_err(|e| ServiceError::Internal(e.to_string()))?;
        }
        Ok(Ingested::Accepted { count })
    }

    /// The legacy route's batch: events that do not parse or carry a hostile path are skipped
    /// one by one. `false` when nothing could be queued.
    pub async fn ingest_legacy(&self, session: &str, route: IngestRoute, raw: Vec<Value>) -> bool {
        let events: Vec<Event<FsRow>> = raw
            .into_iter()
            .filter_map(|e| serde_json::from_value::<Event<FsRow>>(e).ok())
            .filter(|e| {
                e.rows
                    .iter()
                    .all(|r| r.path.as_deref().is_none_or(|p| normalize_path(p).is_ok()))
            })
            .collect();
        let events = own_lineage(events);
        let generation = self.current();
        let Some(pipe) = generation.pipes.get(&route.pipe_id) else {
            return false;
        };
        events.is_empty()
            || match pipe
                .pipe
                .enqueue(events, session, route.agent_id, route.source_uri, true)
                .await
            {
                Ok(Some(rx)) => pipe.pipe.durable(rx, true).await.is_ok(),
                Ok(None) => true,
                Err(_) => false,
            }
    }

    /// A complete snapshot or audit ended on `pipe`: its restored views are reconciled.
    pub fn reconciled(&self, pipe: &PipeEntry) {
        let generation = self.current();
        for v in &pipe.views {
            if let Some(s) = generation.stores.get(v) {
                s.reconciled();
            }
        }
    }
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
            self.reconciled(pipe);
        }
    }
}
