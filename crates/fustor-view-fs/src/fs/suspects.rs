//! Suspects: files that may still be written (R2, C5, 6.5, rule S).
//!
//! Expiry uses a min-heap with lazy deletion: renewing a suspect pushes a new entry and the old
//! one is recognised as stale by its sequence number when popped.

use std::cmp::Reverse;

use fustor_core::Now;

use super::config::{EPS, SUSPECT_CLEANUP_PERIOD};
use super::state::{FsState, Suspect};
use super::tree::NodeId;

fn key(v: f64) -> u64 {
    // Expiries are monotonic seconds (positive); the bit pattern of a positive f64 orders like it.
    v.max(0.0).to_bits()
}

pub use fustor_core::view::SuspectUpdate;

impl FsState {
    /// Records or renews a suspect and sets the node's flag.
    pub(crate) fn put_suspect(&mut self, id: NodeId, expiry: f64, mtime: f64) {
        self.suspect_seq += 1;
        let seq = self.suspect_seq;
        self.suspects.insert(id, Suspect { expiry, mtime, seq });
        self.suspect_heap.push(Reverse((key(expiry), seq, id)));
        self.tree.set_suspect(id, true);
    }

    pub(crate) fn clear_suspect(&mut self, id: NodeId) {
        if !self.suspects.is_empty() {
            self.suspects.remove(&id);
        }
        self.tree.set_suspect(id, false);
    }

    /// Rule S. Throttled to once per 0.5 s of monotonic time; returns whether it ran.
    pub fn expire_suspects(&mut self, now: Now) -> bool {
        if now.mono - self.last_cleanup_mono < SUSPECT_CLEANUP_PERIOD {
            return false;
        }
        self.last_cleanup_mono = now.mono;
        let hot = self.cfg.hot_file_threshold;
        while let Some(&Reverse((k, seq, id))) = self.suspect_heap.peek() {
            if k > key(now.mono) {
                break;
            }
            self.suspect_heap.pop();
            let Some(s) = self.suspects.get(&id).copied() else {
                continue;
            };
            if s.seq != seq {
                continue;
            }
            let node_mtime = self.tree.node(id).mtime;
            if (node_mtime - s.mtime).abs() > EPS {
                // Still changing: watch it for another period.
                self.put_suspect(id, now.mono + hot, node_mtime);
            } else {
                self.clear_suspect(id);
            }
        }
        self.finish_write();
        true
    }

    /// 6.5: sentinel feedback for one path. Returns whether the path was a suspect.
    pub fn update_suspect(&mut self, u: &SuspectUpdate, now: Now) -> bool {
        if !u.mtime.is_finite() {
            return false;
        }
        let Some(id) = self.tree.lookup(&u.path) else {
            return false;
        };
        let node = self.tree.node(id);
        let (node_mtime, node_size) = (node.mtime, node.size);
        let skew = self.clock.skew_secs();
        let raw = (node_mtime - u.mtime).abs() < EPS;
        let skewed = (node_mtime - (u.mtime + skew)).abs() < EPS;
        let mtime = if skewed && !raw { node_mtime } else { u.mtime };
        let size_ok = u.size.is_none_or(|s| s == node_size);
        let stable = (raw || skewed) && size_ok;
        let hot = self.clock.watermark(now.epoch) - mtime < self.cfg.hot_file_threshold;
        if !self.suspects.contains_key(&id) {
            return false;
        }
        if stable && !hot {
            self.clear_suspect(id);
        } else if !stable {
            let size = u.size.unwrap_or(node_size);
            let ctime = self.tree.node(id).ctime;
            self.tree.set_attrs(id, size, mtime, ctime);
            let ttl = self.cfg.hot_file_threshold;
            self.put_suspect(id, now.mono + ttl, mtime);
        }
        self.finish_write();
        true
    }

    /// `(path, suspect_until)` of every suspect (monotonic expiry).
    pub fn suspect_list(&self) -> Vec<(String, f64)> {
        let mut v: Vec<(String, f64)> = self
            .suspects
            .iter()
            .map(|(&id, s)| (self.tree.path_of(id), s.expiry))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Unique suspect paths, for `GET /sentinel/tasks`.
    pub fn suspect_paths(&self) -> Vec<String> {
        self.suspect_list().into_iter().map(|(p, _)| p).collect()
    }

    pub fn suspect_count(&self) -> usize {
        self.suspects.len()
    }
}
