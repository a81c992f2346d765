//! The `s3` source against a real S3-compatible server (moto) and a real Fusion: keys become
//! a tree (prefix directories), creates, overwrites and deletes reach the view, 10k objects
//! page through the listing, and bad credentials or an unreachable endpoint are reported and
//! retried without a crash.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod s3kit;

use common::{AgentProc, Cluster, FusionOpts};
use s3kit::{KEY_ID, Moto, SECRET, agent_yaml, moto_or_skip};

fn cluster() -> Cluster {
    Cluster::new(FusionOpts {
        audit_interval: 0.0,
        sentinel_interval: 0.0,
        ..FusionOpts::default()
    })
}

fn start_agent(c: &mut Cluster, yaml: &str) {
    let home = c.path("agent-s3");
    c.agents
        .push(AgentProc::start_yaml(&home, "s3", yaml, None));
}

fn status_text(c: &Cluster) -> String {
    fustor_testkit::output_text(&c.agents[0].cli(&["status"]))
}

#[test]
fn s3_keys_become_a_tree_and_creates_overwrites_deletes_reach_the_view() {
    if !moto_or_skip("s3_keys_become_a_tree") {
        return;
    }
    let moto = Moto::start();
    moto.create_bucket("bkt");
    let b = moto.bucket("bkt");
    b.put("data/a.txt", b"aa");
    b.put("data/dir/sub/b.bin", b"12345");
    b.put("other/outside.txt", b"o");
    let mut c = cluster();
    let yaml = agent_yaml(
        "s3",
        &moto.endpoint(),
        "bkt",
        "data/",
        &c.fusion.recv_url(),
        (KEY_ID, SECRET),
    );
    start_agent(&mut c, &yaml);
    c.wait_ready("v1", 30.0);
    let a = c.wait_present("v1", "/a.txt", 10.0);
    assert_eq!(a["size"], 2, "{a}");
    assert!(a["modified_time"].as_f64().unwrap() > 1.6e9, "{a}");
    let f = c.wait_present("v1", "/dir/sub/b.bin", 10.0);
    assert_eq!(f["size"], 5, "{f}");
    let d = c.fusion.node("v1", "/dir").body;
    assert_eq!(d["content_type"], "directory", "{d}");
    // Keys outside the prefix, and the prefix itself, are not in the view.
    assert_eq!(c.fusion.node("v1", "/outside.txt").status, 404);
    assert_eq!(c.fusion.node("v1", "/data").status, 404);
    assert_eq!(c.fusion.file_count("v1"), Some(2));

    // Create.
    b.put("data/new/n.txt", b"new");
    let n = c.wait_present("v1", "/new/n.txt", 10.0);
    assert_eq!(n["size"], 3, "{n}");
    // Overwrite.
    b.put("data/a.txt", b"aaaa");
    c.wait_node("v1", "/a.txt", "overwrite seen", 10.0, |r| {
        r.body["size"] == 4
    });
    // Delete: the file and the prefix it was the last key of.
    b.delete("data/dir/sub/b.bin");
    c.wait_absent("v1", "/dir/sub/b.bin", 10.0);
    c.wait_absent("v1", "/dir", 10.0);
    assert_eq!(c.fusion.file_count("v1"), Some(2));
    assert!(c.agents[0].alive());
}

#[test]
fn s3_ten_thousand_objects_page_through_the_listing() {
    if !moto_or_skip("s3_ten_thousand_objects") {
        return;
    }
    let moto = Moto::start();
    moto.create_bucket("big");
    let b = moto.bucket("big");
    let n = 10_001;
    b.put_many((0..n).map(|i| format!("d{}/k{i:05}", i % 10)).collect(), 16);
    let mut c = cluster();
    let yaml = agent_yaml(
        "s3",
        &moto.endpoint(),
        "big",
        "",
        &c.fusion.recv_url(),
        (KEY_ID, SECRET),
    );
    start_agent(&mut c, &yaml);
    c.wait_ready("v1", 60.0);
    c.wait("all 10001 objects in the view", 60.0, || {
        (c.fusion.file_count("v1") == Some(n)).then_some(())
    });
    // A delete among 10k keys is found by the next poll.
    b.delete("d3/k00003");
    c.wait_absent("v1", "/d3/k00003", 20.0);
    assert_eq!(c.fusion.file_count("v1"), Some(n - 1));
}

