//! End to end: a real `fustor-agent` process and a real Fusion on 127.0.0.1.
//!
//! Runs only when `FUSTOR_E2E_FUSION_CMD` is set: a shell command that starts a Fusion in the
//! foreground, reading `$FUSTOR_HOME/fusion-config/` and listening on
//! `127.0.0.1:$FUSTOR_E2E_MAIN_PORT` (the receiver port is in the config). Examples:
//!
//! ```text
//! FUSTOR_E2E_FUSION_CMD='/tmp/fustor-pyfusion-venv/bin/fustor-fusion start -h 127.0.0.1 -p $FUSTOR_E2E_MAIN_PORT'
//! FUSTOR_E2E_FUSION_CMD='/path/to/fustor-fusion start -h 127.0.0.1 -p $FUSTOR_E2E_MAIN_PORT'
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const AGENT: &str = env!("CARGO_BIN_EXE_fustor-agent");

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let pid = self.0.id() as i32;
        let _ = fustor_agent::daemon::send_signal(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn tree_status(client: &reqwest::Client, main: u16, path: &str) -> (u16, serde_json::Value) {
    let url = format!("http://127.0.0.1:{main}/api/v1/views/v1/tree");
    let r = client
        .get(url)
        .query(&[("path", path), ("max_depth", "0")])
        .header("X-API-Key", "qk1")
        .send()
        .await;
    match r {
        Ok(r) => {
            let code = r.status().as_u16();
            (code, r.json().await.unwrap_or(serde_json::Value::Null))
        }
        Err(_) => (0, serde_json::Value::Null),
    }
}

async fn wait_tree(
    client: &reqwest::Client,
    main: u16,
    what: &str,
    path: &str,
    cond: impl Fn(u16, &serde_json::Value) -> bool,
    log: &Path,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, body) = tree_status(client, main, path).await;
        if cond(code, &body) {
            return;
        }
        if Instant::now() > deadline {
            let agent_log = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = agent_log.lines().rev().take(40).collect();
            panic!(
                "timed out: {what} (last {code} {body})\nagent log tail:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_syncs_a_directory_into_a_real_fusion() {
    let Ok(fusion_cmd) = std::env::var("FUSTOR_E2E_FUSION_CMD") else {
        eprintln!("skipped: set FUSTOR_E2E_FUSION_CMD to run against a real Fusion");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let fhome = tmp.path().join("fusion-home");
    let ahome = tmp.path().join("agent-home");
    let data = tmp.path().join("data");
    std::fs::create_dir_all(fhome.join("fusion-config")).unwrap();
    std::fs::create_dir_all(ahome.join("agent-config")).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("pre.txt"), b"pre").unwrap();
    let (main, recv) = (free_port(), free_port());
    std::fs::write(
        fhome.join("fusion-config/default.yaml"),
        format!(
            "session_cleanup_interval: 1\nreceivers:\n  http-main: {{driver: http, bind_host: 127.0.0.1, port: {recv}, api_keys: [{{key: agent-key, pipe_id: v1}}]}}\nviews:\n  v1: {{driver: fs, api_keys: [qk1]}}\npipes:\n  v1: {{receiver: http-main, views: [v1], session_timeout_seconds: 3, audit_interval_sec: 15, sentinel_interval_sec: 5}}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        ahome.join("agent-config/default.yaml"),
        format!(
            "agent_id: e2e-agent\nsources:\n  src: {{driver: fs, uri: {:?}}}\nsenders:\n  fusion: {{driver: fusion, uri: \"http://127.0.0.1:{recv}\", credential: {{key: agent-key}}}}\npipes:\n  v1: {{source: src, sender: fusion}}\n",
            data.display().to_string()
        ),
    )
    .unwrap();
    let fusion_out = std::fs::File::create(tmp.path().join("fusion.out")).unwrap();
    let _fusion = Proc(
        Command::new("sh")
            .arg("-c")
            .arg(format!("exec {fusion_cmd}"))
            .env("FUSTOR_HOME", &fhome)
            .env("FUSTOR_E2E_MAIN_PORT", main.to_string())
            .env("FUSTOR_E2E_RECEIVER_PORT", recv.to_string())
            .stdin(Stdio::null())
            .stdout(fusion_out.try_clone().unwrap())
            .stderr(fusion_out)
            .spawn()
            .unwrap(),
    );
    let agent = Proc(
        Command::new(AGENT)
            .args(["start", "--no-console-log"])
            .env("FUSTOR_HOME", &ahome)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let log = ahome.join("logs/agent.log");
    let client = reqwest::Client::new();
    let present = |c: u16, _: &serde_json::Value| c == 200;
    wait_tree(
        &client,
        main,
        "snapshot makes /pre.txt visible",
        "/pre.txt",
        present,
        &log,
    )
    .await;

    std::fs::write(data.join("new.txt"), b"x\n").unwrap();
    wait_tree(
        &client,
        main,
        "created file appears",
        "/new.txt",
        present,
        &log,
    )
    .await;
    std::fs::write(data.join("new.txt"), b"x\ny\nz\n").unwrap();
    wait_tree(
        &client,
        main,
        "modified size",
        "/new.txt",
        |c, b| c == 200 && b["size"] == 6,
        &log,
    )
    .await;
    std::fs::create_dir_all(data.join("d1/d2")).unwrap();
    std::fs::write(data.join("d1/d2/deep.txt"), b"deep").unwrap();
    wait_tree(
        &client,
        main,
        "nested new file appears",
        "/d1/d2/deep.txt",
        present,
        &log,
    )
    .await;
    std::fs::remove_file(data.join("new.txt")).unwrap();
    wait_tree(
        &client,
        main,
        "deleted file disappears",
        "/new.txt",
        |c, _| c == 404,
        &log,
    )
    .await;

    // Graceful stop closes the session: the view has no session afterwards.
    drop(agent);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = client
            .get(format!("http://127.0.0.1:{main}/api/v1/views/v1/sessions"))
            .header("X-API-Key", "qk1")
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = r.json().await.unwrap();
        if body["count"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "session still listed: {body}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let state = std::fs::read_to_string(ahome.join("agent-state.json")).unwrap();
    assert!(state.contains("\"v1\""), "{state}");
}
