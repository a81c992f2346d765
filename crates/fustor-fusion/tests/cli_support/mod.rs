//! Driving the real `fustor-fusion` binary on a temp home: shared by the CLI tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_fustor-fusion");

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `fustor-fusion --home HOME ARGS` without the environment overrides a developer may have set;
/// the output and stdout + stderr as text.
pub fn run(home: &Path, args: &[&str]) -> (Output, String) {
    let out = Command::new(BIN)
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("FUSTOR_HOME")
        .env_remove("FUSTOR_FUSION_PORT")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

pub fn pid_of(home: &Path) -> Option<i32> {
    std::fs::read_to_string(home.join("fusion.pid"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

pub fn alive(pid: i32) -> bool {
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .output()
        .is_ok_and(|o| o.status.success())
}
