//! Session, heartbeat, command and consistency messages (`wire-protocol.md` §3, §5, §6).
//!
//! Shared by the agent's HTTP sender and Fusion's receiver so the two cannot disagree on a key.
//! Optional keys are omitted when absent, as the reference client does.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A session's part in its pipe's election, written `"leader"` / `"follower"` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Leader,
    Follower,
}

impl Role {
    pub fn of(leader: bool) -> Role {
        if leader { Role::Leader } else { Role::Follower }
    }

    pub fn is_leader(self) -> bool {
        self == Role::Leader
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role reads as its wire string wherever a `&str` was used before it was typed.
impl std::ops::Deref for Role {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<&str> for Role {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Every answer but `"leader"` (an empty string included) means "not leading": that is how the
/// agent has always read it, and a newer Fusion's role name must not break an older agent.
impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Role, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        Ok(Role::of(s == "leader"))
    }
}

/// A heartbeat's role: absent, `null` and `""` all mean "unchanged".
fn role_if_said<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Role>, D::Error> {
    let s = Option::<std::borrow::Cow<str>>::deserialize(d)?;
    Ok(s.filter(|s| !s.is_empty()).map(|s| Role::of(s == "leader")))
}

/// `POST /api/v1/pipe/session/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateSessionRequest {
    pub task_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_info: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_timeout_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_type: Option<String>,
}

/// Receiver-port answer; the main port adds `is_leader` and drops `message`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateSessionResponse {
    pub session_id: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_leader: Option<bool>,
    pub session_timeout_seconds: i64,
    #[serde(default)]
    pub audit_interval_sec: Option<f64>,
    #[serde(default)]
    pub sentinel_interval_sec: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Fusion reads undecodable name bytes written as `\udcXX` (PEP 383) and keeps them apart.
    /// The Python Fusion 0.8.x does not say so (and answers 500 to listings holding such names),
    /// so an agent that does not see this sends them as `?`, as the Python agent does.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lossless_names: bool,
    /// The highest realtime position of this task Fusion holds durably (issue 11, resume):
    /// present when the pipe's view is persisted, so the agent may replay what came after it
    /// instead of snapshotting. The Python agent ignores unknown fields; the Python Fusion never
    /// sends it, and an agent that does not see it snapshots as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed_index: Option<CommittedIndex>,
}

/// A position in one agent bus's numbering: `epoch` names the bus (a new one per agent
/// process), `seq` the last event applied. `epoch: None` means nothing is recorded yet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedIndex {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
    #[serde(default)]
    pub seq: u64,
}

/// Batch metadata key of the position a realtime batch ends at (agent → Fusion, sent only to a
/// Fusion that answered a [`CommittedIndex`]).
pub const RESUME_METADATA_KEY: &str = "resume";

/// The value under [`RESUME_METADATA_KEY`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumePoint {
    pub epoch: String,
    pub seq: u64,
}

impl ResumePoint {
    /// Reads the point from a batch's metadata; a malformed value counts as absent (the batch
    /// is still applied, its position only not recorded).
    pub fn from_metadata(meta: Option<&Map<String, Value>>) -> Option<ResumePoint> {
        let v = meta?.get(RESUME_METADATA_KEY)?;
        ResumePoint::deserialize(v)
            .ok()
            .filter(|p| !p.epoch.is_empty())
    }
}

/// `POST /api/v1/pipe/session/{id}/heartbeat` body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatRequest {
    #[serde(default)]
    pub can_realtime: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_status: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatResponse {
    pub status: String,
    #[serde(default, deserialize_with = "role_if_said")]
    pub role: Option<Role>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_leader: Option<bool>,
    /// The receiver port answers `null`, the main port leaves the key out (`None`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub can_realtime: Option<Option<bool>>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub commands: Vec<Map<String, Value>>,
}

/// A key that is present (even as `null`) is `Some`; `default` makes an absent one `None`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<bool>>, D::Error> {
    Option::<bool>::deserialize(d).map(Some)
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<Map<String, Value>>, D::Error> {
    Ok(Option::<Vec<Map<String, Value>>>::deserialize(d)?.unwrap_or_default())
}

/// A command delivered in a heartbeat response. Unknown types are kept so the agent can log
/// and skip them.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Scan {
        path: String,
        recursive: bool,
        job_id: Option<String>,
    },
    ReloadConfig,
    StopPipe {
        pipe_id: String,
    },
    UpdateConfig {
        config_yaml: String,
        filename: String,
    },
    ReportConfig {
        filename: String,
    },
    Upgrade {
        version: String,
    },
    /// The registry holds a new version of this agent's configuration document (issue 15):
    /// the agent fetches it with its agent key. The Python agent logs it as unknown.
    ConfigChanged {
        version: i64,
        digest: String,
    },
    /// Start (again) a configured pipe that a `stop_pipe` stopped.
    StartPipe {
        pipe_id: String,
    },
    /// Stop a pipe and start it again from the configuration.
    RestartPipe {
        pipe_id: String,
    },
    Unknown(Map<String, Value>),
}

