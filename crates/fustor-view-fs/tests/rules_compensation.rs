//! Compensation rules C1–C6 and 6.4 (snapshot, audit, on-demand) and scenarios S41, S43–S47,
//! S58, S59.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use fustor_core::{FsRow, MessageSource};

// ---------------------------------------------------------------------------------------------
// C1

/// C1: the tombstone gate applies to snapshot, audit and on-demand rows; a strictly newer mtime
/// reincarnates.
#[test]
fn c1_compensation_tombstone_gate() {
    let v = view();
    let t = t0();
    rt(&v, t, vec![file("/z", T0 - 10.0)]);
    rt_del(&v, t, &["/z"]);
    let l = v.read().tombstone("/z").unwrap().logical;
    assert_eq!(snap(&v, t, vec![file("/z", l)]).zombies, 1);
    assert_eq!(audit(&v, t, vec![file("/z", l - 100.0)]).zombies, 1);
    assert_eq!(ondemand(&v, t, vec![file("/z", l + 1e-6)]).zombies, 1);
    assert!(!exists(&v, "/z"));
    assert!(additions(&v).is_empty());
    snap(&v, t, vec![file("/z", l + 1.0)]);
    assert!(exists(&v, "/z"));
    assert!(v.read().tombstone("/z").is_none());
    assert!(!agent_missing(&v, "/z"));
}

// ---------------------------------------------------------------------------------------------
// C2

/// C2: an existing node with mtime >= row mtime wins; nothing changes (lineage, size, flags).
#[test]
fn c2_mtime_arbitration() {
    let v = view();
    let t = t0();
    v.apply(
        &[with_lineage(
            upd(MessageSource::Realtime, vec![file_sz("/m", 100.0, 5)]),
            Some("a"),
            None,
        )],
        t,
    );
    for (src, m) in [
        (MessageSource::Snapshot, 100.0),
        (MessageSource::Audit, 99.0),
        (MessageSource::OnDemandJob, 100.0),
    ] {
        let rep = v.apply(
            &[with_lineage(
                upd(src, vec![file_sz("/m", m, 9)]),
                Some("b"),
                None,
            )],
            t,
        );
        assert_eq!(rep.stale, 1, "{src:?} row with mtime {m} must lose");
    }
    assert_eq!(mtime(&v, "/m"), 100.0);
    assert_eq!(size(&v, "/m"), 5);
    assert_eq!(field(&v, "/m", "last_agent_id"), "a");
    assert!(!agent_missing(&v, "/m"));
    assert!(additions(&v).is_empty());
    snap(&v, t, vec![file_sz("/m", 100.5, 9)]);
    assert_eq!(mtime(&v, "/m"), 100.5);
    assert_eq!(size(&v, "/m"), 9);
}

/// C2: `audit_skipped: true` bypasses arbitration. A dropped audit row of a directory still
/// clears `audit_skipped` (deviation from the reference, which keeps the flag and so never
/// checks that directory's children again: issue 9, S75 at the root; docs/deviations.md).
#[test]
fn c2_audit_skipped_bypass_and_listed_drop_clears_flag() {
    let v = view();
    let t = t0();
    snap(&v, t, vec![dir("/d", 100.0)]);
    audit(&v, t, vec![silent_dir("/d", 100.0)]);
    assert_eq!(
        field(&v, "/d", "audit_skipped"),
        true,
        "bypass applies the row"
    );
    v.audit_end(t);
    // Same mtime, not silent: C2 drops the attributes, but the audit listed /d.
    let rep = audit(&v, t.plus(1.0), vec![dir("/d", 100.0)]);
    assert_eq!(rep.stale, 1);
    assert_eq!(field(&v, "/d", "audit_skipped"), false);
    // Snapshot and on-demand rows do not speak for an audit: they leave the flag alone.
    audit(&v, t.plus(2.0), vec![silent_dir("/d", 100.0)]);
    snap(&v, t.plus(2.0), vec![dir("/d", 100.0)]);
    ondemand(&v, t.plus(2.0), vec![dir("/d", 100.0)]);
    assert_eq!(field(&v, "/d", "audit_skipped"), true);
    // A newer mtime applies and resets it.
    audit(&v, t.plus(1.0), vec![dir("/d", 101.0)]);
    assert_eq!(field(&v, "/d", "audit_skipped"), false);
}

