//! `fustor-agent start --registry` (issue 15, item 3, agent side) with real processes: the
//! agent fetches its group's document from Fusion's registry, runs its pipe, keeps it as
//! `agent-config/registry.yaml`, and starts again from that copy when the registry is down.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{AGENT_BIN, AgentCfg, Fusion, FusionOpts, free_port, write};

const ADMIN: &str = "ops-admin-key";

fn spawn_agent(home: &Path, registry: &str) -> Child {
    Command::new(AGENT_BIN)
        .arg("--home")
        .arg(home)
        .args(["start", "--no-console-log", "--registry", registry])
        .args(["--registry-key", "agent-key"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_node(f: &Fusion, path: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if f.node("v1", path).status == 200 {
            return;
        }
        if let Ok(Some(st)) = child.try_wait() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("agent exited ({st}) before {path} arrived: {err}");
        }
        assert!(Instant::now() < deadline, "{path} never reached the view");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn an_agent_runs_its_registry_document_and_restarts_from_the_last_good_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let fusion_home = tmp.path().join("fusion-home");
    std::fs::create_dir_all(fusion_home.join("fusion-config")).unwrap();
    std::fs::write(
        fusion_home.join("fusion-config/admin.yaml"),
        format!("admin_keys: [{{name: ops, key: {ADMIN}}}]\n"),
    )
    .unwrap();
    let fusion = Fusion::start(&fusion_home, FusionOpts::default());
    let data = tmp.path().join("data");
    write(&data.join("sub/a.txt"), b"a");
    let doc = AgentCfg::new("reg-agent", &data, &fusion).yaml();
    let http = reqwest::blocking::Client::new();
    let main = fusion.main_url();
    // The group's document, and the agent assigned to the group.
    let r = http
        .put(format!("{main}/api/v1/admin/agent-configs/group:lab"))
        .header("X-API-Key", ADMIN)
        .body(doc.clone())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "{}", r.text().unwrap());
    let r = http
        .put(format!("{main}/api/v1/admin/agents/reg-agent/group"))
        .header("X-API-Key", ADMIN)
        .json(&serde_json::json!({"group": "lab"}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // Query keys cannot read agent documents (they may hold credentials).
    assert_eq!(
        fusion.get("/api/v1/agent/config/reg-agent", "qk1").status,
        403
    );

    // The agent's home holds only its id: everything else comes from the registry.
    let home = tmp.path().join("agent-home");
    std::fs::create_dir_all(home.join("agent-config")).unwrap();
    std::fs::write(
        home.join("agent-config/default.yaml"),
        "agent_id: reg-agent\n",
    )
    .unwrap();
    let mut agent = spawn_agent(&home, &main);
    wait_node(&fusion, "/sub/a.txt", &mut agent);
    let copy = home.join("agent-config/registry.yaml");
    assert_eq!(std::fs::read_to_string(&copy).unwrap(), doc);
    stop(agent);

    // The registry is unreachable: the agent starts from its copy and data still flows.
    write(&data.join("sub/b.txt"), b"b");
    let dead = format!("http://127.0.0.1:{}", free_port());
    let mut agent = spawn_agent(&home, &dead);
    wait_node(&fusion, "/sub/b.txt", &mut agent);
    stop(agent);

    // Without a copy, an unreachable registry is an error, not an agent running nothing.
    let bare = tmp.path().join("bare-home");
    std::fs::create_dir_all(bare.join("agent-config")).unwrap();
    let out = Command::new(AGENT_BIN)
        .arg("--home")
        .arg(&bare)
        .args(["start", "--no-console-log", "--registry", &dead])
        .args(["--registry-key", "agent-key"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no last good copy"), "{err}");
}
