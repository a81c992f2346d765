//! Applying events: the per-row preamble (P1–P4), realtime rules (R1–R3) and compensation rules
//! (C1–C6, 6.4) of `consistency.md`.

use fustor_core::{Event, FsRow, MessageSource, Now, normalize_path};

use super::config::{EPS, TOMB_EPS};
use super::lineage::LineageId;
use super::state::{ApplyReport, FsState, Refused, Tombstone};
use super::tree::NodeId;

impl FsState {
    /// Applies one event in arrival order. Never fails: a bad row is counted and skipped.
    pub fn apply_event(
        &mut self,
        ev: &Event<FsRow>,
        sender: super::view::Sender<'_>,
        now: Now,
        report: &mut ApplyReport,
    ) {
        report.events += 1;
        if ev.rows.is_empty() {
            return;
        }
        let src = ev.message_source;
        // P1: the reference agent never calls audit/start; the first audit event opens it.
        if src == MessageSource::Audit && self.audit.last_start.is_none() {
            self.audit.last_start = Some(now.epoch);
        }
        let lineage = self.lineages.event(
            ev.meta_str("agent_id").or(sender.agent_id),
            ev.meta_str("source_uri").or(sender.source_uri),
        );
        let delete = ev.event_type.is_delete();
        for row in &ev.rows {
            report.rows += 1;
            self.apply_row(row, src, delete, lineage, now, report);
        }
    }

    fn apply_row(
        &mut self,
        row: &FsRow,
        src: MessageSource,
        delete: bool,
        lineage: LineageId,
        now: Now,
        report: &mut ApplyReport,
    ) {
        let Some(raw) = row.path.as_deref() else {
            report.skipped += 1;
            return;
        };
        let path = match normalize_path(raw) {
            Ok(Some(p)) => p,
            Ok(None) => {
                report.skipped += 1;
                return;
            }
            Err(e) => {
                report.rejected += 1;
                tracing::debug!(path = raw.escape_debug().to_string(), error = %e, "row refused");
                return;
            }
        };
        if row.validate().is_err() {
            report.rejected += 1;
            return;
        }
        // P2, P3
        self.clock
            .update(row.modified_time, src == MessageSource::Realtime, now.epoch);
        let wm = self.clock.watermark(now.epoch);
        self.last_event_latency_ms = ((wm - row.modified_time.unwrap_or(wm)) * 1000.0).max(0.0);
        // P4 (the "seen" mark itself is taken after the row, when its node exists).
        if src == MessageSource::Audit && !delete && !self.blind_deletions.is_empty() {
            self.blind_deletions.remove(path.as_ref());
        }
        match (src, delete) {
            (MessageSource::Realtime, false) => {
                self.realtime_upsert(&path, row, lineage, now, wm, report)
            }
            (MessageSource::Realtime, true) => self.realtime_delete(&path, now, wm),
            (_, false) => self.compensation_upsert(&path, row, src, lineage, now, wm, report),
            (_, true) => self.compensation_delete(&path, row, report),
        }
        if src == MessageSource::Audit {
            self.mark_seen(&path);
        }
    }

    /// R1/C1: `true` if a tombstone stops the row; a strictly newer mtime reincarnates the path.
    fn tombstone_blocks(&mut self, path: &str, mtime: f64) -> bool {
        if self.tombstones.is_empty() {
            return false;
        }
        match self.tombstones.get(path) {
            Some(t) if mtime > t.logical + TOMB_EPS => {
                self.tombstones.remove(path);
                false
            }
            Some(_) => true,
            None => false,
        }
    }

    fn realtime_upsert(
        &mut self,
        path: &str,
        row: &FsRow,
        lineage: LineageId,
        now: Now,
        _wm: f64,
        report: &mut ApplyReport,
    ) {
        let mtime = row.modified_time.unwrap_or(0.0);
        if self.tombstone_blocks(path, mtime) {
            report.zombies += 1;
            return;
        }
        let loc = self.locate(path);
        let id =
            match self.upsert_node(path, row, loc.existing, Some(now.epoch), lineage, now.epoch) {
                Ok(id) => id,
                Err(r) => return refused(report, r),
            };
        // R2
        if row.is_atomic_write == Some(false) {
            let hot = self.cfg.hot_file_threshold;
            self.put_suspect(id, now.mono + hot, mtime);
        } else {
            self.clear_suspect(id);
        }
        if !self.blind_additions.is_empty() {
            self.blind_additions.remove(&id);
        }
        if !self.blind_deletions.is_empty() {
            self.blind_deletions.remove(path);
        }
        self.tree.set_known(id, true);
    }

    fn realtime_delete(&mut self, path: &str, now: Now, wm: f64) {
        if path == "/" {
            tracing::warn!("refusing to delete the view root");
            return;
        }
        // R3: subtree removal also drops suspects and blind additions below it.
        let loc = self.locate(path);
        if let Some(id) = loc.existing {
            self.remove_subtree(id);
        }
        self.tombstones.insert(
            path.into(),
            Tombstone {
                logical: wm,
                physical: now.epoch,
            },
        );
        if !self.blind_deletions.is_empty() {
            self.blind_deletions.remove(path);
        }
        self.bound_tombstones(now.epoch);
    }

