//! Session lifecycle: open (election, ingest route, V1), close and end (L4, L5, V2, jobs).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use fustor_core::Now;
use fustor_core::wire::{CommittedIndex, CreateSessionRequest, HeartbeatRequest, Role};
use futures_util::future::join_all;
use serde_json::{Map, Value};

use super::writes::run_unfed;
use crate::pipe::{Control, SessionRef};
use crate::sessions::{Ended, SessionSpec, agent_id_of};
use crate::state::{Fusion, Generation, IngestRoute, PipeEntry};

/// Why a session ended: logged, and only an expiry keeps a persisted view's content when it was
/// the last session (issue 11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    Closed,
    Expired,
    Reload,
    Shutdown,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Closed => "closed",
            EndReason::Expired => "expired",
            EndReason::Reload => "reload",
            EndReason::Shutdown => "shutdown",
        }
    }
}

/// What a heartbeat answers: the role now and the commands queued since the last one.
#[derive(Debug, Clone, PartialEq)]
pub struct Beat {
    pub role: Role,
    pub commands: Vec<Map<String, Value>>,
}

/// A session just opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedSession {
    pub session_id: String,
    pub leader: bool,
    /// The timeout granted: the requested one when positive, else the pipe's.
    pub timeout_secs: i64,
    /// Where the agent may resume (issue 11); `None` when the pipe's view is not persisted.
    pub committed_index: Option<CommittedIndex>,
}

