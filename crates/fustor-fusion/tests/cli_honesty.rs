//! Issue 9, Fusion's command line with real processes: `start -D` reports a child that died,
//! a failed second start leaves the running instance alone, a pid file naming another program
//! is never signalled, `reload`/`status` exit codes mean something, `status` survives a closed
//! stdout, no start without a usable pipe unless asked, and `check-config` refuses what
//! `start` would (out-of-range numbers, `limits`) and unknown keys.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod cli_support;

use cli_support::{BIN, alive, free_port, pid_of, run};

/// Kills the daemon this test started (by its pid) whatever happens.
struct Home {
    _tmp: tempfile::TempDir,
    path: PathBuf,
    pids: Vec<i32>,
}

impl Home {
    fn new(config: &str) -> Home {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().to_path_buf();
        std::fs::create_dir_all(path.join("fusion-config")).unwrap();
        std::fs::write(path.join("fusion-config/default.yaml"), config).unwrap();
        Home {
            _tmp: tmp,
            path,
            pids: Vec::new(),
        }
    }

    fn run(&self, args: &[&str]) -> (Output, String) {
        run(&self.path, args)
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path.join("fusion-config").join(name), text).unwrap();
    }

    fn start_daemon(&mut self) -> i32 {
        let (out, text) = self.run(&["start", "-D"]);
        assert!(out.status.success(), "{text}");
        let pid = pid_of(&self.path).expect("pid file once started");
        self.pids.push(pid);
        assert!(text.contains(&format!("started with PID: {pid}")), "{text}");
        pid
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        for pid in self.pids.iter().copied().chain(pid_of(&self.path)) {
            if alive(pid) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

fn config(main: u16, recv: u16) -> String {
    format!(
        "host: 127.0.0.1
port: {main}
receivers:
  r: {{bind_host: 127.0.0.1, port: {recv}, api_keys: [{{key: k, pipe_id: v1}}]}}
views:
  v1: {{driver: fs, api_keys: [q]}}
pipes:
  v1: {{receiver: r, views: [v1]}}
"
    )
}

#[test]
fn start_d_reports_the_childs_error_when_the_port_is_taken() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let home = Home::new(&config(port, free_port()));
    let t = Instant::now();
    let (out, text) = home.run(&["start", "-D"]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("failed to start"), "{text}");
    assert!(text.contains("cannot listen"), "the child's error: {text}");
    assert!(!text.contains("started with PID"), "{text}");
    assert!(t.elapsed() < Duration::from_secs(30));
    assert_eq!(pid_of(&home.path), None);
}

#[test]
fn a_failed_second_start_keeps_the_running_instances_pid_file() {
    let mut home = Home::new(&config(free_port(), free_port()));
    let pid = home.start_daemon();
    let (out, text) = home.run(&["start"]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("already running with PID: {pid}")),
        "{text}"
    );
    assert_eq!(
        pid_of(&home.path),
        Some(pid),
        "pid file of the running instance"
    );
    let (out, text) = home.run(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains(&format!("RUNNING (PID {pid})")), "{text}");
    let (out, text) = home.run(&["stop"]);
    assert!(out.status.success() && text.contains("stopped"), "{text}");
    assert!(!alive(pid));
}

#[test]
fn a_pid_file_naming_another_program_is_never_signalled() {
    let home = Home::new(&config(free_port(), free_port()));
    let mut other = Command::new("sleep").arg("60").spawn().unwrap();
    std::fs::write(home.path.join("fusion.pid"), format!("{}\n", other.id())).unwrap();
    let (out, text) = home.run(&["stop"]);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("not running"), "{text}");
    let (out, text) = home.run(&["reload"]);
    assert_eq!(out.status.code(), Some(7), "{text}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        other.try_wait().unwrap().is_none(),
        "an unrelated process was signalled"
    );
    let (out, text) = home.run(&["status"]);
    assert_eq!(out.status.code(), Some(3), "LSB: not running: {text}");
    assert!(text.contains("STOPPED"), "{text}");
    let _ = other.kill();
    let _ = other.wait();
}

