//! Owner, group and mode of each node (issue 14), kept in 20 bits per node.
//!
//! A site has few distinct `(uid, gid, mode)` triples next to its millions of files, so each
//! node holds the index of its interned triple rather than the triple itself (12 bytes). The
//! table also keeps, per triple, the files and bytes it owns, updated by every tree mutation:
//! site-wide per-owner and per-group totals are then a pass over the triples, not over the files.
//! Names are those the agents resolved on their hosts (NIS/LDAP answer there); the last name
//! reported for an id wins.

use super::state::HashMap;
use super::tree::MAX_OWNER_ID;

/// Index into [`Owners`]; 0 means "not reported" (rows of the Python agent).
pub type OwnerId = u32;
pub const UNKNOWN: OwnerId = 0;

/// Permission and special bits of `st_mode` (no file type).
pub const MODE_MASK: u32 = 0o7777;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ownership {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

/// Files and bytes of regular files (directories are not counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub files: u64,
    pub bytes: u64,
}

impl Usage {
    pub fn add(&mut self, size: u64) {
        self.files += 1;
        self.bytes = self.bytes.wrapping_add(size);
    }
    pub fn sub(&mut self, size: u64) {
        self.files = self.files.saturating_sub(1);
        self.bytes = self.bytes.wrapping_sub(size);
    }
}

#[derive(Debug, Default)]
pub struct Owners {
    /// Index 0 is the placeholder of [`UNKNOWN`].
    triples: Vec<Ownership>,
    index: HashMap<Ownership, OwnerId>,
    usage: Vec<Usage>,
    unames: HashMap<u32, Box<str>>,
    gnames: HashMap<u32, Box<str>>,
    overflow_warned: bool,
}

impl Owners {
    pub fn new() -> Self {
        Owners {
            triples: vec![Ownership {
                uid: u32::MAX,
                gid: u32::MAX,
                mode: 0,
            }],
            usage: vec![Usage::default()],
            ..Default::default()
        }
    }

    /// The id of `o`, interned on first use.
    pub fn intern(&mut self, o: Ownership) -> OwnerId {
        let o = Ownership {
            mode: o.mode & MODE_MASK,
            ..o
        };
        if let Some(&id) = self.index.get(&o) {
            return id;
        }
        let id = self.triples.len() as OwnerId;
        if id > MAX_OWNER_ID {
            // A node holds 20 bits of owner id. Past a million distinct triples the file counts
            // as "not reported", which bound keys treat as closed (never as open).
            if !self.overflow_warned {
                tracing::warn!(
                    max = MAX_OWNER_ID,
                    "too many distinct (uid, gid, mode) triples; new ones are not recorded"
                );
                self.overflow_warned = true;
            }
            return UNKNOWN;
        }
        self.triples.push(o);
        self.usage.push(Usage::default());
        self.index.insert(o, id);
        id
    }

    pub fn get(&self, id: OwnerId) -> Option<Ownership> {
        if id == UNKNOWN {
            return None;
        }
        self.triples.get(id as usize).copied()
    }

    pub fn usage_mut(&mut self, id: OwnerId) -> &mut Usage {
        let i = (id as usize).min(self.usage.len() - 1);
        &mut self.usage[i]
    }

    /// `(triple or None for unknown, usage)` of every triple that owns a file.
    pub fn usages(&self) -> impl Iterator<Item = (Option<Ownership>, Usage)> + '_ {
        self.usage
            .iter()
            .enumerate()
            .filter(|(_, u)| u.files > 0)
            .map(|(i, u)| (self.get(i as OwnerId), *u))
    }

    /// `(id, usage)` of every interned triple, [`UNKNOWN`] included.
    pub fn ids_with_usage(&self) -> impl Iterator<Item = (OwnerId, Usage)> + '_ {
        self.usage
            .iter()
            .enumerate()
            .map(|(i, u)| (i as OwnerId, *u))
    }

    /// Interned triples, including the placeholder at index 0.
    pub fn len(&self) -> usize {
        self.triples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.triples.len() <= 1
    }

    pub fn set_uname(&mut self, uid: u32, name: &str) {
        if self.unames.get(&uid).map(|n| &**n) != Some(name) {
            self.unames.insert(uid, name.into());
        }
    }

    pub fn set_gname(&mut self, gid: u32, name: &str) {
        if self.gnames.get(&gid).map(|n| &**n) != Some(name) {
            self.gnames.insert(gid, name.into());
        }
    }

    pub fn uname(&self, uid: u32) -> Option<&str> {
        self.unames.get(&uid).map(|n| &**n)
    }

    pub fn gname(&self, gid: u32) -> Option<&str> {
        self.gnames.get(&gid).map(|n| &**n)
    }

    pub fn unames(&self) -> impl Iterator<Item = (u32, &str)> {
        self.unames.iter().map(|(&k, v)| (k, &**v))
    }

    pub fn gnames(&self) -> impl Iterator<Item = (u32, &str)> {
        self.gnames.iter().map(|(&k, v)| (k, &**v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_masks_the_file_type_and_reuses_ids() {
        let mut o = Owners::new();
        let a = o.intern(Ownership {
            uid: 1,
            gid: 2,
            mode: 0o100644,
        });
        let b = o.intern(Ownership {
            uid: 1,
            gid: 2,
            mode: 0o644,
        });
        assert_eq!(a, b);
        assert_ne!(a, UNKNOWN);
        assert_eq!(o.get(a).map(|t| t.mode), Some(0o644));
        assert_eq!(o.get(UNKNOWN), None);
        o.set_uname(1, "ann");
        assert_eq!(o.uname(1), Some("ann"));
    }

    #[test]
    fn past_the_node_field_a_new_triple_is_not_recorded() {
        let mut o = Owners::new();
        for uid in 1..=MAX_OWNER_ID {
            o.intern(Ownership {
                uid,
                gid: 0,
                mode: 0o644,
            });
        }
        let known = Ownership {
            uid: MAX_OWNER_ID,
            gid: 0,
            mode: 0o644,
        };
        assert_eq!(o.intern(known), MAX_OWNER_ID);
        let extra = Ownership {
            uid: 0,
            gid: 1,
            mode: 0o600,
        };
        assert_eq!(o.intern(extra), UNKNOWN);
        assert_eq!(o.get(UNKNOWN), None);
    }
}
