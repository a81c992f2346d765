//! Audit lifecycle A1–A3 with missing-item detection M1–M3, tombstone purge (§13), session
//! effects V1/V2 and scenarios S48–S57.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use fustor_core::Now;
use fustor_view_fs::FsView;

/// `/d` (dir, mtime 100) with `/d/x` and `/d/y` (mtime 50) from a snapshot.
fn s48_base(v: &FsView, t: Now) {
    snap(
        v,
        t,
        vec![dir("/d", 100.0), file("/d/x", 50.0), file("/d/y", 50.0)],
    );
}

// ---------------------------------------------------------------------------------------------
// A1

/// A1: an explicit start sets `is_auditing`; a start within 5 s that follows rows keeps what
/// the audit has seen (and moves `last_audit_start`).
#[test]
fn a1_late_start_keeps_seen() {
    let v = view();
    let t = t0();
    s48_base(&v, t);
    v.audit_start(t);
    assert!(v.read().is_auditing());
    assert!(stats(&v, t).is_auditing);
    audit(&v, t.plus(1.0), vec![dir("/d", 100.0), file("/d/x", 50.0)]);
    v.audit_start(t.plus(3.0)); // late: < 5 s and seen non-empty
    assert!(v.audit_end(t.plus(4.0)));
    assert!(exists(&v, "/d/x"), "M1 with the kept seen set");
    assert!(
        !exists(&v, "/d/y"),
        "/d is still seen, so its children are examined"
    );
    assert_eq!(deletions(&v), strs(&["/d/y"]));
}

/// A1: a start 5 s or more after the previous one clears what was seen.
#[test]
fn a1_start_after_window_clears_seen() {
    let v = view();
    let t = t0();
    s48_base(&v, t);
    v.audit_start(t);
    audit(&v, t.plus(1.0), vec![dir("/d", 100.0), file("/d/x", 50.0)]);
    v.audit_start(t.plus(5.0)); // epoch − start = 5.0, not < 5.0
    assert!(v.audit_end(t.plus(6.0)));
    assert!(
        exists(&v, "/d/y"),
        "/d not seen in the new audit: nothing examined"
    );
    assert!(deletions(&v).is_empty());
}

/// A1: a late start still sets `last_audit_start` to its epoch (M3 reference moves).
#[test]
fn a1_late_start_moves_audit_start() {
    let v = view();
    let t = t0();
    s48_base(&v, t);
    v.audit_start(t);
    audit(
        &v,
        t.plus(1.0),
        vec![dir("/d", 100.0), file("/d/x", 50.0), file("/d/y", 50.0)],
    );
    rt(&v, t.plus(2.0), vec![file("/d/r", 60.0)]); // confirmed at t+2
    v.audit_start(t.plus(3.0)); // late start, last_audit_start = t+3
    v.audit_end(t.plus(4.0));
    assert!(
        !exists(&v, "/d/r"),
        "t+2 is not after the (moved) audit start t+3"
    );
    assert_eq!(deletions(&v), strs(&["/d/r"]));
}

// ---------------------------------------------------------------------------------------------
// A3

/// A3 (S54): audit end without an audit is a no-op — no purge, no count.
#[test]
fn a3_end_without_audit_is_noop() {
    let v = view_with(30.0, 0.5);
    let t = t0();
    rt(&v, t, vec![file("/z", T0)]);
    rt_del(&v, t, &["/z"]);
    assert!(!v.audit_end(t.plus(100.0)));
    let s = stats(&v, t.plus(100.0));
    assert_eq!(s.audit_cycle_count, 0);
    assert_eq!(s.last_audit_finished_at, 0.0);
    assert_eq!(
        v.read().tombstone_count(),
        1,
        "purge only at a real audit end"
    );
}

/// A3 step 4: bookkeeping, and the seen set does not leak into the next cycle.
#[test]
fn a3_end_bookkeeping_and_seen_reset() {
    let v = view();
    let t = t0();
    s48_base(&v, t);
    audit(
        &v,
        t.plus(1.0),
        vec![dir("/d", 100.0), file("/d/x", 50.0), file("/d/y", 50.0)],
    );
    assert!(v.audit_end(t.plus(2.0)));
    let s = stats(&v, t.plus(2.0));
    assert_eq!(s.audit_cycle_count, 1);
    assert_eq!(s.last_audit_finished_at, T0 + 2.0);
    assert!(!s.is_auditing);
    assert!(!v.audit_end(t.plus(3.0)), "already ended");
    // Second cycle reports something else only: /d is not seen in it.
    audit(&v, t.plus(10.0), vec![file("/elsewhere", 1.0)]);
    assert!(v.audit_end(t.plus(11.0)));
    assert!(exists(&v, "/d/x") && exists(&v, "/d/y"));
    assert_eq!(stats(&v, t).audit_cycle_count, 2);
    assert_eq!(stats(&v, t).last_audit_finished_at, T0 + 11.0);
}

