//! `RUST_LOG` overrides the configured level for both daemons (the agent used to ignore it).
//!
//! The subscriber and the environment are process-global, so the check runs in a child: this
//! test binary re-executed with `RUST_LOG` set and only `child_logs` selected.

use std::process::Command;

const MARK: &str = "FUSTOR_DAEMON_LOG_TEST_FILE";

/// Does nothing unless started by the parent test below.
#[test]
fn child_logs() {
    let Some(file) = std::env::var_os(MARK) else {
        return;
    };
    fustor_daemon::logging::init(fustor_daemon::logging::LogSettings {
        level: tracing::Level::WARN,
        file: Some(std::path::Path::new(&file)),
        console: true,
        json: false,
    })
    .unwrap();
    tracing::debug!("a debug line");
    tracing::info!("an info line");
}

#[test]
fn rust_log_overrides_the_configured_level_and_no_colour_off_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("logs/agent.log");
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_logs", "--nocapture", "--test-threads=1"])
        .env("RUST_LOG", "debug")
        .env(MARK, &file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("a debug line"), "{text}");
    assert!(text.contains("an info line"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "escape codes in the file: {text:?}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("a debug line"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "escape codes on a pipe: {stderr:?}"
    );
}
