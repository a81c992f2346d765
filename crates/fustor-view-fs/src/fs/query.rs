//! The read side of the fs view (`query-api.md` §3).

use fustor_core::lossless;
use globset::{Candidate, GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Serialize;
use serde_json::Value;

use super::json::{Depth, NodeJson};
use super::state::FsState;
use super::tree::{NodeId, ROOT};

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

/// Compiled `search` pattern: full-path glob, basename glob, or case-insensitive substring of the
/// basename (`query-api.md` §3.2). `*` matches `/`, as in Python's `fnmatch`.
pub struct SearchPattern {
    glob: Glob,
    lower: String,
    ascii: bool,
}

/// The glob part, specialised for the shapes users type most: a scan of 10 million names must
/// not run a regex per name.
enum Glob {
    /// No metacharacters: equality with the path or the basename.
    Literal(String),
    /// `*suffix` with a literal suffix (e.g. `*.h5`): the path ends with it iff the name does,
    /// or the suffix contains `/` and only the path can.
    Suffix(String),
    /// A one-glob `GlobSet` (it still picks prefix/extension strategies where it can).
    Set(GlobSet),
    /// Not a valid glob (e.g. an unclosed `[`): only the substring test applies.
    Invalid,
}

fn has_meta(s: &str) -> bool {
    s.bytes().any(|b| matches!(b, b'*' | b'?' | b'['))
}

/// Rewrites an `fnmatch` pattern for globset: runs of `*` become one `*` (fnmatch has no `**`;
/// with `*` matching `/` the two are equal, while globset's `/**/` would also match zero
/// directories), and braces are literal (fnmatch has no alternation).
fn fnmatch_to_glob(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut prev_star = false;
    for c in pattern.chars() {
        match c {
            '*' if prev_star => continue,
            '{' => out.push_str("[{]"),
            '}' => out.push_str("[}]"),
            c => out.push(c),
        }
        prev_star = c == '*';
    }
    out
}

impl SearchPattern {
    pub fn new(pattern: &str) -> Self {
        let after_stars = pattern.trim_start_matches('*');
        let glob = if !has_meta(pattern) {
            Glob::Literal(pattern.to_string())
        } else if after_stars.len() < pattern.len() && !has_meta(after_stars) {
            Glob::Suffix(after_stars.to_string())
        } else {
            GlobBuilder::new(&fnmatch_to_glob(pattern))
                .literal_separator(false)
                .backslash_escape(false)
                .build()
                .ok()
                .and_then(|g| GlobSetBuilder::new().add(g).build().ok())
                .map_or(Glob::Invalid, Glob::Set)
        };
        SearchPattern {
            glob,
            lower: pattern.to_lowercase(),
            ascii: pattern.is_ascii(),
        }
    }

    pub fn matches(&self, path: &str, name: &str) -> bool {
        self.matches_bytes(path.as_bytes(), name.as_bytes())
    }

    /// Works on bytes so a scan never validates UTF-8 of names that do not match.
    pub fn matches_bytes(&self, path: &[u8], name: &[u8]) -> bool {
        let glob = match &self.glob {
            Glob::Literal(l) => path == l.as_bytes() || name == l.as_bytes(),
            Glob::Suffix(sfx) => path.ends_with(sfx.as_bytes()),
            Glob::Set(g) => {
                use std::os::unix::ffi::OsStrExt;
                fn cand(b: &[u8]) -> Candidate<'_> {
                    Candidate::new(std::path::Path::new(std::ffi::OsStr::from_bytes(b)))
                }
                g.is_match_candidate(&cand(name)) || g.is_match_candidate(&cand(path))
            }
            Glob::Invalid => false,
        };
        glob || self.contains_ci(name)
    }

    fn contains_ci(&self, name: &[u8]) -> bool {
        let needle = self.lower.as_bytes();
        let Some(&first) = needle.first() else {
            return true;
        };
        if self.ascii && name.is_ascii() {
            if name.len() < needle.len() {
                return false;
            }
            let hay = &name[..=name.len() - needle.len()];
            let (lo, up) = (first, first.to_ascii_uppercase());
            let rest = &needle[1..];
            let at = |i: usize| name[i + 1..i + needle.len()].eq_ignore_ascii_case(rest);
            return if lo == up {
                memchr::memchr_iter(lo, hay).any(at)
            } else {
                memchr::memchr2_iter(lo, up, hay).any(at)
            };
        }
        String::from_utf8_lossy(name)
            .to_lowercase()
            .contains(&self.lower)
    }
}

