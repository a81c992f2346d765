//! Logging for the agent daemon (`configuration.md` §1, §5): the rotating `logs/agent.log`
//! (10 MiB × 5 backups, [`fustor_core::logfile::RotatingFile`]) and stderr.
//!
//! Pid files and signals are [`fustor_core::process`], shared with Fusion.

use std::io;
use std::path::Path;

use fustor_core::logfile::{DEFAULT_BACKUPS, DEFAULT_MAX_BYTES, RotatingFile};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Installs the global subscriber: the rotating `log_file` (if any) and, unless `console` is
/// false, stderr; one JSON object per line when `json` (`logging.format: json`). Noisy HTTP
/// internals are capped at INFO.
pub fn init_logging(
    level: tracing::Level,
    log_file: Option<&Path>,
    console: bool,
    json: bool,
) -> io::Result<()> {
    let filter = || {
        // The default level must be a directive of its own: `with_default_directive` only
        // applies when no other directive is given.
        let quiet = "hyper=info,hyper_util=info,reqwest=info,rustls=info,h2=info";
        EnvFilter::builder().parse_lossy(format!("{},{quiet}", LevelFilter::from_level(level)))
    };
    let mut layers: Vec<BoxedLayer> = Vec::new();
    if let Some(p) = log_file {
        let w = RotatingFile::open(p, DEFAULT_MAX_BYTES, DEFAULT_BACKUPS)?;
        let l = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(move || w.clone());
        layers.push(if json {
            l.json().with_filter(filter()).boxed()
        } else {
            l.with_filter(filter()).boxed()
        });
    }
    if console {
        let l = tracing_subscriber::fmt::layer().with_writer(io::stderr);
        layers.push(if json {
            l.json().with_filter(filter()).boxed()
        } else {
            l.with_filter(filter()).boxed()
        });
    }
    let _ = tracing_subscriber::registry().with(layers).try_init();
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use fustor_core::logfile::RotatingFile;
    use fustor_core::process::{PidFile, running_pid};

    #[test]
    fn log_file_rotates_by_size_and_keeps_n_backups() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("logs/agent.log");
        let mut w = RotatingFile::open(&p, 10, 2).unwrap();
        for i in 0..5 {
            w.write_all(format!("line-{i}-xx\n").as_bytes()).unwrap(); // 10 bytes each
        }
        w.flush().unwrap();
        let read = |q: &std::path::Path| std::fs::read_to_string(q).unwrap();
        assert_eq!(read(&p), "line-4-xx\n");
        assert_eq!(read(&tmp.path().join("logs/agent.log.1")), "line-3-xx\n");
        assert_eq!(read(&tmp.path().join("logs/agent.log.2")), "line-2-xx\n");
        assert!(!tmp.path().join("logs/agent.log.3").exists());
    }

    #[test]
    fn pid_file_lifecycle() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("agent.pid");
        assert_eq!(running_pid(&p), None);
        let guard = PidFile::create(&p).unwrap();
        assert_eq!(running_pid(&p), Some(std::process::id() as i32));
        std::fs::write(&p, "999999999\n").unwrap();
        assert_eq!(running_pid(&p), None, "stale pid");
        assert!(!p.exists(), "stale file removed");
        drop(guard);
        let guard = PidFile::create(&p).unwrap();
        drop(guard);
        assert!(!p.exists(), "own pid file removed at exit");
    }
}
