//! Fusion's logs as configured: `logging.dir` moves the file, the text format carries no colour
//! codes when stderr is a pipe (journald), and `RUST_LOG` wins over `logging.level`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::Duration;

use fustor_testkit::cli::spawn_reading_stderr;
use fustor_testkit::{free_port, wait_for_port};

const BIN: &str = env!("CARGO_BIN_EXE_fustor-fusion");

#[test]
fn text_logs_in_the_configured_dir_without_ansi_on_a_pipe() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let (main_port, recv_port) = (free_port(), free_port());
    std::fs::create_dir_all(home.join("fusion-config")).unwrap();
    std::fs::write(
        home.join("fusion-config/default.yaml"),
        format!(
            "host: 127.0.0.1\nport: {main_port}\nlogging: {{level: ERROR, format: text, dir: var/log}}\nreceivers:\n  r: {{driver: http, bind_host: 127.0.0.1, port: {recv_port}, api_keys: [{{key: k, pipe_id: v1}}]}}\nviews:\n  v1: {{driver: fs, api_keys: [q]}}\npipes:\n  v1: {{receiver: r, views: [v1]}}\n"
        ),
    )
    .unwrap();
    let (mut child, reader) = spawn_reading_stderr(
        Command::new(BIN)
            .arg("--home")
            .arg(home)
            .arg("start")
            .env("RUST_LOG", "info")
            .env_remove("FUSTOR_FUSION_PORT"),
    );
    assert!(wait_for_port(main_port, Duration::from_secs(30)));
    fustor_testkit::terminate(&mut child, Duration::from_secs(20));
    let stderr = reader.join().unwrap();
    let file = std::fs::read_to_string(home.join("var/log/fusion.log")).unwrap();
    for (name, text) in [("stderr", &stderr), ("log file", &file)] {
        assert!(!text.contains('\u{1b}'), "escape codes in {name}: {text:?}");
        // logging.level ERROR alone would log no INFO line; RUST_LOG=info wins.
        assert!(text.contains(" INFO "), "{name}: RUST_LOG ignored:\n{text}");
    }
    assert!(
        !home.join("logs/fusion.log").exists(),
        "logging.dir ignored"
    );
}
