//! S89: the CLI lifecycle of a detached agent against a real Fusion: `start -D`, pid file,
//! `status`, the log file, syncing, `stop` (session DELETE, pid file removed), `status`,
//! `reload` when stopped. (S88 `validate` is in cli.rs.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{AGENT_BIN, AgentCfg, Cluster, FusionOpts, write};

/// Stops the detached daemon whatever happens in the test.
struct Daemon(PathBuf);

impl Daemon {
    fn cli(&self, args: &[&str]) -> (Option<i32>, String) {
        let out = Command::new(AGENT_BIN)
            .arg("--home")
            .arg(&self.0)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.cli(&["stop"]);
    }
}

fn wait_file(p: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !p.exists() {
        assert!(Instant::now() < deadline, "{} not created", p.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn s89_cli_lifecycle_with_a_real_fusion() {
    let c = Cluster::new(FusionOpts::default());
    let data = c.dir("data");
    let home = c.dir("agent-home");
    std::fs::create_dir_all(home.join("agent-config")).unwrap();
    std::fs::write(
        home.join("agent-config/default.yaml"),
        AgentCfg::new("cli", &data, &c.fusion).yaml(),
    )
    .unwrap();
    let d = Daemon(home.clone());
    let (_, out) = d.cli(&["status"]);
    assert!(out.contains("STOPPED"), "{out}");

    let (code, out) = d.cli(&["start", "-D"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("started with PID:"), "{out}");
    let pid_file = home.join("agent.pid");
    wait_file(&pid_file);
    let pid = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .to_string();
    let (_, out) = d.cli(&["status"]);
    assert!(out.contains(&format!("RUNNING (PID {pid})")), "{out}");
    let (_, out) = d.cli(&["start", "-D"]);
    assert!(out.contains("already running"), "{out}");

    c.wait_ready("v1", 30.0);
    let s = c.fusion.session_of("v1", "cli").unwrap();
    assert_eq!(s["role"], "leader");
    write(&data.join("hello.txt"), b"hi");
    c.wait_present("v1", "/hello.txt", 5.0);
    let log = std::fs::read_to_string(home.join("logs/agent.log")).unwrap();
    assert!(log.contains("session created"), "{log}");

    let (_, out) = d.cli(&["stop"]);
    assert!(out.contains("Agent stopped."), "{out}");
    assert!(!pid_file.exists(), "pid file removed");
    assert!(
        !fustor_core::process::alive(pid.parse().unwrap()),
        "process exited"
    );
    c.wait("session DELETEd at stop", 5.0, || {
        c.fusion.sessions("v1").is_empty().then_some(())
    });
    let (_, out) = d.cli(&["status"]);
    assert!(out.contains("STOPPED"), "{out}");
    let (_, out) = d.cli(&["reload"]);
    assert!(out.contains("Agent is not running."), "{out}");
}
