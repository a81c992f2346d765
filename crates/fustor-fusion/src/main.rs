//! `fustor-fusion`: the central Fustor daemon.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{ArgAction, Parser, Subcommand};
use fustor_core::config::{Daemon, FustorPaths, Severity};
use fustor_core::process::{self, PidFile};
use fustor_fusion::daemon::{self, FusionServer, Overrides};
use fustor_fusion::logging;

/// Fustor Fusion: receives file-system events from fustor-agents, keeps an in-memory tree per
/// view and answers queries over HTTP.
///
/// Configuration: every `*.yaml` file in `$FUSTOR_HOME/fusion-config/` (default home
/// `~/.fustor`), merged in file-name order. Logs go to `$FUSTOR_HOME/logs/fusion.log`.
#[derive(Parser)]
#[command(name = "fustor-fusion", version, about, long_about)]
struct Cli {
    /// Use this home instead of $FUSTOR_HOME / ~/.fustor.
    #[arg(long, global = true, value_name = "DIR")]
    home: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start Fusion (foreground unless -D). ARGS select pipes: a `.yaml` file name starts the
    /// pipes defined in it, anything else is a pipe id; none starts every enabled pipe.
    #[command(disable_help_flag = true)]
    Start {
        /// Detach and run in the background.
        #[arg(short = 'D', long)]
        daemon: bool,
        /// Debug logging.
        #[arg(short = 'V', long)]
        verbose: bool,
        /// Main API port (overrides `port` in the configuration).
        #[arg(short = 'p', long)]
        port: Option<u16>,
        /// Main API bind address (overrides `host`).
        #[arg(short = 'h', long)]
        host: Option<String>,
        /// Do not log to the terminal (used by -D).
        #[arg(long, hide = true)]
        no_console_log: bool,
        /// Internal: this process is the detached child of `start -D`.
        #[arg(long, hide = true)]
        daemon_child: bool,
        #[arg(long, action = ArgAction::Help, help = "Print help")]
        help: Option<bool>,
        args: Vec<String>,
    },
    /// Stop the running Fusion (SIGTERM, then SIGKILL after 10 s).
    Stop {
        /// Ignored (deprecated in the reference).
        ids: Vec<String>,
    },
    /// Reload the configuration of the running Fusion (SIGHUP).
    Reload,
    /// Show whether Fusion runs, and its pipes and sessions.
    Status { pipe_id: Option<String> },
    /// List configured pipes.
    List,
    /// Validate the configuration and print the effective result; exit 1 on errors.
    CheckConfig {
        #[arg(long)]
        json: bool,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let paths = match cli.home {
        Some(h) => FustorPaths::new(h),
        None => FustorPaths::from_env(),
    };
    match cli.command {
        Cmd::Start {
            daemon,
            verbose,
            port,
            host,
            no_console_log,
            daemon_child,
            args,
            ..
        } => {
            if daemon && !daemon_child {
                return spawn_daemon(&paths, verbose, port, host, &args);
            }
            if daemon_child {
                process::detach();
            }
            start(&paths, verbose, port, host, !no_console_log, &args)
        }
        Cmd::Stop { ids } => {
            if !ids.is_empty() {
                println!(
                    "Stopping individual pipes is deprecated; stop ignores: {}",
                    ids.join(" ")
                );
                return Ok(());
            }
            stop(&paths)
        }
        Cmd::Reload => reload(&paths),
        Cmd::Status { pipe_id } => status(&paths, pipe_id.as_deref()),
        Cmd::List => list(&paths),
        Cmd::CheckConfig { json } => check_config(&paths, json),
    }
}

fn spawn_daemon(
    paths: &FustorPaths,
    verbose: bool,
    port: Option<u16>,
    host: Option<String>,
    args: &[String],
) -> Result<()> {
    let pid_file = paths.pid_file(Daemon::Fusion);
    if let Some(pid) = process::running_pid(&pid_file) {
        println!("Fusion is already running with PID: {pid}");
        return Ok(());
    }
    let log = paths.log_file(Daemon::Fusion);
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .with_context(|| format!("opening {}", log.display()))?;
    let exe = std::env::current_exe().context("locating the fustor-fusion executable")?;
    let mut cmd = Command::new(exe);
    cmd.arg("--home")
        .arg(&paths.home)
        .args(["start", "--no-console-log", "--daemon-child"]);
    if verbose {
        cmd.arg("--verbose");
    }
    if let Some(p) = port {
        cmd.arg("--port").arg(p.to_string());
    }
    if let Some(h) = host {
        cmd.arg("--host").arg(h);
    }
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    let child = cmd.spawn().context("starting the background Fusion")?;
    // Wait until the child wrote its pid file (it fails fast on a bad port or config).
    for _ in 0..50 {
        if process::running_pid(&pid_file).is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("Fusion started with PID: {}", child.id());
    Ok(())
}

fn start(
    paths: &FustorPaths,
    verbose: bool,
    port: Option<u16>,
    host: Option<String>,
    console: bool,
    args: &[String],
) -> Result<()> {
    let config_dir = paths.config_dir(Daemon::Fusion);
    std::fs::create_dir_all(&config_dir)
        .with_context(|| format!("creating {}", config_dir.display()))?;
    let (loaded, _, _) = daemon::load(&config_dir, args);
    let level = if verbose {
        "debug".to_string()
    } else {
        loaded
            .config
            .logging
            .tracing_level()
            .map_or_else(|| "info".to_string(), |l| l.to_string())
    };
    logging::init(&level, Some(&paths.log_file(Daemon::Fusion)), console)
        .context("setting up logging")?;
    let _pid = PidFile::create(&paths.pid_file(Daemon::Fusion)).context("writing the pid file")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let overrides = Overrides {
            host,
            port,
            main_port_hint: std::env::var("FUSTOR_FUSION_PORT")
                .ok()
                .and_then(|p| p.parse().ok()),
        };
        let server = FusionServer::start(&config_dir, args, overrides).await?;
        println!("Fusion listening on http://{}", server.main_addr);
        serve_until_signal(&server).await
    })
}

