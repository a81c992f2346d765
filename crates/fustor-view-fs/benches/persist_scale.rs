//! Persistence of a large fs view: snapshot write and restore speed, bytes per file.
//!
//! `cargo bench -p fustor-view-fs --bench persist_scale` (env `FILES`, default 2,000,000;
//! `DIRS`, default 2,000; `REPS`, restores to take the median of, default 1). Synthetic tree as in `view_scale`; the snapshot goes to memory, so
//! the figures are the engine's, not the disk's.

mod common;

use std::time::Instant;

use common::{Rng, T0, env, make_dirs};
use fustor_core::view::PersistView;
use fustor_core::{Event, EventType, FsRow, MessageSource, Now};
use fustor_view_fs::{FsView, FsViewConfig};

fn main() {
    let files = env("FILES", 2_000_000);
    let ndirs = env("DIRS", 2_000);
    let per_dir = files / ndirs;
    let mut rng = Rng(0x2545F4914F6CDD1D);
    let dirs = make_dirs(&mut rng, ndirs);
    let view = FsView::new("p", FsViewConfig::default());
    let now = Now::at(T0, 1000.0);
    for (d, dir) in dirs.iter().enumerate() {
        let rows: Vec<FsRow> = (0..per_dir)
            .map(|i| {
                let l = rng.range(8, 38) as usize;
                FsRow::upsert(
                    format!("{dir}/{}.dat", rng.name(l)),
                    T0 - 86_400.0 - (i % 1000) as f64,
                    (d * per_dir + i) as u64,
                    false,
                )
            })
            .collect();
        view.apply(
            &[Event::fs(EventType::Update, MessageSource::Snapshot, rows)],
            now,
        );
    }
    let nodes = fustor_core::view::ViewDriver::node_count(&view);
    let mut bytes = Vec::new();
    let t = Instant::now();
    if let Err(e) = view.write_snapshot(&mut bytes, now) {
        eprintln!("write failed: {e}");
        return;
    }
    let write = t.elapsed().as_secs_f64();
    // `REPS` restores (default 1); the median is reported.
    let mut reads = Vec::new();
    for _ in 0..env("REPS", 1).max(1) {
        let back = FsView::new("p", FsViewConfig::default());
        let t = Instant::now();
        if let Err(e) = back.read_snapshot(&mut bytes.as_slice(), now) {
            eprintln!("read failed: {e}");
            return;
        }
        reads.push(t.elapsed().as_secs_f64());
    }
    eprintln!("restore_secs each: {reads:.2?}");
    reads.sort_by(f64::total_cmp);
    let read = reads[reads.len() / 2];
    println!(
        "persist_scale nodes={nodes} bytes_per_node={:.1} write_secs={write:.2} write_nodes_per_sec={:.0} restore_secs={read:.2} restore_nodes_per_sec={:.0}",
        bytes.len() as f64 / nodes as f64,
        nodes as f64 / write,
        nodes as f64 / read,
    );
}
