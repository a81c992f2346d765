//! The logical clock (`consistency.md` §12).
//!
//! Storage mtimes come from the NFS servers' clocks, which can be far off Fusion's. The clock
//! samples `trunc(epoch − mtime)` of realtime rows and takes the mode as the skew, so one file with
//! a wild mtime cannot move the watermark, and the watermark still advances with physical time when
//! nothing is written. The mode is kept in an ordered set so every read is O(log n) instead of a
//! scan of the histogram: the watermark is read for every row.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap, VecDeque};

/// Samples kept (K1).
pub const CLOCK_SAMPLES: usize = 10_000;

#[derive(Debug, Clone, Default)]
pub struct LogicalClock {
    ring: VecDeque<i64>,
    counts: HashMap<i64, u32>,
    /// (count descending, value ascending): the first element is the mode, ties to the smallest.
    order: BTreeSet<(Reverse<u32>, i64)>,
}

impl LogicalClock {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a row's mtime (P2). Only realtime rows sample (K1); a null mtime never does.
    pub fn update(&mut self, mtime: Option<f64>, sample: bool, epoch: f64) {
        let (Some(m), true) = (mtime, sample) else {
            return;
        };
        let d = epoch - m;
        if !d.is_finite() {
            return;
        }
        // `as` saturates, which is what we want for absurd values.
        self.push_sample(d.trunc() as i64);
    }

    fn bump(&mut self, value: i64, delta: i32) {
        let count = self.counts.entry(value).or_insert(0);
        if *count > 0 {
            self.order.remove(&(Reverse(*count), value));
        }
        *count = count.saturating_add_signed(delta);
        if *count == 0 {
            self.counts.remove(&value);
        } else {
            self.order.insert((Reverse(*count), value));
        }
    }

    /// The skew in whole seconds (K2), `None` before the first sample.
    pub fn skew(&self) -> Option<i64> {
        self.order.first().map(|&(_, v)| v)
    }

    /// The skew as reported: 0.0 when undefined (K4).
    pub fn skew_secs(&self) -> f64 {
        self.skew().unwrap_or(0) as f64
    }

    /// The watermark at wall time `epoch` (K3).
    pub fn watermark(&self, epoch: f64) -> f64 {
        match self.skew() {
            Some(s) => epoch - s as f64,
            None => epoch,
        }
    }

    pub fn sample_count(&self) -> usize {
        self.ring.len()
    }

    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// The samples, oldest first (`trunc(epoch − mtime)` each), for persistence.
    pub fn samples(&self) -> impl Iterator<Item = i64> + '_ {
        self.ring.iter().copied()
    }

    /// Appends a sample read back from persistence, as [`LogicalClock::update`] would have.
    pub fn push_sample(&mut self, d: i64) {
        if self.ring.len() == CLOCK_SAMPLES
            && let Some(old) = self.ring.pop_front()
        {
            self.bump(old, -1);
        }
        self.ring.push_back(d);
        self.bump(d, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k2_spec_example_mode_ignores_minority() {
        let mut c = LogicalClock::new();
        for _ in 0..5 {
            c.update(Some(1900.0), true, 2000.0);
        }
        for _ in 0..2 {
            c.update(Some(2500.0), true, 2000.0);
        }
        assert_eq!(c.skew(), Some(100));
        assert_eq!(c.watermark(2000.0), 1900.0);
    }

    #[test]
    fn k2_ties_pick_smallest() {
        let mut c = LogicalClock::new();
        for _ in 0..3 {
            c.update(Some(1950.0), true, 2000.0);
            c.update(Some(1800.0), true, 2000.0);
        }
        assert_eq!(c.skew(), Some(50));
    }

    #[test]
    fn k1_truncates_toward_zero_and_ignores_non_samples() {
        let mut c = LogicalClock::new();
        c.update(Some(2000.7), true, 2000.0); // d = -0.7 -> 0
        assert_eq!(c.skew(), Some(0));
        c.update(Some(0.0), false, 2000.0);
        c.update(None, true, 2000.0);
        assert_eq!(c.sample_count(), 1);
    }

    #[test]
    fn k3_cold_start_is_epoch_and_k4_reset() {
        let mut c = LogicalClock::new();
        assert_eq!(c.watermark(123.0), 123.0);
        assert_eq!(c.skew_secs(), 0.0);
        c.update(Some(100.0), true, 200.0);
        c.reset();
        assert_eq!(c.skew(), None);
    }

    #[test]
    fn k1_ring_evicts_oldest() {
        let mut c = LogicalClock::new();
        for _ in 0..CLOCK_SAMPLES {
            c.update(Some(1000.0), true, 2000.0); // d = 1000
        }
        for _ in 0..(CLOCK_SAMPLES / 2 + 1) {
            c.update(Some(1990.0), true, 2000.0); // d = 10
        }
        assert_eq!(c.sample_count(), CLOCK_SAMPLES);
        assert_eq!(c.skew(), Some(10));
    }
}
