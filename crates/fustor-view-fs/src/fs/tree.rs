//! The arena tree behind one fs view.
//!
//! Built for tens of millions of nodes: nodes live in one `Vec` and refer to each other by `u32`
//! index; a name is stored once in a [`NameArena`]; children are found through one global hash
//! table keyed by `(parent, name)` (about 5 bytes per node) and listed through intrusive sibling
//! links. Directories carry subtree aggregates (file/dir counts, bytes, suspect files, latest
//! mtime) maintained incrementally, so the stats of any directory cost O(1) after the path lookup.
//! A node is 56 bytes, owner id included (issue 14); see `docs/performance.md` for the measured cost per file.

use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hasher};

use super::childindex::ChildIndex;
use super::nameindex::{BLOCK, GROUP, Mask, NameIndex};
use super::names::{NameArena, NameRef};
use super::owners::{OwnerId, Owners, Ownership, UNKNOWN};

mod restore;
pub use restore::{BulkRestore, RestoreError};

pub type NodeId = u32;
pub const NIL: NodeId = u32::MAX;
pub const ROOT: NodeId = 0;

const F_DIR: u8 = 1;
const F_SUSPECT: u8 = 2;
const F_KNOWN: u8 = 4;
const F_AUDIT_SKIPPED: u8 = 8;
const F_LIVE: u8 = 16;

/// Bits of [`Node::dir_flags`] that hold the directory slot; the top 5 hold the flags.
const DIR_BITS: u32 = 27;
const DIR_MASK: u32 = (1 << DIR_BITS) - 1;
/// Directory slots a tree can hold: the all-ones slot stands for "not a directory".
pub const MAX_DIR_SLOTS: usize = DIR_MASK as usize;
/// Bits of [`Node::lineage_owner`] that hold the owner id; the top 12 hold the lineage.
const OWNER_BITS: u32 = 20;
const OWNER_MASK: u32 = (1 << OWNER_BITS) - 1;
/// Largest owner id a node can hold (about a million distinct `(uid, gid, mode)` triples).
pub const MAX_OWNER_ID: OwnerId = OWNER_MASK;
/// Largest lineage id a node can hold (4,095 distinct `(agent_id, source_uri)` pairs).
pub const MAX_LINEAGE_ID: u16 = (u32::MAX >> OWNER_BITS) as u16;

/// One file or directory, in 56 bytes. Issue 14's owners must cost at most 8 B per file; a
/// `u32` owner id next to the other small fields made the node 64 bytes, so the flags share a
/// word with the directory slot and the lineage one with the owner id, and the node did not grow.
#[derive(Debug, Clone)]
pub struct Node {
    name: NameRef,
    pub parent: NodeId,
    next: NodeId,
    prev: NodeId,
    /// Low [`DIR_BITS`]: index into the directory table, all ones for files; high bits: flags.
    dir_flags: u32,
    /// Low [`OWNER_BITS`]: interned `(uid, gid, mode)` ([`Owners`], 0 = not reported); high
    /// bits: interned `(agent_id, source_uri)` (0 = none).
    lineage_owner: u32,
    pub size: u64,
    pub mtime: f64,
    pub ctime: f64,
    /// Epoch of the last realtime confirmation, 0.0 if never.
    pub last_updated: f64,
}

const _: () = assert!(std::mem::size_of::<Node>() == 56);

