//! The agent's logs as configured (`logging: {format: json, level, dir}`), with `RUST_LOG`
//! winning over the configured level, and no colour codes when stderr is a pipe (journald).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use fustor_testkit::cli::spawn_reading_stderr;

const BIN: &str = env!("CARGO_BIN_EXE_fustor-agent");

#[derive(serde::Deserialize)]
struct Line {
    level: String,
    #[allow(dead_code)]
    timestamp: String,
}

#[test]
fn json_lines_rust_log_wins_and_no_ansi_on_a_pipe() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    std::fs::create_dir_all(home.join("agent-config")).unwrap();
    std::fs::create_dir_all(home.join("data")).unwrap();
    std::fs::write(home.join("data/f.txt"), b"x").unwrap();
    std::fs::write(
        home.join("agent-config/default.yaml"),
        format!(
            "agent_id: log-test\nlogging: {{level: WARNING, format: json, dir: mylogs}}\nsources:\n  src: {{driver: fs, uri: {:?}}}\nsenders:\n  echo: {{driver: echo, uri: \"http://127.0.0.1:9\"}}\npipes:\n  p1: {{source: src, sender: echo}}\n",
            home.join("data").display().to_string()
        ),
    )
    .unwrap();
    let (mut child, reader) = spawn_reading_stderr(
        Command::new(BIN)
            .arg("--home")
            .arg(home)
            .arg("start")
            .env("RUST_LOG", "debug")
            .env_remove("FUSTOR_HOME"),
    );
    let file = home.join("mylogs/agent.log");
    // The configured level (WARNING) would log nothing at start; RUST_LOG=debug logs a lot.
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&file)
        .unwrap_or_default()
        .lines()
        .count()
        < 3
    {
        assert!(Instant::now() < deadline, "no logs in {}", file.display());
        std::thread::sleep(Duration::from_millis(100));
    }
    fustor_testkit::terminate(&mut child, Duration::from_secs(20));
    let stderr = reader.join().unwrap();
    let in_file = std::fs::read_to_string(&file).unwrap();
    for (name, text) in [("stderr", &stderr), ("log file", &in_file)] {
        assert!(!text.contains('\u{1b}'), "escape codes in {name}: {text:?}");
        let lines: Vec<Line> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: {e}: {l}")))
            .collect();
        assert!(
            lines.iter().any(|l| l.level == "DEBUG"),
            "{name}: RUST_LOG=debug ignored:\n{text}"
        );
    }
    assert!(
        !home.join("logs/agent.log").exists(),
        "logging.dir ignored: logs/agent.log written"
    );
}