#[test]
fn status_survives_a_closed_stdout() {
    let home = Home::new(&config(free_port(), free_port()));
    let mut child = Command::new(BIN)
        .arg("--home")
        .arg(&home.path)
        .arg("status")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `status | head -0`: the reader is gone before anything is written.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(3), "{err}");
}

#[test]
fn reload_exits_non_zero_when_the_configuration_is_refused() {
    let mut home = Home::new(&config(free_port(), free_port()));
    let pid = home.start_daemon();
    let good = std::fs::read_to_string(home.path.join("fusion-config/default.yaml")).unwrap();
    home.write("default.yaml", "pipes: [this is: not valid\n");
    let (out, text) = home.run(&["reload"]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("Reload refused"), "{text}");
    assert!(alive(pid));
    home.write("default.yaml", &good);
    let (out, text) = home.run(&["reload"]);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("Reload applied"),
        "the daemon's answer: {text}"
    );
    assert!(alive(pid));
    home.run(&["stop"]);
}

#[test]
fn no_start_without_a_usable_pipe_unless_allow_empty() {
    let mut home = Home::new(&format!(
        "host: 127.0.0.1\nport: {}\nsession_cleanup_interval: 1e20\n{}",
        free_port(),
        config(0, free_port()).replacen("host: 127.0.0.1\nport: 0\n", "", 1)
    ));
    let (out, text) = home.run(&["check-config"]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("session_cleanup_interval"), "{text}");
    let (out, text) = home.run(&["start"]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("--allow-empty"), "{text}");
    let (out, text) = home.run(&["start", "-D"]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("--allow-empty"), "the child's reason: {text}");
    assert_eq!(pid_of(&home.path), None);
    home.write(
        "default.yaml",
        &format!("host: 127.0.0.1\nport: {}\n", free_port()),
    );
    let (out, text) = home.run(&["start", "-D", "--allow-empty"]);
    assert!(out.status.success(), "{text}");
    let pid = pid_of(&home.path).unwrap();
    home.pids.push(pid);
    home.run(&["stop"]);
}

#[test]
fn check_config_refuses_what_start_refuses_and_unknown_keys() {
    let base = config(free_port(), free_port());
    let home = Home::new(&format!("{base}limits: {{max_body_bytes: \"64MB\"}}\n"));
    let (out, text) = home.run(&["check-config"]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("max_body_bytes") || text.contains("limits"),
        "{text}"
    );
    home.write(
        "default.yaml",
        &format!("{base}limits: {{max_body_byte: 1000}}\n"),
    );
    let (out, text) = home.run(&["check-config"]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("did you mean \"max_body_bytes\""), "{text}");
    home.write(
        "default.yaml",
        &base.replace("views: [v1]}", "views: [v1], session_timeout_secs: 3}"),
    );
    let (out, text) = home.run(&["check-config"]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("did you mean \"session_timeout_seconds\""),
        "{text}"
    );
    home.write("default.yaml", &base);
    let (out, text) = home.run(&["check-config"]);
    assert_eq!(out.status.code(), Some(0), "{text}");
}

#[test]
fn logging_format_json_and_dir_are_applied() {
    let mut home = Home::new(&format!(
        "logging: {{level: INFO, format: json, dir: mylogs}}\n{}",
        config(free_port(), free_port())
    ));
    let pid = home.start_daemon();
    let log = home.path.join("mylogs/fusion.log");
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("listening") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let line = text
        .lines()
        .find(|l| l.contains("listening"))
        .unwrap_or_else(|| panic!("no log in {}: {text}", log.display()));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["level"], "INFO", "{line}");
    assert!(!home.path.join("logs/fusion.log").exists());
    home.run(&["stop"]);
    assert!(!alive(pid));
}
