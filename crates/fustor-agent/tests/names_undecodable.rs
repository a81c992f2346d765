//! Issue 9 item 2: names that are not valid UTF-8 stay distinct end to end. A real agent
//! watches a real directory holding `caf\xe9.txt` and `caf\xe8.txt` (Latin-1 names, as on old
//! NFS shares); the real Fusion must list two files, in the snapshot and in realtime, written
//! as the Python reference writes them (`\udcXX`), and deleting one must remove only that one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use common::{Cluster, Fusion, FusionOpts, write};

/// Percent-encodes raw path bytes, as a client asking for a Latin-1 path does (`%E9`).
fn pct(raw: &[u8]) -> String {
    raw.iter()
        .map(|&b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The raw text of a query answer: a `serde_json::Value` cannot hold `\udcXX`.
fn get_text(f: &Fusion, path_and_query: &str) -> (u16, String) {
    let r = f
        .http
        .get(format!("{}{path_and_query}", f.main_url()))
        .header("X-API-Key", Fusion::qkey("v1"))
        .send();
    match r {
        Ok(r) => (r.status().as_u16(), r.text().unwrap_or_default()),
        Err(_) => (0, String::new()),
    }
}

fn node(f: &Fusion, raw: &[u8]) -> (u16, String) {
    get_text(
        f,
        &format!("/api/v1/views/v1/tree?path={}&max_depth=0", pct(raw)),
    )
}

fn wait_node(c: &Cluster, raw: &[u8], what: &str, cond: impl Fn(u16, &str) -> bool) -> String {
    c.wait(what, 10.0, || {
        let (status, text) = node(&c.fusion, raw);
        cond(status, &text).then_some(text)
    })
}

/// `total_files` of the view (the stats name the oldest directory, maybe with `\udcXX`).
fn files(f: &Fusion) -> Option<u64> {
    let (_, text) = get_text(f, "/api/v1/views/v1/stats");
    let rest = &text[text.find(r#""total_files":"#)? + 14..];
    rest[..rest.find(|c: char| !c.is_ascii_digit())?]
        .parse()
        .ok()
}

fn at(dir: &Path, raw: &[u8]) -> std::path::PathBuf {
    dir.join(OsStr::from_bytes(raw))
}

#[test]
fn latin1_names_stay_distinct_in_snapshot_realtime_and_delete() {
    let mut c = Cluster::new(FusionOpts {
        audit_interval: 0.0,
        ..FusionOpts::default()
    });
    let data = c.dir("data");
    write(&at(&data, b"caf\xe9.txt"), b"e9");
    write(&at(&data, b"caf\xe8.txt"), b"e8!");
    write(&at(&data, b"d\xff/x"), b"x");
    let cfg = c.agent_cfg("a", &data);
    c.start_agent(&cfg);
    c.wait_ready("v1", 30.0);

    // Snapshot: two files, each answered under its own bytes, written like Python writes them.
    let e9 = wait_node(
        &c,
        b"/caf\xe9.txt",
        "caf\\xe9.txt in the snapshot",
        |s, _| s == 200,
    );
    assert!(e9.contains(r#""name":"caf\udce9.txt""#), "{e9}");
    assert!(e9.contains(r#""size":2"#), "{e9}");
    let (s, e8) = node(&c.fusion, b"/caf\xe8.txt");
    assert_eq!(s, 200, "{e8}");
    assert!(e8.contains(r#""path":"/caf\udce8.txt""#), "{e8}");
    assert!(e8.contains(r#""size":3"#), "{e8}");
    let (_, root) = get_text(&c.fusion, "/api/v1/views/v1/tree?path=/");
    assert!(!root.contains('\u{FFFD}'), "{root}");
    assert!(root.contains(r#""path":"/d\udcff/x""#), "{root}");
    assert_eq!(files(&c.fusion), Some(3));

    // Realtime: two more created after start, in a directory with an undecodable name too.
    write(&at(&data, b"d\xff/new\xe9"), b"1");
    write(&at(&data, b"d\xff/new\xe8"), b"22");
    wait_node(&c, b"/d\xff/new\xe9", "realtime new\\xe9", |s, t| {
        s == 200 && t.contains(r#""size":1"#)
    });
    wait_node(&c, b"/d\xff/new\xe8", "realtime new\\xe8", |s, t| {
        s == 200 && t.contains(r#""size":2"#)
    });
    c.wait("five files", 10.0, || {
        (files(&c.fusion) == Some(5)).then_some(())
    });

    // Search finds both Latin-1 names, distinct.
    let (s, found) = get_text(&c.fusion, "/api/v1/views/v1/search?pattern=caf*");
    assert_eq!(s, 200, "{found}");
    assert!(
        found.contains(r"caf\udce9.txt") && found.contains(r"caf\udce8.txt"),
        "{found}"
    );

    // An on-demand scan of a directory with an undecodable name: the agent scans the right
    // directory and its `job_complete` (`scan_path` with `\udcff`) completes the job.
    let (s, t) = get_text(
        &c.fusion,
        "/api/v1/views/v1/tree?path=/d%FF&on_demand_scan=true",
    );
    assert_eq!(s, 200, "{t}");
    let at_id = t.find(r#""job_id":""#).expect("a job id") + 10;
    let job = &t[at_id..at_id + t[at_id..].find('"').unwrap()];
    c.wait("the scan job of /d\\xff completes", 10.0, || {
        let (_, j) = get_text(&c.fusion, &format!("/api/v1/views/v1/jobs/{job}"));
        (j.contains("COMPLETED") && j.contains(r#""path":"/d\udcff""#)).then_some(())
    });

    // Deleting one removes only that one.
    std::fs::remove_file(at(&data, b"caf\xe9.txt")).unwrap();
    wait_node(&c, b"/caf\xe9.txt", "caf\\xe9.txt deleted", |s, _| s == 404);
    let (s, e8) = node(&c.fusion, b"/caf\xe8.txt");
    assert_eq!(
        s, 200,
        "caf\\xe8.txt must survive the delete of caf\\xe9.txt: {e8}"
    );
    std::fs::remove_file(at(&data, b"d\xff/new\xe8")).unwrap();
    wait_node(&c, b"/d\xff/new\xe8", "new\\xe8 deleted", |s, _| s == 404);
    assert_eq!(node(&c.fusion, b"/d\xff/new\xe9").0, 200);
    assert_eq!(files(&c.fusion), Some(3));
}
