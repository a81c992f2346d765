//! Error backoff of a pipe (`agent-runtime.md` §5).

use std::time::Duration;

use fustor_core::config::AgentPipeConfig;

/// `backoff(n) = min(error_retry_interval × multiplier^(n−1), max)`, 0 for n ≤ 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub error_retry_interval: f64,
    pub multiplier: f64,
    pub max_seconds: f64,
    /// Consecutive errors at which the pipe raises a critical alert (it never gives up).
    pub alert_after: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            error_retry_interval: 5.0,
            multiplier: 2.0,
            max_seconds: 60.0,
            alert_after: 5,
        }
    }
}

impl Backoff {
    pub fn from_pipe(cfg: &AgentPipeConfig) -> Self {
        Backoff {
            error_retry_interval: cfg.error_retry_interval.max(0.0),
            multiplier: cfg.backoff_multiplier.max(1.0),
            max_seconds: cfg.max_backoff_seconds.max(0.0),
            alert_after: cfg.max_consecutive_errors.max(1),
        }
    }

    /// Seconds to wait after `n` consecutive errors.
    pub fn seconds(&self, n: u32) -> f64 {
        if n == 0 {
            return 0.0;
        }
        let exp = i32::try_from(n - 1).unwrap_or(i32::MAX);
        let raw = self.error_retry_interval * self.multiplier.powi(exp);
        if raw.is_finite() {
            raw.min(self.max_seconds)
        } else {
            self.max_seconds
        }
    }

    pub fn delay(&self, n: u32) -> Duration {
        fustor_core::time::duration_from_secs(self.seconds(n))
    }

    /// After the alert threshold the maximum applies, whatever the formula says.
    pub fn after_error(&self, n: u32) -> f64 {
        if n >= self.alert_after {
            self.max_seconds
        } else {
            self.seconds(n)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_sequence() {
        let b = Backoff::default();
        let seq: Vec<f64> = (0..8).map(|n| b.seconds(n)).collect();
        assert_eq!(seq, vec![0.0, 5.0, 10.0, 20.0, 40.0, 60.0, 60.0, 60.0]);
        assert_eq!(b.after_error(5), 60.0);
        assert_eq!(b.seconds(10_000), 60.0);
    }

    #[test]
    fn configured_values_apply() {
        let b = Backoff {
            error_retry_interval: 0.5,
            multiplier: 3.0,
            max_seconds: 10.0,
            alert_after: 2,
        };
        assert_eq!(b.seconds(1), 0.5);
        assert_eq!(b.seconds(2), 1.5);
        assert_eq!(b.seconds(3), 4.5);
        assert_eq!(b.seconds(4), 10.0);
        assert_eq!(b.after_error(2), 10.0);
        assert_eq!(b.delay(1), Duration::from_millis(500));
    }

    /// Issue 9: `error_retry_interval: 1e20` with `max_backoff_seconds: 1e21` panicked the pipe
    /// thread in `Duration::from_secs_f64`.
    #[test]
    fn huge_configured_backoff_saturates() {
        let b = Backoff {
            error_retry_interval: 1e20,
            multiplier: 2.0,
            max_seconds: 1e21,
            alert_after: 5,
        };
        for n in [1, 2, 5, 100] {
            assert_eq!(b.delay(n), Duration::from_secs(1 << 32));
        }
        let b = Backoff {
            max_seconds: f64::INFINITY,
            ..b
        };
        assert_eq!(b.delay(1), Duration::from_secs(1 << 32));
    }
}
