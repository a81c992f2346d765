//! Log setup: stderr (unless detached) plus the rotating `logs/fusion.log`.

use std::path::Path;

use fustor_core::logfile::{DEFAULT_BACKUPS, DEFAULT_MAX_BYTES, RotatingFile};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::MakeWriterExt;

/// Installs the global subscriber. `RUST_LOG` overrides `level`.
pub fn init(level: &str, log_file: Option<&Path>, console: bool) -> std::io::Result<()> {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(level.to_ascii_lowercase()));
    let file = match log_file {
        Some(p) => Some(RotatingFile::open(p, DEFAULT_MAX_BYTES, DEFAULT_BACKUPS)?),
        None => None,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true);
    let result = match (file, console) {
        (Some(f), true) => builder
            .with_ansi(false)
            .with_writer(std::io::stderr.and(move || f.clone()))
            .try_init(),
        (Some(f), false) => builder
            .with_ansi(false)
            .with_writer(move || f.clone())
            .try_init(),
        (None, _) => builder.with_writer(std::io::stderr).try_init(),
    };
    result.map_err(|e| std::io::Error::other(e.to_string()))
}
