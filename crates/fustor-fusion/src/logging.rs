//! Log setup: stderr (unless detached) plus the rotating `logs/fusion.log`, as text or as one
//! JSON object per line (`logging.format: json`).

use std::path::Path;

use fustor_core::logfile::{DEFAULT_BACKUPS, DEFAULT_MAX_BYTES, RotatingFile};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Installs the global subscriber. `RUST_LOG` overrides `level`.
pub fn init(
    level: &str,
    log_file: Option<&Path>,
    console: bool,
    json: bool,
) -> std::io::Result<()> {
    let filter = || {
        EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| EnvFilter::new(level.to_ascii_lowercase()))
    };
    let mut layers: Vec<BoxedLayer> = Vec::new();
    if let Some(p) = log_file {
        let f = RotatingFile::open(p, DEFAULT_MAX_BYTES, DEFAULT_BACKUPS)?;
        let l = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_target(true)
            .with_writer(move || f.clone());
        layers.push(if json {
            l.json().with_filter(filter()).boxed()
        } else {
            l.with_filter(filter()).boxed()
        });
    }
    if console {
        let l = tracing_subscriber::fmt::layer()
            .with_ansi(log_file.is_none())
            .with_target(true)
            .with_writer(std::io::stderr);
        layers.push(if json {
            l.json().with_filter(filter()).boxed()
        } else {
            l.with_filter(filter()).boxed()
        });
    }
    tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .map_err(|e| std::io::Error::other(e.to_string()))
}
