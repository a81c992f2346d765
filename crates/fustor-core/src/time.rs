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

/// Longest interval or timeout any configured or received number of seconds may mean: 2^32 s
/// (136 years). Far beyond any sensible setting, yet small enough that adding it to an
/// `Instant` can never overflow (which panics).
pub const MAX_SECS: f64 = 4_294_967_296.0;

/// Seconds as a `Duration`, saturating: NaN and negatives are zero, anything above
/// [`MAX_SECS`] is `MAX_SECS`. `Duration::from_secs_f64` panics on such values, and they reach
/// us from configuration files and from Fusion's session responses alike.
pub fn duration_from_secs(secs: f64) -> std::time::Duration {
    if secs.is_nan() || secs <= 0.0 {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::try_from_secs_f64(secs.min(MAX_SECS)).unwrap_or(std::time::Duration::ZERO)
}

/// Clamps seconds into `0..=MAX_SECS` (NaN ⇒ 0), for values kept as `f64`.
pub fn clamp_secs(secs: f64) -> f64 {
    if secs.is_nan() {
        0.0
    } else {
        secs.clamp(0.0, MAX_SECS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn duration_conversion_saturates_instead_of_panicking() {
        assert_eq!(duration_from_secs(1.5), Duration::from_millis(1500));
        for bad in [f64::NAN, -1.0, f64::NEG_INFINITY, -0.0, 0.0] {
            assert_eq!(duration_from_secs(bad), Duration::ZERO, "{bad}");
        }
        let max = Duration::from_secs(1 << 32);
        for huge in [1e20, 1e300, f64::INFINITY, f64::MAX, MAX_SECS] {
            assert_eq!(duration_from_secs(huge), max, "{huge}");
            // The point of the bound: deadlines built from it never overflow.
            assert!(std::time::Instant::now().checked_add(max).is_some());
        }
        assert_eq!(clamp_secs(1e300), MAX_SECS);
        assert_eq!(clamp_secs(f64::NAN), 0.0);
        assert_eq!(clamp_secs(-3.0), 0.0);
    }
}
