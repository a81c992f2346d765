//! Names that are not valid UTF-8 (issue 9 item 2): `caf\xe9.txt` and `caf\xe8.txt` are two
//! files, kept apart from the wire to the JSON answers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use fustor_core::lossless::{escape, unescape};
use fustor_core::{EventBatch, FsRow};
use serde_json::Value;

/// Rows exactly as the Python agent sends them (`json.dumps` of `os.fsdecode` names).
fn python_rows(t: f64) -> Vec<FsRow> {
    let body = format!(
        r#"{{"events":[{{"event_type":"update","fields":[],"event_schema":"fs","table":"files",
        "rows":[{{"path":"/caf\udce9.txt","file_name":"caf\udce9.txt","size":1,"modified_time":{t},"is_directory":false}},
                {{"path":"/caf\udce8.txt","file_name":"caf\udce8.txt","size":2,"modified_time":{t},"is_directory":false}}]}}]}}"#
    );
    let b: EventBatch = serde_json::from_str(&body).unwrap();
    b.events.into_iter().next().unwrap().rows
}

#[test]
fn two_names_differing_in_an_undecodable_byte_are_two_nodes() {
    let v = view();
    snap(&v, t0(), python_rows(T0 - 100.0));
    let e9 = escape(b"/caf\xe9.txt").into_owned();
    let e8 = escape(b"/caf\xe8.txt").into_owned();
    assert!(exists(&v, &e9) && exists(&v, &e8));
    assert_eq!(size(&v, &e9), 1);
    assert_eq!(size(&v, &e8), 2);
    assert_eq!(stats(&v, t0()).total_files, 2);
    check(&v);

    // The answer writes them as Python does: distinct `\udcXX` escapes, never U+FFFD.
    let bytes = v.read().tree_json("/", &full(), None, &[]).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.contains(r#""name":"caf\udce9.txt""#), "{text}");
    assert!(text.contains(r#""path":"/caf\udce8.txt""#), "{text}");
    assert!(!text.contains('\u{FFFD}'));
    let found = String::from_utf8(v.read().search_json("caf*", None).unwrap()).unwrap();
    assert!(
        found.contains(r"caf\udce9") && found.contains(r"caf\udce8"),
        "{found}"
    );

    // Deleting one removes only that one.
    rt_del(&v, t0().plus(1.0), &[&e9]);
    assert!(!exists(&v, &e9));
    assert!(exists(&v, &e8));
    let root: Value = tree(&v, "/", full()).unwrap();
    let kids = root["children"].as_array().unwrap();
    assert_eq!(kids.len(), 1);
    let name = kids[0]["name"].as_str().unwrap();
    assert_eq!(unescape(name).as_ref(), b"caf\xe8.txt");
    check(&v);
}

#[test]
fn undecodable_names_in_directories_and_realtime() {
    let v = view();
    let d = escape(b"/d\xff").into_owned();
    snap(&v, t0(), vec![dir(&d, T0 - 100.0)]);
    let a = format!("{d}/{}", escape(b"\xe9"));
    let b = format!("{d}/{}", escape(b"\xe8"));
    rt(&v, t0().plus(1.0), vec![file(&a, T0), file(&b, T0)]);
    assert!(exists(&v, &a) && exists(&v, &b));
    let t = v.read().tree_json(&d, &full(), None, &[]).unwrap();
    let text = String::from_utf8(t).unwrap();
    assert!(text.contains(r#""path":"/d\udcff/\udce9""#), "{text}");
    check(&v);
}
