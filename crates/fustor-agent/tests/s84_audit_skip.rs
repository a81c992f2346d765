//! S84: after a completed first audit, an audit over an unchanged tree lists no directory
//! (every directory node `audit_skipped: true`) and deletes nothing; a changed directory is
//! listed again by the next audit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::Value;

use common::{Cluster, FusionOpts, write};

fn dirs(node: &Value, out: &mut Vec<(String, Value)>) {
    if node["content_type"] == "directory" {
        out.push((
            node["path"].as_str().unwrap().to_string(),
            node["audit_skipped"].clone(),
        ));
        for c in node["children"].as_array().into_iter().flatten() {
            dirs(c, out);
        }
    }
}

#[test]
fn s84_unchanged_tree_is_skipped_by_the_next_audit() {
    let mut c = Cluster::new(FusionOpts {
        audit_interval: 2.0,
        ..FusionOpts::default()
    });
    let data = c.dir("data");
    for d in ["d1", "d2", "d2/sub", "d3/x/y"] {
        write(&data.join(d).join("f.txt"), b"f");
    }
    let cfg = c.agent_cfg("a", &data);
    c.start_agent(&cfg);
    c.wait_ready("v1", 30.0);
    c.wait("4 files", 5.0, || {
        (c.fusion.file_count("v1") == Some(4)).then_some(())
    });
    // First audit (full after the election), then one over the unchanged tree.
    c.wait_audits("v1", 2, 15.0);
    let tree = c.fusion.tree("v1", "/").body;
    let mut all = Vec::new();
    dirs(&tree, &mut all);
    assert_eq!(all.len(), 7, "{all:?}");
    for (p, skipped) in &all {
        assert_eq!(skipped, &Value::Bool(true), "{p} not skipped: {all:?}");
    }
    assert_eq!(c.fusion.file_count("v1"), Some(4));
    let bs = c.fusion.blind_spots("v1");
    assert_eq!(bs["deletion_count"], 0, "{bs}");

    // A change in d1 makes the next audit list d1 (and only directories that changed).
    write(&data.join("d1/g.txt"), b"g");
    c.wait_present("v1", "/d1/g.txt", 5.0);
    c.wait("d1 listed again by an audit", 10.0, || {
        (c.fusion.node("v1", "/d1").body["audit_skipped"] == false).then_some(())
    });
    assert_eq!(
        c.fusion.node("v1", "/d2/sub").body["audit_skipped"],
        true,
        "unchanged directories stay skipped"
    );
    assert_eq!(c.fusion.file_count("v1"), Some(5));
}