impl Fusion {
    /// Creates the session on `pipe`, runs the election and V1 (session start on the primary
    /// view, in the order of the pipe's queue).
    pub async fn open_session(
        &self,
        pipe: &PipeEntry,
        req: &CreateSessionRequest,
        client_ip: Option<String>,
    ) -> OpenedSession {
        let timeout = match req.session_timeout_seconds {
            Some(t) if t > 0 => t,
            _ => pipe.cfg.session_timeout_seconds as i64,
        };
        let source_uri = req
            .client_info
            .as_ref()
            .and_then(|c| c.get("source_uri"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let spec = SessionSpec {
            task_id: req.task_id.clone(),
            pipe_id: pipe.id.clone(),
            view_id: pipe.views.first().cloned().unwrap_or_default(),
            pipe_views: pipe.views.clone(),
            election_key: pipe.election_key.clone(),
            timeout_secs: timeout as f64,
            source_uri: source_uri.clone(),
            client_ip: client_ip.clone(),
            allow_concurrent_push: pipe.cfg.allow_concurrent_push,
        };
        let now = Now::system();
        let (id, leader) = self.sessions.create(spec, now.epoch, now.mono);
        self.registry.register(crate::registry::Registration {
            task_id: &req.task_id,
            fusion_pipe: &pipe.id,
            session_id: &id,
            client_ip: client_ip.as_deref(),
            client_info: req.client_info.as_ref(),
            source_type: req.source_type.as_deref(),
            at: now.epoch,
        });
        let session = SessionRef {
            session_id: id.clone(),
            agent_id: Arc::from(agent_id_of(&req.task_id)),
            source_uri: source_uri.as_deref().map(Arc::from),
        };
        self.routes.lock().insert(
            id.clone(),
            IngestRoute {
                pipe_id: pipe.id.clone(),
                agent_id: session.agent_id.clone(),
                source_uri: session.source_uri.clone(),
                ended_at: None,
                task_id: Arc::from(req.task_id.as_str()),
            },
        );
        pipe.pipe
            .stats
            .sessions_created
            .fetch_add(1, Ordering::Relaxed);
        if let Some(view) = pipe.pipe.primary().cloned()
            && let Err(e) = pipe
                .pipe
                .control_on(Control::SessionStarted(session), vec![view])
                .await
        {
            tracing::warn!(error = %e, session = %id, "session start not applied to the view");
        }
        tracing::info!(session = %id, task = %crate::limits::for_log(&req.task_id), pipe = %pipe.id, leader, timeout, "session created");
        let committed_index = pipe
            .pipe
            .primary()
            .and_then(|v| self.current().stores.get(v.id()).cloned())
            .and_then(|s| s.committed(&pipe.id, &req.task_id));
        OpenedSession {
            session_id: id,
            leader,
            timeout_secs: timeout,
            committed_index,
        }
    }

    /// Records a heartbeat; `None` when the session is gone (419). `recheck_always`: re-run the
    /// election on this heartbeat (main port) instead of every fifth.
    pub fn heartbeat(&self, id: &str, req: HeartbeatRequest, recheck_always: bool) -> Option<Beat> {
        let now = Now::system();
        let (leader, mut commands) = self.sessions.heartbeat(
            id,
            req.can_realtime,
            req.agent_status,
            now.mono,
            recheck_always,
        )?;
        if let Some(s) = self.sessions.get(id) {
            let depth = self
                .current()
                .pipes
                .get(&s.spec.pipe_id)
                .map_or(0, |p| p.pipe.queue_len());
            self.registry
                .heartbeat(&s.spec.task_id, s.agent_status.as_ref(), depth, now.epoch);
            commands.extend(self.registry.commands(&s.spec.task_id));
        }
        Some(Beat {
            role: Role::of(leader),
            commands,
        })
    }

    /// Closes a session at its agent's request; `false` when it had already ended.
    pub async fn close_session(&self, id: &str) -> bool {
        let ended = self.end_session(id, EndReason::Closed).await.is_some();
        self.routes.lock().remove(id);
        ended
    }

    /// Terminates a session with all its effects (L4, L5, V2, jobs).
    pub async fn end_session(&self, id: &str, why: EndReason) -> Option<Ended> {
        let ended = self.sessions.terminate(id)?;
        let s = &ended.session;
        tracing::info!(session = %id, task = %crate::limits::for_log(&s.spec.task_id), reason = why.as_str(), promoted = ?ended.promoted, "session ended");
        let generation = self.current();
        let pipe = generation.pipes.get(&s.spec.pipe_id);
        if let Some(p) = pipe {
            p.pipe.stats.sessions_closed.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(v) = generation.views.get(&s.spec.view_id) {
            let op = Control::SessionClosed {
                session: SessionRef {
                    session_id: id.to_string(),
                    agent_id: Arc::from(s.agent_id.as_str()),
                    source_uri: s.spec.source_uri.as_deref().map(Arc::from),
                },
                last: ended.last_in_scope,
                keep_persisted: why == EndReason::Expired,
            };
            let views = vec![v.driver.clone()];
            match pipe {
                Some(p) => {
                    if let Err(e) = p.pipe.control_on(op, views).await {
                        tracing::warn!(error = %e, session = %id, "session close not applied to the view");
                    }
                }
                None => {
                    run_unfed(op, views, generation.stores.clone()).await;
                }
            }
        }
        let now = Now::system();
        if let Some(r) = self.routes.lock().get_mut(id) {
            r.ended_at = Some(now.epoch);
        }
        self.jobs
            .session_gone(&|sid| self.sessions.get(sid).is_some(), now.epoch);
        Some(ended)
    }

    /// Ends every session whose timeout passed.
    ///
    /// Concurrently: ending a session waits for its pipe's queue, and one backed-up pipe must
    /// not keep the sessions of the others alive (nor their followers from being promoted).
    pub async fn expire_sessions(&self) {
        let now = Now::system();
        let ids = self.sessions.expired(now.mono);
        join_all(
            ids.iter()
                .map(|id| self.end_session(id, EndReason::Expired)),
        )
        .await;
    }

    /// Ends every session (shutdown), concurrently for the same reason.
    pub async fn end_all_sessions(&self, why: EndReason) {
        let ids = self.sessions.ids();
        join_all(ids.iter().map(|id| self.end_session(id, why))).await;
    }

    /// Replaces the generation (reload). Every session is terminated first: their views are
    /// discarded and agents reconnect on their next heartbeat (`configuration.md` §6.2).
    pub async fn replace(&self, generation: Generation) {
        self.end_all_sessions(EndReason::Reload).await;
        self.routes.lock().clear();
        self.sessions.reset_readiness();
        // The new views read what the old ones left on disk (their closes included), so the
        // old logs are closed before the new ones are opened.
        let old = self.current().stores.clone();
        let new = generation.stores.clone();
        let _ = tokio::task::spawn_blocking(move || {
            crate::persist::close_all(&old, false);
            crate::persist::open_all(&new);
        })
        .await;
        self.set_generation(generation);
    }
}
