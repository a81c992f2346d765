//! The registry (issue 15, first part): the inventory of every agent that opened a session,
//! their health, and an audit log of admin actions, persisted in SQLite under the Fusion home.
//!
//! The inventory lives in memory (answers never touch the database) and is written behind:
//! a registration at once, heartbeats coalesced into one transaction every
//! [`FLUSH_EVERY`], so the write rate does not grow with the heartbeat rate. When the database
//! cannot be opened (damaged, locked, unwritable), Fusion serves views as usual and the admin
//! routes answer 503 naming the file and the error.

pub mod actions;
pub mod audit;
pub mod config_targets;
pub mod configs;
pub mod db;
pub mod fusion_config;
pub mod fusion_files;
pub mod keys;
pub mod model;
pub mod steer;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use fustor_core::wire::RegistryStatus;
use parking_lot::{Mutex, RwLock};
use serde::Deserialize;
use serde_json::{Map, Value};

pub use db::{Db, DbError};
use model::{AgentRecord, AuditEntry, AuditNew, PipeHealth, PipeRecord};

/// Heartbeats reach the database at most this often (per Fusion, all agents in one write).
pub const FLUSH_EVERY: Duration = Duration::from_secs(5);
/// The registry's file under the Fusion data directory.
pub const FILE_NAME: &str = "registry.sqlite";
/// Bounds on the inventory: any agent key may invent task ids, and each new one would
/// otherwise grow memory and the database for good.
pub const MAX_AGENTS: usize = 10_000;
pub const MAX_PIPES_PER_AGENT: usize = 256;

/// What a session-open tells the registry.
#[derive(Debug, Clone)]
pub struct Registration<'a> {
    pub task_id: &'a str,
    pub fusion_pipe: &'a str,
    pub session_id: &'a str,
    pub client_ip: Option<&'a str>,
    pub client_info: Option<&'a Map<String, Value>>,
    pub source_type: Option<&'a str>,
    pub at: f64,
}

enum Backing {
    /// Not opened (embedded use, unit tests): the inventory is kept in memory only.
    None,
    Open(Db),
    Failed(DbError),
}

pub struct Registry {
    backing: RwLock<Backing>,
    agents: Mutex<BTreeMap<String, AgentRecord>>,
    /// Agents changed since the last flush.
    dirty: Mutex<HashSet<String>>,
    /// Fusion's own configuration files through the admin API.
    pub fusion_config: fusion_config::FusionConfigs,
    /// Versions to announce and actions to deliver in heartbeat answers.
    pub steering: steer::Steering,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            backing: RwLock::new(Backing::None),
            agents: Mutex::new(BTreeMap::new()),
            dirty: Mutex::new(HashSet::new()),
            fusion_config: fusion_config::FusionConfigs::default(),
            steering: steer::Steering::default(),
        }
    }
}

/// `task_id` = `agent_id:pipe_id` (wire §2); a task id without `:` is a one-pipe agent.
fn split_task(task_id: &str) -> (&str, &str) {
    match task_id.split_once(':') {
        Some((a, p)) => (a, p),
        None => (task_id, task_id),
    }
}

fn info_str(info: Option<&Map<String, Value>>, key: &str) -> Option<String> {
    info?
        .get(key)?
        .as_str()
        .map(|s| s.chars().take(256).collect())
}

/// SHA-256 hex of a value's JSON: the before/after digests of the audit log.
pub fn digest<T: serde::Serialize>(v: &T) -> Option<String> {
    serde_json::to_vec(v)
        .ok()
        .map(|b| keys::hex(&keys::sha256(&b)))
}

impl Registry {
    /// Blocking: opens the database at `path` and loads the stored inventory. On failure the
    /// error is kept (and logged) and the registry stays memory-only.
    pub fn open(&self, path: &Path) {
        match Db::open(path) {
            Ok((db, stored)) => {
                tracing::info!(agents = stored.len(), "registry database opened");
                let mut agents = self.agents.lock();
                for a in stored {
                    agents.entry(a.agent_id.clone()).or_insert(a);
                }
                drop(agents);
                if let Err(e) = self.steering.load(path) {
                    tracing::error!(error = %e, "registry: versions and actions not loaded; agents are not steered until they change");
                }
                *self.backing.write() = Backing::Open(db);
            }
            Err(e) => {
                tracing::error!(error = %e, "registry unavailable; views are served as usual");
                *self.backing.write() = Backing::Failed(e);
            }
        }
    }

    /// The database, or why there is none.
    pub fn db(&self) -> Result<Db, RegistryError> {
        match &*self.backing.read() {
            Backing::Open(db) => Ok(db.clone()),
            Backing::Failed(e) => Err(RegistryError::Unavailable(e.clone())),
            Backing::None => Err(RegistryError::NotOpened),
        }
    }

