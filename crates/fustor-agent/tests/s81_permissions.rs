//! S81 (permission-denied subtree) and AR§13 failure modes of the watched directory: removed,
//! or made unreadable, while the agent runs. The agent must stay up, keep its session alive
//! (heartbeats), log the problem, and sync again once the directory is back.
//!
//! Permissions do not apply to root: when the tests run as root the agent runs as `nobody`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{Cluster, FusionOpts, write};

const NOBODY: u32 = 65534;

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The uid to run the agent as so that permissions apply, with the test directories opened up
/// for it.
fn agent_uid(c: &Cluster, cfg_id: &str) -> Option<u32> {
    if !rustix::process::geteuid().is_root() {
        return None;
    }
    chmod(c.tmp.path(), 0o755);
    let home = c.path(&format!("agent-{cfg_id}"));
    std::fs::create_dir_all(&home).unwrap();
    std::os::unix::fs::chown(&home, Some(NOBODY), Some(NOBODY)).unwrap();
    Some(NOBODY)
}

/// A session's `last_activity` keeps increasing (heartbeats go on).
fn heartbeats_go_on(c: &Cluster, agent: &str) {
    let t0 = c.fusion.session_of("v1", agent).unwrap()["last_activity"]
        .as_f64()
        .unwrap();
    c.wait("heartbeats go on", 5.0, || {
        c.fusion
            .session_of("v1", agent)
            .and_then(|s| s["last_activity"].as_f64())
            .filter(|t| *t > t0 + 0.5)
    });
}

#[test]
fn s81_unreadable_subtree_is_skipped_and_the_rest_syncs() {
    let mut c = Cluster::new(FusionOpts::default());
    let data = c.dir("data");
    write(&data.join("open/a.txt"), b"a");
    write(&data.join("locked/secret.txt"), b"s");
    write(&data.join("locked/sub/deeper.txt"), b"d");
    chmod(&data.join("locked"), 0o000);
    let cfg = c.agent_cfg("a", &data);
    let uid = agent_uid(&c, "a");
    c.start_agent_as(&cfg, uid);
    c.wait_ready("v1", 30.0);
    c.wait_present("v1", "/open/a.txt", 5.0);
    // The locked directory itself is visible (stat works), its content is not.
    let locked = c.wait_present("v1", "/locked", 5.0);
    assert_eq!(locked["content_type"], "directory", "{locked}");
    assert_eq!(c.fusion.node("v1", "/locked/secret.txt").status, 404);
    // Files created elsewhere still sync in realtime; audits run over the unreadable part.
    write(&data.join("open/b.txt"), b"b");
    write(&data.join("new/c.txt"), b"c");
    c.wait_present("v1", "/open/b.txt", 5.0);
    c.wait_present("v1", "/new/c.txt", 5.0);
    c.wait_audits("v1", 1, 15.0);
    assert_eq!(c.fusion.node("v1", "/open/a.txt").status, 200);
    assert!(c.agents[0].alive());
    heartbeats_go_on(&c, "a");
    let log = c.agents[0].log();
    assert!(
        log.to_lowercase().contains("permission denied"),
        "the unreadable directory is logged:\n{}",
        c.agents[0].log_tail(40)
    );
    chmod(&data.join("locked"), 0o755);
}

#[test]
fn watched_directory_removed_agent_survives_and_resumes() {
    let mut c = Cluster::new(FusionOpts::default());
    let data = c.dir("data");
    write(&data.join("x.txt"), b"x");
    let cfg = c.agent_cfg("a", &data);
    c.start_agent(&cfg);
    c.wait_ready("v1", 30.0);
    c.wait_present("v1", "/x.txt", 5.0);
    std::fs::remove_dir_all(&data).unwrap();
    // The realtime delete reaches Fusion; the agent stays up with its session. Audits of a
    // missing root are empty passes (no audit reaches Fusion, nothing is judged).
    c.wait_absent("v1", "/x.txt", 5.0);
    let passes = |c: &Cluster| c.agents[0].log().matches("audit pass done").count();
    let p0 = passes(&c);
    c.wait("an audit pass over the missing root", 15.0, || {
        (passes(&c) > p0).then_some(())
    });
    assert!(c.agents[0].alive());
    heartbeats_go_on(&c, "a");
    c.wait("the loss of the root is logged", 10.0, || {
        let l = c.agents[0].log();
        (l.contains("WARN") || l.contains("ERROR")).then_some(())
    });
    // The directory comes back: the agent resumes watching it.
    write(&data.join("back/y.txt"), b"y");
    c.wait_present("v1", "/back/y.txt", 30.0);
    write(&data.join("back/z.txt"), b"z");
    c.wait_present("v1", "/back/z.txt", 30.0);
    assert!(c.agents[0].alive());
}

#[test]
fn watched_directory_unreadable_agent_survives_and_resumes() {
    let mut c = Cluster::new(FusionOpts::default());
    let data = c.dir("data");
    write(&data.join("x.txt"), b"x");
    let cfg = c.agent_cfg("a", &data);
    let uid = agent_uid(&c, "a");
    c.start_agent_as(&cfg, uid);
    c.wait_ready("v1", 30.0);
    c.wait_present("v1", "/x.txt", 5.0);
    chmod(&data, 0o000);
    c.wait_audits("v1", 1, 15.0);
    assert!(c.agents[0].alive());
    heartbeats_go_on(&c, "a");
    // Nothing was deleted because the agent could not look.
    assert_eq!(c.fusion.node("v1", "/x.txt").status, 200);
    chmod(&data, 0o755);
    write(&data.join("y.txt"), b"y");
    c.wait_present("v1", "/y.txt", 30.0);
    assert!(c.agents[0].alive());
}