/// A3 step 1 / §13: keep tombstones with `physical_ts >= epoch − TTL`.
#[test]
fn a3_tombstone_purge_at_audit_end() {
    let v = view_with(30.0, 10.0);
    let t = t0();
    rt_del(&v, t, &["/old"]);
    rt_del(&v, t.plus(2.0), &["/edge"]);
    rt_del(&v, t.plus(8.0), &["/young"]);
    audit(&v, t.plus(12.0), vec![file("/x", 1.0)]);
    v.audit_end(t.plus(12.0));
    let st = v.read();
    assert!(
        st.tombstone("/old").is_none(),
        "physical t < t+12−10: purged"
    );
    assert!(
        st.tombstone("/edge").is_some(),
        "physical == epoch − TTL is kept"
    );
    assert!(st.tombstone("/young").is_some());
    assert_eq!(st.tombstone_count(), 2);
}

/// A3 steps 2–3: a missing subdirectory is removed with its subtree; only its own path is a blind
/// deletion; descendants leave the suspect and blind-addition lists; no tombstone.
#[test]
fn a3_missing_subdirectory_removed_without_tombstone() {
    let v = view();
    let t = t0();
    snap(
        &v,
        t,
        vec![
            dir("/d", 100.0),
            dir("/d/sub", 100.0),
            file("/d/sub/hot", T0),
        ],
    );
    ondemand(&v, t, vec![file("/d/sub/blind", T0 - 3600.0)]);
    assert_eq!(suspects(&v), strs(&["/d/sub/hot"]));
    assert_eq!(additions(&v), strs(&["/d/sub/blind"]));
    audit(&v, t.plus(1.0), vec![dir("/d", 100.0)]);
    v.audit_end(t.plus(2.0));
    for p in ["/d/sub", "/d/sub/hot", "/d/sub/blind"] {
        assert!(!exists(&v, p), "{p}");
    }
    assert!(exists(&v, "/d"));
    assert_eq!(deletions(&v), strs(&["/d/sub"]));
    assert!(suspects(&v).is_empty());
    assert!(additions(&v).is_empty());
    assert_eq!(v.read().tombstone_count(), 0);
    // No tombstone: the same old evidence may bring it back.
    snap(&v, t.plus(3.0), vec![dir("/d/sub", 100.0)]);
    assert!(exists(&v, "/d/sub"));
    check(&v);
}

/// A3: a blind addition deleted by the audit leaves the additions list.
#[test]
fn a3_deleted_child_leaves_blind_additions() {
    let v = view();
    let t = t0();
    snap(&v, t, vec![dir("/d", 100.0)]);
    audit(&v, t, vec![file("/d/b", T0 - 3600.0)]);
    v.audit_end(t);
    assert_eq!(additions(&v), strs(&["/d/b"]));
    audit(&v, t.plus(1.0), vec![dir("/d", 100.0)]);
    v.audit_end(t.plus(1.0));
    assert!(additions(&v).is_empty());
    assert_eq!(deletions(&v), strs(&["/d/b"]));
}

// ---------------------------------------------------------------------------------------------
// M1–M3

#[test]
fn m1_seen_children_survive() {
    let v = view();
    let t = t0();
    s48_base(&v, t);
    audit(&v, t.plus(1.0), vec![dir("/d", 100.0), file("/d/x", 50.0)]);
    v.audit_end(t.plus(2.0));
    assert!(exists(&v, "/d/x"));
    assert!(!exists(&v, "/d/y"));
}

