//! The name index: a Bloom filter of name trigrams per block of 64 node ids.
//!
//! A search must not read 200 million names to find the ten that contain `sample_00000123`.
//! plocate answers such questions from trigram posting lists, but it builds them once for a
//! static database; a view changes a thousand times a second per member and must ingest millions
//! of rows per second, and posting lists of node ids cost 4 bytes per trigram per name (70+
//! bytes per file for typical names, over the 30-byte budget). A per-block filter is what
//! columnar stores use as an n-gram skip index (ClickHouse's `ngrambf_v1`): each block of 16
//! consecutive node ids has a 1,024-bit filter, each trigram of each name in the block sets two
//! of its bits. Sixteen high-entropy names (hashes, random ids: ~25 distinct trigrams each) set
//! about half the bits, so a piece of ten trigrams passes a foreign block with odds of about
//! 0.5^20; siblings created together get neighbouring ids and share most trigrams, so typical
//! blocks set far fewer. (Blocks of 64 ids saturated on high-entropy names: a 12-character
//! prefix then read every name, 20 ms per million.)
//!
//! The filters are stored bit-sliced, as BitFunnel does: a group of 64 blocks (1,024 ids) is
//! 1,024 words, word `p` holding bit `p` of each of the group's 64 filters. A query ANDs the
//! words of its piece's bits (about twenty) and gets, in one word, the blocks of the group that
//! may hold the piece: some 20 reads per 1,024 ids instead of 64 filter tests, a fraction of a
//! millisecond per million nodes. Inserting a name touches only its group's 8 KB, which stays in
//! cache while a snapshot fills consecutive ids.
//!
//! Names in the surviving blocks are then checked exactly, so the index only has to be a
//! superset: a Bloom filter never forgets a set bit, and a freed node leaves its bits behind
//! until its block is rebuilt from the live names.
//!
//! Cost: 8 KB per 1,024 node ids (8 bytes per node), one hash and two bit sets per trigram on
//! insert, a rebuild of 16 names per 8 removals in a block.
//!
//! Names are compared case-folded ([`fold_into`]) so one filter serves both the case-sensitive
//! glob and the case-insensitive substring test of `search`.

use super::tree::NodeId;

/// Node ids per block.
pub const BLOCK: usize = 16;
/// Blocks per group: one bit of a group word each.
const GROUP_BLOCKS: usize = 64;
/// Node ids per group.
pub const GROUP: usize = BLOCK * GROUP_BLOCKS;
/// Filter bits per block: one word per bit in a group.
const BITS: u32 = 1024;
/// Removals after which a block's filter is rebuilt from its live names.
const REBUILD_AFTER: u8 = 8;

/// The filter bits a literal piece needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mask(Vec<u16>);

impl Mask {
    /// The mask of `folded` (already [`fold_into`] form), or `None` when it is shorter than one
    /// trigram and the index cannot narrow anything.
    pub fn of(folded: &[u8]) -> Option<Mask> {
        if folded.len() < 3 {
            return None;
        }
        let mut m: Vec<u16> = folded
            .windows(3)
            .flat_map(|w| {
                let (a, b) = bits(w);
                [a as u16, b as u16]
            })
            .collect();
        m.sort_unstable();
        m.dedup();
        Some(Mask(m))
    }
}

/// `words[p]` holds bit `p` of the filters of the group's 64 blocks.
type Group = Box<[u64; BITS as usize]>;

/// Bit-sliced trigram filters over the names of a tree's nodes, indexed by node id.
#[derive(Default)]
pub struct NameIndex {
    groups: Vec<Group>,
    /// Removals per block since its last rebuild.
    removed: Vec<u8>,
    /// Blocks whose removals reached [`REBUILD_AFTER`], rebuilt at the end of the write.
    stale: Vec<u32>,
}

/// The two filter bits of one trigram. A multiplicative hash spreads the 24-bit trigram; the
/// two positions come from disjoint bits of the product.
fn bits(w: &[u8]) -> (u32, u32) {
    let t = (u64::from(w[0]) << 16) | (u64::from(w[1]) << 8) | u64::from(w[2]);
    let h = t.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((h >> 54) as u32 % BITS, ((h >> 40) & 0x3FF) as u32 % BITS)
}

