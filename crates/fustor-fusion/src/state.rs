//! The running Fusion: one configuration generation (views, pipes, keys) plus the state that
//! outlives reloads (sessions, jobs, counters).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use fustor_core::config::{FusionConfig, FusionPipeConfig, ViewConfig};
use fustor_core::view::{Identity, ViewDriver, ViewRegistry};
use parking_lot::{Mutex, RwLock};
use serde::Serialize;

use crate::jobs::JobManager;
use crate::limits::Limits;
use crate::persist::Stores;
use crate::pipe::{FusionPipe, PipeStatsView};
use crate::sessions::SessionManager;

pub struct ViewEntry {
    pub id: String,
    pub cfg: ViewConfig,
    pub driver: Arc<dyn ViewDriver>,
    /// `max_tree_items`: bound on the nodes of one `/tree` or `/search` answer.
    pub max_tree_items: Option<usize>,
}

pub struct PipeEntry {
    pub id: String,
    pub cfg: FusionPipeConfig,
    pub pipe: Arc<FusionPipe>,
    /// Active view ids, primary first.
    pub views: Vec<String>,
    pub election_key: String,
}

/// Everything built from one configuration; replaced whole on reload.
pub struct Generation {
    pub cfg: FusionConfig,
    pub views: BTreeMap<String, Arc<ViewEntry>>,
    pub pipes: BTreeMap<String, Arc<PipeEntry>>,
    /// Receiver port → (agent key → pipe id), for the keys of pipes that run on it.
    pub receiver_keys: HashMap<u16, HashMap<String, String>>,
    /// Persisted views (opened by the daemon before it serves).
    pub stores: Arc<Stores>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("view {view}: {message}")]
    View { view: String, message: String },
    #[error("pipe {pipe}: {message}")]
    Pipe { pipe: String, message: String },
}

fn build_view(
    id: &str,
    cfg: &ViewConfig,
    registry: &ViewRegistry,
) -> Result<ViewEntry, BuildError> {
    let built = registry.build(id, cfg).map_err(|e| BuildError::View {
        view: id.to_string(),
        message: e.to_string(),
    })?;
    Ok(ViewEntry {
        id: id.to_string(),
        cfg: cfg.clone(),
        driver: built.driver,
        max_tree_items: built.max_tree_items,
    })
}

impl Generation {
    /// Builds views and starts the selected pipes. A view or pipe that fails is logged and
    /// skipped; the rest starts (a bad file must not stop the others).
    pub fn build(
        cfg: FusionConfig,
        pipe_ids: &[String],
        limits: &Limits,
    ) -> (Generation, Vec<BuildError>) {
        Self::build_with(
            cfg,
            pipe_ids,
            limits,
            &crate::drivers::view_registry(),
            None,
        )
    }

    /// [`Self::build`] with the view drivers of `registry`; views are persisted under
    /// `persist_root` when it is given (the stores still have to be opened).
    pub fn build_with(
        cfg: FusionConfig,
        pipe_ids: &[String],
        limits: &Limits,
        registry: &ViewRegistry,
        persist_root: Option<&std::path::Path>,
    ) -> (Generation, Vec<BuildError>) {
        let mut errors = Vec::new();
        let mut views = BTreeMap::new();
        for (id, vc) in &cfg.views {
            if vc.disabled {
                continue;
            }
            match build_view(id, vc, registry) {
                Ok(v) => {
                    views.insert(id.clone(), Arc::new(v));
                }
                Err(e) => errors.push(e),
            }
        }
        let stores = Arc::new(match persist_root {
            Some(root) => crate::persist::build(
                root,
                views
                    .iter()
                    .map(|(id, v): (&String, &Arc<ViewEntry>)| (id, &v.cfg, &v.driver)),
            ),
            None => Stores::new(),
        });
        let mut pipes = BTreeMap::new();
        for pid in pipe_ids {
            let Some(pc) = cfg.pipes.get(pid) else {
                continue;
            };
            let active: Vec<String> = cfg
                .active_views(pid)
                .into_iter()
                .filter(|v| views.contains_key(*v))
                .map(str::to_string)
                .collect();
            if active.is_empty() {
                errors.push(BuildError::Pipe {
                    pipe: pid.clone(),
                    message: "no view of this pipe could be loaded".into(),
                });
                continue;
            }
            let drivers: Vec<Arc<dyn ViewDriver>> = active
                .iter()
                .filter_map(|v| views.get(v))
                .map(|v: &Arc<ViewEntry>| v.driver.clone())
                .collect();
            let election_key = drivers
                .first()
                .map(|d| d.election_key(pid))
                .unwrap_or_else(|| pid.clone());
            match FusionPipe::start(
                pid,
                drivers,
                limits.queue_batches,
                limits.queue_rows,
                stores.clone(),
            ) {
                Ok(pipe) => {
                    pipes.insert(
                        pid.clone(),
                        Arc::new(PipeEntry {
                            id: pid.clone(),
                            cfg: pc.clone(),
                            pipe,
                            views: active,
                            election_key,
                        }),
                    );
                }
                Err(e) => errors.push(BuildError::Pipe {
                    pipe: pid.clone(),
                    message: e.to_string(),
                }),
            }
        }
        let mut receiver_keys: HashMap<u16, HashMap<String, String>> = HashMap::new();
        for server in cfg.receiver_servers(pipes.keys().map(String::as_str)) {
            receiver_keys
                .entry(server.port)
                .or_default()
                .extend(server.keys);
        }
        (
            Generation {
                cfg,
                views,
                pipes,
                receiver_keys,
                stores,
            },
            errors,
        )
    }

