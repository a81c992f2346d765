//! Bulk construction of a tree from a snapshot (issue 11: restart time).
//!
//! A restore creates every node once, in depth-first pre-order, into an empty tree. Doing that
//! through [`Tree::create`] and [`Tree::set_attrs`] walks every node's ancestors twice (counts,
//! bytes, latest mtime) and moves every directory in the by-mtime index twice; for ten million
//! nodes that was most of the restart. Here a node is created with its attributes and one probe
//! of the child index (which also finds a repeated name), and [`Tree::finish_restore`] then
//! computes every directory's aggregates in one pass from the leaves up and builds the
//! by-mtime index in one sorted load.
//!
//! A snapshot restore goes further ([`Tree::restore_node_deferred`]): it only appends nodes,
//! hands each 1,024 names to a thread that builds their name-index group, and collects the
//! child-index entries, which [`Tree::finish_restore_deferred`] inserts shard by shard on two
//! threads. At ten million nodes the per-node probe into a 50 MB table (a cache miss or two
//! each) and the name index were two thirds of the restart's CPU time; in bulk the restart
//! takes a third of it. The duplicate check moves with the insert, so a repeated name is still
//! refused, only after all nodes are read.

use hashbrown::hash_table::Entry;

use super::super::childindex::Deferred;
use super::super::nameindex::BulkNames;
use super::{
    DirData, F_DIR, F_LIVE, MAX_DIR_SLOTS, NIL, Node, NodeId, ROOT, Tree, TreeFull, UNKNOWN,
    f64_key,
};

/// What a restore collects besides the nodes ([`Tree::begin_bulk_restore`]).
pub struct BulkRestore {
    index: Deferred,
    names: BulkNames,
}

/// Why a node could not be restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreError {
    Full,
    /// The parent already has a child of that name.
    Duplicate,
}

impl From<TreeFull> for RestoreError {
    fn from(_: TreeFull) -> Self {
        RestoreError::Full
    }
}

impl Tree {
    /// Creates `name` under `parent` with its attributes, leaving the ancestors' aggregates
    /// and the by-mtime index to [`Tree::finish_restore`]. Only for a tree being restored:
    /// created after its parent, nothing removed in between.
    pub fn restore_node(
        &mut self,
        parent: NodeId,
        name: &str,
        is_dir: bool,
        attrs: (u64, f64, f64),
    ) -> Result<NodeId, RestoreError> {
        let h = super::hash_of(&self.hasher, parent, name);
        let id = self.next_restored_id()?;
        {
            let (nodes, names, hasher) = (&self.nodes, &self.names, &self.hasher);
            match self.index.entry(
                h,
                |&n| {
                    let node = &nodes[n as usize];
                    node.parent == parent && names.get_bytes(node.name) == name.as_bytes()
                },
                |&n| {
                    let node = &nodes[n as usize];
                    super::hash_of_bytes(hasher, node.parent, names.get_bytes(node.name))
                },
            ) {
                Entry::Occupied(_) => return Err(RestoreError::Duplicate),
                Entry::Vacant(v) => {
                    v.insert(id);
                }
            }
        }
        if let Err(e) = self.push_restored(id, parent, name, is_dir, attrs) {
            self.index.remove(h, id);
            return Err(e);
        }
        self.name_ix.insert(id, name);
        Ok(id)
    }

    /// [`Tree::restore_node`] for a whole snapshot: the node goes in at once, its child-index
    /// entry waits for [`Tree::finish_restore_deferred`], which inserts them in bulk and finds a
    /// repeated name then, and its name goes to the thread that builds the name index.
    pub fn restore_node_deferred(
        &mut self,
        bulk: &mut BulkRestore,
        parent: NodeId,
        name: &str,
        is_dir: bool,
        attrs: (u64, f64, f64),
    ) -> Result<NodeId, RestoreError> {
        let h = super::hash_of(&self.hasher, parent, name);
        let id = self.next_restored_id()?;
        self.push_restored(id, parent, name, is_dir, attrs)?;
        bulk.index.push(h, id);
        bulk.names.push(id, name);
        Ok(id)
    }

    /// Starts a restore with [`Tree::restore_node_deferred`], sized for `expected` nodes.
    pub fn begin_bulk_restore(expected: usize) -> BulkRestore {
        BulkRestore {
            index: Deferred::with_capacity(expected),
            names: BulkNames::start(),
        }
    }

    fn next_restored_id(&self) -> Result<NodeId, RestoreError> {
        let next_id = self.nodes.len();
        if next_id >= NIL as usize - 1 || !self.free_nodes.is_empty() {
            return Err(RestoreError::Full);
        }
        Ok(next_id as NodeId)
    }

