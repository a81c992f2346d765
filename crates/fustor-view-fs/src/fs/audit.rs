//! Audit lifecycle (`consistency.md` §8): start, end, tombstone purge and missing-item detection.

use fustor_core::Now;

use super::config::LATE_AUDIT_START_SECS;
use super::state::FsState;
use super::tree::{NodeId, ROOT};

impl FsState {
    /// A1: explicit audit start. A start within 5 s of the previous one that already saw paths
    /// continues that audit instead of discarding what it saw.
    pub fn audit_start(&mut self, now: Now) {
        let late = self
            .audit
            .last_start
            .is_some_and(|s| now.epoch - s < LATE_AUDIT_START_SECS && self.audit.seen_any);
        self.audit.last_start = Some(now.epoch);
        if !late {
            self.audit.clear_seen();
        }
    }

    pub fn is_auditing(&self) -> bool {
        self.audit.last_start.is_some()
    }

    /// A3: audit end. Returns `false` (no-op) when no audit was in progress.
    pub fn audit_end(&mut self, now: Now) -> bool {
        let Some(start) = self.audit.last_start else {
            return false;
        };
        // 1. Tombstone purge (the only place the reference purges).
        let ttl = self.cfg.tombstone_ttl;
        self.tombstones.retain(|_, t| t.physical >= now.epoch - ttl);
        // 2. Missing-item detection over directories this audit listed.
        let mut marked: Vec<(NodeId, String)> = Vec::new();
        let seen_dirs: Vec<NodeId> = self
            .tree
            .dirs()
            .filter(|&d| self.audit.is_seen(d) && !self.tree.node(d).audit_skipped())
            .collect();
        for d in seen_dirs {
            for c in self.tree.children(d) {
                if c == ROOT || self.audit.is_seen(c) {
                    continue; // M1
                }
                if self.tree.node(c).last_updated > start {
                    continue; // M3: confirmed by realtime after the audit began
                }
                let path = self.tree.path_of(c);
                if self.tombstones.contains_key(path.as_str()) {
                    continue; // M2
                }
                marked.push((c, path));
            }
        }
        // 3. Delete what the audit no longer saw: blind-spot deletions, no tombstone.
        for (id, path) in marked {
            if self.tree.lookup(&path) != Some(id) {
                continue;
            }
            self.remove_subtree(id);
            self.blind_deletions.insert(path.into_boxed_str());
        }
        // 4.
        self.audit.last_finished_at = now.epoch;
        self.audit.cycle_count += 1;
        self.audit.last_start = None;
        self.audit.clear_seen();
        self.finish_write();
        true
    }
}