impl Node {
    fn new(name: NameRef, parent: NodeId, dir: u32, flags: u8) -> Self {
        let mut n = Node {
            name,
            parent,
            next: NIL,
            prev: NIL,
            dir_flags: 0,
            lineage_owner: 0,
            size: 0,
            mtime: 0.0,
            ctime: 0.0,
            last_updated: 0.0,
        };
        n.set_dir(dir);
        n.set_flags(flags);
        n
    }
    fn flags(&self) -> u8 {
        (self.dir_flags >> DIR_BITS) as u8
    }
    fn set_flags(&mut self, f: u8) {
        self.dir_flags = (self.dir_flags & DIR_MASK) | (u32::from(f) << DIR_BITS);
    }
    /// The directory slot, [`NIL`] for a file.
    fn dir(&self) -> u32 {
        match self.dir_flags & DIR_MASK {
            DIR_MASK => NIL,
            d => d,
        }
    }
    fn set_dir(&mut self, d: u32) {
        let d = if d == NIL { DIR_MASK } else { d & DIR_MASK };
        self.dir_flags = (self.dir_flags & !DIR_MASK) | d;
    }
    pub fn lineage(&self) -> u16 {
        (self.lineage_owner >> OWNER_BITS) as u16
    }
    fn set_lineage(&mut self, l: u16) {
        let l = if l > MAX_LINEAGE_ID { 0 } else { u32::from(l) };
        self.lineage_owner = (self.lineage_owner & OWNER_MASK) | (l << OWNER_BITS);
    }
    fn set_owner(&mut self, o: OwnerId) {
        let o = if o > MAX_OWNER_ID { UNKNOWN } else { o };
        self.lineage_owner = (self.lineage_owner & !OWNER_MASK) | o;
    }
    pub fn is_dir(&self) -> bool {
        self.flags() & F_DIR != 0
    }
    pub fn suspect(&self) -> bool {
        self.flags() & F_SUSPECT != 0
    }
    pub fn known_by_agent(&self) -> bool {
        self.flags() & F_KNOWN != 0
    }
    pub fn audit_skipped(&self) -> bool {
        self.flags() & F_AUDIT_SKIPPED != 0
    }
    fn live(&self) -> bool {
        self.flags() & F_LIVE != 0
    }
    pub fn owner(&self) -> OwnerId {
        self.lineage_owner & OWNER_MASK
    }
    /// A live regular file (a linear scan meets free slots and directories too).
    pub fn is_live_file(&self) -> bool {
        self.flags() & (F_LIVE | F_DIR) == F_LIVE
    }
    fn set_flag(&mut self, f: u8, on: bool) {
        let flags = if on {
            self.flags() | f
        } else {
            self.flags() & !f
        };
        self.set_flags(flags);
    }
}

/// Subtree aggregates of one directory (strict descendants, except `latest` which includes the
/// directory's own mtime).
#[derive(Debug, Clone)]
pub struct DirData {
    node: NodeId,
    first_child: NodeId,
    last_child: NodeId,
    pub child_count: u32,
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
    pub suspect_files: u64,
    latest: f64,
    /// `latest` may be too high after a removal; fixed by [`Tree::fix_latest`] before any reader
    /// can see it.
    dirty: bool,
}

impl DirData {
    /// A directory without children, for `node`.
    fn empty(node: NodeId) -> Self {
        DirData {
            node,
            first_child: NIL,
            last_child: NIL,
            child_count: 0,
            files: 0,
            dirs: 0,
            bytes: 0,
            suspect_files: 0,
            latest: 0.0,
            dirty: false,
        }
    }
}

/// What a removed subtree contributed to each ancestor.
#[derive(Debug, Clone, Copy)]
struct Contribution {
    files: u64,
    dirs: u64,
    bytes: u64,
    suspects: u64,
    latest: f64,
}

/// Total-order key for an f64 (for the by-mtime index).
fn f64_key(v: f64) -> u64 {
    let b = v.to_bits();
    if b >> 63 == 1 { !b } else { b | (1 << 63) }
}

fn key_to_f64(k: u64) -> f64 {
    let b = if k >> 63 == 1 { k & !(1 << 63) } else { !k };
    f64::from_bits(b)
}

/// Refused because the node limit or the name arena is exhausted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeFull;

pub struct Tree {
    nodes: Vec<Node>,
    free_nodes: Vec<NodeId>,
    dirs: Vec<DirData>,
    free_dirs: Vec<u32>,
    names: NameArena,
    index: ChildIndex,
    hasher: foldhash::fast::RandomState,
    dirty: Vec<u32>,
    /// Non-root directories ordered by mtime, for `staleness_seconds`.
    by_mtime: BTreeSet<(u64, NodeId)>,
    live: usize,
    name_ix: NameIndex,
    owners: Owners,
    /// Counts node creations and removals: a reader that let the writer in between two steps
    /// knows from it whether the node ids it holds may now name other nodes.
    generation: u64,
}

