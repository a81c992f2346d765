//! One fs state as chunks: see the module doc of [`super`] for the layout.

use fustor_core::Now;
use fustor_core::view::{ApplyReport, SnapshotError};

use super::chunk::{ChunkReader, ChunkWriter, Put, Rd, unzigzag, zigzag};
use crate::fs::FsViewConfig;
use crate::fs::lineage::Lineages;
use crate::fs::owners::Ownership;
use crate::fs::state::{FsState, Tombstone};
use crate::fs::tree::{BulkRestore, NodeId, ROOT, RestoreError, Tree};

const T_HEADER: u8 = 1;
const T_LINEAGES: u8 = 2;
const T_CLOCK: u8 = 3;
const T_TOMBSTONES: u8 = 4;
const T_BLIND_DELETIONS: u8 = 5;
const T_SEEN_ABSENT: u8 = 6;
const T_NODES: u8 = 7;
const T_END: u8 = 8;
/// Version 2: uid and gid names, right after the clock samples.
const T_OWNER_NAMES: u8 = 9;

/// Index entries reserved at most before reading (64M: about 320 MB of index).
const MAX_RESERVE: u64 = 64 << 20;

const N_DIR: u8 = 1;
const N_SUSPECT_FLAG: u8 = 2;
const N_KNOWN: u8 = 4;
const N_AUDIT_SKIPPED: u8 = 8;
const N_SEEN: u8 = 16;
const N_BLIND_ADDITION: u8 = 32;
const N_SUSPECT_ENTRY: u8 = 64;
const N_LAST_UPDATED: u8 = 128;

fn put_totals(b: &mut Vec<u8>, t: &ApplyReport) {
    for v in [
        t.events,
        t.rows,
        t.rejected,
        t.skipped,
        t.zombies,
        t.stale,
        t.capacity_refused,
    ] {
        b.put_var(v);
    }
}

fn get_totals(r: &mut Rd<'_>) -> Result<ApplyReport, SnapshotError> {
    Ok(ApplyReport {
        events: r.var()?,
        rows: r.var()?,
        rejected: r.var()?,
        skipped: r.var()?,
        zombies: r.var()?,
        stale: r.var()?,
        capacity_refused: r.var()?,
    })
}

/// Streams `st`. Memory: one chunk plus a stack of child iterators as deep as the tree.
pub(crate) fn write_state(st: &FsState, w: &mut ChunkWriter<'_>, now: Now) -> std::io::Result<()> {
    write_state_version(st, w, now, super::VERSION)
}

/// [`write_state`] in the layout of `version` (older ones only for tests of old files).
pub(crate) fn write_state_version(
    st: &FsState,
    w: &mut ChunkWriter<'_>,
    now: Now,
    version: u32,
) -> std::io::Result<()> {
    let b = w.buf();
    b.put_var(st.tree.len() as u64);
    match st.audit.last_start {
        Some(t) => {
            b.put_u8(1);
            b.put_f64(t);
        }
        None => b.put_u8(0),
    }
    b.put_u8(u8::from(st.audit.seen_any));
    b.put_f64(st.audit.last_finished_at);
    b.put_var(st.audit.cycle_count);
    b.put_f64(st.last_event_latency_ms);
    b.put_u8(u8::from(st.capacity_hit));
    put_totals(b, &st.totals);
    w.write_chunk(T_HEADER, &[])?;

    let pairs: Vec<_> = st.lineages.pairs().collect();
    let b = w.buf();
    b.put_var(pairs.len() as u64);
    for (a, u) in pairs {
        b.put_opt_str(a);
        b.put_opt_str(u);
    }
    w.write_chunk(T_LINEAGES, &[])?;

    let b = w.buf();
    b.put_var(st.clock.sample_count() as u64);
    for s in st.clock.samples() {
        b.put_var(zigzag(s));
    }
    w.write_chunk(T_CLOCK, &[])?;
    if version >= 2 {
        write_owner_names(st, w)?;
    }
    write_nodes(st, w, now, version)
}

