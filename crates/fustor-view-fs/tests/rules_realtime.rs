//! Per-row preamble (P1–P4), realtime rules (R1–R3), tree mutation (§7.1–7.3) and the realtime
//! scenarios S31–S40 of `scenarios.md`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use fustor_core::{Event, EventType, FsRow, MessageSource};
use fustor_view_fs::FsViewConfig;

// ---------------------------------------------------------------------------------------------
// P1–P4

/// P1/A2: the first audit event opens the audit at its epoch, once; later audit events of the same
/// audit do not move `last_audit_start` (observable through M3).
#[test]
fn p1_implicit_audit_start() {
    let v = view();
    let t = t0();
    snap(
        &v,
        t,
        vec![dir("/d", 100.0), file("/d/x", 50.0), file("/d/y", 50.0)],
    );
    assert!(
        !stats(&v, t).is_auditing,
        "a snapshot does not start an audit"
    );
    assert!(!v.read().is_auditing());

    audit(&v, t.plus(10.0), vec![dir("/d", 100.0)]);
    assert!(
        stats(&v, t.plus(10.0)).is_auditing,
        "P1: audit event starts the audit"
    );

    // Realtime confirmation after the audit started (t+10) ...
    rt(&v, t.plus(11.0), vec![file("/d/new.txt", T0 - 5000.0)]);
    // ... and a second audit event later: must NOT restart the audit at t+12.
    audit(&v, t.plus(12.0), vec![file("/d/x", 50.0)]);
    assert!(v.audit_end(t.plus(13.0)));

    assert!(
        exists(&v, "/d/new.txt"),
        "M3 with last_audit_start = t+10 protects it"
    );
    assert!(exists(&v, "/d/x"));
    assert!(!exists(&v, "/d/y"), "unseen child is deleted");
    assert_eq!(deletions(&v), strs(&["/d/y"]));
    check(&v);
}

/// P2/K1: only realtime rows with an mtime sample the clock.
#[test]
fn p2_clock_samples_only_realtime_rows_with_mtime() {
    let v = view();
    let t = t0();
    snap(&v, t, vec![file("/s", T0 - 500.0)]);
    audit(&v, t, vec![file("/a", T0 - 500.0)]);
    ondemand(&v, t, vec![file("/o", T0 - 500.0)]);
    assert_eq!(watermark(&v, t), T0, "compensation rows never sample");
    let no_mtime = FsRow {
        path: Some("/n".into()),
        ..Default::default()
    };
    rt(&v, t, vec![no_mtime]);
    assert_eq!(watermark(&v, t), T0, "a null mtime never samples");
    assert!(exists(&v, "/n"));
    assert_eq!(mtime(&v, "/n"), 0.0, "§7.1: absent mtime is 0.0");
    rt(&v, t, vec![file("/r", T0 - 500.0)]);
    assert_eq!(watermark(&v, t), T0 - 500.0);
    assert_eq!(stats(&v, t).logical_now, T0 - 500.0);
}

/// P3: latency of the last processed row, against the watermark, never negative.
#[test]
fn p3_last_event_latency() {
    let v = view();
    let t = t0();
    rt(&v, t, vec![file("/a", T0 - 2.5)]); // d = trunc(2.5) = 2 -> wm = T0 - 2
    assert_eq!(watermark(&v, t), T0 - 2.0);
    assert_close(stats(&v, t).latency_ms, 500.0, 1e-3);
    snap(&v, t, vec![file("/b", T0 - 12.0)]);
    assert_close(stats(&v, t).latency_ms, 10_000.0, 1e-3);
    snap(&v, t, vec![file("/c", T0 + 100.0)]);
    assert_eq!(stats(&v, t).latency_ms, 0.0, "future mtime: max(0, ..)");
    snap(&v, t, vec![file("/d", T0 - 12.0)]);
    rt_del(&v, t, &["/d"]);
    assert_eq!(
        stats(&v, t).latency_ms,
        0.0,
        "row without mtime: watermark − watermark"
    );
}

