//! Time as an explicit input.
//!
//! The consistency rules mix three clocks (wall epoch, monotonic, storage mtimes). Passing the
//! current instant in, instead of reading it deep inside the rules, keeps every rule testable with
//! exact times and keeps one batch consistent with itself.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// One reading of Fusion's two clocks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Now {
    /// Wall clock, Unix epoch seconds.
    pub epoch: f64,
    /// Monotonic seconds since an arbitrary start; only differences are meaningful.
    pub mono: f64,
}

impl Now {
    /// Reads the system clocks.
    pub fn system() -> Self {
        static START: OnceLock<Instant> = OnceLock::new();
        let start = START.get_or_init(Instant::now);
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        // Offset by a constant so that monotonic values are never 0 (0 reads as "unset" in logs).
        let mono = 1000.0 + start.elapsed().as_secs_f64();
        Now { epoch, mono }
    }

    /// A fixed instant, for tests and replays.
    pub fn at(epoch: f64, mono: f64) -> Self {
        Now { epoch, mono }
    }

    /// The same instant moved forward by `secs` on both clocks.
    pub fn plus(self, secs: f64) -> Self {
        Now {
            epoch: self.epoch + secs,
            mono: self.mono + secs,
        }
    }
}
