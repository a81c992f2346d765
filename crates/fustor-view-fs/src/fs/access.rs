//! What a user may see of the tree through POSIX permission bits (issue 14).
//!
//! The rule, as `ls` on the share would apply it: an entry is listed only if every directory
//! above it is searchable (`x`) and its parent is also readable (`r`) for the user, taking the
//! owner bits when the user owns the directory, else the group bits when one of the user's groups
//! owns it, else the other bits. uid 0 gets no privilege (NFS root squash: it is treated as
//! `nobody`/`nogroup`) unless the key says `admin`. ACLs, capabilities and the agent host's own
//! squashing are not modelled. A node whose agent reported no owner (the Python agent) is
//! treated as closed. The answer per directory is computed at most once per query, on first
//! use, and kept per directory slot, so filtering a listing costs a table lookup per child.

use std::cell::{Cell, RefCell};

use fustor_core::view::Identity;

use super::owners::Ownership;
use super::tree::{NIL, NodeId, ROOT, Tree};

pub const R: u32 = 4;
pub const X: u32 = 1;
/// The ids root squash maps uid/gid 0 to.
pub const NOBODY: u32 = 65534;

/// The permission class bits of `o` that apply to `who`.
pub fn class_bits(o: Ownership, who: &Identity) -> u32 {
    let squash = |id: u32| if id == 0 { NOBODY } else { id };
    let uid = squash(who.uid);
    if o.uid == uid {
        (o.mode >> 6) & 7
    } else if who.gids.iter().any(|&g| squash(g) == o.gid) {
        (o.mode >> 3) & 7
    } else {
        o.mode & 7
    }
}

/// Whether `who` has all of `bits` on a node with ownership `o`.
pub fn allows(o: Option<Ownership>, who: &Identity, bits: u32) -> bool {
    if who.admin {
        return true;
    }
    o.is_some_and(|o| class_bits(o, who) & bits == bits)
}

const SEARCHABLE: u8 = 1;
const LISTED: u8 = 2;
const DONE: u8 = 4;

/// Per directory slot: whether the user can reach the directory and list its children.
///
/// Filled lazily: a question about a directory walks up to the first directory already
/// answered (or the root) and settles the chain on the way back down, so a query pays for the
/// directories it touches (the answered node's ancestors once, then each listed directory),
/// not for the whole tree. Only valid under the read guard it was made under: the tree must
/// not change while it is in use.
pub struct Visibility {
    slots: Vec<Cell<u8>>,
    who: Identity,
    chain: RefCell<Vec<NodeId>>,
}

impl Visibility {
    pub fn new(t: &Tree, who: &Identity) -> Self {
        Visibility {
            slots: if who.admin {
                Vec::new()
            } else {
                std::iter::repeat_with(|| Cell::new(0))
                    .take(t.dir_slots())
                    .collect()
            },
            who: who.clone(),
            chain: RefCell::new(Vec::new()),
        }
    }

    /// The settled bits of directory `d` (a directory node of `t`).
    fn bits(&self, t: &Tree, d: NodeId) -> u8 {
        let known = |d: NodeId| {
            self.slots
                .get(t.dir_slot(d))
                .map(Cell::get)
                .filter(|&b| b & DONE != 0)
        };
        if let Some(b) = known(d) {
            return b;
        }
        let mut chain = self.chain.borrow_mut();
        chain.clear();
        // Up to the first directory already known, then down again.
        let mut above = SEARCHABLE;
        let mut cur = d;
        loop {
            if let Some(b) = known(cur) {
                above = b & SEARCHABLE;
                break;
            }
            chain.push(cur);
            let p = t.node(cur).parent;
            if cur == ROOT || p == NIL {
                break;
            }
            cur = p;
        }
        let mut last = 0;
        for &c in chain.iter().rev() {
            let o = t.ownership(c);
            let x = above != 0 && allows(o, &self.who, X);
            let r = x && allows(o, &self.who, R);
            last = DONE | if x { SEARCHABLE } else { 0 } | if r { LISTED } else { 0 };
            if let Some(b) = self.slots.get(t.dir_slot(c)) {
                b.set(last);
            }
            above = u8::from(x);
        }
        last
    }

    /// Whether the user can reach directory `d` (it and every directory above it are `x`).
    pub fn searchable(&self, t: &Tree, d: NodeId) -> bool {
        self.who.admin || (t.node(d).is_dir() && self.bits(t, d) & SEARCHABLE != 0)
    }

    /// Whether the children of directory `d` are listed.
    pub fn lists(&self, t: &Tree, d: NodeId) -> bool {
        self.who.admin || (t.node(d).is_dir() && self.bits(t, d) & LISTED != 0)
    }

    /// Whether the children of the directory in `slot` are listed.
    pub fn lists_slot(&self, t: &Tree, slot: usize) -> bool {
        self.who.admin
            || t.dir_at(slot)
                .is_some_and(|d| self.bits(t, d) & LISTED != 0)
    }

    /// Whether the node itself is listed: the root always, else when its parent lists it.
    pub fn shows(&self, t: &Tree, id: NodeId) -> bool {
        id == ROOT || self.lists(t, t.node(id).parent)
    }
}
