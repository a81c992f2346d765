//! What a user may see of the tree through POSIX permission bits (issue 14).
//!
//! The rule, as `ls` on the share would apply it: an entry is listed only if every directory
//! above it is searchable (`x`) and its parent is also readable (`r`) for the user, taking the
//! owner bits when the user owns the directory, else the group bits when one of the user's groups
//! owns it, else the other bits. uid 0 gets no privilege (NFS root squash: it is treated as
//! `nobody`/`nogroup`) unless the key says `admin`. ACLs, capabilities and the agent host's own
//! squashing are not modelled. A node whose agent reported no owner (the Python agent) is
//! treated as closed. The answer per directory is computed once per query and kept per
//! directory slot, so filtering a listing costs a table lookup per child.

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
pub struct Visibility {
    slots: Vec<u8>,
    admin: bool,
}

impl Visibility {
    pub fn new(t: &Tree, who: &Identity) -> Self {
        let mut v = Visibility {
            slots: vec![0; t.dir_slots()],
            admin: who.admin,
        };
        if who.admin {
            return v;
        }
        let mut chain = Vec::new();
        for slot in 0..t.dir_slots() {
            let Some(mut d) = t.dir_at(slot) else {
                continue;
            };
            // Up to the first directory already known, then down again.
            chain.clear();
            let mut above = SEARCHABLE;
            loop {
                let s = t.dir_slot(d);
                if v.slots.get(s).is_some_and(|&b| b & DONE != 0) {
                    above = v.slots[s] & SEARCHABLE;
                    break;
                }
                chain.push(d);
                let p = t.node(d).parent;
                if d == ROOT || p == NIL {
                    break;
                }
                d = p;
            }
            for &d in chain.iter().rev() {
                let o = t.ownership(d);
                let x = above != 0 && allows(o, who, X);
                let r = x && allows(o, who, R);
                let s = t.dir_slot(d);
                if let Some(b) = v.slots.get_mut(s) {
                    *b = DONE | if x { SEARCHABLE } else { 0 } | if r { LISTED } else { 0 };
                }
                above = u8::from(x);
            }
        }
        v
    }

    /// Whether the children of directory `d` are listed.
    pub fn lists(&self, t: &Tree, d: NodeId) -> bool {
        self.admin
            || self
                .slots
                .get(t.dir_slot(d))
                .is_some_and(|&b| b & LISTED != 0)
    }

    /// Whether the children of the directory in `slot` are listed.
    pub fn lists_slot(&self, slot: usize) -> bool {
        self.admin || self.slots.get(slot).is_some_and(|&b| b & LISTED != 0)
    }

    /// Whether the node itself is listed: the root always, else when its parent lists it.
    pub fn shows(&self, t: &Tree, id: NodeId) -> bool {
        id == ROOT || self.lists(t, t.node(id).parent)
    }
}
