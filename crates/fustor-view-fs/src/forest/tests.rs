//! Routing, isolation and lifecycle of the forest container (`consistency.md` §14).
//! The query shapes are tested in `tests/forest.rs`.

use fustor_core::view::{SuspectUpdate, ViewContext, ViewDriver};
use fustor_core::{Event, EventType, FsRow, MessageSource, Now};

use super::ForestView;
use crate::fs::FsViewConfig;

const T0: f64 = 1_700_000_000.0;

fn now() -> Now {
    Now::at(T0, 1000.0)
}

fn forest() -> ForestView {
    ForestView::new("forest", FsViewConfig::default())
}

fn ctx(pipe: &str) -> ViewContext<'_> {
    ViewContext {
        pipe_id: pipe,
        session_id: "s",
        agent_id: "a",
        source_uri: None,
    }
}

fn rt(rows: Vec<FsRow>) -> Vec<Event> {
    vec![Event::fs(EventType::Update, MessageSource::Realtime, rows)]
}

fn file(p: &str) -> FsRow {
    FsRow::upsert(p, T0 - 100.0, 1, false)
}

fn exists(f: &ForestView, pipe: &str, path: &str) -> bool {
    f.member(pipe)
        .is_some_and(|t| t.read().lookup(path).is_some())
}

#[test]
fn routes_by_pipe_and_creates_trees_lazily() {
    let f = forest();
    assert_eq!(f.member_count(), 0);
    let r = f.apply(&rt(vec![file("/x/1"), file("/x/2")]), &ctx("pb"), now());
    assert_eq!(r.rows, 2);
    f.apply(&rt(vec![file("/y")]), &ctx("pa"), now());
    assert_eq!(f.pipes(), vec!["pa", "pb"], "pipe-id order");
    assert!(exists(&f, "pb", "/x/1") && !exists(&f, "pa", "/x/1"));
    assert!(exists(&f, "pa", "/y") && !exists(&f, "pb", "/y"));
    assert_eq!(
        f.member("pa").map(|t| t.id().to_string()),
        Some("forest:pa".into())
    );
    // root + /x + 2 files in pb, root + /y in pa
    assert_eq!(ViewDriver::node_count(&f), 6);
    // A session alone creates a (empty) member too.
    f.session_started(&ctx("pc"));
    assert_eq!(f.pipes(), vec!["pa", "pb", "pc"]);
}

#[test]
fn events_without_pipe_are_dropped() {
    let f = forest();
    let r = f.apply(&rt(vec![file("/x")]), &ctx(""), now());
    assert_eq!(r.rows, 0);
    f.session_started(&ctx(""));
    assert_eq!(f.member_count(), 0);
}

#[test]
fn s96_election_key_is_scoped_per_pipe() {
    let f = forest();
    assert_eq!(f.election_key("pa"), "forest:pa");
    assert_eq!(f.election_key("pb"), "forest:pb");
    assert_eq!(f.driver_name(), "forest-fs");
    assert_eq!(ViewDriver::id(&f), "forest");
}

#[test]
fn delete_and_tombstone_stay_in_their_tree() {
    let f = forest();
    for p in ["pa", "pb"] {
        f.apply(&rt(vec![file("/x/1")]), &ctx(p), now());
    }
    let del = vec![Event::fs(
        EventType::Delete,
        MessageSource::Realtime,
        vec![FsRow::delete("/x/1")],
    )];
    f.apply(&del, &ctx("pa"), now());
    assert!(!exists(&f, "pa", "/x/1"));
    assert!(exists(&f, "pb", "/x/1"));
    let tombs = |p: &str| f.member(p).map(|t| t.read().tombstone_count());
    assert_eq!((tombs("pa"), tombs("pb")), (Some(1), Some(0)));
    // The tombstone of pa blocks a stale snapshot row there, not in pb.
    let snap = vec![Event::fs(
        EventType::Update,
        MessageSource::Snapshot,
        vec![file("/x/1")],
    )];
    f.apply(&snap, &ctx("pa"), now());
    assert!(!exists(&f, "pa", "/x/1"));
}

#[test]
fn suspects_are_per_tree_and_expiry_is_broadcast() {
    let f = forest();
    let mut partial = file("/hot");
    partial.is_atomic_write = Some(false);
    f.apply(&rt(vec![partial.clone()]), &ctx("pa"), now());
    f.apply(&rt(vec![partial]), &ctx("pb"), now());
    f.apply(&rt(vec![file("/cold")]), &ctx("pc"), now());
    let suspects = |p: &str| {
        f.member(p)
            .and_then(|t| t.read().subtree_stats("/"))
            .map(|s| s.suspect_file_count)
    };
    assert_eq!(suspects("pa"), Some(1));
    assert_eq!(suspects("pc"), Some(0));
    assert!(
        f.suspect_paths().is_empty(),
        "no sentinel tasks for forests"
    );
    // Sentinel feedback is broadcast: both trees holding /hot count it.
    let upd = [SuspectUpdate {
        path: "/hot".into(),
        mtime: T0 - 100.0,
        size: Some(1),
    }];
    assert_eq!(f.update_suspects(&upd, now()), 2);
    // Expiry after HOT (30 s) reaches every tree.
    f.expire_suspects(now().plus(31.0));
    assert_eq!((suspects("pa"), suspects("pb")), (Some(0), Some(0)));
}