    /// Key resolution of `wire-protocol.md` §2: a view's query key resolves to the view id,
    /// an agent key to its pipe id. Every configured key is compared, in constant time, so the
    /// answer time says nothing about how close a guess was.
    pub fn resolve_key(&self, key: &str) -> Option<String> {
        self.resolve_query_key(key)
            .map(|(id, _)| id)
            .or_else(|| self.agent_pipe(key))
    }

    /// The view a query key resolves to and the user it stands for (issue 14), if any. Every
    /// configured key is compared, like [`Self::resolve_key`].
    pub fn resolve_query_key(&self, key: &str) -> Option<(String, Option<Identity>)> {
        let mut found = None;
        for (id, v) in &self.cfg.views {
            for k in &v.api_keys {
                if key_eq(k.key(), key) && found.is_none() {
                    found = Some((id.clone(), k.identity()));
                }
            }
        }
        found
    }

    /// The pipe of an agent (receiver) key: the only keys that may write (open sessions,
    /// heartbeat, close, ingest). Query keys never resolve here.
    pub fn agent_pipe(&self, key: &str) -> Option<String> {
        first_match(
            self.cfg
                .receivers
                .values()
                .flat_map(|r| r.api_keys.iter())
                .map(|e| (e.key.as_str(), &e.pipe_id)),
            key,
        )
    }

    /// The pipe an agent key configured on receiver `port` belongs to, whether that pipe
    /// runs or not.
    pub fn receiver_key_pipe(&self, port: u16, key: &str) -> Option<String> {
        let running = self
            .receiver_keys
            .get(&port)
            .and_then(|m| first_match(m.iter().map(|(k, p)| (k.as_str(), p)), key));
        running.or_else(|| {
            first_match(
                self.cfg
                    .receivers
                    .values()
                    .filter(|r| r.port == port)
                    .flat_map(|r| r.api_keys.iter())
                    .map(|e| (e.key.as_str(), &e.pipe_id)),
                key,
            )
        })
    }

    /// The views a resolved id addresses: the view of that id, else the views of the pipe of
    /// that id (fixes the reference's pipe-id-as-view-id confusion, wire §12 item 8).
    pub fn views_for(&self, resolved: &str) -> Vec<Arc<ViewEntry>> {
        if let Some(v) = self.views.get(resolved) {
            return vec![v.clone()];
        }
        match self.pipes.get(resolved) {
            Some(p) => p
                .views
                .iter()
                .filter_map(|v| self.views.get(v).cloned())
                .collect(),
            None => Vec::new(),
        }
    }

    /// The pipe that serves a receiver key on `port`.
    pub fn pipe_for_key(&self, port: u16, key: &str) -> Option<Arc<PipeEntry>> {
        let keys = self.receiver_keys.get(&port)?;
        let pid = first_match(keys.iter().map(|(k, p)| (k.as_str(), p)), key)?;
        self.pipes.get(&pid).cloned()
    }
}

/// Constant-time comparison of a presented key with a configured one (only the length may
/// differ observably).
fn key_eq(configured: &str, presented: &str) -> bool {
    use subtle::ConstantTimeEq;
    configured.as_bytes().ct_eq(presented.as_bytes()).into()
}

/// The id of the first configured key equal to `key`; every key is compared.
fn first_match<'a>(keys: impl Iterator<Item = (&'a str, &'a String)>, key: &str) -> Option<String> {
    let mut found = None;
    for (k, id) in keys {
        if key_eq(k, key) && found.is_none() {
            found = Some(id.clone());
        }
    }
    found
}

/// A session's route for ingestion, kept a while after expiry: the reference keeps accepting
/// events from an expired session until it is closed, and the agent learns of the expiry on its
/// next heartbeat.
#[derive(Debug, Clone)]
pub struct IngestRoute {
    pub pipe_id: String,
    /// Lineage of every batch of the session, shared (not copied) by its batches.
    pub agent_id: Arc<str>,
    pub source_uri: Option<Arc<str>>,
    pub ended_at: Option<f64>,
    /// The session's `task_id`: the key of its committed index (issue 11).
    pub task_id: Arc<str>,
}