/// Key of an admin action's id on a command (`scan`, `reload_config`, `stop_pipe`,
/// `start_pipe`, `restart_pipe`): the agent reports the outcome under this id.
pub const ACTION_ID_KEY: &str = "action_id";

/// The id of the admin action a command carries, if any.
pub fn action_id(m: &Map<String, Value>) -> Option<i64> {
    m.get(ACTION_ID_KEY).and_then(Value::as_i64)
}

/// Key under `agent_status` of an agent's [`RegistryStatus`] (heartbeat extra field; the
/// Python Fusion ignores `agent_status`).
pub const REGISTRY_STATUS_KEY: &str = "registry";

/// What an agent steered by the registry reports in every heartbeat of its pipes: the
/// configuration version it runs and the outcomes of recent admin actions. Its presence says
/// that the agent fetches `config_changed` versions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RegistryStatus {
    /// Version and digest of the document the agent runs (`None`: started from a copy whose
    /// version it does not know).
    pub config_version: Option<i64>,
    pub config_digest: Option<String>,
    /// Why the newest version tried failed; the agent runs `config_version` meanwhile.
    pub config_error: Option<String>,
    /// The newest version the agent tried (applied or failed): Fusion stops re-delivering.
    pub config_tried: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<ActionResult>,
}

/// The outcome of one admin action, reported until Fusion has seen it a few times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionResult {
    pub id: i64,
    pub ok: bool,
    #[serde(default)]
    pub message: String,
}

impl Command {
    pub fn parse(m: &Map<String, Value>) -> Command {
        let s = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
        match m.get("type").and_then(Value::as_str) {
            Some("scan") => match s("path") {
                Some(path) => Command::Scan {
                    path,
                    recursive: m.get("recursive").and_then(Value::as_bool).unwrap_or(true),
                    job_id: s("job_id"),
                },
                None => Command::Unknown(m.clone()),
            },
            Some("reload_config") => Command::ReloadConfig,
            Some("stop_pipe") => match s("agent_pipe_id").or_else(|| s("pipe_id")) {
                Some(pipe_id) => Command::StopPipe { pipe_id },
                None => Command::Unknown(m.clone()),
            },
            Some("update_config") => match s("config_yaml") {
                Some(config_yaml) => Command::UpdateConfig {
                    config_yaml,
                    filename: s("filename").unwrap_or_else(|| "default.yaml".to_string()),
                },
                None => Command::Unknown(m.clone()),
            },
            Some("report_config") => Command::ReportConfig {
                filename: s("filename").unwrap_or_else(|| "default.yaml".to_string()),
            },
            Some("upgrade") => match s("version") {
                Some(version) => Command::Upgrade { version },
                None => Command::Unknown(m.clone()),
            },
            Some("config_changed") => match (m.get("version").and_then(Value::as_i64), s("digest"))
            {
                (Some(version), Some(digest)) => Command::ConfigChanged { version, digest },
                _ => Command::Unknown(m.clone()),
            },
            Some(t @ ("start_pipe" | "restart_pipe")) => {
                match s("agent_pipe_id").or_else(|| s("pipe_id")) {
                    Some(pipe_id) if t == "start_pipe" => Command::StartPipe { pipe_id },
                    Some(pipe_id) => Command::RestartPipe { pipe_id },
                    None => Command::Unknown(m.clone()),
                }
            }
            _ => Command::Unknown(m.clone()),
        }
    }
}

impl Command {
    /// The wire object of this command, as [`Command::parse`] reads it back.
    pub fn to_map(&self) -> Map<String, Value> {
        let mut m = Map::new();
        let mut put = |k: &str, v: Value| {
            m.insert(k.to_string(), v);
        };
        match self {
            Command::Scan {
                path,
                recursive,
                job_id,
            } => {
                put("type", "scan".into());
                put("path", path.as_str().into());
                put("recursive", (*recursive).into());
                if let Some(j) = job_id {
                    put("job_id", j.as_str().into());
                }
            }
            Command::ReloadConfig => put("type", "reload_config".into()),
            Command::StopPipe { pipe_id } => {
                put("type", "stop_pipe".into());
                put("agent_pipe_id", pipe_id.as_str().into());
            }
            Command::UpdateConfig {
                config_yaml,
                filename,
            } => {
                put("type", "update_config".into());
                put("config_yaml", config_yaml.as_str().into());
                put("filename", filename.as_str().into());
            }
            Command::ReportConfig { filename } => {
                put("type", "report_config".into());
                put("filename", filename.as_str().into());
            }
            Command::Upgrade { version } => {
                put("type", "upgrade".into());
                put("version", version.as_str().into());
            }
            Command::ConfigChanged { version, digest } => {
                put("type", "config_changed".into());
                put("version", (*version).into());
                put("digest", digest.as_str().into());
            }
            Command::StartPipe { pipe_id } => {
                put("type", "start_pipe".into());
                put("agent_pipe_id", pipe_id.as_str().into());
            }
            Command::RestartPipe { pipe_id } => {
                put("type", "restart_pipe".into());
                put("agent_pipe_id", pipe_id.as_str().into());
            }
            Command::Unknown(other) => return other.clone(),
        }
        m
    }
}