/// P4: an audit *delete* row also marks its path as seen, so M1 protects the node even when
/// 6.4 ignores the delete because the tree holds a newer mtime.
#[test]
fn p4_audit_delete_row_marks_path_seen() {
    let v = view();
    let t = t0();
    snap(
        &v,
        t,
        vec![dir("/d", 100.0), file("/d/a", 500.0), file("/d/b", 500.0)],
    );
    audit(&v, t.plus(1.0), vec![dir("/d", 100.0)]);
    let mut stale = FsRow::delete("/d/a");
    stale.modified_time = Some(100.0); // older than the tree's 500 -> 6.4 ignores it
    audit_del(&v, t.plus(1.0), vec![stale]);
    assert!(
        exists(&v, "/d/a"),
        "6.4: newer node wins over the audit delete"
    );
    assert!(v.audit_end(t.plus(2.0)));
    assert!(exists(&v, "/d/a"), "P4 + M1: /d/a was seen by the audit");
    assert!(!exists(&v, "/d/b"));
    assert_eq!(deletions(&v), strs(&["/d/b"]));
    check(&v);
}

/// P4: an audit upsert row removes its path from blind deletions even when later rules drop it;
/// an audit delete row does not.
#[test]
fn p4_audit_upsert_clears_blind_deletion() {
    let v = view();
    let t = t0();
    snap(
        &v,
        t,
        vec![dir("/d", 100.0), file("/d/x", 50.0), file("/d/y", 50.0)],
    );
    audit(&v, t.plus(1.0), vec![dir("/d", 100.0), file("/d/x", 50.0)]);
    v.audit_end(t.plus(2.0));
    assert_eq!(deletions(&v), strs(&["/d/y"]));
    // Snapshot rows never clear blind deletions (C6).
    snap(&v, t.plus(3.0), vec![file("/d/other", 60.0)]);
    assert_eq!(deletions(&v), strs(&["/d/y"]));
    // An audit row dropped by the parent guard (no parent_mtime, parent mtime 100 > 0) still
    // clears the deletion.
    audit(&v, t.plus(4.0), vec![audit_file("/d/y", 50.0, "/d", None)]);
    assert!(!exists(&v, "/d/y"), "C3 dropped the row");
    assert!(deletions(&v).is_empty(), "P4 cleared the blind deletion");
}

// ---------------------------------------------------------------------------------------------
// R1–R3

/// R1: a tombstone drops realtime rows whose mtime is not newer than its logical ts.
#[test]
fn r1_tombstone_blocks_zombie() {
    let v = view();
    let t = t0();
    rt(&v, t, vec![file("/z.txt", T0 - 10.0)]); // skew 10
    rt_del(&v, t, &["/z.txt"]);
    let ts = v
        .read()
        .tombstone("/z.txt")
        .expect("R3 creates a tombstone");
    assert_eq!(ts.logical, T0 - 10.0);
    let rep = rt(&v, t.plus(1.0), vec![file("/z.txt", T0 - 10.0)]);
    assert_eq!(rep.zombies, 1);
    assert!(!exists(&v, "/z.txt"));
    // `cp -p` of an old file: still a zombie.
    rt(&v, t.plus(2.0), vec![file("/z.txt", T0 - 5000.0)]);
    assert!(!exists(&v, "/z.txt"));
    assert_eq!(v.read().tombstone_count(), 1);
}

/// R1: reincarnation needs mtime > logical ts + 1e-5 and removes the tombstone.
#[test]
fn r1_reincarnation_margin() {
    let v = view();
    let t = t0();
    rt(&v, t, vec![file("/z", T0 - 10.0)]);
    rt_del(&v, t, &["/z"]);
    let l = v.read().tombstone("/z").unwrap().logical;
    rt(&v, t, vec![file("/z", l + 5e-6)]);
    assert!(!exists(&v, "/z"), "within TOMB_EPS: zombie");
    assert!(v.read().tombstone("/z").is_some());
    rt(&v, t, vec![file("/z", l + 2e-5)]);
    assert!(exists(&v, "/z"), "beyond TOMB_EPS: reincarnation");
    assert!(
        v.read().tombstone("/z").is_none(),
        "reincarnation removes the tombstone"
    );
    assert_eq!(v.read().tombstone_count(), 0);
}