    #[allow(clippy::too_many_arguments)]
    fn compensation_upsert(
        &mut self,
        path: &str,
        row: &FsRow,
        src: MessageSource,
        lineage: LineageId,
        now: Now,
        wm: f64,
        report: &mut ApplyReport,
    ) {
        let mtime = row.modified_time.unwrap_or(0.0);
        if self.tombstone_blocks(path, mtime) {
            report.zombies += 1;
            return;
        }
        let loc = self.locate(path);
        let old_mtime = loc.existing.map(|id| self.tree.node(id).mtime);
        // C2
        if let Some(old) = old_mtime
            && row.audit_skipped != Some(true)
            && old >= mtime
        {
            if src == MessageSource::Audit
                && let Some(id) = loc.existing
            {
                self.listed_by_audit(id);
            }
            report.stale += 1;
            return;
        }
        // C3
        if loc.existing.is_none()
            && src == MessageSource::Audit
            && let Some(pp) = row.parent_path.as_deref()
            && let Ok(Some(pp)) = normalize_path(pp)
            && let Some(pid) = self.tree.lookup(&pp)
            && self.tree.node(pid).is_dir()
            && self.tree.node(pid).mtime > row.parent_mtime.unwrap_or(0.0)
        {
            report.stale += 1;
            return;
        }
        // C4
        let id = match self.upsert_node(path, row, loc.existing, None, lineage, now.epoch) {
            Ok(id) => id,
            Err(r) => return refused(report, r),
        };
        // C5
        let hot = self.cfg.hot_file_threshold;
        let age = wm - mtime;
        let changed = old_mtime.is_none_or(|old| (old - mtime).abs() > EPS);
        let snapshot = src == MessageSource::Snapshot;
        if changed {
            if snapshot {
                self.tree.set_known(id, true);
                self.blind_additions.remove(&id);
            } else {
                self.blind_additions.insert(id);
                self.tree.set_known(id, false);
            }
            if age < hot {
                self.tree.set_suspect(id, true);
                if !self.suspects.contains_key(&id) {
                    self.put_suspect(id, now.mono + (hot - age).min(hot).max(0.0), mtime);
                }
            } else {
                self.clear_suspect(id);
            }
        } else {
            if snapshot {
                self.tree.set_known(id, true);
                self.blind_additions.remove(&id);
            }
            if age >= hot {
                self.clear_suspect(id);
            }
        }
    }

    /// 6.4: a delete carried by snapshot, audit or on-demand rows.
    fn compensation_delete(&mut self, path: &str, row: &FsRow, report: &mut ApplyReport) {
        if path == "/" || self.tombstones.contains_key(path) {
            return;
        }
        let loc = self.locate(path);
        if let (Some(id), Some(m)) = (loc.existing, row.modified_time)
            && self.tree.node(id).mtime > m
        {
            report.stale += 1;
            return;
        }
        if let Some(id) = loc.existing {
            self.remove_subtree(id);
        }
        self.blind_deletions.insert(path.into());
    }

    /// A directory row of an audit that is *not* marked `audit_skipped` means the agent listed the
    /// directory in this pass, so its children may be judged at the audit end (A3) even when C2
    /// drops the row's attributes as not newer. Without this, a skip set by an earlier row (the
    /// agent's opening root row, or a previous audit before an agent restart lost its mtime
    /// cache) outlived the listing and hid blind-spot deletions forever (issue 9, S75 at the root).
    fn listed_by_audit(&mut self, id: NodeId) {
        if self.tree.node(id).is_dir() && self.tree.node(id).audit_skipped() {
            self.tree.set_audit_skipped(id, false);
        }
    }

    /// Keeps tombstones bounded (see [`super::config::FsViewConfig::max_tombstones`]).
    fn bound_tombstones(&mut self, epoch: f64) {
        let max = self.cfg.max_tombstones;
        if max == 0 || self.tombstones.len() <= max {
            return;
        }
        let ttl = self.cfg.tombstone_ttl;
        self.tombstones.retain(|_, t| t.physical >= epoch - ttl);
        if self.tombstones.len() > max {
            let target = max - max / 10;
            let mut ages: Vec<f64> = self.tombstones.values().map(|t| t.physical).collect();
            let cut_idx = self.tombstones.len() - target;
            ages.select_nth_unstable_by(cut_idx, f64::total_cmp);
            let cut = ages[cut_idx];
            self.tombstones.retain(|_, t| t.physical >= cut);
            tracing::warn!(
                max_tombstones = max,
                "tombstone limit reached within the TTL; the oldest tombstones were dropped"
            );
        }
    }
}

fn refused(report: &mut ApplyReport, r: Refused) {
    match r {
        Refused::Zombie => report.zombies += 1,
        Refused::Capacity => report.capacity_refused += 1,
    }
}
