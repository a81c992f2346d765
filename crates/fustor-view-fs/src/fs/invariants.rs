//! A from-scratch check of the view's structural invariants, for property tests and debugging.
//!
//! Everything the engine maintains incrementally is recomputed here the slow way and compared.

use std::collections::HashSet;

use super::owners::Usage;
use super::state::FsState;
use super::tree::{NodeId, ROOT};

impl FsState {
    /// Returns a description of the first broken invariant, if any.
    pub fn check_invariants(&self) -> Result<(), String> {
        let t = &self.tree;
        let mut seen_paths = HashSet::new();
        let mut count = 0usize;
        let mut usage: std::collections::HashMap<u32, Usage> = Default::default();
        let mut stack: Vec<NodeId> = vec![ROOT];
        while let Some(id) = stack.pop() {
            count += 1;
            if !t.node(id).is_dir() {
                usage
                    .entry(t.node(id).owner())
                    .or_default()
                    .add(t.node(id).size);
            }
            let path = t.path_of(id);
            if !seen_paths.insert(path.clone()) {
                return Err(format!("path {path} appears twice"));
            }
            if t.lookup(&path) != Some(id) {
                return Err(format!("lookup({path}) does not find its node"));
            }
            for c in t.children(id) {
                if t.node(c).parent != id {
                    return Err(format!(
                        "child {} of {path} has another parent",
                        t.path_of(c)
                    ));
                }
                stack.push(c);
            }
            if let Some(d) = t.dir_data(id) {
                let (mut files, mut dirs, mut bytes, mut sus, mut latest) =
                    (0u64, 0u64, 0u64, 0u64, t.node(id).mtime);
                let mut kids = 0u32;
                let mut sub: Vec<NodeId> = t.children(id).collect();
                kids += sub.len() as u32;
                while let Some(n) = sub.pop() {
                    let node = t.node(n);
                    latest = latest.max(node.mtime);
                    if node.is_dir() {
                        dirs += 1;
                        sub.extend(t.children(n));
                    } else {
                        files += 1;
                        bytes += node.size;
                        sus += u64::from(node.suspect());
                    }
                }
                let got = (d.files, d.dirs, d.bytes, d.suspect_files, d.child_count);
                if got != (files, dirs, bytes, sus, kids) {
                    return Err(format!(
                        "aggregates of {path}: have {got:?}, recomputed {:?}",
                        (files, dirs, bytes, sus, kids)
                    ));
                }
                if t.latest_mtime(id).to_bits() != latest.to_bits() {
                    return Err(format!(
                        "latest mtime of {path}: have {}, recomputed {latest}",
                        t.latest_mtime(id)
                    ));
                }
            } else if t.children(id).next().is_some() {
                return Err(format!("file {path} has children"));
            }
        }
        if count != t.len() {
            return Err(format!(
                "{} live nodes counted, tree says {}",
                count,
                t.len()
            ));
        }
        let kept: std::collections::HashMap<u32, Usage> = t
            .owners()
            .ids_with_usage()
            .filter(|(_, u)| u.files > 0)
            .collect();
        if kept != usage {
            return Err(format!("owner usage kept {kept:?}, recomputed {usage:?}"));
        }
        for (&id, _) in self.suspects.iter() {
            if t.lookup(&t.path_of(id)) != Some(id) {
                return Err(format!("suspect entry for a dead node {id}"));
            }
            if !t.node(id).suspect() {
                return Err(format!("suspect {} without its flag", t.path_of(id)));
            }
        }
        for &id in self.blind_additions.iter() {
            if t.lookup(&t.path_of(id)) != Some(id) {
                return Err(format!("blind addition for a dead node {id}"));
            }
        }
        if let Some((oldest, m)) = t.oldest_dir() {
            let min = t
                .dirs()
                .filter(|&d| d != ROOT)
                .map(|d| t.node(d).mtime)
                .fold(f64::INFINITY, f64::min);
            if m != min || t.node(oldest).mtime != m {
                return Err(format!("oldest directory index says {m}, recomputed {min}"));
            }
        }
        Ok(())
    }

    /// Whether a node exists at `path` and is a directory.
    pub fn is_dir_at(&self, path: &str) -> Option<bool> {
        self.tree.lookup(path).map(|id| self.tree.node(id).is_dir())
    }

    /// The tombstone recorded for `path`, if any.
    pub fn tombstone(&self, path: &str) -> Option<super::state::Tombstone> {
        self.tombstones.get(path).copied()
    }
}
