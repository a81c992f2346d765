//! Malformed input: rule N (path normalisation) and the validation of `pitfalls.md` item 4.
//! Nothing may panic, and a refused row must leave the view exactly as it was.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use fustor_core::{Event, EventBatch, EventType, FsRow, MessageSource};
use fustor_view_fs::FsView;
use serde_json::Value;

/// Everything observable about a view, for "unchanged" comparisons.
fn snapshot_of(v: &FsView) -> (Value, Value, Vec<(String, f64)>, String, usize) {
    let st = v.read();
    (
        st.tree_value("/", &full()).unwrap(),
        st.blind_spots_value(),
        st.suspect_list(),
        format!("{:?}", st.stats(T0)),
        st.tombstone_count(),
    )
}

fn populated() -> FsView {
    let v = view();
    let t = t0();
    rt(
        &v,
        t,
        vec![file("/a/b.txt", T0 - 10.0), partial("/p", T0, 1)],
    );
    rt_del(&v, t, &["/gone"]);
    v
}

/// N: a row without a path (or with an empty one) is skipped.
#[test]
fn n_missing_path_is_skipped() {
    let v = populated();
    let before = snapshot_of(&v);
    let no_path = FsRow {
        path: None,
        modified_time: Some(T0 + 5000.0),
        ..Default::default()
    };
    let mut empty = file("", T0 + 5000.0);
    empty.path = Some(String::new());
    let rep = rt(&v, t0(), vec![no_path, empty]);
    assert_eq!(rep.skipped, 2);
    assert_eq!(rep.rejected, 0);
    assert_eq!(snapshot_of(&v), before);
}

/// N: relative paths get a leading `/`; `.` components, duplicate and trailing slashes go.
#[test]
fn n_relative_and_messy_paths_are_normalised() {
    let v = view();
    let t = t0();
    rt(
        &v,
        t,
        vec![file("x", T0), file("//d//./e.txt/", T0), dir("sub/", T0)],
    );
    assert!(exists(&v, "/x"));
    assert!(exists(&v, "/d/e.txt"));
    assert_eq!(content_type(&v, "/sub").as_deref(), Some("directory"));
    assert_eq!(stats(&v, t).item_count, 5, "root, /x, /d, /d/e.txt, /sub");
    rt_del(&v, t, &["x/"]);
    assert!(!exists(&v, "/x"));
    assert!(
        v.read().tombstone("/x").is_some(),
        "tombstone under the normalised key"
    );
    // parent_path is normalised as well (C3).
    snap(&v, t, vec![dir("/p", 2000.0)]);
    audit(&v, t, vec![audit_file("/p/n.txt", 1.0, "p/", Some(1000.0))]);
    assert!(!exists(&v, "/p/n.txt"));
    // file_path alias (JSON).
    let row: FsRow =
        serde_json::from_str(r#"{"file_path":"alias.txt","modified_time":1.0}"#).unwrap();
    rt(&v, t, vec![row]);
    assert!(exists(&v, "/alias.txt"));
}

/// `..` components, NUL bytes and overlong paths are rejected, counted, and change nothing —
/// whatever the source and event type.
#[test]
fn hostile_paths_are_rejected_and_view_unchanged() {
    let v = populated();
    let before = snapshot_of(&v);
    let hostile = [
        "/a/../etc/passwd".to_string(),
        "../x".to_string(),
        "/a/..".to_string(),
        "/a\0b".to_string(),
        format!("/{}", "x".repeat(5000)),
        format!("/{}", "y".repeat(300)),
        format!("/a/{}", "z/".repeat(2100)),
    ];
    let mut total = 0;
    for src in [
        MessageSource::Realtime,
        MessageSource::Snapshot,
        MessageSource::OnDemandJob,
        MessageSource::Audit,
    ] {
        for et in [EventType::Update, EventType::Delete] {
            let rows: Vec<FsRow> = hostile
                .iter()
                .map(|p| {
                    let mut r = file("/placeholder", T0 + 9999.0);
                    r.path = Some(p.clone());
                    r
                })
                .collect();
            let rep = v.apply(&[Event::fs(et, src, rows)], t0().plus(1.0));
            assert_eq!(rep.rejected, hostile.len() as u64, "{src:?} {et:?}");
            total += rep.rejected;
            if src == MessageSource::Audit {
                // P1 is per event, so only the audit flag may differ.
                let now = snapshot_of(&v);
                assert_eq!(
                    (&now.0, &now.1, &now.2, now.4),
                    (&before.0, &before.1, &before.2, before.4)
                );
            } else {
                assert_eq!(snapshot_of(&v), before, "{src:?} {et:?}");
            }
        }
    }
    assert_eq!(total, 8 * hostile.len() as u64);
    // The `..`-deleted path did not delete /a.
    assert!(exists(&v, "/a/b.txt"));
    check(&v);
}

/// Non-finite times built in code are refused like their JSON counterparts.
#[test]
fn non_finite_times_are_rejected() {
    let v = populated();
    let before = snapshot_of(&v);
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut a = file("/nan", bad);
        let mut b = file("/nan2", T0);
        b.parent_mtime = Some(bad);
        let mut c = file("/nan3", T0);
        c.created_time = Some(bad);
        a.is_atomic_write = Some(false);
        let rep = rt(&v, t0(), vec![a, b, c]);
        assert_eq!(rep.rejected, 3);
    }
    assert_eq!(snapshot_of(&v), before);
    assert_eq!(feedback(&v, t0(), "/p", f64::NAN, None), 0);
    assert_eq!(snapshot_of(&v), before, "NaN sentinel feedback ignored");
}