    /// A session opened: registers (or refreshes) its agent and pipe; written at once, in the
    /// background (a slow disk must not delay the session's answer).
    pub fn register(&self, r: Registration<'_>) {
        let (agent_id, pipe_id) = split_task(r.task_id);
        let record = {
            let mut agents = self.agents.lock();
            if !agents.contains_key(agent_id) && agents.len() >= MAX_AGENTS {
                tracing::warn!(agent = %crate::limits::for_log(agent_id), max = MAX_AGENTS,
                    "registry full: agent not registered (forget stale agents)");
                return;
            }
            let a = agents
                .entry(agent_id.to_string())
                .or_insert_with(|| AgentRecord {
                    agent_id: agent_id.to_string(),
                    host: None,
                    client_ip: None,
                    version: None,
                    config_digest: None,
                    config_version: None,
                    config_error: None,
                    config_tried: None,
                    steered: false,
                    first_seen: r.at,
                    last_seen: r.at,
                    pipes: BTreeMap::new(),
                });
            a.last_seen = r.at;
            a.client_ip = r.client_ip.map(str::to_string).or(a.client_ip.take());
            for (field, key) in [
                (&mut a.host, "hostname"),
                (&mut a.version, "agent_version"),
                (&mut a.config_digest, "config_digest"),
            ] {
                if let Some(v) = info_str(r.client_info, key) {
                    *field = Some(v);
                }
            }
            if !a.pipes.contains_key(pipe_id) && a.pipes.len() >= MAX_PIPES_PER_AGENT {
                tracing::warn!(agent = %crate::limits::for_log(agent_id), max = MAX_PIPES_PER_AGENT,
                    "registry: too many pipes for one agent; pipe not registered");
                return;
            }
            let p = a
                .pipes
                .entry(pipe_id.to_string())
                .or_insert_with(|| PipeRecord {
                    pipe_id: pipe_id.to_string(),
                    fusion_pipe: r.fusion_pipe.to_string(),
                    source_uri: None,
                    source_type: None,
                    session_id: None,
                    first_seen: r.at,
                    last_seen: r.at,
                    health: PipeHealth::default(),
                });
            p.fusion_pipe = r.fusion_pipe.to_string();
            p.session_id = Some(r.session_id.to_string());
            p.last_seen = r.at;
            p.source_uri = info_str(r.client_info, "source_uri").or(p.source_uri.take());
            if let Some(t) = r.source_type {
                p.source_type = Some(t.chars().take(64).collect());
            }
            a.clone()
        };
        self.dirty.lock().remove(agent_id);
        if let Ok(db) = self.db() {
            tokio::spawn(async move { save(&db, vec![record]).await });
        }
    }

    /// A heartbeat: refreshes last-seen and health in memory; written by the next flush.
    pub fn heartbeat(
        &self,
        task_id: &str,
        status: Option<&Map<String, Value>>,
        queue_depth: u64,
        at: f64,
    ) {
        let (agent_id, pipe_id) = split_task(task_id);
        let mut agents = self.agents.lock();
        // An agent forgotten while its session is open re-registers with its next session.
        let Some(a) = agents.get_mut(agent_id) else {
            return;
        };
        a.last_seen = at;
        let reported = status
            .and_then(|s| s.get(fustor_core::wire::REGISTRY_STATUS_KEY))
            .and_then(|v| RegistryStatus::deserialize(v).ok());
        let mut finished = Vec::new();
        if let Some(r) = reported {
            a.steered = true;
            a.config_version = r.config_version;
            a.config_digest = r.config_digest.map(model::clip).or(a.config_digest.take());
            a.config_error = r.config_error.map(model::clip);
            a.config_tried = r.config_tried;
            if !r.actions.is_empty() {
                finished = self.steering.finished(agent_id, &r.actions);
            }
        }
        if let Some(p) = a.pipes.get_mut(pipe_id) {
            p.last_seen = at;
            match status {
                Some(s) => p.health.apply(s, at),
                None => p.health.last_heartbeat = Some(at),
            }
            p.health.queue_depth = Some(queue_depth);
        }
        drop(agents);
        self.dirty.lock().insert(agent_id.to_string());
        if !finished.is_empty()
            && let Ok(db) = self.db()
        {
            tokio::spawn(async move {
                let r = db
                    .call(move |c| {
                        for f in &finished {
                            actions::finish(c, f.id, f.ok, &model::clip(f.message.clone()), at)?;
                        }
                        Ok(())
                    })
                    .await;
                if let Err(e) = r {
                    tracing::warn!(error = %e, "registry: action outcomes not saved");
                }
            });
        }
    }