#[test]
fn audit_is_broadcast_and_session_start_clears_only_its_tree() {
    let f = forest();
    for p in ["pa", "pb"] {
        f.apply(&rt(vec![file("/x")]), &ctx(p), now());
    }
    f.audit_start(now());
    let auditing = |p: &str| f.member(p).map(|t| t.read().stats(T0).is_auditing);
    assert_eq!((auditing("pa"), auditing("pb")), (Some(true), Some(true)));
    // V1 on pa's tree only: its audit in flight is abandoned.
    f.session_started(&ctx("pa"));
    assert_eq!((auditing("pa"), auditing("pb")), (Some(false), Some(true)));
    // audit_end reports true because pb had an audit in progress.
    assert!(f.audit_end(now()));
    assert_eq!(auditing("pb"), Some(false));
    assert!(!f.audit_end(now()), "no audit in flight anywhere");
}

#[test]
fn last_session_close_resets_only_its_tree() {
    let f = forest();
    for p in ["pa", "pb"] {
        f.apply(&rt(vec![file("/x")]), &ctx(p), now());
    }
    f.session_closed(&ctx("pa"), false);
    assert!(
        exists(&f, "pa", "/x"),
        "V4: a non-last close changes nothing"
    );
    f.session_closed(&ctx("pa"), true);
    assert!(!exists(&f, "pa", "/x"));
    assert!(exists(&f, "pb", "/x"));
    assert_eq!(f.pipes(), vec!["pa", "pb"], "the reset tree stays listed");
    f.session_closed(&ctx("unknown"), true);
    assert_eq!(f.member_count(), 2, "a close never creates a tree");
}

#[test]
fn reset_drops_every_tree() {
    let f = forest();
    for p in ["pa", "pb"] {
        f.apply(&rt(vec![file("/x")]), &ctx(p), now());
    }
    let held = f.member("pa");
    ViewDriver::reset(&f);
    assert_eq!(f.member_count(), 0);
    assert_eq!(ViewDriver::node_count(&f), 0);
    // A tree still held by a query is emptied as well.
    assert_eq!(held.map(|t| t.read().node_count()), Some(1));
    f.apply(&rt(vec![file("/y")]), &ctx("pb"), now());
    assert_eq!(f.pipes(), vec!["pb"]);
}

#[test]
fn max_nodes_applies_per_tree() {
    let cfg = FsViewConfig {
        max_nodes: 3,
        ..FsViewConfig::default()
    };
    let f = ForestView::new("forest", cfg);
    let rows = vec![file("/a"), file("/b"), file("/c"), file("/d")];
    let r = f.apply(&rt(rows.clone()), &ctx("pa"), now());
    assert_eq!(r.capacity_refused, 2, "root + 2 files fill the tree of pa");
    let r = f.apply(&rt(rows[..2].to_vec()), &ctx("pb"), now());
    assert_eq!(r.capacity_refused, 0, "pb has its own budget");
}

#[test]
fn persisted_forest_restores_every_member() {
    use fustor_core::view::PersistView;
    let f = forest();
    f.apply(&rt(vec![file("/x/1"), file("/x/2")]), &ctx("pb"), now());
    f.apply(&rt(vec![file("/y")]), &ctx("pa"), now());
    f.session_started(&ctx("pc"));
    let mut bytes = Vec::new();
    f.write_snapshot(&mut bytes, now()).unwrap();
    let back = forest();
    back.read_snapshot(&mut bytes.as_slice(), now()).unwrap();
    assert_eq!(back.pipes(), vec!["pa", "pb", "pc"]);
    assert!(exists(&back, "pb", "/x/2") && exists(&back, "pa", "/y"));
    assert!(!exists(&back, "pa", "/x/1"));
    assert_eq!(ViewDriver::node_count(&back), 6 + 1);
    assert_eq!(
        back.member("pb").map(|t| t.id().to_string()),
        Some("forest:pb".into())
    );
    // A damaged forest leaves the view empty, not half restored.
    let mut bad = bytes.clone();
    let last = bad.len() - 3;
    bad[last] ^= 1;
    assert!(back.read_snapshot(&mut bad.as_slice(), now()).is_err());
    assert_eq!(back.member_count(), 0);
}