/// R2: a partial write is suspect for HOT with renewal; a finished write clears it.
#[test]
fn r2_partial_write_suspect_and_close() {
    let v = view(); // HOT 30
    let t = t0();
    rt(&v, t, vec![partial("/big.bin", T0, 100)]);
    assert!(is_suspect(&v, "/big.bin"));
    assert_eq!(suspect_until(&v, "/big.bin"), Some(MONO0 + 30.0));
    rt(&v, t.plus(10.0), vec![partial("/big.bin", T0 + 10.0, 200)]);
    assert_eq!(
        suspect_until(&v, "/big.bin"),
        Some(MONO0 + 10.0 + 30.0),
        "renewal"
    );
    assert_eq!(size(&v, "/big.bin"), 200);
    assert_eq!(stats(&v, t).suspect_file_count, 1);
    rt(&v, t.plus(11.0), vec![atomic("/big.bin", T0 + 11.0, 300)]);
    assert!(!is_suspect(&v, "/big.bin"));
    assert!(suspects(&v).is_empty());
    assert_eq!(stats(&v, t).suspect_file_count, 0);
    check(&v);
}

/// R2: `is_atomic_write` absent counts as a finished write.
#[test]
fn r2_absent_atomic_flag_clears_suspect() {
    let v = view();
    let t = t0();
    rt(&v, t, vec![partial("/f", T0, 1)]);
    assert!(is_suspect(&v, "/f"));
    rt(&v, t.plus(1.0), vec![file("/f", T0 + 1.0)]); // is_atomic_write: None
    assert!(!is_suspect(&v, "/f"));
    assert!(suspects(&v).is_empty());
}

/// R2: realtime clears both blind-spot lists for the path and sets known_by_agent; `insert` is
/// an upsert.
#[test]
fn r2_clears_blind_spots_and_marks_known() {
    let v = view();
    let t = t0();
    snap(
        &v,
        t,
        vec![dir("/d", 100.0), file("/d/x", 50.0), file("/d/y", 50.0)],
    );
    audit(
        &v,
        t.plus(1.0),
        vec![dir("/d", 100.0), file("/d/x", 50.0), file("/d/n", 60.0)],
    );
    v.audit_end(t.plus(2.0));
    assert_eq!(deletions(&v), strs(&["/d/y"]));
    assert_eq!(additions(&v), strs(&["/d/n"]));
    assert!(agent_missing(&v, "/d/n"));
    v.apply(
        &[Event::fs(
            EventType::Insert,
            MessageSource::Realtime,
            vec![file("/d/y", 70.0), file("/d/n", 70.0)],
        )],
        t.plus(3.0),
    );
    assert!(deletions(&v).is_empty());
    assert!(additions(&v).is_empty());
    assert!(!agent_missing(&v, "/d/n"));
    assert!(!agent_missing(&v, "/d/y"));
    assert!(!stats(&v, t).has_blind_spot);
}