    /// Appends node `id` (the next free one) with its name and links it under `parent`.
    fn push_restored(
        &mut self,
        id: NodeId,
        parent: NodeId,
        name: &str,
        is_dir: bool,
        attrs: (u64, f64, f64),
    ) -> Result<(), RestoreError> {
        let name_ref = self.names.push(name).map_err(|_| RestoreError::Full)?;
        let dir = if is_dir {
            if self.dirs.len() >= MAX_DIR_SLOTS {
                return Err(RestoreError::Full);
            }
            self.dirs.push(DirData::empty(id));
            (self.dirs.len() - 1) as u32
        } else {
            NIL
        };
        let mut node = Node::new(
            name_ref,
            parent,
            dir,
            F_LIVE | if is_dir { F_DIR } else { 0 },
        );
        let (size, mtime, ctime) = attrs;
        node.size = size;
        node.mtime = mtime;
        node.ctime = ctime;
        self.nodes.push(node);
        if !is_dir {
            // As `Tree::create` + `set_attrs`: the file counts for the unknown owner until
            // `set_owner` moves it.
            self.owners.usage_mut(UNKNOWN).add(size);
        }
        self.link_last_child(parent, id);
        self.live += 1;
        self.generation += 1;
        Ok(())
    }

    /// Ends a restore made with [`Tree::restore_node_deferred`]: inserts the child-index
    /// entries shard by shard on two threads (refusing a repeated name), takes the name index
    /// from its thread, then [`Tree::finish_restore`]. On `Err` the tree is inconsistent and
    /// must be dropped.
    pub fn finish_restore_deferred(&mut self, bulk: BulkRestore) -> Result<(), RestoreError> {
        let count = self.nodes.len();
        let t = std::time::Instant::now();
        let (nodes, names, hasher) = (&self.nodes, &self.names, &self.hasher);
        let inserted = self.index.insert_deferred(
            bulk.index,
            |a, b| {
                let (x, y) = (&nodes[a as usize], &nodes[b as usize]);
                x.parent == y.parent && names.get_bytes(x.name) == names.get_bytes(y.name)
            },
            |&n| {
                let node = &nodes[n as usize];
                super::hash_of_bytes(hasher, node.parent, names.get_bytes(node.name))
            },
        );
        let child_index = t.elapsed();
        let t = std::time::Instant::now();
        self.name_ix = bulk.names.finish(count);
        tracing::debug!(
            nodes = count,
            child_index_ms = child_index.as_millis() as u64,
            name_index_wait_ms = t.elapsed().as_millis() as u64,
            "restore: indexes built"
        );
        inserted.map_err(|_| RestoreError::Duplicate)?;
        let t = std::time::Instant::now();
        self.finish_restore();
        tracing::debug!(
            ms = t.elapsed().as_millis() as u64,
            "restore: aggregates computed"
        );
        Ok(())
    }

