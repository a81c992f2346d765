//! The state of one fs view (`consistency.md` §2) and the tree operations the rules share.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use fustor_core::path::split_parent;
use fustor_core::{FsRow, LogicalClock};
/// Hash tables with a fast, randomly seeded hasher (names come from the outside).
pub(crate) type HashMap<K, V> = hashbrown::HashMap<K, V, foldhash::fast::RandomState>;
pub(crate) type HashSet<K> = hashbrown::HashSet<K, foldhash::fast::RandomState>;

use super::config::{FsViewConfig, TOMB_EPS};
use super::dircache::DirCache;
use super::lineage::{LineageId, Lineages};
use super::owners::Ownership;
use super::tree::{NodeId, ROOT, Tree};

/// `tombstones[path] = (logical_ts, physical_ts)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tombstone {
    pub logical: f64,
    pub physical: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Suspect {
    pub expiry: f64,
    pub mtime: f64,
    /// Identifies the heap entry that is current for this suspect (lazy deletion).
    pub seq: u64,
}

/// Audit lifecycle state (§8). "Seen" is a bit per node id plus a set of seen paths that had no
/// node, so an audit over 10 million files costs about 1.2 MB instead of a set of 10 million
/// strings.
#[derive(Debug, Default)]
pub(crate) struct AuditState {
    pub last_start: Option<f64>,
    pub seen_bits: Vec<u64>,
    pub seen_absent: HashSet<Box<str>>,
    pub seen_any: bool,
    pub last_finished_at: f64,
    pub cycle_count: u64,
}

impl AuditState {
    pub fn is_seen(&self, id: NodeId) -> bool {
        let (w, b) = (id as usize / 64, id % 64);
        self.seen_bits.get(w).is_some_and(|word| word >> b & 1 == 1)
    }

    pub fn set_seen(&mut self, id: NodeId, on: bool) {
        let (w, b) = (id as usize / 64, id % 64);
        if w >= self.seen_bits.len() {
            if !on {
                return;
            }
            self.seen_bits.resize(w + 1, 0);
        }
        if on {
            self.seen_bits[w] |= 1 << b;
            self.seen_any = true;
        } else {
            self.seen_bits[w] &= !(1 << b);
        }
    }

    pub fn clear_seen(&mut self) {
        self.seen_bits.clear();
        self.seen_absent.clear();
        self.seen_any = false;
    }
}

pub use fustor_core::view::ApplyReport;

pub struct FsState {
    pub(crate) cfg: FsViewConfig,
    pub(crate) tree: Tree,
    pub(crate) tombstones: HashMap<Box<str>, Tombstone>,
    pub(crate) suspects: HashMap<NodeId, Suspect>,
    pub(crate) suspect_heap: BinaryHeap<Reverse<(u64, u64, NodeId)>>,
    pub(crate) suspect_seq: u64,
    pub(crate) blind_additions: HashSet<NodeId>,
    pub(crate) blind_deletions: HashSet<Box<str>>,
    pub(crate) audit: AuditState,
    pub(crate) clock: LogicalClock,
    pub(crate) last_event_latency_ms: f64,
    pub(crate) lineages: Lineages,
    pub(crate) last_cleanup_mono: f64,
    dir_cache: DirCache,
    pub(crate) capacity_hit: bool,
    capacity_logged_at: f64,
    pub(crate) totals: ApplyReport,
}

/// Why an upsert had no effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// A tombstone of a missing ancestor stops the row.
    Zombie,
    /// The node limit (§7.2) or the name storage is exhausted.
    Capacity,
}

/// Where a path is in the tree.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Loc {
    pub existing: Option<NodeId>,
}

impl FsState {
    pub fn new(cfg: FsViewConfig) -> Self {
        FsState {
            cfg,
            tree: Tree::new(),
            tombstones: HashMap::default(),
            suspects: HashMap::default(),
            suspect_heap: BinaryHeap::new(),
            suspect_seq: 0,
            blind_additions: HashSet::default(),
            blind_deletions: HashSet::default(),
            audit: AuditState::default(),
            clock: LogicalClock::new(),
            last_event_latency_ms: 0.0,
            lineages: Lineages::default(),
            last_cleanup_mono: f64::NEG_INFINITY,
            dir_cache: DirCache::default(),
            capacity_hit: false,
            capacity_logged_at: f64::NEG_INFINITY,
            totals: ApplyReport::default(),
        }
    }

    pub fn config(&self) -> &FsViewConfig {
        &self.cfg
    }

    /// Empties the view (V2, `DELETE /reset`): root only, no tombstones, suspects, blind spots,
    /// audit state or clock samples. Lineage interning survives; it is not observable.
    pub fn reset(&mut self) {
        let cfg = self.cfg.clone();
        let lineages = std::mem::take(&mut self.lineages);
        let old = std::mem::replace(self, FsState::new(cfg));
        self.lineages = lineages;
        self.tree.continue_generation(&old.tree);
    }

    /// V1: every new session abandons blind-spot lists and any audit in flight.
    pub fn session_started(&mut self) {
        self.blind_additions.clear();
        self.blind_deletions.clear();
        self.audit.clear_seen();
        self.audit.last_start = None;
    }