/// R3 + §7.3 (S29): delete removes the subtree with its suspects and blind additions; the
/// tombstone is `(watermark, epoch)` for the exact path only.
#[test]
fn r3_delete_subtree_and_exact_tombstone() {
    let v = view();
    let t = t0();
    rt(&v, t, vec![file("/_c", T0 - 7.0)]); // skew 7
    rt(&v, t, vec![partial("/d/a.txt", T0 - 7.0, 1)]);
    audit(&v, t, vec![file("/d/sub/b.txt", T0 - 3600.0)]);
    v.audit_end(t);
    assert_eq!(suspects(&v), strs(&["/d/a.txt"]));
    assert_eq!(additions(&v), strs(&["/d/sub/b.txt"]));

    rt_del(&v, t.plus(5.0), &["/d"]);
    for p in ["/d", "/d/a.txt", "/d/sub", "/d/sub/b.txt"] {
        assert!(!exists(&v, p), "{p} should be gone");
    }
    assert!(suspects(&v).is_empty());
    assert!(additions(&v).is_empty());
    let ts = v.read().tombstone("/d").unwrap();
    assert_eq!(ts.logical, T0 + 5.0 - 7.0, "logical ts = watermark");
    assert_eq!(ts.physical, T0 + 5.0, "physical ts = epoch");
    assert!(
        v.read().tombstone("/d/a.txt").is_none(),
        "descendants get no tombstone"
    );
    assert_eq!(v.read().tombstone_count(), 1);
    assert_eq!(stats(&v, t).item_count, 2, "root and /_c only");
    // A descendant may come back with any mtime.
    rt(&v, t.plus(6.0), vec![file("/d/a.txt", 1.0)]);
    assert!(exists(&v, "/d/a.txt"));
    check(&v);
}

/// R3/§13: the tombstone covers the exact path only, so compensation rows for former
/// descendants are not gated by it (the parent chain is simply re-created).
#[test]
fn r3_descendants_are_not_tombstoned() {
    // R3 records a tombstone for the exact path only; descendants get none.
    let v = view();
    let t = t0();
    rt(&v, t, vec![file("/d/a.txt", T0), file("/d/b.txt", T0)]);
    rt_del(&v, t.plus(1.0), &["/d"]);
    assert!(v.read().tombstone("/d").is_some());
    assert!(v.read().tombstone("/d/a.txt").is_none());
}

/// Rust extension of R1/C1 (docs/consistency-deviations): a compensation row no newer than the
/// tombstone of a deleted *ancestor* is a zombie too, so a directory moved out of the tree is not
/// resurrected by a snapshot listing taken before the move. A newer row reincarnates the ancestor.
#[test]
fn r1_ancestor_tombstone_stops_zombie_children() {
    let v = view();
    let t = t0();
    rt(&v, t, vec![file("/d/a.txt", T0), file("/d/b.txt", T0)]);
    rt_del(&v, t.plus(1.0), &["/d"]);
    let rep = snap(&v, t.plus(2.0), vec![file("/d/a.txt", T0 - 3600.0)]);
    assert_eq!(rep.zombies, 1);
    assert!(!exists(&v, "/d"));
    assert!(!exists(&v, "/d/a.txt"));
    let rep = snap(&v, t.plus(3.0), vec![file("/d/new.txt", T0 + 60.0)]);
    assert_eq!(rep.zombies, 0);
    assert!(exists(&v, "/d/new.txt"));
    assert!(
        v.read().tombstone("/d").is_none(),
        "reincarnated by a newer descendant"
    );
}

/// A realtime row under a tombstoned directory is current evidence: it recreates the directory
/// and removes its tombstone, whatever the row's mtime.
#[test]
fn r1_realtime_child_reincarnates_ancestor() {
    let v = view();
    let t = t0();
    rt(&v, t, vec![dir("/d/sub", T0)]);
    rt_del(&v, t, &["/d/sub"]);
    rt(&v, t.plus(1.0), vec![file("/d/sub/f.txt", T0 - 5000.0)]);
    assert!(exists(&v, "/d/sub/f.txt"));
    assert!(v.read().tombstone("/d/sub").is_none());
}

