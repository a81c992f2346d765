//! The agent process (`agent-runtime.md` §1, `configuration.md` §4, §6.1): which pipes run,
//! hot reload, shutdown and the state file.
//!
//! ```no_run
//! # async fn demo() -> Result<(), fustor_agent::AgentError> {
//! use fustor_agent::{Agent, AgentOptions};
//! use fustor_core::config::FustorPaths;
//! let agent = Agent::start(AgentOptions::new(FustorPaths::new("/tmp/home"))).await?;
//! // ... later
//! agent.shutdown().await;
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;

use fustor_core::config::{
    AgentConfig, AgentDriverSchemas, ConfigSignature, Daemon, Diagnostic, FustorPaths,
    agent_reload_plan, agent_start_selection, load_agent, validate_agent,
};
use fustor_transport_http::{AnySender, SendError, SenderDrivers};
use serde_json::json;
use tokio::sync::mpsc;

#[path = "app_steer.rs"]
mod app_steer;

use crate::agent_id::resolve_agent_id;
use crate::pipe::{AppRequest, Pipe, PipeSpec};
use crate::source::{SourceError, SourceRegistry};
use crate::state::PipeStatus;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("configuration has errors:\n{}", .0.iter().map(|d| format!("  {d}")).collect::<Vec<_>>().join("\n"))]
    InvalidConfig(Vec<Diagnostic>),
    #[error("pipe {0:?} is not defined")]
    UnknownPipe(String),
    #[error("pipe {pipe:?}: {source}")]
    Source {
        pipe: String,
        #[source]
        source: SourceError,
    },
    #[error("pipe {pipe:?}: {source}")]
    Sender {
        pipe: String,
        #[source]
        source: SendError,
    },
    #[error("cannot create {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// How to start an agent.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    pub paths: FustorPaths,
    /// `start` arguments: `*.yaml` file names and pipe ids; empty = the pipes of `default.yaml`.
    pub args: Vec<String>,
    /// `start --registry`: the agent applies the versions the registry announces.
    pub registry: Option<Arc<crate::steer::Steer>>,
}

impl AgentOptions {
    pub fn new(paths: FustorPaths) -> Self {
        AgentOptions {
            paths,
            args: Vec::new(),
            registry: None,
        }
    }
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    Unchanged,
    Applied {
        added: Vec<String>,
        removed: Vec<String>,
        failed: Vec<String>,
    },
    Refused(String),
}

/// A running agent: N pipes over shared sources.
pub struct Agent {
    paths: FustorPaths,
    agent_id: String,
    config: AgentConfig,
    signature: ConfigSignature,
    sources: Arc<SourceRegistry>,
    senders: SenderDrivers,
    /// What loading and validating check of the registered drivers.
    schemas: AgentDriverSchemas,
    pipes: BTreeMap<String, Pipe<AnySender>>,
    req_tx: mpsc::UnboundedSender<AppRequest>,
    req_rx: mpsc::UnboundedReceiver<AppRequest>,
    /// `(epoch, events pushed)` per pipe at the last live-status write, for events/s.
    status_prev: BTreeMap<String, (f64, u64)>,
    steer: Option<Arc<crate::steer::Steer>>,
}

/// How often the running agent refreshes `agent-status.json` for `fustor-agent status`.
pub const LIVE_STATUS_PERIOD: std::time::Duration = std::time::Duration::from_secs(2);

