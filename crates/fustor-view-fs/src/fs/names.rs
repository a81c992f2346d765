//! Name storage: every name is stored once, in one byte arena.
//!
//! A `String` per node would cost 24 bytes of header plus a heap block (~32 bytes) for a typical
//! 20-byte name; here a name costs its bytes plus a one-byte length, addressed by a `u32`. Freed
//! names become garbage that [`NameArena::compact`] reclaims when it dominates the arena.

/// Offset of a length-prefixed name in the arena.
pub type NameRef = u32;

#[derive(Debug, Default)]
pub struct NameArena {
    bytes: Vec<u8>,
    garbage: usize,
}

/// The arena is addressed with `u32`; past 4 GiB of names the view refuses new nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArenaFull;

impl NameArena {
    pub fn new() -> Self {
        // Offset 0 holds the root's empty name, so a zeroed NameRef is always valid.
        NameArena {
            bytes: vec![0],
            garbage: 0,
        }
    }

    /// Stores a name of at most 255 bytes (longer names are refused by path validation).
    pub fn push(&mut self, name: &str) -> Result<NameRef, ArenaFull> {
        let len = u8::try_from(name.len()).map_err(|_| ArenaFull)?;
        let off = u32::try_from(self.bytes.len()).map_err(|_| ArenaFull)?;
        if self.bytes.len() + 1 + name.len() > u32::MAX as usize {
            return Err(ArenaFull);
        }
        self.bytes.push(len);
        self.bytes.extend_from_slice(name.as_bytes());
        Ok(off)
    }

    pub fn get(&self, r: NameRef) -> &str {
        // Only whole `&str`s are ever pushed, so this cannot fail; fall back rather than panic.
        std::str::from_utf8(self.get_bytes(r)).unwrap_or("")
    }

    /// The name's bytes without UTF-8 validation, for scans over millions of names.
    pub fn get_bytes(&self, r: NameRef) -> &[u8] {
        let off = r as usize;
        let len = self.bytes.get(off).copied().unwrap_or(0) as usize;
        self.bytes.get(off + 1..off + 1 + len).unwrap_or(&[])
    }

    pub fn free(&mut self, r: NameRef) {
        if r != 0 {
            self.garbage += 1 + self.get(r).len();
        }
    }

    /// Worth compacting when most of the arena is garbage and it is large enough to matter.
    pub fn wants_compaction(&self) -> bool {
        self.garbage > 1 << 20 && self.garbage * 2 > self.bytes.len()
    }

    /// Rebuilds the arena with only the live names, rewriting each live reference in place.
    pub fn compact<'a>(&mut self, live: impl Iterator<Item = &'a mut NameRef>) {
        let old = std::mem::replace(self, NameArena::new());
        self.bytes
            .reserve(old.bytes.len().saturating_sub(old.garbage));
        for r in live {
            if *r != 0 {
                *r = self.push(old.get(*r)).unwrap_or(0);
            }
        }
    }

    pub fn len_bytes(&self) -> usize {
        self.bytes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_get_free_compact() {
        let mut a = NameArena::new();
        assert_eq!(a.get(0), "");
        let x = a.push("hello").unwrap();
        let y = a.push("wörld").unwrap();
        assert_eq!(a.get(x), "hello");
        assert_eq!(a.get(y), "wörld");
        a.free(x);
        let mut refs = [y];
        a.compact(refs.iter_mut());
        assert_eq!(a.get(refs[0]), "wörld");
        assert_eq!(a.len_bytes(), 1 + 1 + "wörld".len());
        assert!(a.push(&"x".repeat(256)).is_err());
    }
}
