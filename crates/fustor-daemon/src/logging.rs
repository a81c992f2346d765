//! One logging setup for both daemons: the rotating `logs/<daemon>.log` (10 MiB × 5 backups,
//! [`fustor_core::logfile::RotatingFile`]) and stderr, as text or one JSON object per line.
//!
//! `RUST_LOG` overrides the configured level, as operators expect of a Rust daemon. Colours only
//! go to a terminal: under systemd stderr is the journal, where escape codes are noise.

use std::io::{self, IsTerminal};
use std::path::Path;

use fustor_core::logfile::{DEFAULT_BACKUPS, DEFAULT_MAX_BYTES, RotatingFile};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// HTTP internals are capped at INFO unless `RUST_LOG` says otherwise: at DEBUG they log every
/// connection, which drowns what the daemon itself says.
const QUIET: &str = "hyper=info,hyper_util=info,reqwest=info,rustls=info,h2=info";

/// What to log where.
#[derive(Debug, Clone, Copy)]
pub struct LogSettings<'a> {
    /// `error` … `trace`; `RUST_LOG`, when set, wins.
    pub level: tracing::Level,
    pub file: Option<&'a Path>,
    /// Also log to stderr (not for a detached daemon, whose stderr is the log file).
    pub console: bool,
    /// One JSON object per line (`logging.format: json`).
    pub json: bool,
}

fn filter(level: tracing::Level) -> EnvFilter {
    match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => EnvFilter::builder().parse_lossy(v),
        // The default level must be a directive of its own: `with_default_directive` only
        // applies when no other directive is given.
        _ => EnvFilter::builder().parse_lossy(format!(
            "{},{QUIET}",
            tracing_subscriber::filter::LevelFilter::from_level(level)
        )),
    }
}

/// Installs the global subscriber (a second call is a no-op: tests and `fustor demo` may set
/// one up first).
pub fn init(s: LogSettings<'_>) -> io::Result<()> {
    let mut layers: Vec<BoxedLayer> = Vec::new();
    if let Some(p) = s.file {
        let w = RotatingFile::open(p, DEFAULT_MAX_BYTES, DEFAULT_BACKUPS)?;
        let l = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(move || w.clone());
        layers.push(if s.json {
            l.json().with_filter(filter(s.level)).boxed()
        } else {
            l.with_filter(filter(s.level)).boxed()
        });
    }
    if s.console {
        let l = tracing_subscriber::fmt::layer()
            .with_ansi(io::stderr().is_terminal())
            .with_writer(io::stderr);
        layers.push(if s.json {
            l.json().with_filter(filter(s.level)).boxed()
        } else {
            l.with_filter(filter(s.level)).boxed()
        });
    }
    let _ = tracing_subscriber::registry().with(layers).try_init();
    Ok(())
}
