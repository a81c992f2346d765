//! The `(parent, name) → node` index, split into shards.
//!
//! One hash table of ten million entries would rehash all of them at once when it grows —
//! seconds under the view's write lock, during which every query waits. With 256 shards chosen
//! by hash bits that neither the bucket index nor the control tag uses, each growth rehashes
//! 1/256 of the entries, and growths of different shards happen at different times.

use hashbrown::HashTable;

use super::tree::NodeId;

const SHARD_BITS: u32 = 8;
const SHARDS: usize = 1 << SHARD_BITS;

pub struct ChildIndex {
    shards: Vec<HashTable<NodeId>>,
}

impl Default for ChildIndex {
    fn default() -> Self {
        ChildIndex {
            shards: (0..SHARDS).map(|_| HashTable::new()).collect(),
        }
    }
}

fn shard(hash: u64) -> usize {
    // Bits 32..40: hashbrown uses the low bits for the bucket and the top 7 for the tag.
    ((hash >> 32) as usize) & (SHARDS - 1)
}

impl ChildIndex {
    pub fn find(&self, hash: u64, eq: impl FnMut(&NodeId) -> bool) -> Option<NodeId> {
        self.shards[shard(hash)].find(hash, eq).copied()
    }

    pub fn insert(&mut self, hash: u64, id: NodeId, rehash: impl Fn(&NodeId) -> u64) {
        self.shards[shard(hash)].insert_unique(hash, id, rehash);
    }

    /// One probe for "find, else insert" (a restore checks and creates with it).
    pub fn entry(
        &mut self,
        hash: u64,
        eq: impl FnMut(&NodeId) -> bool,
        rehash: impl Fn(&NodeId) -> u64,
    ) -> hashbrown::hash_table::Entry<'_, NodeId> {
        self.shards[shard(hash)].entry(hash, eq, rehash)
    }

    pub fn remove(&mut self, hash: u64, id: NodeId) {
        if let Ok(entry) = self.shards[shard(hash)].find_entry(hash, |&n| n == id) {
            entry.remove();
        }
    }

    /// Room for `additional` more entries spread over the shards, so a bulk load does not
    /// rehash.
    pub fn reserve(&mut self, additional: usize, rehash: impl Fn(&NodeId) -> u64) {
        let per = additional / SHARDS + additional / SHARDS / 8 + 1;
        for s in &mut self.shards {
            s.reserve(per, &rehash);
        }
    }

    pub fn capacity(&self) -> usize {
        self.shards.iter().map(HashTable::capacity).sum()
    }
}

/// Child-index entries collected during a restore and inserted shard by shard at the end.
///
/// Inserting in node-id order touches a random place of the whole index (tens of MB at ten
/// million nodes) for every node; one shard's table is 1/256 of it and stays in cache while all
/// of that shard's entries go in. Costs 12 bytes per node until the restore ends.
pub struct Deferred {
    hashes: Vec<Vec<u64>>,
    ids: Vec<Vec<NodeId>>,
}

impl Deferred {
    /// Room for `expected` entries spread over the shards.
    pub fn with_capacity(expected: usize) -> Self {
        let per = expected / SHARDS + expected / SHARDS / 8 + 1;
        Deferred {
            hashes: (0..SHARDS).map(|_| Vec::with_capacity(per)).collect(),
            ids: (0..SHARDS).map(|_| Vec::with_capacity(per)).collect(),
        }
    }

    pub fn push(&mut self, hash: u64, id: NodeId) {
        let s = shard(hash);
        self.hashes[s].push(hash);
        self.ids[s].push(id);
    }
}

impl ChildIndex {
    /// Inserts the entries of `d`; `same(existing, new)` tells whether two nodes have the same
    /// parent and name. A second thread takes half of the shards. Returns a node whose key was
    /// already present (the index then holds part of `d`, so the caller discards the tree).
    pub fn insert_deferred(
        &mut self,
        d: Deferred,
        same: impl Fn(NodeId, NodeId) -> bool + Sync,
        rehash: impl Fn(&NodeId) -> u64 + Sync,
    ) -> Result<(), NodeId> {
        let (same, rehash) = (&same, &rehash);
        let (mut hashes, mut ids) = (d.hashes, d.ids);
        let half = (hashes.split_off(SHARDS / 2), ids.split_off(SHARDS / 2));
        let (mine, theirs) = self.shards.split_at_mut(SHARDS / 2);
        std::thread::scope(|s| {
            // The half goes over a channel, so a thread that cannot be started loses nothing.
            let (tx, rx) = std::sync::mpsc::channel::<Half<'_>>();
            let other = std::thread::Builder::new()
                .name("restore-index".into())
                .spawn_scoped(s, move || {
                    rx.recv()
                        .map(|(t, (h, i))| fill(t, h, i, same, rehash))
                        .ok()
                });
            let inline = match other {
                Ok(handle) => match tx.send((theirs, half)) {
                    Ok(()) => {
                        let r = fill(mine, hashes, ids, same, rehash);
                        return match handle.join() {
                            Ok(Some(theirs)) => r.and(theirs),
                            Ok(None) => r,
                            Err(panic) => std::panic::resume_unwind(panic),
                        };
                    }
                    Err(std::sync::mpsc::SendError(back)) => back,
                },
                Err(e) => {
                    tracing::debug!(error = %e, "no second thread for the child index");
                    (theirs, half)
                }
            };
            fill(mine, hashes, ids, same, rehash)?;
            let (t, (h, i)) = inline;
            fill(t, h, i, same, rehash)
        })
    }
}

/// Shard tables with their deferred hashes and ids.
type Half<'a> = (
    &'a mut [HashTable<NodeId>],
    (Vec<Vec<u64>>, Vec<Vec<NodeId>>),
);

fn fill(
    tables: &mut [HashTable<NodeId>],
    hashes: Vec<Vec<u64>>,
    ids: Vec<Vec<NodeId>>,
    same: &(impl Fn(NodeId, NodeId) -> bool + Sync),
    rehash: &(impl Fn(&NodeId) -> u64 + Sync),
) -> Result<(), NodeId> {
    for ((table, hashes), ids) in tables.iter_mut().zip(hashes).zip(ids) {
        for (&h, &id) in hashes.iter().zip(&ids) {
            match table.entry(h, |&n| same(n, id), rehash) {
                hashbrown::hash_table::Entry::Occupied(_) => return Err(id),
                hashbrown::hash_table::Entry::Vacant(v) => {
                    v.insert(id);
                }
            }
        }
    }
    Ok(())
}
