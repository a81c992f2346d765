//! The registry's typed records: what is persisted and what the admin API answers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One agent as the registry knows it; kept after the agent disconnects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRecord {
    pub agent_id: String,
    /// Host name the agent reported (`client_info.hostname`), if any.
    pub host: Option<String>,
    /// Address the last session came from.
    pub client_ip: Option<String>,
    /// `client_info.agent_version`; a Python agent does not send it.
    pub version: Option<String>,
    /// `client_info.config_digest`, if reported; for an agent steered by the registry, the
    /// digest of the registry document it runs.
    pub config_digest: Option<String>,
    /// Registry document version the agent runs (heartbeat `agent_status.registry`).
    #[serde(default)]
    pub config_version: Option<i64>,
    /// Why the newest version failed on the agent (it keeps running `config_version`).
    #[serde(default)]
    pub config_error: Option<String>,
    /// The newest version the agent tried.
    #[serde(default)]
    pub config_tried: Option<i64>,
    /// The agent reports a registry status: it fetches announced versions.
    #[serde(default)]
    pub steered: bool,
    pub first_seen: f64,
    pub last_seen: f64,
    /// By agent pipe id.
    pub pipes: BTreeMap<String, PipeRecord>,
}

/// One pipe of an agent: its source, its sender (the Fusion pipe it feeds) and its health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipeRecord {
    pub pipe_id: String,
    /// The Fusion pipe this agent pipe sends to (through its agent key).
    pub fusion_pipe: String,
    pub source_uri: Option<String>,
    /// `source_type` of the session (the agent's source driver).
    pub source_type: Option<String>,
    /// The session last opened by this pipe.
    pub session_id: Option<String>,
    pub first_seen: f64,
    pub last_seen: f64,
    pub health: PipeHealth,
}

/// Health of one agent pipe, from its last heartbeat (`agent_status`) and Fusion's own view.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PipeHealth {
    pub role: Option<String>,
    pub state: Option<String>,
    pub last_heartbeat: Option<f64>,
    pub events_pushed: Option<u64>,
    /// Computed by Fusion from `events_pushed` between heartbeats (any agent).
    pub events_per_sec: Option<f64>,
    /// Batches waiting in the Fusion pipe's queue at the last heartbeat.
    pub queue_depth: Option<u64>,
    pub realtime_ready: Option<bool>,
    pub realtime_degraded: Option<bool>,
    pub last_error: Option<String>,
    pub consecutive_errors: Option<u32>,
    pub watches_used: Option<u64>,
    pub watch_limit: Option<u64>,
    pub initial_snapshot_done: Option<bool>,
    pub audit_running: Option<bool>,
}

/// The extra (and standard) fields an agent puts in `agent_status`. Unknown and mistyped
/// fields are ignored: the status is informational and must never fail a heartbeat.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StatusReport {
    role: Option<Value>,
    state: Option<Value>,
    events_pushed: Option<Value>,
    is_realtime_ready: Option<Value>,
    realtime_degraded: Option<Value>,
    last_error: Option<Value>,
    consecutive_errors: Option<Value>,
    watches_used: Option<Value>,
    watch_limit: Option<Value>,
    initial_snapshot_done: Option<Value>,
    audit_running: Option<Value>,
}

/// Longest kept status text: an agent's error message must not grow the database.
const MAX_TEXT_CHARS: usize = 1024;

pub(crate) fn clip(s: String) -> String {
    match s.char_indices().nth(MAX_TEXT_CHARS) {
        Some((i, _)) => s[..i].to_string(),
        None => s,
    }
}

fn s(v: Option<Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(clip(s)),
        _ => None,
    }
}
fn u(v: Option<Value>) -> Option<u64> {
    v?.as_u64()
}
fn b(v: Option<Value>) -> Option<bool> {
    v?.as_bool()
}

impl PipeHealth {
    /// Folds a heartbeat's `agent_status` in; fields the agent did not send keep their value
    /// (a Python agent sends only the standard ones).
    pub fn apply(&mut self, status: &Map<String, Value>, at: f64) {
        let r: StatusReport =
            serde_json::from_value(Value::Object(status.clone())).unwrap_or_default();
        if let (Some(now), Some(prev), Some(t0)) = (
            u(r.events_pushed.clone()),
            self.events_pushed,
            self.last_heartbeat,
        ) {
            let dt = at - t0;
            if dt > 0.0 && now >= prev {
                self.events_per_sec = Some((now - prev) as f64 / dt);
            }
        }
        macro_rules! set {
            ($field:ident, $conv:ident, $src:ident) => {
                if let Some(v) = $conv(r.$src) {
                    self.$field = Some(v);
                }
            };
        }
        set!(role, s, role);
        set!(state, s, state);
        set!(events_pushed, u, events_pushed);
        set!(realtime_ready, b, is_realtime_ready);
        set!(realtime_degraded, b, realtime_degraded);
        set!(watches_used, u, watches_used);
        set!(watch_limit, u, watch_limit);
        set!(initial_snapshot_done, b, initial_snapshot_done);
        set!(audit_running, b, audit_running);
        if let Some(n) = u(r.consecutive_errors.clone()) {
            self.consecutive_errors = Some(u32::try_from(n).unwrap_or(u32::MAX));
        }
        // A reported `null` clears the error: the agent recovered.
        if status.contains_key("last_error") {
            self.last_error = s(r.last_error);
        }
        self.last_heartbeat = Some(at);
    }
}

/// `GET /api/v1/admin/agents` entry: the record plus whether a session of it is open now.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentView {
    #[serde(flatten)]
    pub record: AgentRecord,
    pub connected: bool,
    /// Agent pipe ids with an open session.
    pub connected_pipes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentList {
    pub agents: Vec<AgentView>,
}

/// One audit-log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: f64,
    /// The admin key's name.
    pub who: String,
    /// e.g. `agent.forget`.
    pub action: String,
    pub target: String,
    /// SHA-256 of the target's JSON before and after the action (absent: did not exist).
    pub before_digest: Option<String>,
    pub after_digest: Option<String>,
    /// `ok`, `not_found`, `error: …`.
    pub result: String,
}

/// An audit entry to record; `id` and `at` are given by the log.
#[derive(Debug, Clone)]
pub struct AuditNew {
    pub who: String,
    pub action: String,
    pub target: String,
    pub before_digest: Option<String>,
    pub after_digest: Option<String>,
    pub result: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditList {
    pub entries: Vec<AuditEntry>,
}