/// M2: a tombstoned path is never a blind deletion. In this engine a tombstoned path never has a
/// node (ancestor tombstones are honoured), so M2 holds by construction; the audit must not list
/// the tombstoned path as a deletion either.
#[test]
fn m2_tombstoned_path_is_never_a_blind_deletion() {
    let v = view();
    let t = t0();
    snap(&v, t, vec![dir("/d", 100.0), file("/d/keep", 50.0)]);
    rt(&v, t, vec![dir("/d/sub", T0)]);
    rt_del(&v, t, &["/d/sub"]);
    assert!(!exists(&v, "/d/sub"));
    assert!(v.read().tombstone("/d/sub").is_some());
    audit(
        &v,
        t.plus(10.0),
        vec![dir("/d", 100.0), file("/d/keep", 50.0)],
    );
    v.audit_end(t.plus(11.0));
    assert!(deletions(&v).is_empty());
    assert!(exists(&v, "/d/keep"));
}

/// M3 for auto-created parents: a realtime file whose parent did not exist yet creates it, and
/// both survive an audit that listed the grandparent before they appeared.
#[test]
fn m3_realtime_created_parent_is_protected() {
    let v = view();
    let t = t0();
    snap(&v, t, vec![dir("/d", 100.0)]);
    audit(&v, t.plus(1.0), vec![dir("/d", 100.0)]);
    rt(&v, t.plus(2.0), vec![file("/d/new/f.txt", T0)]);
    v.audit_end(t.plus(3.0));
    assert!(exists(&v, "/d/new"));
    assert!(exists(&v, "/d/new/f.txt"));
    assert!(deletions(&v).is_empty());
}

/// M3 (S51): a realtime confirmation newer than the audit start protects the child.
#[test]
fn m3_stale_evidence_protection() {
    let v = view();
    let t = t0();
    snap(&v, t, vec![dir("/d", 100.0), file("/d/x", 50.0)]);
    audit(&v, t.plus(1.0), vec![dir("/d", 100.0), file("/d/x", 50.0)]);
    rt(&v, t.plus(2.0), vec![file("/d/copied.txt", T0 - 10_000.0)]);
    v.audit_end(t.plus(3.0));
    assert!(exists(&v, "/d/copied.txt"));
    assert!(deletions(&v).is_empty());
}

/// M3: realtime confirmations at or before the audit start do not protect.
#[test]
fn m3_requires_strictly_newer_confirmation() {
    let v = view();
    let t = t0();
    snap(&v, t, vec![dir("/d", 100.0)]);
    rt(&v, t.plus(1.0), vec![file("/d/same", 10.0)]);
    audit(&v, t.plus(1.0), vec![dir("/d", 100.0)]); // start = t+1 = last_updated
    v.audit_end(t.plus(2.0));
    assert!(!exists(&v, "/d/same"));
}

/// A silent directory (`audit_skipped: true`) protects its direct children (S49).
#[test]
fn m_silent_directory_protects_children() {
    let v = view();
    let t = t0();
    s48_base(&v, t);
    audit(&v, t.plus(1.0), vec![silent_dir("/d", 100.0)]);
    v.audit_end(t.plus(2.0));
    assert!(exists(&v, "/d/x") && exists(&v, "/d/y"));
    assert_eq!(field(&v, "/d", "audit_skipped"), true);
    assert!(deletions(&v).is_empty());
}

/// The root is examined when the audit reports it, but is never deleted itself.
#[test]
fn m_root_reported_examines_its_children() {
    let v = view();
    let t = t0();
    snap(&v, t, vec![file("/a", 10.0), file("/b", 10.0)]);
    audit(&v, t.plus(1.0), vec![dir("/", 10.0), file("/a", 10.0)]);
    v.audit_end(t.plus(2.0));
    assert!(exists(&v, "/"));
    assert!(exists(&v, "/a"));
    assert!(!exists(&v, "/b"));
    assert_eq!(deletions(&v), strs(&["/b"]));
}

// ---------------------------------------------------------------------------------------------
// V1 / V2

