//! The persisted form of fs and forest views: a simple versioned binary format of our own.
//!
//! Layout: `MAGIC`, format version (u32 LE), driver kind (u8), then checksummed chunks
//! ([`chunk`]). An fs state is a fixed sequence of sections (header, lineages, clock samples,
//! tombstones, blind-spot deletions, audit paths without a node, nodes, end marker with counts);
//! a forest is a member count and, per member, its pipe id and one fs state. Nodes are written
//! in depth-first pre-order with their depth, so a reader rebuilds the tree with a stack as deep
//! as the tree instead of a map of every node, and the writer walks the live tree without
//! copying it. Restoring appends each node with its attributes (`Tree::restore_node_deferred`)
//! and builds the indexes at the end (`Tree::finish_restore_deferred`): the child index shard by
//! shard, so each shard's table stays in cache while it fills (inserting in node order touched a
//! random place of a 50 MB table per node), refusing a name repeated in its directory; the name
//! index on a second thread while the nodes are read; then every directory's aggregates and the
//! by-mtime index in one pass. The round-trip tests check the result against the run-time invariants.
//!
//! Monotonic times (suspect expiries) are written as wall times and converted back with the
//! reader's clocks: the monotonic clock restarts with the process.

pub mod chunk;
mod state;
#[cfg(test)]
mod tests;

use std::io::{Read, Write};

use fustor_core::Now;
use fustor_core::view::SnapshotError;

pub use chunk::{ChunkReader, ChunkWriter};
pub(crate) use state::{read_state, write_state};

/// Identifies a persisted view state.
pub const MAGIC: &[u8; 8] = b"FUSTVIEW";
/// Bump on any incompatible change; readers refuse other versions with a clear error.
/// Version 2 (issue 14) adds owner names and each node's uid/gid/mode; version 1 files are
/// still read (their nodes have no owner until an agent reports one).
pub const VERSION: u32 = 2;
/// The oldest version this build reads.
pub const OLDEST_VERSION: u32 = 1;

/// Which driver wrote the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Fs = 1,
    Forest = 2,
}

pub fn write_header(w: &mut ChunkWriter<'_>, kind: Kind) -> std::io::Result<()> {
    write_header_version(w, kind, VERSION)
}

fn write_header_version(w: &mut ChunkWriter<'_>, kind: Kind, version: u32) -> std::io::Result<()> {
    w.raw(MAGIC)?;
    w.raw(&version.to_le_bytes())?;
    w.raw(&[kind as u8])
}

/// Checks magic and kind; returns the format version, which the state reader needs.
pub fn read_header(r: &mut ChunkReader<'_>, want: Kind) -> Result<u32, SnapshotError> {
    let mut head = [0u8; 13];
    r.read_exact(&mut head)?;
    if &head[..8] != MAGIC {
        return Err(SnapshotError::corrupt(
            "not a Fustor view snapshot (bad magic)",
        ));
    }
    let version = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
    if !(OLDEST_VERSION..=VERSION).contains(&version) {
        return Err(SnapshotError::Version {
            found: version,
            supported: VERSION,
        });
    }
    if head[12] != want as u8 {
        return Err(SnapshotError::corrupt(format!(
            "snapshot of driver kind {} where {} was expected",
            head[12], want as u8
        )));
    }
    Ok(version)
}

/// [`fustor_core::view::PersistView`] for one fs view.
pub(crate) fn write_fs(st: &super::FsState, out: &mut dyn Write, now: Now) -> std::io::Result<()> {
    let mut w = ChunkWriter::new(out);
    write_header(&mut w, Kind::Fs)?;
    write_state(st, &mut w, now)
}

/// The files an older build wrote, for the tests that they stay readable.
#[cfg(test)]
pub(crate) fn write_fs_version(
    st: &super::FsState,
    out: &mut dyn Write,
    now: Now,
    version: u32,
) -> std::io::Result<()> {
    let mut w = ChunkWriter::new(out);
    write_header_version(&mut w, Kind::Fs, version)?;
    state::write_state_version(st, &mut w, now, version)
}

pub(crate) fn read_fs(
    cfg: &super::FsViewConfig,
    input: &mut dyn Read,
    now: Now,
) -> Result<super::FsState, SnapshotError> {
    let mut r = ChunkReader::new(input);
    let version = read_header(&mut r, Kind::Fs)?;
    read_state(cfg, &mut r, version, now)
}
