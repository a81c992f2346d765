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
    c.agents.push(AgentProc::start_yaml(&home, "s3", yaml));
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
        s.contains("last error: s3 listing of bucket \"bkt\"")
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
            .contains("last error: s3 listing")
            .then_some(())
    });
    assert!(c.agents[0].alive());
    let moto = Moto::start_on(port, false);
    moto.create_bucket("late");
    moto.bucket("late").put("x/late.txt", b"late");
    c.wait_ready("v1", 60.0);
    c.wait_present("v1", "/x/late.txt", 10.0);
    c.wait("the error cleared", 10.0, || {
        (!status_text(&c).contains("last error: s3")).then_some(())
    });
}