/// R3: deleting an absent path still records a tombstone and clears the blind deletion.
#[test]
fn r3_delete_absent_path_records_tombstone() {
    let v = view();
    let t = t0();
    snap(
        &v,
        t,
        vec![dir("/d", 100.0), file("/d/x", 50.0), file("/d/y", 50.0)],
    );
    audit(&v, t.plus(1.0), vec![dir("/d", 100.0), file("/d/x", 50.0)]);
    v.audit_end(t.plus(2.0));
    assert_eq!(deletions(&v), strs(&["/d/y"]));
    rt_del(&v, t.plus(3.0), &["/d/y", "/never"]);
    assert!(
        deletions(&v).is_empty(),
        "R3 removes the path from blind deletions"
    );
    assert!(v.read().tombstone("/never").is_some());
    assert!(v.read().tombstone("/d/y").is_some());
    snap(&v, t.plus(4.0), vec![file("/never", T0 - 100.0)]);
    assert!(
        !exists(&v, "/never"),
        "tombstone of an absent path gates later rows"
    );
}

/// §7.3: the root can never be deleted.
#[test]
fn t7_3_root_is_not_deletable() {
    let v = view();
    let t = t0();
    rt(&v, t, vec![file("/a", T0)]);
    rt_del(&v, t, &["/"]);
    let root = tree(&v, "/", full()).unwrap();
    assert_eq!(root["path"], "/");
    assert_eq!(root["children"].as_array().unwrap().len(), 1);
    assert!(exists(&v, "/a"));
    let mut d = FsRow::delete("/");
    d.modified_time = Some(T0 + 1000.0);
    audit_del(&v, t, vec![d]);
    assert!(exists(&v, "/a"));
    assert!(exists(&v, "/"));
}

// ---------------------------------------------------------------------------------------------
// §7.1 / §7.2

/// §7.1 step 1 (S27): missing ancestors are created as zeroed, unknown, non-suspect directories
/// without lineage.
#[test]
fn t7_1_parent_chain_auto_created() {
    let v = view();
    let t = t0();
    v.apply(
        &[with_lineage(
            upd(MessageSource::Realtime, vec![file("/a/b/c.txt", T0)]),
            Some("agent-x"),
            None,
        )],
        t,
    );
    for p in ["/a", "/a/b"] {
        let n = must(&v, p);
        assert_eq!(n["content_type"], "directory");
        assert_eq!(n["size"], 0);
        assert_eq!(n["modified_time"], 0.0);
        assert_eq!(n["created_time"], 0.0);
        assert_eq!(n["agent_missing"], true);
        assert_eq!(n["integrity_suspect"], false);
        assert_eq!(n["audit_skipped"], false);
        assert!(
            n["last_agent_id"].is_null(),
            "{p}: lineage only on the row's node"
        );
    }
    assert_eq!(field(&v, "/a/b/c.txt", "last_agent_id"), "agent-x");
    assert!(!agent_missing(&v, "/a/b/c.txt"));
}

/// §7.1 step 3 (S28): type switch both ways; switching a directory to a file drops its subtree.
#[test]
fn t7_1_type_switch() {
    let v = view();
    let t = t0();
    rt(&v, t, vec![file("/x", T0)]);
    assert_eq!(content_type(&v, "/x").as_deref(), Some("file"));
    rt(&v, t, vec![dir("/x", T0 + 1.0)]);
    assert_eq!(content_type(&v, "/x").as_deref(), Some("directory"));
    rt(&v, t, vec![file("/x/child", T0)]);
    assert!(exists(&v, "/x/child"));
    rt(&v, t, vec![file("/x", T0 + 2.0)]);
    assert_eq!(content_type(&v, "/x").as_deref(), Some("file"));
    assert!(!exists(&v, "/x/child"));
    let s = stats(&v, t);
    assert_eq!(
        (s.item_count, s.total_files, s.total_directories),
        (2, 1, 1)
    );
    check(&v);
}

