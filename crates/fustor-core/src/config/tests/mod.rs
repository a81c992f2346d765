//! Tests against real files in temporary directories.

mod agent;
mod fusion;
mod load;
mod strict;

use std::path::{Path, PathBuf};

use tempfile::TempDir;

/// `<tmp>/<name>/` holding `files` (file name, content); the TempDir must outlive the path.
fn config_dir(name: &str, files: &[(&str, &str)]) -> (TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    std::fs::create_dir(&dir).unwrap();
    for (file, text) in files {
        write(&dir, file, text);
    }
    (tmp, dir)
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn messages<T>(loaded: &super::Loaded<T>) -> Vec<String> {
    loaded.diagnostics.iter().map(ToString::to_string).collect()
}

/// The generic rules only: the drivers' own checks are tested with the agent's registry
/// (`fustor-agent/tests/config_drivers.rs`), since the drivers live in other crates.
fn no_drivers() -> super::AgentDriverSchemas {
    super::AgentDriverSchemas::default()
}
