//! The read side of the fs view (`query-api.md` §3).

use serde::Serialize;
use serde_json::Value;

use super::access::Visibility;
use super::json::{Depth, NodeJson};
use super::pattern::SearchPattern;
use super::search::{self, Hit, SearchLimits};
use super::state::FsState;
use super::tree::{NodeId, ROOT};
use fustor_core::view::Identity;

pub use fustor_core::view::{QueryError, TreeOptions};

impl From<&TreeOptions> for Depth {
    fn from(opts: &TreeOptions) -> Depth {
        match (opts.max_depth, opts.recursive) {
            (Some(n), _) => Depth::Limited(n),
            (None, true) => Depth::Full,
            (None, false) => Depth::NoRecurse,
        }
    }
}

/// `GET /stats` (`query-api.md` §3.3), plus a few additive fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ViewStats {
    pub item_count: u64,
    pub total_files: u64,
    pub total_directories: u64,
    pub total_size: u64,
    pub latency_ms: f64,
    pub staleness_seconds: f64,
    pub oldest_item_path: Option<String>,
    pub has_blind_spot: bool,
    pub suspect_file_count: u64,
    pub logical_now: f64,
    pub last_audit_finished_at: f64,
    pub audit_cycle_count: u64,
    pub is_auditing: bool,
    /// Extensions (not in the reference): what the operator needs to read the figures above.
    pub clock_skew_seconds: f64,
    pub tombstone_count: u64,
    pub blind_spot_additions: u64,
    pub blind_spot_deletions: u64,
    pub capacity_exceeded: bool,
}

/// Aggregates of one subtree (forest `stats`, `stats?path=`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubtreeStats {
    pub file_count: u64,
    /// Counts the node itself when it is a directory.
    pub dir_count: u64,
    pub total_size: u64,
    pub latest_mtime: f64,
    pub suspect_file_count: u64,
}