/// Case folding shared by the index and the searches it narrows: ASCII lower case for ASCII
/// names; otherwise each char's `to_lowercase` with final sigma folded to sigma. Folding char by
/// char keeps substrings substrings (a glob's literal piece of a name folds to a piece of the
/// folded name), and it equals `str::to_lowercase` up to the sigma, which the substring test's
/// lower-casing may write either way.
pub fn fold_into(name: &str, out: &mut Vec<u8>) {
    if name.is_ascii() {
        out.extend(name.bytes().map(|b| b.to_ascii_lowercase()));
        return;
    }
    let mut buf = [0u8; 4];
    for c in name.chars() {
        for l in c.to_lowercase() {
            let l = if l == 'ς' { 'σ' } else { l };
            out.extend_from_slice(l.encode_utf8(&mut buf).as_bytes());
        }
    }
}

impl NameIndex {
    /// Adds the trigrams of `name` to the block of `id`.
    pub fn insert(&mut self, id: NodeId, name: &str) {
        let b = id as usize / BLOCK;
        let g = b / GROUP_BLOCKS;
        while self.groups.len() <= g {
            self.groups.push(Box::new([0; BITS as usize]));
        }
        if self.removed.len() <= b {
            self.removed.resize(b + 1, 0);
        }
        let bit = 1u64 << (b % GROUP_BLOCKS);
        let words = &mut self.groups[g];
        for_each_bit(name, |p| words[p as usize] |= bit);
    }

    /// Groups and removal counters for node ids `0..count`.
    fn size_for(&mut self, count: usize) {
        let blocks = count.div_ceil(BLOCK);
        let groups = blocks.div_ceil(GROUP_BLOCKS);
        self.groups
            .reserve(groups.saturating_sub(self.groups.len()));
        while self.groups.len() < groups {
            self.groups.push(Box::new([0; BITS as usize]));
        }
        if self.removed.len() < blocks {
            self.removed.resize(blocks, 0);
        }
    }

    /// Notes that `id` no longer holds its name; its bits stay until the block is rebuilt.
    pub fn removed(&mut self, id: NodeId) {
        let b = id as usize / BLOCK;
        if let Some(r) = self.removed.get_mut(b) {
            *r = r.saturating_add(1);
            if *r == REBUILD_AFTER {
                self.stale.push(b as u32);
            }
        }
    }

    /// Rebuilds the blocks that collected enough removals. `name_of` gives the name of a live
    /// node id, `None` for a free one.
    pub fn rebuild_stale<'a>(&mut self, name_of: impl Fn(NodeId) -> Option<&'a str>) {
        while let Some(b) = self.stale.pop() {
            let b = b as usize;
            let Some(words) = self.groups.get_mut(b / GROUP_BLOCKS) else {
                continue;
            };
            let bit = 1u64 << (b % GROUP_BLOCKS);
            for w in words.iter_mut() {
                *w &= !bit;
            }
            for id in b * BLOCK..(b + 1) * BLOCK {
                if let Some(name) = name_of(id as NodeId) {
                    for_each_bit(name, |p| words[p as usize] |= bit);
                }
            }
            if let Some(r) = self.removed.get_mut(b) {
                *r = 0;
            }
        }
    }

    /// Number of groups; group `g` covers node ids `g * GROUP .. (g + 1) * GROUP`.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// The blocks of group `g` that may hold a name containing the piece of `mask`, as bits
    /// (bit `j`: block `g * 64 + j`).
    pub fn may_contain(&self, g: usize, mask: &Mask) -> u64 {
        let Some(words) = self.groups.get(g) else {
            return 0;
        };
        let mut w = u64::MAX;
        for &p in &mask.0 {
            w &= words[p as usize];
            if w == 0 {
                break;
            }
        }
        w
    }

    pub fn heap_bytes(&self) -> usize {
        self.groups.capacity() * std::mem::size_of::<Group>()
            + self.groups.len() * BITS as usize * 8
            + self.removed.capacity()
    }
}

/// Builds a [`NameIndex`] on another thread while a restore reads nodes (issue 11, restart
/// time): the reader hands over each group's names as soon as the group's 1,024 ids are read,
/// so the trigram hashing (a fifth of a restore's CPU) overlaps the decoding instead of
/// following it. Ids must come in increasing order.
pub struct BulkNames {
    /// `(group, names)`: per name its id within the group (u16 LE), length (u8), bytes.
    tx: Option<std::sync::mpsc::SyncSender<(usize, Vec<u8>)>>,
    worker: Option<std::thread::JoinHandle<Vec<(usize, Group)>>>,
    group: usize,
    buf: Vec<u8>,
    /// Filled here when no thread could be started.
    inline: Vec<(usize, Group)>,
}

