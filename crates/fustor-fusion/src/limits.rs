//! Request and queue limits (a Rust addition; the reference enforces none, `pitfalls.md` 4).
//!
//! Set under a top-level `limits:` key of any fusion-config file; every value has a default
//! that a normal agent never reaches.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `Serialize` lists the known keys for `check-config`'s unknown-key report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Largest accepted ingest body (bytes); larger ⇒ 413, refused from `Content-Length`
    /// before anything is read.
    pub max_body_bytes: usize,
    /// Largest body of the control routes (session create, heartbeat, consistency, suspect
    /// list): they carry a few KB, so a large body there is an attack, not a batch.
    pub max_control_body_bytes: usize,
    /// Bytes of request bodies held at once over all connections. A body waits for its share
    /// (a quarter of `body_read_timeout_secs`, 5 s at most) and is answered 503 with
    /// `Retry-After` if none frees up, so concurrent uploads cannot add up to more than this.
    pub max_inflight_body_bytes: usize,
    /// Most rows in one ingest batch; more ⇒ 413.
    pub max_rows_per_batch: usize,
    /// Most events in one ingest batch, empty ones included; more ⇒ 413.
    pub max_events_per_batch: usize,
    /// Batches a pipe queue holds before senders wait.
    pub queue_batches: usize,
    /// Rows a pipe queue holds before senders wait (the memory bound).
    pub queue_rows: usize,
    /// Time a client has to send a request's headers; it also bounds how long an idle
    /// keep-alive connection is kept (waiting for the next request is waiting for headers).
    pub header_read_timeout_secs: f64,
    /// Time a client has to send a whole request body once its headers are in (408 after).
    pub body_read_timeout_secs: f64,
    /// Open connections per listening port; more are closed at once with a (rate-limited)
    /// warning. Each port has its own budget, so an attack on a receiver port leaves the
    /// query port answering. Also clamped to a quarter of the process's open-file limit.
    pub max_connections_per_port: usize,
}

// Sized from what the agents send: a batch holds at most 100 events of at most 100 rows (a few
// MB), a control request a few KB.
impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 16 << 20,
            max_control_body_bytes: 1 << 20,
            max_inflight_body_bytes: 128 << 20,
            max_rows_per_batch: 200_000,
            max_events_per_batch: 10_000,
            queue_batches: 10_000,
            queue_rows: 250_000,
            header_read_timeout_secs: 30.0,
            body_read_timeout_secs: 60.0,
            max_connections_per_port: 1024,
        }
    }
}

/// Longest accepted timeout: anything larger is a typo, and `Duration` conversion must not
/// overflow.
const MAX_TIMEOUT_SECS: f64 = 86_400.0;

impl Limits {
    /// Reads `limits` from the unknown top-level keys of the configuration.
    pub fn from_extra(extra: &Map<String, Value>) -> Result<Limits, String> {
        let limits: Limits = match extra.get("limits") {
            None | Some(Value::Null) => Limits::default(),
            Some(v) => serde_json::from_value(v.clone()).map_err(|e| format!("limits: {e}"))?,
        };
        limits.check()?;
        Ok(limits)
    }

    fn check(&self) -> Result<(), String> {
        for (key, secs) in [
            ("header_read_timeout_secs", self.header_read_timeout_secs),
            ("body_read_timeout_secs", self.body_read_timeout_secs),
        ] {
            if !(secs.is_finite() && secs > 0.0 && secs <= MAX_TIMEOUT_SECS) {
                return Err(format!(
                    "limits.{key}: {secs} is out of range (0 < value <= {MAX_TIMEOUT_SECS})"
                ));
            }
        }
        for (key, n) in [
            ("max_body_bytes", self.max_body_bytes),
            ("max_control_body_bytes", self.max_control_body_bytes),
            ("max_inflight_body_bytes", self.max_inflight_body_bytes),
            ("max_connections_per_port", self.max_connections_per_port),
        ] {
            if n == 0 {
                return Err(format!("limits.{key} must be at least 1"));
            }
        }
        Ok(())
    }

    pub fn header_read_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.header_read_timeout_secs)
    }

    pub fn body_read_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.body_read_timeout_secs)
    }
}

/// Longest accepted id (`task_id`, hence the agent id; a pipe id in event metadata).
/// Ids are copied into sessions, logs and lineage; real ones are a few dozen bytes.
pub const MAX_ID_BYTES: usize = 256;

/// Longest accepted `client_info.source_uri` (stored per session and per lineage entry).
pub const MAX_URI_BYTES: usize = 1024;

/// Longest piece of client-supplied text written into one log line.
const MAX_LOGGED_CHARS: usize = 200;

/// Client-supplied text for a log line: escaped (no control characters or fake line breaks) and
/// cut to a bounded length, saying how long the original was.
pub fn for_log(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(MAX_LOGGED_CHARS)
        .flat_map(char::escape_debug)
        .collect();
    if s.chars().nth(MAX_LOGGED_CHARS).is_some() {
        out.push_str(&format!("…({} bytes)", s.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn parse(v: Value) -> Result<Limits, String> {
        let mut m = Map::new();
        m.insert("limits".into(), v);
        Limits::from_extra(&m)
    }

    #[test]
    fn logged_text_is_escaped_and_bounded() {
        assert_eq!(for_log("a\nb"), "a\\nb");
        let long = for_log(&"x".repeat(200_000));
        assert!(
            long.len() < 300 && long.ends_with("(200000 bytes)"),
            "{long}"
        );
    }

    #[test]
    fn defaults_and_out_of_range_values() {
        assert_eq!(parse(Value::Null), Ok(Limits::default()));
        let l = parse(serde_json::json!({"header_read_timeout_secs": 0.5})).unwrap_or_default();
        assert_eq!(l.header_read_timeout(), Duration::from_millis(500));
        for bad in [
            serde_json::json!({"header_read_timeout_secs": 1e300}),
            serde_json::json!({"body_read_timeout_secs": 0}),
            serde_json::json!({"max_connections_per_port": 0}),
            serde_json::json!({"max_body_bytes": "64MB"}),
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad} accepted");
        }
    }
}