fn write_owner_names(st: &FsState, w: &mut ChunkWriter<'_>) -> std::io::Result<()> {
    let owners = st.tree.owners();
    let b = w.buf();
    for names in [
        owners.unames().collect::<Vec<_>>(),
        owners.gnames().collect::<Vec<_>>(),
    ] {
        b.put_var(names.len() as u64);
        for (id, name) in names {
            b.put_var(u64::from(id));
            b.put_bytes(name.as_bytes());
        }
    }
    w.write_chunk(T_OWNER_NAMES, &[])
}

/// Continues [`write_state_version`].
fn write_nodes(
    st: &FsState,
    w: &mut ChunkWriter<'_>,
    now: Now,
    version: u32,
) -> std::io::Result<()> {
    w.begin(T_TOMBSTONES)?;
    for (path, t) in &st.tombstones {
        let b = w.buf();
        b.put_bytes(path.as_bytes());
        b.put_f64(t.logical);
        b.put_f64(t.physical);
        w.end_record()?;
    }
    w.begin(T_BLIND_DELETIONS)?;
    for path in &st.blind_deletions {
        w.buf().put_bytes(path.as_bytes());
        w.end_record()?;
    }
    w.begin(T_SEEN_ABSENT)?;
    for path in &st.audit.seen_absent {
        w.buf().put_bytes(path.as_bytes());
        w.end_record()?;
    }
    w.begin(T_NODES)?;
    let mut nodes = 0u64;
    put_node(st, w, ROOT, 0, now, version)?;
    nodes += 1;
    let mut stack = vec![st.tree.children(ROOT)];
    while let Some(top) = stack.last_mut() {
        match top.next() {
            Some(id) => {
                put_node(st, w, id, stack.len() as u64, now, version)?;
                nodes += 1;
                if st.tree.node(id).is_dir() {
                    stack.push(st.tree.children(id));
                }
            }
            None => {
                stack.pop();
            }
        }
    }
    w.flush()?;
    let b = w.buf();
    for n in [
        nodes,
        st.tombstones.len() as u64,
        st.blind_deletions.len() as u64,
        st.audit.seen_absent.len() as u64,
    ] {
        b.put_var(n);
    }
    w.write_chunk(T_END, &[])
}

fn put_node(
    st: &FsState,
    w: &mut ChunkWriter<'_>,
    id: NodeId,
    depth: u64,
    now: Now,
    version: u32,
) -> std::io::Result<()> {
    let n = st.tree.node(id);
    let suspect = st.suspects.get(&id);
    let mut flags = 0u8;
    for (on, f) in [
        (n.is_dir(), N_DIR),
        (n.suspect(), N_SUSPECT_FLAG),
        (n.known_by_agent(), N_KNOWN),
        (n.audit_skipped(), N_AUDIT_SKIPPED),
        (st.audit.is_seen(id), N_SEEN),
        (st.blind_additions.contains(&id), N_BLIND_ADDITION),
        (suspect.is_some(), N_SUSPECT_ENTRY),
        (n.last_updated != 0.0, N_LAST_UPDATED),
    ] {
        if on {
            flags |= f;
        }
    }
    let b = w.buf();
    b.put_var(depth);
    b.put_u8(flags);
    b.put_bytes(st.tree.name_bytes(id));
    b.put_var(n.size);
    b.put_f64(n.mtime);
    b.put_f64(n.ctime);
    if n.last_updated != 0.0 {
        b.put_f64(n.last_updated);
    }
    b.put_var(u64::from(n.lineage()));
    match st.tree.ownership(id).filter(|_| version >= 2) {
        Some(o) => {
            b.put_u8(1);
            for v in [o.uid, o.gid, o.mode] {
                b.put_var(u64::from(v));
            }
        }
        None if version >= 2 => b.put_u8(0),
        None => {}
    }
    if let Some(s) = suspect {
        b.put_f64(s.expiry - now.mono + now.epoch);
        b.put_f64(s.mtime);
    }
    w.end_record()
}