    pub fn watermark(&self, epoch: f64) -> f64 {
        self.clock.watermark(epoch)
    }

    pub fn lookup(&self, path: &str) -> Option<NodeId> {
        self.tree.lookup(path)
    }

    pub(crate) fn locate(&mut self, path: &str) -> Loc {
        let Some((parent_path, name)) = split_parent(path) else {
            return Loc {
                existing: Some(ROOT),
            };
        };
        let parent = match self.dir_cache.get(parent_path) {
            Some(id) => Some(id),
            None => {
                let found = self
                    .tree
                    .lookup(parent_path)
                    .filter(|&id| self.tree.node(id).is_dir());
                if let Some(id) = found {
                    self.dir_cache.insert(parent_path, id);
                }
                found
            }
        };
        let existing = parent.and_then(|p| self.tree.find_child(p, name));
        Loc { existing }
    }

    fn at_capacity(&mut self, epoch: f64) -> bool {
        let max = self.cfg.max_nodes;
        if max == 0 || self.tree.len() < max {
            return false;
        }
        self.capacity_hit = true;
        if epoch - self.capacity_logged_at >= 60.0 {
            self.capacity_logged_at = epoch;
            tracing::error!(
                max_nodes = max,
                "fs view is full: new nodes are refused (limits.max_nodes)"
            );
        }
        true
    }

    /// Creates a node, honouring the capacity limit and carrying over "seen in this audit" for a
    /// path that was reported before its node existed.
    fn create_node_inner(
        &mut self,
        parent: NodeId,
        path: &str,
        name: &str,
        is_dir: bool,
        epoch: f64,
    ) -> Option<NodeId> {
        if self.at_capacity(epoch) {
            return None;
        }
        let id = match self.tree.create(parent, name, is_dir) {
            Ok(id) => id,
            Err(_) => {
                self.capacity_hit = true;
                tracing::error!("fs view name storage exhausted: new nodes are refused");
                return None;
            }
        };
        if !self.audit.seen_absent.is_empty() && self.audit.seen_absent.remove(path) {
            self.audit.set_seen(id, true);
        }
        Some(id)
    }

    fn create_node(
        &mut self,
        parent: NodeId,
        path: &str,
        name: &str,
        is_dir: bool,
        epoch: f64,
    ) -> Result<NodeId, Refused> {
        self.create_node_inner(parent, path, name, is_dir, epoch)
            .ok_or(Refused::Capacity)
    }

    /// Makes sure every ancestor of `path` is a directory, creating missing ones with zeroed
    /// attributes (§7.1 step 1). An ancestor that is a file is replaced by a directory, so a path
    /// is never both a file and a directory.
    ///
    /// Tombstones of missing ancestors are honoured too (an extension of R1/C1): a compensation
    /// row (`gate = Some(mtime)`) no newer than the tombstone of a directory that was deleted is a
    /// zombie and must not resurrect that directory; a newer one, or any realtime row
    /// (`gate = None`, realtime evidence is current), reincarnates it. So a tombstoned path never
    /// has a node.
    fn ensure_parent(
        &mut self,
        path: &str,
        gate: Option<f64>,
        epoch: f64,
    ) -> Result<NodeId, Refused> {
        let Some((parent_path, _)) = split_parent(path) else {
            return Ok(ROOT);
        };
        if let Some(id) = self.dir_cache.get(parent_path) {
            return Ok(id);
        }
        let mut cur = ROOT;
        if parent_path != "/" {
            let comps = parent_path[1..].split('/');
            // First pass: how much of the chain exists, and would a tombstone stop the rest?
            let mut end = 0;
            let mut existing_upto = 0usize;
            let mut missing_from: Option<usize> = None;
            for (i, comp) in comps.clone().enumerate() {
                end += 1 + comp.len();
                if missing_from.is_none() {
                    match self.tree.find_child(cur, comp) {
                        Some(id) if self.tree.node(id).is_dir() => {
                            cur = id;
                            existing_upto = end;
                            continue;
                        }
                        _ => missing_from = Some(i),
                    }
                }
                if !self.tombstones.is_empty()
                    && let (Some(t), Some(m)) = (self.tombstones.get(&parent_path[..end]), gate)
                    && m <= t.logical + TOMB_EPS
                {
                    return Err(Refused::Zombie);
                }
            }
            // Second pass: create what is missing below the deepest existing directory.
            if let Some(first_missing) = missing_from {
                let mut end = existing_upto;
                for comp in comps.skip(first_missing) {
                    end += 1 + comp.len();
                    let sub = &parent_path[..end];
                    if !self.tombstones.is_empty() {
                        self.tombstones.remove(sub);
                    }
                    cur = match self.tree.find_child(cur, comp) {
                        Some(id) if self.tree.node(id).is_dir() => id,
                        Some(file) => {
                            self.remove_subtree(file);
                            self.create_node(cur, sub, comp, true, epoch)?
                        }
                        None => self.create_node(cur, sub, comp, true, epoch)?,
                    };
                    // A realtime row proves its parents exist now: confirm the ones it creates,
                    // so an audit that listed the grandparent earlier (M3) does not delete them
                    // and the realtime-confirmed child with them.
                    if gate.is_none() {
                        self.tree.set_last_updated(cur, epoch);
                    }
                }
            }
        }
        self.dir_cache.insert(parent_path, cur);
        Ok(cur)
    }