/// §2/§7.1: a path is in at most one map — a file in the way of a new child's parent chain is
/// replaced by a directory.
#[test]
fn t7_1_file_ancestor_becomes_directory() {
    let v = view();
    let t = t0();
    rt(&v, t, vec![file("/x", T0)]);
    rt(&v, t, vec![file("/x/y.txt", T0)]);
    assert_eq!(content_type(&v, "/x").as_deref(), Some("directory"));
    assert!(exists(&v, "/x/y.txt"));
    let s = stats(&v, t);
    assert_eq!(
        (s.item_count, s.total_files, s.total_directories),
        (3, 1, 2)
    );
    check(&v);
}

/// §7.1 step 6: a node created by a type switch starts with defaults — the old node's suspect
/// entry is gone, so C5 records a fresh expiry for the new one.
#[test]
fn t7_1_type_switch_starts_with_defaults() {
    let v = view(); // HOT 30
    let t = t0();
    rt(&v, t, vec![partial("/x", T0, 1)]); // skew 0; suspect until MONO0 + 30
    assert_eq!(suspect_until(&v, "/x"), Some(MONO0 + 30.0));
    let t10 = t.plus(10.0);
    snap(&v, t10, vec![dir("/x", T0 + 8.0)]); // age 2 -> expiry mono + 28
    assert_eq!(content_type(&v, "/x").as_deref(), Some("directory"));
    assert!(is_suspect(&v, "/x"));
    assert_eq!(suspect_until(&v, "/x"), Some(MONO0 + 10.0 + 28.0));
}

/// §7.1 step 4: a directory row sets `audit_skipped` from the row (absent ⇒ false).
#[test]
fn t7_1_directory_audit_skipped_follows_row() {
    let v = view();
    let t = t0();
    rt(&v, t, vec![silent_dir("/d", T0)]);
    assert_eq!(field(&v, "/d", "audit_skipped"), true);
    rt(&v, t, vec![dir("/d", T0 + 1.0)]);
    assert_eq!(field(&v, "/d", "audit_skipped"), false);
    assert!(
        must(&v, "/d").get("children").is_none(),
        "metadata has no children"
    );
    rt(&v, t, vec![file("/f", T0)]);
    assert!(
        must(&v, "/f").get("audit_skipped").is_none(),
        "files never carry audit_skipped"
    );
}

/// §7.1 step 5 (S39, S40): lineage fields are replaced only by non-empty values.
#[test]
fn t7_1_lineage_kept_if_new_value_empty() {
    let v = view();
    let t = t0();
    let lin = |rows, a, u| with_lineage(upd(MessageSource::Realtime, rows), a, u);
    v.apply(
        &[lin(
            vec![file("/l.txt", T0)],
            Some("agent-a"),
            Some("nfs://a"),
        )],
        t,
    );
    assert_eq!(field(&v, "/l.txt", "last_agent_id"), "agent-a");
    assert_eq!(field(&v, "/l.txt", "source_uri"), "nfs://a");
    v.apply(&[lin(vec![file("/l.txt", T0 + 1.0)], None, None)], t);
    assert_eq!(field(&v, "/l.txt", "last_agent_id"), "agent-a");
    assert_eq!(field(&v, "/l.txt", "source_uri"), "nfs://a");
    v.apply(
        &[lin(vec![file("/l.txt", T0 + 2.0)], Some(""), Some(""))],
        t,
    );
    assert_eq!(field(&v, "/l.txt", "last_agent_id"), "agent-a");
    v.apply(&[lin(vec![file("/l.txt", T0 + 3.0)], Some("b"), None)], t);
    assert_eq!(field(&v, "/l.txt", "last_agent_id"), "b");
    assert_eq!(field(&v, "/l.txt", "source_uri"), "nfs://a");
    // Without any lineage: null.
    rt(&v, t, vec![file("/plain", T0)]);
    assert!(field(&v, "/plain", "last_agent_id").is_null());
    assert!(field(&v, "/plain", "source_uri").is_null());
}