/// Rebuilds a state from chunks written by [`write_state`].
pub(crate) fn read_state(
    cfg: &FsViewConfig,
    r: &mut ChunkReader<'_>,
    version: u32,
    now: Now,
) -> Result<FsState, SnapshotError> {
    let mut st = FsState::new(cfg.clone());
    let (tag, mut c) = r.next_chunk()?;
    expect(tag, T_HEADER)?;
    let expected_nodes = c.var()?;
    // The count is checksummed; the cap bounds what a crafted header could make us allocate.
    let reserve = usize::try_from(expected_nodes.min(MAX_RESERVE)).unwrap_or(0);
    st.tree.reserve(reserve);
    let mut pending = Tree::begin_bulk_restore(reserve);
    st.audit.last_start = match c.u8()? {
        0 => None,
        _ => Some(c.f64()?),
    };
    let seen_any = c.u8()? != 0;
    st.audit.last_finished_at = c.f64()?;
    st.audit.cycle_count = c.var()?;
    st.last_event_latency_ms = c.f64()?;
    st.capacity_hit = c.u8()? != 0;
    st.totals = get_totals(&mut c)?;

    let (tag, mut c) = r.next_chunk()?;
    expect(tag, T_LINEAGES)?;
    let n = c.var()?;
    let mut pairs = Vec::new();
    for _ in 0..n {
        pairs.push((c.opt_str()?, c.opt_str()?));
    }
    st.lineages = Lineages::from_pairs(pairs)
        .ok_or_else(|| SnapshotError::corrupt("lineage table is inconsistent"))?;
    let lineage_count = n;

    let (tag, mut c) = r.next_chunk()?;
    expect(tag, T_CLOCK)?;
    for _ in 0..c.var()? {
        st.clock.push_sample(unzigzag(c.var()?));
    }

    if version >= 2 {
        let (tag, mut c) = r.next_chunk()?;
        expect(tag, T_OWNER_NAMES)?;
        for set_user in [true, false] {
            for _ in 0..c.var()? {
                let id = id32(c.var()?)?;
                let name = c.str()?;
                let owners = st.tree.owners_mut();
                if set_user {
                    owners.set_uname(id, name);
                } else {
                    owners.set_gname(id, name);
                }
            }
        }
    }

    let decode_started = std::time::Instant::now();
    let mut depth_stack: Vec<NodeId> = Vec::new();
    let mut nodes = 0u64;
    let mut last_tag = T_CLOCK;
    loop {
        let (tag, mut c) = r.next_chunk()?;
        if tag < last_tag || !(T_TOMBSTONES..=T_END).contains(&tag) {
            return Err(SnapshotError::corrupt(format!(
                "section {tag} where a section after {last_tag} was expected"
            )));
        }
        last_tag = tag;
        match tag {
            T_TOMBSTONES => {
                while !c.is_empty() {
                    let path: Box<str> = c.str()?.into();
                    let (logical, physical) = (c.f64()?, c.f64()?);
                    st.tombstones.insert(path, Tombstone { logical, physical });
                }
            }
            T_BLIND_DELETIONS => {
                while !c.is_empty() {
                    st.blind_deletions.insert(c.str()?.into());
                }
            }
            T_SEEN_ABSENT => {
                while !c.is_empty() {
                    st.audit.seen_absent.insert(c.str()?.into());
                }
            }
            T_NODES => {
                while !c.is_empty() {
                    let at = NodeAt {
                        index: nodes,
                        lineage_count,
                        version,
                    };
                    read_node(&mut st, &mut c, &mut depth_stack, &mut pending, at, now)?;
                    nodes += 1;
                }
            }
            _ => {
                let counts = [c.var()?, c.var()?, c.var()?, c.var()?];
                let found = [
                    nodes,
                    st.tombstones.len() as u64,
                    st.blind_deletions.len() as u64,
                    st.audit.seen_absent.len() as u64,
                ];
                if counts != found || nodes != expected_nodes || st.tree.len() as u64 != nodes {
                    return Err(SnapshotError::corrupt(format!(
                        "counts at the end marker {counts:?} differ from what was read {found:?}"
                    )));
                }
                break;
            }
        }
    }
    tracing::debug!(
        nodes,
        ms = decode_started.elapsed().as_millis() as u64,
        "restore: nodes read"
    );
    st.tree
        .finish_restore_deferred(pending)
        .map_err(restore_error)?;
    // `seen_any` is recomputed by set_seen; the header value wins (a seen path may be absent).
    st.audit.seen_any = seen_any || st.audit.seen_any;
    st.finish_write();
    Ok(st)
}

