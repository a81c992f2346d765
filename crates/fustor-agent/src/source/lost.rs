//! "needed_position_lost" while a source runs: the change stream could not continue from
//! where it was (the server dropped the history it needed) and restarted from the present, so
//! whatever changed in between is only in a new snapshot.
//!
//! The source only counts losses; each pipe compares the count with the one it last saw, so
//! one loss reaches every pipe sharing the source without the source knowing its pipes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Clone, Default)]
pub struct PositionLost(Arc<AtomicU64>);

impl PositionLost {
    /// Called by the driver once its change stream runs again from a new position (events
    /// after it are on the bus), so a snapshot started now misses nothing.
    pub fn signal(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    pub fn count(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}
