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
    /// Largest accepted request body (bytes); larger ⇒ 413.
    pub max_body_bytes: usize,
    /// Most rows in one ingest batch; more ⇒ 413.
    pub max_rows_per_batch: usize,
    /// Batches a pipe queue holds before senders wait.
    pub queue_batches: usize,
    /// Rows a pipe queue holds before senders wait (the memory bound).
    pub queue_rows: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 64 << 20,
            max_rows_per_batch: 200_000,
            queue_batches: 10_000,
            queue_rows: 250_000,
        }
    }
}

impl Limits {
    /// Reads `limits` from the unknown top-level keys of the configuration.
    pub fn from_extra(extra: &Map<String, Value>) -> Result<Limits, String> {
        match extra.get("limits") {
            None | Some(Value::Null) => Ok(Limits::default()),
            Some(v) => serde_json::from_value(v.clone()).map_err(|e| format!("limits: {e}")),
        }
    }
}
