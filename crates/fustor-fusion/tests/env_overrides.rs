//! Environment overrides (issue 13): `FUSTOR_FUSION_PORT` / `FUSTOR_FUSION_HOST` move the main
//! listener (flags still win), `FUSTOR_LOG_LEVEL` sets the level, and a malformed value stops
//! `start` with the variable's name instead of being ignored.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fustor_testkit::{free_port, terminate, wait_for_port};

const BIN: &str = env!("CARGO_BIN_EXE_fustor-fusion");

fn home_with(yaml_port: u16) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("fusion-config");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("default.yaml"),
        format!(
            "host: 127.0.0.1\nport: {yaml_port}\n\
             receivers:\n  r: {{bind_host: 127.0.0.1, port: {yaml_port}, api_keys: [{{key: k, pipe_id: p}}]}}\n\
             views:\n  v: {{driver: fs, api_keys: [q], persist: false}}\n\
             pipes:\n  p: {{receiver: r, views: [v]}}\n"
        ),
    )
    .unwrap();
    home
}

fn start(home: &Path, env: &[(&str, String)], args: &[&str]) -> Child {
    let mut c = Command::new(BIN);
    c.arg("--home")
        .arg(home)
        .args(["start", "--no-console-log"])
        .args(args)
        .env_remove("FUSTOR_FUSION_PORT")
        .env_remove("FUSTOR_FUSION_HOST")
        .env_remove("FUSTOR_LOG_LEVEL")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn().unwrap()
}

#[test]
fn fustor_fusion_port_moves_the_main_listener_and_flags_win() {
    let (yaml, env_port, flag_port) = (free_port(), free_port(), free_port());
    let home = home_with(yaml);
    let mut f = start(
        home.path(),
        &[
            ("FUSTOR_FUSION_PORT", env_port.to_string()),
            ("FUSTOR_LOG_LEVEL", "debug".into()),
        ],
        &[],
    );
    assert!(
        wait_for_port(env_port, Duration::from_secs(10)),
        "env port not bound"
    );
    // The receiver shares the YAML port, which is no longer the main one: it runs on its own.
    assert!(wait_for_port(yaml, Duration::from_secs(5)));
    terminate(&mut f, Duration::from_secs(10));
    let log = std::fs::read_to_string(home.path().join("logs/fusion.log")).unwrap_or_default();
    assert!(
        log.contains("DEBUG"),
        "FUSTOR_LOG_LEVEL=debug ignored:\n{log}"
    );

    let mut f = start(
        home.path(),
        &[("FUSTOR_FUSION_PORT", env_port.to_string())],
        &["--port", &flag_port.to_string()],
    );
    assert!(
        wait_for_port(flag_port, Duration::from_secs(10)),
        "--port must win"
    );
    terminate(&mut f, Duration::from_secs(10));
}

#[test]
fn a_malformed_override_stops_start_with_its_name() {
    let home = home_with(free_port());
    for (var, value) in [("FUSTOR_FUSION_PORT", "80a"), ("FUSTOR_LOG_LEVEL", "loud")] {
        let f = start(home.path(), &[(var, value.into())], &[]);
        let out = f.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{var}={value} was accepted");
        assert!(err.contains(var), "{var}: {err}");
    }
}