    /// Computes every directory's aggregates (files, dirs, bytes, suspect files, latest mtime)
    /// and the by-mtime index from the nodes. Children have larger ids than their parents in a
    /// restored tree, so one pass over the ids from the last down completes every directory
    /// before it is added to its parent.
    pub fn finish_restore(&mut self) {
        for d in &mut self.dirs {
            d.files = 0;
            d.dirs = 0;
            d.bytes = 0;
            d.suspect_files = 0;
            d.latest = 0.0;
            d.dirty = false;
        }
        self.dirty.clear();
        for i in (1..self.nodes.len()).rev() {
            let n = &self.nodes[i];
            if !n.live() {
                continue;
            }
            let (files, dirs, bytes, suspects, latest) = if n.is_dir() {
                let d = &mut self.dirs[n.dir() as usize];
                d.latest = d.latest.max(n.mtime);
                (d.files, d.dirs + 1, d.bytes, d.suspect_files, d.latest)
            } else {
                (1, 0, n.size, u64::from(n.suspect()), n.mtime)
            };
            let parent = self.nodes[i].parent;
            let pd = &mut self.dirs[self.nodes[parent as usize].dir() as usize];
            pd.files += files;
            pd.dirs += dirs;
            pd.bytes = pd.bytes.wrapping_add(bytes);
            pd.suspect_files += suspects;
            if latest > pd.latest {
                pd.latest = latest;
            }
        }
        let root = &self.nodes[ROOT as usize];
        let rd = &mut self.dirs[root.dir() as usize];
        rd.latest = rd.latest.max(root.mtime);
        let mut keys: Vec<(u64, NodeId)> = self
            .nodes
            .iter()
            .enumerate()
            .skip(1)
            .filter(|(_, n)| n.live() && n.is_dir())
            .map(|(i, n)| (f64_key(n.mtime), i as NodeId))
            .collect();
        keys.sort_unstable();
        self.by_mtime = keys.into_iter().collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(files, dirs, bytes, suspects, latest)` of every directory, by path.
    fn aggregates(t: &Tree) -> Vec<(String, u64, u64, u64, u64, f64)> {
        let mut out: Vec<_> = (0..t.nodes.len() as NodeId)
            .filter(|&i| t.nodes[i as usize].live() && t.nodes[i as usize].is_dir())
            .map(|i| {
                let d = t.dir_data(i).cloned().unwrap_or_else(|| unreachable!());
                (
                    t.path_of(i),
                    d.files,
                    d.dirs,
                    d.bytes,
                    d.suspect_files,
                    d.latest,
                )
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    #[test]
    fn bulk_restore_equals_incremental_build_and_refuses_duplicates() {
        // (parent index in `ids`, name, dir, size, mtime)
        let spec: &[(usize, &str, bool, u64, f64)] = &[
            (0, "a", true, 0, 5.0),
            (1, "f1", false, 10, 7.0),
            (1, "b", true, 0, 2.0),
            (3, "f2", false, 20, 9.5),
            (3, "f3", false, 1, 1.0),
            (0, "top", false, 3, 4.0),
            (0, "empty", true, 0, 11.0),
        ];
        let mut inc = Tree::new();
        let mut bulk = Tree::new();
        let (mut a, mut b) = (vec![ROOT], vec![ROOT]);
        for &(p, name, dir, size, mtime) in spec {
            let id = inc.create(a[p], name, dir).unwrap();
            inc.set_attrs(id, size, mtime, 0.0);
            a.push(id);
            b.push(
                bulk.restore_node(b[p], name, dir, (size, mtime, 0.0))
                    .unwrap(),
            );
        }
        inc.set_suspect(a[4], true);
        bulk.set_suspect(b[4], true);
        bulk.finish_restore();
        assert_eq!(aggregates(&bulk), aggregates(&inc));
        assert_eq!(bulk.by_mtime, inc.by_mtime);
        assert_eq!(bulk.latest_mtime(ROOT), 11.0);
        assert_eq!(bulk.lookup("/a/b/f2"), Some(b[4]));
        assert_eq!(
            bulk.restore_node(b[1], "f1", false, (1, 1.0, 1.0)),
            Err(RestoreError::Duplicate)
        );
    }

    #[test]
    fn deferred_restore_equals_incremental_build_and_refuses_duplicates_at_the_end() {
        let mut inc = Tree::new();
        let mut bulk = Tree::new();
        let mut pending = Tree::begin_bulk_restore(10);
        let (mut a, mut b) = (vec![ROOT], vec![ROOT]);
        for i in 0..600usize {
            // Directories d0..d9 under the root, files spread over them.
            let (p, name, dir) = if i < 10 {
                (0, format!("d{i}"), true)
            } else {
                (1 + i % 10, format!("file-{i}.dat"), false)
            };
            let id = inc.create(a[p], &name, dir).unwrap();
            inc.set_attrs(id, i as u64, i as f64, 0.0);
            a.push(id);
            b.push(
                bulk.restore_node_deferred(
                    &mut pending,
                    b[p],
                    &name,
                    dir,
                    (i as u64, i as f64, 0.0),
                )
                .unwrap(),
            );
        }
        bulk.finish_restore_deferred(pending).unwrap();
        assert_eq!(aggregates(&bulk), aggregates(&inc));
        assert_eq!(bulk.by_mtime, inc.by_mtime);
        assert_eq!(bulk.lookup("/d3/file-13.dat"), Some(b[14]));
        assert_eq!(bulk.name_ix.group_count(), inc.name_ix.group_count());
        let piece = crate::fs::nameindex::Mask::of(b"file-59").unwrap();
        assert_eq!(
            bulk.name_ix.may_contain(0, &piece),
            inc.name_ix.may_contain(0, &piece)
        );
        for (i, &id) in b.iter().enumerate().skip(1) {
            assert_eq!(bulk.lookup(&inc.path_of(a[i])), Some(id));
        }

        // The same name twice under d0, reported once the index is built.
        let mut dup = Tree::new();
        let mut pending = Tree::begin_bulk_restore(4);
        let d = dup
            .restore_node_deferred(&mut pending, ROOT, "d", true, (0, 1.0, 0.0))
            .unwrap();
        for name in ["x", "y", "x"] {
            dup.restore_node_deferred(&mut pending, d, name, false, (0, 1.0, 0.0))
                .unwrap();
        }
        assert_eq!(
            dup.finish_restore_deferred(pending),
            Err(RestoreError::Duplicate)
        );
    }
}
