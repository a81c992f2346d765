//! F1 with two NFS clients simulated by bindfs: agents A and B watch two bindfs mounts of one
//! backing directory; writes straight into the backing directory are host C (no agent), which
//! neither agent's inotify sees. S74 (follower does not scan, C's file found by A's audit),
//! S75 (C's deletion found by an audit), S69–S71 through real agents (on-demand scan).
//!
//! Needs bindfs and /dev/fuse; prints "SKIPPED: bindfs unavailable" and passes otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Cluster, FusionOpts, skip_without_bindfs, write};

/// Backing directory, two mounts, A started first (leader), then B (follower).
fn two_clients(opts: FusionOpts) -> Option<(Cluster, std::path::PathBuf, std::path::PathBuf)> {
    let mut c = Cluster::new(opts);
    let backing = c.dir("share");
    write(&backing.join("base/seed.txt"), b"seed");
    let mnt_a = c.bind(&backing, "mnt-a")?;
    let mnt_b = c.bind(&backing, "mnt-b")?;
    let a = c.agent_cfg("a", &mnt_a);
    c.start_agent(&a);
    c.wait_ready("v1", 30.0);
    let b = c.agent_cfg("b", &mnt_b);
    c.start_agent(&b);
    c.wait("b connected as follower with realtime", 15.0, || {
        c.fusion
            .session_of("v1", "b")
            .filter(|s| s["can_realtime"] == true)
    });
    Some((c, backing, mnt_a))
}

#[test]
fn s74_s75_follower_does_not_scan_and_audits_find_blind_spots() {
    if skip_without_bindfs("s74_s75") {
        return;
    }
    let (c, backing, mnt_a) = two_clients(FusionOpts {
        audit_interval: 2.0,
        ..FusionOpts::default()
    })
    .expect("bindfs mounts");

    // S74: roles and capabilities.
    let a = c.fusion.session_of("v1", "a").unwrap();
    let b = c.fusion.session_of("v1", "b").unwrap();
    assert_eq!(a["role"], "leader", "{a}");
    assert_eq!(b["role"], "follower", "{b}");
    assert_eq!(b["can_snapshot"], false, "{b}");
    assert_eq!(b["can_audit"], false, "{b}");
    assert_eq!(b["can_send"], true, "{b}");

    // The shares agree on keys: the seed is one node, reported by A's snapshot.
    let seed = c.wait_present("v1", "/base/seed.txt", 5.0);
    assert_eq!(seed["agent_missing"], false, "{seed}");

    // A write through A's mount is realtime; B's inotify does not see it (another client).
    write(&mnt_a.join("via-a.txt"), b"a");
    let n = c.wait_node("v1", "/via-a.txt", "A's realtime write", 5.0, |r| {
        r.status == 200 && r.body["integrity_suspect"] == false
    });
    assert_eq!(n["agent_missing"], false, "{n}");
    assert_eq!(n["last_agent_id"], "a", "{n}");

    // Host C writes into the share: only an audit by the leader finds it.
    let before = c.audit_cycles("v1");
    write(&backing.join("base/from-c.txt"), b"written by C");
    let n = c.wait_present("v1", "/base/from-c.txt", 20.0);
    assert_eq!(
        n["agent_missing"], true,
        "found by an audit, not by an agent: {n}"
    );
    assert_eq!(n["size"], 12, "{n}");
    c.wait("the audit that found it completed", 10.0, || {
        (c.audit_cycles("v1") > before).then_some(())
    });
    let bs = c.fusion.blind_spots("v1");
    assert!(
        bs["additions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["path"] == "/base/from-c.txt"),
        "{bs}"
    );
    let stats = c.fusion.stats("v1").body;
    assert_eq!(stats["has_blind_spot"], true, "{stats}");

    // S75: C deletes a file the view knows; the next completed audit removes it and lists
    // it as a blind-spot deletion.
    write(&mnt_a.join("base/bd.txt"), b"bd");
    c.wait_node("v1", "/base/bd.txt", "bd.txt via A", 5.0, |r| {
        r.status == 200 && r.body["agent_missing"] == false
    });
    std::fs::remove_file(backing.join("base/bd.txt")).unwrap();
    c.wait_absent("v1", "/base/bd.txt", 20.0);
    let bs = c.fusion.blind_spots("v1");
    assert!(
        bs["deletions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d == "/base/bd.txt"),
        "{bs}"
    );

    // The follower sent no snapshot and no audit; the leader did both.
    let log_a = c.agents[0].log();
    let log_b = c.agents[1].log();
    assert!(log_a.contains("snapshot sent") && log_a.contains("audit pass done"));
    assert!(
        !log_b.contains("snapshot sent") && !log_b.contains("audit pass done"),
        "follower scanned:\n{}",
        c.agents[1].log_tail(40)
    );
    assert!(c.fusion.node("v1", "/base/seed.txt").status == 200);
}

/// S69–S71 through real agents: an on-demand scan of a path only host C wrote reaches both
/// agents as a `scan` command; their rows (agent_missing) make it visible without any audit.
#[test]
fn s71_on_demand_scan_finds_what_only_host_c_wrote() {
    if skip_without_bindfs("s71") {
        return;
    }
    let (c, backing, _) = two_clients(FusionOpts {
        audit_interval: 0.0, // no audits: only the scan can find C's files
        ..FusionOpts::default()
    })
    .expect("bindfs mounts");
    write(&backing.join("od/deep/x.txt"), b"x");
    // S70: a path the view does not have yet gives a pending job, not a 404.
    let r = c
        .fusion
        .get("/api/v1/views/v1/tree?path=/od&on_demand_scan=true", "qk1");
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["job_pending"], true, "{:?}", r.body);
    let job = r.body["job_id"].as_str().unwrap().to_string();
    let n = c.wait_present("v1", "/od/deep/x.txt", 15.0);
    assert_eq!(n["agent_missing"], true, "{n}");
    let j = c.wait("job completed by both agents", 15.0, || {
        let r = c.fusion.get(&format!("/api/v1/views/v1/jobs/{job}"), "qk1");
        (r.body["status"] == "COMPLETED").then_some(r.body)
    });
    assert_eq!(j["progress"]["total_pipes"], 2, "{j}");
    assert_eq!(c.audit_cycles("v1"), 0, "no audit ran");
}
