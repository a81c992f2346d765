//! Driving the real `fustor-fusion` binary on a temp home: shared by the CLI tests.
#![allow(dead_code, unused_imports, clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_fustor-fusion");

/// `fustor-fusion --home HOME ARGS` without the environment overrides a developer may have set;
/// the output and stdout + stderr as text.
pub fn run(home: &Path, args: &[&str]) -> (Output, String) {
    let out = Command::new(BIN)
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("FUSTOR_HOME")
        .env_remove("FUSTOR_FUSION_PORT")
        .env_remove("FUSTOR_FUSION_HOST")
        .env_remove("FUSTOR_LOG_LEVEL")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let text = fustor_testkit::output_text(&out);
    (out, text)
}

pub use fustor_testkit::{alive, free_port};

pub fn pid_of(home: &Path) -> Option<i32> {
    fustor_testkit::pid_in(&home.join("fusion.pid"))
}
