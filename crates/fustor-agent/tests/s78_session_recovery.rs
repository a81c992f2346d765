//! S78 (session terminated by Fusion) and S79 (heartbeat outage: the agent's network is cut
//! for longer than the session timeout, through a TCP relay, then restored).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Cluster, FusionOpts, Proxy, write};

fn leaders(c: &Cluster) -> usize {
    c.fusion
        .sessions("v1")
        .iter()
        .filter(|s| s["role"] == "leader")
        .count()
}

#[test]
fn s78_session_deleted_by_fusion_agent_opens_a_new_one() {
    let mut c = Cluster::new(FusionOpts::default());
    let data = c.dir("data");
    let cfg = c.agent_cfg("a", &data);
    c.start_agent(&cfg);
    c.wait_ready("v1", 30.0);
    let old = c.fusion.session_of("v1", "a").unwrap()["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = c.fusion.request(
        reqwest::Method::DELETE,
        &format!("/api/v1/pipe/session/{old}"),
        // Issue 9: only the pipe's agent key may close its sessions (a query key gets 403).
        "agent-key",
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    // Heartbeat interval = 3 s / 3: a new session within about one interval.
    let s = c.wait("a new session id", 4.0, || {
        c.fusion
            .session_of("v1", "a")
            .filter(|s| s["session_id"] != old.as_str())
    });
    assert!(s["role"] == "leader" || s["role"] == "follower", "{s}");
    c.wait("exactly one leader", 5.0, || {
        (leaders(&c) == 1).then_some(())
    });
    assert_eq!(c.fusion.sessions("v1").len(), 1);
    c.wait_ready("v1", 10.0);
    write(&data.join("after.txt"), b"x");
    c.wait_present("v1", "/after.txt", 5.0);
}

#[test]
fn s79_network_cut_longer_than_the_timeout_then_restored() {
    let mut c = Cluster::new(FusionOpts::default());
    let data = c.dir("data");
    let proxy = Proxy::start(c.fusion.recv_port);
    let mut cfg = c.agent_cfg("a", &data);
    cfg.recv_url = proxy.url();
    c.start_agent(&cfg);
    c.wait_ready("v1", 30.0);
    let old = c.fusion.session_of("v1", "a").unwrap()["session_id"].clone();
    proxy.block();
    // No heartbeats reach Fusion: the session expires (timeout 3 s, sweep 0.5 s).
    c.wait("old session expired", 8.0, || {
        c.fusion.sessions("v1").is_empty().then_some(())
    });
    write(&data.join("while-cut.txt"), b"x");
    std::thread::sleep(Duration::from_millis(500));
    assert!(c.agents[0].alive());
    proxy.unblock();
    let s = c.wait("a new session after the network is back", 10.0, || {
        c.fusion
            .session_of("v1", "a")
            .filter(|s| s["session_id"] != old)
    });
    assert_eq!(s["role"], "leader", "{s}");
    c.wait_ready("v1", 10.0);
    c.wait_present("v1", "/while-cut.txt", 10.0);
    assert!(c.agents[0].alive());
    drop(proxy);
}