impl Serialize for Command {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_map().serialize(s)
    }
}

/// `GET /api/v1/pipe/consistency/sentinel/tasks` (an empty object when there is nothing).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SentinelTasks {
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(
        default,
        deserialize_with = "crate::lossless::de::vec_name",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub paths: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view_id: Option<String>,
}

/// One entry of `POST /sentinel/feedback`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentinelUpdateItem {
    #[serde(default, deserialize_with = "crate::lossless::de::opt_name")]
    pub path: Option<String>,
    pub mtime: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentinelFeedback {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub updates: Vec<SentinelUpdateItem>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn commands_parse() {
        let m = |v: Value| v.as_object().cloned().unwrap();
        assert_eq!(
            Command::parse(&m(
                json!({"type":"scan","path":"/d","job_id":"1a2b3c4d","created_at":1.0})
            )),
            Command::Scan {
                path: "/d".into(),
                recursive: true,
                job_id: Some("1a2b3c4d".into())
            }
        );
        assert_eq!(
            Command::parse(&m(json!({"type":"stop_pipe","agent_pipe_id":"p"}))),
            Command::StopPipe {
                pipe_id: "p".into()
            }
        );
        assert!(matches!(
            Command::parse(&m(json!({"type":"dance"}))),
            Command::Unknown(_)
        ));
        assert!(matches!(
            Command::parse(&m(json!({"type":"scan"}))),
            Command::Unknown(_)
        ));
    }

    #[test]
    fn commands_serialize_to_what_parse_reads() {
        let all = [
            Command::Scan {
                path: "/d".into(),
                recursive: false,
                job_id: Some("j".into()),
            },
            Command::ReloadConfig,
            Command::StopPipe {
                pipe_id: "p".into(),
            },
            Command::UpdateConfig {
                config_yaml: "x: 1".into(),
                filename: "a.yaml".into(),
            },
            Command::ReportConfig {
                filename: "default.yaml".into(),
            },
            Command::Upgrade {
                version: "1.0".into(),
            },
            Command::ConfigChanged {
                version: 3,
                digest: "ab".into(),
            },
            Command::StartPipe {
                pipe_id: "p".into(),
            },
            Command::RestartPipe {
                pipe_id: "p".into(),
            },
        ];
        for c in all {
            let v = serde_json::to_value(&c).unwrap();
            assert_eq!(Command::parse(v.as_object().unwrap()), c);
        }
        assert_eq!(
            serde_json::to_value(Command::Scan {
                path: "/d".into(),
                recursive: true,
                job_id: None
            })
            .unwrap(),
            json!({"type": "scan", "path": "/d", "recursive": true})
        );
        assert_eq!(
            Role::of(true).to_string() + "/" + Role::of(false).as_str(),
            "leader/follower"
        );
        let r: HeartbeatResponse =
            serde_json::from_value(json!({"status": "ok", "role": ""})).unwrap();
        assert_eq!(r.role, None);
    }

    #[test]
    fn reference_shapes_round_trip() {
        let r: CreateSessionResponse = serde_json::from_value(json!({
            "session_id": "s", "role": "leader", "session_timeout_seconds": 30,
            "audit_interval_sec": 43200.0, "sentinel_interval_sec": 120.0,
            "message": "Session created successfully"}))
        .unwrap();
        assert_eq!(r.role, "leader");
        let hb: HeartbeatResponse = serde_json::from_value(json!({
            "status":"ok","role":"follower","message":null,"can_realtime":null,"commands":[]}))
        .unwrap();
        assert!(hb.commands.is_empty());
        let req = CreateSessionRequest {
            task_id: "a:p".into(),
            client_info: None,
            session_timeout_seconds: None,
            source_type: None,
        };
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            json!({"task_id":"a:p"})
        );
        let t: SentinelTasks = serde_json::from_value(json!({})).unwrap();
        assert!(t.paths.is_empty());
    }
}