async fn serve_until_signal(server: &FusionServer) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading configuration");
                if let Err(e) = server.reload().await {
                    tracing::error!(error = %e, "reload failed; the previous configuration keeps running");
                }
            }
        }
    }
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

fn stop(paths: &FustorPaths) -> Result<()> {
    let pid_file = paths.pid_file(Daemon::Fusion);
    let Some(pid) = process::running_pid(&pid_file) else {
        println!("Fusion is not running.");
        return Ok(());
    };
    let killed = process::terminate(pid, Duration::from_secs(10)).context("stopping Fusion")?;
    let _ = std::fs::remove_file(&pid_file);
    println!(
        "Fusion (PID {pid}) {}.",
        if killed {
            "killed after 10 s"
        } else {
            "stopped"
        }
    );
    Ok(())
}

fn reload(paths: &FustorPaths) -> Result<()> {
    match process::running_pid(&paths.pid_file(Daemon::Fusion)) {
        None => println!("Fusion is not running."),
        Some(pid) => {
            process::hangup(pid).context("sending SIGHUP")?;
            println!("Reload signal sent to Fusion (PID {pid}).");
        }
    }
    Ok(())
}

fn status(paths: &FustorPaths, pipe_id: Option<&str>) -> Result<()> {
    let config_dir = paths.config_dir(Daemon::Fusion);
    let (loaded, _, _) = daemon::load(&config_dir, &[]);
    if let Some(id) = pipe_id {
        let Some(p) = loaded.config.pipes.get(id) else {
            bail!("unknown pipe {id}")
        };
        let enabled = if loaded.config.is_pipe_enabled(id) {
            "ENABLED"
        } else {
            "DISABLED"
        };
        println!(
            "Pipe {id}: receiver={} views={} {enabled}",
            p.receiver,
            p.views.join(",")
        );
        return Ok(());
    }
    match process::running_pid(&paths.pid_file(Daemon::Fusion)) {
        Some(pid) => {
            println!("RUNNING (PID {pid})");
            fustor_fusion::status::print_live(loaded.config.port);
        }
        None => println!("STOPPED"),
    }
    Ok(())
}

fn list(paths: &FustorPaths) -> Result<()> {
    let (loaded, _, _) = daemon::load(&paths.config_dir(Daemon::Fusion), &[]);
    println!("{:<24} {:<10} VIEWS", "PIPE ID", "STATUS");
    for (id, p) in &loaded.config.pipes {
        let s = if loaded.config.is_pipe_enabled(id) {
            "ENABLED"
        } else {
            "DISABLED"
        };
        println!("{id:<24} {s:<10} {}", p.views.join(","));
    }
    Ok(())
}

fn check_config(paths: &FustorPaths, json: bool) -> Result<()> {
    let dir = paths.config_dir(Daemon::Fusion);
    let (loaded, pipes, diags) = daemon::load(&dir, &[]);
    for d in &diags {
        eprintln!("{d}");
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&loaded.config)?);
    } else {
        println!("config dir: {}", dir.display());
        println!("main API: {}:{}", loaded.config.host, loaded.config.port);
        for (id, r) in &loaded.config.receivers {
            println!(
                "receiver {id}: {} {}:{} keys={}",
                r.driver,
                r.bind_host,
                r.port,
                r.api_keys.len()
            );
        }
        for (id, v) in &loaded.config.views {
            println!(
                "view {id}: driver={}{}",
                v.driver,
                if v.disabled { " (disabled)" } else { "" }
            );
        }
        println!(
            "pipes to start: {}",
            if pipes.is_empty() {
                "(none)".to_string()
            } else {
                pipes.join(", ")
            }
        );
    }
    if diags.iter().any(|d| d.severity == Severity::Error) {
        std::process::exit(1);
    }
    Ok(())
}
