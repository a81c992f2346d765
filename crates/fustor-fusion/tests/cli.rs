//! S89 for fusion (configuration.md §5): `start -D`, `status`, `reload`, `stop` on a temp home,
//! driving the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod cli_support;

use cli_support::{alive, free_port, pid_of, run};

struct Guard(PathBuf, Option<i32>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(pid) = self.1.or_else(|| pid_of(&self.0))
            && alive(pid)
        {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

async fn wait_for(secs: f64, mut f: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    loop {
        if f().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s89_cli_lifecycle_fusion() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().to_path_buf();
    let (main_port, recv_port) = (free_port(), free_port());
    std::fs::create_dir_all(home.join("fusion-config")).unwrap();
    std::fs::write(
        home.join("fusion-config/default.yaml"),
        format!(
            r#"
host: 127.0.0.1
port: {main_port}
session_cleanup_interval: 1
receivers:
  http-main: {{driver: http, bind_host: 127.0.0.1, port: {recv_port}, api_keys: [{{key: agent-key, pipe_id: v1}}]}}
views:
  v1: {{driver: fs, api_keys: [qk1]}}
pipes:
  v1: {{receiver: http-main, views: [v1], session_timeout_seconds: 30}}
"#
        ),
    )
    .unwrap();
    let mut guard = Guard(home.clone(), None);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let main = format!("http://127.0.0.1:{main_port}");
    let recv = format!("http://127.0.0.1:{recv_port}");

    let (_, text) = run(&home, &["status"]);
    assert!(text.contains("STOPPED"), "{text}");

    let (out, text) = run(&home, &["start", "-D"]);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("started with PID"), "{text}");
    let pid = pid_of(&home).expect("pid file written by the daemon");
    guard.1 = Some(pid);
    assert!(alive(pid));
    assert!(home.join("logs/fusion.log").exists(), "no log file");

    let up = wait_for(10.0, async || {
        http.get(format!("{main}/")).send().await.is_ok()
    })
    .await;
    assert!(up, "main API never answered");
    let r: Value = http
        .get(format!("{main}/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["message"], "Welcome to Fusion Storage Engine Ingest API");

    let (out, text) = run(&home, &["status"]);
    assert!(out.status.success());
    assert!(text.contains(&format!("RUNNING (PID {pid})")), "{text}");

    let (_, text) = run(&home, &["start", "-D"]);
    assert!(
        text.contains(&format!("already running with PID: {pid}")),
        "{text}"
    );
    assert_eq!(pid_of(&home), Some(pid));

    // A session, then `reload` (SIGHUP): the session ends (419), the process stays.
    let r = http
        .post(format!("{recv}/api/v1/pipe/session/"))
        .header("X-API-Key", "agent-key")
        .json(&json!({"task_id": "a:v1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let sid = r.json::<Value>().await.unwrap()["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (out, text) = run(&home, &["reload"]);
    assert!(out.status.success(), "{text}");
    let ended = wait_for(5.0, async || {
        http.post(format!("{recv}/api/v1/pipe/session/{sid}/heartbeat"))
            .header("X-API-Key", "agent-key")
            .json(&json!({}))
            .send()
            .await
            .is_ok_and(|r| r.status().as_u16() == 419)
    })
    .await;
    assert!(ended, "reload did not end the session");
    assert!(alive(pid), "reload killed the daemon");
    assert_eq!(pid_of(&home), Some(pid));
    assert!(http.get(format!("{main}/")).send().await.is_ok());

    let (out, text) = run(&home, &["stop"]);
    assert!(out.status.success(), "{text}");
    let gone = wait_for(5.0, async || !alive(pid)).await;
    assert!(gone, "process still alive after stop");
    assert!(!home.join("fusion.pid").exists(), "pid file left behind");
    assert!(http.get(format!("{main}/")).send().await.is_err());
    let (_, text) = run(&home, &["status"]);
    assert!(text.contains("STOPPED"), "{text}");
    let (_, text) = run(&home, &["reload"]);
    assert!(text.contains("Fusion is not running."), "{text}");
    let (_, text) = run(&home, &["stop"]);
    assert!(text.contains("Fusion is not running."), "{text}");
    let log = std::fs::read_to_string(home.join("logs/fusion.log")).unwrap();
    assert!(!log.is_empty(), "empty log");
}

/// Issue 13: `-h` is help and `-V` the version (with the git revision) everywhere; the
/// reference's `start -h HOST` still binds HOST, with a note.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h_is_help_capital_v_is_version_and_h_with_a_value_is_the_host() {
    let home = tempfile::tempdir().unwrap();
    for args in [&["start", "-h"][..], &["-h"], &["status", "-h"]] {
        let (out, text) = run(home.path(), args);
        assert!(out.status.success(), "{args:?}: {text}");
        assert!(text.contains("Usage:"), "{args:?}: {text}");
    }
    let (out, text) = run(home.path(), &["start", "-h"]);
    assert!(out.status.success() && text.contains("--verbose"), "{text}");
    for args in [&["-V"][..], &["start", "-V"]] {
        let (out, text) = run(home.path(), args);
        assert!(out.status.success(), "{args:?}: {text}");
        assert!(text.contains("(git "), "{args:?}: {text}");
    }
    // `start -h 127.0.0.1 -p PORT` serves on that address, as with the reference.
    let port = free_port();
    std::fs::create_dir_all(home.path().join("fusion-config")).unwrap();
    let mut child = std::process::Command::new(cli_support::BIN)
        .arg("--home")
        .arg(home.path())
        .args([
            "start",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "--allow-empty",
        ])
        .env_remove("FUSTOR_HOME")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let up = wait_for(10.0, async || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
    .await;
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(up, "not listening on 127.0.0.1:{port}: {err}");
    assert!(err.contains("read as `start --host HOST`"), "{err}");
}