/// §7.2: at `|dirs| + |files| >= MAX_NODES` no node is created, updates still apply.
#[test]
fn tree_7_2_capacity() {
    let v = fustor_view_fs::FsView::new(
        "v1",
        FsViewConfig {
            max_nodes: 3,
            ..FsViewConfig::default()
        },
    );
    let t = t0();
    rt(&v, t, vec![file("/a.txt", T0), file("/b.txt", T0)]);
    assert_eq!(v.read().node_count(), 3, "root + 2 files");
    let rep = rt(&v, t, vec![file("/c.txt", T0)]);
    assert_eq!(rep.capacity_refused, 1);
    assert!(!exists(&v, "/c.txt"));
    rt(&v, t, vec![file("/d/e.txt", T0)]);
    assert!(!exists(&v, "/d"), "ancestor creation stops too");
    assert!(!exists(&v, "/d/e.txt"));
    snap(&v, t, vec![file("/c2.txt", T0)]);
    assert!(!exists(&v, "/c2.txt"));
    rt(&v, t, vec![file_sz("/a.txt", T0 + 5.0, 77)]);
    assert_eq!(
        mtime(&v, "/a.txt"),
        T0 + 5.0,
        "updates of existing nodes still apply"
    );
    assert_eq!(size(&v, "/a.txt"), 77);
    assert_eq!(stats(&v, t).item_count, 3);
    rt_del(&v, t, &["/b.txt"]);
    rt(&v, t, vec![file("/c.txt", T0 + 1.0)]);
    assert!(exists(&v, "/c.txt"), "room again after a delete");
    check(&v);
}

/// §7.2: the limit counts the root; with partial room only what fits is created.
#[test]
fn tree_7_2_capacity_counts_root_and_stops_midway() {
    let v = fustor_view_fs::FsView::new(
        "v1",
        FsViewConfig {
            max_nodes: 2,
            ..FsViewConfig::default()
        },
    );
    let t = t0();
    rt(&v, t, vec![file("/x/y/z.txt", T0)]);
    assert!(!exists(&v, "/x/y/z.txt"));
    assert!(!exists(&v, "/x/y"));
    assert!(v.read().node_count() <= 2);
    check(&v);
}

// ---------------------------------------------------------------------------------------------
// Scenarios S31–S40

#[test]
fn s31_atomic_write_is_clean() {
    let v = view_f0();
    let t = t0();
    rt(&v, t, vec![atomic("/f.txt", T0, 1)]);
    assert!(!is_suspect(&v, "/f.txt"));
    assert!(!agent_missing(&v, "/f.txt"));
    assert!(suspects(&v).is_empty());
}

#[test]
fn s32_partial_write_is_suspect_close_clears() {
    let v = view_f0();
    let t = t0();
    rt(&v, t, vec![partial("/big.bin", T0, 100)]);
    rt(&v, t, vec![partial("/big.bin", T0, 200)]);
    assert!(is_suspect(&v, "/big.bin"));
    assert_eq!(suspects(&v), strs(&["/big.bin"]));
    assert_eq!(size(&v, "/big.bin"), 200);
    rt(&v, t.plus(1.0), vec![atomic("/big.bin", T0 + 1.0, 300)]);
    assert!(!is_suspect(&v, "/big.bin"));
    assert!(suspects(&v).is_empty());
    assert_eq!(size(&v, "/big.bin"), 300);
}

#[test]
fn s34_realtime_wins_over_newer_mtime() {
    let v = view_f0();
    let t = t0();
    rt(&v, t, vec![file("/r.txt", T0)]);
    rt(&v, t.plus(1.0), vec![file("/r.txt", T0 - 1000.0)]);
    assert_eq!(mtime(&v, "/r.txt"), T0 - 1000.0);
}

#[test]
fn s35_realtime_delete_tombstone_blocks_zombie() {
    let v = view_f0();
    let t = t0();
    rt(&v, t, vec![file("/z.txt", T0 - 10.0)]);
    rt_del(&v, t, &["/z.txt"]);
    snap(&v, t.plus(0.1), vec![file("/z.txt", T0 - 10.0)]);
    assert!(!exists(&v, "/z.txt"), "snapshot zombie blocked");
    audit(&v, t.plus(0.2), vec![file("/z.txt", T0 - 10.0)]);
    assert!(!exists(&v, "/z.txt"), "audit zombie blocked");
}