#[test]
fn s3_bad_credentials_are_reported_and_retried_without_a_crash() {
    if !moto_or_skip("s3_bad_credentials") {
        return;
    }
    let moto = Moto::start_on(fustor_testkit::free_port(), true);
    let mut c = cluster();
    let yaml = agent_yaml(
        "s3",
        &moto.endpoint(),
        "bkt",
        "",
        &c.fusion.recv_url(),
        ("AKIANOTAKEY", "wrong"),
    );
    start_agent(&mut c, &yaml);
    c.wait("two failed listings in the log", 30.0, || {
        (c.agents[0].log().matches("s3 listing failed").count() >= 2).then_some(())
    });
    let log = c.agents[0].log();
    assert!(log.contains("InvalidAccessKeyId"), "{log}");
    let status = c.wait("the error in the pipe status", 10.0, || {
        let s = status_text(&c);
        // The status escapes the problem text (`escape_debug`): the bucket's quotes show as \".
        s.contains(r#"source problem: s3 listing of bucket \"bkt\""#)
            .then_some(s)
    });
    assert!(status.contains("InvalidAccessKeyId"), "{status}");
    assert!(c.agents[0].alive(), "the agent must not crash");
    assert_ne!(
        c.fusion.stats("v1").status,
        200,
        "no snapshot from a refused listing"
    );
}

#[test]
fn s3_unreachable_endpoint_is_retried_until_it_answers() {
    if !moto_or_skip("s3_unreachable_endpoint") {
        return;
    }
    let port = fustor_testkit::free_port();
    let mut c = cluster();
    let yaml = agent_yaml(
        "s3",
        &format!("http://127.0.0.1:{port}"),
        "late",
        "",
        &c.fusion.recv_url(),
        (KEY_ID, SECRET),
    );
    start_agent(&mut c, &yaml);
    c.wait("a failed listing in the log", 30.0, || {
        c.agents[0]
            .log()
            .contains("s3 listing failed")
            .then_some(())
    });
    c.wait("the error in the pipe status", 10.0, || {
        status_text(&c)
            .contains("source problem: s3 listing")
            .then_some(())
    });
    assert!(c.agents[0].alive());
    let moto = Moto::start_on(port, false);
    moto.create_bucket("late");
    moto.bucket("late").put("x/late.txt", b"late");
    c.wait_ready("v1", 60.0);
    c.wait_present("v1", "/x/late.txt", 10.0);
    c.wait("the error cleared", 10.0, || {
        (!status_text(&c).contains("source problem: s3")).then_some(())
    });
}

/// The user guide's forest example: an NFS tree (fs source, pipe v1) and its S3 copy (s3
/// source, pipe v2) in one `forest-fs` view; `stats?best=` names the complete copy, `diff`
/// the files missing on either side.
#[test]
fn s3_forest_compares_an_nfs_tree_with_its_s3_copy() {
    if !moto_or_skip("s3_forest") {
        return;
    }
    let moto = Moto::start();
    moto.create_bucket("copy");
    let b = moto.bucket("copy");
    let mut c = cluster();
    let yaml = format!(
        "host: 127.0.0.1\nport: {main}\nsession_cleanup_interval: 0.5\n\
         receivers:\n  http-main: {{driver: http, bind_host: 127.0.0.1, port: {recv}, api_keys: [{{key: agent-key, pipe_id: v1}}, {{key: agent-key-2, pipe_id: v2}}]}}\n\
         views:\n  forest: {{driver: forest-fs, api_keys: [qf]}}\n\
         pipes:\n  v1: {{receiver: http-main, views: [forest], session_timeout_seconds: 3, audit_interval_sec: 0, sentinel_interval_sec: 0}}\n  \
         v2: {{receiver: http-main, views: [forest], session_timeout_seconds: 3, audit_interval_sec: 0, sentinel_interval_sec: 0}}\n",
        main = c.fusion.main_port,
        recv = c.fusion.recv_port,
    );
    std::fs::write(c.fusion.home.join("fusion-config/default.yaml"), yaml).unwrap();
    c.fusion.restart();

    let nfs = c.dir("nfs/run42");
    common::write(&nfs.join("a.h5"), b"aaaa");
    common::write(&nfs.join("sub/b.h5"), b"bb");
    common::write(&nfs.join("only-on-nfs.h5"), b"n");
    b.put("datasets/run42/a.h5", b"aaaa");
    b.put("datasets/run42/sub/b.h5", b"bb");
    let nfs_root = c.path("nfs");
    let cfg = c.agent_cfg("nfs", &nfs_root);
    c.start_agent(&cfg);
    let s3_yaml = agent_yaml(
        "s3",
        &moto.endpoint(),
        "copy",
        "datasets",
        &c.fusion.recv_url(),
        (KEY_ID, SECRET),
    )
    .replace("pipes:\n  v1:", "pipes:\n  v2:")
    .replace("{key: agent-key}", "{key: agent-key-2}");
    start_agent(&mut c, &s3_yaml);

    let stats = c.wait("both members hold /run42", 60.0, || {
        let r = c.fusion.get(
            "/api/v1/views/forest/stats?path=/run42&best=file_count",
            "qf",
        );
        let members = r.body["members"].as_array().cloned().unwrap_or_default();
        let counts: Vec<u64> = members
            .iter()
            .filter_map(|m| m["file_count"].as_u64())
            .collect();
        (r.status == 200 && counts.len() == 2 && counts.iter().sum::<u64>() == 5).then_some(r.body)
    });
    assert_eq!(stats["best"]["view_id"], "v1", "{stats}");
    assert_eq!(stats["best"]["value"], 3, "{stats}");

    let diff = c
        .fusion
        .get("/api/v1/views/forest/diff?path=/run42", "qf")
        .body;
    assert_eq!(diff["compared_files"], 3, "{diff}");
    assert_eq!(
        diff["only_in"]["v1"],
        serde_json::json!(["/run42/only-on-nfs.h5"]),
        "{diff}"
    );
    assert_eq!(diff["only_in"]["v2"], serde_json::json!([]), "{diff}");
    // The copies have the same sizes; their mtimes differ (an upload time is not the file's
    // mtime), which `diff` reports as mismatched.
    for m in diff["mismatched"].as_array().unwrap() {
        assert_eq!(
            m["members"]["v1"]["size"], m["members"]["v2"]["size"],
            "{m}"
        );
    }

    // The missing file is uploaded: the copy is complete after one poll.
    b.put("datasets/run42/only-on-nfs.h5", b"n");
    c.wait("the copy catches up", 20.0, || {
        let d = c
            .fusion
            .get("/api/v1/views/forest/diff?path=/run42", "qf")
            .body;
        (d["only_in_count"] == 0).then_some(())
    });
}