pub struct Fusion {
    generation: RwLock<Arc<Generation>>,
    pub sessions: SessionManager,
    pub jobs: JobManager,
    pub limits: Limits,
    /// Request-body bytes in flight over every listener (`limits.max_inflight_body_bytes`).
    pub bodies: crate::http::body::BodyBudget,
    pub routes: Mutex<HashMap<String, IngestRoute>>,
    /// Port of the main app, for deciding whether receivers share it.
    pub main_port: u16,
    /// Agent inventory and audit log (opened by the daemon; memory-only otherwise).
    pub registry: crate::registry::Registry,
}

impl Fusion {
    pub fn new(generation: Generation, limits: Limits, main_port: u16) -> Arc<Self> {
        Arc::new(Fusion {
            generation: RwLock::new(Arc::new(generation)),
            sessions: SessionManager::new(),
            jobs: JobManager::default(),
            bodies: crate::http::body::BodyBudget::new(limits.max_inflight_body_bytes),
            limits,
            routes: Mutex::new(HashMap::new()),
            main_port,
            registry: crate::registry::Registry::default(),
        })
    }

    pub fn current(&self) -> Arc<Generation> {
        self.generation.read().clone()
    }

    pub(crate) fn set_generation(&self, generation: Generation) {
        *self.generation.write() = Arc::new(generation);
    }

    /// Drops ingest routes of sessions that ended long ago.
    pub fn purge_routes(&self, epoch: f64) {
        self.routes
            .lock()
            .retain(|_, r| r.ended_at.is_none_or(|t| epoch - t < 600.0));
    }

    /// The pipe a session (open, or ended but still routable) belongs to: the only pipe whose
    /// agent keys may act on it.
    pub fn session_pipe(&self, session_id: &str) -> Option<String> {
        self.sessions
            .pipe_of(session_id)
            .or_else(|| self.route(session_id).map(|r| r.pipe_id))
    }

    pub fn route(&self, session_id: &str) -> Option<IngestRoute> {
        self.routes.lock().get(session_id).cloned()
    }
}

/// `GET /api/v1/pipe/pipes` entry (`wire-protocol.md` §10).
///
/// Fields are in alphabetical order: the answer used to be a `json!` map, which serde_json
/// sorts, and clients diffing the text should see the same bytes.
#[derive(Debug, Clone, Serialize)]
pub struct PipeDto {
    pub active_sessions: usize,
    pub id: String,
    pub info: String,
    /// Shown only to a caller whose key belongs to this pipe or one of its views: a session id
    /// is what a writer needs.
    pub leader_session: Option<String>,
    pub queue_size: u64,
    pub state: PipeRunState,
    pub statistics: PipeStatsView,
    pub view_handlers: Vec<String>,
    pub view_id: Option<String>,
}

/// A configured pipe always runs; the state exists for the reference's clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PipeRunState {
    Running,
}

pub fn pipe_dto(f: &Fusion, p: &PipeEntry, show_session: bool) -> PipeDto {
    let active = f
        .sessions
        .ids()
        .iter()
        .filter_map(|id| f.sessions.get(id))
        .filter(|s| s.spec.pipe_id == p.id)
        .count();
    PipeDto {
        active_sessions: active,
        id: p.id.clone(),
        info: format!("receiver={}, views={}", p.cfg.receiver, p.views.join(",")),
        leader_session: if show_session {
            f.sessions.leader_of(&p.election_key)
        } else {
            None
        },
        queue_size: p.pipe.queue_len(),
        state: PipeRunState::Running,
        statistics: p.pipe.stats.view(),
        view_handlers: p.views.clone(),
        view_id: p.views.first().cloned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The typed answer is the text the `json!` map produced: same keys, values and order.
    #[test]
    fn pipe_dto_serializes_as_the_former_json_map() {
        let stats = PipeStatsView {
            errors: 1,
            events_processed: 2,
            events_received: 3,
            sessions_closed: 4,
            sessions_created: 5,
        };
        let dto = PipeDto {
            active_sessions: 2,
            id: "p1".into(),
            info: "receiver=r, views=v1,v2".into(),
            leader_session: None,
            queue_size: 7,
            state: PipeRunState::Running,
            statistics: stats.clone(),
            view_handlers: vec!["v1".into(), "v2".into()],
            view_id: Some("v1".into()),
        };
        let former = serde_json::json!({
            "id": "p1",
            "view_id": "v1",
            "state": "RUNNING",
            "info": "receiver=r, views=v1,v2",
            "view_handlers": ["v1", "v2"],
            "active_sessions": 2,
            "leader_session": None::<String>,
            "statistics": {"events_received": 3, "events_processed": 2,
                "sessions_created": 5, "sessions_closed": 4, "errors": 1},
            "queue_size": 7,
        });
        let text = serde_json::to_string(&dto).unwrap_or_default();
        assert_eq!(text, serde_json::to_string(&former).unwrap_or_default());
    }
}
