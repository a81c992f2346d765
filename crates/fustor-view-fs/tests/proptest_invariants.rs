//! Random interleavings of realtime, snapshot, audit and on-demand evidence over a small path
//! alphabet keep the view's invariants (issue: foundation, "Property tests").

use fustor_core::{Event, EventType, FsRow, MessageSource, Now};
use fustor_view_fs::fs::{SuspectUpdate, TreeOptions};
use fustor_view_fs::{FsView, FsViewConfig};
use proptest::prelude::*;
use serde_json::Value;

const T0: f64 = 1_700_000_000.0;

#[derive(Debug, Clone)]
enum Op {
    Upsert {
        src: MessageSource,
        path: String,
        dir: bool,
        mtime: f64,
        size: u64,
        partial: bool,
        skipped: bool,
        parent_mtime: Option<f64>,
    },
    Delete {
        src: MessageSource,
        path: String,
        mtime: Option<f64>,
    },
    AuditStart,
    AuditEnd,
    SessionStart,
    Sentinel {
        path: String,
        mtime: f64,
    },
    Advance(f64),
}

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!["a", "b", "x"]), 1..4)
        .prop_map(|c| format!("/{}", c.join("/")))
}

fn source() -> impl Strategy<Value = MessageSource> {
    prop::sample::select(vec![
        MessageSource::Realtime,
        MessageSource::Realtime,
        MessageSource::Snapshot,
        MessageSource::Audit,
        MessageSource::OnDemandJob,
    ])
}

fn op() -> impl Strategy<Value = Op> {
    let mtime = prop::sample::select(vec![T0 - 100_000.0, T0 - 50.0, T0 - 10.0, T0, T0 + 5.0]);
    prop_oneof![
        6 => (source(), path(), any::<bool>(), mtime.clone(), 0u64..5, any::<bool>(), prop::bool::weighted(0.15), prop::option::of(mtime.clone()))
            .prop_map(|(src, path, dir, mtime, size, partial, skipped, parent_mtime)| Op::Upsert { src, path, dir, mtime, size, partial, skipped, parent_mtime }),
        3 => (source(), path(), prop::option::of(mtime.clone())).prop_map(|(src, path, mtime)| Op::Delete { src, path, mtime }),
        1 => Just(Op::AuditStart),
        1 => Just(Op::AuditEnd),
        1 => Just(Op::SessionStart),
        1 => (path(), mtime).prop_map(|(path, mtime)| Op::Sentinel { path, mtime }),
        2 => (0.0f64..20.0).prop_map(Op::Advance),
    ]
}

fn parent_of(p: &str) -> String {
    match p.rfind('/') {
        Some(0) | None => "/".to_string(),
        Some(i) => p[..i].to_string(),
    }
}

/// Counts (files, dirs incl. root, bytes) by walking the `/tree` JSON.
fn walk(v: &Value, acc: &mut (u64, u64, u64)) {
    if v["content_type"] == "directory" {
        acc.1 += 1;
        for c in v["children"].as_array().into_iter().flatten() {
            walk(c, acc);
        }
    } else {
        acc.0 += 1;
        acc.2 += v["size"].as_u64().unwrap_or(0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_interleavings_keep_invariants(ops in prop::collection::vec(op(), 1..60)) {
        let view = FsView::new("p", FsViewConfig::default().with_hot(5.0));
        let mut now = Now::at(T0, 1000.0);
        for op in ops {
            match &op {
                Op::Upsert { src, path, dir, mtime, size, partial, skipped, parent_mtime } => {
                    let mut row = FsRow::upsert(path.clone(), *mtime, *size, *dir);
                    if *src == MessageSource::Realtime && *partial { row.is_atomic_write = Some(false); }
                    if *src == MessageSource::Audit {
                        if *dir { row.audit_skipped = Some(*skipped); }
                        row.parent_path = Some(parent_of(path));
                        row.parent_mtime = *parent_mtime;
                    }
                    view.apply(&[Event::fs(EventType::Update, *src, vec![row])], now);
                }
                Op::Delete { src, path, mtime } => {
                    let mut row = FsRow::delete(path.clone());
                    row.modified_time = *mtime;
                    view.apply(&[Event::fs(EventType::Delete, *src, vec![row])], now);
                }
                Op::AuditStart => view.audit_start(now),
                Op::AuditEnd => { view.audit_end(now); }
                Op::SessionStart => view.session_started(),
                Op::Sentinel { path, mtime } => {
                    view.update_suspects(&[SuspectUpdate { path: path.clone(), mtime: *mtime, size: None }], now);
                }
                Op::Advance(s) => { now = now.plus(*s); view.expire_suspects(now); }
            }
            let st = view.read();
            // Parents exist, aggregates equal a recomputation, no path is both file and dir,
            // side tables only point at live nodes.
            if let Err(e) = st.check_invariants() { prop_assert!(false, "after {:?}: {}", op, e); }
            // A tombstoned path is absent (it is removed when a strictly newer row reincarnates it).
            for p in ["/a", "/b", "/x", "/a/a", "/a/b", "/a/x", "/b/a", "/b/x", "/x/a", "/a/b/x", "/a/a/a"] {
                if st.tombstone(p).is_some() {
                    prop_assert!(st.is_dir_at(p).is_none(), "tombstoned {} present after {:?}", p, op);
                }
            }
            // Stats equal a brute-force walk of the tree.
            let tree = st.tree_value("/", &TreeOptions::default()).unwrap();
            let mut acc = (0, 0, 0);
            walk(&tree, &mut acc);
            let stats = st.stats(now.epoch);
            prop_assert_eq!((stats.total_files, stats.total_directories, stats.total_size), acc);
            prop_assert_eq!(stats.item_count, acc.0 + acc.1);
            let suspects = st.suspect_list().len() as u64;
            prop_assert!(stats.suspect_file_count <= suspects);
        }
    }

    /// Realtime evidence is applied as is: after any history, a realtime upsert with a newer
    /// mtime than every tombstone makes the path visible with exactly that row's attributes.
    #[test]
    fn realtime_upsert_is_visible(ops in prop::collection::vec(op(), 0..30), p in path(), size in 0u64..100) {
        let view = FsView::new("p", FsViewConfig::default());
        let now = Now::at(T0, 1000.0);
        for op in ops {
            if let Op::Upsert { src, path, dir, mtime, size, .. } = op {
                view.apply(&[Event::fs(EventType::Update, src, vec![FsRow::upsert(path, mtime, size, dir)])], now);
            }
        }
        let row = FsRow::upsert(p.clone(), T0 + 1000.0, size, false);
        view.apply(&[Event::fs(EventType::Update, MessageSource::Realtime, vec![row])], now);
        let st = view.read();
        let node = st.metadata_value(&p).unwrap();
        prop_assert_eq!(node["size"].as_u64(), Some(size));
        prop_assert_eq!(node["content_type"].as_str(), Some("file"));
        prop_assert_eq!(node["agent_missing"].as_bool(), Some(false));
    }
}