/// V1: a new session clears blind spots and abandons the audit in flight; nothing else changes.
#[test]
fn v1_session_start_clears_blind_spots() {
    let v = view();
    let t = t0();
    s48_base(&v, t);
    audit(
        &v,
        t.plus(1.0),
        vec![dir("/d", 100.0), file("/d/x", 50.0), file("/d/n", T0)],
    );
    v.audit_end(t.plus(2.0));
    assert_eq!(deletions(&v), strs(&["/d/y"]));
    assert_eq!(additions(&v), strs(&["/d/n"]));
    rt_del(&v, t.plus(2.0), &["/gone"]);
    audit(&v, t.plus(3.0), vec![dir("/d", 100.0)]); // in-flight audit, /d seen
    assert!(v.read().is_auditing());

    v.session_started();
    let bs = v.read().blind_spots_value();
    assert_eq!(bs["additions_count"], 0);
    assert_eq!(bs["deletion_count"], 0);
    assert!(additions(&v).is_empty() && deletions(&v).is_empty());
    let s = stats(&v, t.plus(3.0));
    assert!(!s.has_blind_spot);
    assert!(!s.is_auditing);
    assert_eq!(s.audit_cycle_count, 1, "V1 keeps counters");
    assert!(!v.audit_end(t.plus(4.0)), "audit abandoned");
    // Tree, node flags, suspects, tombstones untouched.
    assert!(exists(&v, "/d/n"));
    assert!(agent_missing(&v, "/d/n"));
    assert_eq!(suspects(&v), strs(&["/d/n"]));
    assert!(v.read().tombstone("/gone").is_some());
    // The next audit starts afresh: /d seen before V1 no longer counts.
    audit(&v, t.plus(5.0), vec![file("/d/x", 50.0)]);
    v.audit_end(t.plus(6.0));
    assert!(exists(&v, "/d/n"), "/d not seen in the new audit");
}

/// V2: reset empties everything (tree, tombstones, suspects, blind spots, audit state, counters,
/// clock).
#[test]
fn v2_reset_empties_view() {
    let v = view();
    let t = t0();
    calibrate(&v, t, 100.0, 5);
    s48_base(&v, t);
    rt(&v, t, vec![partial("/p", T0, 1)]);
    rt_del(&v, t, &["/z"]);
    audit(
        &v,
        t.plus(1.0),
        vec![dir("/d", 100.0), file("/d/x", 50.0), file("/d/n", T0)],
    );
    v.audit_end(t.plus(2.0));
    audit(&v, t.plus(3.0), vec![file("/q", 1.0)]);
    assert!(stats(&v, t).has_blind_spot && stats(&v, t).is_auditing);

    v.reset();
    let t9 = t.plus(9.0);
    let root = tree(&v, "/", full()).unwrap();
    assert_eq!(root["children"].as_array().unwrap().len(), 0);
    let s = stats(&v, t9);
    assert_eq!(s.item_count, 1);
    assert_eq!(
        (s.total_files, s.total_directories, s.total_size),
        (0, 1, 0)
    );
    assert!(!s.has_blind_spot);
    assert_eq!(s.suspect_file_count, 0);
    assert_eq!(s.audit_cycle_count, 0);
    assert_eq!(s.last_audit_finished_at, 0.0);
    assert!(!s.is_auditing);
    assert_eq!(s.latency_ms, 0.0);
    assert_eq!(
        s.logical_now,
        T0 + 9.0,
        "clock histogram cleared: watermark = epoch"
    );
    assert_eq!(s.staleness_seconds, 0.0);
    assert!(s.oldest_item_path.is_none());
    assert!(suspects(&v).is_empty());
    assert_eq!(v.read().tombstone_count(), 0);
    assert!(!v.audit_end(t9));
    rt(&v, t9, vec![file("/z", 1.0)]);
    assert!(exists(&v, "/z"), "no tombstone left");
    check(&v);
}

// ---------------------------------------------------------------------------------------------
// Scenarios S48–S57

#[test]
fn s48_missing_item_detection() {
    let v = view_f0();
    let t = t0();
    s48_base(&v, t);
    audit(&v, t.plus(1.0), vec![dir("/d", 100.0), file("/d/x", 50.0)]);
    v.audit_end(t.plus(2.0));
    assert!(!exists(&v, "/d/y"));
    assert!(exists(&v, "/d/x"));
    let bs = v.read().blind_spots_value();
    assert_eq!(bs["deletion_count"], 1);
    assert_eq!(bs["deletions"], serde_json::json!(["/d/y"]));
    assert!(stats(&v, t).has_blind_spot);
}

#[test]
fn s49_silent_directory_protects_children() {
    let v = view_f0();
    let t = t0();
    s48_base(&v, t);
    audit(&v, t.plus(1.0), vec![silent_dir("/d", 100.0)]);
    v.audit_end(t.plus(2.0));
    assert!(exists(&v, "/d/x") && exists(&v, "/d/y"));
    let d = tree(&v, "/d", full()).unwrap();
    assert_eq!(d["audit_skipped"], true);
}

