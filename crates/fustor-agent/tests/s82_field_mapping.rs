//! S82: a pipe's `fields_mapping` projects every row (snapshot and realtime) before sending.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Cluster, FusionOpts, write};

#[test]
fn s82_field_mapping_projects_rows() {
    let mut c = Cluster::new(FusionOpts {
        audit_interval: 0.0,
        ..FusionOpts::default()
    });
    let data = c.dir("data");
    write(&data.join("pre.txt"), b"12345");
    let mut cfg = c.agent_cfg("a", &data);
    cfg.pipe_extra = "    fields_mapping:\n      - {to: path, source: [\"path:string\"]}\n      - {to: modified_time, source: [\"modified_time:number\"]}\n".to_string();
    c.start_agent(&cfg);
    c.wait_ready("v1", 30.0);
    let size_dropped = |n: &serde_json::Value| n["size"] == 0 || n["size"].is_null();
    // Snapshot row.
    let n = c.wait_present("v1", "/pre.txt", 5.0);
    assert!(size_dropped(&n), "size is not mapped: {n}");
    assert!(n["modified_time"].as_f64().unwrap() > 0.0, "{n}");
    // Realtime row.
    write(&data.join("five.txt"), b"hello");
    let n = c.wait_present("v1", "/five.txt", 5.0);
    assert!(size_dropped(&n), "size is not mapped: {n}");
    assert!(n["modified_time"].as_f64().unwrap() > 0.0, "{n}");
    // Deletes carry the mapped path and still work.
    std::fs::remove_file(data.join("five.txt")).unwrap();
    c.wait_absent("v1", "/five.txt", 5.0);
}
