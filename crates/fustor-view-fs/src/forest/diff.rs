//! Per-file comparison of one path across all members (an extension; not in the reference).
//!
//! The question it answers: "which copies differ?" — files present in some members but not all
//! (`only_in`), and files whose size or mtime disagree (`mismatched`).
//!
//! All members are walked together, one directory at a time: the children of a directory in
//! every member that has it are gathered, sorted by name and grouped, so each file is visited
//! once and no global path index is built (10 members × 1 million files would need gigabytes).
//! Paths are only built for differences, and at most `max_items` differences are kept; the
//! counts stay exact. The walk takes every member's read lock one step (a few thousand entries)
//! at a time and lets the members' writers in between steps, so comparing two 10M-file copies
//! does not stall their realtime updates for seconds; a file changed while the walk runs may
//! be compared before or after the change, like `diff -r` on live trees.

use fustor_core::path::{normalize_query_path, split_parent};
use serde_json::{Map, Value, json};

use parking_lot::RwLockReadGuard;

use super::view::ForestView;
use crate::fs::config::EPS;
use crate::fs::{FsState, FsView, NodeId};

/// Entries read between two chances for the members' writers.
const STEP: usize = 4096;

/// A directory to compare: its path and, per member holding it, the node and the member tree's
/// generation when the node was read (see [`crate::fs::FsView`]: ids stay valid while it is
/// unchanged).
type Pending = (String, Vec<(usize, NodeId, u64)>);

/// Accumulated differences.
struct Diff<'a> {
    views: &'a [&'a FsView],
    pipes: &'a [String],
    max: usize,
    listed: usize,
    only_in: Vec<Vec<String>>,
    mismatched: Vec<Value>,
    compared: u64,
    differences: u64,
    only_in_count: u64,
    mismatched_count: u64,
}

/// `parent + "/" + name`, without doubling the root's slash.
fn join(parent: &str, name: &str) -> String {
    let mut s = String::with_capacity(parent.len() + 1 + name.len());
    if parent != "/" {
        s.push_str(parent);
    }
    s.push('/');
    s.push_str(name);
    s
}

impl<'a> Diff<'a> {
    /// One file path held (as a file) by `holders` (`(member, node)`, member order).
    fn file(&mut self, states: &[&FsState], parent: &str, name: &str, holders: &[(usize, NodeId)]) {
        self.compared += 1;
        let missing = holders.len() < self.views.len();
        let (mut smin, mut smax) = (u64::MAX, 0u64);
        let (mut mmin, mut mmax) = (f64::INFINITY, f64::NEG_INFINITY);
        for &(m, id) in holders {
            let n = states[m].tree.node(id);
            smin = smin.min(n.size);
            smax = smax.max(n.size);
            mmin = mmin.min(n.mtime);
            mmax = mmax.max(n.mtime);
        }
        let mismatched = holders.len() > 1 && (smin != smax || mmax - mmin > EPS);
        if !missing && !mismatched {
            return;
        }
        self.differences += 1;
        self.only_in_count += u64::from(missing);
        self.mismatched_count += u64::from(mismatched);
        if self.listed >= self.max {
            return;
        }
        self.listed += 1;
        let path = join(parent, name);
        if mismatched {
            let members: Map<String, Value> = holders
                .iter()
                .map(|&(m, id)| {
                    let n = states[m].tree.node(id);
                    (
                        self.pipes[m].clone(),
                        json!({"size": n.size, "modified_time": n.mtime}),
                    )
                })
                .collect();
            self.mismatched
                .push(json!({"path": path, "members": members}));
        }
        if missing {
            for &(m, _) in holders {
                self.only_in[m].push(path.clone());
            }
        }
    }