/// A group's filter words from its names as [`BulkNames`] packs them.
fn fill_group(names: &[u8]) -> Group {
    let mut words: Group = Box::new([0; BITS as usize]);
    let mut at = 0;
    while at + 3 <= names.len() {
        let local = usize::from(u16::from_le_bytes([names[at], names[at + 1]]));
        let len = usize::from(names[at + 2]);
        let Some(name) = names.get(at + 3..at + 3 + len) else {
            break;
        };
        at += 3 + len;
        let bit = 1u64 << ((local / BLOCK) % GROUP_BLOCKS);
        // Only whole `&str`s are pushed; a failed check would only lose bits of a name the
        // reader already validated.
        if let Ok(name) = std::str::from_utf8(name) {
            for_each_bit(name, |p| words[p as usize] |= bit);
        }
    }
    words
}

impl BulkNames {
    pub fn start() -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, Vec<u8>)>(64);
        let worker = std::thread::Builder::new()
            .name("restore-names".into())
            .spawn(move || {
                rx.into_iter()
                    .map(|(g, names)| (g, fill_group(&names)))
                    .collect()
            });
        let (tx, worker) = match worker {
            Ok(h) => (Some(tx), Some(h)),
            Err(e) => {
                tracing::debug!(error = %e, "no thread for the name index, building inline");
                (None, None)
            }
        };
        BulkNames {
            tx,
            worker,
            group: 0,
            buf: Vec::with_capacity(32 * GROUP),
            inline: Vec::new(),
        }
    }

    pub fn push(&mut self, id: NodeId, name: &str) {
        let g = id as usize / GROUP;
        if g != self.group {
            self.send();
            self.group = g;
        }
        let Ok(len) = u8::try_from(name.len()) else {
            return;
        };
        self.buf
            .extend_from_slice(&((id as usize % GROUP) as u16).to_le_bytes());
        self.buf.push(len);
        self.buf.extend_from_slice(name.as_bytes());
    }

    fn send(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let names = std::mem::replace(&mut self.buf, Vec::with_capacity(32 * GROUP));
        let names = match &self.tx {
            Some(tx) => match tx.send((self.group, names)) {
                Ok(()) => return,
                // The worker is gone (it panicked): fill the rest here.
                Err(std::sync::mpsc::SendError((_, names))) => names,
            },
            None => names,
        };
        self.inline.push((self.group, fill_group(&names)));
    }

    /// The index of node ids `0..count`.
    pub fn finish(mut self, count: usize) -> NameIndex {
        self.send();
        self.tx = None;
        let mut filled = std::mem::take(&mut self.inline);
        if let Some(h) = self.worker.take() {
            match h.join() {
                Ok(groups) => filled.extend(groups),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        let mut ix = NameIndex::default();
        ix.size_for(count);
        for (g, words) in filled {
            if let Some(slot) = ix.groups.get_mut(g) {
                for (w, x) in slot.iter_mut().zip(words.iter()) {
                    *w |= x;
                }
            }
        }
        ix
    }
}

/// Calls `f` with the two filter bits of every trigram of the folded `name`.
fn for_each_bit(name: &str, mut f: impl FnMut(u32)) {
    let mut set = |w: &[u8]| {
        let (a, b) = bits(w);
        f(a);
        f(b);
    };
    if name.is_ascii() {
        // The common case folds on the fly, without a buffer.
        let n = name.as_bytes();
        for i in 0..n.len().saturating_sub(2) {
            let w = [
                n[i].to_ascii_lowercase(),
                n[i + 1].to_ascii_lowercase(),
                n[i + 2].to_ascii_lowercase(),
            ];
            set(&w);
        }
        return;
    }
    let mut folded = Vec::with_capacity(name.len() + 8);
    fold_into(name, &mut folded);
    for w in folded.windows(3) {
        set(w);
    }
}

/// Whether the folded form of `name` contains `folded_piece`.
pub fn folded_contains(name: &[u8], folded_piece: &[u8]) -> bool {
    if folded_piece.is_empty() {
        return true;
    }
    if name.is_ascii() {
        if name.len() < folded_piece.len() {
            return false;
        }
        let first = folded_piece[0];
        let rest = &folded_piece[1..];
        let hay = &name[..=name.len() - folded_piece.len()];
        let at = |i: usize| name[i + 1..i + folded_piece.len()].eq_ignore_ascii_case(rest);
        let up = first.to_ascii_uppercase();
        return if up == first {
            memchr::memchr_iter(first, hay).any(at)
        } else {
            memchr::memchr2_iter(first, up, hay).any(at)
        };
    }
    let Ok(s) = std::str::from_utf8(name) else {
        return false;
    };
    let mut folded = Vec::with_capacity(name.len() + 8);
    fold_into(s, &mut folded);
    memchr::memmem::find(&folded, folded_piece).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fold(s: &str) -> Vec<u8> {
        let mut v = Vec::new();
        fold_into(s, &mut v);
        v
    }

    #[test]
    fn inserted_names_pass_their_pieces_and_most_blocks_fail_others() {
        let mut ix = NameIndex::default();
        for i in 0..64u32 {
            ix.insert(i, &format!("sample_{i:08}.h5"));
        }
        ix.insert(64, "Report.CSV");
        ix.insert(2000, "far_away.txt");
        // Id 42 lives in block 2, id 64 in block 4, id 2000 in block 125 = group 1, bit 61.
        let piece = Mask::of(&fold("sample_00000042")).unwrap();
        assert_eq!(ix.may_contain(0, &piece), 1 << 2);
        assert_eq!(
            ix.may_contain(0, &Mask::of(&fold("REPORT")).unwrap()),
            1 << 4
        );
        assert_eq!(ix.may_contain(1, &Mask::of(b"far_away").unwrap()), 1 << 61);
        assert_eq!(ix.may_contain(0, &Mask::of(b"far_away").unwrap()), 0);
        assert_eq!(
            ix.may_contain(7, &piece),
            0,
            "a group past the end holds nothing"
        );
        assert!(Mask::of(b"ab").is_none());
    }

    #[test]
    fn bulk_names_set_the_bits_of_one_insert_per_id() {
        let names: Vec<String> = (0..2500u32)
            .map(|i| match i % 3 {
                0 => format!("sample_{i:08}.h5"),
                1 => format!("Äbc-{}", i * 7919),
                _ => "x".into(),
            })
            .collect();
        let mut one = NameIndex::default();
        for (i, n) in names.iter().enumerate() {
            one.insert(i as NodeId, n);
        }
        let mut bulk = BulkNames::start();
        for (i, n) in names.iter().enumerate() {
            bulk.push(i as NodeId, n);
        }
        let all = bulk.finish(names.len());
        assert_eq!(all.groups, one.groups);
        assert_eq!(all.removed.len(), one.removed.len());
    }

    #[test]
    fn removals_rebuild_the_block_from_live_names() {
        let mut ix = NameIndex::default();
        ix.insert(3, "keep.txt");
        ix.insert(5, "gone.txt");
        ix.insert(20, "gone.txt");
        for _ in 0..REBUILD_AFTER {
            ix.removed(5);
        }
        ix.rebuild_stale(|id| (id == 3).then_some("keep.txt"));
        assert_eq!(ix.may_contain(0, &Mask::of(b"keep").unwrap()), 1);
        // Block 0 forgot the name; block 1 (id 20) was not rebuilt.
        assert_eq!(ix.may_contain(0, &Mask::of(b"gone").unwrap()), 1 << 1);
    }

    #[test]
    fn folding_keeps_substrings_and_matches_lowercase() {
        assert_eq!(fold("ÄBC"), "äbc".as_bytes());
        assert_eq!(fold("ΑΣ"), "ασ".as_bytes());
        assert_eq!(fold("ας"), "ασ".as_bytes());
        assert!(folded_contains("xÄBx".as_bytes(), &fold("äb")));
        assert!(folded_contains(b"xxrEport", b"rep"));
        assert!(!folded_contains(b"xxre", b"rep"));
        // The Kelvin sign lower-cases to an ASCII k.
        assert!(folded_contains("\u{212A}elvin".as_bytes(), b"kel"));
    }
}
