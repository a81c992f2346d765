//! Bulk construction of a tree from a snapshot (issue 11: restart time).
//!
//! A restore creates every node once, in depth-first pre-order, into an empty tree. Doing that
//! through [`Tree::create`] and [`Tree::set_attrs`] walks every node's ancestors twice (counts,
//! bytes, latest mtime) and moves every directory in the by-mtime index twice; for ten million
//! nodes that was most of the restart. Here a node is created with its attributes and one probe
//! of the child index (which also finds a repeated name), and [`Tree::finish_restore`] then
//! computes every directory's aggregates in one pass from the leaves up and builds the
//! by-mtime index in one sorted load.

use hashbrown::hash_table::Entry;

use super::{
    DirData, F_DIR, F_LIVE, MAX_DIR_SLOTS, NIL, Node, NodeId, ROOT, Tree, TreeFull, UNKNOWN,
    f64_key,
};

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
        let next_id = self.nodes.len();
        if next_id >= NIL as usize - 1 || !self.free_nodes.is_empty() {
            return Err(RestoreError::Full);
        }
        let id = next_id as NodeId;
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
        let name_ref = match self.names.push(name) {
            Ok(r) => r,
            Err(_) => {
                self.index.remove(h, id);
                return Err(RestoreError::Full);
            }
        };
        let dir = if is_dir {
            if self.dirs.len() >= MAX_DIR_SLOTS {
                self.index.remove(h, id);
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
        self.name_ix.insert(id, name);
        self.generation += 1;
        Ok(id)
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
}