// ---------------------------------------------------------------------------------------------
// C3

/// C3 (S47): audit rows for new paths are dropped when the known parent is newer than the
/// listing; equal is fine; existing paths, absent parents and other sources are not guarded.
#[test]
fn c3_parent_mtime_guard() {
    let v = view();
    let t = t0();
    snap(&v, t, vec![dir("/p", 2000.0), file("/p/old", 10.0)]);
    let rep = audit(
        &v,
        t,
        vec![audit_file("/p/new.txt", 50.0, "/p", Some(1000.0))],
    );
    assert_eq!(rep.stale, 1);
    assert!(!exists(&v, "/p/new.txt"));
    audit(
        &v,
        t,
        vec![audit_file("/p/eq.txt", 50.0, "/p", Some(2000.0))],
    );
    assert!(exists(&v, "/p/eq.txt"), "equal parent mtime is not older");
    audit(
        &v,
        t,
        vec![audit_file("/p/new.txt", 50.0, "/p", Some(3000.0))],
    );
    assert!(exists(&v, "/p/new.txt"));
    audit(&v, t, vec![audit_file("/p/nopm.txt", 50.0, "/p", None)]);
    assert!(
        !exists(&v, "/p/nopm.txt"),
        "absent parent_mtime counts as 0"
    );
    // Existing path: only C2 applies.
    audit(&v, t, vec![audit_file("/p/old", 20.0, "/p", Some(1.0))]);
    assert_eq!(mtime(&v, "/p/old"), 20.0);
    // Parent not in the tree: no guard.
    audit(&v, t, vec![audit_file("/q/new.txt", 50.0, "/q", Some(1.0))]);
    assert!(exists(&v, "/q/new.txt"));
    // Audit rows without parent_path: no guard.
    audit(&v, t, vec![file("/p/nopp.txt", 50.0)]);
    assert!(exists(&v, "/p/nopp.txt"));
    // Snapshot and on-demand rows: no guard.
    let mut s = audit_file("/p/snap.txt", 50.0, "/p", Some(1.0));
    snap(&v, t, vec![s.clone()]);
    s.path = Some("/p/od.txt".into());
    ondemand(&v, t, vec![s]);
    assert!(exists(&v, "/p/snap.txt"));
    assert!(exists(&v, "/p/od.txt"));
}

// ---------------------------------------------------------------------------------------------
// C4

/// C4: compensation never refreshes `last_updated_at` (and keeps a realtime one): a node
/// confirmed by realtime before the audit start loses M3 even if a snapshot row updates it during
/// the audit; one confirmed during the audit keeps it.
#[test]
fn c4_compensation_keeps_last_updated_at() {
    let v = view();
    let t = t0();
    snap(&v, t, vec![dir("/d", 100.0)]);
    rt(&v, t, vec![file("/d/old.txt", 10.0)]);
    audit(&v, t.plus(10.0), vec![dir("/d", 100.0)]);
    rt(&v, t.plus(11.0), vec![file("/d/mid.txt", 10.0)]);
    snap(
        &v,
        t.plus(12.0),
        vec![file("/d/old.txt", 20.0), file("/d/mid.txt", 20.0)],
    );
    assert_eq!(mtime(&v, "/d/old.txt"), 20.0);
    v.audit_end(t.plus(13.0));
    assert!(
        !exists(&v, "/d/old.txt"),
        "snapshot did not refresh last_updated_at"
    );
    assert!(
        exists(&v, "/d/mid.txt"),
        "snapshot kept the realtime last_updated_at"
    );
    assert_eq!(deletions(&v), strs(&["/d/old.txt"]));
}

