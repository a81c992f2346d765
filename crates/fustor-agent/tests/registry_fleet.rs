//! Issue 15's fleet test, real processes: three agents (two on plain directories, one through
//! a bindfs mount) started with `--registry` against one Fusion. New configuration versions
//! reach them through heartbeat answers; a version that cannot run on one host is reported by
//! that agent, which keeps its previous pipes; remote actions are recorded with their outcomes;
//! a Fusion restart keeps inventory, versions, actions and the audit log.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::needless_range_loop)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    AGENT_BIN, BindMount, Fusion, FusionOpts, bindfs_available, encode, free_port, write,
};
use serde_json::{Value, json};

const ADMIN: &str = "fleet-admin-key";
const AGENTS: usize = 3;
/// Agent pipes of the documents: `main` (version 1), `extra` (2), `late` (3).
const PIPES: [&str; 3] = ["main", "extra", "late"];

/// Fusion: one receiver with a key per agent pipe, one view per agent pipe (`<pipe><i>`).
fn fleet_yaml(port: u16) -> String {
    let mut keys = Vec::new();
    let mut views = String::new();
    let mut pipes = String::new();
    for i in 1..=AGENTS {
        for p in PIPES {
            keys.push(format!("{{key: k-{p}{i}, pipe_id: {p}{i}}}"));
            views.push_str(&format!("  {p}{i}: {{driver: fs, api_keys: [q-{p}{i}]}}\n"));
            pipes.push_str(&format!(
                "  {p}{i}: {{receiver: http-fleet, views: [{p}{i}], session_timeout_seconds: 3, audit_interval_sec: 3, sentinel_interval_sec: 2}}\n"
            ));
        }
    }
    format!(
        "admin_keys: [{{name: ops, key: {ADMIN}}}]\nreceivers:\n  http-fleet: {{driver: http, bind_host: 127.0.0.1, port: {port}, api_keys: [{}]}}\nviews:\n{views}pipes:\n{pipes}",
        keys.join(", ")
    )
}

/// Agent `i`'s document with the first `n` pipes, each over `<root>/<pipe>`.
fn doc(i: usize, root: &Path, recv: &str, n: usize) -> String {
    let mut s = String::from("sources:\n");
    for p in &PIPES[..n] {
        s.push_str(&format!(
            "  src-{p}: {{driver: fs, uri: {:?}, driver_params: {{throttle_interval_sec: 0.5}}}}\n",
            root.join(p).display().to_string()
        ));
    }
    s.push_str("senders:\n");
    for p in &PIPES[..n] {
        s.push_str(&format!(
            "  to-{p}: {{driver: fusion, uri: {recv:?}, credential: {{key: k-{p}{i}}}}}\n"
        ));
    }
    s.push_str("pipes:\n");
    for p in &PIPES[..n] {
        s.push_str(&format!(
            "  {p}: {{source: src-{p}, sender: to-{p}, error_retry_interval: 0.5, max_backoff_seconds: 2}}\n"
        ));
    }
    s
}

struct Agent {
    child: Child,
    home: PathBuf,
}

