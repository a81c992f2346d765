//! Issue 9, the agent's command line with real processes: `validate` refuses unknown keys,
//! out-of-range numbers and scheme-less sender URIs; `start -D` reports a child that died;
//! a failed second start leaves the running instance alone; a pid file naming another program
//! is never signalled; `reload` waits for the daemon's verdict; `status` exits 3 when stopped
//! and survives a closed stdout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use fustor_testkit::alive;

const BIN: &str = env!("CARGO_BIN_EXE_fustor-agent");

struct Home {
    _tmp: tempfile::TempDir,
    path: PathBuf,
}

impl Home {
    fn new() -> Home {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().to_path_buf();
        std::fs::create_dir_all(path.join("agent-config")).unwrap();
        std::fs::create_dir_all(path.join("data/d")).unwrap();
        Home { _tmp: tmp, path }
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path.join("agent-config").join(name), text).unwrap();
    }

    fn run(&self, args: &[&str]) -> (Output, String) {
        let out = Command::new(BIN)
            .args(args)
            .env("FUSTOR_HOME", &self.path)
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        let text = fustor_testkit::output_text(&out);
        (out, text)
    }

    fn pid(&self) -> Option<i32> {
        fustor_testkit::pid_in(&self.path.join("agent.pid"))
    }

    /// An echo pipe over `data/`: runs without any Fusion.
    fn valid(&self, pipe_extra: &str) -> String {
        format!(
            "agent_id: t\nsources:\n  src: {{driver: fs, uri: {:?}}}\nsenders:\n  echo: {{driver: echo, uri: \"http://127.0.0.1:9\"}}\npipes:\n  p1: {{source: src, sender: echo{pipe_extra}}}\n",
            self.path.join("data").display().to_string()
        )
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

#[test]
fn validate_refuses_unknown_keys_huge_numbers_and_bare_uris() {
    let h = Home::new();
    h.write("default.yaml", &h.valid(""));
    let (out, text) = h.run(&["validate"]);
    assert!(out.status.success(), "{text}");

    h.write("default.yaml", &h.valid(", hot_file_treshold: 3"));
    let (out, text) = h.run(&["validate"]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("hot_file_treshold"), "{text}");

    let typo = h.valid("").replace(
        "{driver: fs, uri:",
        "{driver: fs, driver_params: {throttle_interval_secs: 1}, uri:",
    );
    h.write("default.yaml", &typo);
    let (out, text) = h.run(&["check-config"]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("did you mean \"throttle_interval_sec\""),
        "{text}"
    );

    // Keys the Python agent knows are tolerated.
    h.write("default.yaml", &h.valid(", batch_size: 100"));
    let (out, text) = h.run(&["validate"]);
    assert!(out.status.success(), "{text}");

    h.write(
        "default.yaml",
        &h.valid(", error_retry_interval: 1e20, max_backoff_seconds: 1e21"),
    );
    let (out, text) = h.run(&["validate"]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("pipes.p1.error_retry_interval"), "{text}");

    let bad_uri = h.valid("").replace(
        "{driver: echo, uri: \"http://127.0.0.1:9\"}",
        "{driver: fusion, uri: \"127.0.0.1:8102\"}",
    );
    h.write("default.yaml", &bad_uri);
    let (out, text) = h.run(&["validate"]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("senders.echo.uri") && text.contains("http://"),
        "{text}"
    );

    // Was exit 101 (a panic) at start.
    let huge = h.valid("").replace(
        "{driver: echo, uri: \"http://127.0.0.1:9\"}",
        "{driver: fusion, uri: \"http://127.0.0.1:9\", driver_params: {timeout: 1e300}}",
    );
    h.write("default.yaml", &huge);
    let (out, text) = h.run(&["start"]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("driver_params.timeout"), "{text}");
}

#[test]
fn start_d_reports_a_child_that_found_nothing_to_run() {
    let h = Home::new();
    // Valid, but no pipe in default.yaml: nothing would run.
    h.write("other.yaml", &h.valid(""));
    let (out, text) = h.run(&["start", "-D"]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("failed to start"), "{text}");
    assert!(text.contains("--allow-empty"), "the child's reason: {text}");
    assert_eq!(h.pid(), None);
    let (out, text) = h.run(&["start", "-D", "--allow-empty"]);
    assert!(out.status.success(), "{text}");
    assert!(h.pid().is_some());
    h.run(&["stop"]);
}

#[test]
fn lifecycle_exit_codes_pid_ownership_and_reload_verdict() {
    let h = Home::new();
    h.write("default.yaml", &h.valid(""));
    let (out, text) = h.run(&["status"]);
    assert_eq!(out.status.code(), Some(3), "{text}");

    let (out, text) = h.run(&["start", "-D"]);
    assert!(out.status.success(), "{text}");
    let pid = h.pid().expect("pid file written before start -D returns");
    assert!(text.contains(&format!("started with PID: {pid}")), "{text}");
    let (out, text) = h.run(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{text}");

    // A second foreground start fails and leaves the pid file alone.
    let (out, text) = h.run(&["start"]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert_eq!(h.pid(), Some(pid));

    // Reload: the daemon's verdict decides the exit status.
    let (out, text) = h.run(&["reload"]);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Reload applied"), "{text}");
    // A pipe whose source driver is not installed passes `validate` but fails to start in
    // the daemon: only the daemon's answer can tell.
    h.write(
        "extra.yaml",
        "sources:\n  pg: {driver: postgres, uri: db}\npipes:\n  p2: {source: pg, sender: echo}\n",
    );
    let (out, text) = h.run(&["reload"]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("Reload refused"), "{text}");
    // Errors found before signalling are refused too, and the daemon is left alone.
    h.write("extra.yaml", "pipes:\n  p3: {source: src, sender: echo}\n");
    let (out, text) = h.run(&["reload"]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("Redundant"), "{text}");
    assert!(alive(pid));

    let (out, text) = h.run(&["stop"]);
    assert!(out.status.success(), "{text}");
    assert!(!alive(pid));
    let (out, _) = h.run(&["status"]);
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn a_pid_file_naming_another_program_is_never_signalled() {
    let h = Home::new();
    h.write("default.yaml", &h.valid(""));
    let mut other = Command::new("sleep").arg("60").spawn().unwrap();
    std::fs::write(h.path.join("agent.pid"), format!("{}\n", other.id())).unwrap();
    let (out, text) = h.run(&["stop"]);
    assert!(
        out.status.success() && text.contains("not running"),
        "{text}"
    );
    let (out, text) = h.run(&["reload"]);
    assert_eq!(out.status.code(), Some(7), "{text}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        other.try_wait().unwrap().is_none(),
        "an unrelated process was signalled"
    );
    let _ = other.kill();
    let _ = other.wait();
}

#[test]
fn status_survives_a_closed_stdout() {
    let h = Home::new();
    let mut child = Command::new(BIN)
        .arg("status")
        .env("FUSTOR_HOME", &h.path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(3), "{err}");
}