/// JSON level: wrong types, NaN/overflow, lone surrogates and structural garbage are refused by
/// `EventBatch` parsing (→ 422 upstream), without panicking.
#[test]
fn json_batches_with_wrong_types_are_refused() {
    let ev = |row: &str| {
        format!(
            r#"{{"events":[{{"event_type":"update","fields":[],"rows":[{row}],"event_schema":"fs","table":"files","message_source":"realtime"}}]}}"#
        )
    };
    let bad = [
        ev(r#"{"path":"/x","size":"big"}"#),
        ev(r#"{"path":"/x","size":-1}"#),
        ev(r#"{"path":"/x","size":1.5}"#),
        ev(r#"{"path":5}"#),
        ev(r#"{"path":["/x"]}"#),
        ev(r#"{"path":"/x","modified_time":"now"}"#),
        ev(r#"{"path":"/x","modified_time":NaN}"#),
        ev(r#"{"path":"/x","modified_time":1e999}"#),
        ev(r#"{"path":"/x","parent_mtime":"yesterday"}"#),
        ev(r#"{"path":"/x","is_directory":"yes"}"#),
        ev(r#"{"path":"/x","is_atomic_write":1}"#),
        ev(r#"{"path":"/x","audit_skipped":"true"}"#),
        ev(r#"{"path":"\ud800"}"#),
        ev(r#"{"path":"/a\udc00b"}"#),
        ev(r#"[1,2]"#),
        r#"{"events":[{"foo":1}]}"#.to_string(),
        r#"{"events":[{"event_type":"upsert","fields":[],"rows":[],"event_schema":"fs","table":"f"}]}"#.to_string(),
        r#"{"events":[{"event_type":"update","fields":[],"rows":[],"event_schema":"fs","table":"f","message_source":"gossip"}]}"#.to_string(),
        r#"{"events":"nope"}"#.to_string(),
        r#"{}"#.to_string(),
        r#"{"events":[}"#.to_string(),
        String::new(),
    ];
    for b in &bad {
        assert!(
            serde_json::from_str::<EventBatch>(b).is_err(),
            "accepted: {b}"
        );
    }
}

/// JSON level: a valid batch with odd-but-legal content parses and applies without panics.
#[test]
fn json_odd_but_valid_batch_applies() {
    let body = r#"{"events":[
        {"event_type":"insert","fields":[],"rows":[
            {"path":"rel/ü ñ.txt","size":10.0,"modified_time":1706000000,"is_dir":false},
            {"path":"/d","is_directory":true,"size":null,"modified_time":null},
            {"path":"/extra","extra_key":{"nested":[1,2]},"modified_time":5.5},
            {"size":3}
        ],"event_schema":"fs","table":"files","message_source":"snapshot"},
        {"event_type":"delete","fields":[],"rows":[{"path":"/never"}],"event_schema":"fs","table":"files"},
        {"event_type":"update","fields":[],"rows":[],"event_schema":"fs","table":"files","message_source":"audit"}
    ]}"#;
    let batch: EventBatch = serde_json::from_str(body).unwrap();
    let v = view();
    let rep = v.apply(&batch.events, t0());
    assert_eq!(rep.skipped, 1, "row without a path");
    assert_eq!(rep.rejected, 0);
    assert!(exists(&v, "/rel/ü ñ.txt"));
    assert_eq!(size(&v, "/rel/ü ñ.txt"), 10);
    assert_eq!(mtime(&v, "/d"), 0.0);
    assert_eq!(size(&v, "/d"), 0);
    assert!(exists(&v, "/extra"));
    assert!(
        v.read().tombstone("/never").is_some(),
        "default source is realtime"
    );
    assert!(
        !v.read().is_auditing(),
        "an event with empty rows is a no-op (§3)"
    );
    let j = v.read().search_json("ü", None).unwrap();
    let arr: Value = serde_json::from_slice(&j).unwrap();
    assert_eq!(arr[0]["path"], "/rel/ü ñ.txt");
    check(&v);
}

/// Odd values that are valid must not break queries: huge sizes, negative and huge mtimes,
/// empty events.
#[test]
fn extreme_values_do_not_break_queries() {
    let v = view();
    let t = t0();
    rt(
        &v,
        t,
        vec![
            file_sz("/huge", -1.0e300, u64::MAX / 2),
            file_sz("/huge2", 1.0e300, u64::MAX / 2),
            file("/neg", -5.0),
        ],
    );
    v.apply(&[], t);
    v.apply(
        &[Event::fs(
            EventType::Update,
            MessageSource::Realtime,
            vec![],
        )],
        t,
    );
    let s = stats(&v, t);
    assert_eq!(s.total_files, 3);
    assert!(s.logical_now.is_finite());
    assert!(tree(&v, "/", full()).is_some());
    let j: Value = serde_json::from_slice(&v.read().search_json("*", None).unwrap()).unwrap();
    assert_eq!(j.as_array().unwrap().len(), 3);
    v.expire_suspects(t.plus(100.0));
    audit(&v, t, vec![dir("/", 1.0)]);
    v.audit_end(t.plus(1.0));
    check(&v);
}