#[test]
fn s50_unscanned_directory_untouched() {
    let v = view_f0();
    let t = t0();
    s48_base(&v, t);
    snap(&v, t, vec![file("/other/k.txt", 50.0)]);
    audit(
        &v,
        t.plus(1.0),
        vec![dir("/d", 100.0), file("/d/x", 50.0), file("/d/y", 50.0)],
    );
    v.audit_end(t.plus(2.0));
    assert!(exists(&v, "/other/k.txt"));
    assert!(deletions(&v).is_empty());
}

#[test]
fn s51_stale_evidence_protection() {
    let v = view_f0();
    let t = t0();
    snap(&v, t, vec![dir("/d", 100.0), file("/d/x", 50.0)]);
    audit(&v, t.plus(1.0), vec![dir("/d", 100.0), file("/d/x", 50.0)]);
    rt(&v, t.plus(2.0), vec![file("/d/copied.txt", T0 - 10_000.0)]);
    v.audit_end(t.plus(3.0));
    assert!(exists(&v, "/d/copied.txt"));
    assert!(!deletions(&v).contains(&"/d/copied.txt".to_string()));
}

#[test]
fn s52_snapshot_nodes_not_protected() {
    let v = view_f0();
    let t = t0();
    snap(&v, t, vec![dir("/d", 100.0), file("/d/x", 50.0)]);
    audit(&v, t.plus(1.0), vec![dir("/d", 100.0), file("/d/x", 50.0)]);
    snap(&v, t.plus(2.0), vec![file("/d/copied.txt", T0 - 10_000.0)]);
    v.audit_end(t.plus(3.0));
    assert!(!exists(&v, "/d/copied.txt"));
    assert_eq!(deletions(&v), strs(&["/d/copied.txt"]));
}

#[test]
fn s53_tombstoned_path_never_blind_deletion() {
    let v = view_f0();
    let t = t0();
    snap(
        &v,
        t,
        vec![
            dir("/d", 100.0),
            file("/d/gone.txt", 50.0),
            file("/d/k", 50.0),
        ],
    );
    rt_del(&v, t.plus(0.1), &["/d/gone.txt"]);
    audit(&v, t.plus(0.2), vec![dir("/d", 100.0), file("/d/k", 50.0)]);
    v.audit_end(t.plus(0.3));
    assert!(!deletions(&v).contains(&"/d/gone.txt".to_string()));
    assert!(deletions(&v).is_empty());
}

#[test]
fn s54_audit_end_without_audit_is_noop() {
    let v = view_f0();
    let t = t0();
    audit(&v, t, vec![file("/a", 1.0)]);
    assert!(v.audit_end(t));
    assert!(!v.audit_end(t.plus(1.0)));
    assert_eq!(stats(&v, t).audit_cycle_count, 1);
    assert_eq!(stats(&v, t).last_audit_finished_at, T0);
}

#[test]
fn s55_explicit_audit_start() {
    let v = view_f0();
    let t = t0();
    v.audit_start(t);
    assert!(stats(&v, t).is_auditing);
    assert!(v.audit_end(t.plus(1.0)));
    let s = stats(&v, t.plus(1.0));
    assert!(!s.is_auditing);
    assert_eq!(s.audit_cycle_count, 1);
}

#[test]
fn s56_blind_deletion_cleared_on_resight() {
    let v = view_f0();
    let t = t0();
    s48_base(&v, t);
    audit(&v, t.plus(1.0), vec![dir("/d", 100.0), file("/d/x", 50.0)]);
    v.audit_end(t.plus(2.0));
    assert_eq!(deletions(&v), strs(&["/d/y"]));
    audit(
        &v,
        t.plus(3.0),
        vec![audit_file("/d/y", 50.0, "/d", Some(100.0))],
    );
    assert!(deletions(&v).is_empty());
    assert!(exists(&v, "/d/y"));
    assert_eq!(additions(&v), strs(&["/d/y"]));
    assert!(agent_missing(&v, "/d/y"));

    // Variant without parent_mtime: dropped by C3, deletion still cleared.
    let v = view_f0();
    s48_base(&v, t);
    audit(&v, t.plus(1.0), vec![dir("/d", 100.0), file("/d/x", 50.0)]);
    v.audit_end(t.plus(2.0));
    audit(&v, t.plus(3.0), vec![audit_file("/d/y", 50.0, "/d", None)]);
    assert!(!exists(&v, "/d/y"));
    assert!(deletions(&v).is_empty());
}