// ---------------------------------------------------------------------------------------------
// C5 / C6

/// C5: a changed snapshot row is known, not a blind addition; a hot one is suspect for
/// `HOT − age`.
#[test]
fn c5_snapshot_changed_known_and_suspect_timing() {
    let v = view(); // HOT 30, cold clock: watermark = epoch
    let t = t0();
    snap(
        &v,
        t,
        vec![file("/s/hot", T0 - 10.0), file("/s/old", T0 - 3600.0)],
    );
    assert!(!agent_missing(&v, "/s/hot"));
    assert!(!agent_missing(&v, "/s/old"));
    assert!(is_suspect(&v, "/s/hot"));
    assert!(!is_suspect(&v, "/s/old"));
    assert_eq!(suspect_until(&v, "/s/hot"), Some(MONO0 + 20.0));
    assert_eq!(suspects(&v), strs(&["/s/hot"]));
    assert!(additions(&v).is_empty());
    assert_eq!(stats(&v, t).suspect_file_count, 1);
}

/// C5: audit and on-demand discoveries are blind additions, unknown to the agent; on-demand rows
/// do not start an audit.
#[test]
fn c5_audit_and_on_demand_are_blind_additions() {
    let v = view();
    let t = t0();
    ondemand(&v, t, vec![file("/od.txt", T0 - 3600.0)]);
    assert!(!v.read().is_auditing(), "P1 is for audit events only");
    assert!(agent_missing(&v, "/od.txt"));
    assert!(!is_suspect(&v, "/od.txt"));
    audit(&v, t, vec![file("/au.txt", T0 - 3600.0)]);
    assert!(agent_missing(&v, "/au.txt"));
    assert_eq!(additions(&v), strs(&["/au.txt", "/od.txt"]));
    // A known file changed in a blind spot becomes unknown.
    rt(&v, t, vec![file("/k.txt", T0 - 3600.0)]);
    assert!(!agent_missing(&v, "/k.txt"));
    audit(&v, t, vec![file("/k.txt", T0 - 3000.0)]);
    assert!(agent_missing(&v, "/k.txt"));
    assert!(additions(&v).contains(&"/k.txt".to_string()));
}

/// C5/C6: an existing suspect keeps its expiry when a hot compensation row changes the file; a
/// realtime partial-write suspect survives hot compensation rows.
#[test]
fn c5_existing_suspect_expiry_not_reset() {
    let v = view();
    let t = t0();
    rt(&v, t, vec![partial("/f", T0, 1)]); // skew 0, expiry MONO0 + 30
    let t10 = t.plus(10.0);
    audit(&v, t10, vec![file("/f", T0 + 5.0)]); // changed, age 5 < 30
    assert_eq!(mtime(&v, "/f"), T0 + 5.0);
    assert!(is_suspect(&v, "/f"));
    assert_eq!(suspect_until(&v, "/f"), Some(MONO0 + 30.0), "not renewed");
    assert!(agent_missing(&v, "/f"));
    snap(&v, t10, vec![file("/f", T0 + 6.0)]);
    assert!(is_suspect(&v, "/f"), "C6: hot compensation never clears");
    assert_eq!(suspect_until(&v, "/f"), Some(MONO0 + 30.0));
}

/// C5/C6: a cold and changed compensation row clears any suspect, including a realtime one.
#[test]
fn c6_cold_changed_row_clears_realtime_suspect() {
    let v = view();
    let t = t0();
    calibrate(&v, t, 0.0, 3);
    rt(&v, t, vec![partial("/f", T0 - 4000.0, 1)]);
    assert!(is_suspect(&v, "/f"));
    snap(&v, t, vec![file("/f", T0 - 3000.0)]);
    assert!(!is_suspect(&v, "/f"));
    assert!(suspects(&v).is_empty());
    assert_eq!(stats(&v, t).suspect_file_count, 0);
}