impl Default for Tree {
    fn default() -> Self {
        Self::new()
    }
}

fn hash_of(h: &foldhash::fast::RandomState, parent: NodeId, name: &str) -> u64 {
    hash_of_bytes(h, parent, name.as_bytes())
}

fn hash_of_bytes(h: &foldhash::fast::RandomState, parent: NodeId, name: &[u8]) -> u64 {
    let mut s = h.build_hasher();
    s.write_u32(parent);
    s.write(name);
    s.finish()
}

impl Tree {
    pub fn new() -> Self {
        let root = Node::new(0, NIL, 0, F_DIR | F_LIVE);
        let root_dir = DirData::empty(ROOT);
        Tree {
            nodes: vec![root],
            free_nodes: Vec::new(),
            dirs: vec![root_dir],
            free_dirs: Vec::new(),
            names: NameArena::new(),
            index: ChildIndex::default(),
            hasher: foldhash::fast::RandomState::default(),
            dirty: Vec::new(),
            by_mtime: BTreeSet::new(),
            live: 1,
            name_ix: NameIndex::default(),
            owners: Owners::new(),
            generation: 0,
        }
    }

    /// Nodes including the root.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id as usize]
    }

    pub fn name(&self, id: NodeId) -> &str {
        self.names.get(self.nodes[id as usize].name)
    }

    pub fn name_bytes(&self, id: NodeId) -> &[u8] {
        self.names.get_bytes(self.nodes[id as usize].name)
    }

    pub fn dir_data(&self, id: NodeId) -> Option<&DirData> {
        let d = self.nodes.get(id as usize)?.dir();
        if d == NIL {
            None
        } else {
            self.dirs.get(d as usize)
        }
    }

    /// Latest mtime of the node and everything below it.
    pub fn latest_mtime(&self, id: NodeId) -> f64 {
        match self.dir_data(id) {
            Some(d) => d.latest,
            None => self.nodes[id as usize].mtime,
        }
    }

    pub fn find_child(&self, parent: NodeId, name: &str) -> Option<NodeId> {
        let h = hash_of(&self.hasher, parent, name);
        self.index.find(h, |&n| {
            let node = &self.nodes[n as usize];
            node.parent == parent && self.names.get_bytes(node.name) == name.as_bytes()
        })
    }

    /// Looks up a normalised absolute path.
    pub fn lookup(&self, path: &str) -> Option<NodeId> {
        if path == "/" {
            return Some(ROOT);
        }
        let rest = path.strip_prefix('/')?;
        self.lookup_from(ROOT, rest)
    }

    /// Looks up `rel` (components separated by `/`) below `base`.
    pub fn lookup_from(&self, base: NodeId, rel: &str) -> Option<NodeId> {
        let mut cur = base;
        for comp in rel.split('/') {
            cur = self.find_child(cur, comp)?;
        }
        Some(cur)
    }

    /// Iterates the direct children of a directory (none for a file).
    pub fn children(&self, id: NodeId) -> Children<'_> {
        let first = self.dir_data(id).map(|d| d.first_child).unwrap_or(NIL);
        Children {
            tree: self,
            cur: first,
        }
    }

    pub fn path_of(&self, id: NodeId) -> String {
        if id == ROOT {
            return "/".to_string();
        }
        let mut parts = Vec::new();
        let mut cur = id;
        while cur != ROOT && cur != NIL {
            parts.push(self.name(cur));
            cur = self.nodes[cur as usize].parent;
        }
        let mut s = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
        for p in parts.iter().rev() {
            s.push('/');
            s.push_str(p);
        }
        s
    }

    /// Creates a node with zeroed attributes under `parent` (which must be a directory).
    pub fn create(&mut self, parent: NodeId, name: &str, is_dir: bool) -> Result<NodeId, TreeFull> {
        let name_ref = self.names.push(name).map_err(|_| TreeFull)?;
        let dir = if is_dir {
            let data = DirData::empty(NIL);
            match self.free_dirs.pop() {
                Some(d) => {
                    self.dirs[d as usize] = data;
                    d
                }
                None => {
                    if self.dirs.len() >= MAX_DIR_SLOTS {
                        return Err(TreeFull);
                    }
                    self.dirs.push(data);
                    (self.dirs.len() - 1) as u32
                }
            }
        } else {
            NIL
        };
        let node = Node::new(
            name_ref,
            parent,
            dir,
            F_LIVE | if is_dir { F_DIR } else { 0 },
        );
        let id = match self.free_nodes.pop() {
            Some(id) => {
                self.nodes[id as usize] = node;
                id
            }
            None => {
                if self.nodes.len() >= NIL as usize - 1 {
                    return Err(TreeFull);
                }
                self.nodes.push(node);
                (self.nodes.len() - 1) as NodeId
            }
        };
        if is_dir {
            self.dirs[dir as usize].node = id;
            self.by_mtime.insert((f64_key(0.0), id));
        }
        self.link_last_child(parent, id);
        let h = hash_of(&self.hasher, parent, name);
        let (nodes, names, hasher) = (&self.nodes, &self.names, &self.hasher);
        self.index.insert(h, id, |&n| {
            let node = &nodes[n as usize];
            hash_of_bytes(hasher, node.parent, names.get_bytes(node.name))
        });
        self.live += 1;
        self.name_ix.insert(id, name);
        self.generation += 1;
        self.for_ancestors(id, |d| {
            if is_dir {
                d.dirs += 1;
            } else {
                d.files += 1;
            }
        });
        if !is_dir {
            self.owners.usage_mut(UNKNOWN).add(0);
        }
        if is_dir {
            // A new directory's own latest is its (zero) mtime; ancestors need no change.
            self.bump_latest(self.nodes[parent as usize].dir(), 0.0);
        }
        Ok(id)
    }

    fn for_ancestors(&mut self, id: NodeId, mut f: impl FnMut(&mut DirData)) {
        let mut cur = self.nodes[id as usize].parent;
        while cur != NIL {
            let d = self.nodes[cur as usize].dir() as usize;
            f(&mut self.dirs[d]);
            cur = self.nodes[cur as usize].parent;
        }
    }

    /// Raises `latest` from directory `d` upward while `m` is larger.
    fn bump_latest(&mut self, mut d: u32, m: f64) {
        while d != NIL {
            let data = &mut self.dirs[d as usize];
            if m > data.latest {
                data.latest = m;
            } else {
                return;
            }
            let parent = self.nodes[data.node as usize].parent;
            d = if parent == NIL {
                NIL
            } else {
                self.nodes[parent as usize].dir()
            };
        }
    }

    /// A contribution equal to `old` left directory `d`: it and the ancestors whose latest came
    /// from it must be recomputed.
    fn lower_latest(&mut self, mut d: u32, old: f64) {
        while d != NIL {
            let data = &mut self.dirs[d as usize];
            if data.latest > old {
                return;
            }
            if !data.dirty {
                data.dirty = true;
                self.dirty.push(d);
            }
            let parent = self.nodes[data.node as usize].parent;
            d = if parent == NIL {
                NIL
            } else {
                self.nodes[parent as usize].dir()
            };
        }
    }

    /// Sets size and times, keeping every aggregate exact.
    /// Links `id` as the last child of `parent`: listings keep insertion order, like the
    /// reference.
    fn link_last_child(&mut self, parent: NodeId, id: NodeId) {
        let pd = self.nodes[parent as usize].dir() as usize;
        let tail = self.dirs[pd].last_child;
        self.nodes[id as usize].prev = tail;
        if tail == NIL {
            self.dirs[pd].first_child = id;
        } else {
            self.nodes[tail as usize].next = id;
        }
        self.dirs[pd].last_child = id;
        self.dirs[pd].child_count += 1;
    }

    pub fn set_attrs(&mut self, id: NodeId, size: u64, mtime: f64, ctime: f64) {
        let (old_size, old_mtime, is_dir, parent) = {
            let n = &self.nodes[id as usize];
            (n.size, n.mtime, n.is_dir(), n.parent)
        };
        {
            let n = &mut self.nodes[id as usize];
            n.size = size;
            n.mtime = mtime;
            n.ctime = ctime;
        }
        if !is_dir && old_size != size {
            self.for_ancestors(id, |d| {
                d.bytes = d.bytes.wrapping_sub(old_size).wrapping_add(size)
            });
            let u = self.owners.usage_mut(self.nodes[id as usize].owner());
            u.bytes = u.bytes.wrapping_sub(old_size).wrapping_add(size);
        }
        if old_mtime.to_bits() == mtime.to_bits() {
            return;
        }
        if is_dir && id != ROOT {
            self.by_mtime.remove(&(f64_key(old_mtime), id));
            self.by_mtime.insert((f64_key(mtime), id));
        }
        let start = if is_dir {
            self.nodes[id as usize].dir()
        } else {
            self.nodes[parent as usize].dir()
        };
        if mtime > old_mtime {
            self.bump_latest(start, mtime);
        } else {
            self.lower_latest(start, old_mtime);
        }
    }

    pub fn set_suspect(&mut self, id: NodeId, on: bool) {
        let n = &mut self.nodes[id as usize];
        if n.suspect() == on {
            return;
        }
        n.set_flag(F_SUSPECT, on);
        if !n.is_dir() {
            self.for_ancestors(id, |d| {
                if on {
                    d.suspect_files += 1;
                } else {
                    d.suspect_files = d.suspect_files.saturating_sub(1);
                }
            });
        }
    }

    pub fn set_known(&mut self, id: NodeId, on: bool) {
        self.nodes[id as usize].set_flag(F_KNOWN, on);
    }

    pub fn set_audit_skipped(&mut self, id: NodeId, on: bool) {
        self.nodes[id as usize].set_flag(F_AUDIT_SKIPPED, on);
    }

    pub fn set_last_updated(&mut self, id: NodeId, t: f64) {
        self.nodes[id as usize].last_updated = t;
    }

    pub fn set_lineage(&mut self, id: NodeId, l: u16) {
        self.nodes[id as usize].set_lineage(l);
    }

    /// Sets owner, group and mode, moving a file's usage to its new owner.
    pub fn set_owner(&mut self, id: NodeId, o: Ownership) {
        let new = self.owners.intern(o);
        let (old, is_dir, size) = {
            let n = &self.nodes[id as usize];
            (n.owner(), n.is_dir(), n.size)
        };
        if old == new {
            return;
        }
        self.nodes[id as usize].set_owner(new);
        if !is_dir {
            self.owners.usage_mut(old).sub(size);
            self.owners.usage_mut(new).add(size);
        }
    }

    pub fn owners(&self) -> &Owners {
        &self.owners
    }

    pub fn owners_mut(&mut self) -> &mut Owners {
        &mut self.owners
    }

    /// The node's owner, group and mode, if an agent reported them.
    pub fn ownership(&self, id: NodeId) -> Option<Ownership> {
        self.owners.get(self.nodes[id as usize].owner())
    }

    /// Every node of the subtree rooted at `id`, parents before children.
    pub fn collect_subtree(&self, id: NodeId) -> Vec<NodeId> {
        let mut out = vec![id];
        let mut i = 0;
        while i < out.len() {
            let n = out[i];
            out.extend(self.children(n));
            i += 1;
        }
        out
    }

    /// Detaches `id` from its parent and frees every node in `subtree` (from
    /// [`Tree::collect_subtree`]). The root cannot be removed.
    pub fn remove_collected(&mut self, id: NodeId, subtree: &[NodeId]) {
        if id == ROOT || !self.nodes[id as usize].live() {
            return;
        }
        let c = self.contribution(id);
        self.for_ancestors(id, |d| {
            d.files = d.files.saturating_sub(c.files);
            d.dirs = d.dirs.saturating_sub(c.dirs);
            d.bytes = d.bytes.wrapping_sub(c.bytes);
            d.suspect_files = d.suspect_files.saturating_sub(c.suspects);
        });
        let parent = self.nodes[id as usize].parent;
        self.lower_latest(self.nodes[parent as usize].dir(), c.latest);
        self.unlink(id);
        for &n in subtree {
            self.free_node(n);
        }
    }

    fn contribution(&self, id: NodeId) -> Contribution {
        let n = &self.nodes[id as usize];
        match self.dir_data(id) {
            Some(d) => Contribution {
                files: d.files,
                dirs: d.dirs + 1,
                bytes: d.bytes,
                suspects: d.suspect_files,
                latest: d.latest,
            },
            None => Contribution {
                files: 1,
                dirs: 0,
                bytes: n.size,
                suspects: u64::from(n.suspect()),
                latest: n.mtime,
            },
        }
    }

    fn unlink(&mut self, id: NodeId) {
        let (parent, prev, next) = {
            let n = &self.nodes[id as usize];
            (n.parent, n.prev, n.next)
        };
        let pd = self.nodes[parent as usize].dir() as usize;
        if prev == NIL {
            self.dirs[pd].first_child = next;
        } else {
            self.nodes[prev as usize].next = next;
        }
        if next == NIL {
            self.dirs[pd].last_child = prev;
        } else {
            self.nodes[next as usize].prev = prev;
        }
        self.dirs[pd].child_count = self.dirs[pd].child_count.saturating_sub(1);
    }

    fn free_node(&mut self, id: NodeId) {
        let (name, parent, dir, mtime, live, owner, size) = {
            let n = &self.nodes[id as usize];
            (
                n.name,
                n.parent,
                n.dir(),
                n.mtime,
                n.live(),
                n.owner(),
                n.size,
            )
        };
        if !live || id == ROOT {
            return;
        }
        if dir == NIL {
            self.owners.usage_mut(owner).sub(size);
        }
        let h = hash_of(&self.hasher, parent, self.names.get(name));
        self.index.remove(h, id);
        self.name_ix.removed(id);
        self.generation += 1;
        self.names.free(name);
        if dir != NIL {
            self.by_mtime.remove(&(f64_key(mtime), id));
            self.dirs[dir as usize].node = NIL;
            self.dirs[dir as usize].dirty = false;
            self.free_dirs.push(dir);
        }
        let n = &mut self.nodes[id as usize];
        n.set_flags(0);
        n.set_owner(UNKNOWN);
        n.set_dir(NIL);
        n.parent = NIL;
        n.next = NIL;
        n.prev = NIL;
        self.free_nodes.push(id);
        self.live -= 1;
    }

    /// Recomputes every directory whose latest mtime may be stale. Called at the end of each
    /// write operation, so readers always see exact aggregates.
    pub fn fix_latest(&mut self) {
        while let Some(d) = self.dirty.pop() {
            if self.dirs[d as usize].dirty && self.dirs[d as usize].node != NIL {
                self.recompute_latest(d);
            }
        }
        let (nodes, names) = (&self.nodes, &self.names);
        self.name_ix.rebuild_stale(|id| {
            nodes
                .get(id as usize)
                .filter(|n| n.live())
                .map(|n| names.get(n.name))
        });
    }

    /// See the field: equal generations mean every node id still names the same node.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Continues the count of a tree this one replaces (a view reset), so a reader holding ids
    /// of the old tree sees a change.
    pub fn continue_generation(&mut self, previous: &Tree) {
        self.generation = previous.generation + 1;
    }

    /// Number of name-index groups; group `g` covers node ids `g * 1024 .. (g + 1) * 1024`.
    pub fn name_groups(&self) -> usize {
        self.name_ix.group_count()
    }

    /// The live nodes of group `g` whose name may contain the piece of `mask` (a superset: the
    /// caller checks each name).
    pub fn name_candidates(&self, g: usize, mask: &Mask, mut f: impl FnMut(NodeId)) {
        let mut blocks = self.name_ix.may_contain(g, mask);
        while blocks != 0 {
            let j = blocks.trailing_zeros() as usize;
            blocks &= blocks - 1;
            let first = (g * GROUP + j * BLOCK).max(1);
            let last = (g * GROUP + (j + 1) * BLOCK).min(self.nodes.len());
            for id in first..last {
                if self.nodes[id].live() {
                    f(id as NodeId);
                }
            }
        }
    }

    /// Whether `id` is a live node (ids from an earlier read may have been freed since).
    pub fn is_live(&self, id: NodeId) -> bool {
        self.nodes.get(id as usize).is_some_and(Node::live)
    }

    fn recompute_latest(&mut self, d: u32) -> f64 {
        let node = self.dirs[d as usize].node;
        let mut latest = self.nodes[node as usize].mtime;
        let mut c = self.dirs[d as usize].first_child;
        while c != NIL {
            let (cdir, cm, next) = {
                let n = &self.nodes[c as usize];
                (n.dir(), n.mtime, n.next)
            };
            let v = if cdir == NIL {
                cm
            } else if self.dirs[cdir as usize].dirty {
                self.recompute_latest(cdir)
            } else {
                self.dirs[cdir as usize].latest
            };
            if v > latest {
                latest = v;
            }
            c = next;
        }
        let data = &mut self.dirs[d as usize];
        data.latest = latest;
        data.dirty = false;
        latest
    }

    /// The non-root directory with the smallest mtime.
    pub fn oldest_dir(&self) -> Option<(NodeId, f64)> {
        self.by_mtime.first().map(|&(k, id)| (id, key_to_f64(k)))
    }

    /// Number of directory slots (live or free), the bound of [`Tree::dir_at`].
    pub fn dir_slots(&self) -> usize {
        self.dirs.len()
    }

    /// The directory slot of a directory node (`usize::MAX` for a file).
    pub fn dir_slot(&self, id: NodeId) -> usize {
        match self.nodes[id as usize].dir() {
            NIL => usize::MAX,
            d => d as usize,
        }
    }

    /// [`Tree::dir_slot`] of a node already at hand (linear scans).
    pub fn dir_slot_of(&self, n: &Node) -> usize {
        match n.dir() {
            NIL => usize::MAX,
            d => d as usize,
        }
    }

    /// All node slots, live or free, for linear scans ([`Node::is_live_file`]).
    pub fn node_slots(&self) -> &[Node] {
        &self.nodes
    }

    /// The directory in slot `slot`, if the slot is live.
    pub fn dir_at(&self, slot: usize) -> Option<NodeId> {
        self.dirs.get(slot).map(|d| d.node).filter(|&n| n != NIL)
    }

    /// Iterates all live directories.
    pub fn dirs(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.dirs.iter().filter(|d| d.node != NIL).map(|d| d.node)
    }

    pub fn maybe_compact_names(&mut self) {
        if self.names.wants_compaction() {
            self.names.compact(
                self.nodes
                    .iter_mut()
                    .filter(|n| n.live())
                    .map(|n| &mut n.name),
            );
        }
    }

    /// Bytes held by the main tables (not counting allocator overhead).
    pub fn heap_bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.dirs.capacity() * std::mem::size_of::<DirData>()
            + self.names.len_bytes()
            + self.index.capacity() * (std::mem::size_of::<NodeId>() + 1)
            + self.name_ix.heap_bytes()
    }

    /// Room for `additional` more nodes in the child index, so restoring a persisted view
    /// (which knows its node count) does not rehash as it grows.
    pub fn reserve(&mut self, additional: usize) {
        let (nodes, names, hasher) = (&self.nodes, &self.names, &self.hasher);
        self.index.reserve(additional, |&n| {
            let node = &nodes[n as usize];
            hash_of_bytes(hasher, node.parent, names.get_bytes(node.name))
        });
    }
}

