//! S75 at the top level of the share, with real agents and the real Fusion (issue 9, item 1).
//!
//! Each audit opens with the root row marked `audit_skipped`; the walk's real root row carries
//! the same mtime, so it used to be dropped as stale with its flag and the root's children were
//! never checked: a top-level file deleted by a host without an agent, or a top-level directory
//! renamed while the agent was down, stayed in the view forever.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Cluster, FusionOpts, skip_without_bindfs, write};

/// The settings: audit 15 s there, 2 s here to keep the test short.
fn opts() -> FusionOpts {
    FusionOpts {
        audit_interval: 2.0,
        hot: 5.0,
        session_timeout: 3,
        ..FusionOpts::default()
    }
}

/// Host C (a write into the bindfs backing directory) deletes a top-level file that client A
/// created and Fusion saw in realtime: the next completed audit removes it.
#[test]
fn s75_top_level_blind_deletion_is_found_by_the_next_audit() {
    if skip_without_bindfs("s75_top_level") {
        return;
    }
    let mut c = Cluster::new(opts());
    let backing = c.dir("share");
    write(&backing.join("base/seed.txt"), b"seed");
    let mnt = c.bind(&backing, "mnt-a").expect("bindfs mount");
    let a = c.agent_cfg("a", &mnt);
    c.start_agent(&a);
    c.wait_ready("v1", 30.0);
    c.wait_audits("v1", 1, 20.0);

    write(&mnt.join("bd.txt"), b"bd");
    c.wait_node("v1", "/bd.txt", "bd.txt via A in realtime", 5.0, |r| {
        r.status == 200 && r.body["agent_missing"] == false
    });
    std::fs::remove_file(backing.join("bd.txt")).unwrap();
    // Three audits at most (the reference: never).
    c.wait_absent("v1", "/bd.txt", 3.0 * 2.0 + 15.0);
    let bs = c.fusion.blind_spots("v1");
    assert!(
        bs["deletions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d == "/bd.txt"),
        "{bs}"
    );
    assert_eq!(c.fusion.node("v1", "/").body["audit_skipped"], false);
    assert_eq!(c.fusion.node("v1", "/base/seed.txt").status, 200);
}

/// The agent is killed (-9), a top-level directory is renamed while it is down, the agent
/// restarts: its snapshot adds the new name and an audit removes the old one with its files.
#[test]
fn s75_top_level_rename_while_the_agent_was_down_is_resolved_by_audit() {
    let mut c = Cluster::new(opts());
    let data = c.dir("data");
    for d in 0..5 {
        for f in 0..10 {
            write(&data.join(format!("d{d:04}/f{f}.txt")), b"x");
        }
    }
    let a = c.agent_cfg("a", &data);
    c.start_agent(&a);
    c.wait_ready("v1", 30.0);
    c.wait("50 files", 10.0, || {
        (c.fusion.file_count("v1") == Some(50)).then_some(())
    });
    // Two audits: the second finds every directory unchanged (all `audit_skipped`).
    c.wait_audits("v1", 2, 20.0);

    c.agents[0].kill9();
    std::fs::rename(data.join("d0003"), data.join("d0003_moved")).unwrap();
    c.agents[0].spawn();

    c.wait_present("v1", "/d0003_moved/f9.txt", 30.0);
    c.wait_absent("v1", "/d0003", 30.0);
    c.wait_absent("v1", "/d0003/f0.txt", 1.0);
    c.wait("50 files after the rename", 10.0, || {
        (c.fusion.file_count("v1") == Some(50)).then_some(())
    });
}
