//! The `fustor-agent` binary on a temp `$FUSTOR_HOME` with an `echo` sender (no Fusion):
//! validate, start -D, status, reload (unchanged, add, remove), stop (S88, S89, S85–S87 shape).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_fustor-agent");

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("agent-config")).unwrap();
        std::fs::create_dir_all(dir.path().join("data/d")).unwrap();
        std::fs::create_dir_all(dir.path().join("extra")).unwrap();
        std::fs::write(dir.path().join("data/d/f.txt"), b"x").unwrap();
        Home { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn config(&self, name: &str) -> PathBuf {
        self.path().join("agent-config").join(name)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .env("FUSTOR_HOME", self.path())
            .output()
            .unwrap()
    }

    fn stdout(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.run(args).stdout).into_owned()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path().join("logs/agent.log")).unwrap_or_default()
    }

    fn wait_log(&self, what: &str, cond: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.log();
            if cond(&log) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        // Never leave a daemon behind, whatever failed.
        let _ = self.run(&["stop"]);
    }
}

fn default_yaml(home: &Path) -> String {
    format!(
        "agent_id: cli-test\nsources:\n  src: {{driver: fs, uri: {:?}}}\nsenders:\n  echo: {{driver: echo, uri: \"http://127.0.0.1:9\"}}\npipes:\n  p1: {{source: src, sender: echo}}\n",
        home.join("data").display().to_string()
    )
}

fn extra_yaml(home: &Path) -> String {
    format!(
        "sources:\n  src2: {{driver: fs, uri: {:?}}}\npipes:\n  p2: {{source: src2, sender: echo}}\n",
        home.join("extra").display().to_string()
    )
}

#[test]
fn s88_validate_reports_redundant_pipes() {
    let h = Home::new();
    std::fs::write(h.config("default.yaml"), default_yaml(h.path())).unwrap();
    let ok = h.run(&["validate"]);
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stdout).contains("Configuration is valid."));
    std::fs::write(
        h.config("dup.yaml"),
        "pipes:\n  p9: {source: src, sender: echo}\n",
    )
    .unwrap();
    let bad = h.run(&["check-config"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stdout).contains("Redundant configuration"),
        "{}",
        String::from_utf8_lossy(&bad.stdout)
    );
    // start refuses an invalid configuration too.
    let st = h.run(&["start"]);
    assert_eq!(st.status.code(), Some(1));
}

#[test]
fn s89_s85_s86_s87_daemon_lifecycle_with_hot_reload_echo_sender() {
    let h = Home::new();
    std::fs::write(h.config("default.yaml"), default_yaml(h.path())).unwrap();
    assert!(h.stdout(&["status"]).contains("Agent: STOPPED"));
    assert!(h.stdout(&["reload"]).contains("Agent is not running."));

    let out = h.stdout(&["start", "-D"]);
    assert!(out.contains("started with PID:"), "{out}");
    let pid_file = h.path().join("agent.pid");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pid_file.exists() {
        assert!(Instant::now() < deadline, "no pid file; log:\n{}", h.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .to_string();
    assert!(
        h.stdout(&["status"])
            .contains(&format!("RUNNING (PID {pid})"))
    );
    assert!(h.stdout(&["start", "-D"]).contains("already running"));
    let st = h.stdout(&["status", "p1"]);
    assert!(st.contains("Source: src") && st.contains("ENABLED"), "{st}");

    // The echo sender logs the snapshot batches of p1.
    h.wait_log("p1 snapshot", |l| l.contains("source_type=snapshot"));

    // `status` shows the running daemon's own report: pipes, roles, sessions, events/s.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let st = h.stdout(&["status"]);
        if st.contains("pipe p1:") && st.contains("role=leader") && st.contains("/s)") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no live pipe line in status:\n{st}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Unchanged configuration: nothing happens.
    assert!(h.stdout(&["reload"]).contains("Reload signal sent"));
    h.wait_log("unchanged reload", |l| {
        l.contains("configuration unchanged")
    });

    // Hot add from another file.
    std::fs::write(h.config("extra.yaml"), extra_yaml(h.path())).unwrap();
    h.run(&["reload"]);
    h.wait_log("p2 started", |l| l.contains("pipe started pipe=p2"));

    // Hot remove: p2 stops, p1 keeps its session.
    std::fs::write(h.config("extra.yaml"), "pipes: {}\n").unwrap();
    h.run(&["reload"]);
    h.wait_log("p2 stopped", |l| l.contains("pipe stopped pipe=p2"));
    assert!(!h.log().contains("pipe stopped pipe=p1"));

    let out = h.stdout(&["stop"]);
    assert!(out.contains("Agent stopped."), "{out}");
    assert!(!pid_file.exists());
    assert!(h.stdout(&["status"]).contains("Agent: STOPPED"));
    assert!(h.stdout(&["reload"]).contains("Agent is not running."));
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(h.path().join("agent-state.json")).unwrap())
            .unwrap();
    assert_eq!(state["pipes"]["p1"]["state"], "PipeState.STOPPED");
    let log = h.log();
    assert!(
        log.contains("echo: session closed"),
        "DELETE on stop:\n{log}"
    );
}

#[test]
fn help_explains_the_commands() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for w in [
        "start",
        "stop",
        "reload",
        "status",
        "list",
        "validate",
        "FUSTOR_HOME",
    ] {
        assert!(text.contains(w), "--help lacks {w}:\n{text}");
    }
}
