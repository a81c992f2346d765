//! Interned lineage: which agent and source last wrote a node.
//!
//! There are a handful of agents per view, so a node stores a 12-bit id instead of two strings.

use std::collections::HashMap;
use std::sync::Arc;

use super::tree::MAX_LINEAGE_ID;

pub type LineageId = u16;

type Pair = (Option<Arc<str>>, Option<Arc<str>>);

#[derive(Debug)]
pub struct Lineages {
    pairs: Vec<Pair>,
    ids: HashMap<Pair, LineageId>,
    /// Last merge, since consecutive rows almost always repeat it.
    last: Option<(LineageId, LineageId, LineageId)>,
    overflow_warned: bool,
}

impl Default for Lineages {
    fn default() -> Self {
        let mut l = Lineages {
            pairs: Vec::new(),
            ids: HashMap::new(),
            last: None,
            overflow_warned: false,
        };
        l.intern((None, None));
        l
    }
}

fn nonempty(s: Option<&str>) -> Option<Arc<str>> {
    s.filter(|s| !s.is_empty()).map(Arc::from)
}

impl Lineages {
    fn intern(&mut self, pair: Pair) -> LineageId {
        if let Some(&id) = self.ids.get(&pair) {
            return id;
        }
        // A node keeps 12 bits of lineage next to its owner id (see `tree::Node`).
        let Some(id) = LineageId::try_from(self.pairs.len())
            .ok()
            .filter(|&id| id <= MAX_LINEAGE_ID)
        else {
            if !self.overflow_warned {
                tracing::warn!(
                    max = MAX_LINEAGE_ID,
                    "too many distinct (agent_id, source_uri) pairs; new lineage is not recorded"
                );
                self.overflow_warned = true;
            }
            return 0;
        };
        self.pairs.push(pair.clone());
        self.ids.insert(pair, id);
        id
    }

    /// The event's own lineage (fields may be absent).
    pub fn event(&mut self, agent_id: Option<&str>, source_uri: Option<&str>) -> LineageId {
        self.intern((nonempty(agent_id), nonempty(source_uri)))
    }

    /// Node lineage after a write: each non-empty field of the event replaces the node's (§7.1).
    pub fn merge(&mut self, node: LineageId, event: LineageId) -> LineageId {
        if node == event {
            return node;
        }
        if let Some((n, e, r)) = self.last
            && n == node
            && e == event
        {
            return r;
        }
        let (na, nu) = self
            .pairs
            .get(node as usize)
            .cloned()
            .unwrap_or((None, None));
        let (ea, eu) = self
            .pairs
            .get(event as usize)
            .cloned()
            .unwrap_or((None, None));
        let r = self.intern((ea.or(na), eu.or(nu)));
        self.last = Some((node, event, r));
        r
    }

    /// Every interned pair in id order, for persistence.
    pub(crate) fn pairs(&self) -> impl Iterator<Item = (Option<&str>, Option<&str>)> {
        self.pairs.iter().map(|(a, u)| (a.as_deref(), u.as_deref()))
    }

    /// Re-interns persisted pairs in order, so node lineage ids keep their meaning. `None` if
    /// the list is not one this table could have produced (duplicates, or not starting with the
    /// empty pair).
    pub(crate) fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (Option<&'a str>, Option<&'a str>)>,
    ) -> Option<Lineages> {
        let mut l = Lineages {
            pairs: Vec::new(),
            ids: HashMap::new(),
            last: None,
            overflow_warned: false,
        };
        for (i, (a, u)) in pairs.into_iter().enumerate() {
            let pair = (a.map(Arc::from), u.map(Arc::from));
            if l.ids.contains_key(&pair) || l.pairs.len() != i || i > usize::from(u16::MAX) {
                return None;
            }
            l.intern(pair);
        }
        (l.pairs.first() == Some(&(None, None))).then_some(l)
    }

    pub fn get(&self, id: LineageId) -> (Option<&str>, Option<&str>) {
        match self.pairs.get(id as usize) {
            Some((a, u)) => (a.as_deref(), u.as_deref()),
            None => (None, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_old_fields_when_new_are_empty() {
        let mut l = Lineages::default();
        let a = l.event(Some("a"), Some("nfs://x"));
        let b = l.event(Some("b"), None);
        let m = l.merge(a, b);
        assert_eq!(l.get(m), (Some("b"), Some("nfs://x")));
        let none = l.event(Some(""), None);
        assert_eq!(l.merge(m, none), m);
    }

    #[test]
    fn ids_stop_at_what_a_node_holds() {
        let mut l = Lineages::default();
        let mut last = 0;
        for i in 0..=u32::from(MAX_LINEAGE_ID) + 5 {
            let id = l.event(Some(&format!("agent{i}")), None);
            if id != 0 {
                last = id;
            }
        }
        assert_eq!(last, MAX_LINEAGE_ID);
        assert_eq!(l.event(Some("one more"), None), 0);
    }
}