impl FsState {
    fn node_json<'a>(
        &'a self,
        id: NodeId,
        path: String,
        depth: Depth,
        only_path: bool,
        extra: &'a [(&'a str, Value)],
    ) -> NodeJson<'a> {
        NodeJson {
            st: self,
            id,
            path,
            depth,
            only_path,
            extra,
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
        let id = self.tree.lookup(path).ok_or(QueryError::NotFound)?;
        if let Some(limit) = limit {
            let count = self.response_size(path, opts, limit)?;
            if count > limit {
                return Err(QueryError::LimitExceeded { count, limit });
            }
        }
        let j = self.node_json(
            id,
            self.tree.path_of(id),
            Depth::from(opts),
            opts.only_path,
            extra,
        );
        Ok(if lossless {
            lossless::to_vec(&j).unwrap_or_default()
        } else {
            serde_json::to_vec(&j).unwrap_or_default()
        })
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

    /// Matching files as `(id, path)`. Fails once more than `limit` match.
    ///
    /// Directories are split across the available cores: each worker takes the files directly
    /// inside its share of directories, so no worker walks another's path prefixes.
    pub fn search(
        &self,
        pattern: &str,
        limit: Option<usize>,
    ) -> Result<Vec<(NodeId, String)>, QueryError> {
        let pat = SearchPattern::new(pattern);
        let dirs: Vec<NodeId> = self.tree.dirs().collect();
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 8);
        let workers = if dirs.len() < 64 || self.tree.len() < 100_000 {
            1
        } else {
            workers
        };
        let chunk = dirs.len().div_ceil(workers).max(1);
        let over = std::sync::atomic::AtomicBool::new(false);
        let found = std::sync::atomic::AtomicUsize::new(0);
        let scan = |share: &[NodeId]| -> Vec<(NodeId, String)> {
            let mut hits = Vec::new();
            let mut buf: Vec<u8> = Vec::with_capacity(256);
            for &d in share {
                if over.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                buf.clear();
                if d != ROOT {
                    buf.extend_from_slice(self.tree.path_of(d).as_bytes());
                }
                let base = buf.len();
                for c in self.tree.children(d) {
                    if self.tree.node(c).is_dir() {
                        continue;
                    }
                    buf.truncate(base);
                    let name = self.tree.name_bytes(c);
                    buf.push(b'/');
                    buf.extend_from_slice(name);
                    // The arena holds whole `&str`s (names in lossless form), so this is
                    // never lossy.
                    if pat.matches_bytes(&buf, name)
                        && let Ok(path) = std::str::from_utf8(&buf)
                    {
                        hits.push((c, path.to_owned()));
                        let n = found.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                        if limit.is_some_and(|l| n > l) {
                            over.store(true, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                }
            }
            hits
        };
        let hits: Vec<(NodeId, String)> = if workers == 1 {
            scan(&dirs)
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = dirs
                    .chunks(chunk)
                    .map(|share| s.spawn(|| scan(share)))
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| h.join().unwrap_or_default())
                    .collect()
            })
        };
        match limit {
            Some(limit) if hits.len() > limit => Err(QueryError::LimitExceeded {
                count: hits.len(),
                limit,
            }),
            // Directory order, not sorted: the reference promises no order and sorting a
            // million hits would cost more than finding them.
            _ => Ok(hits),
        }
    }

    /// `GET /search` as a JSON array of file nodes.
    pub fn search_json(&self, pattern: &str, limit: Option<usize>) -> Result<Vec<u8>, QueryError> {
        let hits = self.search(pattern, limit)?;
        let nodes: Vec<NodeJson<'_>> = hits
            .into_iter()
            .map(|(id, p)| self.node_json(id, p, Depth::Limited(0), false, &[]))
            .collect();
        Ok(lossless::to_vec(&nodes).unwrap_or_default())
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
        let id = self.tree.lookup(path)?;
        let node = self.tree.node(id);
        Some(match self.tree.dir_data(id) {
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
        })
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
                serde_json::to_value(self.node_json(id, p, Depth::Limited(0), false, &[])).ok()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_pattern_semantics() {
        let p = SearchPattern::new("*.log");
        assert!(p.matches("/data/archive/old.log", "old.log"));
        assert!(!p.matches("/data/report.csv", "report.csv"));
        let p = SearchPattern::new("REPORT");
        assert!(p.matches("/data/report.csv", "report.csv"));
        let p = SearchPattern::new("/data/*/old.*");
        assert!(p.matches("/data/archive/old.log", "old.log"));
        let p = SearchPattern::new("**/sample_4[0-9].h5");
        assert!(p.matches("/x/y/sample_42.h5", "sample_42.h5"));
        let p = SearchPattern::new("[!a]*.txt");
        assert!(p.matches("/d/b.txt", "b.txt"));
        // An unparsable glob still works as a substring.
        let p = SearchPattern::new("a[b");
        assert!(p.matches("/x/ya[bz", "ya[bz"));
        let p = SearchPattern::new("*b/c.txt");
        assert!(p.matches("/a/b/c.txt", "c.txt"));
        let p = SearchPattern::new("/data/report.csv");
        assert!(p.matches("/data/report.csv", "report.csv"));
        assert!(!p.matches("/data/report.csvx", "report.csvx"));
        let p = SearchPattern::new("REP");
        assert!(p.matches("/d/xxrEport", "xxrEport"));
        assert!(!p.matches("/d/xxre", "xxre"));
        let p = SearchPattern::new("ÄB");
        assert!(p.matches("/x/xäbx", "xäbx"));
    }
}
