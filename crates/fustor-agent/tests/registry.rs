//! The registry's agent inventory (issue 15) with real agent processes: two agents register
//! with one Fusion and report their health in heartbeats; one stops and is kept with its last
//! seen time; only admin keys read the inventory; a Fusion restart keeps inventory and audit
//! log (the SQLite file under the Fusion home).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Cluster, Fusion, FusionOpts, Resp, write};
use serde_json::Value;

const ADMIN: &str = "ops-admin-key";

fn agents(c: &Cluster) -> Resp {
    c.fusion.get("/api/v1/admin/agents", ADMIN)
}

fn agent(c: &Cluster, id: &str) -> Option<Value> {
    agents(c).body["agents"]
        .as_array()?
        .iter()
        .find(|a| a["agent_id"] == id)
        .cloned()
}

/// The agent's only pipe once it reports a finished snapshot and its watches.
fn healthy(c: &Cluster, id: &str, pipe: &str) -> Option<Value> {
    let a = agent(c, id)?;
    let h = &a["pipes"][pipe]["health"];
    (a["connected"] == true
        && h["role"] == "leader"
        && h["initial_snapshot_done"] == true
        && h["watches_used"].as_u64().is_some_and(|n| n >= 2))
    .then_some(a)
}

#[test]
fn two_agents_register_one_stops_and_fusion_restart_keeps_inventory_and_audit() {
    let tmp = tempfile::tempdir().unwrap();
    let fusion_home = tmp.path().join("fusion-home");
    std::fs::create_dir_all(fusion_home.join("fusion-config")).unwrap();
    std::fs::write(
        fusion_home.join("fusion-config/admin.yaml"),
        format!("admin_keys: [{{name: ops, key: {ADMIN}}}]\n"),
    )
    .unwrap();
    let fusion = Fusion::start(&fusion_home, FusionOpts::default());
    let mut c = Cluster {
        agents: Vec::new(),
        mounts: Vec::new(),
        fusion,
        tmp,
    };
    let dir_a = c.dir("data-a");
    let dir_b = c.dir("data-b");
    write(&dir_a.join("sub/a.txt"), b"a");
    write(&dir_b.join("sub/b.txt"), b"b");
    let a = c.agent_cfg("agent-a", &dir_a);
    let mut b = c.agent_cfg("agent-b", &dir_b);
    b.key = "agent-key-2".into();
    b.pipe = "v2".into();
    c.start_agent(&a);
    c.start_agent(&b);

    let got_a = c.wait("agent-a healthy in the inventory", 30.0, || {
        healthy(&c, "agent-a", "v1")
    });
    let got_b = c.wait("agent-b healthy in the inventory", 30.0, || {
        healthy(&c, "agent-b", "v2")
    });
    for (got, dir, fusion_pipe) in [(&got_a, &dir_a, "v1"), (&got_b, &dir_b, "v2")] {
        let id = got["agent_id"].as_str().unwrap();
        let pipe = got["pipes"].as_object().unwrap().values().next().unwrap();
        assert_eq!(got["version"], env!("CARGO_PKG_VERSION"), "{got}");
        assert!(got["host"].as_str().is_some_and(|h| !h.is_empty()), "{got}");
        assert_eq!(got["client_ip"], "127.0.0.1");
        assert_eq!(pipe["fusion_pipe"], fusion_pipe, "{id}");
        assert_eq!(pipe["source_type"], "fs");
        assert_eq!(pipe["source_uri"], dir.display().to_string());
        let h = &pipe["health"];
        assert!(
            h["state"].as_str().is_some_and(|s| s.contains("RUNNING")),
            "{h}"
        );
        assert_eq!(h["last_error"], Value::Null, "{h}");
        assert!(h["watch_limit"].as_u64().is_some_and(|l| l > 0), "{h}");
        assert!(
            h["last_heartbeat"].is_f64() && h["events_per_sec"].is_f64(),
            "{h}"
        );
    }

    // Admin key required: query and agent keys 403, none 401.
    for key in ["qk1", "agent-key", "agent-key-2"] {
        assert_eq!(
            c.fusion.get("/api/v1/admin/agents", key).status,
            403,
            "{key}"
        );
    }
    let none = c
        .fusion
        .http
        .get(format!("{}/api/v1/admin/agents", c.fusion.main_url()))
        .send()
        .unwrap();
    assert_eq!(none.status().as_u16(), 401);

    // agent-b stops: kept, disconnected, its last seen time no longer moves.
    c.agents[1].stop();
    let stopped = c.wait("agent-b disconnected", 10.0, || {
        agent(&c, "agent-b").filter(|a| a["connected"] == false)
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    let still = agent(&c, "agent-b").expect("a stopped agent stays in the inventory");
    assert_eq!(still["last_seen"], stopped["last_seen"]);
    assert_eq!(still["connected_pipes"], serde_json::json!([]));
    assert!(agent(&c, "agent-a").is_some_and(|a| a["connected"] == true));

    // An admin action for the log.
    let r = c
        .fusion
        .request(reqwest::Method::DELETE, "/api/v1/admin/agents/ghost", ADMIN);
    assert_eq!(r.status, 404);

    c.fusion.restart();
    let after = agent(&c, "agent-b").expect("inventory survives a Fusion restart");
    assert_eq!(after["last_seen"], stopped["last_seen"]);
    assert_eq!(after["connected"], false);
    assert_eq!(
        after["pipes"]["v2"]["health"]["watches_used"],
        stopped["pipes"]["v2"]["health"]["watches_used"]
    );
    let log = c.fusion.get("/api/v1/admin/audit", ADMIN);
    assert_eq!(log.status, 200);
    let entries = log.body["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["who"], "ops");
    assert_eq!(entries[0]["target"], "agent/ghost");
    assert_eq!(entries[0]["result"], "not_found");
    // agent-a reconnects to the restarted Fusion and is connected again.
    c.wait("agent-a back", 20.0, || {
        agent(&c, "agent-a").filter(|a| a["connected"] == true)
    });
    assert!(
        fusion_home.join("fusion-data/registry.sqlite").is_file(),
        "the registry file lives under the Fusion home"
    );
}