/// C6: snapshot and on-demand rows never clear a blind deletion, even for the same path.
#[test]
fn c6_compensation_never_clears_blind_deletions() {
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
    snap(&v, t.plus(3.0), vec![file("/d/y", 50.0)]);
    assert!(exists(&v, "/d/y"));
    assert_eq!(deletions(&v), strs(&["/d/y"]), "snapshot");
    ondemand(&v, t.plus(3.0), vec![file("/d/y", 60.0)]);
    assert_eq!(deletions(&v), strs(&["/d/y"]), "on-demand");
}

/// §7.1 step 5 applies to compensation upserts that win arbitration.
#[test]
fn c4_lineage_on_compensation_rows() {
    let v = view();
    let t = t0();
    let ev = |src, rows, a: &str| with_lineage(upd(src, rows), Some(a), Some("nfs://s"));
    v.apply(
        &[ev(MessageSource::Snapshot, vec![file("/f", 10.0)], "a")],
        t,
    );
    assert_eq!(field(&v, "/f", "last_agent_id"), "a");
    v.apply(&[ev(MessageSource::Audit, vec![file("/f", 20.0)], "b")], t);
    assert_eq!(field(&v, "/f", "last_agent_id"), "b");
    v.apply(
        &[ev(MessageSource::OnDemandJob, vec![file("/f", 15.0)], "c")],
        t,
    );
    assert_eq!(field(&v, "/f", "last_agent_id"), "b", "lost arbitration");
    assert_eq!(field(&v, "/f", "source_uri"), "nfs://s");
}

/// C5 "not changed" (reached with `audit_skipped: true` and an equal mtime): snapshot marks the
/// node known and clears the blind addition; audit leaves flags alone; a cold row clears the
/// suspect, a hot one does not.
#[test]
fn c5_not_changed_branch() {
    let v = view();
    let t = t0();
    calibrate(&v, t, 0.0, 3);
    let skipped = |p: &str, m: f64| {
        let mut r = file(p, m);
        r.audit_skipped = Some(true);
        r
    };
    // snapshot clears an audit discovery
    audit(&v, t, vec![file("/q", T0 - 3600.0)]);
    assert!(agent_missing(&v, "/q"));
    snap(&v, t, vec![skipped("/q", T0 - 3600.0)]);
    assert!(!agent_missing(&v, "/q"));
    assert!(!additions(&v).contains(&"/q".to_string()));
    // audit leaves a known node known
    rt(&v, t, vec![file("/k", T0 - 3600.0)]);
    audit(&v, t, vec![skipped("/k", T0 - 3600.0)]);
    assert!(!agent_missing(&v, "/k"));
    assert!(!additions(&v).contains(&"/k".to_string()));
    // cold: suspect cleared
    rt(&v, t, vec![partial("/c", T0 - 3600.0, 1)]);
    assert!(is_suspect(&v, "/c"));
    audit(&v, t, vec![skipped("/c", T0 - 3600.0)]);
    assert!(!is_suspect(&v, "/c"));
    // hot: suspect kept
    rt(&v, t, vec![partial("/h", T0 - 1.0, 1)]);
    audit(&v, t, vec![skipped("/h", T0 - 1.0)]);
    assert!(is_suspect(&v, "/h"));
    assert!(suspects(&v).contains(&"/h".to_string()));
}

