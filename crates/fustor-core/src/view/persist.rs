//! The optional persistence capability of a view driver (issue 11, "Durable Fusion").
//!
//! Fusion owns the files, the write-ahead log and the scheduling; a driver only knows how to
//! stream its state out and back in. The stream is self-delimiting (it ends with its own end
//! marker), so Fusion can put its own header in front of it and check that nothing follows.

use std::io::{Read, Write};

use crate::Now;

/// Why a persisted view state was refused.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("read error: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes are not a state this build wrote (bad magic, checksum, structure).
    #[error("corrupt snapshot: {0}")]
    Corrupt(String),
    /// A format version this build does not read.
    #[error(
        "snapshot format version {found} is not supported (this build reads versions up to {supported})"
    )]
    Version { found: u32, supported: u32 },
}

impl SnapshotError {
    pub fn corrupt(msg: impl Into<String>) -> Self {
        SnapshotError::Corrupt(msg.into())
    }
}

/// A view whose whole state can be written and restored.
///
/// `now` maps the monotonic times a view keeps (suspect expiries) to wall time and back, since
/// monotonic clocks restart with the process.
pub trait PersistView: Send + Sync {
    /// Streams the state. The caller guarantees no write runs meanwhile; readers may.
    fn write_snapshot(&self, out: &mut dyn Write, now: Now) -> std::io::Result<()>;
    /// Replaces the state with the one read from `input`. On error the view is left empty.
    fn read_snapshot(&self, input: &mut dyn Read, now: Now) -> Result<(), SnapshotError>;
}