#[test]
fn s35b_tombstones_live_in_logical_domain() {
    let v = view_f0();
    let t = t0();
    calibrate(&v, t, 100.0, 5);
    rt(&v, t, vec![file("/z.txt", T0 - 10.0)]);
    rt_del(&v, t, &["/z.txt"]);
    assert_eq!(v.read().tombstone("/z.txt").unwrap().logical, T0 - 100.0);
    audit(&v, t.plus(0.1), vec![file("/z.txt", T0 - 10.0)]);
    assert!(
        exists(&v, "/z.txt"),
        "now−10 > tombstone ts now−100: reincarnation"
    );
    assert!(v.read().tombstone("/z.txt").is_none());
}

#[test]
fn s36_reincarnation_by_audit() {
    let v = view_f0();
    let t = t0();
    rt(&v, t, vec![file("/z.txt", T0 - 10.0)]);
    rt_del(&v, t, &["/z.txt"]);
    audit(&v, t.plus(1.0), vec![file("/z.txt", T0 + 100.0)]);
    assert!(exists(&v, "/z.txt"));
    assert!(agent_missing(&v, "/z.txt"), "audit discovery");
    assert_eq!(additions(&v), strs(&["/z.txt"]));
}

#[test]
fn s37_old_mtime_recreate_blocked_until_purge() {
    let v = view_f0(); // TTL 0.5
    let t = t0();
    rt(&v, t, vec![file("/z.txt", T0)]);
    rt_del(&v, t, &["/z.txt"]);
    rt(&v, t.plus(0.1), vec![file("/z.txt", T0 - 5000.0)]);
    assert!(!exists(&v, "/z.txt"));
    // Purge happens only at audit end (not with time alone).
    rt(&v, t.plus(2.0), vec![file("/z.txt", T0 - 5000.0)]);
    assert!(!exists(&v, "/z.txt"));
    audit(&v, t.plus(2.0), vec![file("/other.txt", T0 - 3600.0)]);
    assert!(v.audit_end(t.plus(2.0)));
    assert_eq!(v.read().tombstone_count(), 0);
    rt(&v, t.plus(2.1), vec![file("/z.txt", T0 - 5000.0)]);
    assert!(exists(&v, "/z.txt"));
}

#[test]
fn s38_realtime_clears_blind_spot() {
    let v = view_f0();
    let t = t0();
    audit(&v, t, vec![file("/bs.txt", T0 - 3600.0)]);
    v.audit_end(t);
    assert_eq!(additions(&v), strs(&["/bs.txt"]));
    assert!(agent_missing(&v, "/bs.txt"));
    rt(&v, t.plus(1.0), vec![file("/bs.txt", T0 - 3600.0)]);
    assert!(additions(&v).is_empty());
    assert!(!agent_missing(&v, "/bs.txt"));
}

#[test]
fn s39_s40_lineage_of_realtime_rows() {
    let v = view_f0();
    let t = t0();
    v.apply(
        &[with_lineage(
            upd(MessageSource::Realtime, vec![file("/fb.txt", T0)]),
            Some("b"),
            None,
        )],
        t,
    );
    assert_eq!(field(&v, "/fb.txt", "last_agent_id"), "b");
    assert!(field(&v, "/fb.txt", "source_uri").is_null());
    v.apply(
        &[with_lineage(
            upd(MessageSource::Realtime, vec![file("/l.txt", T0)]),
            Some("agent-x"),
            Some("nfs://server/export"),
        )],
        t,
    );
    assert_eq!(field(&v, "/l.txt", "last_agent_id"), "agent-x");
    assert_eq!(field(&v, "/l.txt", "source_uri"), "nfs://server/export");
}