impl FsState {
    fn node_json<'a>(
        &'a self,
        id: NodeId,
        path: String,
        depth: Depth,
        only_path: bool,
        dir_stats: bool,
        extra: &'a [(&'a str, Value)],
    ) -> NodeJson<'a> {
        NodeJson {
            st: self,
            id,
            path,
            depth,
            only_path,
            dir_stats,
            extra,
            vis: None,
        }
    }

    /// Number of nodes a `tree` answer would hold, counting at most `limit + 1`.
    pub fn response_size(
        &self,
        path: &str,
        opts: &TreeOptions,
        limit: usize,
    ) -> Result<usize, QueryError> {
        let id = self.tree.lookup(path).ok_or(QueryError::NotFound)?;
        let max = match Depth::from(opts) {
            Depth::Full => u32::MAX,
            Depth::Limited(n) => n,
            Depth::NoRecurse => 0,
        };
        let mut count = 1usize;
        let mut stack = vec![(id, 0u32)];
        while let Some((n, d)) = stack.pop() {
            if d >= max {
                continue;
            }
            for c in self.tree.children(n) {
                count += 1;
                if count > limit {
                    return Ok(count);
                }
                if self.tree.node(c).is_dir() {
                    stack.push((c, d + 1));
                }
            }
        }
        Ok(count)
    }

    /// `GET /tree` as JSON bytes. `extra` keys are appended to the top object (`job_id`, ...).
    /// `limit` bounds the number of nodes in the answer (see `docs/` for why this differs from
    /// the reference's whole-view check). Undecodable name bytes are written `\udcXX`, as the
    /// Python Fusion writes them, so clients see distinct names.
    pub fn tree_json(
        &self,
        path: &str,
        opts: &TreeOptions,
        limit: Option<usize>,
        extra: &[(&str, Value)],
    ) -> Result<Vec<u8>, QueryError> {
        self.tree_bytes(path, opts, limit, extra, true)
    }

    /// [`Self::tree_json`] with each directory's `subtree` aggregates when `dir_stats`, and as
    /// `who` sees the tree (issue 14): a path the user may not see is not found, and
    /// directories the user may not list show no children.
    pub fn tree_json_with(
        &self,
        path: &str,
        opts: &TreeOptions,
        limit: Option<usize>,
        extra: &[(&str, Value)],
        dir_stats: bool,
        who: Option<&Identity>,
    ) -> Result<Vec<u8>, QueryError> {
        let Some(who) = who.filter(|w| !w.admin) else {
            return self.tree_bytes_with(path, opts, limit, extra, true, dir_stats);
        };
        let id = self.tree.lookup(path).ok_or(QueryError::NotFound)?;
        let vis = Visibility::new(&self.tree, who);
        if !vis.shows(&self.tree, id) {
            return Err(QueryError::NotFound);
        }
        if let Some(limit) = limit {
            let count = self.response_size(path, opts, limit)?;
            if count > limit {
                return Err(QueryError::LimitExceeded { count, limit });
            }
        }
        let path = self.tree.path_of(id);
        let mut out = Vec::with_capacity(4096);
        let mut j = self.node_json(
            id,
            path,
            Depth::from(opts),
            opts.only_path,
            dir_stats,
            extra,
        );
        j.vis = Some(&vis);
        j.write_json(&mut out, true);
        Ok(out)
    }

    /// Whether `who` may see the node at `path` (issue 14).
    pub fn visible_to(&self, path: &str, vis: &Visibility) -> bool {
        self.tree
            .lookup(path)
            .is_some_and(|id| vis.shows(&self.tree, id))
    }

    /// [`Self::tree_json`]; `lossless = false` keeps the in-memory escapes so that the bytes
    /// still parse into a `serde_json::Value` (which cannot hold lone surrogates).
    pub fn tree_bytes(
        &self,
        path: &str,
        opts: &TreeOptions,
        limit: Option<usize>,
        extra: &[(&str, Value)],
        lossless: bool,
    ) -> Result<Vec<u8>, QueryError> {
        self.tree_bytes_with(path, opts, limit, extra, lossless, false)
    }

    fn tree_bytes_with(
        &self,
        path: &str,
        opts: &TreeOptions,
        limit: Option<usize>,
        extra: &[(&str, Value)],
        lossless: bool,
        dir_stats: bool,
    ) -> Result<Vec<u8>, QueryError> {
        let id = self.tree.lookup(path).ok_or(QueryError::NotFound)?;
        let mut nodes = match (Depth::from(opts), self.tree.dir_data(id)) {
            (_, None) | (Depth::Limited(0) | Depth::NoRecurse, _) => 1,
            (Depth::Limited(1), Some(d)) => d.child_count as usize + 1,
            (_, Some(d)) => (d.files + d.dirs + 1).min(1 << 14) as usize,
        };
        if let Some(limit) = limit {
            let count = self.response_size(path, opts, limit)?;
            if count > limit {
                return Err(QueryError::LimitExceeded { count, limit });
            }
            nodes = count;
        }
        let path = self.tree.path_of(id);
        // Sized once: growing a 300 KB listing by doubling copies it a dozen times.
        let mut out = Vec::with_capacity(nodes.min(1 << 20) * (path.len() + 384));
        let j = self.node_json(
            id,
            path,
            Depth::from(opts),
            opts.only_path,
            dir_stats,
            extra,
        );
        j.write_json(&mut out, lossless);
        Ok(out)
    }

    /// The tree as a `serde_json::Value` (for tests and embedding). Names keep the in-memory
    /// form of `fustor_core::lossless`; write the value with its formatter.
    pub fn tree_value(&self, path: &str, opts: &TreeOptions) -> Option<Value> {
        let bytes = self.tree_bytes(path, opts, None, &[], false).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// One node without children (`GET /metadata`).
    pub fn metadata_value(&self, path: &str) -> Option<Value> {
        self.tree_value(
            path,
            &TreeOptions {
                recursive: false,
                max_depth: Some(0),
                only_path: false,
            },
        )
    }

    /// Visits every file with its full path, depth-first, reusing one path buffer.
    pub fn for_each_file(&self, mut f: impl FnMut(NodeId, &str, &str)) {
        let mut buf = String::with_capacity(256);
        let mut stack: Vec<(NodeId, usize)> = vec![(ROOT, 0)];
        // Depth-first with an explicit stack of (directory, path length when entered).
        while let Some((d, len)) = stack.pop() {
            buf.truncate(len);
            if d != ROOT {
                buf.push('/');
                buf.push_str(self.tree.name(d));
            }
            let base = buf.len();
            for c in self.tree.children(d) {
                if self.tree.node(c).is_dir() {
                    stack.push((c, base));
                    continue;
                }
                buf.truncate(base);
                let name = self.tree.name(c);
                buf.push('/');
                buf.push_str(name);
                f(c, &buf, name);
            }
        }
    }

    /// Matching files as `(id, path)` in path order. Fails once more than `limit` match.
    pub fn search(
        &self,
        pattern: &str,
        limit: Option<usize>,
    ) -> Result<Vec<(NodeId, String)>, QueryError> {
        let limits = SearchLimits {
            max_items: limit,
            first: None,
        };
        let found = search::search(self, &SearchPattern::new(pattern), limits)?;
        Ok(found.hits.into_iter().map(|h| (h.id, h.path)).collect())
    }

    /// `GET /search` as a JSON array of file nodes.
    pub fn search_json(&self, pattern: &str, limit: Option<usize>) -> Result<Vec<u8>, QueryError> {
        let limits = SearchLimits {
            max_items: limit,
            first: None,
        };
        let found = search::search(self, &SearchPattern::new(pattern), limits)?;
        let mut out = Vec::with_capacity(64 + found.hits.len() * 160);
        out.push(b'[');
        self.hits_json(&found.hits, &mut out);
        out.push(b']');
        Ok(out)
    }

    /// Appends the file nodes of `hits`, comma-separated (a leading comma when `out` already
    /// holds a node). A hit read at another generation is looked up again by path; a file gone
    /// since is left out. Returns the number of nodes written.
    pub(crate) fn hits_json(&self, hits: &[Hit], out: &mut Vec<u8>) -> usize {
        let mut written = 0;
        let generation = self.tree.generation();
        for h in hits {
            let id = if h.generation == generation {
                Some(h.id)
            } else {
                self.tree
                    .lookup(&h.path)
                    .filter(|&id| !self.tree.node(id).is_dir())
            };
            let Some(id) = id else { continue };
            if out.len() > 1 {
                out.push(b',');
            }
            let node = self.node_json(id, h.path.clone(), Depth::Limited(0), false, false, &[]);
            node.write_json(out, true);
            written += 1;
        }
        written
    }

    pub fn stats(&self, epoch: f64) -> ViewStats {
        let wm = self.clock.watermark(epoch);
        let root = self.tree.dir_data(ROOT);
        let (files, dirs, bytes, suspects) = root.map_or((0, 0, 0, 0), |d| {
            (d.files, d.dirs, d.bytes, d.suspect_files)
        });
        let oldest = self.tree.oldest_dir();
        let blind_files = self
            .blind_additions
            .iter()
            .filter(|&&id| !self.tree.node(id).is_dir())
            .count();
        ViewStats {
            item_count: self.tree.len() as u64,
            total_files: files,
            total_directories: dirs + 1,
            total_size: bytes,
            latency_ms: self.last_event_latency_ms,
            staleness_seconds: oldest.map_or(0.0, |(_, m)| (wm - m).max(0.0)),
            oldest_item_path: oldest.map(|(id, _)| self.tree.path_of(id)),
            has_blind_spot: !self.blind_additions.is_empty() || !self.blind_deletions.is_empty(),
            suspect_file_count: suspects,
            logical_now: wm,
            last_audit_finished_at: self.audit.last_finished_at,
            audit_cycle_count: self.audit.cycle_count,
            is_auditing: self.audit.last_start.is_some(),
            clock_skew_seconds: self.clock.skew_secs(),
            tombstone_count: self.tombstones.len() as u64,
            blind_spot_additions: blind_files as u64,
            blind_spot_deletions: self.blind_deletions.len() as u64,
            capacity_exceeded: self.capacity_hit,
        }
    }

    /// Aggregates of the subtree at `path`, in O(depth).
    pub fn subtree_stats(&self, path: &str) -> Option<SubtreeStats> {
        Some(self.subtree_of(self.tree.lookup(path)?))
    }

    /// Aggregates of the subtree at `id`, in O(1) (the directory keeps them).
    pub(crate) fn subtree_of(&self, id: NodeId) -> SubtreeStats {
        let node = self.tree.node(id);
        match self.tree.dir_data(id) {
            Some(d) => SubtreeStats {
                file_count: d.files,
                dir_count: d.dirs + 1,
                total_size: d.bytes,
                latest_mtime: self.tree.latest_mtime(id),
                suspect_file_count: d.suspect_files,
            },
            None => SubtreeStats {
                file_count: 1,
                dir_count: 0,
                total_size: node.size,
                latest_mtime: node.mtime,
                suspect_file_count: u64::from(node.suspect()),
            },
        }
    }

    /// `GET /blind-spots` (`query-api.md` §3.4): additions that are files, deletions as paths.
    pub fn blind_spots_value(&self) -> Value {
        let mut adds: Vec<(String, NodeId)> = self
            .blind_additions
            .iter()
            .filter(|&&id| !self.tree.node(id).is_dir())
            .map(|&id| (self.tree.path_of(id), id))
            .collect();
        adds.sort();
        let additions: Vec<Value> = adds
            .into_iter()
            .filter_map(|(p, id)| {
                let mut out = Vec::with_capacity(256);
                self.node_json(id, p, Depth::Limited(0), false, false, &[])
                    .write_json(&mut out, false);
                serde_json::from_slice(&out).ok()
            })
            .collect();
        let mut deletions: Vec<&str> = self.blind_deletions.iter().map(|s| s.as_ref()).collect();
        deletions.sort_unstable();
        serde_json::json!({
            "additions_count": additions.len(),
            "additions": additions,
            "deletion_count": deletions.len(),
            "deletions": deletions,
        })
    }

    pub fn blind_deletions(&self) -> Vec<String> {
        let mut v: Vec<String> = self.blind_deletions.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    }

    /// Paths of blind-spot additions (files and directories).
    pub fn blind_additions(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .blind_additions
            .iter()
            .map(|&id| self.tree.path_of(id))
            .collect();
        v.sort();
        v
    }
}