    /// Walks the directory `path` in every member of `holders`, depth-first in name order.
    fn walk(&mut self, path: String, holders: Vec<(usize, NodeId, u64)>) {
        let mut stack: Vec<Pending> = vec![(path, holders)];
        let mut files: Vec<(usize, NodeId)> = Vec::new();
        let mut guards: Vec<RwLockReadGuard<'_, FsState>> =
            self.views.iter().map(|v| v.read()).collect();
        let mut work = 0;
        while let Some((dir, holders)) = stack.pop() {
            if work >= STEP {
                work = 0;
                for g in guards.drain(..) {
                    RwLockReadGuard::unlock_fair(g);
                }
                guards = self.views.iter().map(|v| v.read()).collect();
            }
            let states: Vec<&FsState> = guards.iter().map(|g| &**g).collect();
            let mut entries: Vec<(&str, usize, NodeId, bool)> = Vec::new();
            for (m, d, seen) in holders {
                let st = states[m];
                let tree = &st.tree;
                // A member that changed since `d` was read is asked again by path.
                let d = if seen == tree.generation() {
                    d
                } else {
                    match st.lookup(&dir).filter(|&id| tree.node(id).is_dir()) {
                        Some(id) => id,
                        None => continue,
                    }
                };
                for c in tree.children(d) {
                    entries.push((tree.name(c), m, c, tree.node(c).is_dir()));
                }
            }
            work += entries.len() + 1;
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0).then(a.1.cmp(&b.1)));
            let mut subdirs: Vec<Pending> = Vec::new();
            for run in entries.chunk_by(|a, b| a.0 == b.0) {
                files.clear();
                files.extend(run.iter().filter(|e| !e.3).map(|e| (e.1, e.2)));
                if !files.is_empty() {
                    self.file(&states, &dir, run[0].0, &files);
                }
                if run.iter().any(|e| e.3) {
                    let dirs = run
                        .iter()
                        .filter(|e| e.3)
                        .map(|e| (e.1, e.2, states[e.1].tree.generation()))
                        .collect();
                    subdirs.push((join(&dir, run[0].0), dirs));
                }
            }
            // Reversed so that the stack pops them in name order.
            stack.extend(subdirs.into_iter().rev());
        }
    }
}

impl ForestView {
    /// Compares the files under `path` across all members.
    ///
    /// ```json
    /// {"path": "/x", "members": ["pa", "pb"], "compared_files": 10, "difference_count": 2,
    ///  "only_in_count": 1, "mismatched_count": 1,
    ///  "only_in": {"pa": ["/x/new"], "pb": []},
    ///  "mismatched": [{"path": "/x/f", "members": {"pa": {"size": 1, "modified_time": 5.0},
    ///                                              "pb": {"size": 2, "modified_time": 5.0}}}],
    ///  "truncated": false}
    /// ```
    /// A path is "only in" the members that hold it as a file when at least one compared member
    /// lacks it; members without `path` at all are reported in `absent` and not compared. Sizes must be equal and mtimes within
    /// 1e-6 s among the holders. At most `max_items` differing paths are listed (`None` =
    /// unlimited), in walk order; `truncated` says more exist. Empty directories are ignored.
    pub fn diff(&self, path: &str, max_items: Option<usize>) -> Value {
        // Members that do not hold `path` at all are listed as `absent` and left out of the
        // comparison: a server that never had the dataset would otherwise make every file of
        // it "only in" the others, hiding the differences between the copies that exist.
        let norm_path = normalize_query_path(path);
        let (members, absent): (Vec<_>, Vec<_>) = self.members().into_iter().partition(|(_, t)| {
            norm_path
                .as_deref()
                .is_some_and(|p| t.read().lookup(p).is_some())
        });
        let absent: Vec<String> = absent.into_iter().map(|(p, _)| p).collect();
        let pipes: Vec<String> = members.iter().map(|(p, _)| p.clone()).collect();
        let views: Vec<&FsView> = members.iter().map(|(_, t)| &**t).collect();
        let mut d = Diff {
            views: &views,
            pipes: &pipes,
            max: max_items.unwrap_or(usize::MAX),
            listed: 0,
            only_in: vec![Vec::new(); views.len()],
            mismatched: Vec::new(),
            compared: 0,
            differences: 0,
            only_in_count: 0,
            mismatched_count: 0,
        };
        if let Some(norm) = norm_path {
            let (mut dirs, mut files) = (Vec::new(), Vec::new());
            {
                let guards: Vec<_> = views.iter().map(|v| v.read()).collect();
                let states: Vec<&FsState> = guards.iter().map(|g| &**g).collect();
                for (m, st) in states.iter().enumerate() {
                    if let Some(id) = st.lookup(&norm) {
                        if st.tree.node(id).is_dir() {
                            dirs.push((m, id, st.tree.generation()));
                        } else {
                            files.push((m, id));
                        }
                    }
                }
                if let (false, Some((parent, name))) = (files.is_empty(), split_parent(&norm)) {
                    d.file(&states, parent, name, &files);
                }
            }
            if !dirs.is_empty() {
                d.walk(norm, dirs);
            }
        }
        let only_in: Map<String, Value> = pipes
            .iter()
            .zip(std::mem::take(&mut d.only_in))
            .map(|(p, v)| (p.clone(), json!(v)))
            .collect();
        json!({
            "path": path,
            "members": pipes,
            "absent": absent,
            "compared_files": d.compared,
            "difference_count": d.differences,
            "only_in_count": d.only_in_count,
            "mismatched_count": d.mismatched_count,
            "only_in": only_in,
            "mismatched": d.mismatched,
            "truncated": d.differences > d.listed as u64,
        })
    }
}
