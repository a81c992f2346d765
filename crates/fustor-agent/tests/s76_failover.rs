//! S76 (leader crash failover) and S77 (the new leader audits), on two bindfs clients of one
//! share (see s74). Needs bindfs; prints "SKIPPED: bindfs unavailable" and passes otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, FusionOpts, skip_without_bindfs, write};

#[test]
fn s76_s77_leader_sigkill_follower_takes_over_and_audits() {
    if skip_without_bindfs("s76_s77") {
        return;
    }
    let mut c = Cluster::new(FusionOpts {
        audit_interval: 2.0,
        ..FusionOpts::default()
    });
    let backing = c.dir("share");
    // Enough files that B's snapshot takes a moment through FUSE.
    for i in 0..2000 {
        write(
            &backing.join(format!("d{}/f{i}.txt", i % 20)),
            b"0123456789",
        );
    }
    let mnt_a = c.bind(&backing, "mnt-a").expect("bindfs");
    let mnt_b = c.bind(&backing, "mnt-b").expect("bindfs");
    let a = c.agent_cfg("a", &mnt_a);
    c.start_agent(&a);
    c.wait_ready("v1", 30.0);
    let b = c.agent_cfg("b", &mnt_b);
    c.start_agent(&b);
    c.wait("b follower", 15.0, || {
        c.fusion
            .session_of("v1", "b")
            .filter(|s| s["role"] == "follower" && s["can_realtime"] == true)
    });
    write(&mnt_a.join("written-before.txt"), b"before");
    c.wait_present("v1", "/written-before.txt", 5.0);
    assert_eq!(c.fusion.file_count("v1"), Some(2001));

    // SIGKILL: no DELETE, the session must expire (timeout 3 s).
    let killed_at = Instant::now();
    c.agents[0].kill9();
    let mut saw_503 = None;
    let promoted = c.wait("b promoted to leader", 15.0, || {
        let r = c.fusion.stats("v1");
        if r.status == 503 && saw_503.is_none() {
            saw_503 = Some(r.body["detail"].to_string());
        }
        c.fusion
            .session_of("v1", "b")
            .filter(|s| s["role"] == "leader")
    });
    let took = killed_at.elapsed();
    assert_eq!(promoted["can_snapshot"], true, "{promoted}");
    assert_eq!(promoted["can_audit"], true, "{promoted}");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(8),
        "promotion after ≈ the 3 s session timeout, took {took:?}"
    );
    assert!(
        c.fusion.session_of("v1", "a").is_none(),
        "A's session expired"
    );
    // Readiness re-locks until B's snapshot ends, then everything is there.
    c.wait("view ready again", 30.0, || {
        let r = c.fusion.stats("v1");
        if r.status == 503 && saw_503.is_none() {
            saw_503 = Some(r.body["detail"].to_string());
        }
        (r.status == 200).then_some(())
    });
    let detail = saw_503.expect("the view answered 503 between the failover and B's snapshot");
    assert!(
        detail.contains("Initial snapshot") || detail.contains("No active leader"),
        "{detail}"
    );
    assert_eq!(c.fusion.file_count("v1"), Some(2001));
    let n = c.fusion.node("v1", "/written-before.txt");
    assert_eq!(n.status, 200, "{:?}", n.body);
    c.wait("B logged its snapshot", 5.0, || {
        c.agents[1].log().contains("snapshot sent").then_some(())
    });

    // S77: B audits now; host C's file is found by B.
    write(&backing.join("d3/from-c.txt"), b"c");
    let n = c.wait_present("v1", "/d3/from-c.txt", 20.0);
    assert_eq!(n["agent_missing"], true, "{n}");
    c.wait("B's audit pass completes", 10.0, || {
        c.agents[1].log().contains("audit pass done").then_some(())
    });
}