impl Agent {
    /// Loads and validates the configuration (errors refuse the start), resolves the agent id
    /// and starts the selected pipes one after the other; a pipe that fails to start is logged
    /// and the others still start.
    pub async fn start(opts: AgentOptions) -> Result<Agent, AgentError> {
        let dir = opts.paths.config_dir(Daemon::Agent);
        std::fs::create_dir_all(&dir).map_err(|source| AgentError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        crate::source::set_state_dir(opts.paths.home.join("agent-state"));
        let schemas = crate::drivers::config_schemas();
        let mut loaded = load_agent(&opts.paths, &schemas);
        let extra = validate_agent(&loaded, &schemas);
        loaded.diagnostics.extend(extra);
        for d in loaded.diagnostics.iter().filter(|d| !d.is_error()) {
            tracing::warn!("config: {d}");
        }
        if loaded.has_errors() {
            return Err(AgentError::InvalidConfig(
                loaded.errors().cloned().collect(),
            ));
        }
        let selection = agent_start_selection(&loaded, &opts.args);
        for u in &selection.unknown {
            tracing::warn!(arg = %u, "start argument names neither a config file nor a pipe; skipped");
        }
        for n in &selection.not_enabled {
            tracing::warn!(pipe = %n, "pipe not started: its source is missing or disabled");
        }
        let config = loaded.config;
        let endpoint = selection
            .pipes
            .iter()
            .filter_map(|p| config.pipes.get(p))
            .find_map(|p| config.senders.get(&p.sender))
            .map(|s| s.uri.clone());
        let configured = config.agent_id.clone();
        let agent_id = tokio::task::spawn_blocking(move || {
            resolve_agent_id(configured.as_deref(), endpoint.as_deref())
        })
        .await
        .unwrap_or_else(|_| crate::agent_id::hostname());
        tracing::info!(agent_id = %agent_id, pipes = ?selection.pipes, "agent starting");
        let (req_tx, req_rx) = mpsc::unbounded_channel();
        let mut agent = Agent {
            paths: opts.paths,
            agent_id,
            signature: config.signature(),
            config,
            sources: Arc::new(SourceRegistry::new()),
            senders: crate::drivers::sender_drivers(),
            schemas,
            pipes: BTreeMap::new(),
            req_tx,
            req_rx,
            status_prev: BTreeMap::new(),
            steer: opts.registry,
        };
        if selection.pipes.is_empty() {
            tracing::warn!("no pipe selected; the agent idles until a reload adds one");
        }
        for id in selection.pipes {
            if let Err(e) = agent.start_pipe(&id).await {
                tracing::error!(pipe = %id, error = %e, "pipe failed to start");
            }
        }
        Ok(agent)
    }

    pub fn agent_id(&self) -> &str {
        &self.agent_id
    }

    pub fn paths(&self) -> &FustorPaths {
        &self.paths
    }

    pub fn pipe_ids(&self) -> Vec<String> {
        self.pipes.keys().cloned().collect()
    }

    pub fn statuses(&self) -> Vec<PipeStatus> {
        self.pipes.values().map(Pipe::status).collect()
    }

    async fn start_pipe(&mut self, id: &str) -> Result<(), AgentError> {
        let cfg = &self.config;
        let pipe = cfg
            .pipes
            .get(id)
            .ok_or_else(|| AgentError::UnknownPipe(id.to_string()))?;
        let source_cfg = cfg
            .sources
            .get(&pipe.source)
            .ok_or_else(|| AgentError::UnknownPipe(id.to_string()))?;
        let sender_cfg = cfg
            .senders
            .get(&pipe.sender)
            .ok_or_else(|| AgentError::UnknownPipe(id.to_string()))?;
        let sender = self
            .senders
            .build(sender_cfg)
            .map_err(|source| AgentError::Sender {
                pipe: id.to_string(),
                source,
            })?;
        let source =
            self.sources
                .acquire(source_cfg)
                .await
                .map_err(|source| AgentError::Source {
                    pipe: id.to_string(),
                    source,
                })?;
        let spec = PipeSpec {
            id: id.to_string(),
            agent_id: self.agent_id.clone(),
            config: pipe.clone(),
            config_dir: self.paths.config_dir(Daemon::Agent),
            state_dir: Some(self.paths.home.join(crate::statefile::STATE_DIR)),
            registry: self.steer.clone(),
        };
        let p = Pipe::start(spec, sender, source, Some(self.req_tx.clone()));
        self.pipes.insert(id.to_string(), p);
        Ok(())
    }

    /// Stops one pipe (DELETE of its session, bus subscription released).
    pub async fn stop_pipe(&mut self, id: &str) -> Option<PipeStatus> {
        let p = self.pipes.remove(id)?;
        Some(p.stop().await)
    }

    /// §6.1: unchanged signature ⇒ nothing; else start added and stop removed pipes, leaving
    /// the others running untouched.
    pub async fn reload(&mut self) -> ReloadOutcome {
        let paths = self.paths.clone();
        let schemas = self.schemas.clone();
        let loaded = match tokio::task::spawn_blocking(move || load_agent(&paths, &schemas)).await {
            Ok(l) => l,
            Err(e) => return ReloadOutcome::Refused(e.to_string()),
        };
        for d in &loaded.diagnostics {
            tracing::warn!("config (reload): {d}");
        }
        let new = loaded.config;
        let sig = new.signature();
        if sig == self.signature {
            tracing::info!("reload: configuration unchanged");
            return ReloadOutcome::Unchanged;
        }
        let running: BTreeSet<String> = self.pipes.keys().cloned().collect();
        let plan = match agent_reload_plan(&new, &running) {
            Ok(p) => p,
            Err(d) => {
                tracing::error!("reload refused: {d}");
                return ReloadOutcome::Refused(d.to_string());
            }
        };
        tracing::info!(added = ?plan.added, removed = ?plan.removed, "reloading");
        for id in &plan.removed {
            self.stop_pipe(id).await;
        }
        self.config = new;
        self.signature = sig;
        let mut failed = Vec::new();
        for id in &plan.added {
            if let Err(e) = self.start_pipe(id).await {
                tracing::error!(pipe = %id, error = %e, "pipe failed to start");
                failed.push(id.clone());
            }
        }
        ReloadOutcome::Applied {
            added: plan.added,
            removed: plan.removed,
            failed,
        }
    }

    /// Handles requests from pipes (reload, stop_pipe) until `shutdown` completes, then stops.
    pub async fn run_until(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(LIVE_STATUS_PERIOD);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                Some(req) = self.req_rx.recv() => self.handle(req).await,
                _ = tick.tick() => self.write_live_status(),
            }
        }
        self.shutdown().await;
    }

    async fn handle(&mut self, req: AppRequest) {
        match req {
            AppRequest::Reload => {
                let outcome = self.reload().await;
                tracing::info!(?outcome, "reload requested by Fusion");
            }
            AppRequest::StopPipe(id) => {
                tracing::info!(pipe = %id, "stop_pipe requested by Fusion");
                self.stop_pipe(&id).await;
            }
            AppRequest::Steer(r) => self.steer(r).await,
        }
    }

    /// SIGTERM/SIGINT stop the agent, SIGHUP reloads (the daemon's main loop).
    #[cfg(unix)]
    pub async fn run_until_signal(mut self) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        let mut tick = tokio::time::interval(LIVE_STATUS_PERIOD);
        // Pipes started and the signal handlers in place (a `systemctl stop` right after start
        // must stop cleanly): `systemctl start` may return.
        fustor_daemon::notify::ready(&format!("{} pipe(s) running", self.pipe_ids().len()));
        fustor_daemon::notify::spawn_watchdog();
        loop {
            tokio::select! {
                _ = tick.tick() => self.write_live_status(),
                _ = term.recv() => { tracing::info!("SIGTERM: stopping"); break; }
                _ = int.recv() => { tracing::info!("SIGINT: stopping"); break; }
                _ = hup.recv() => {
                    let outcome = self.reload().await;
                    tracing::info!(?outcome, "SIGHUP: reload");
                    self.record_reload(&outcome);
                }
                Some(req) = self.req_rx.recv() => self.handle(req).await,
            }
        }
        fustor_daemon::notify::stopping();
        self.shutdown().await;
        Ok(())
    }

    /// Leaves the verdict where `fustor-agent reload` waits for it.
    fn record_reload(&self, outcome: &ReloadOutcome) {
        let (ok, message) = match outcome {
            ReloadOutcome::Unchanged => (true, "configuration unchanged".to_string()),
            ReloadOutcome::Applied {
                added,
                removed,
                failed,
            } => (
                failed.is_empty(),
                format!("added {added:?}, removed {removed:?}, failed to start {failed:?}"),
            ),
            ReloadOutcome::Refused(why) => (false, why.clone()),
        };
        let file = self.paths.reload_result_file(Daemon::Agent);
        fustor_core::process::record_reload(&file, ok, &message);
    }

    /// Writes `agent-status.json`: what `fustor-agent status` shows of the running daemon
    /// (pipes, sessions, roles, last error, events/s). Written atomically (temp file + rename).
    fn write_live_status(&mut self) {
        let now = fustor_core::Now::system().epoch;
        let pipes: Vec<serde_json::Value> = self
            .statuses()
            .into_iter()
            .map(|st| {
                let rate = match self.status_prev.get(&st.id) {
                    Some(&(t, n)) if now > t => {
                        (st.events_pushed.saturating_sub(n)) as f64 / (now - t)
                    }
                    _ => 0.0,
                };
                self.status_prev
                    .insert(st.id.clone(), (now, st.events_pushed));
                let mut v = serde_json::to_value(&st).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.insert("events_per_sec".into(), json!(rate));
                }
                v
            })
            .collect();
        let body = json!({
            "pid": std::process::id(),
            "agent_id": self.agent_id,
            "updated_at": now,
            "pipes": pipes,
        });
        let file = self.paths.home.join("agent-status.json");
        let tmp = self.paths.home.join("agent-status.json.tmp");
        let written = serde_json::to_vec_pretty(&body)
            .map_err(std::io::Error::other)
            .and_then(|b| std::fs::write(&tmp, b))
            .and_then(|()| std::fs::rename(&tmp, &file));
        if let Err(e) = written {
            tracing::debug!(file = ?file, error = %e, "cannot write the live status");
        }
    }

    /// Stops every pipe and writes `agent-state.json` (previous one kept as `.bak`).
    pub async fn shutdown(mut self) {
        let mut states = serde_json::Map::new();
        let ids: Vec<String> = self.pipes.keys().cloned().collect();
        for id in ids {
            if let Some(st) = self.stop_pipe(&id).await {
                states.insert(id, json!({"state": st.state}));
            }
        }
        let file = self.paths.agent_state_file();
        let body = json!({"pipes": states});
        if file.exists() {
            let mut bak = file.clone().into_os_string();
            bak.push(".bak");
            let _ = std::fs::rename(&file, bak);
        }
        match serde_json::to_vec_pretty(&body) {
            Ok(b) => {
                if let Err(e) = std::fs::write(&file, b) {
                    tracing::warn!(file = ?file, error = %e, "cannot write the state file");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot encode the state file"),
        }
        tracing::info!("agent stopped");
    }
}