impl Agent {
    /// `in_yaml`: the registry is named by `registry: {url, key}` in `default.yaml` instead of
    /// `--registry`.
    fn start(home: &Path, id: &str, registry: &str, key: &str, in_yaml: bool) -> Agent {
        std::fs::create_dir_all(home.join("agent-config")).unwrap();
        let mut yaml = format!("agent_id: {id}\n");
        let mut args = vec!["start", "--no-console-log"];
        if in_yaml {
            yaml.push_str(&format!("registry: {{url: {registry:?}, key: {key}}}\n"));
        } else {
            args.extend(["--registry", registry, "--registry-key", key]);
        }
        std::fs::write(home.join("agent-config/default.yaml"), yaml).unwrap();
        let child = Command::new(AGENT_BIN)
            .arg("--home")
            .arg(home)
            .args(&args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Agent {
            child,
            home: home.to_path_buf(),
        }
    }

    fn log(&self) -> String {
        let dir = self.home.join("logs");
        let mut out = String::new();
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            for line in text.lines().filter(|l| !l.contains("audit pass done")) {
                out.push_str(line);
                out.push('\n');
            }
        }
        let n = out.len();
        out[n.saturating_sub(4000)..].to_string()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait<T>(what: &str, agents: &[Agent], mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = agents.iter().map(Agent::log).collect();
            panic!(
                "timed out waiting for {what}; agent logs:\n{}",
                logs.join("\n-----\n")
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn has_file(f: &Fusion, view: &str, path: &str) -> bool {
    f.get(
        &format!(
            "/api/v1/views/{view}/tree?path={}&max_depth=0",
            encode(path)
        ),
        &format!("q-{view}"),
    )
    .status
        == 200
}

fn admin_get(f: &Fusion, path: &str) -> Value {
    let r = f.get(path, ADMIN);
    assert_eq!(r.status, 200, "{path}: {:?}", r.body);
    r.body
}

fn agent_view(f: &Fusion, id: &str) -> Value {
    admin_get(f, &format!("/api/v1/admin/agents/{id}"))
}

fn put_doc(f: &Fusion, id: &str, yaml: &str) -> i64 {
    let http = reqwest::blocking::Client::new();
    let url = format!("{}/api/v1/admin/agent-configs/{id}", f.main_url());
    let current = http.get(&url).header("X-API-Key", ADMIN).send().unwrap();
    let etag = current
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_string());
    let mut req = http
        .put(&url)
        .header("X-API-Key", ADMIN)
        .body(yaml.to_string());
    if let Some(e) = etag {
        req = req.header("If-Match", e);
    }
    let r = req.send().unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().unwrap();
    assert!(status == 200 || status == 201, "{status}: {body}");
    body["version"].as_i64().unwrap()
}

fn post_action(f: &Fusion, id: &str, body: Value, key: &str) -> (u16, Value) {
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/admin/agents/{id}/actions", f.main_url()))
        .header("X-API-Key", key)
        .json(&body)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

fn action(f: &Fusion, agent: &str, id: i64) -> Value {
    let list = admin_get(f, &format!("/api/v1/admin/actions?agent={agent}&limit=50"));
    list["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

#[test]
fn a_fleet_follows_its_registry_versions_and_actions() {
    if !bindfs_available() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "bindfs is required in CI"
        );
        println!("SKIPPED: bindfs unavailable; install bindfs and fuse3");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let fusion_home = tmp.path().join("fusion-home");
    std::fs::create_dir_all(fusion_home.join("fusion-config")).unwrap();
    let fleet_port = free_port();
    std::fs::write(
        fusion_home.join("fusion-config/fleet.yaml"),
        fleet_yaml(fleet_port),
    )
    .unwrap();
    let mut fusion = Fusion::start(&fusion_home, FusionOpts::default());
    let main = fusion.main_url();
    let recv = format!("http://127.0.0.1:{fleet_port}");

    // Hosts 1 and 2 see plain directories, host 3 its tree through a bindfs mount. Only hosts
    // 1 and 2 have the `late` directory.
    let backing = tmp.path().join("backing3");
    let mut roots = vec![tmp.path().join("d1"), tmp.path().join("d2")];
    for i in 0..AGENTS {
        let root = if i < 2 {
            roots[i].clone()
        } else {
            backing.clone()
        };
        write(&root.join("main/a.txt"), b"a");
        write(&root.join("extra/e.txt"), b"e");
        if i < 2 {
            write(&root.join("late/l.txt"), b"l");
        }
    }
    let _mount = BindMount::mount(&backing, &tmp.path().join("mnt3")).expect("bindfs mount");
    roots.push(tmp.path().join("mnt3"));
    let ids: Vec<String> = (1..=AGENTS).map(|i| format!("fleet-{i}")).collect();

    // Version 1 everywhere: one pipe.
    for i in 0..AGENTS {
        assert_eq!(
            put_doc(&fusion, &ids[i], &doc(i + 1, &roots[i], &recv, 1)),
            1
        );
    }
    let agents: Vec<Agent> = (0..AGENTS)
        .map(|i| {
            Agent::start(
                &tmp.path().join(format!("home{}", i + 1)),
                &ids[i],
                &main,
                &format!("k-main{}", i + 1),
                i == 1,
            )
        })
        .collect();
    for i in 1..=AGENTS {
        wait("version 1 data", &agents, || {
            has_file(&fusion, &format!("main{i}"), "/a.txt").then_some(())
        });
    }
    for id in &ids {
        wait("version 1 reported", &agents, || {
            (agent_view(&fusion, id)["config_version"] == 1).then_some(())
        });
    }

    // Version 2 adds a pipe: pushed through heartbeats, applied by hot reload, data flows.
    for i in 0..AGENTS {
        assert_eq!(
            put_doc(&fusion, &ids[i], &doc(i + 1, &roots[i], &recv, 2)),
            2
        );
    }
    for (i, id) in ids.iter().enumerate() {
        wait("version 2 reported", &agents, || {
            let a = agent_view(&fusion, id);
            (a["config_version"] == 2 && a["config_error"].is_null()).then_some(())
        });
        wait("the new pipe's files", &agents, || {
            has_file(&fusion, &format!("extra{}", i + 1), "/e.txt").then_some(())
        });
    }

    // Version 3 adds a pipe over a directory host 3 lacks: it reports why and keeps running
    // version 2; the others run version 3.
    for i in 0..AGENTS {
        assert_eq!(
            put_doc(&fusion, &ids[i], &doc(i + 1, &roots[i], &recv, 3)),
            3
        );
    }
    for (i, id) in ids.iter().enumerate().take(2) {
        wait("version 3 reported", &agents, || {
            (agent_view(&fusion, id)["config_version"] == 3).then_some(())
        });
        wait("the late pipe's files", &agents, || {
            has_file(&fusion, &format!("late{}", i + 1), "/l.txt").then_some(())
        });
    }
    let failed = wait("host 3's error", &agents, || {
        let a = agent_view(&fusion, &ids[2]);
        a["config_error"].is_string().then_some(a)
    });
    assert_eq!(failed["config_version"], 2, "{failed}");
    let err = failed["config_error"].as_str().unwrap();
    assert!(err.contains("late") && err.contains("version 3"), "{err}");
    write(&roots[2].join("extra/after.txt"), b"x");
    wait("host 3 still running version 2", &agents, || {
        has_file(&fusion, "extra3", "/after.txt").then_some(())
    });
    assert!(!has_file(&fusion, "late3", "/l.txt"));
    let list = admin_get(&fusion, "/api/v1/admin/agents");
    let fleet: Vec<&Value> = list["agents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["agent_id"].as_str().unwrap().starts_with("fleet-"))
        .collect();
    assert_eq!(fleet.len(), AGENTS);

    // Remote actions: typed, checked, recorded with their outcome.
    let (s, _) = post_action(&fusion, "nobody", json!({"action": "reload"}), ADMIN);
    assert_eq!(s, 404);
    let (s, _) = post_action(&fusion, &ids[0], json!({"action": "dance"}), ADMIN);
    assert_eq!(s, 422);
    let (s, _) = post_action(
        &fusion,
        &ids[0],
        json!({"action": "stop_pipe", "pipe": "nope"}),
        ADMIN,
    );
    assert_eq!(s, 422);
    let (s, _) = post_action(&fusion, &ids[0], json!({"action": "rescan"}), ADMIN);
    assert_eq!(s, 422, "rescan needs a path");
    for key in ["q-main1", "k-main1"] {
        let (s, _) = post_action(&fusion, &ids[0], json!({"action": "reload"}), key);
        assert_eq!(s, 403, "{key}");
    }
    let (s, rescan) = post_action(
        &fusion,
        &ids[0],
        json!({"action": "rescan", "pipe": "main", "path": "/"}),
        ADMIN,
    );
    assert_eq!(s, 202, "{rescan}");
    assert_eq!(rescan["outcome"], "pending");
    assert_eq!(rescan["requested_by"], "ops");
    let (s, stop) = post_action(
        &fusion,
        &ids[1],
        json!({"action": "stop_pipe", "pipe": "extra"}),
        ADMIN,
    );
    assert_eq!(s, 202, "{stop}");
    let rescan_id = rescan["id"].as_i64().unwrap();
    let stop_id = stop["id"].as_i64().unwrap();
    let done = wait("the rescan's outcome", &agents, || {
        let a = action(&fusion, &ids[0], rescan_id);
        (a["outcome"] == "ok").then_some(a)
    });
    assert!(
        done["delivered_at"].is_number() && done["finished_at"].is_number(),
        "{done}"
    );
    assert!(
        done["message"].as_str().unwrap().starts_with("re-scanned"),
        "{done}"
    );
    wait("the stop's outcome", &agents, || {
        (action(&fusion, &ids[1], stop_id)["outcome"] == "ok").then_some(())
    });
    wait("pipe extra of host 2 stopped", &agents, || {
        let a = agent_view(&fusion, &ids[1]);
        let pipes = a["connected_pipes"].as_array().cloned().unwrap_or_default();
        (!pipes.contains(&json!("extra")) && pipes.contains(&json!("main"))).then_some(())
    });

    // The stopped pipe starts again on request; a reload with nothing changed says so.
    let (_, start) = post_action(
        &fusion,
        &ids[1],
        json!({"action": "start_pipe", "pipe": "extra"}),
        ADMIN,
    );
    let (_, reload) = post_action(&fusion, &ids[0], json!({"action": "reload"}), ADMIN);
    let start_id = start["id"].as_i64().unwrap();
    wait("the start's outcome", &agents, || {
        (action(&fusion, &ids[1], start_id)["outcome"] == "ok").then_some(())
    });
    wait("pipe extra of host 2 running again", &agents, || {
        let a = agent_view(&fusion, &ids[1]);
        let pipes = a["connected_pipes"].as_array().cloned().unwrap_or_default();
        pipes.contains(&json!("extra")).then_some(())
    });
    let reloaded = wait("the reload's outcome", &agents, || {
        let a = action(&fusion, &ids[0], reload["id"].as_i64().unwrap());
        (a["outcome"] == "ok").then_some(a)
    });
    assert_eq!(reloaded["message"], "configuration unchanged", "{reloaded}");

    // A restart of Fusion keeps inventory, versions, actions and the audit log.
    fusion.restart();
    let a = agent_view(&fusion, &ids[2]);
    assert_eq!(a["config_version"], 2, "{a}");
    assert!(a["config_error"].is_string(), "{a}");
    let doc3 = admin_get(&fusion, &format!("/api/v1/admin/agent-configs/{}", ids[0]));
    assert_eq!(doc3["version"], 3);
    assert_eq!(action(&fusion, &ids[0], rescan_id)["outcome"], "ok");
    assert_eq!(action(&fusion, &ids[1], stop_id)["outcome"], "ok");
    let audit = admin_get(&fusion, "/api/v1/admin/audit?limit=200");
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"agent.action.rescan"), "{actions:?}");
    assert!(actions.contains(&"agent.action.stop_pipe"), "{actions:?}");
    // Host 3 restarted while the registry is unreachable: it runs its last good copy
    // (version 2, with the data of the pipes of version 2) and says which version that is.
    let mut agents = agents;
    let dead = format!("http://127.0.0.1:{}", free_port());
    let home3 = agents[2].home.clone();
    agents.pop();
    agents.push(Agent::start(&home3, &ids[2], &dead, "k-main3", false));
    write(&roots[2].join("extra/restarted.txt"), b"r");
    wait("host 3 back from its copy", &agents, || {
        has_file(&fusion, "extra3", "/restarted.txt").then_some(())
    });
    wait("host 3 reports the copy's version", &agents, || {
        let a = agent_view(&fusion, &ids[2]);
        let fresh = a["last_seen"].as_f64().unwrap_or(0.0) > common::now() - 2.0;
        (fresh && a["config_version"] == 2).then_some(())
    });
    // And the agents come back to it on their own.
    wait("agents back after the restart", &agents, || {
        let a = agent_view(&fusion, &ids[0]);
        (a["connected"] == true).then_some(())
    });
}

/// `registry: {url, key}` is checked by `validate` like the rest of the configuration.
#[test]
fn validate_checks_the_registry_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |yaml: &str| {
        std::fs::create_dir_all(tmp.path().join("agent-config")).unwrap();
        std::fs::write(tmp.path().join("agent-config/default.yaml"), yaml).unwrap();
        let out = Command::new(AGENT_BIN)
            .arg("--home")
            .arg(tmp.path())
            .arg("validate")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = run("agent_id: a\nregistry: {url: \"http://127.0.0.1:8102\", key: k1}\n");
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = run("agent_id: a\nregistry: {url: \"ftp://x\", key: \"\"}\n");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("registry.url") && out.contains("registry.key"),
        "{out}"
    );
    let (code, out) = run("agent_id: a\nregistry: {url: \"http://x:1\", key: k, keyy: 2}\n");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("keyy"), "{out}");
}
