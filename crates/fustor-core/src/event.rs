//! Events and batches on the wire (`wire-protocol.md` §4).
//!
//! Required keys follow the reference model (`event_type`, `fields`, `rows`, `event_schema`,
//! `table`), so a batch the Python Fusion refuses with 422 is refused here too, and everything the
//! Python agent sends is accepted.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::row::FsRow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Insert,
    Update,
    Delete,
}

impl EventType {
    /// `insert` and `update` are both upserts (`consistency.md` §3).
    pub fn is_delete(self) -> bool {
        self == EventType::Delete
    }
}

/// Where an event comes from; drives arbitration (`consistency.md` §5–§6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageSource {
    #[default]
    Realtime,
    Snapshot,
    Audit,
    OnDemandJob,
}

impl MessageSource {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageSource::Realtime => "realtime",
            MessageSource::Snapshot => "snapshot",
            MessageSource::Audit => "audit",
            MessageSource::OnDemandJob => "on_demand_job",
        }
    }
}

fn minus_one() -> i64 {
    -1
}

/// One event. `R` is the row type: typed [`FsRow`]s everywhere, except an agent that applies a
/// `fields_mapping` projection, whose rows are free-form objects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event<R = FsRow> {
    #[serde(default)]
    pub event_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<f64>,
    pub event_type: EventType,
    pub fields: Vec<String>,
    pub rows: Vec<R>,
    #[serde(default = "minus_one")]
    pub index: i64,
    pub event_schema: String,
    pub table: String,
    #[serde(default)]
    pub message_source: MessageSource,
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

/// The field names the reference agent lists for fs upserts.
pub const FS_FIELDS: [&str; 7] = [
    "path",
    "file_name",
    "size",
    "modified_time",
    "created_time",
    "is_directory",
    "is_atomic_write",
];

impl Event<FsRow> {
    /// An fs event as the reference agent builds it.
    pub fn fs(event_type: EventType, source: MessageSource, rows: Vec<FsRow>) -> Self {
        Event {
            event_id: None,
            timestamp: None,
            event_type,
            fields: FS_FIELDS.iter().map(|s| s.to_string()).collect(),
            rows,
            index: -1,
            event_schema: "fs".to_string(),
            table: "files".to_string(),
            message_source: source,
            metadata: Map::new(),
        }
    }

    /// A string from the event metadata (lineage injected by Fusion).
    pub fn meta_str(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(Value::as_str)
    }
}

/// The batch kind carried in `source_type` (`wire-protocol.md` §4.3). Unknown kinds are kept
/// verbatim so a newer agent is answered, not refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchKind {
    Message,
    Snapshot,
    Audit,
    OnDemandJob,
    JobComplete,
    ConfigReport,
    Other(String),
}

impl BatchKind {
    pub fn parse(s: &str) -> Self {
        match s {
            "message" | "realtime" => BatchKind::Message,
            "snapshot" => BatchKind::Snapshot,
            "audit" => BatchKind::Audit,
            "on_demand_job" => BatchKind::OnDemandJob,
            "job_complete" | "find_complete" | "scan_complete" | "on_demand_jon" => {
                BatchKind::JobComplete
            }
            "config_report" => BatchKind::ConfigReport,
            other => BatchKind::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            BatchKind::Message => "message",
            BatchKind::Snapshot => "snapshot",
            BatchKind::Audit => "audit",
            BatchKind::OnDemandJob => "on_demand_job",
            BatchKind::JobComplete => "job_complete",
            BatchKind::ConfigReport => "config_report",
            BatchKind::Other(s) => s,
        }
    }
}

fn message() -> String {
    "message".to_string()
}

/// `POST /api/v1/pipe/ingest/{session_id}/events` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventBatch<R = FsRow> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    pub events: Vec<Event<R>>,
    #[serde(default = "message")]
    pub source_type: String,
    #[serde(default)]
    pub is_end: bool,
    /// Job batches name a path here (`scan_path`), so `\udcXX` is accepted in string values.
    #[serde(
        default,
        deserialize_with = "crate::lossless::de::opt_meta",
        skip_serializing_if = "Option::is_none"
    )]
    pub metadata: Option<Map<String, Value>>,
}

impl<R> EventBatch<R> {
    pub fn kind(&self) -> BatchKind {
        BatchKind::parse(&self.source_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFERENCE_BATCH: &str = r#"{"session_id":"s","events":[{"event_id":null,
        "timestamp":1706000000.123,"event_type":"update",
        "fields":["path","file_name","size","modified_time","created_time","is_directory","is_atomic_write"],
        "rows":[{"path":"/a.txt","file_name":"a.txt","size":3,"modified_time":1.5,"created_time":1.5,
                 "is_directory":false,"is_atomic_write":true}],
        "index":1706000000123,"event_schema":"fs","table":"files","message_source":"realtime",
        "metadata":{}}],"source_type":"message","is_end":false}"#;

    #[test]
    fn reference_batch_round_trips() {
        let b: EventBatch = serde_json::from_str(REFERENCE_BATCH).unwrap();
        assert_eq!(b.kind(), BatchKind::Message);
        assert_eq!(b.events[0].rows[0].size, Some(3));
        assert_eq!(b.events[0].index, 1706000000123);
        let again: EventBatch = serde_json::from_str(&serde_json::to_string(&b).unwrap()).unwrap();
        assert_eq!(b, again);
    }

    #[test]
    fn malformed_events_are_refused() {
        let bad = [
            r#"{"events":[{"foo":1}]}"#,
            r#"{"events":[{"event_type":"UPSERT","fields":[],"rows":[],"event_schema":"fs","table":"f"}]}"#,
            r#"{"events":[{"event_type":"update","fields":[],"rows":[{"path":"/x","size":"big"}],"event_schema":"fs","table":"f"}]}"#,
            r#"{"events":[{"event_type":"update","fields":[],"rows":[],"event_schema":"fs","table":"f","message_source":"gossip"}]}"#,
            r#"{"events":"nope"}"#,
            r#"{}"#,
        ];
        for b in bad {
            assert!(
                serde_json::from_str::<EventBatch>(b).is_err(),
                "accepted {b}"
            );
        }
    }

    #[test]
    fn job_metadata_may_name_an_undecodable_path() {
        let b: EventBatch = serde_json::from_str(
            r#"{"events":[],"source_type":"job_complete",
                "metadata":{"scan_path":"/caf\udce9","job_id":"j","n":{"a":[1]}}}"#,
        )
        .unwrap();
        let m = b.metadata.unwrap();
        let p = m["scan_path"].as_str().unwrap();
        assert_eq!(crate::lossless::unescape(p).as_ref(), b"/caf\xe9");
        assert_eq!(m["job_id"], "j");
        assert_eq!(m["n"]["a"][0], 1);
        let bad = r#"{"events":[],"metadata":{"x":{"y":"\udce9"}}}"#;
        assert!(serde_json::from_str::<EventBatch>(bad).is_err());
    }

    #[test]
    fn defaults_apply() {
        let b: EventBatch = serde_json::from_str(
            r#"{"events":[{"event_type":"delete","fields":[],"rows":[{"path":"/x"}],"event_schema":"fs","table":"files"}]}"#,
        )
        .unwrap();
        assert_eq!(b.source_type, "message");
        assert!(!b.is_end);
        assert_eq!(b.events[0].index, -1);
        assert_eq!(b.events[0].message_source, MessageSource::Realtime);
        assert_eq!(BatchKind::parse("scan_complete"), BatchKind::JobComplete);
    }
}
