//! The messages of the exec driver protocol, version [`PROTOCOL_VERSION`] (`docs/drivers.md`).
//!
//! One JSON object per line, tagged by `type`. Each direction is one enum so that the agent
//! never matches strings: a line that is not one of these messages is a protocol error and the
//! driver is restarted. Unknown *fields* are ignored (a later minor revision may add optional
//! fields); unknown message *types* are errors (they would change the meaning of a stream).

use fustor_core::{Event, EventType, FsRow};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Bumped on any change an existing driver could misread; a driver answering another version
/// is refused at the handshake.
pub const PROTOCOL_VERSION: u32 = 1;

/// Which side of a pipe the executable plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Source,
    Sender,
}

/// What the agent writes to the driver's stdin.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToDriver<'a> {
    /// First message of every run.
    Hello {
        protocol: u32,
        role: Role,
        uri: &'a str,
        /// The definition's `driver_params.config`, passed through untouched.
        config: &'a Map<String, Value>,
        /// Source role: the last position the agent acknowledged, to resume changes from.
        #[serde(skip_serializing_if = "Option::is_none")]
        start_position: Option<&'a str>,
    },
    /// Source: stream every row (answered by `rows` … `end` with the same id).
    Snapshot { id: u64 },
    /// Source: stream an audit pass (same answer as a snapshot).
    Audit { id: u64 },
    /// Source: stream the rows at or below `path` (on-demand scan).
    Scan {
        id: u64,
        path: &'a str,
        recursive: bool,
    },
    /// Source: report the current state of these paths (`sentinel_result`).
    Sentinel { id: u64, paths: &'a [String] },
    /// Source: every change up to this position is in the agent's queue.
    Ack { position: &'a str },
    /// Liveness: answered by `pong` with the same id.
    Ping { id: u64 },
    /// Sender: open a session for a pipe (answered by `session`).
    OpenSession { id: u64, task_id: &'a str },
    /// Sender: one batch of events (answered by `ack` or `error` with the same id).
    Batch {
        id: u64,
        session_id: &'a str,
        /// `snapshot`, `message` (realtime), `audit`, `on_demand_job`, `job_complete`.
        source_type: &'a str,
        is_end: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        metadata: Option<&'a Map<String, Value>>,
        events: &'a serde_json::value::RawValue,
    },
    /// Sender: the audit that the last `audit` batches made is complete.
    AuditEnd { id: u64 },
    /// Sender: the session is closed.
    CloseSession { id: u64, session_id: &'a str },
    /// Finish in-flight work and exit with status 0.
    Shutdown,
}

/// What a driver may declare in its handshake; everything defaults to "no".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeclaredCapabilities {
    pub snapshot: bool,
    pub changes: bool,
    pub audit: bool,
    pub sentinel: bool,
    pub on_demand: bool,
    /// Changes carry positions and `start_position` is honoured (else: resync after restarts).
    pub positions: bool,
}

/// One entry of a `sentinel_result`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SentinelItem {
    pub path: String,
    /// `false`: the path no longer exists.
    pub exists: bool,
    #[serde(default)]
    pub mtime: Option<f64>,
    #[serde(default)]
    pub size: Option<u64>,
}

/// The driver's answer to `hello`.
#[derive(Debug, Clone, Deserialize)]
pub struct DriverHello {
    pub protocol: u32,
    /// The driver's own name, for logs.
    pub driver: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub capabilities: DeclaredCapabilities,
    /// The row fields this source fills (`available_fields`).
    #[serde(default)]
    pub fields: Vec<String>,
}

/// What a driver writes to its stdout.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromDriver {
    Hello(DriverHello),
    /// Rows of the stream `id` (snapshot, audit or scan).
    Rows {
        id: u64,
        rows: Vec<FsRow>,
    },
    /// The stream `id` is complete.
    End {
        id: u64,
    },
    /// A change; `position` (if the driver has positions) is acknowledged by `ack`.
    Change {
        event_type: EventType,
        rows: Vec<FsRow>,
        #[serde(default)]
        position: Option<String>,
    },
    /// `start_position` can no longer be resumed from: the agent resynchronises.
    PositionLost {
        #[serde(default)]
        reason: Option<String>,
    },
    SentinelResult {
        id: u64,
        items: Vec<SentinelItem>,
    },
    Pong {
        id: u64,
    },
    /// Sender: the session opened for request `id`.
    Session {
        id: u64,
        session_id: String,
    },
    /// Sender: request `id` (batch, audit end, close) is done.
    Ack {
        id: u64,
    },
    /// A failure: of request `id`, or of the driver (`fatal`: it is restarted).
    Error {
        #[serde(default)]
        id: Option<u64>,
        message: String,
        #[serde(default)]
        fatal: bool,
    },
}

/// Rows of an exec source become fs events: the row vocabulary of every view.
pub fn event(event_type: EventType, source: fustor_core::MessageSource, rows: Vec<FsRow>) -> Event {
    let mut e = Event::fs(event_type, source, rows);
    e.index = (fustor_source_fs::epoch_now() * 1000.0) as i64;
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_as_documented() {
        let m: FromDriver = serde_json::from_str(
            r#"{"type":"hello","protocol":1,"driver":"x","capabilities":{"snapshot":true},"extra":1}"#,
        )
        .unwrap();
        assert!(
            matches!(m, FromDriver::Hello(h) if h.protocol == 1 && h.capabilities.snapshot && !h.capabilities.audit)
        );
        let m: FromDriver = serde_json::from_str(
            r#"{"type":"change","event_type":"delete","rows":[{"path":"/a"}],"position":"7"}"#,
        )
        .unwrap();
        assert!(
            matches!(m, FromDriver::Change { event_type: EventType::Delete, position: Some(p), .. } if p == "7")
        );
        assert!(serde_json::from_str::<FromDriver>(r#"{"type":"nonsense"}"#).is_err());
        let cfg = Map::new();
        let s = serde_json::to_string(&ToDriver::Hello {
            protocol: 1,
            role: Role::Source,
            uri: "u",
            config: &cfg,
            start_position: None,
        })
        .unwrap();
        assert_eq!(
            s,
            r#"{"type":"hello","protocol":1,"role":"source","uri":"u","config":{}}"#
        );
        assert_eq!(
            serde_json::to_string(&ToDriver::Shutdown).unwrap(),
            r#"{"type":"shutdown"}"#
        );
    }
}
