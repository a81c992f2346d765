//! A cache of directory path → node, in front of the component-by-component walk.
//!
//! Resolving a parent costs one hash probe per path component, each a likely cache miss in a
//! tree of millions of nodes. Rows cluster by directory (snapshots list one directory at a time,
//! realtime writers touch a few hot directories), so remembering recent directories removes most
//! of those probes. Any directory removal clears the cache, which keeps it trivially correct.

use super::state::HashMap;
use super::tree::NodeId;

/// Entries kept before the cache starts over (about 6 MB at most).
const CAPACITY: usize = 1 << 16;

#[derive(Default)]
pub(crate) struct DirCache {
    map: HashMap<Box<str>, NodeId>,
    last: Option<(Box<str>, NodeId)>,
}

impl DirCache {
    pub fn get(&mut self, path: &str) -> Option<NodeId> {
        if let Some((p, id)) = &self.last
            && p.as_ref() == path
        {
            return Some(*id);
        }
        let id = *self.map.get(path)?;
        self.last = Some((path.into(), id));
        Some(id)
    }

    pub fn insert(&mut self, path: &str, id: NodeId) {
        if self.map.len() >= CAPACITY {
            self.map.clear();
        }
        self.map.insert(path.into(), id);
        self.last = Some((path.into(), id));
    }

    pub fn clear(&mut self) {
        self.map.clear();
        self.last = None;
    }
}