pub struct Children<'a> {
    tree: &'a Tree,
    cur: NodeId,
}

impl Iterator for Children<'_> {
    type Item = NodeId;
    fn next(&mut self) -> Option<NodeId> {
        if self.cur == NIL {
            return None;
        }
        let id = self.cur;
        self.cur = self.tree.nodes[id as usize].next;
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_is_compact() {
        assert_eq!(std::mem::size_of::<Node>(), 56);
    }

    #[test]
    fn packed_fields_keep_each_other() {
        let mut n = Node::new(7, 3, NIL, F_LIVE);
        assert_eq!(n.dir(), NIL);
        assert!(n.is_live_file());
        n.set_dir(MAX_DIR_SLOTS as u32 - 1);
        n.set_flag(F_DIR, true);
        n.set_flag(F_SUSPECT, true);
        n.set_lineage(MAX_LINEAGE_ID);
        n.set_owner(MAX_OWNER_ID);
        assert_eq!(n.dir(), MAX_DIR_SLOTS as u32 - 1);
        assert!(n.is_dir() && n.suspect() && n.live() && !n.known_by_agent());
        assert_eq!((n.lineage(), n.owner()), (MAX_LINEAGE_ID, MAX_OWNER_ID));
        n.set_owner(3);
        n.set_flag(F_SUSPECT, false);
        n.set_dir(NIL);
        assert_eq!((n.lineage(), n.owner(), n.dir()), (MAX_LINEAGE_ID, 3, NIL));
        assert!(!n.suspect() && n.is_dir());
        // Out of range: recorded as none rather than spilling into the neighbour field.
        n.set_lineage(MAX_LINEAGE_ID + 1);
        n.set_owner(MAX_OWNER_ID + 1);
        assert_eq!((n.lineage(), n.owner()), (0, UNKNOWN));
    }

    #[test]
    fn name_compaction_keeps_live_names() {
        let mut t = Tree::new();
        let d = t.create(ROOT, "d", true).unwrap();
        let keep: Vec<NodeId> = (0..1000)
            .map(|i| t.create(d, &format!("keep-{i:04}"), false).unwrap())
            .collect();
        for i in 0..60_000 {
            let f = t
                .create(d, &format!("temporary-file-name-{i:08}"), false)
                .unwrap();
            let sub = t.collect_subtree(f);
            t.remove_collected(f, &sub);
        }
        let before = t.names.len_bytes();
        t.maybe_compact_names();
        assert!(t.names.len_bytes() < before / 10, "arena not compacted");
        for (i, &k) in keep.iter().enumerate() {
            assert_eq!(t.name(k), format!("keep-{i:04}"));
            assert_eq!(t.lookup(&format!("/d/keep-{i:04}")), Some(k));
        }
    }

    #[test]
    fn f64_key_orders() {
        let vals = [-5.0, -0.5, 0.0, 1.0, 1e9];
        for w in vals.windows(2) {
            assert!(f64_key(w[0]) < f64_key(w[1]));
        }
        for v in vals {
            assert_eq!(key_to_f64(f64_key(v)), v);
        }
    }

    #[test]
    fn aggregates_follow_mutations() {
        let mut t = Tree::new();
        let a = t.create(ROOT, "a", true).unwrap();
        let f = t.create(a, "f", false).unwrap();
        t.set_attrs(f, 10, 100.0, 1.0);
        let g = t.create(a, "g", false).unwrap();
        t.set_attrs(g, 5, 50.0, 1.0);
        t.fix_latest();
        assert_eq!(t.lookup("/a/g"), Some(g));
        assert_eq!(t.path_of(g), "/a/g");
        let root = t.dir_data(ROOT).unwrap();
        assert_eq!((root.files, root.dirs, root.bytes), (2, 1, 15));
        assert_eq!(t.latest_mtime(ROOT), 100.0);
        let sub = t.collect_subtree(f);
        t.remove_collected(f, &sub);
        t.fix_latest();
        assert_eq!(t.latest_mtime(ROOT), 50.0);
        assert_eq!(t.dir_data(ROOT).unwrap().bytes, 5);
        assert_eq!(t.children(a).collect::<Vec<_>>(), vec![g]);
        let sub = t.collect_subtree(a);
        t.remove_collected(a, &sub);
        t.fix_latest();
        assert_eq!(t.len(), 1);
        assert_eq!(t.lookup("/a"), None);
        assert_eq!(t.latest_mtime(ROOT), 0.0);
    }
}