/// C5 applies to directories: a fresh directory row can be suspect and a blind addition (but the
/// blind-spot listing and the suspect file count only count files).
#[test]
fn c5_directories_can_be_suspect_and_blind() {
    let v = view();
    let t = t0();
    audit(&v, t, vec![dir("/nd", T0)]);
    assert!(is_suspect(&v, "/nd"));
    assert!(agent_missing(&v, "/nd"));
    assert_eq!(additions(&v), strs(&["/nd"]));
    assert_eq!(suspects(&v), strs(&["/nd"]));
    let s = stats(&v, t);
    assert_eq!(s.suspect_file_count, 0, "files only");
    assert!(s.has_blind_spot);
    let bs = v.read().blind_spots_value();
    assert_eq!(bs["additions_count"], 0, "directory additions are omitted");
    assert_eq!(bs["additions"].as_array().unwrap().len(), 0);
}

// ---------------------------------------------------------------------------------------------
// 6.4

/// 6.4: compensation deletes — tombstoned path ignored, newer node ignored, else subtree removed,
/// blind deletion recorded, suspects and blind additions dropped, no tombstone.
#[test]
fn c6_4_compensation_delete() {
    let v = view();
    let t = t0();
    // tombstoned
    rt(&v, t, vec![file("/t", T0)]);
    rt_del(&v, t, &["/t"]);
    v.apply(&[del(MessageSource::Snapshot, &["/t"])], t);
    assert!(deletions(&v).is_empty(), "tombstoned path: ignored");
    // newer node
    snap(&v, t, vec![file("/n", 500.0)]);
    let mut d = FsRow::delete("/n");
    d.modified_time = Some(100.0);
    let rep = audit_del(&v, t, vec![d]);
    assert_eq!(rep.stale, 1);
    assert!(exists(&v, "/n"));
    assert!(deletions(&v).is_empty());
    v.audit_end(t);
    // subtree
    snap(&v, t, vec![dir("/d", 100.0), file("/d/s", T0)]); // /d/s hot -> suspect
    audit(&v, t, vec![file("/d/b", T0 - 3600.0)]); // blind addition
    v.audit_end(t);
    assert_eq!(suspects(&v), strs(&["/d/s"]));
    assert_eq!(additions(&v), strs(&["/d/b"]));
    let tomb_before = v.read().tombstone_count();
    v.apply(&[del(MessageSource::OnDemandJob, &["/d"])], t);
    for p in ["/d", "/d/s", "/d/b"] {
        assert!(!exists(&v, p));
    }
    assert_eq!(deletions(&v), strs(&["/d"]));
    assert!(suspects(&v).is_empty());
    assert!(additions(&v).is_empty());
    assert_eq!(v.read().tombstone_count(), tomb_before, "no tombstone");
    // equal mtime is not "newer": deleted
    snap(&v, t, vec![file("/e", 100.0)]);
    let mut d = FsRow::delete("/e");
    d.modified_time = Some(100.0);
    v.apply(
        &[fustor_core::Event::fs(
            fustor_core::EventType::Delete,
            MessageSource::Snapshot,
            vec![d],
        )],
        t,
    );
    assert!(!exists(&v, "/e"));
    // absent path: still a blind deletion
    v.apply(&[del(MessageSource::Snapshot, &["/absent"])], t);
    assert!(deletions(&v).contains(&"/absent".to_string()));
    check(&v);
}

// ---------------------------------------------------------------------------------------------
// Scenarios

#[test]
fn s41_snapshot_baseline() {
    let v = view_f0();
    let t = t0();
    snap(
        &v,
        t,
        vec![
            file("/s/old.txt", T0 - 3600.0),
            file("/s/hot.txt", T0 - 1.0),
        ],
    );
    assert!(!agent_missing(&v, "/s/old.txt"));
    assert!(!agent_missing(&v, "/s/hot.txt"));
    assert!(!is_suspect(&v, "/s/old.txt"));
    assert!(is_suspect(&v, "/s/hot.txt"));
    assert_eq!(suspects(&v), strs(&["/s/hot.txt"]));
    let bs = v.read().blind_spots_value();
    assert_eq!(bs["additions_count"], 0);
    assert_eq!(bs["deletion_count"], 0);
    assert!(!stats(&v, t).has_blind_spot);
}