    /// §7.1: applies an upsert row at `path`, returning the node.
    /// `last_updated` is `Some(epoch)` for realtime rows and `None` (keep) for compensation.
    pub(crate) fn upsert_node(
        &mut self,
        path: &str,
        row: &FsRow,
        existing: Option<NodeId>,
        last_updated: Option<f64>,
        lineage: LineageId,
        epoch: f64,
    ) -> Result<NodeId, Refused> {
        let is_dir = row.is_directory.unwrap_or(false);
        let id = match existing {
            // The root is always a directory, whatever a row claims.
            Some(ROOT) => ROOT,
            Some(id) if self.tree.node(id).is_dir() == is_dir => id,
            Some(id) => {
                let seen = self.audit.is_seen(id);
                let parent = self.tree.node(id).parent;
                self.remove_subtree(id);
                let name = split_parent(path).map(|(_, n)| n).unwrap_or("");
                let new = self.create_node(parent, path, name, is_dir, epoch)?;
                if seen {
                    self.audit.set_seen(new, true);
                }
                new
            }
            None => {
                let gate = match last_updated {
                    Some(_) => None,
                    None => Some(row.modified_time.unwrap_or(0.0)),
                };
                let parent = self.ensure_parent(path, gate, epoch)?;
                let name = split_parent(path).map(|(_, n)| n).unwrap_or("");
                self.create_node(parent, path, name, is_dir, epoch)?
            }
        };
        self.tree.set_attrs(
            id,
            row.size.unwrap_or(0),
            row.modified_time.unwrap_or(0.0),
            row.created_time.unwrap_or(0.0),
        );
        if self.tree.node(id).is_dir() {
            self.tree
                .set_audit_skipped(id, row.audit_skipped.unwrap_or(false));
        }
        if let Some(t) = last_updated {
            self.tree.set_last_updated(id, t);
        }
        let merged = self.lineages.merge(self.tree.node(id).lineage(), lineage);
        self.tree.set_lineage(id, merged);
        self.apply_owner(id, row);
        Ok(id)
    }

    /// Owner keys of a row (issue 14). A row without them (the Python agent's) keeps what the
    /// node had, so one agent that does not report owners does not erase another's.
    fn apply_owner(&mut self, id: NodeId, row: &FsRow) {
        let (Some(uid), Some(gid), Some(mode)) = (row.uid, row.gid, row.mode) else {
            return;
        };
        self.tree.set_owner(id, Ownership { uid, gid, mode });
        let owners = self.tree.owners_mut();
        if let Some(n) = row.uname.as_deref() {
            owners.set_uname(uid, n);
        }
        if let Some(n) = row.gname.as_deref() {
            owners.set_gname(gid, n);
        }
    }

    /// §7.3: removes a node and its subtree from the tree and from every side table.
    pub(crate) fn remove_subtree(&mut self, id: NodeId) {
        if id == ROOT {
            return;
        }
        if self.tree.node(id).is_dir() {
            self.dir_cache.clear();
        }
        let ids = self.tree.collect_subtree(id);
        let auditing = self.audit.seen_any;
        let has_suspects = !self.suspects.is_empty();
        let has_blind = !self.blind_additions.is_empty();
        if auditing || has_suspects || has_blind {
            for &n in &ids {
                if has_suspects {
                    self.suspects.remove(&n);
                }
                if has_blind {
                    self.blind_additions.remove(&n);
                }
                if auditing && self.audit.is_seen(n) {
                    // The path stays "seen" for M1 if it comes back during this audit.
                    self.audit.set_seen(n, false);
                    self.audit
                        .seen_absent
                        .insert(self.tree.path_of(n).into_boxed_str());
                }
            }
        }
        self.tree.remove_collected(id, &ids);
    }

    /// Marks a path as reported by the current audit (P4).
    pub(crate) fn mark_seen(&mut self, path: &str) {
        match self.tree.lookup(path) {
            Some(id) => self.audit.set_seen(id, true),
            None => {
                self.audit.seen_absent.insert(path.into());
                self.audit.seen_any = true;
            }
        }
    }

    /// Work deferred to the end of every write: exact aggregates, name compaction, bounds.
    pub(crate) fn finish_write(&mut self) {
        self.tree.fix_latest();
        self.tree.maybe_compact_names();
    }

    pub fn node_count(&self) -> usize {
        self.tree.len()
    }

    pub fn tombstone_count(&self) -> usize {
        self.tombstones.len()
    }

    /// Total rows processed since the view was created or reset.
    pub fn totals(&self) -> ApplyReport {
        self.totals
    }

    /// Bytes held by the tree's main tables (for capacity planning; RSS is the real figure).
    pub fn tree_heap_bytes(&self) -> usize {
        self.tree.heap_bytes()
    }
}