    /// The commands a heartbeat of `task_id` carries back: a new configuration version, the
    /// admin actions waiting for this agent (marked delivered in the background).
    pub fn commands(&self, task_id: &str) -> Vec<Map<String, Value>> {
        let (agent_id, pipe_id) = split_task(task_id);
        let reported = {
            let agents = self.agents.lock();
            let Some(a) = agents.get(agent_id) else {
                return Vec::new();
            };
            a.steered.then(|| RegistryStatus {
                config_version: a.config_version,
                config_digest: a.config_digest.clone(),
                config_error: None,
                config_tried: a.config_tried,
                actions: Vec::new(),
            })
        };
        let d = self.steering.deliver(
            agent_id,
            pipe_id,
            reported.as_ref(),
            std::time::Instant::now(),
        );
        if !d.delivered.is_empty()
            && let Ok(db) = self.db()
        {
            let at = fustor_core::Now::system().epoch;
            let ids = d.delivered;
            tokio::spawn(async move {
                let r = db
                    .call(move |c| {
                        for id in ids {
                            actions::mark_delivered(c, id, at)?;
                        }
                        Ok(())
                    })
                    .await;
                if let Err(e) = r {
                    tracing::warn!(error = %e, "registry: action delivery not saved");
                }
            });
        }
        d.commands
    }

    /// Records an admin action (with its audit entry) and queues it for the agent.
    pub async fn request_action(
        &self,
        who: &str,
        agent_id: &str,
        req: actions::ActionRequest,
    ) -> Result<actions::ActionRecord, RegistryError> {
        let db = self.db()?;
        let at = fustor_core::Now::system().epoch;
        let (who, agent) = (who.to_string(), agent_id.to_string());
        let rec = db
            .call(move |c| actions::insert(c, &agent, &req, &who, at))
            .await?;
        self.steering.queue(rec.clone());
        Ok(rec)
    }

    pub async fn actions(
        &self,
        agent: Option<String>,
        limit: u32,
    ) -> Result<Vec<actions::ActionRecord>, RegistryError> {
        let db = self.db()?;
        Ok(db
            .call(move |c| actions::list(c, agent.as_deref(), limit))
            .await?)
    }

    /// Writes the agents changed since the last flush (one transaction).
    pub async fn flush(&self) {
        let ids: Vec<String> = self.dirty.lock().drain().collect();
        if ids.is_empty() {
            return;
        }
        let records: Vec<AgentRecord> = {
            let agents = self.agents.lock();
            ids.iter()
                .filter_map(|id| agents.get(id).cloned())
                .collect()
        };
        if let Ok(db) = self.db() {
            save(&db, records).await;
        }
    }

    pub fn agents(&self) -> Vec<AgentRecord> {
        self.agents.lock().values().cloned().collect()
    }

    pub fn agent(&self, id: &str) -> Option<AgentRecord> {
        self.agents.lock().get(id).cloned()
    }

    /// `DELETE /admin/agents/{id}`: forgets an agent, recorded in the audit log (also when
    /// there was nothing to forget).
    pub async fn forget(&self, who: &str, agent_id: &str) -> Result<AuditEntry, RegistryError> {
        let db = self.db()?;
        let before = self.agents.lock().remove(agent_id);
        self.dirty.lock().remove(agent_id);
        let audit = AuditNew {
            who: who.to_string(),
            action: "agent.forget".into(),
            target: format!("agent/{agent_id}"),
            before_digest: before.as_ref().and_then(digest),
            after_digest: None,
            result: if before.is_some() { "ok" } else { "not_found" }.into(),
        };
        let id = agent_id.to_string();
        let at = fustor_core::Now::system().epoch;
        let res = db.call(move |c| db::forget_agent(c, &id, &audit, at)).await;
        if res.is_err()
            && let Some(a) = before
        {
            // Not forgotten on disk: keep it in memory too, so the two agree.
            self.agents.lock().insert(a.agent_id.clone(), a);
        }
        Ok(res?)
    }

    /// Records an admin action (for actions outside this module).
    pub async fn audit(&self, entry: AuditNew) -> Result<AuditEntry, RegistryError> {
        let db = self.db()?;
        let at = fustor_core::Now::system().epoch;
        Ok(db.call(move |c| db::insert_audit(c, &entry, at)).await?)
    }

    /// Records Fusion's configuration files when they changed on disk (start, SIGHUP).
    pub async fn record_fusion_files(&self) {
        if let Ok(db) = self.db() {
            self.fusion_config.record_if_idle(&db).await;
        }
    }