#[test]
fn s43_audit_discovery_is_blind_addition() {
    let v = view_f0();
    let t = t0();
    audit(
        &v,
        t,
        vec![audit_file("/n.txt", T0 - 3600.0, "/", Some(T0))],
    );
    assert!(v.audit_end(t.plus(1.0)));
    assert!(agent_missing(&v, "/n.txt"));
    assert!(!is_suspect(&v, "/n.txt"));
    let bs = v.read().blind_spots_value();
    assert_eq!(bs["additions_count"], 1);
    assert_eq!(bs["additions"][0]["path"], "/n.txt");
    assert_eq!(bs["additions"][0]["content_type"], "file");
    assert_eq!(bs["additions"][0]["agent_missing"], true);
    let s = stats(&v, t.plus(1.0));
    assert!(s.has_blind_spot);
    assert_eq!(s.audit_cycle_count, 1);
    assert_eq!(s.last_audit_finished_at, T0 + 1.0);
}

#[test]
fn s44_audit_discovery_of_young_file_is_suspect() {
    let v = view_f0();
    let t = t0();
    audit(&v, t, vec![file("/y.txt", T0)]);
    assert!(is_suspect(&v, "/y.txt"));
    assert_eq!(suspects(&v), strs(&["/y.txt"]));
    assert_eq!(suspect_until(&v, "/y.txt"), Some(MONO0 + 5.0));
}

#[test]
fn s45_audit_does_not_overwrite_newer_data() {
    let v = view_f0();
    let t = t0();
    rt(&v, t, vec![file("/m.txt", T0)]);
    audit(&v, t.plus(1.0), vec![file("/m.txt", T0 - 100.0)]);
    assert_eq!(mtime(&v, "/m.txt"), T0);
    assert!(!agent_missing(&v, "/m.txt"));
    assert!(additions(&v).is_empty());
}

#[test]
fn s46_blind_modification_detected() {
    let v = view_f0();
    let t = t0();
    rt(&v, t, vec![file("/mod.txt", T0 - 100.0)]);
    audit(&v, t.plus(1.0), vec![file("/mod.txt", T0 - 50.0)]);
    assert_eq!(mtime(&v, "/mod.txt"), T0 - 50.0);
    assert!(agent_missing(&v, "/mod.txt"));
    assert_eq!(additions(&v), strs(&["/mod.txt"]));
}

#[test]
fn s47_parent_mtime_guard() {
    let v = view_f0();
    let t = t0();
    snap(&v, t, vec![dir("/p", 2000.0)]);
    audit(
        &v,
        t,
        vec![audit_file("/p/new.txt", 1500.0, "/p", Some(1000.0))],
    );
    assert!(!exists(&v, "/p/new.txt"));
    audit(
        &v,
        t,
        vec![audit_file("/p/new.txt", 1500.0, "/p", Some(3000.0))],
    );
    assert!(exists(&v, "/p/new.txt"));
}

#[test]
fn s58_snapshot_clears_blind_addition() {
    let v = view_f0();
    let t = t0();
    audit(&v, t, vec![file("/q.txt", T0 - 3600.0)]);
    v.audit_end(t);
    assert_eq!(additions(&v), strs(&["/q.txt"]));
    snap(&v, t.plus(1.0), vec![file("/q.txt", T0 - 3000.0)]);
    assert!(additions(&v).is_empty());
    assert!(!agent_missing(&v, "/q.txt"));
    assert_eq!(v.read().blind_spots_value()["additions_count"], 0);
}

#[test]
fn s59_future_mtime_is_suspect() {
    let v = view_f0();
    let t = t0();
    audit(&v, t, vec![file("/fut.txt", T0 + 60.0)]);
    assert!(is_suspect(&v, "/fut.txt"));
    // age < 0: remaining life capped at HOT.
    assert_eq!(suspect_until(&v, "/fut.txt"), Some(MONO0 + 5.0));
}
