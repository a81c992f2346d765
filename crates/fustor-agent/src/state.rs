//! Pipe state flags (`agent-runtime.md` §2) and the status a pipe reports.

use std::fmt;

use serde::Serialize;

/// Bit set with the reference values; displayed like the Python `Flag` repr
/// (`PipeState.RUNNING|MESSAGE_SYNC`), which is what heartbeats and the state file carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PipeState(pub u32);

impl PipeState {
    pub const STOPPED: PipeState = PipeState(0);
    pub const INITIALIZING: PipeState = PipeState(1);
    pub const RUNNING: PipeState = PipeState(2);
    pub const PAUSED: PipeState = PipeState(4);
    pub const ERROR: PipeState = PipeState(8);
    pub const CONF_OUTDATED: PipeState = PipeState(16);
    pub const SNAPSHOT_SYNC: PipeState = PipeState(32);
    pub const MESSAGE_SYNC: PipeState = PipeState(64);
    pub const AUDIT_PHASE: PipeState = PipeState(128);
    pub const RECONNECTING: PipeState = PipeState(256);
    pub const DRAINING: PipeState = PipeState(512);
    pub const STOPPING: PipeState = PipeState(1024);

    const NAMES: [(u32, &'static str); 11] = [
        (1, "INITIALIZING"),
        (2, "RUNNING"),
        (4, "PAUSED"),
        (8, "ERROR"),
        (16, "CONF_OUTDATED"),
        (32, "SNAPSHOT_SYNC"),
        (64, "MESSAGE_SYNC"),
        (128, "AUDIT_PHASE"),
        (256, "RECONNECTING"),
        (512, "DRAINING"),
        (1024, "STOPPING"),
    ];

    pub fn contains(self, other: PipeState) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn with(self, other: PipeState) -> PipeState {
        PipeState(self.0 | other.0)
    }

    pub fn without(self, other: PipeState) -> PipeState {
        PipeState(self.0 & !other.0)
    }

    /// "Running" per §2.
    pub fn is_running(self) -> bool {
        self.0
            & (Self::RUNNING.0
                | Self::PAUSED.0
                | Self::RECONNECTING.0
                | Self::SNAPSHOT_SYNC.0
                | Self::MESSAGE_SYNC.0
                | Self::AUDIT_PHASE.0)
            != 0
    }
}

impl fmt::Display for PipeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("PipeState.STOPPED");
        }
        f.write_str("PipeState.")?;
        let mut first = true;
        for (bit, name) in Self::NAMES {
            if self.0 & bit != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// A snapshot of one pipe for status output, heartbeats and `agent-state.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PipeStatus {
    pub id: String,
    pub state: String,
    pub role: Option<String>,
    pub session_id: Option<String>,
    pub events_pushed: u64,
    pub can_realtime: bool,
    pub realtime_degraded: bool,
    pub initial_snapshot_done: bool,
    pub consecutive_errors: u32,
    pub last_error: Option<String>,
    /// What is wrong with the source (an exec driver that crashed, hangs or is restarting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_problem: Option<String>,
    /// Full snapshots this pipe started (issue 11: a resumed reconnect starts none).
    pub snapshots_started: u64,
    /// New sessions that continued from Fusion's committed index.
    pub resumes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_like_the_reference() {
        assert_eq!(PipeState::STOPPED.to_string(), "PipeState.STOPPED");
        let s = PipeState::RUNNING.with(PipeState::MESSAGE_SYNC);
        assert_eq!(s.to_string(), "PipeState.RUNNING|MESSAGE_SYNC");
        assert!(s.is_running());
        assert!(
            !s.without(PipeState::RUNNING)
                .without(PipeState::MESSAGE_SYNC)
                .is_running()
        );
        assert!(s.contains(PipeState::MESSAGE_SYNC));
    }
}