fn restore_error(e: RestoreError) -> SnapshotError {
    SnapshotError::corrupt(match e {
        RestoreError::Duplicate => "a node name repeats in its directory",
        RestoreError::Full => "more nodes than a tree can hold",
    })
}

fn expect(tag: u8, want: u8) -> Result<(), SnapshotError> {
    if tag == want {
        Ok(())
    } else {
        Err(SnapshotError::corrupt(format!(
            "section {tag} where section {want} was expected"
        )))
    }
}

fn id32(v: u64) -> Result<u32, SnapshotError> {
    u32::try_from(v).map_err(|_| SnapshotError::corrupt("an owner id beyond 32 bits"))
}

/// Where a node record sits: its rank, the lineage count, the format version.
struct NodeAt {
    index: u64,
    lineage_count: u64,
    version: u32,
}

fn read_node(
    st: &mut FsState,
    c: &mut Rd<'_>,
    stack: &mut Vec<NodeId>,
    pending: &mut BulkRestore,
    at: NodeAt,
    now: Now,
) -> Result<(), SnapshotError> {
    let NodeAt {
        index,
        lineage_count,
        version,
    } = at;
    let depth = usize::try_from(c.var()?).map_err(|_| SnapshotError::corrupt("bad depth"))?;
    let flags = c.u8()?;
    let name = c.str()?;
    let size = c.var()?;
    let mtime = c.f64()?;
    let ctime = c.f64()?;
    let last_updated = if flags & N_LAST_UPDATED != 0 {
        c.f64()?
    } else {
        0.0
    };
    let lineage = c.var()?;
    if lineage >= lineage_count {
        return Err(SnapshotError::corrupt("node lineage out of range"));
    }
    let owner = if version >= 2 && c.u8()? != 0 {
        Some(Ownership {
            uid: id32(c.var()?)?,
            gid: id32(c.var()?)?,
            mode: id32(c.var()?)?,
        })
    } else {
        None
    };
    let suspect = if flags & N_SUSPECT_ENTRY != 0 {
        Some((c.f64()?, c.f64()?))
    } else {
        None
    };
    let is_dir = flags & N_DIR != 0;
    let id = if index == 0 {
        if depth != 0 || !name.is_empty() || !is_dir {
            return Err(SnapshotError::corrupt("the first node is not the root"));
        }
        ROOT
    } else {
        if depth == 0 || depth > stack.len() {
            return Err(SnapshotError::corrupt(format!(
                "node at depth {depth} below a parent at depth {}",
                stack.len().saturating_sub(1)
            )));
        }
        stack.truncate(depth);
        let parent = stack[depth - 1];
        if !st.tree.node(parent).is_dir() {
            return Err(SnapshotError::corrupt("a node's parent is a file"));
        }
        if name.is_empty() || memchr::memchr(b'/', name.as_bytes()).is_some() {
            return Err(SnapshotError::corrupt("a node name is empty or holds '/'"));
        }
        // Attributes in place, aggregates once at the end (`Tree::finish_restore`).
        st.tree
            .restore_node_deferred(pending, parent, name, is_dir, (size, mtime, ctime))
            .map_err(restore_error)?
    };
    stack.truncate(depth);
    stack.push(id);
    let tree = &mut st.tree;
    if id == ROOT {
        tree.set_attrs(id, size, mtime, ctime);
    }
    tree.set_known(id, flags & N_KNOWN != 0);
    tree.set_audit_skipped(id, flags & N_AUDIT_SKIPPED != 0);
    tree.set_last_updated(id, last_updated);
    tree.set_lineage(id, lineage as u16);
    if let Some(o) = owner {
        tree.set_owner(id, o);
    }
    if let Some((expiry, smtime)) = suspect {
        st.put_suspect(id, expiry - now.epoch + now.mono, smtime);
    }
    // After put_suspect, which always sets the flag: the flag may exist without an entry.
    st.tree.set_suspect(id, flags & N_SUSPECT_FLAG != 0);
    if flags & N_SEEN != 0 {
        st.audit.set_seen(id, true);
    }
    if flags & N_BLIND_ADDITION != 0 {
        st.blind_additions.insert(id);
    }
    Ok(())
}