    pub async fn audit_log(
        &self,
        since: f64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, RegistryError> {
        let db = self.db()?;
        Ok(db.call(move |c| db::audit_since(c, since, limit)).await?)
    }

    pub async fn audit_query(
        &self,
        filter: audit::AuditFilter,
    ) -> Result<Vec<AuditEntry>, RegistryError> {
        let db = self.db()?;
        Ok(db.call(move |c| audit::query(c, &filter)).await?)
    }
}

async fn save(db: &Db, records: Vec<AgentRecord>) {
    if let Err(e) = db.call(move |c| db::save_agents(c, &records)).await {
        tracing::warn!(error = %e, "registry: agent inventory not saved");
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry unavailable: {0}")]
    Unavailable(DbError),
    #[error("registry unavailable: no database opened")]
    NotOpened,
    #[error(transparent)]
    Db(#[from] DbError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(r: &Registry, task: &str, at: f64) {
        r.register(Registration {
            task_id: task,
            fusion_pipe: "v1",
            session_id: "s",
            client_ip: None,
            client_info: None,
            source_type: None,
            at,
        });
    }

    #[test]
    fn the_inventory_is_bounded() {
        let r = Registry::default();
        for i in 0..MAX_AGENTS + 5 {
            reg(&r, &format!("a{i}:p"), 1.0);
        }
        assert_eq!(r.agents().len(), MAX_AGENTS);
        for i in 0..MAX_PIPES_PER_AGENT + 5 {
            reg(&r, &format!("a0:p{i}"), 1.0);
        }
        assert_eq!(
            r.agent("a0").map(|a| a.pipes.len()),
            Some(MAX_PIPES_PER_AGENT)
        );
    }

    #[test]
    fn heartbeats_only_mark_dirty_and_fold_health() {
        let r = Registry::default();
        reg(&r, "agent-1:pipe-1", 10.0);
        assert!(
            r.dirty.lock().is_empty(),
            "a registration is written at once"
        );
        let mut s = Map::new();
        s.insert("events_pushed".into(), 100.into());
        s.insert("role".into(), "leader".into());
        r.heartbeat("agent-1:pipe-1", Some(&s), 3, 11.0);
        s.insert("events_pushed".into(), 300.into());
        s.insert("last_error".into(), "boom".into());
        r.heartbeat("agent-1:pipe-1", Some(&s), 4, 13.0);
        // A heartbeat of an unknown agent (forgotten while connected) is dropped.
        r.heartbeat("ghost:p", Some(&s), 0, 13.0);
        assert_eq!(r.dirty.lock().len(), 1);
        let a = r.agent("agent-1");
        let h = a
            .as_ref()
            .and_then(|a| a.pipes.get("pipe-1"))
            .map(|p| &p.health);
        assert_eq!(h.and_then(|h| h.events_per_sec), Some(100.0));
        assert_eq!(h.and_then(|h| h.queue_depth), Some(4));
        assert_eq!(h.and_then(|h| h.last_error.as_deref()), Some("boom"));
        assert_eq!(h.and_then(|h| h.role.as_deref()), Some("leader"));
        assert_eq!(a.map(|a| a.last_seen), Some(13.0));
        s.insert("last_error".into(), Value::Null);
        r.heartbeat("agent-1:pipe-1", Some(&s), 0, 14.0);
        let a = r.agent("agent-1");
        let h = a
            .as_ref()
            .and_then(|a| a.pipes.get("pipe-1"))
            .map(|p| &p.health);
        assert_eq!(h.and_then(|h| h.last_error.clone()), None, "null clears");
    }

    #[test]
    fn a_steered_agent_is_told_of_new_versions_until_it_reports_them() {
        let r = Registry::default();
        reg(&r, "a:p1", 1.0);
        reg(&r, "a:p2", 1.0);
        r.steering.config_written("a", 2, "d2");
        // Not steered (no registry status): nothing to announce.
        r.heartbeat("a:p1", None, 0, 2.0);
        assert!(r.commands("a:p1").is_empty());
        let status = |v: i64, d: &str, err: Option<&str>| {
            let mut s = Map::new();
            let st = RegistryStatus {
                config_version: Some(v),
                config_digest: Some(d.into()),
                config_error: err.map(Into::into),
                config_tried: Some(v),
                actions: Vec::new(),
            };
            s.insert(
                fustor_core::wire::REGISTRY_STATUS_KEY.into(),
                serde_json::to_value(st).unwrap_or_default(),
            );
            s
        };
        r.heartbeat("a:p1", Some(&status(1, "d1", None)), 0, 3.0);
        let cmds = r.commands("a:p1");
        assert_eq!(cmds.len(), 1);
        assert_eq!(cmds[0]["type"], "config_changed");
        assert_eq!(cmds[0]["version"], 2);
        assert!(
            r.commands("a:p2").is_empty(),
            "once per agent, not per pipe"
        );
        r.heartbeat("a:p2", Some(&status(2, "d2", None)), 0, 4.0);
        let a = r.agent("a");
        assert_eq!(a.as_ref().and_then(|a| a.config_version), Some(2));
        assert_eq!(a.and_then(|a| a.config_digest), Some("d2".into()));
    }
}
