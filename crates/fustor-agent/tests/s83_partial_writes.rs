//! S83: a file written in chunks for longer than the throttle interval, without closing, is
//! suspect (partial-write rows, at most one per throttle interval); the close clears it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::{Cluster, FusionOpts};

#[test]
fn s83_partial_writes_are_suspect_until_close() {
    let mut c = Cluster::new(FusionOpts {
        audit_interval: 0.0,
        ..FusionOpts::default()
    });
    let data = c.dir("data");
    let mut cfg = c.agent_cfg("a", &data);
    cfg.driver_params = "{throttle_interval_sec: 0.5}".to_string();
    c.start_agent(&cfg);
    c.wait_ready("v1", 30.0);

    let mut f = std::fs::File::create(data.join("big.bin")).unwrap();
    let chunk = vec![7u8; 4096];
    let mut written = 0u64;
    let mut seen_suspect = None;
    let until = Instant::now() + Duration::from_millis(2500); // > 4 throttle intervals
    while Instant::now() < until {
        f.write_all(&chunk).unwrap();
        written += chunk.len() as u64;
        std::thread::sleep(Duration::from_millis(100));
        let r = c.fusion.node("v1", "/big.bin");
        if r.status == 200 && r.body["integrity_suspect"] == true {
            seen_suspect = Some(r.body);
        }
    }
    let n = seen_suspect.expect("the file was suspect while being written");
    assert_eq!(n["agent_missing"], false, "{n}");
    let listed = c.fusion.suspects("v1");
    assert!(listed.to_string().contains("/big.bin"), "{listed}");
    // Throttled rows kept the size moving while the writer was busy.
    let mid = c.fusion.node("v1", "/big.bin").body["size"]
        .as_u64()
        .unwrap();
    assert!(mid > 4096, "size grew during the write: {mid}");

    drop(f); // close-write
    let n = c.wait_node(
        "v1",
        "/big.bin",
        "close clears the suspect flag",
        5.0,
        |r| r.body["integrity_suspect"] == false,
    );
    assert_eq!(n["size"], written, "{n}");
    let listed = c.fusion.suspects("v1");
    assert!(!listed.to_string().contains("/big.bin"), "{listed}");
}