#[test]
fn s57_blind_spots_persist_across_audits_reset_per_session() {
    let v = view_f0();
    let t = t0();
    audit(
        &v,
        t,
        vec![file("/A.txt", T0 - 3600.0), file("/C.txt", T0 - 3600.0)],
    );
    v.audit_end(t.plus(1.0));
    assert_eq!(additions(&v), strs(&["/A.txt", "/C.txt"]));
    rt_del(&v, t.plus(2.0), &["/A.txt"]);
    audit(&v, t.plus(3.0), vec![file("/B.txt", T0 - 3600.0)]);
    v.audit_end(t.plus(4.0));
    assert_eq!(additions(&v), strs(&["/B.txt", "/C.txt"]));
    assert_eq!(v.read().blind_spots_value()["additions_count"], 2);
    v.session_started();
    let bs = v.read().blind_spots_value();
    assert_eq!(bs["additions_count"], 0);
    assert_eq!(bs["deletion_count"], 0);
}

// ---------------------------------------------------------------------------------------------
// The audit's own directory row clears `audit_skipped` (issue 9, item 1)

/// The agent opens every audit with the root row marked `audit_skipped` (to protect the root's
/// children until the walk lists it). When the walk's real root row carries the same mtime, C2
/// used to drop it with its flag, so the root stayed "silent" and a top-level file deleted by a
/// host without an agent was never removed (S75 at the root).
#[test]
fn s75_listed_root_row_with_same_mtime_clears_the_opening_skip() {
    let v = view();
    let t = t0();
    snap(
        &v,
        t,
        vec![dir("/", 100.0), file("/bd.txt", 50.0), file("/keep", 50.0)],
    );
    // Host C deletes /bd.txt: the root's mtime moves to 120.
    audit(&v, t.plus(1.0), vec![silent_dir("/", 120.0)]); // opening row
    audit(&v, t.plus(2.0), vec![dir("/", 120.0), file("/keep", 50.0)]);
    assert_eq!(field(&v, "/", "audit_skipped"), false);
    assert!(v.audit_end(t.plus(3.0)));
    assert!(!exists(&v, "/bd.txt"), "deleted by C, found by the audit");
    assert!(exists(&v, "/keep"));
    assert_eq!(deletions(&v), strs(&["/bd.txt"]));
}

/// Same for any directory: a row that lists it during an audit clears a skip left by an earlier
/// audit even when its mtime did not move (an agent restarted after `kill -9` has no mtime cache,
/// so its first audit lists every directory with the mtimes the view already holds).
#[test]
fn listed_dir_row_with_same_mtime_clears_an_earlier_skip() {
    let v = view();
    let t = t0();
    snap(
        &v,
        t,
        vec![dir("/d", 100.0), file("/d/x", 50.0), file("/d/y", 50.0)],
    );
    audit(&v, t.plus(1.0), vec![silent_dir("/d", 100.0)]);
    assert!(v.audit_end(t.plus(2.0)));
    assert_eq!(field(&v, "/d", "audit_skipped"), true);
    audit(&v, t.plus(10.0), vec![dir("/d", 100.0), file("/d/x", 50.0)]);
    assert_eq!(field(&v, "/d", "audit_skipped"), false);
    assert!(v.audit_end(t.plus(11.0)));
    assert!(!exists(&v, "/d/y"));
    assert!(exists(&v, "/d/x"));
}

/// A stale listed row does not move the directory's attributes (C2 still holds for them).
#[test]
fn listed_dir_row_older_than_the_view_keeps_the_newer_mtime() {
    let v = view();
    let t = t0();
    snap(&v, t, vec![dir("/d", 100.0)]);
    rt(&v, t.plus(1.0), vec![dir("/d", 130.0)]);
    audit(&v, t.plus(2.0), vec![silent_dir("/d", 130.0)]);
    audit(&v, t.plus(3.0), vec![dir("/d", 120.0)]);
    assert_eq!(mtime(&v, "/d"), 130.0);
    assert_eq!(field(&v, "/d", "audit_skipped"), false);
}
