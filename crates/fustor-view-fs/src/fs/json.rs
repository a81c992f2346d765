//! Streaming JSON of nodes (`query-api.md` §3.1).
//!
//! Nodes are serialised straight from the arena under the read lock, without building an
//! intermediate `serde_json::Value` tree: a 10,000-entry listing is one pass over the children.

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

use super::state::FsState;
use super::tree::{NodeId, ROOT};

/// How far below a node the listing goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// `recursive=true` without `max_depth`.
    Full,
    /// `max_depth=N`: nodes N levels down have no `children` key.
    Limited(u32),
    /// `recursive=false`: a directory shows `"children": []`.
    NoRecurse,
}

pub(crate) struct NodeJson<'a> {
    pub st: &'a FsState,
    pub id: NodeId,
    pub path: String,
    pub depth: Depth,
    pub only_path: bool,
    pub extra: &'a [(&'a str, Value)],
}

impl Serialize for NodeJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let tree = &self.st.tree;
        let node = tree.node(self.id);
        let is_dir = node.is_dir();
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(
            "name",
            if self.id == ROOT {
                ""
            } else {
                tree.name(self.id)
            },
        )?;
        m.serialize_entry("content_type", if is_dir { "directory" } else { "file" })?;
        m.serialize_entry("path", &self.path)?;
        if !self.only_path {
            let (agent, uri) = self.st.lineages.get(node.lineage);
            m.serialize_entry("size", &node.size)?;
            m.serialize_entry("modified_time", &node.mtime)?;
            m.serialize_entry("created_time", &node.ctime)?;
            m.serialize_entry("integrity_suspect", &node.suspect())?;
            if is_dir {
                m.serialize_entry("audit_skipped", &node.audit_skipped())?;
            }
            m.serialize_entry("last_agent_id", &agent)?;
            m.serialize_entry("source_uri", &uri)?;
            m.serialize_entry("agent_missing", &!node.known_by_agent())?;
        }
        if is_dir {
            match self.depth {
                Depth::Limited(0) => {}
                Depth::NoRecurse => m.serialize_entry("children", &[(); 0])?,
                Depth::Full | Depth::Limited(_) => {
                    m.serialize_entry("children", &ChildrenJson { parent: self })?
                }
            }
        }
        for (k, v) in self.extra {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

struct ChildrenJson<'a, 'b> {
    parent: &'b NodeJson<'a>,
}

impl Serialize for ChildrenJson<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let p = self.parent;
        let depth = match p.depth {
            Depth::Limited(n) => Depth::Limited(n.saturating_sub(1)),
            d => d,
        };
        let tree = &p.st.tree;
        let mut seq = s.serialize_seq(Some(
            tree.dir_data(p.id).map_or(0, |d| d.child_count as usize),
        ))?;
        for c in tree.children(p.id) {
            let name = tree.name(c);
            let mut path = String::with_capacity(p.path.len() + 1 + name.len());
            if p.path != "/" {
                path.push_str(&p.path);
            }
            path.push('/');
            path.push_str(name);
            seq.serialize_element(&NodeJson {
                st: p.st,
                id: c,
                path,
                depth,
                only_path: p.only_path,
                extra: &[],
            })?;
        }
        seq.end()
    }
}
